//! `lanyard-ask SOCKET REQUEST [ARG...]`: sends one raw `lanyard_proto::Request` to the agent and
//! prints every response it gets for it, two lines each:
//!
//! ```text
//! response: <the Response's Debug>
//! frame: <the Response encoded as a frame, in hex>
//! ```
//!
//! An enumeration prints each page and the closing `EndOfPages`. Exits 0 when it got an answer,
//! 1 when the agent could not be asked (the reason on stderr), 2 for a bad command line.
//! Passwords come from stdin, one a line, never from the command line.
//!
//! The authorization tests run it as another uid (`setpriv --reuid U --regid G --clear-groups`),
//! so the agent sees that uid through `SO_PEERCRED`. Requests:
//!
//! | REQUEST [ARG...] | stdin | `Request` |
//! | --- | --- | --- |
//! | `user-by-name NAME`, `user-by-uid UID`, `group-by-name NAME`, `group-by-gid GID`, `groups-of-user NAME` | | the lookup |
//! | `enumerate-users`, `enumerate-groups` | | the enumeration |
//! | `authenticate USER` | password | `Authenticate` |
//! | `check-account USER` | | `CheckAccount` |
//! | `change-password USER` | new, then current | `ChangePassword` with `old` |
//! | `reset-password USER` | new | `ChangePassword` without `old` |
//! | `open-session USER` | | `OpenSession` |
//! | `invalidate user NAME`, `invalidate group NAME`, `invalidate all` | | `Invalidate` |
//! | `status`, `metrics`, `clear-cache` | | the same |
//! | `trace LOOKUP ARG` (LOOKUP one of the five lookups above) | | `Trace` |

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use lanyard_proto::frame::{self, MAX_RESPONSE};
use lanyard_proto::{Client, Deadlines, Invalidation, Lookup, PamContext, Request, Response, Secret};

/// At most this many frames for one enumeration (the fixture's directory fits in a few).
const MAX_FRAMES: usize = 1000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((socket, words)) = args.split_first() else {
        eprintln!("usage: lanyard-ask SOCKET REQUEST [ARG...]");
        return ExitCode::from(2);
    };
    let request = match request(words) {
        Ok(request) => request,
        Err(why) => {
            eprintln!("lanyard-ask: {why}");
            return ExitCode::from(2);
        }
    };
    let streams = matches!(request, Request::EnumerateUsers | Request::EnumerateGroups);
    let deadlines = Deadlines { connect: Duration::from_secs(2), reply: Duration::from_secs(10) };
    let mut client = match Client::connect(&PathBuf::from(socket), deadlines) {
        Ok(client) => client,
        Err(e) => {
            eprintln!("lanyard-ask: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = client.send(&request) {
        eprintln!("lanyard-ask: {e}");
        return ExitCode::from(1);
    }
    for _ in 0..MAX_FRAMES {
        let response = match client.receive() {
            Ok(response) => response,
            Err(e) => {
                eprintln!("lanyard-ask: {e}");
                return ExitCode::from(1);
            }
        };
        println!("response: {response:?}");
        match frame::encode(&response, MAX_RESPONSE) {
            Ok(bytes) => println!("frame: {}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()),
            Err(e) => {
                eprintln!("lanyard-ask: cannot encode the response again: {e}");
                return ExitCode::from(1);
            }
        }
        if !streams || !matches!(response, Response::UserPage(_) | Response::GroupPage(_)) {
            return ExitCode::SUCCESS;
        }
    }
    eprintln!("lanyard-ask: more than {MAX_FRAMES} frames");
    ExitCode::from(1)
}

fn context() -> PamContext {
    PamContext { service: "lanyard-ask".into(), ..PamContext::default() }
}

/// The next line of stdin, without its line end.
fn password() -> Result<Secret, String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| format!("reading a password from stdin: {e}"))?;
    if !line.ends_with('\n') {
        return Err("expected a password line on stdin".into());
    }
    line.pop();
    Ok(Secret::new(line.into_bytes()))
}

fn number(text: &str) -> Result<u32, String> {
    text.parse().map_err(|_| format!("{text:?} is not a number"))
}

fn lookup(words: &[String]) -> Result<Lookup, String> {
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    Ok(match words.as_slice() {
        ["user-by-name", name] => Lookup::UserByName((*name).into()),
        ["user-by-uid", uid] => Lookup::UserByUid(number(uid)?),
        ["group-by-name", name] => Lookup::GroupByName((*name).into()),
        ["group-by-gid", gid] => Lookup::GroupByGid(number(gid)?),
        ["groups-of-user", name] => Lookup::GroupsOfUser((*name).into()),
        other => return Err(format!("not a lookup: {other:?}")),
    })
}

fn request(words: &[String]) -> Result<Request, String> {
    let strs: Vec<&str> = words.iter().map(String::as_str).collect();
    Ok(match strs.as_slice() {
        ["user-by-name" | "user-by-uid" | "group-by-name" | "group-by-gid" | "groups-of-user", _] => {
            match lookup(words)? {
                Lookup::UserByName(name) => Request::UserByName(name),
                Lookup::UserByUid(uid) => Request::UserByUid(uid),
                Lookup::GroupByName(name) => Request::GroupByName(name),
                Lookup::GroupByGid(gid) => Request::GroupByGid(gid),
                Lookup::GroupsOfUser(name) => Request::GroupsOfUser(name),
            }
        }
        ["enumerate-users"] => Request::EnumerateUsers,
        ["enumerate-groups"] => Request::EnumerateGroups,
        ["authenticate", user] => {
            Request::Authenticate { user: (*user).into(), password: password()?, context: context() }
        }
        ["check-account", user] => Request::CheckAccount { user: (*user).into(), context: context() },
        ["change-password", user] => {
            let new = password()?;
            let old = password()?;
            Request::ChangePassword { user: (*user).into(), old: Some(old), new, context: context() }
        }
        ["reset-password", user] => {
            Request::ChangePassword { user: (*user).into(), old: None, new: password()?, context: context() }
        }
        ["open-session", user] => Request::OpenSession { user: (*user).into(), context: context() },
        ["invalidate", "user", name] => Request::Invalidate(Invalidation::User((*name).into())),
        ["invalidate", "group", name] => Request::Invalidate(Invalidation::Group((*name).into())),
        ["invalidate", "all"] => Request::Invalidate(Invalidation::All),
        ["status"] => Request::Status,
        ["metrics"] => Request::Metrics,
        ["clear-cache"] => Request::ClearCache,
        ["trace", rest @ ..] if rest.len() == 2 => Request::Trace(lookup(&words[1..])?),
        other => return Err(format!("unknown request {other:?}")),
    })
}
