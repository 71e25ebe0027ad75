//! A blocking client for the agent's socket, for code that runs inside other programs.
//!
//! Every step has a deadline: connecting (a hung agent's full backlog), sending, and receiving
//! a whole reply (not each `read`), so a lookup or login never waits longer than
//! [`Deadlines`] allow.

use std::io::{self, Read};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::frame::{self, FrameError};
use crate::message::{Request, Response};
use crate::sys;

/// How long each step may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// Connecting and sending the request.
    pub connect: Duration,
    /// Receiving one whole response frame.
    pub reply: Duration,
}

impl Default for Deadlines {
    /// The agent answers within its own per-request budget (5 s); the reply deadline leaves it
    /// room for that, and no more.
    fn default() -> Deadlines {
        Deadlines { connect: Duration::from_secs(1), reply: Duration::from_secs(7) }
    }
}

/// Why a call failed. To a module every variant means "unavailable"; the variants exist so
/// `lanyardctl` can say which step failed.
#[derive(Debug)]
pub enum ClientError {
    /// No agent is listening (not started, socket missing, or backlog full past the deadline).
    Connect(io::Error),
    /// The request could not be sent.
    Send(io::Error),
    /// The reply did not arrive whole within the deadline, or was not a valid frame.
    Receive(FrameError),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Connect(e) => write!(f, "cannot connect to the agent: {e}"),
            ClientError::Send(e) => write!(f, "cannot send to the agent: {e}"),
            ClientError::Receive(e) => write!(f, "no valid reply from the agent: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl ClientError {
    /// The agent accepted the connection but no whole reply came within the deadline: it is
    /// stuck, not merely absent.
    pub fn is_reply_timeout(&self) -> bool {
        matches!(self, ClientError::Receive(FrameError::Io(e))
            if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock))
    }
}

/// One connection to the agent.
#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
    deadlines: Deadlines,
}

impl Client {
    pub fn connect(socket: &Path, deadlines: Deadlines) -> Result<Client, ClientError> {
        let stream = sys::connect_unix(socket, deadlines.connect).map_err(ClientError::Connect)?;
        Ok(Client { stream, deadlines })
    }

    /// Connects, sends `request` and returns the first response.
    pub fn call(socket: &Path, request: &Request, deadlines: Deadlines) -> Result<Response, ClientError> {
        let mut client = Client::connect(socket, deadlines)?;
        client.send(request)?;
        client.receive()
    }

    pub fn send(&mut self, request: &Request) -> Result<(), ClientError> {
        let frame = frame::encode(request, frame::MAX_REQUEST)
            .map_err(|e| ClientError::Send(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
        self.stream.set_write_timeout(Some(nonzero(self.deadlines.connect))).map_err(ClientError::Send)?;
        sys::send_all(&self.stream, &frame).map_err(ClientError::Send)
    }

    /// Receives the next response; the whole frame must arrive within the reply deadline.
    pub fn receive(&mut self) -> Result<Response, ClientError> {
        let mut reader = DeadlineReader { stream: &self.stream, deadline: Instant::now() + self.deadlines.reply };
        let body: Zeroizing<Vec<u8>> =
            frame::read_body(&mut reader, frame::MAX_RESPONSE).map_err(ClientError::Receive)?;
        frame::decode(&body).map_err(ClientError::Receive)
    }
}

/// Reads that share one deadline: each `read` may only wait for what is left of it.
struct DeadlineReader<'a> {
    stream: &'a UnixStream,
    deadline: Instant,
}

impl Read for DeadlineReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        let mut stream = self.stream;
        stream.read(buf)
    }
}

/// `set_*_timeout(Some(ZERO))` is an error in std; a zero budget means "as short as possible".
fn nonzero(d: Duration) -> Duration {
    d.max(Duration::from_millis(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixListener;

    /// A scratch directory, removed when the test ends.
    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn join(&self, name: &str) -> std::path::PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn socket_dir(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("lanyard-proto-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    #[test]
    fn connecting_to_a_missing_socket_fails_at_once() {
        let dir = socket_dir("absent");
        let path = dir.join("absent.sock");
        let error = Client::connect(&path, Deadlines::default()).unwrap_err();
        assert!(matches!(error, ClientError::Connect(_)) && !error.is_reply_timeout(), "{error:?}");
    }

    #[test]
    fn a_silent_agent_is_a_receive_error_after_the_deadline() {
        let dir = socket_dir("silent");
        let path = dir.join("silent.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let deadlines = Deadlines { connect: Duration::from_millis(200), reply: Duration::from_millis(50) };
        let mut client = Client::connect(&path, deadlines).unwrap();
        client.send(&Request::UserByUid(0)).unwrap();
        let error = client.receive().unwrap_err();
        assert!(matches!(error, ClientError::Receive(FrameError::Io(_))), "{error:?}");
        assert!(error.is_reply_timeout(), "{error:?}");
        drop(listener);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_call_gets_the_reply_the_peer_wrote() {
        let dir = socket_dir("echo");
        let path = dir.join("echo.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let body = frame::read_body(&mut conn, frame::MAX_REQUEST).unwrap();
            assert_eq!(frame::decode::<Request>(&body).unwrap(), Request::UserByUid(42));
            conn.write_all(&frame::encode(&Response::NotFound, frame::MAX_RESPONSE).unwrap()).unwrap();
        });
        let reply = Client::call(&path, &Request::UserByUid(42), Deadlines::default()).unwrap();
        assert_eq!(reply, Response::NotFound);
        server.join().unwrap();
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn writing_to_a_closed_peer_is_an_error_not_sigpipe() {
        let dir = socket_dir("closed");
        let path = dir.join("closed.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let mut client = Client::connect(&path, Deadlines::default()).unwrap();
        drop(listener.accept().unwrap());
        drop(listener);
        // The first send may still land in the socket buffer; a later one must fail cleanly.
        let results: Vec<_> = (0..4).map(|_| client.send(&Request::EnumerateUsers)).collect();
        assert!(results.iter().any(Result::is_err));
        let _ = std::fs::remove_file(&path);
    }
}
