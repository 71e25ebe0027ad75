//! One client connection: read a request (bounded in size and time), answer it, repeat until
//! the client hangs up or goes quiet. A frame that is not ours drops this connection only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lanyard_proto::frame::{self, FrameError, HEADER_LEN, MAX_REQUEST, MAX_RESPONSE};
use lanyard_proto::{Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tracing::debug;
use zeroize::Zeroizing;

use crate::directory::Directory;
use crate::service::{Reply, Service};

/// How long a connected client may take to send a whole request, or stay idle between two.
const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// The most one request may take, directory included. Below the modules' reply deadline
/// (`Deadlines::default().reply`), so they hear "unavailable" rather than time out.
pub const REQUEST_BUDGET: Duration = Duration::from_secs(5);
/// How long one response frame may take to be written (a client that stopped reading).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Who is on the other end, from SO_PEERCRED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub pid: Option<i32>,
}

pub async fn serve<D: Directory>(mut stream: UnixStream, caller: Caller, service: Arc<Service<D>>) {
    loop {
        let request = match read_request(&mut stream).await {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(why) => {
                debug!(uid = caller.uid, pid = caller.pid, "dropping connection: {why}");
                return;
            }
        };
        let started = Instant::now();
        let summary = format!("{request:?}");
        let reply = match tokio::time::timeout(REQUEST_BUDGET, service.handle(request)).await {
            Ok(reply) => reply,
            Err(_) => Reply::One(Arc::new(Response::Unavailable(format!("no answer within {REQUEST_BUDGET:?}")))),
        };
        let outcome = match &reply {
            Reply::One(response) => response.summary(),
            Reply::Pages(pages) => format!("{} pages", pages.len()),
        };
        debug!(uid = caller.uid, pid = caller.pid, request = %summary, %outcome, elapsed_us = started.elapsed().as_micros() as u64, "answered");
        if let Err(why) = write_reply(&mut stream, &reply).await {
            debug!(uid = caller.uid, pid = caller.pid, "dropping connection: {why}");
            return;
        }
    }
}

/// The next request, or `None` when the client hung up cleanly between requests.
async fn read_request(stream: &mut UnixStream) -> Result<Option<Request>, String> {
    let read = async {
        let mut header = [0u8; HEADER_LEN];
        match stream.read_exact(&mut header).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(FrameError::Io(e)),
        }
        let len = frame::parse_header(header, MAX_REQUEST)?;
        let mut body = Zeroizing::new(vec![0u8; len]);
        stream.read_exact(&mut body).await?;
        frame::decode::<Request>(&body).map(Some)
    };
    match tokio::time::timeout(REQUEST_READ_TIMEOUT, read).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no whole request within {REQUEST_READ_TIMEOUT:?}")),
    }
}

async fn write_reply(stream: &mut UnixStream, reply: &Reply) -> Result<(), String> {
    match reply {
        Reply::One(response) => write_frame(stream, response).await,
        Reply::Pages(pages) => {
            for page in pages {
                write_frame(stream, page).await?;
            }
            Ok(())
        }
    }
}

async fn write_frame(stream: &mut UnixStream, response: &Response) -> Result<(), String> {
    let bytes = match frame::encode(response, MAX_RESPONSE) {
        Ok(bytes) => bytes,
        Err(e) => {
            // Too large for the modules to read: say so rather than send what they would refuse.
            tracing::warn!("cannot send {}: {e}", response.summary());
            frame::encode(&Response::Unavailable("answer too large".into()), MAX_RESPONSE).map_err(|e| e.to_string())?
        }
    };
    match tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&bytes)).await {
        Ok(result) => result.map_err(|e| format!("write failed: {e}")),
        Err(_) => Err(format!("client did not read for {WRITE_TIMEOUT:?}")),
    }
}
