//! `lanyardctl user` and `group`: the answer as a `passwd`/`group` line, and its source.

use std::path::Path;

use lanyard_proto::{Request, Response, Source};

use super::{Exit, ago, ask, span, unexpected, unreachable};

pub fn user(socket: &Path, key: &str) -> Exit {
    let request = match key.parse::<u32>() {
        Ok(uid) => Request::UserByUid(uid),
        Err(_) => Request::UserByName(key.to_owned()),
    };
    traced(socket, request, "user", key)
}

pub fn group(socket: &Path, key: &str) -> Exit {
    let request = match key.parse::<u32>() {
        Ok(gid) => Request::GroupByGid(gid),
        Err(_) => Request::GroupByName(key.to_owned()),
    };
    traced(socket, request, "group", key)
}

fn traced(socket: &Path, request: Request, kind: &str, key: &str) -> Exit {
    let (response, source) = match ask(socket, &Request::Trace(Box::new(request))) {
        Err(e) => return unreachable(socket, &e),
        Ok(Response::Traced { response, source }) => (*response, source),
        Ok(Response::Refused(why)) => {
            eprintln!("refused: {why}");
            return Exit::Negative;
        }
        Ok(other) => return unexpected(&other),
    };
    let exit = match &response {
        Response::User(p) => {
            println!("{}:x:{}:{}:{}:{}:{}", p.name, p.uid, p.gid, p.gecos, p.home, p.shell);
            Exit::Success
        }
        Response::Group(g) => {
            println!("{}:x:{}:{}", g.name, g.gid, g.members.join(","));
            Exit::Success
        }
        Response::NotFound => {
            println!("{kind} {key}: not found");
            Exit::Negative
        }
        Response::Refused(why) => {
            println!("{kind} {key}: refused: {why}");
            Exit::Negative
        }
        Response::Unavailable(why) => {
            println!("{kind} {key}: unavailable: {why}");
            Exit::Unavailable
        }
        other => return unexpected(other),
    };
    println!("source: {}", describe(source));
    exit
}

/// `memory (fetched 12s ago)`, `disk (fetched 3m ago, stale)`, `directory`, `nowhere`.
pub fn describe(source: Source) -> String {
    match source {
        Source::Memory { age_secs } => format!("memory (fetched {} ago)", span(age_secs)),
        Source::Disk { fetched_at, stale } => {
            format!("disk (fetched {}{})", ago(fetched_at), if stale { ", stale" } else { "" })
        }
        Source::Directory => "directory".into(),
        Source::Nowhere => "nowhere".into(),
    }
}
