//! `directory.domain`: the agent finds its servers in DNS SRV records (`_ldap._tcp.example.org`,
//! RFC 2782) and keeps them up to date.
//!
//! Each test makes private network and mount namespaces ([`PrivateDns`]) where dnsmasq answers
//! on 127.0.0.1:53 and `/etc/resolv.conf` names it; the slapds (a provider and its syncrepl
//! consumer, certificates naming `ldap1.example.org` and `ldap2.example.org`) and the agent run
//! in them, the servers on the namespace's loopback, on ports of their own. The agent's config
//! has `domain = "example.org"` and no `uris`. `getent` and pamtester reach the agent through
//! its socket, from the host.
//!
//! Lookups and logins are of bulk users nobody asked for before, so each success is an answer
//! from a server, and slapd's log says which. Nothing measures time: every wait is a poll
//! bounded in time, every command runs under the harness's hang guard.

use std::process::Command;
use std::time::Duration;

use lanyard_proto::{Client, Deadlines, Request, Response};
use lanyard_tests::dns::{DOMAIN, PrivateDns, Srv, Zone};
use lanyard_tests::fixture::{bulk_user_name, user_dn};
use lanyard_tests::pam::pam_error;
use lanyard_tests::{
    Agent, AgentConfig, HANG_GUARD, Launch, Namespace, OfflineConfig, Output, Pam, Slapd, lanyardctl_path, poll_until,
    run_bounded,
};

use crate::common::{NSS_STATUS_UNAVAIL, assert_nss_status, getpwnam_status};

/// The provider's name in DNS.
const LDAP1: &str = "ldap1.example.org";
/// The consumer's.
const LDAP2: &str = "ldap2.example.org";

const FAILBACK_LIMIT: Duration = Duration::from_secs(30);
/// The agent looks the records up again when their TTL runs out, at the earliest 30 s after
/// the last lookup (`MIN_REFRESH`); the bound leaves room beyond that.
const REFRESH_LIMIT: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(500);

/// The DNS, both servers and an agent that knows only the domain.
struct Site {
    ns: Namespace,
    pam: Pam,
    agent: Agent,
    consumer: Slapd,
    provider: Slapd,
    // Last: the namespaces outlive everything that runs in them.
    dns: PrivateDns,
}

fn port(slapd: &Slapd) -> u16 {
    slapd.starttls_addr().port()
}

/// The URI the agent makes of an SRV record naming `name` and `slapd`'s StartTLS port.
fn uri(name: &str, slapd: &Slapd) -> String {
    format!("ldap://{name}:{}", port(slapd))
}

/// `zone` says what dnsmasq serves at first, given the provider and the consumer.
fn site(zone: impl Fn(&Slapd, &Slapd) -> Zone, failback: &str) -> Site {
    let mut dns = PrivateDns::start().expect("making the namespaces");
    let provider = Slapd::start_provider_in(dns.net(), &[LDAP1, LDAP2]).expect("starting the provider");
    let consumer = provider.start_consumer().expect("starting the consumer");
    dns.serve(&zone(&provider, &consumer)).expect("starting dnsmasq");
    // One CA signed the certificate both present; the reader's password is replicated.
    let config = AgentConfig::new(Vec::new(), provider.ca_pem(), provider.bind_secret())
        .domain(DOMAIN)
        .directory_line(&format!("failback = \"{failback}\""));
    let agent = Agent::start_with(&config, &Launch::default().namespaces_of(dns.pid())).expect("starting lanyardd");
    let ns = Namespace::for_agent(&agent).expect("preparing the namespace");
    let pam = Pam::for_agent(&agent).expect("preparing the PAM stack");
    Site { ns, pam, agent, consumer, provider, dns }
}

fn both_hosts() -> Vec<String> {
    vec![LDAP1.into(), LDAP2.into()]
}

/// The server the agent last connected to, as `lanyardctl status` shows it.
fn server_in_use(agent: &Agent) -> Option<String> {
    match Client::call(&agent.socket(), &Request::Status, Deadlines::default()).expect("asking for the status") {
        Response::Status(status) => status.server,
        other => panic!("expected a status, got {other:?}"),
    }
}

fn lookup_ok(out: &Output, n: u32) -> bool {
    let line = format!("{}:x:{}:10000:Bulk User {n}:/home/{0}:/bin/sh\n", bulk_user_name(n), 20000 + n);
    out.code() == Some(0) && out.stdout() == line
}

