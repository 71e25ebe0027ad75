//! Test support: a stand-in for lanyardd on a Unix socket in a scratch directory, speaking the
//! real framing, one thread per connection. Never touches /run/lanyard.

use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use lanyard_proto::frame::{self, decode, encode, read_body};
use lanyard_proto::{Group, Passwd, Request, Response};

type Answer = dyn Fn(&Request) -> Vec<Response> + Send + Sync;

#[derive(Debug)]
pub struct FakeAgent {
    dir: PathBuf,
    socket: PathBuf,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Request>>>,
}

/// A fresh directory under the system's temp dir, unique within this test binary's run.
pub fn scratch_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("nss-lanyard-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl FakeAgent {
    /// Listens at once; every request on every connection gets the frames `answer` returns.
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

    pub fn path(&self) -> &Path {
        &self.socket
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

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
                return; // the module hung up early (endpwent mid-stream): fine
            }
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

pub fn group(name: &str, gid: u32, members: &[&str]) -> Group {
    Group { name: name.into(), gid, members: members.iter().map(|&m| m.into()).collect() }
}

/// A small directory with one of every kind of answer.
pub fn directory(request: &Request) -> Vec<Response> {
    let answer = match request {
        Request::UserByName(name) => match name.as_str() {
            "alice" => Response::User(user("alice", 10001)),
            "bob" => Response::User(user("bob", 10002)),
            "nul" => Response::User(Passwd { gecos: "a\0b".into(), ..user("nul", 10003) }),
            "down" => Response::Unavailable("directory down, nothing cached".into()),
            "secret" => Response::Refused("not for you".into()),
            "confused" => Response::GroupIds(vec![1]),
            _ => Response::NotFound,
        },
        Request::UserByUid(10001) => Response::User(user("alice", 10001)),
        Request::GroupByName(name) if name == "staff" => Response::Group(group("staff", 50, &["alice", "bob"])),
        Request::GroupByGid(50) => Response::Group(group("staff", 50, &["alice", "bob"])),
        Request::GroupsOfUser(name) if name == "alice" => Response::GroupIds(vec![100, 50, 51, 50, 7]),
        Request::EnumerateUsers => {
            return vec![
                Response::UserPage(vec![user("alice", 10001), user("bob", 10002)]),
                Response::UserPage(vec![]),
                Response::UserPage(vec![Passwd { shell: "\0".into(), ..user("nul", 10003) }, user("carol", 10004)]),
                Response::EndOfPages,
            ];
        }
        Request::EnumerateGroups => {
            return vec![
                Response::GroupPage(vec![group("staff", 50, &["alice", "bob"])]),
                Response::GroupPage(vec![group("empty", 51, &[])]),
                Response::EndOfPages,
            ];
        }
        _ => Response::NotFound,
    };
    vec![answer]
}
