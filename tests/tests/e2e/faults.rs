//! Issue 7, item 6: faults. slapd killed with SIGKILL and restarted during a burst of lookups
//! and logins; the agent killed with SIGKILL while the modules wait on it; the cache on a full
//! tmpfs; slapd answering errors (a size limit, unavailable, busy).
//!
//! Nothing here measures latency. Every command runs under a hang guard (the harness's, or a
//! per-command `timeout` inside the bursts); waits for the agent to come back are polls bounded
//! in tries and time.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lanyard_proto::{Client, Deadlines, Request, Response};
use lanyard_tests::fixture::{ALICE, USER_COUNT};
use lanyard_tests::pam::{PamCode, SERVICE, pam_error};
use lanyard_tests::process::run_bounded;
use lanyard_tests::{
    Agent, AgentConfig, HANG_GUARD, Launch, Namespace, OfflineConfig, Output, Pam, Slapd, TempDir, poll_until,
};

use crate::common::{
    GETENT_NOT_FOUND, NSS_STATUS_UNAVAIL, Thaw, assert_not_found, assert_nss_status, assert_pam_success,
    assert_success, getpwnam_status,
};

/// `userNNNN`'s passwd line in the fixture.
fn bulk_line(n: u32) -> String {
    format!("user{n:04}:x:{}:10000:Bulk User {n}:/home/user{n:04}:/bin/sh", 20000 + n)
}

/// Waiting for the agent to answer from the directory again: at most 41 tries over 20 s.
const ONLINE_LIMIT: Duration = Duration::from_secs(20);
const ONLINE_POLL: Duration = Duration::from_millis(500);

/// Polls (bounded) until `getent passwd KEY` prints `expected`.
fn wait_for_passwd(ns: &Namespace, key: &str, expected: &str) -> anyhow::Result<()> {
    let mut last = None;
    poll_until(&format!("getent passwd {key} to answer"), ONLINE_LIMIT, ONLINE_POLL, || {
        let out = ns.getent("passwd", &[key])?;
        let ok = out.code() == Some(0) && out.stdout() == expected;
        last = Some(out);
        Ok(ok.then_some(()))
    })
    .map_err(|e| anyhow::anyhow!("{e:#}; last answer: {last:?}"))
}

/// One round of the burst as the script below records it.
#[derive(Debug)]
struct Round {
    n: u32,
    getent_code: i32,
    getent_out: String,
    pam_code: i32,
    pam_last: String,
}

fn parse_rounds(text: &str) -> Vec<Round> {
    // Records are separated by a line holding only `--` (written by the script).
    text.split("\n--\n")
        .filter(|r| !r.trim().is_empty())
        .map(|r| {
            let fields: Vec<&str> = r.split('\u{1f}').collect();
            assert_eq!(fields.len(), 5, "malformed record {r:?}");
            Round {
                n: fields[0].trim().parse().expect("round number"),
                getent_code: fields[1].parse().expect("getent code"),
                getent_out: fields[2].to_owned(),
                pam_code: fields[3].parse().expect("pamtester code"),
                pam_last: fields[4].to_owned(),
            }
        })
        .collect()
}

/// The hang guard of the whole burst (rounds take tens of milliseconds each).
const BURST_GUARD: Duration = Duration::from_secs(180);

/// `timeout`'s exit code when it had to kill the command: a per-command hang guard fired.
const TIMEOUT_FIRED: i32 = 124;

