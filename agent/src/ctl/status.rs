//! `lanyardctl status`. The agent does not (yet) report its server's TLS version and
//! certificate; when it leaves them empty, they are found by probing that server here, with
//! the agent's own TLS settings from the config.

use std::path::Path;
use std::time::Duration;

use lanyard_proto::{AgentStatus, Request, Response};

use super::{Exit, ago, ask, now, span, unexpected, unreachable};
use crate::config::Config;
use crate::directory::{inspect, tls};

/// Budget for each step of the TLS probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// A certificate expiring sooner than this is worth a warning.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

pub fn run(socket: &Path, config: &Path) -> Exit {
    let mut status = match ask(socket, &Request::Status) {
        Err(e) => return unreachable(socket, &e),
        Ok(Response::Status(status)) => *status,
        Ok(other) => return unexpected(&other),
    };
    let mut probe_note = None;
    if status.tls_version.is_none()
        && let Some(server) = status.server.clone()
    {
        probe_note = fill_tls(&mut status, &server, config).err();
    }
    print(&status, probe_note.as_deref());
    if status.online { Exit::Success } else { Exit::Negative }
}

/// Probes `server` (as the config describes it) for its TLS version and certificate.
fn fill_tls(status: &mut AgentStatus, server: &str, config: &Path) -> Result<(), String> {
    let config = Config::load(config).map_err(|e| format!("not probed: {e}"))?;
    // A server from `uris`, or one the SRV records of `domain` named.
    let server = config
        .directory
        .server_named(server)
        .ok_or_else(|| format!("not probed: {server} is not in {}", config.path.display()))?;
    let tls = tls::client_config(&config.directory.trust)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    match runtime.block_on(inspect::probe_tls(&server, tls, PROBE_TIMEOUT))? {
        None => status.tls_version = Some("none (danger-plaintext)".into()),
        Some(report) => {
            status.tls_version = Some(report.version);
            status.certificate_not_after = report.not_after.and_then(|t| u64::try_from(t).ok());
        }
    }
    Ok(())
}

fn print(status: &AgentStatus, probe_note: Option<&str>) {
    let state = if status.online { "online" } else { "offline" };
    println!("agent:        {state} for {}", span(status.state_secs));
    println!("server:       {}", status.server.as_deref().unwrap_or("none yet"));
    match (&status.tls_version, probe_note) {
        (Some(version), _) => println!("tls:          {version}"),
        (None, Some(note)) => println!("tls:          unknown ({note})"),
        (None, None) => println!("tls:          unknown"),
    }
    if let Some(not_after) = status.certificate_not_after {
        let days = (not_after as i64 - now() as i64).div_euclid(86_400);
        println!("certificate:  expires in {days} days");
        if days < EXPIRY_WARNING_DAYS {
            println!("warning:      the server's certificate expires in {days} days: renew it");
        }
    }
    match status.last_contact {
        Some(t) => println!("last contact: {}", ago(t)),
        None => println!("last contact: never"),
    }
    let range = match (status.oldest_answer, status.newest_answer) {
        (Some(oldest), Some(newest)) => format!("; oldest fetched {}, newest {}", ago(oldest), ago(newest)),
        _ => String::new(),
    };
    println!(
        "disk cache:   {} answers ({} users, {} groups), {} offline verifiers{range}",
        status.disk_answers, status.disk_users, status.disk_groups, status.offline_verifiers
    );
    println!("memory:       {} answers", status.memory_answers);
}
