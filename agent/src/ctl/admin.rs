//! `lanyardctl cache`, `metrics`, `config check` and `auth-test`.

use std::path::Path;

use lanyard_proto::{Invalidation, PamContext, Request, Response, Secret};

use super::password::{euid, read_password};
use super::{Exit, ask, unexpected, unreachable};
use crate::cli::InvalidateTarget;
use crate::config::Config;

pub fn invalidate(socket: &Path, what: Option<InvalidateTarget>) -> Exit {
    let what = match what {
        Some(InvalidateTarget::User { name }) => Invalidation::User(name),
        Some(InvalidateTarget::Group { name }) => Invalidation::Group(name),
        Some(InvalidateTarget::All) | None => Invalidation::All,
    };
    done_or_refused(socket, &Request::Invalidate(what), &Response::Invalidated, "invalidated")
}

pub fn clear(socket: &Path) -> Exit {
    done_or_refused(socket, &Request::ClearCache, &Response::Cleared, "cleared")
}

fn done_or_refused(socket: &Path, request: &Request, done: &Response, word: &str) -> Exit {
    match ask(socket, request) {
        Err(e) => unreachable(socket, &e),
        Ok(response) if &response == done => {
            println!("{word}");
            Exit::Success
        }
        Ok(Response::Refused(why)) => {
            eprintln!("refused: {why}");
            Exit::Negative
        }
        Ok(Response::Unavailable(why)) => {
            eprintln!("unavailable: {why}");
            Exit::Unavailable
        }
        Ok(other) => unexpected(&other),
    }
}

pub fn metrics(socket: &Path) -> Exit {
    match ask(socket, &Request::Metrics) {
        Err(e) => unreachable(socket, &e),
        Ok(Response::Metrics(text)) => {
            print!("{text}");
            Exit::Success
        }
        Ok(other) => unexpected(&other),
    }
}

pub fn config_check(path: &Path) -> Exit {
    match Config::load(path) {
        Ok(_) => {
            println!("ok");
            Exit::Success
        }
        Err(e) => {
            println!("{e}");
            Exit::Negative
        }
    }
}

pub fn auth_test(socket: &Path, user: &str) -> Exit {
    if euid() != 0 {
        eprintln!("auth-test: only root may test logins");
        return Exit::Negative;
    }
    let password = match read_password(&format!("password for {user}: ")) {
        Ok(password) => password,
        Err(e) => {
            eprintln!("auth-test: cannot read the password: {e}");
            return Exit::Unavailable;
        }
    };
    let request = Request::Authenticate {
        user: user.to_owned(),
        password: Secret::new(password.as_bytes().to_vec()),
        context: PamContext { service: "lanyardctl".into(), ..PamContext::default() },
    };
    let response = match ask(socket, &request) {
        Err(e) => return unreachable(socket, &e),
        Ok(response) => response,
    };
    let exit = match &response {
        Response::Authenticated { .. } => Exit::Success,
        Response::Unavailable(_) => Exit::Unavailable,
        Response::WrongPassword
        | Response::NotFound
        | Response::TooManyAttempts { .. }
        | Response::Refused(_)
        | Response::Denied(_) => Exit::Negative,
        other => return unexpected(other),
    };
    println!("{user}: {}", response.summary());
    exit
}