#[test]
fn slapd_killed_and_restarted_during_a_burst_of_lookups_and_logins_leaves_only_right_answers_or_clean_failures() {
    /// Rounds of the burst: one uncached user (`user0001`..) looked up by name, one login.
    const ROUNDS: u32 = 250;
    const KILL_AFTER: usize = 20;
    /// Rounds run while slapd is dead before it is started again.
    const WHILE_DEAD: usize = 10;
    let mut slapd = Slapd::start().expect("starting slapd");
    let config = AgentConfig::for_slapd(&slapd).timeout("1s").offline(OfflineConfig::default().probe_interval("1s"));
    let agent = Agent::start(&config).expect("starting lanyardd");
    let mut pam = Pam::for_agent(&agent).expect("preparing the PAM stack");
    // The whole burst runs as one command: its hang guard covers every round.
    pam.set_guard(BURST_GUARD);
    let ns = Namespace::for_agent(&agent).expect("preparing the namespace");

    let scratch = TempDir::new("burst").unwrap();
    let progress = scratch.join("progress");
    // `timeout 6` is each command's hang guard (the modules' own reply deadline is 7 s); a
    // field separator (0x1f) that no answer contains.
    let script = format!(
        r#"for i in $(seq 1 {ROUNDS}); do
  u=$(printf 'user%04d' "$i")
  g=$(timeout 6 getent passwd "$u"); gc=$?
  p=$(printf '%s\n' "$2" | timeout 6 pamtester -v {SERVICE} alice authenticate 2>&1); pc=$?
  last=$(printf '%s\n' "$p" | tail -n 1)
  printf '%s\037%s\037%s\037%s\037%s\n--\n' "$i" "$gc" "$g" "$pc" "$last" >> "$1"
done"#
    );
    let rounds_done = || parse_rounds(&fs::read_to_string(&progress).unwrap_or_default()).len();
    let (reached, killed, dead_rounds, restarted, burst) = std::thread::scope(|scope| {
        let argv = vec!["sh".to_owned(), "-c".to_owned(), script, "sh".to_owned(), progress.display().to_string()];
        let mut argv = argv;
        argv.push(ALICE.password.to_owned());
        let pam = &pam;
        let burst = scope.spawn(move || pam.run(&argv));
        let reached = poll_until("the burst to get going", Duration::from_secs(30), Duration::from_millis(5), || {
            Ok((rounds_done() >= KILL_AFTER).then_some(()))
        });
        let killed = slapd.kill();
        let at_kill = rounds_done();
        let dead_rounds =
            poll_until("rounds while slapd is dead", Duration::from_secs(30), Duration::from_millis(5), || {
                Ok((rounds_done() >= at_kill + WHILE_DEAD).then_some(()))
            });
        let restarted = slapd.start_again();
        (reached, killed, dead_rounds, restarted, burst.join())
    });
    let burst = burst.expect("the burst thread panicked").expect("the burst ran (hang guard)");
    assert!(reached.is_ok(), "{reached:?}\n{burst}\n--- lanyardd log ---\n{}", agent.log());
    assert_eq!(killed.unwrap().signal(), Some(libc::SIGKILL));
    assert!(dead_rounds.is_ok(), "{dead_rounds:?}\n{burst}");
    restarted.unwrap();
    assert_eq!(burst.code(), Some(0), "{burst}");

    let rounds = parse_rounds(&fs::read_to_string(&progress).unwrap());
    assert_eq!(rounds.len(), ROUNDS as usize, "{burst}");
    let (mut found, mut failed, mut logged_in, mut unavail) = (0, 0, 0, 0);
    for r in &rounds {
        assert_ne!(r.getent_code, TIMEOUT_FIRED, "getent hung in round {}: {r:?}", r.n);
        assert_ne!(r.pam_code, TIMEOUT_FIRED, "pamtester hung in round {}: {r:?}", r.n);
        match r.getent_code {
            0 => {
                assert_eq!(r.getent_out, bulk_line(r.n), "round {}", r.n);
                found += 1;
            }
            GETENT_NOT_FOUND => {
                assert_eq!(r.getent_out, "", "round {}", r.n);
                failed += 1;
            }
            _ => panic!("getent neither answered nor failed cleanly in round {}: {r:?}", r.n),
        }
        // The last line may start with the unanswered-looking prompt ("Password: pamtester: ...").
        match (r.pam_code, r.pam_last.rsplit_once("pamtester: ").map(|(_, text)| text)) {
            (0, Some("successfully authenticated")) => logged_in += 1,
            (1, Some(text)) if text == PamCode::AuthinfoUnavail.text() => unavail += 1,
            _ => panic!("pamtester neither logged in nor failed cleanly in round {}: {r:?}", r.n),
        }
    }
    // The burst did meet the outage: some uncached lookups failed while slapd was dead.
    assert!(failed > 0, "no lookup failed: the kill missed the burst ({found} found, {logged_in}/{unavail} logins)");
    eprintln!("burst: {found} found, {failed} not found; {logged_in} logins, {unavail} AUTHINFO_UNAVAIL");

    // Back online by itself (no agent restart): a never-seen user resolves, alice logs in.
    if let Err(e) = wait_for_passwd(&ns, "user0300", &format!("{}\n", bulk_line(300))) {
        panic!("not back online: {e}\n--- lanyardd log ---\n{}", agent.log());
    }
    assert_pam_success(&pam.authenticate("alice", ALICE.password).unwrap(), &agent);
}

