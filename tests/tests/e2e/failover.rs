//! Issue 7, item 7: two directory servers, a provider and a syncrepl consumer of it (both
//! slapd, [`Slapd::start_provider`] and [`Slapd::start_consumer`]), the agent configured with
//! `uris = [provider, consumer]`. Failover when the provider dies, logins in flight included;
//! back to the provider once it returns; and what a hung (SIGSTOPped) provider costs.
//!
//! Found while writing these, and fixed in the agent's pools: it did not go back to the
//! provider once it returned (pooled connections stayed on the consumer: now a connection to
//! a fallback server is replaced once it is `failback` old and a better server is no longer
//! held back), and it got past a hung provider only after several failed requests (the first
//! server's connect could take the whole `directory.timeout`: now each server gets a share,
//! and an operation that stalls on a pooled connection holds its server back and is retried on
//! the next within the same budget).
//!
//! Every lookup and login here is of a bulk user (`user0001`..) nobody has looked up or logged
//! in before: no cached answer and no offline verifier can stand in for the directory, so each
//! success is an answer from one of the two servers. Nothing measures latency; every command
//! runs under the harness's hang guard and every wait is a poll bounded in tries and time.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use lanyard_proto::{AgentStatus, Client, Deadlines, Request, Response};
use lanyard_tests::fixture::{bulk_user_name, user_dn};
use lanyard_tests::pam::pam_error;
use lanyard_tests::{Agent, AgentConfig, Namespace, Output, Pam, Slapd, poll_until};

/// `userNNNN`'s passwd line in the fixture.
fn bulk_line(n: u32) -> String {
    format!("{}:x:{}:10000:Bulk User {n}:/home/{0}:/bin/sh\n", bulk_user_name(n), 20000 + n)
}

/// `userNNNN`'s password in the fixture.
fn bulk_password(n: u32) -> String {
    format!("bulk-{n}-Pass")
}

/// Both servers and an agent configured with the provider first, then the consumer.
struct Pair {
    ns: Namespace,
    pam: Pam,
    agent: Agent,
    consumer: Slapd,
    provider: Slapd,
}

/// `failback`: the agent's `[directory] failback`.
fn pair(timeout: &str, failback: &str) -> Pair {
    let provider = Slapd::start_provider().expect("starting the provider");
    let consumer = provider.start_consumer().expect("starting the consumer");
    let uris = vec![provider.uri_starttls(), consumer.uri_starttls()];
    // One CA signed both servers' certificate; the reader's password is replicated.
    let config = AgentConfig::new(uris, provider.ca_pem(), provider.bind_secret())
        .timeout(timeout)
        .directory_line(&format!("failback = \"{failback}\""));
    let agent = Agent::start(&config).expect("starting lanyardd");
    let ns = Namespace::for_agent(&agent).expect("preparing the namespace");
    let pam = Pam::for_agent(&agent).expect("preparing the PAM stack");
    Pair { ns, pam, agent, consumer, provider }
}

/// What `lanyardctl status` shows, asked over the agent's socket.
fn status(agent: &Agent) -> AgentStatus {
    match Client::call(&agent.socket(), &Request::Status, Deadlines::default()).expect("asking for the status") {
        Response::Status(status) => *status,
        other => panic!("expected a status, got {other:?}"),
    }
}

/// The server the agent last connected to.
fn server_in_use(agent: &Agent) -> Option<String> {
    status(agent).server
}

fn lookup_ok(out: &Output, n: u32) -> bool {
    out.code() == Some(0) && out.stdout() == bulk_line(n)
}

fn login_ok(out: &Output) -> bool {
    out.code() == Some(0) && pam_error(out).is_none()
}

/// One user's lookup and login during the burst, and where they fell relative to the kill.
#[derive(Debug)]
struct Round {
    n: u32,
    lookup: Output,
    login: Output,
    /// The round began after `kill` returned.
    started_after_kill: bool,
    /// The round ended after `kill` returned.
    ended_after_kill: bool,
}

/// Each thread of the burst runs this many rounds (one user each: lookup, then login).
const THREADS: u32 = 4;
const ROUNDS_PER_THREAD: u32 = 30;
/// Rounds finished before the provider is killed.
const KILL_AFTER: usize = 16;
const _: () = assert!(THREADS * ROUNDS_PER_THREAD <= 300, "the fixture has 300 bulk users");
const _: () = assert!((KILL_AFTER as u32) < THREADS * ROUNDS_PER_THREAD / 2);

