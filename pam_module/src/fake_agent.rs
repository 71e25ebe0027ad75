//! Test support: the proto crate's fake agent (`lanyard_proto::testing`, a stand-in for lanyardd
//! on a scratch socket) answering one frame per request, and this crate's sample directory. The
//! integration test includes this file too (`#[path]`), so it uses nothing from the crate.

use lanyard_proto::testing::user;
pub use lanyard_proto::testing::{FakeAgent, scratch_dir};
use lanyard_proto::{Request, Response};

/// A fake agent that answers every request with the one response `answer` returns (PAM
/// requests never stream).
pub fn start(answer: impl Fn(&Request) -> Response + Send + Sync + 'static) -> FakeAgent {
    FakeAgent::start(move |request| vec![answer(request)])
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
