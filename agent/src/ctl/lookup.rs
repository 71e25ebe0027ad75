//! `lanyardctl user` and `group`: the answer as a `passwd`/`group` line, and its source.

use std::path::Path;

use lanyard_proto::{Lookup, Request, Response, Source, TracedAnswer};

use super::{Exit, ago, ask, span, unexpected, unreachable};

pub fn user(socket: &Path, key: &str) -> Exit {
    let request = match key.parse::<u32>() {
        Ok(uid) => Lookup::UserByUid(uid),
        Err(_) => Lookup::UserByName(key.to_owned()),
    };
    traced(socket, request, "user", key)
}

pub fn group(socket: &Path, key: &str) -> Exit {
    let request = match key.parse::<u32>() {
        Ok(gid) => Lookup::GroupByGid(gid),
        Err(_) => Lookup::GroupByName(key.to_owned()),
    };
    traced(socket, request, "group", key)
}

fn traced(socket: &Path, request: Lookup, kind: &str, key: &str) -> Exit {
    let (answer, source) = match ask(socket, &Request::Trace(request)) {
        Err(e) => return unreachable(socket, &e),
        Ok(Response::Traced { answer, source }) => (answer, source),
        Ok(Response::Refused(why)) => {
            eprintln!("refused: {why}");
            return Exit::Negative;
        }
        Ok(other) => return unexpected(&other),
    };
    let exit = match &answer {
        TracedAnswer::User(p) => {
            println!("{}:x:{}:{}:{}:{}:{}", p.name, p.uid, p.gid, p.gecos, p.home, p.shell);
            Exit::Success
        }
        TracedAnswer::Group(g) => {
            println!("{}:x:{}:{}", g.name, g.gid, g.members.join(","));
            Exit::Success
        }
        TracedAnswer::GroupIds(gids) => {
            println!("{}", gids.iter().map(u32::to_string).collect::<Vec<_>>().join(" "));
            Exit::Success
        }
        TracedAnswer::NotFound => {
            println!("{kind} {key}: not found");
            Exit::Negative
        }
        TracedAnswer::Unavailable(why) => {
            println!("{kind} {key}: unavailable: {why}");
            Exit::Unavailable
        }
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
