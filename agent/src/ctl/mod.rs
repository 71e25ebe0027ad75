//! `lanyardctl`'s commands. Each returns what the process exits with ([`Exit`]); the binary
//! only parses [`CtlArgs`] and calls [`run`].
//!
//! - `status`: the agent's [`lanyard_proto::AgentStatus`], TLS details filled in by probing.
//! - `lookup`: `user` and `group`, traced to their source.
//! - `admin`: `cache`, `metrics`, `config check`, `auth-test`.
//! - `password`: reading a password without echo.
//! - `generate`: man pages and completions from [`crate::cli`].

mod admin;
mod generate;
mod lookup;
mod password;
mod status;

pub use status::EXPIRY_WARNING_DAYS;

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lanyard_proto::{Client, ClientError, Deadlines, Request, Response};

use crate::cli::{CacheCommand, ConfigCommand, CtlArgs, CtlCommand};

/// How `lanyardctl` exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Online, found, done.
    Success = 0,
    /// A definite negative answer: offline, not found, refused, a failed check.
    Negative = 1,
    /// The agent (or, through it, the directory) could not be asked.
    Unavailable = 2,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

pub fn run(args: CtlArgs) -> ExitCode {
    let socket = args.socket.as_path();
    let exit = match args.command {
        CtlCommand::Status => status::run(socket, &args.config),
        CtlCommand::User { key } => lookup::user(socket, &key),
        CtlCommand::Group { key } => lookup::group(socket, &key),
        CtlCommand::Cache(CacheCommand::Invalidate { what }) => admin::invalidate(socket, what),
        CtlCommand::Cache(CacheCommand::Clear) => admin::clear(socket),
        CtlCommand::Metrics => admin::metrics(socket),
        CtlCommand::Config(ConfigCommand::Check { path }) => {
            admin::config_check(path.as_deref().unwrap_or(&args.config))
        }
        CtlCommand::AuthTest { user } => admin::auth_test(socket, &user),
        CtlCommand::Doctor(doctor) => crate::doctor::run(&args.config, &doctor),
        CtlCommand::Generate(what) => generate::run(what),
    };
    exit.into()
}

/// One request to the agent. The reply deadline leaves room for the agent's own budget.
fn ask(socket: &Path, request: &Request) -> Result<Response, ClientError> {
    Client::call(socket, request, Deadlines { connect: Duration::from_secs(2), reply: Duration::from_secs(10) })
}

/// Prints why the agent could not be asked; [`Exit::Unavailable`].
fn unreachable(socket: &Path, error: &ClientError) -> Exit {
    eprintln!("lanyardctl: {} ({error})", socket.display());
    Exit::Unavailable
}

/// An answer this command does not expect (a newer or older agent).
fn unexpected(response: &Response) -> Exit {
    eprintln!("lanyardctl: unexpected answer from the agent: {}", response.summary());
    Exit::Unavailable
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `3d 4h`, `5m 2s`, `12s`: the largest unit and the next one.
pub fn span(secs: u64) -> String {
    const UNITS: [(u64, &str); 4] = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let i = UNITS.iter().position(|&(size, _)| secs >= size).unwrap_or(UNITS.len() - 1);
    let (size, unit) = UNITS[i];
    let mut text = format!("{}{unit}", secs / size);
    if let Some(&(next, next_unit)) = UNITS.get(i + 1) {
        let rest = secs % size / next;
        if rest > 0 {
            text += &format!(" {rest}{next_unit}");
        }
    }
    text
}

/// How long ago a Unix time was: `5m 2s ago`.
fn ago(unix: u64) -> String {
    format!("{} ago", span(now().saturating_sub(unix)))
}

#[cfg(test)]
mod tests {
    use super::span;

    #[test]
    fn spans_show_the_two_largest_units() {
        assert_eq!(span(0), "0s");
        assert_eq!(span(59), "59s");
        assert_eq!(span(60), "1m");
        assert_eq!(span(3_725), "1h 2m");
        assert_eq!(span(90_061), "1d 1h");
        assert_eq!(span(86_400 + 5), "1d");
    }
}
