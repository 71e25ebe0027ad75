//! A recording TCP proxy: listens on 127.0.0.1, forwards every connection to one upstream
//! address (slapd), and writes every byte of each direction of each connection to its own file
//! before passing it on. Whatever reached the upstream is on disk first, so searching the
//! files for a password after a login is a sound check of "no password in clear on the wire".
//!
//! One file per direction and connection (`conn-0001.to-server`, `conn-0001.to-client`): a
//! needle split across two reads is still contiguous in its file, and bytes of the other
//! direction never land in the middle of it.

use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::tempdir::TempDir;

/// Connections accepted over the proxy's life; more are refused (closed at once).
const MAX_CONNECTIONS: usize = 1000;
/// Bytes recorded and relayed per direction of one connection; past this it is closed.
const MAX_BYTES_PER_STREAM: u64 = 256 << 20;
/// The proxy shuts itself down this long after it started, whatever happens.
const LIFETIME: Duration = Duration::from_secs(600);
/// How often a blocked read looks at the stop flag.
const TICK: Duration = Duration::from_millis(50);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A running proxy. Dropping it closes every connection, joins every thread and removes the
/// recordings (unless `LANYARD_TEST_KEEP` is set).
#[derive(Debug)]
pub struct RecordingProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
    dir: TempDir,
}

#[derive(Debug)]
struct Shared {
    stop: AtomicBool,
    started: Instant,
    /// Both sockets of every connection, to shut them down on drop.
    sockets: Mutex<Vec<TcpStream>>,
    pumps: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst) || self.started.elapsed() >= LIFETIME
    }
}

/// One direction of one connection, as recorded.
#[derive(Debug, Clone)]
pub struct Recording {
    /// `conn-0001.to-server` or `conn-0001.to-client`.
    pub name: String,
    pub bytes: Vec<u8>,
}

impl RecordingProxy {
    /// Starts a proxy on a free port of 127.0.0.1 that forwards to `upstream`.
    pub fn start(upstream: SocketAddr) -> Result<Self> {
        let dir = TempDir::new("proxy")?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding the proxy's port")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            started: Instant::now(),
            sockets: Mutex::new(Vec::new()),
            pumps: Mutex::new(Vec::new()),
        });
        let acceptor = {
            let (shared, dir) = (Arc::clone(&shared), dir.path().to_path_buf());
            thread::Builder::new()
                .name("proxy-accept".into())
                .spawn(move || accept_loop(&listener, upstream, &dir, &shared))
                .context("starting the proxy's thread")?
        };
        Ok(RecordingProxy { addr, shared, acceptor: Some(acceptor), dir })
    }

    /// The proxy's own address (127.0.0.1 and its port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ldap://127.0.0.1:PORT`: the proxy as the agent's directory URI.
    pub fn ldap_uri(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.addr.port())
    }

    /// The directory holding the recordings.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Every recording so far, sorted by name.
    pub fn recordings(&self) -> Result<Vec<Recording>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(self.dir.path()).context("listing the recordings")? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let bytes = fs::read(entry.path()).with_context(|| format!("reading {name}"))?;
            out.push(Recording { name, bytes });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The names of the recordings that contain `needle` (empty `needle`: none).
    pub fn recordings_containing(&self, needle: &[u8]) -> Result<Vec<String>> {
        Ok(self.recordings()?.into_iter().filter(|r| contains(&r.bytes, needle)).map(|r| r.name).collect())
    }

    /// How many connections the proxy accepted.
    pub fn connections(&self) -> Result<usize> {
        Ok(self.recordings()?.iter().filter(|r| r.name.ends_with(".to-server")).count())
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wakes the acceptor if it is blocked in accept(); it sees the flag and returns.
        let _ = TcpStream::connect_timeout(&self.addr, CONNECT_TIMEOUT);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for socket in self.shared.sockets.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            let _ = socket.shutdown(Shutdown::Both);
        }
        let pumps = std::mem::take(&mut *self.shared.pumps.lock().unwrap_or_else(PoisonError::into_inner));
        for pump in pumps {
            let _ = pump.join();
        }
    }
}

/// `needle` occurs somewhere in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn accept_loop(listener: &TcpListener, upstream: SocketAddr, dir: &Path, shared: &Arc<Shared>) {
    for n in 1..=MAX_CONNECTIONS {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        if shared.stopping() {
            return;
        }
        if let Err(e) = relay(n, client, upstream, dir, shared) {
            eprintln!("recording proxy: connection {n}: {e:#}");
        }
    }
    eprintln!("recording proxy: {MAX_CONNECTIONS} connections accepted; accepting no more");
}

