//! The directory's side of the checklist, server by server, with the agent's own TLS settings
//! ([`crate::directory::tls`]) so a pass here means the agent can connect too.

use ldap3::{Scope, SearchOptions};

use super::Step;
use crate::config::{Config, Server, Transport};
use crate::ctl::now;
use crate::directory::discovery;
use crate::directory::inspect::{self, TlsReport};
use crate::directory::pool::ldap3_result_text;
use crate::directory::tls;

const EXPIRY_WARNING_DAYS: i64 = crate::ctl::EXPIRY_WARNING_DAYS;

const HINT_DNS: &str = "check the host names in directory.uris and this host's resolver (/etc/resolv.conf)";
const HINT_SRV: &str = "check directory.domain, the domain's SRV records (`host -t SRV _ldap._tcp.DOMAIN`; \
                        _ldaps._tcp with tls = \"ldaps\") and this host's resolver (/etc/resolv.conf)";
const HINT_TCP: &str = "is the directory server running, listening on that port, and reachable through firewalls?";
const HINT_STARTTLS: &str = "the server does not offer StartTLS: give it a certificate and key, or use an ldaps:// URI";
const HINT_TLS: &str = "directory.ca_file must hold the CA that signed the server's certificate, and the \
                        certificate must name the host of the URI in its subjectAltName";
const HINT_BIND: &str = "check directory.bind_dn and the password in directory.bind_password_file";
const HINT_BASE: &str = "check directory.base, and that the service account may read it (the server's ACLs)";
const HINT_USER: &str = "check directory.users.base and directory.users.filter, and the service account's read access";
const HINT_PLAIN: &str = "make the server refuse binds without TLS (OpenLDAP: `security simple_bind=...` or \
                          `tls=1`; 389 DS: nsslapd-require-secure-binds: on)";

pub fn check(config: &Config) -> Vec<Step> {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return vec![Step::fail("runtime", e.to_string(), "lanyardctl could not start its event loop")],
    };
    let tls = match tls::client_config(&config.directory.trust) {
        Ok(tls) => tls,
        Err(e) => return vec![Step::fail("tls config", e, HINT_TLS)],
    };
    let mut steps = Vec::new();
    let servers = match &config.directory.discovery {
        None => config.directory.servers.clone(),
        Some(srv) => {
            let name = format!("srv {}", srv.record_name());
            let found = runtime.block_on(discovery::lookup(srv)).and_then(|(records, ttl)| {
                let servers = discovery::servers_from(records, srv, &mut discovery::os_random())?;
                Ok((servers, ttl))
            });
            match found {
                Ok((servers, ttl)) => {
                    let list: Vec<&str> = servers.iter().map(|s| s.uri.as_str()).collect();
                    steps.push(Step::ok(
                        name,
                        format!("{} (in RFC 2782 order; TTL {} s)", list.join(", "), ttl.as_secs()),
                    ));
                    servers
                }
                Err(e) => return vec![Step::fail(name, e, HINT_SRV)],
            }
        }
    };
    for server in &servers {
        runtime.block_on(check_server(config, server, tls.clone(), &mut steps));
    }
    steps
}

