//! Test support: a stand-in for lanyardd on a Unix socket in a scratch directory, speaking the
//! real framing, one thread per connection (the pattern of the NSS module's fake agent). Never
//! touches /run/lanyard. The integration test includes this file too (`#[path]`), so it uses
//! nothing from the crate.

use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use lanyard_proto::frame::{self, decode, encode, read_body};
use lanyard_proto::{Passwd, Request, Response};

type Answer = dyn Fn(&Request) -> Response + Send + Sync;

#[derive(Debug)]
pub struct FakeAgent {
    dir: PathBuf,
    socket: PathBuf,
    requests: Arc<Mutex<Vec<Request>>>,
}

/// A fresh directory under `$TMPDIR/pam-lanyard-<pid>/`, unique within this test binary's run.
/// Tests leave theirs behind (homes owned by other uids, sockets); the first call of a run
/// removes what runs that have exited left.
pub fn scratch_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    static SWEEP: std::sync::Once = std::sync::Once::new();
    SWEEP.call_once(remove_leftovers);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("pam-lanyard-{}", std::process::id())).join(n.to_string());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Removes the scratch roots of test runs whose process is gone.
fn remove_leftovers() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("pam-lanyard-")) else { continue };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Whether the tests run as root, asked without `unsafe`: a new file belongs to the
/// effective uid.
#[allow(dead_code)] // the integration test does not need it
pub fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    let probe = scratch_dir().join("probe");
    std::fs::write(&probe, b"").unwrap();
    std::fs::metadata(&probe).unwrap().uid() == 0
}

impl FakeAgent {
    /// Listens at once; every request gets the response `answer` returns.
    pub fn start(answer: impl Fn(&Request) -> Response + Send + Sync + 'static) -> FakeAgent {
        let dir = scratch_dir();
        let socket = dir.join("agent.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let agent = FakeAgent { dir, socket, requests: Arc::default() };
        let requests = agent.requests.clone();
        let answer: Arc<Answer> = Arc::new(answer);
        // The accept loop outlives the test (it blocks in accept); harmless in a test binary.
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let (answer, requests) = (answer.clone(), requests.clone());
                std::thread::spawn(move || serve(conn, &*answer, &requests));
            }
        });
        agent
    }

    pub fn path(&self) -> &Path {
        &self.socket
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
        if conn.write_all(&encode(&answer(&request), frame::MAX_RESPONSE).unwrap()).is_err() {
            return;
        }
    }
}

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

/// A small directory with one of every kind of answer. alice's password is "right"; bob's
/// password may be reset by root (the agent's config allows it for him only).
pub fn directory(request: &Request) -> Response {
    let name = match request {
        Request::UserByName(user)
        | Request::Authenticate { user, .. }
        | Request::CheckAccount { user, .. }
        | Request::ChangePassword { user, .. }
        | Request::OpenSession { user, .. } => user.as_str(),
        _ => return Response::NotFound,
    };
    // Users that answer the same whatever is asked.
    match name {
        "down" => return Response::Unavailable("directory down, nothing cached".into()),
        "secret" => return Response::Refused("not for this caller".into()),
        "confused" => return Response::EndOfPages,
        _ => {}
    }
    match request {
        Request::UserByName(_) => match name {
            "alice" => Response::User(user("alice", 10001)),
            "bob" => Response::User(user("bob", 10002)),
            "carol" => Response::User(user("carol", 10003)),
            "daemon" => Response::User(user("daemon", 1)),
            _ => Response::NotFound,
        },
        Request::Authenticate { password, .. } => match (name, password.expose()) {
            ("alice", b"right") => Response::Authenticated { offline: false },
            ("carol", b"right") => Response::Authenticated { offline: true },
            ("daemon", b"right") => Response::Authenticated { offline: false },
            ("mallory", _) => Response::TooManyAttempts { retry_after_secs: 30 },
            ("alice" | "carol" | "daemon", _) => Response::WrongPassword,
            _ => Response::NotFound,
        },
        Request::CheckAccount { .. } => match name {
            "alice" | "daemon" => Response::AccountOk { warning: None },
            "warned" => Response::AccountOk { warning: Some("Your password expires in 3 days.".into()) },
            "expired" => Response::AccountExpired("Your account expired on 2024-01-01.".into()),
            "aged" => Response::PasswordExpired("Your password is older than 90 days.".into()),
            "locked" => Response::Denied("Your account is locked.".into()),
            _ => Response::NotFound,
        },
        Request::ChangePassword { old, new, .. } => match (name, old.as_ref().map(|o| o.expose()), new.expose()) {
            ("alice", Some(b"right"), b"weak") => Response::PasswordRejected("Password is too short.".into()),
            ("alice", Some(b"right"), _) => Response::PasswordChanged,
            ("alice", Some(_), _) => Response::WrongPassword,
            ("alice", None, _) => Response::Refused("root may not reset this password".into()),
            ("bob", None, _) => Response::PasswordChanged,
            _ => Response::NotFound,
        },
        _ => Response::NotFound,
    }
}