#[test]
fn failover_every_lookup_and_login_succeeds_when_the_provider_is_killed_mid_burst() {
    let mut s = pair("3s", "30s");
    let warm = s.ns.getent("passwd", &["alice"]).unwrap();
    assert_eq!(warm.code(), Some(0), "{warm}\n--- lanyardd log ---\n{}", s.agent.log());
    assert_eq!(server_in_use(&s.agent), Some(s.provider.uri_starttls()), "the agent did not start on the provider");

    let consumer_mark = s.consumer.log_mark();
    let agent_mark = s.agent.log_mark();
    let rounds = Mutex::new(Vec::new());
    let done = AtomicUsize::new(0);
    let killed = AtomicBool::new(false);
    let (reached, kill) = std::thread::scope(|scope| {
        for t in 0..THREADS {
            let (ns, pam, rounds, done, killed) = (&s.ns, &s.pam, &rounds, &done, &killed);
            scope.spawn(move || {
                for k in 0..ROUNDS_PER_THREAD {
                    let n = 1 + t * ROUNDS_PER_THREAD + k;
                    let started_after_kill = killed.load(Ordering::SeqCst);
                    let lookup = ns.getent("passwd", &[bulk_user_name(n)]).expect("getent ran (hang guard)");
                    let login =
                        pam.authenticate(&bulk_user_name(n), &bulk_password(n)).expect("pamtester ran (hang guard)");
                    let ended_after_kill = killed.load(Ordering::SeqCst);
                    rounds.lock().unwrap().push(Round { n, lookup, login, started_after_kill, ended_after_kill });
                    done.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        let reached = poll_until("the burst to get going", Duration::from_secs(60), Duration::from_millis(5), || {
            Ok((done.load(Ordering::SeqCst) >= KILL_AFTER).then_some(()))
        });
        let kill = s.provider.kill();
        killed.store(true, Ordering::SeqCst);
        (reached, kill)
        // The scope joins the burst's threads here.
    });
    let rounds = rounds.into_inner().unwrap();
    reached.expect("the burst did not get going");
    kill.expect("killing the provider");
    let log = s.agent.log_since(agent_mark);
    assert_eq!(rounds.len(), (THREADS * ROUNDS_PER_THREAD) as usize);

    let failed: Vec<&Round> = rounds.iter().filter(|r| !lookup_ok(&r.lookup, r.n) || !login_ok(&r.login)).collect();
    assert!(
        failed.is_empty(),
        "{} of {} rounds failed: {failed:#?}\n--- lanyardd log ---\n{log}",
        failed.len(),
        rounds.len()
    );

    // The kill fell inside the burst: rounds were under way when it came, and more followed.
    let straddling = rounds.iter().filter(|r| !r.started_after_kill && r.ended_after_kill).count();
    let after: Vec<&Round> = rounds.iter().filter(|r| r.started_after_kill).collect();
    assert!(straddling > 0 && !after.is_empty(), "the kill missed the burst: {rounds:#?}");

    // The consumer answered: the agent says so, and it logged every later login's bind.
    assert_eq!(server_in_use(&s.agent), Some(s.consumer.uri_starttls()), "{log}");
    let consumer_log = s.consumer.log_since(consumer_mark);
    for r in &after {
        let user = bulk_user_name(r.n);
        assert!(Slapd::bind_attempts(&consumer_log, &user_dn(&user)) > 0, "no bind as {user} on the consumer");
    }
    eprintln!(
        "failover burst: {} rounds, {straddling} under way at the kill, {} after it, all answered",
        rounds.len(),
        after.len()
    );
}

/// Bulk users the failback test looks up, one per try, none of them seen before.
const FAILBACK_FIRST_USER: u32 = 200;
const FAILBACK_LIMIT: Duration = Duration::from_secs(30);
const FAILBACK_POLL: Duration = Duration::from_millis(500);
const _: () = assert!(FAILBACK_FIRST_USER + 2 + (30_000 / 500 + 1) <= 300, "the fixture has 300 bulk users");

/// Ignored: fails with the agent as it is. `directory.failback` only orders NEW connections;
/// the search pool keeps its live connections to the consumer for as long as they work, so
/// lookups never return to the provider (`server in use` stays the consumer). Needs the pool
/// to replace a connection whose server is no longer first in `ServerOrder::order()`.
#[test]
fn failover_the_agent_goes_back_to_the_provider_once_it_returns() {
    let mut s = pair("3s", "2s");
    let mut n = FAILBACK_FIRST_USER;
    let mut next_user = || {
        n += 1;
        n
    };
    let first = next_user();
    let out = s.ns.getent("passwd", &[bulk_user_name(first)]).unwrap();
    assert!(lookup_ok(&out, first), "{out}\n--- lanyardd log ---\n{}", s.agent.log());
    assert_eq!(server_in_use(&s.agent), Some(s.provider.uri_starttls()));

    s.provider.kill().expect("killing the provider");
    let second = next_user();
    let out = s.ns.getent("passwd", &[bulk_user_name(second)]).unwrap();
    assert!(lookup_ok(&out, second), "{out}\n--- lanyardd log ---\n{}", s.agent.log());
    assert_eq!(server_in_use(&s.agent), Some(s.consumer.uri_starttls()));

    s.provider.start_again().expect("starting the provider again");
    let provider_mark = s.provider.log_mark();
    // Each try looks up a new user: the consumer (still up) answers until the agent returns
    // to the provider, which then logs that user's search.
    let mut tries = Vec::new();
    let back = poll_until("the agent to return to the provider", FAILBACK_LIMIT, FAILBACK_POLL, || {
        let n = next_user();
        let out = s.ns.getent("passwd", &[bulk_user_name(n)])?;
        let answered = lookup_ok(&out, n);
        let server = server_in_use(&s.agent);
        let on_provider = Slapd::search_filters(&s.provider.log_since(provider_mark))
            .iter()
            .any(|f| f.contains(&format!("(uid={})", bulk_user_name(n))));
        tries.push((n, answered, server.clone()));
        anyhow::ensure!(answered, "a lookup failed while the consumer was up: {out}");
        Ok((on_provider && server == Some(s.provider.uri_starttls())).then_some(()))
    });
    if let Err(e) = back {
        panic!("{e:#}\ntries (user, answered, server in use): {tries:?}\n--- lanyardd log ---\n{}", s.agent.log());
    }
    // A login goes to the provider too.
    let mark = s.provider.log_mark();
    let n = next_user();
    let login = s.pam.authenticate(&bulk_user_name(n), &bulk_password(n)).unwrap();
    assert!(login_ok(&login), "{login}\n--- lanyardd log ---\n{}", s.agent.log());
    assert!(Slapd::bind_attempts(&s.provider.log_since(mark), &user_dn(&bulk_user_name(n))) > 0);
    eprintln!("failback: back on the provider after {} lookups", tries.len());
}

/// Bulk users the frozen-provider test uses, one per round.
const FROZEN_FIRST_USER: u32 = 150;
const FROZEN_ROUNDS: u32 = 6;
const _: () = assert!(FROZEN_FIRST_USER + FROZEN_ROUNDS <= FAILBACK_FIRST_USER);

/// A hung provider (SIGSTOP: TCP handshakes still complete, nothing answers) rather than a dead
/// one, with the agent's pooled connections to it already open: every round (a lookup and a
/// login of a user never seen before) is answered, by the consumer, from the first round on.
#[test]
fn failover_a_frozen_provider_still_answers_every_lookup_and_login() {
    let mut s = pair("2s", "30s");
    let warm = s.ns.getent("passwd", &["alice"]).unwrap();
    assert_eq!(warm.code(), Some(0), "{warm}");
    assert_eq!(server_in_use(&s.agent).as_deref(), Some(s.provider.uri_starttls().as_str()));
    s.provider.freeze().expect("freezing the provider");
    for n in FROZEN_FIRST_USER..FROZEN_FIRST_USER + FROZEN_ROUNDS {
        let lookup = s.ns.getent("passwd", &[bulk_user_name(n)]).unwrap();
        assert!(lookup_ok(&lookup, n), "round {n}, provider frozen: {lookup}\n{}", s.agent.log());
        let login = s.pam.authenticate(&bulk_user_name(n), &bulk_password(n)).unwrap();
        assert!(login_ok(&login), "round {n}, provider frozen: {login}\n{}", s.agent.log());
    }
    assert_eq!(server_in_use(&s.agent).as_deref(), Some(s.consumer.uri_starttls().as_str()));
    s.provider.thaw().expect("thawing the provider");
}