/// The steps for one server, stopping at its first failure.
async fn check_server(
    config: &Config,
    server: &Server,
    tls: std::sync::Arc<rustls::ClientConfig>,
    steps: &mut Vec<Step>,
) {
    let uri = &server.uri;
    let timeout = config.directory.timeout;
    let addresses = match inspect::resolve(server, timeout).await {
        Ok(addresses) => {
            let list: Vec<String> = addresses.iter().map(|a| a.ip().to_string()).collect();
            steps.push(Step::ok(format!("dns {uri}"), format!("{} is {}", server.host, list.join(", "))));
            addresses
        }
        Err(e) => return steps.push(Step::fail(format!("dns {uri}"), e, HINT_DNS)),
    };
    let mut tcp = match inspect::connect(&addresses, timeout).await {
        Ok(tcp) => {
            let peer = tcp.peer_addr().map(|a| a.to_string()).unwrap_or_default();
            steps.push(Step::ok(format!("tcp {uri}"), format!("connected to {peer}")));
            tcp
        }
        Err(e) => return steps.push(Step::fail(format!("tcp {uri}"), e, HINT_TCP)),
    };
    match server.transport {
        Transport::DangerPlaintext => steps.push(Step::warn(
            format!("tls {uri}"),
            "tls = \"danger-plaintext\": the bind password and every answer cross the network in clear",
            "use tls = \"starttls\" (the default) or an ldaps:// URI",
        )),
        transport => {
            if transport == Transport::StartTls {
                if let Err(e) = inspect::starttls(&mut tcp, timeout).await {
                    return steps.push(Step::fail(format!("starttls {uri}"), e, HINT_STARTTLS));
                }
                steps.push(Step::ok(format!("starttls {uri}"), "the server agreed to StartTLS"));
            }
            match inspect::handshake(tcp, server, tls.clone(), timeout).await {
                Ok(report) => steps.push(tls_step(uri, &report)),
                Err(e) => return steps.push(Step::fail(format!("tls {uri}"), e, HINT_TLS)),
            }
        }
    }
    let account = config.directory.service_account.as_ref();
    let mut ldap = match inspect::service_session(server, account, tls, timeout).await {
        Ok(ldap) => {
            steps.push(match account {
                Some(account) => Step::ok(format!("bind {uri}"), format!("bound as {}", account.dn)),
                None => Step::warn(
                    format!("bind {uri}"),
                    "no directory.bind_dn: searching anonymously",
                    "set directory.bind_dn and bind_password_file for a read-only service account",
                ),
            });
            ldap
        }
        Err(e) => return steps.push(Step::fail(format!("bind {uri}"), e, HINT_BIND)),
    };
    let base = &config.directory.base;
    match ldap.with_timeout(timeout).search(base, Scope::Base, "(objectClass=*)", vec!["1.1"]).await {
        Ok(result) if result.1.rc == 0 && !result.0.is_empty() => {
            steps.push(Step::ok(format!("base {uri}"), format!("{base} is readable")));
        }
        Ok(result) => {
            let why = ldap3_result_text(result.1.rc, &result.1.text);
            return steps.push(Step::fail(format!("base {uri}"), format!("searching {base}: {why}"), HINT_BASE));
        }
        Err(e) => return steps.push(Step::fail(format!("base {uri}"), format!("searching {base}: {e}"), HINT_BASE)),
    }
    let users = &config.directory.users;
    let sample = ldap
        .with_search_options(SearchOptions::new().sizelimit(1))
        .with_timeout(timeout)
        .search(&users.base, Scope::Subtree, &users.filter, vec![users.name.as_str()])
        .await;
    match sample {
        // sizeLimitExceeded (4) with one entry: there are more, as expected.
        Ok(result) if matches!(result.1.rc, 0 | 4) => match result.0.into_iter().next() {
            Some(entry) => {
                let entry = ldap3::SearchEntry::construct(entry);
                let name = entry.attrs.get(&users.name).and_then(|v| v.first()).cloned().unwrap_or_default();
                steps.push(Step::ok(format!("users {uri}"), format!("found {name:?} ({})", entry.dn)));
            }
            None => steps.push(Step::warn(
                format!("users {uri}"),
                format!("no entry under {} matches {}", users.base, users.filter),
                HINT_USER,
            )),
        },
        Ok(result) => {
            let why = ldap3_result_text(result.1.rc, &result.1.text);
            return steps.push(Step::fail(format!("users {uri}"), why, HINT_USER));
        }
        Err(e) => return steps.push(Step::fail(format!("users {uri}"), e.to_string(), HINT_USER)),
    }
    let _ = ldap.unbind().await;
    if uri.starts_with("ldap://") {
        let dn = account.map(|a| a.dn.as_str()).unwrap_or("cn=lanyard-doctor");
        steps.push(plaintext_step(uri, inspect::plaintext_bind_result(server, dn, timeout).await));
    }
}

fn tls_step(uri: &str, report: &TlsReport) -> Step {
    let names = if report.names.is_empty() { "no subjectAltName".to_owned() } else { report.names.join(", ") };
    let mut detail = format!("{} {}, certificate for {names}", report.version, report.cipher_suite);
    match report.days_left(now() as i64) {
        Some(days) if days < EXPIRY_WARNING_DAYS => {
            detail += &format!(", expires in {days} days");
            Step::warn(format!("tls {uri}"), detail, "renew the server's certificate before it expires")
        }
        Some(days) => Step::ok(format!("tls {uri}"), format!("{detail}, expires in {days} days")),
        None => Step::ok(format!("tls {uri}"), detail),
    }
}

/// What a deliberately wrong password sent in clear said about the server.
fn plaintext_step(uri: &str, result: Result<u32, String>) -> Step {
    let name = format!("plaintext {uri}");
    match result {
        Ok(13) => Step::ok(name, "a simple bind without TLS is refused (confidentialityRequired)"),
        Ok(49) => Step::warn(
            name,
            "a simple bind without TLS was evaluated (invalidCredentials for a dummy password): \
             the server would accept passwords sent in clear",
            HINT_PLAIN,
        ),
        Ok(0) => Step::warn(name, "a simple bind without TLS was accepted", HINT_PLAIN),
        Ok(rc) => Step::ok(name, format!("a simple bind without TLS is refused: {}", ldap3_result_text(rc, ""))),
        Err(e) => Step::warn(name, format!("could not test: {e}"), HINT_PLAIN),
    }
}