fn login(pam: &Pam, n: u32) -> Output {
    pam.authenticate(&bulk_user_name(n), &format!("bulk-{n}-Pass")).expect("pamtester ran (hang guard)")
}

fn searched(slapd: &Slapd, mark: usize, n: u32) -> bool {
    Slapd::search_filters(&slapd.log_since(mark)).iter().any(|f| f.contains(&format!("(uid={})", bulk_user_name(n))))
}

/// `lanyardctl` with the agent's socket and config, run inside the namespaces (it resolves the
/// servers' names too).
fn lanyardctl(s: &Site, args: &[&str]) -> Output {
    let mut cmd: Command = s.dns.net().command(lanyardctl_path());
    cmd.arg("--socket").arg(s.agent.socket()).arg("--config").arg(s.agent.config_path()).args(args);
    run_bounded(&mut cmd, &format!("lanyardctl {}", args.join(" ")), HANG_GUARD).expect("lanyardctl ran")
}

#[test]
fn discovery_uses_the_preferred_server_fails_over_and_returns_to_it() {
    // The consumer's record comes first, with the higher (less preferred) priority.
    let zone = |provider: &Slapd, consumer: &Slapd| Zone {
        srv: vec![Srv::new(LDAP2, port(consumer), 20, 0), Srv::new(LDAP1, port(provider), 10, 0)],
        hosts: both_hosts(),
        ttl: 300,
    };
    let mut s = site(zone, "1s");
    let (preferred, other) = (uri(LDAP1, &s.provider), uri(LDAP2, &s.consumer));

    let (mark, n) = (s.provider.log_mark(), 1);
    let out = s.ns.getent("passwd", &[bulk_user_name(n)]).unwrap();
    assert!(lookup_ok(&out, n), "{out}\n--- lanyardd log ---\n{}\n--- dnsmasq ---\n{}", s.agent.log(), s.dns.log());
    let out = login(&s.pam, n);
    assert!(out.code() == Some(0) && pam_error(&out).is_none(), "{out}\n--- lanyardd log ---\n{}", s.agent.log());
    assert_eq!(server_in_use(&s.agent).as_ref(), Some(&preferred), "{}", s.agent.log());
    assert!(searched(&s.provider, mark, n), "the provider did not answer the first lookup");
    assert!(Slapd::bind_attempts(&s.provider.log_since(mark), &user_dn(&bulk_user_name(n))) > 0);
    let log = s.agent.log();
    assert!(log.contains(&format!("directory servers from DNS: {preferred}, {other}")), "{log}");

    // Both tools show the discovered servers, by name, in priority order.
    let doctor = lanyardctl(&s, &["doctor"]).stdout();
    let srv_step = format!("ok    srv _ldap._tcp.{DOMAIN}: {preferred}, {other} (in RFC 2782 order");
    assert!(doctor.contains(&srv_step) && doctor.contains(&format!("ok    tls {preferred}:")), "{doctor}");
    let status = lanyardctl(&s, &["status"]);
    assert!(status.stdout().contains(&format!("server:       {preferred}\n")), "{status}");
    assert!(status.stdout().contains("tls:          TLSv1_3"), "the server named by DNS was not probed: {status}");

    s.provider.kill().expect("killing the provider");
    let (mark, n) = (s.consumer.log_mark(), 2);
    let out = s.ns.getent("passwd", &[bulk_user_name(n)]).unwrap();
    assert!(lookup_ok(&out, n), "{out}\n--- lanyardd log ---\n{}", s.agent.log());
    assert_eq!(server_in_use(&s.agent).as_ref(), Some(&other));
    assert!(searched(&s.consumer, mark, n), "the consumer did not answer with the provider down");

    s.provider.start_again().expect("starting the provider again");
    let mark = s.provider.log_mark();
    let mut n = 10;
    let mut tries = Vec::new();
    let back = poll_until("the agent to return to the provider", FAILBACK_LIMIT, POLL, || {
        n += 1;
        let out = s.ns.getent("passwd", &[bulk_user_name(n)])?;
        let server = server_in_use(&s.agent);
        tries.push((n, lookup_ok(&out, n), server.clone()));
        anyhow::ensure!(lookup_ok(&out, n), "a lookup failed while the consumer was up: {out}");
        Ok((searched(&s.provider, mark, n) && server.as_ref() == Some(&preferred)).then_some(()))
    });
    if let Err(e) = back {
        panic!("{e:#}\ntries (user, answered, server): {tries:?}\n--- lanyardd log ---\n{}", s.agent.log());
    }
    let (mark, n) = (s.provider.log_mark(), n + 1);
    let out = login(&s.pam, n);
    assert!(out.code() == Some(0) && pam_error(&out).is_none(), "{out}\n--- lanyardd log ---\n{}", s.agent.log());
    assert!(Slapd::bind_attempts(&s.provider.log_since(mark), &user_dn(&bulk_user_name(n))) > 0);
}