/// The modules give up on an agent that never answers after 7 s (`Deadlines::default().reply`
/// in proto). This guard ends first, so a caller that only returned because of that deadline,
/// not because the agent's death closed its connection, fails as hung. A hang guard with a
/// wide margin over the milliseconds these take, not a measurement.
const KILLED_AGENT_GUARD: Duration = Duration::from_secs(5);
const _: () = assert!(KILLED_AGENT_GUARD.as_secs() < 7);

/// Connections waiting in the accept queue of the listening unix socket at `path` (`ss`'s
/// Recv-Q for a listener), or `None` if `ss` does not list it.
fn accept_queue(path: &Path) -> anyhow::Result<Option<u32>> {
    let out = run_bounded(Command::new("ss").args(["-xlnH"]), "ss -xlnH", HANG_GUARD)?;
    let path = path.to_string_lossy();
    Ok(out
        .stdout()
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(4) == Some(&&*path))
        .and_then(|f| f.get(2).and_then(|q| q.parse().ok())))
}

#[test]
fn callers_waiting_on_an_agent_killed_with_sigkill_get_unavail_and_authinfo_unavail_without_crashing() {
    let slapd = Slapd::start().expect("starting slapd");
    let mut agent = Agent::start(&AgentConfig::for_slapd(&slapd)).expect("starting lanyardd");
    let mut ns = Namespace::for_agent(&agent).expect("preparing the namespace");
    let mut pam = Pam::for_agent(&agent).expect("preparing the PAM stack");
    ns.set_guard(KILLED_AGENT_GUARD);
    pam.set_guard(KILLED_AGENT_GUARD);
    let socket = agent.socket();
    assert_eq!(accept_queue(&socket).unwrap(), Some(0), "ss does not show the agent's socket as expected");

    agent.freeze().unwrap();
    let thaw = Thaw(&mut agent);
    let (queued, killed, getent, login) = std::thread::scope(|scope| {
        let (ns, pam) = (&ns, &pam);
        let getent = scope.spawn(move || ns.getent("passwd", &["alice"]));
        let login = scope.spawn(move || pam.authenticate("alice", ALICE.password));
        // Both callers connected and now wait for a reply the frozen agent never sends.
        let queued =
            poll_until("both callers to queue on the socket", Duration::from_secs(4), Duration::from_millis(5), || {
                Ok(accept_queue(&socket)?.filter(|&q| q >= 2))
            });
        let killed = thaw.0.kill();
        (queued, killed, getent.join(), login.join())
    });
    let getent: Output = getent.expect("getent thread").expect("getent returned (hang guard)");
    let login: Output = login.expect("pamtester thread").expect("pamtester returned (hang guard)");
    assert!(queued.is_ok(), "{queued:?}\n{getent}\n{login}");
    assert_eq!(killed.unwrap().signal(), Some(libc::SIGKILL));
    // Normal exits, not signals: the callers did not crash.
    assert_eq!(getent.status.signal(), None, "{getent}");
    assert_eq!(login.status.signal(), None, "{login}");
    assert_eq!((getent.code(), getent.stdout().as_str()), (Some(GETENT_NOT_FOUND), ""), "{getent}");
    assert_eq!(
        (login.code(), pam_error(&login).as_deref()),
        (Some(1), Some(PamCode::AuthinfoUnavail.text())),
        "{login}"
    );
}