/// Connects to `upstream` and starts one pump per direction.
fn relay(n: usize, client: TcpStream, upstream: SocketAddr, dir: &Path, shared: &Arc<Shared>) -> Result<()> {
    let server = TcpStream::connect_timeout(&upstream, CONNECT_TIMEOUT).context("connecting upstream")?;
    for socket in [&client, &server] {
        socket.set_nodelay(true)?;
        socket.set_read_timeout(Some(TICK))?;
    }
    {
        let mut sockets = shared.sockets.lock().unwrap_or_else(PoisonError::into_inner);
        sockets.push(client.try_clone()?);
        sockets.push(server.try_clone()?);
    }
    let name = |direction: &str| dir.join(format!("conn-{n:04}.{direction}"));
    let pumps = [(client.try_clone()?, server.try_clone()?, name("to-server")), (server, client, name("to-client"))];
    for (from, to, file) in pumps {
        let shared_for_pump = Arc::clone(shared);
        let pump = thread::Builder::new()
            .name(format!("proxy-{n}"))
            .spawn(move || pump(from, to, &file, &shared_for_pump))
            .context("starting a pump thread")?;
        shared.pumps.lock().unwrap_or_else(PoisonError::into_inner).push(pump);
    }
    Ok(())
}

/// Copies `from` to `to`, appending every byte to `file` before forwarding it, until end of
/// file, an error, [`MAX_BYTES_PER_STREAM`], or the proxy stopping.
fn pump(mut from: TcpStream, mut to: TcpStream, file: &PathBuf, shared: &Shared) {
    let Ok(mut record) = File::create(file) else { return };
    let mut buf = vec![0u8; 16 * 1024];
    let mut total: u64 = 0;
    // Bounded by the byte limit in count and by the proxy's lifetime in time.
    while total < MAX_BYTES_PER_STREAM && !shared.stopping() {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {
                continue;
            }
            Err(_) => break,
        };
        total += n as u64;
        if record.write_all(&buf[..n]).and_then(|()| record.flush()).is_err() || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    // Passes the end of file on; the other pump ends when its side closes too.
    let _ = to.shutdown(Shutdown::Write);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on loopback that serves connections until dropped with the test.
    fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            for _ in 0..4 {
                let Ok((mut s, _)) = listener.accept() else { return };
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        });
        addr
    }

    fn exchange(proxy: &RecordingProxy, parts: &[&[u8]]) -> Vec<u8> {
        let mut s = TcpStream::connect(proxy.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut echoed = Vec::new();
        for part in parts {
            s.write_all(part).unwrap();
            let mut buf = vec![0u8; part.len()];
            s.read_exact(&mut buf).unwrap();
            echoed.extend(buf);
        }
        s.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        echoed
    }

    #[test]
    fn relays_both_ways_and_records_each_direction_whole() {
        let proxy = RecordingProxy::start(echo_server()).unwrap();
        // The secret is written in two pieces: it must still be found in one recording.
        let echoed = exchange(&proxy, &[b"hello se", b"cret-value bye"]);
        assert_eq!(echoed, b"hello secret-value bye");
        assert_eq!(proxy.connections().unwrap(), 1);
        let names = proxy.recordings_containing(b"secret-value").unwrap();
        assert_eq!(names, ["conn-0001.to-client", "conn-0001.to-server"]);
        assert!(proxy.recordings_containing(b"not-sent").unwrap().is_empty());
        assert!(proxy.recordings_containing(b"").unwrap().is_empty());
    }

    #[test]
    fn each_connection_gets_its_own_recordings() {
        let proxy = RecordingProxy::start(echo_server()).unwrap();
        exchange(&proxy, &[b"first"]);
        exchange(&proxy, &[b"second"]);
        assert_eq!(proxy.connections().unwrap(), 2);
        assert_eq!(proxy.recordings_containing(b"second").unwrap(), ["conn-0002.to-client", "conn-0002.to-server"]);
    }

    #[test]
    fn drop_closes_open_connections_and_returns() {
        let proxy = RecordingProxy::start(echo_server()).unwrap();
        let mut open = TcpStream::connect(proxy.addr()).unwrap();
        open.write_all(b"x").unwrap();
        open.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut one = [0u8; 1];
        open.read_exact(&mut one).unwrap();
        drop(proxy);
        let mut rest = Vec::new();
        // The proxy shut the connection: end of file (or a reset), not a timeout.
        let r = open.read_to_end(&mut rest);
        assert!(r.is_ok() || r.as_ref().is_err_and(|e| e.kind() != ErrorKind::WouldBlock), "{r:?}");
    }
}