#[test]
fn discovery_follows_a_changed_record_set() {
    let only =
        |name: &str, slapd: &Slapd| Zone { srv: vec![Srv::new(name, port(slapd), 0, 0)], hosts: both_hosts(), ttl: 1 };
    let mut s = site(|provider, _| only(LDAP1, provider), "30s");
    let first = uri(LDAP1, &s.provider);
    let out = s.ns.getent("passwd", &[bulk_user_name(100)]).unwrap();
    assert!(lookup_ok(&out, 100), "{out}\n--- lanyardd log ---\n{}", s.agent.log());
    assert_eq!(server_in_use(&s.agent).as_ref(), Some(&first));

    // The provider stays up: only the records send the agent elsewhere.
    s.dns.serve(&only(LDAP2, &s.consumer)).expect("restarting dnsmasq with the new records");
    let moved = uri(LDAP2, &s.consumer);
    let mark = s.consumer.log_mark();
    let mut n = 100;
    let mut tries = Vec::new();
    let followed = poll_until("the agent to follow the new records", REFRESH_LIMIT, POLL, || {
        n += 1;
        let out = s.ns.getent("passwd", &[bulk_user_name(n)])?;
        let server = server_in_use(&s.agent);
        tries.push((n, lookup_ok(&out, n), server.clone()));
        anyhow::ensure!(lookup_ok(&out, n), "a lookup failed while both servers were up: {out}");
        Ok((searched(&s.consumer, mark, n) && server.as_ref() == Some(&moved)).then_some(()))
    });
    if let Err(e) = followed {
        panic!("{e:#}\ntries: {tries:?}\n--- lanyardd log ---\n{}\n--- dnsmasq ---\n{}", s.agent.log(), s.dns.log());
    }
    let log = s.agent.log();
    assert!(log.contains(&format!("directory servers from DNS: {moved} (was: {first})")), "{log}");
    assert!(log.contains("replacing a connection to a server no longer in the list"), "{log}");
}

#[test]
fn discovery_without_srv_records_is_unavailable_at_once_says_why_and_recovers() {
    let mut dns = PrivateDns::start().expect("making the namespaces");
    let slapd = Slapd::start_in(dns.net(), &[LDAP1]).expect("starting slapd");
    dns.serve(&Zone { srv: Vec::new(), hosts: vec![LDAP1.into()], ttl: 1 }).expect("starting dnsmasq");
    let config = AgentConfig::for_slapd(&slapd).domain(DOMAIN).offline(OfflineConfig::default().probe_interval("1s"));
    // It starts, though it knows no server.
    let agent = Agent::start_with(&config, &Launch::default().namespaces_of(dns.pid())).expect("starting lanyardd");
    let ns = Namespace::for_agent(&agent).expect("preparing the namespace");

    assert_nss_status(&getpwnam_status(&ns, "alice"), NSS_STATUS_UNAVAIL, &agent);
    let why =
        "no directory server reachable: DNS SRV lookup for _ldap._tcp.example.org failed: no such name (NXDOMAIN)";
    let said = poll_until("the log to say why", Duration::from_secs(15), Duration::from_millis(100), || {
        Ok(agent.log().contains(why).then_some(()))
    });
    said.unwrap_or_else(|e| panic!("{e:#}\n--- lanyardd log ---\n{}", agent.log()));
    assert_nss_status(&getpwnam_status(&ns, "bob"), NSS_STATUS_UNAVAIL, &agent);

    // Records appear: the agent finds the server and comes back online by itself.
    let zone = Zone { srv: vec![Srv::new(LDAP1, port(&slapd), 0, 0)], hosts: vec![LDAP1.into()], ttl: 60 };
    dns.serve(&zone).expect("restarting dnsmasq with a record");
    let online = poll_until("lookups to work once the record exists", Duration::from_secs(60), POLL, || {
        let out = ns.getent("passwd", &["alice"])?;
        Ok((out.code() == Some(0)).then_some(()))
    });
    online.unwrap_or_else(|e| panic!("{e:#}\n--- lanyardd log ---\n{}\n--- dnsmasq ---\n{}", agent.log(), dns.log()));
    assert_eq!(server_in_use(&agent), Some(uri(LDAP1, &slapd)));
}