/// What the cache writer logs when a commit fails (agent/src/cache/writer.rs).
const COMMIT_FAILED_LOG: &str = "cache commit failed";

#[test]
fn the_agent_keeps_answering_from_memory_and_the_directory_when_its_cache_disk_is_full() {
    let slapd = Slapd::start().expect("starting slapd");
    let mut agent = Agent::start_with(&AgentConfig::for_slapd(&slapd), &Launch::default().cache_tmpfs("256k"))
        .expect("starting lanyardd on a small tmpfs");
    let ns = Namespace::for_agent(&agent).expect("preparing the namespace");
    let first = ns.getent("passwd", &["alice"]).unwrap();
    assert_success(&first, &agent);

    // Fill what is left of the tmpfs, through the agent's own mount namespace.
    let fill = run_bounded(
        Command::new("nsenter")
            .arg("-t")
            .arg(agent.pid().to_string())
            .arg("-m")
            .arg("dd")
            .arg("if=/dev/zero")
            .arg(format!("of={}", agent.cache_dir().join("filler").display()))
            .arg("bs=4k"),
        "nsenter dd",
        HANG_GUARD,
    )
    .unwrap();
    assert!(fill.stderr().contains("No space left on device"), "the tmpfs did not fill: {fill}");

    // Writes the cache must now fail to commit: enumerations and many users by name.
    let mark = agent.log_mark();
    assert_success(&ns.shell("getent passwd >/dev/null && getent group >/dev/null").unwrap(), &agent);
    let many: Vec<String> = (1..=100).map(|n| format!("user{n:04}")).collect();
    let out = ns.getent("passwd", &many).unwrap();
    assert_success(&out, &agent);
    assert_eq!(out.lines().len(), 100, "{out}");
    let logged =
        poll_until("the agent to log the failed commit", Duration::from_secs(10), Duration::from_millis(100), || {
            Ok(agent.log_since(mark).contains(COMMIT_FAILED_LOG).then_some(()))
        });
    assert!(logged.is_ok(), "no {COMMIT_FAILED_LOG:?} in the log:\n{}", agent.log());

    // Still answering: a cached user, a never-seen one, a group, a login-relevant id.
    let alice = ns.getent("passwd", &["alice"]).unwrap();
    assert_success(&alice, &agent);
    assert_eq!(alice.stdout(), "alice:x:10001:10000:Alice Liddell:/home/alice:/bin/bash\n");
    let never_seen = ns.getent("passwd", &["user0250"]).unwrap();
    assert_success(&never_seen, &agent);
    assert_eq!(never_seen.stdout(), format!("{}\n", bulk_line(250)));
    let id = ns.run(&["id", "bob"]).unwrap();
    assert_success(&id, &agent);
    assert_not_found(&ns.getent("passwd", &["nobody-here-at-all"]).unwrap(), &agent);
    assert_eq!(agent.exited().unwrap(), None, "the agent exited on a full disk:\n{}", agent.log());
}

/// A directory user's passwd line (the fixture's uids start at 10000; Debian's own stop below).
fn is_directory_line(line: &str) -> bool {
    line.split(':').nth(2).and_then(|uid| uid.parse::<u32>().ok()).is_some_and(|uid| (10000..60000).contains(&uid))
}

/// What the agent logs for a search slapd ended with sizeLimitExceeded (LDAP result code 4).
const SIZE_LIMIT_LOG: &str = "search: sizeLimitExceeded (4)";

