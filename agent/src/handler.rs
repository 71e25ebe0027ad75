//! One client connection: read a request (bounded in size and time), answer it, repeat until
//! the client hangs up or goes quiet. A frame that is not ours drops this connection only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lanyard_proto::frame::{self, FrameError, HEADER_LEN, MAX_REQUEST, MAX_RESPONSE};
use lanyard_proto::{Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tracing::{Level, debug, enabled};
use zeroize::Zeroizing;

use crate::directory::Directory;
use crate::policy::Caller;
use crate::service::{Reply, Service};

/// How long a new connection may take to send its first whole request. The modules write it
/// right after connecting; a connection that stays silent only holds one of the agent's
/// connection slots, and a flood of them must not keep other callers waiting for long.
const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a client may stay idle between two requests (lanyardctl asks several in turn).
const NEXT_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// The most one request may take, directory included. Below the modules' reply deadline
/// (`Deadlines::default().reply`), so they hear "unavailable" rather than time out.
pub const REQUEST_BUDGET: Duration = Duration::from_secs(5);
/// How long a response frame may take to be written.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// The same for enumeration pages: `getent passwd | less` stops reading while a person reads.
/// The per-uid connection limit bounds what such a wait can hold.
const PAGE_WRITE_TIMEOUT: Duration = Duration::from_secs(600);

pub async fn serve<D: Directory>(mut stream: UnixStream, caller: Caller, service: Arc<Service<D>>) {
    let mut wait = FIRST_REQUEST_TIMEOUT;
    loop {
        let request = match read_request(&mut stream, wait).await {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(why) => {
                debug!(uid = caller.uid, pid = caller.pid, "dropping connection: {why}");
                return;
            }
        };
        let started = Instant::now();
        let summary = enabled!(Level::DEBUG).then(|| summarize(&request));
        let lookup = Service::<D>::lookup_key(&request);
        let reply = match tokio::time::timeout(REQUEST_BUDGET, service.handle(request, caller)).await {
            Ok(reply) => reply,
            Err(_) => {
                if let Some(key) = lookup {
                    service.finish_in_background(key);
                }
                Reply::One(Arc::new(Response::Unavailable(format!("no answer within {REQUEST_BUDGET:?}"))))
            }
        };
        if let Some(summary) = summary {
            let elapsed_us = started.elapsed().as_micros() as u64;
            debug!(uid = caller.uid, pid = caller.pid, request = %summary, outcome = %reply.summary(), elapsed_us, "answered");
        }
        wait = NEXT_REQUEST_TIMEOUT;
        if let Err(why) = write_reply(&mut stream, &reply).await {
            debug!(uid = caller.uid, pid = caller.pid, "dropping connection: {why}");
            return;
        }
    }
}

/// A request for the debug log: what was asked about, never a credential or PAM item.
fn summarize(request: &Request) -> String {
    match request {
        Request::UserByName(name) => format!("user {name:?}"),
        Request::UserByUid(uid) => format!("uid {uid}"),
        Request::GroupByName(name) => format!("group {name:?}"),
        Request::GroupByGid(gid) => format!("gid {gid}"),
        Request::GroupsOfUser(name) => format!("groups of {name:?}"),
        Request::EnumerateUsers => "all users".into(),
        Request::EnumerateGroups => "all groups".into(),
        Request::Authenticate { user, .. } => format!("authenticate {user:?}"),
        Request::CheckAccount { user, .. } => format!("account {user:?}"),
        Request::ChangePassword { user, .. } => format!("password change {user:?}"),
        Request::OpenSession { user, .. } => format!("session {user:?}"),
        Request::Invalidate(what) => format!("invalidate {what:?}"),
        Request::Status => "status".into(),
        Request::Metrics => "metrics".into(),
        Request::Trace(lookup) => format!("trace {lookup:?}"),
        Request::ClearCache => "clear the cache".into(),
    }
}

/// The next request, or `None` when the client hung up cleanly between requests.
async fn read_request(stream: &mut UnixStream, wait: Duration) -> Result<Option<Request>, String> {
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
    match tokio::time::timeout(wait, read).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no whole request within {wait:?}")),
    }
}

async fn write_reply(stream: &mut UnixStream, reply: &Reply) -> Result<(), String> {
    match reply {
        Reply::One(response) => write_frame(stream, response, WRITE_TIMEOUT).await,
        Reply::Users(_) | Reply::Groups(_) => {
            for page in reply.pages() {
                write_frame(stream, &page, PAGE_WRITE_TIMEOUT).await?;
            }
            Ok(())
        }
    }
}

async fn write_frame(stream: &mut UnixStream, response: &Response, timeout: Duration) -> Result<(), String> {
    let bytes = match frame::encode(response, MAX_RESPONSE) {
        Ok(bytes) => bytes,
        Err(e) => {
            // Too large for the modules to read: say so rather than send what they would refuse.
            tracing::warn!("cannot send {}: {e}", response.summary());
            frame::encode(&Response::Unavailable("answer too large".into()), MAX_RESPONSE).map_err(|e| e.to_string())?
        }
    };
    match tokio::time::timeout(timeout, stream.write_all(&bytes)).await {
        Ok(result) => result.map_err(|e| format!("write failed: {e}")),
        Err(_) => Err(format!("client did not read for {timeout:?}")),
    }
}
