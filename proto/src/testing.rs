//! Test support for the crates that talk to the agent (feature `testing`, enabled only by the
//! modules' dev-dependencies, so their cdylibs never contain it).
//!
//! [`FakeAgent`] stands in for lanyardd on a Unix socket in a [`scratch_dir`], speaking the real
//! framing, one thread per connection; it counts connections and records every request. It
//! never touches `/run/lanyard`. What it answers is up to each test crate: its own sample
//! directory, built from [`user`] and [`group`].
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support: a broken fixture should fail the test at once"
)]

use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};

use crate::frame::{self, decode, encode, read_body};
use crate::{Group, Passwd, Request, Response};

/// Where every test process keeps its scratch directories: `$TMPDIR/lanyard-test-<pid>/`.
const SCRATCH_PREFIX: &str = "lanyard-test-";

type Answer = dyn Fn(&Request) -> Vec<Response> + Send + Sync;

#[derive(Debug)]
pub struct FakeAgent {
    dir: PathBuf,
    socket: PathBuf,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl FakeAgent {
    /// Listens at once; every request on every connection gets the frames `answer` returns, in
    /// order (several for an enumeration stream, usually one).
    pub fn start(answer: impl Fn(&Request) -> Vec<Response> + Send + Sync + 'static) -> FakeAgent {
        let dir = scratch_dir();
        let socket = dir.join("agent.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let agent = FakeAgent { dir, socket, connections: Arc::default(), requests: Arc::default() };
        let (connections, requests) = (agent.connections.clone(), agent.requests.clone());
        let answer: Arc<Answer> = Arc::new(answer);
        // The accept loop outlives the test (it blocks in accept); harmless in a test binary.
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                connections.fetch_add(1, Ordering::SeqCst);
                let (answer, requests) = (answer.clone(), requests.clone());
                std::thread::spawn(move || serve(conn, &*answer, &requests));
            }
        });
        agent
    }

    /// The socket to point the client at.
    pub fn path(&self) -> &Path {
        &self.socket
    }

    /// How many connections were accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeAgent {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn serve(mut conn: UnixStream, answer: &Answer, requests: &Mutex<Vec<Request>>) {
    while let Ok(body) = read_body(&mut conn, frame::MAX_REQUEST) {
        let request: Request = decode(&body).unwrap();
        requests.lock().unwrap().push(request.clone());
        for response in answer(&request) {
            if conn.write_all(&encode(&response, frame::MAX_RESPONSE).unwrap()).is_err() {
                return; // the client hung up early (endpwent mid-stream): fine
            }
        }
    }
}

/// A fresh, empty directory under `$TMPDIR/lanyard-test-<pid>/`, unique within this test
/// process. Tests may leave theirs behind (homes owned by other uids, sockets); the first call
/// of a process removes what processes that have exited left.
pub fn scratch_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    static SWEEP: Once = Once::new();
    SWEEP.call_once(remove_leftovers);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let root = std::env::temp_dir().join(format!("{SCRATCH_PREFIX}{}", std::process::id()));
    let dir = root.join(n.to_string());
    let _ = std::fs::remove_dir_all(&dir); // a leftover of an earlier process with this pid
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Removes the scratch roots of test processes that are gone. Without `/proc` nothing can be
/// told apart, so nothing is removed.
fn remove_leftovers() {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(SCRATCH_PREFIX)) else { continue };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A sample user: primary group 100, home `/home/<name>`, shell `/bin/sh`.
pub fn user(name: &str, uid: u32) -> Passwd {
    Passwd {
        name: name.into(),
        uid,
        gid: 100,
        gecos: format!("{name} gecos"),
        home: format!("/home/{name}"),
        shell: "/bin/sh".into(),
    }
}

/// A sample group.
pub fn group(name: &str, gid: u32, members: &[&str]) -> Group {
    Group { name: name.into(), gid, members: members.iter().map(|&m| m.into()).collect() }
}