/// `sizelimit 5` and the agent's default pages of 500: slapd ends the enumeration with
/// sizeLimitExceeded after 5 entries. The agent must not hand those 5 on as if they were all:
/// the directory's users are all there or none (what it does: none, and a warning), and
/// lookups of single users, which stay under the limit, still answer.
#[test]
fn enumeration_past_a_slapd_size_limit_is_never_a_silently_truncated_list_and_single_lookups_still_work() {
    let slapd = Slapd::start_with_global_lines(&["sizelimit 5"]).expect("starting slapd");
    let agent = Agent::start(&AgentConfig::for_slapd(&slapd)).expect("starting lanyardd");
    let ns = Namespace::for_agent(&agent).expect("preparing the namespace");
    let mark = agent.log_mark();
    let all = ns.getent("passwd", &[] as &[&str]).unwrap();
    // `files` still enumerates, so getent succeeds whatever the directory said.
    assert_success(&all, &agent);
    let directory_users = all.lines().iter().filter(|l| is_directory_line(l)).count();
    assert!(
        directory_users == 0 || directory_users == USER_COUNT,
        "a truncated enumeration: {directory_users} of {USER_COUNT} directory users\n{all}"
    );
    if directory_users == 0 {
        let log = agent.log_since(mark);
        assert!(log.contains(SIZE_LIMIT_LOG), "the directory's users vanished without a word:\n{log}");
    }

    let alice = ns.getent("passwd", &["alice"]).unwrap();
    assert_success(&alice, &agent);
    assert_eq!(alice.stdout(), "alice:x:10001:10000:Alice Liddell:/home/alice:/bin/bash\n");
    let by_uid = ns.getent("passwd", &["20250"]).unwrap();
    assert_success(&by_uid, &agent);
    assert_eq!(by_uid.stdout(), format!("{}\n", bulk_line(250)));
    assert_success(&ns.getent("group", &["developers"]).unwrap(), &agent);
}

/// `size.pr=5` caps each page and `size.prtotal=unlimited` lifts the total for paged
/// searches: with `page_size = 5` the agent pages through and gets everyone.
#[test]
fn paged_enumeration_under_a_per_page_limit_returns_every_directory_user() {
    let slapd = Slapd::start_with_global_lines(&["sizelimit size.soft=5 size.hard=5 size.pr=5 size.prtotal=unlimited"])
        .expect("starting slapd");
    let agent =
        Agent::start(&AgentConfig::for_slapd(&slapd).directory_line("page_size = 5")).expect("starting lanyardd");
    let ns = Namespace::for_agent(&agent).expect("preparing the namespace");
    let all = ns.getent("passwd", &[] as &[&str]).unwrap();
    assert_success(&all, &agent);
    let directory_users = all.lines().iter().filter(|l| is_directory_line(l)).count();
    assert_eq!(directory_users, USER_COUNT, "{all}\n--- lanyardd log ---\n{}", agent.log());
}

/// slapd answering "unavailable" (LDAP result 52): the users live in a database that proxies
/// (back-ldap) to a port nothing listens on, so every user search ends with unavailable. A
/// lookup must then be "unavailable", never "not found"; the agent tries once more (RFC 4511
/// A.2) before saying so. (As a subordinate under the base, slapd's glue would hide the error
/// behind a success: hence users.base pointing straight at it.)
#[test]
fn a_directory_answering_unavailable_is_unavailable_never_not_found() {
    let closed = lanyard_tests::slapd::closed_port().expect("a closed port");
    let proxy = format!("uri \"ldap://127.0.0.1:{closed}\"");
    let slapd = Slapd::start_with_global_lines(&[
        "moduleload back_ldap",
        "database ldap",
        "suffix \"ou=remote,dc=example,dc=org\"",
        "subordinate",
        &proxy,
    ])
    .expect("starting slapd");
    let config = AgentConfig::for_slapd(&slapd).section("[directory.users]\nbase = \"ou=remote,dc=example,dc=org\"");
    let agent = Agent::start(&config).expect("starting lanyardd");
    let mark = slapd.log_mark();
    let answer = Client::call(&agent.socket(), &Request::UserByName("alice".into()), Deadlines::default()).unwrap();
    assert!(matches!(answer, Response::Unavailable(_)), "{answer:?}\n--- lanyardd log ---\n{}", agent.log());
    let log = agent.log();
    assert!(log.contains("unavailable"), "the agent did not say why:\n{log}");
    // Tried twice: the first answer and the retry.
    let since = slapd.log_since(mark);
    let searches = Slapd::search_filters(&since).iter().filter(|f| f.contains("alice")).count();
    assert_eq!(searches, 2, "{since}");
    assert!(since.contains("err=52"), "slapd did not answer unavailable: the test proved nothing\n{since}");
    let ns = Namespace::for_agent(&agent).expect("preparing the namespace");
    let out = ns.getent("passwd", &["alice"]).unwrap();
    assert!(out.stdout().is_empty(), "a partial or wrong answer: {out}");
}

