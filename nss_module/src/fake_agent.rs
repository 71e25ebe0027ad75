//! Test support: the proto crate's fake agent (`lanyard_proto::testing`, a stand-in for lanyardd
//! on a scratch socket) and this crate's sample directory for it to answer from.

pub use lanyard_proto::testing::{FakeAgent, scratch_dir};
use lanyard_proto::testing::{group, user};
use lanyard_proto::{Passwd, Request, Response};

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