/// A [`SockResponder`] polls for connections at most this many times, [`SOCK_POLL`] apart
/// when none waits (two minutes of idling), and answers at most [`SOCK_MAX_REQUESTS`].
/// Bounds, not measurements: the test needs a few requests answered within a second or two.
const SOCK_POLLS: u32 = 12_000;
const SOCK_POLL: Duration = Duration::from_millis(10);
const SOCK_MAX_REQUESTS: usize = 64;
/// How long one request may take to arrive, or its answer to leave.
const SOCK_IO_TIMEOUT: Duration = Duration::from_secs(5);
/// A request is a dozen short lines (slapd-sock(5)); anything bigger is cut here.
const SOCK_MAX_REQUEST: u64 = 64 * 1024;

/// The program behind slapd's back-sock database (slapd-sock(5)): slapd connects to its Unix
/// socket once per operation, writes the request as `NAME: value` lines ended by a blank line
/// (`SEARCH`, `msgid:`, `suffix:`, `base:`, ..., `filter:`, `attrs:`), and reads the answer
/// (entries, then `RESULT` with `code:` and `info:` lines) until a blank line or the program
/// closes the connection. `UNBIND` (any client connection closing, on every sock database)
/// expects no answer. This one answers every other request with `answer` and keeps each
/// request's text. Its thread ends when it is dropped, or after [`SOCK_POLLS`] polls or
/// [`SOCK_MAX_REQUESTS`] requests, whichever comes first.
struct SockResponder {
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SockResponder {
    /// Listens on `path` (slapd runs as root in these tests, so it can connect whatever the
    /// directory's mode).
    fn start(path: &Path, answer: &str) -> std::io::Result<SockResponder> {
        let listener = UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopped, answer) = (requests.clone(), stop.clone(), answer.to_owned());
        let thread = std::thread::spawn(move || {
            for _ in 0..SOCK_POLLS {
                // A poisoned lock (the test panicked holding it) ends the thread too.
                if stopped.load(Ordering::Relaxed) || seen.lock().map_or(true, |s| s.len() >= SOCK_MAX_REQUESTS) {
                    return;
                }
                match listener.accept() {
                    Ok((stream, _)) => {
                        let request = SockResponder::serve(&stream, &answer);
                        if let Ok(mut seen) = seen.lock() {
                            seen.push(request);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(SOCK_POLL),
                    Err(_) => return,
                }
            }
        });
        Ok(SockResponder { requests, stop, thread: Some(thread) })
    }

    /// Reads one request up to its blank line, answers unless it is `UNBIND`, and closes the
    /// connection (on drop). What it read, and any failure after it.
    fn serve(stream: &UnixStream, answer: &str) -> String {
        let mut request = String::new();
        if let Err(e) = SockResponder::read_and_answer(stream, answer, &mut request) {
            request.push_str(&format!("(failed: {e})\n"));
        }
        request
    }

    fn read_and_answer(stream: &UnixStream, answer: &str, request: &mut String) -> std::io::Result<()> {
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(SOCK_IO_TIMEOUT))?;
        stream.set_write_timeout(Some(SOCK_IO_TIMEOUT))?;
        let mut reader = BufReader::new(stream.take(SOCK_MAX_REQUEST));
        // Every turn consumes input, which is capped: this ends.
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 || line == "\n" {
                break;
            }
            request.push_str(&line);
        }
        if request.starts_with("UNBIND\n") {
            return Ok(());
        }
        (&*stream).write_all(answer.as_bytes())
    }

    /// The requests seen so far, in order, but for `UNBIND`s.
    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().iter().filter(|r| !r.starts_with("UNBIND\n")).cloned().collect()
    }
}

impl Drop for SockResponder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What back-sock makes slapd answer: busy (LDAP result 51). No `info:` line: the sock
/// database sits under glue (`subordinate`), and glue sends the result again itself with the
/// text still pointing into back-sock's freed read buffer, so a text would arrive or not by
/// chance (slapd 2.5.13). Without one the text is empty every time.
const BUSY_ANSWER: &str = "RESULT\ncode: 51\n\n";
const BUSY_SUFFIX: &str = "ou=busy,dc=example,dc=org";

/// slapd answering "busy" (LDAP result 51): the users live in a back-sock database whose
/// program (the test's [`SockResponder`]) answers every request with busy. The agent tries
/// once more (RFC 4511 A.2: another connection may be served), then says "unavailable", never
/// "not found": busy is the server's state, not an answer about the user.
#[test]
fn a_directory_answering_busy_is_tried_once_more_then_unavailable_never_not_found() {
    let scratch = TempDir::new("busy").unwrap();
    let socket = scratch.join("sock");
    let responder = SockResponder::start(&socket, BUSY_ANSWER).expect("listening for slapd's back-sock");
    let socketpath = format!("socketpath \"{}\"", socket.display());
    let suffix = format!("suffix \"{BUSY_SUFFIX}\"");
    // `subordinate` for slapadd: without `-b` it loads the fixture into the first database that
    // is not a glue subordinate, and the sock database comes first. users.base is its suffix, so
    // glue hands the user searches to it alone (the fixture's database never answers them).
    let slapd =
        Slapd::start_with_global_lines(&["moduleload back_sock", "database sock", &suffix, "subordinate", &socketpath])
            .expect("starting slapd");
    let config = AgentConfig::for_slapd(&slapd).section(&format!("[directory.users]\nbase = \"{BUSY_SUFFIX}\""));
    let agent = Agent::start(&config).expect("starting lanyardd");

    let mark = slapd.log_mark();
    let agent_mark = agent.log_mark();
    let answer = Client::call(&agent.socket(), &Request::UserByName("alice".into()), Deadlines::default()).unwrap();
    assert!(matches!(answer, Response::Unavailable(_)), "{answer:?}\n--- lanyardd log ---\n{}", agent.log());
    let log = agent.log_since(agent_mark);
    assert!(log.contains("search: busy (51); trying again"), "the agent did not say why:\n{log}");
    // Tried twice, through slapd to the responder: the first answer and the retry, no more.
    let since = slapd.log_since(mark);
    let searches = Slapd::search_filters(&since).iter().filter(|f| f.contains("alice")).count();
    assert_eq!(searches, 2, "{since}");
    assert_eq!(
        since.lines().filter(|l| l.contains(" err=51 ")).count(),
        2,
        "slapd did not answer busy twice:\n{since}"
    );
    let requests = responder.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    for request in &requests {
        assert!(request.starts_with("SEARCH\n"), "{request}");
        assert!(request.contains(&format!("\nbase: {BUSY_SUFFIX}\n")), "{request}");
        assert!(request.lines().any(|l| l.starts_with("filter: ") && l.contains("alice")), "{request}");
    }

    let ns = Namespace::for_agent(&agent).expect("preparing the namespace");
    let out = ns.getent("passwd", &["alice"]).unwrap();
    assert!(out.stdout().is_empty(), "a partial or wrong answer: {out}");
    assert_nss_status(&getpwnam_status(&ns, "alice"), NSS_STATUS_UNAVAIL, &agent);
}
