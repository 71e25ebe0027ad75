//! Issue 4, the offline laptop: with slapd stopped (down) or SIGSTOPped (hung), the agent answers
//! the lookups and logins of someone who used the machine from its redb cache and Argon2id
//! verifier, says "not found" for names it never cached, comes back online by itself, keeps
//! answering across restarts and `kill -9`, and keeps its cache file private.
//!
//! Nothing here measures latency. Every command run while the directory is unreachable runs
//! under [`GUARD`], a hang guard of the configured budget plus a generous margin: a command still
//! running then is killed and the test fails as hung. Waiting for the agent to come back online
//! is a poll bounded in tries and time.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lanyard_tests::fixture::{ALICE, BOB, CHANGER, CHANGER_NEW_PASSWORD, user_dn};
use lanyard_tests::pam::{PamCode, pam_error};
use lanyard_tests::slapd::closed_port;
use lanyard_tests::tempdir::{mode_and_owner, write_file_mode};
use lanyard_tests::{
    Agent, AgentConfig, Caller, Launch, Namespace, OfflineConfig, Output, Pam, Slapd, TempDir, TestPki, poll_until,
    shifted_clock,
};

use crate::common::{assert_not_found, assert_pam_error, assert_pam_success, assert_success};

/// `[directory] timeout` in these tests, in seconds: the budget for one directory operation,
/// and so for the first request that finds the directory gone or hung.
const BUDGET_SECS: u64 = 1;
/// On top of the budget, for everything else one command does: unshare and its mounts, exec,
/// an Argon2id check, on a loaded machine running other tests. Generous on purpose.
const MARGIN_SECS: u64 = 4;
/// The hang guard of every command while the directory is unreachable. A hang guard with a
/// margin, NOT a latency measurement: those commands normally take milliseconds.
const GUARD: Duration = Duration::from_secs(BUDGET_SECS + MARGIN_SECS);
// The modules give up on the agent after 7 s (`Deadlines::default().reply` in proto), and glibc
// then reports "not found" (getent exit 2) as for a real miss. The guard must end first, so an
// agent stuck on the directory shows up as hung instead of passing as "not found".
const _: () = assert!(BUDGET_SECS + MARGIN_SECS < 7);

/// `[cache] ttl`: short, so that after [`let_the_cache_go_stale`] no answer can come from a
/// fresh in-memory entry, and so that a change in the directory shows soon once online.
const TTL: &str = "1s";
const TTL_PASSED: Duration = Duration::from_millis(1500);
const PROBE_INTERVAL: &str = "1s";
/// Waiting for the agent to be back online: at most 21 tries, 500 ms apart (10 s, ten probe
/// intervals).
const ONLINE_LIMIT: Duration = Duration::from_secs(10);
const ONLINE_POLL: Duration = Duration::from_millis(500);

/// What the agent logs when it goes offline and when it is back (agent/src/state.rs).
const OFFLINE_LOG: &str = "now offline";
const ONLINE_LOG: &str = "back online";

const ALICE_LINE: &str = "alice:x:10001:10000:Alice Liddell:/home/alice:/bin/bash\n";
const WRONG_PASSWORD: &str = "not-Alices-password-1";
/// Directory users no test here looks up before its directory goes away (each test has its own
/// agent and cache).
const NEVER_CACHED: &str = "user0042";
const NEVER_CACHED_UID: &str = "20043";

/// slapd, an agent with a 1 s budget, a 1 s ttl and negative ttl and a 1 s probe interval, and
/// the namespaces for getent/id and pamtester. Fields drop in this order.
struct Offline {
    ns: Namespace,
    pam: Pam,
    agent: Agent,
    slapd: Slapd,
}

fn offline_setup(adjust: impl FnOnce(OfflineConfig) -> OfflineConfig) -> Offline {
    let slapd = Slapd::start().expect("starting slapd");
    let config = AgentConfig::for_slapd(&slapd)
        .timeout(&format!("{BUDGET_SECS}s"))
        .ttl(TTL)
        .negative_ttl("1s")
        .offline(adjust(OfflineConfig::default().probe_interval(PROBE_INTERVAL)));
    let agent = Agent::start(&config).expect("starting lanyardd");
    let ns = Namespace::for_agent(&agent).expect("preparing the namespace");
    let pam = Pam::for_agent(&agent).expect("preparing the PAM stack");
    Offline { ns, pam, agent, slapd }
}

impl Offline {
    /// From here on every command runs under [`GUARD`].
    fn guard_every_command(&mut self) {
        self.ns.set_guard(GUARD);
        self.pam.set_guard(GUARD);
    }
}

/// What alice's session leaves behind online: a login (so a verifier) and the lookups a shell,
/// `id` and `ls -l` make. Returns the online answers the offline ones must equal.
struct Online {
    id: (String, BTreeSet<String>),
    developers: (String, u32, BTreeSet<String>),
}

fn alice_logs_in_and_is_looked_up(s: &Offline) -> Online {
    assert_pam_success(&s.pam.authenticate("alice", ALICE.password).unwrap(), &s.agent);
    let passwd = s.ns.getent("passwd", &["alice"]).unwrap();
    assert_success(&passwd, &s.agent);
    assert_eq!(passwd.stdout(), ALICE_LINE);
    let id = s.ns.run(&["id", "alice"]).unwrap();
    assert_success(&id, &s.agent);
    let developers = s.ns.getent("group", &["developers"]).unwrap();
    assert_success(&developers, &s.agent);
    let online = Online { id: id_fields(&id), developers: group_fields(&developers) };
    let her_groups = ["10000(staff)", "10010(developers)", "10011(ops)", "10012(admins)", "10100(biggroup)"];
    assert_eq!(online.id.0, "uid=10001(alice) gid=10000(staff)", "{id}");
    assert_eq!(online.id.1, her_groups.iter().map(|g| g.to_string()).collect(), "{id}");
    assert_eq!((online.developers.0.as_str(), online.developers.1), ("developers", 10010), "{developers}");
    online
}

/// Setup, not an assertion: a bounded sleep past the ttl, so every answer cached so far is
/// stale and what follows cannot come from a fresh in-memory entry.
fn let_the_cache_go_stale() {
    std::thread::sleep(TTL_PASSED);
}

/// `uid=... gid=...` and the set of `groups=` entries of `id`'s output.
fn id_fields(out: &Output) -> (String, BTreeSet<String>) {
    let text = out.stdout();
    let (head, groups) = text.trim_end().split_once(" groups=").unwrap_or_else(|| panic!("not id output: {out}"));
    (head.to_owned(), groups.split(',').map(str::to_owned).collect())
}

/// A one-line `getent group` answer as (name, gid, members).
fn group_fields(out: &Output) -> (String, u32, BTreeSet<String>) {
    let lines = out.lines();
    assert_eq!(lines.len(), 1, "{out}");
    let fields: Vec<&str> = lines[0].split(':').collect();
    assert_eq!(fields.len(), 4, "not a group line: {out}");
    let members = fields[3].split(',').filter(|m| !m.is_empty()).map(str::to_owned).collect();
    (fields[0].to_owned(), fields[2].parse().expect("gid"), members)
}

/// The Done-when list, with the directory unreachable: alice's lookups and login answer as they
/// did online, a wrong password fails, users never cached are "not found". The first command
/// is the one that finds the directory gone (at most one budget).
#[track_caller]
fn assert_alice_is_served_from_the_cache(s: &Offline, online: &Online) {
    assert!(s.ns.guard() == GUARD, "offline commands must run under the offline hang guard");
    let passwd = s.ns.getent("passwd", &["alice"]).unwrap();
    assert_success(&passwd, &s.agent);
    assert_eq!(passwd.stdout(), ALICE_LINE, "{passwd}");

    let id = s.ns.run(&["id", "alice"]).unwrap();
    assert_success(&id, &s.agent);
    assert_eq!(id_fields(&id), online.id, "{id}");

    let developers = s.ns.getent("group", &["developers"]).unwrap();
    assert_success(&developers, &s.agent);
    assert_eq!(group_fields(&developers), online.developers, "{developers}");

    assert_pam_success(&s.pam.authenticate("alice", ALICE.password).unwrap(), &s.agent);
    assert_pam_error(&s.pam.authenticate("alice", WRONG_PASSWORD).unwrap(), PamCode::AuthErr, &s.agent);

    assert_not_found(&s.ns.getent("passwd", &[NEVER_CACHED]).unwrap(), &s.agent);
    assert_not_found(&s.ns.getent("passwd", &[NEVER_CACHED_UID]).unwrap(), &s.agent);
}

/// pamtester failed (exit 1, with a PAM error), whichever code the module chose.
#[track_caller]
fn assert_login_refused(out: &Output, agent: &Agent) {
    assert_eq!(out.code(), Some(1), "the login was not refused:\n{out}\n--- lanyardd log ---\n{}", agent.log());
    assert!(pam_error(out).is_some(), "{out}");
}

#[track_caller]
fn assert_logged_offline_then_online(log: &str) {
    let lines: Vec<&str> = log.lines().collect();
    let offline = lines.iter().position(|l| l.contains(OFFLINE_LOG));
    let online = offline.and_then(|i| lines[i + 1..].iter().position(|l| l.contains(ONLINE_LOG)));
    assert!(
        offline.is_some() && online.is_some(),
        "the log does not say {OFFLINE_LOG:?} and then {ONLINE_LOG:?}:\n{log}"
    );
}

/// Waits, bounded, until `getent passwd KEY` prints `expected`; returns the last output if it
/// never does.
fn wait_for_passwd(ns: &Namespace, key: &str, expected: &str) -> Result<(), String> {
    let mut last = String::new();
    let waited = poll_until(&format!("getent passwd {key} to print {expected:?}"), ONLINE_LIMIT, ONLINE_POLL, || {
        let out = ns.getent("passwd", &[key])?;
        last = out.to_string();
        Ok((out.code() == Some(0) && out.stdout() == expected).then_some(()))
    });
    waited.map_err(|e| format!("{e:#}; last answer:\n{last}"))
}

/// The `cache.redb.broken-*` files the agent moved aside in `dir`.
fn moved_aside(dir: &Path) -> Vec<PathBuf> {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()));
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("cache.redb.broken-")))
        .collect()
}

fn euid() -> u32 {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[test]
fn alice_is_served_from_the_cache_while_slapd_is_stopped() {
    let mut s = offline_setup(|o| o);
    let online = alice_logs_in_and_is_looked_up(&s);
    let_the_cache_go_stale();
    s.slapd.stop().unwrap();
    s.guard_every_command();
    assert_alice_is_served_from_the_cache(&s, &online);
}

#[test]
fn alice_is_served_from_the_cache_while_slapd_is_hung() {
    let mut s = offline_setup(|o| o);
    let online = alice_logs_in_and_is_looked_up(&s);
    let_the_cache_go_stale();
    // Thawed on drop, also when an assertion fails.
    s.slapd.freeze().unwrap();
    s.guard_every_command();
    assert_alice_is_served_from_the_cache(&s, &online);
}

/// Once the agent knows the directory is hung, nothing waits on it: twenty lookups of users it
/// never cached run in ONE command under the same guard. If each still waited the 1 s budget
/// they would need 20 s, four times the guard, and the test fails as hung.
#[test]
fn once_offline_a_burst_of_uncached_lookups_never_waits_on_the_hung_directory() {
    let mut s = offline_setup(|o| o);
    alice_logs_in_and_is_looked_up(&s);
    let_the_cache_go_stale();
    s.slapd.freeze().unwrap();
    s.guard_every_command();
    // The first request finds the directory hung (at most one budget) and the agent offline.
    let first = s.ns.getent("passwd", &["alice"]).unwrap();
    assert_success(&first, &s.agent);

    let out =
        s.ns.shell("for i in $(seq 101 120); do getent passwd \"user0$i\"; echo \"user0$i rc=$?\"; done").unwrap();
    assert_success(&out, &s.agent);
    let expected: Vec<String> = (101..=120).map(|i| format!("user0{i} rc=2")).collect();
    assert_eq!(out.lines(), expected, "{out}\n--- lanyardd log ---\n{}", s.agent.log());
}

#[test]
fn the_agent_comes_back_online_after_slapd_restarts_and_shows_a_change_made_meanwhile() {
    let mut s = offline_setup(|o| o);
    let mark = s.agent.log_mark();
    let before = s.ns.getent("passwd", &["alice"]).unwrap();
    assert_success(&before, &s.agent);
    assert_eq!(before.stdout(), ALICE_LINE);

    let uri = s.slapd.uri_starttls();
    s.slapd.stop().unwrap();
    s.guard_every_command();
    assert_not_found(&s.ns.getent("passwd", &[NEVER_CACHED]).unwrap(), &s.agent);
    let changed_gecos = "Alice Changed-While-Offline";
    s.slapd
        .modify_while_stopped(&format!(
            "dn: {}\nchangetype: modify\nreplace: gecos\ngecos: {changed_gecos}\n",
            user_dn("alice")
        ))
        .unwrap();
    // The change is made, but out of reach: the cached entry still answers.
    let offline = s.ns.getent("passwd", &["alice"]).unwrap();
    assert_success(&offline, &s.agent);
    assert_eq!(offline.stdout(), ALICE_LINE, "{offline}");

    s.slapd.start_again().unwrap();
    assert_eq!(s.slapd.uri_starttls(), uri, "slapd came back elsewhere: the agent's URI would be stale");
    // Online again within the probe interval (1 s), with no restart: a bounded poll, at most
    // 21 tries over 10 s.
    let changed = format!("alice:x:10001:10000:{changed_gecos}:/home/alice:/bin/bash\n");
    if let Err(e) = wait_for_passwd(&s.ns, "alice", &changed) {
        panic!("the change never showed: {e}\n--- lanyardd log ---\n{}", s.agent.log());
    }
    let never_cached = "user0042:x:20042:10000:Bulk User 42:/home/user0042:/bin/sh\n";
    if let Err(e) = wait_for_passwd(&s.ns, NEVER_CACHED, never_cached) {
        panic!("{NEVER_CACHED} is not found online: {e}\n--- lanyardd log ---\n{}", s.agent.log());
    }
    assert_logged_offline_then_online(&s.agent.log_since(mark));
}

#[test]
fn the_agent_comes_back_online_after_slapd_is_thawed() {
    let mut s = offline_setup(|o| o);
    let mark = s.agent.log_mark();
    assert_success(&s.ns.getent("passwd", &["alice"]).unwrap(), &s.agent);

    s.slapd.freeze().unwrap();
    s.guard_every_command();
    assert_not_found(&s.ns.getent("passwd", &[NEVER_CACHED]).unwrap(), &s.agent);
    let cached = s.ns.getent("passwd", &["alice"]).unwrap();
    assert_success(&cached, &s.agent);
    assert_eq!(cached.stdout(), ALICE_LINE);

    s.slapd.thaw().unwrap();
    let never_cached = "user0042:x:20042:10000:Bulk User 42:/home/user0042:/bin/sh\n";
    if let Err(e) = wait_for_passwd(&s.ns, NEVER_CACHED, never_cached) {
        panic!("the agent did not come back online: {e}\n--- lanyardd log ---\n{}", s.agent.log());
    }
    assert_logged_offline_then_online(&s.agent.log_since(mark));
}

/// No sleeping through 14 days: the agent is restarted (directory down, same cache) with its
/// wall clock moved ahead by libfaketime. 13 days later the verifier still works (so neither the
/// shifted clock nor the restart refuses a login); 15 days later it is refused.
#[test]
fn an_offline_login_is_refused_once_the_verifier_is_older_than_max_age() {
    let mut s = offline_setup(|o| o.max_age("14d"));
    assert_pam_success(&s.pam.authenticate("alice", ALICE.password).unwrap(), &s.agent);
    assert_success(&s.ns.getent("passwd", &["alice"]).unwrap(), &s.agent);
    s.slapd.stop().unwrap();
    s.guard_every_command();

    s.agent.restart_with(&Launch::default().env(shifted_clock("+13d").unwrap())).unwrap();
    assert_pam_success(&s.pam.authenticate("alice", ALICE.password).unwrap(), &s.agent);

    s.agent.restart_with(&Launch::default().env(shifted_clock("+15d").unwrap())).unwrap();
    assert_login_refused(&s.pam.authenticate("alice", ALICE.password).unwrap(), &s.agent);
    // Only the login ages out: lookups answer from the cache at any age.
    let passwd = s.ns.getent("passwd", &["alice"]).unwrap();
    assert_success(&passwd, &s.agent);
    assert_eq!(passwd.stdout(), ALICE_LINE);
}

#[test]
fn offline_logins_lock_out_after_max_failures_wrong_passwords() {
    let mut s = offline_setup(|o| o.lockout_after(2, "1h"));
    assert_pam_success(&s.pam.authenticate("alice", ALICE.password).unwrap(), &s.agent);
    assert_pam_success(&s.pam.authenticate("bob", BOB.password).unwrap(), &s.agent);
    s.slapd.stop().unwrap();
    s.guard_every_command();

    assert_pam_success(&s.pam.authenticate("alice", ALICE.password).unwrap(), &s.agent);
    // One wrong password is below max_failures: the right one still works.
    assert_pam_error(&s.pam.authenticate("alice", WRONG_PASSWORD).unwrap(), PamCode::AuthErr, &s.agent);
    assert_pam_success(&s.pam.authenticate("alice", ALICE.password).unwrap(), &s.agent);
    // Two in a row reach it: then even the right password is refused, for `lockout`.
    assert_pam_error(&s.pam.authenticate("alice", WRONG_PASSWORD).unwrap(), PamCode::AuthErr, &s.agent);
    assert_login_refused(&s.pam.authenticate("alice", WRONG_PASSWORD).unwrap(), &s.agent);
    assert_login_refused(&s.pam.authenticate("alice", ALICE.password).unwrap(), &s.agent);
    // The lockout is alice's alone.
    assert_pam_success(&s.pam.authenticate("bob", BOB.password).unwrap(), &s.agent);
}

/// After a restart the agent's memory is empty: with slapd down, every answer comes from disk.
#[test]
fn the_agent_restarted_while_slapd_is_down_answers_from_disk() {
    let mut s = offline_setup(|o| o);
    let online = alice_logs_in_and_is_looked_up(&s);
    s.slapd.stop().unwrap();
    s.agent.restart().unwrap();
    s.guard_every_command();
    assert_alice_is_served_from_the_cache(&s, &online);
}

/// SIGKILL while lookups pour cache writes in (an enumeration, then distinct users by name and
/// uid), then a restart on the same cache_dir with slapd down: the file opens cleanly (nothing
/// moved aside) and what was committed before the burst answers.
#[test]
fn the_cache_reopens_cleanly_after_kill_9_during_a_burst_of_cache_writes() {
    const ROUNDS: usize = 300;
    const KILL_AFTER: usize = 25;
    let mut s = offline_setup(|o| o);
    let online = alice_logs_in_and_is_looked_up(&s);
    // A clean stop flushes: alice's session is on disk whatever the writer's batching.
    s.agent.restart().unwrap();

    let scratch = TempDir::new("burst").unwrap();
    let progress = scratch.join("progress");
    // One progress line per round: its number and the two lookups' exit codes.
    let script = format!(
        "getent passwd >/dev/null; for i in $(seq 1 {ROUNDS}); do \
         getent passwd \"$(printf 'user%04d' \"$i\")\" >/dev/null; a=$?; getent passwd \"$((20000 + i))\" >/dev/null; \
         echo \"$i $a $?\" >> \"$1\"; done"
    );
    let progress_lines =
        || fs::read_to_string(&progress).map(|t| t.lines().map(str::to_owned).collect::<Vec<_>>()).unwrap_or_default();
    let rounds_done = || progress_lines().len();
    let Offline { ns, agent, .. } = &mut s;
    let (reached, killed, done_at_kill, burst) = std::thread::scope(|scope| {
        let ns = &*ns;
        let argv = vec!["sh".to_owned(), "-c".to_owned(), script, "sh".to_owned(), progress.display().to_string()];
        let burst = scope.spawn(move || ns.run(&argv));
        let reached = poll_until("the burst to get going", Duration::from_secs(20), Duration::from_millis(5), || {
            Ok((rounds_done() >= KILL_AFTER).then_some(()))
        });
        let killed = agent.kill();
        let done_at_kill = rounds_done();
        (reached, killed, done_at_kill, burst.join())
    });
    let burst = burst.expect("the burst thread panicked");
    assert!(reached.is_ok(), "{reached:?}\n{burst:?}\n--- lanyardd log ---\n{}", s.agent.log());
    let killed = killed.unwrap();
    assert_eq!(killed.signal(), Some(libc::SIGKILL), "{killed}");
    assert!(done_at_kill < ROUNDS, "the burst was over before the kill; make it longer");
    // Before the kill every lookup found its user: each answer was a cache write.
    let found: Vec<String> = (1..=KILL_AFTER).map(|i| format!("{i} 0 0")).collect();
    assert_eq!(progress_lines()[..KILL_AFTER], found[..], "{burst:?}");

    s.slapd.stop().unwrap();
    let mark = s.agent.log_mark();
    s.agent.restart().unwrap();
    s.guard_every_command();
    let passwd = s.ns.getent("passwd", &["alice"]).unwrap();
    assert_success(&passwd, &s.agent);
    assert_eq!(passwd.stdout(), ALICE_LINE);
    let id = s.ns.run(&["id", "alice"]).unwrap();
    assert_success(&id, &s.agent);
    assert_eq!(id_fields(&id), online.id);
    assert_pam_success(&s.pam.authenticate("alice", ALICE.password).unwrap(), &s.agent);

    let log = s.agent.log_since(mark);
    let lower = log.to_lowercase();
    // The store's words for a file it could not open (and the name it moves one aside to).
    for sign in ["moved aside", "cache.redb.broken", "corrupt"] {
        assert!(!lower.contains(sign), "the reopened cache was not clean ({sign:?}):\n{log}");
    }
    assert_eq!(moved_aside(&s.agent.cache_dir()), Vec::<PathBuf>::new());
    assert_eq!(mode_and_owner(&s.agent.cache_file()).unwrap(), (0o600, euid()));
}

/// An agent with the directory out of reach (nothing to cache; the file is made at start),
/// launched as `launch`.
struct Unreachable {
    agent: Agent,
    _dir: TempDir,
}

fn unreachable_agent(launch: &Launch) -> Unreachable {
    let dir = TempDir::new("cachemode").unwrap();
    let pki = TestPki::generate(dir.path()).unwrap();
    let secret = dir.join("bind.secret");
    write_file_mode(&secret, b"not-a-real-password", 0o600).unwrap();
    let uri = format!("ldap://127.0.0.1:{}", closed_port().unwrap());
    let config = AgentConfig::new(vec![uri], &pki.ca_pem, &secret).timeout(&format!("{BUDGET_SECS}s"));
    Unreachable { agent: Agent::start_with(&config, launch).unwrap(), _dir: dir }
}

/// Waits, bounded, for the agent's cache file to exist.
#[track_caller]
fn wait_for_cache_file(agent: &Agent) {
    let file = agent.cache_file();
    let made = poll_until("the cache file", Duration::from_secs(5), Duration::from_millis(10), || {
        Ok(file.is_file().then_some(()))
    });
    assert!(made.is_ok(), "no {} after start:\n{}", file.display(), agent.log());
}

/// Under umask 000 a file made without an explicit mode would be 0666: only an explicit 0600
/// passes.
#[test]
fn the_cache_file_is_0600_even_under_umask_000() {
    let mut u = unreachable_agent(&Launch::default().umask(0));
    wait_for_cache_file(&u.agent);
    assert_eq!(mode_and_owner(&u.agent.cache_file()).unwrap(), (0o600, euid()));
    let (dir_mode, _) = mode_and_owner(&u.agent.cache_dir()).unwrap();
    assert_eq!(dir_mode & 0o002, 0, "cache_dir is world-writable: {dir_mode:o}");

    // A file some other hand opened up (a restore from backup, say) is closed again at start.
    u.agent.stop().unwrap();
    fs::set_permissions(u.agent.cache_file(), fs::Permissions::from_mode(0o644)).unwrap();
    u.agent.restart_with(&Launch::default().umask(0)).unwrap();
    // Bounded: the store may open just after the socket is ready.
    let file = u.agent.cache_file();
    let closed =
        poll_until("the cache file to be 0600 again", Duration::from_secs(5), Duration::from_millis(10), || {
            Ok((mode_and_owner(&file)?.0 == 0o600).then_some(()))
        });
    assert!(closed.is_ok(), "{:?}: {:o}\n{}", closed, mode_and_owner(&file).unwrap().0, u.agent.log());
    assert_eq!(mode_and_owner(&file).unwrap(), (0o600, euid()));
}

#[test]
fn a_missing_cache_dir_is_created_without_group_or_world_write_even_under_umask_000() {
    let mut u = unreachable_agent(&Launch::default());
    u.agent.stop().unwrap();
    fs::remove_dir_all(u.agent.cache_dir()).unwrap();
    u.agent.restart_with(&Launch::default().umask(0)).unwrap();
    wait_for_cache_file(&u.agent);
    let (dir_mode, dir_owner) = mode_and_owner(&u.agent.cache_dir()).unwrap();
    assert_eq!((dir_mode & 0o022, dir_owner), (0, euid()), "cache_dir was created {dir_mode:o}");
    assert_eq!(mode_and_owner(&u.agent.cache_file()).unwrap(), (0o600, euid()));
}

#[test]
fn a_garbage_cache_file_is_moved_aside_and_the_agent_still_serves() {
    let mut s = offline_setup(|o| o);
    assert_success(&s.ns.getent("passwd", &["alice"]).unwrap(), &s.agent);
    s.agent.stop().unwrap();
    let garbage = b"this is not a redb file\n".repeat(512);
    fs::write(s.agent.cache_file(), &garbage).unwrap();
    let mark = s.agent.log_mark();
    s.agent.restart().unwrap();

    let passwd = s.ns.getent("passwd", &["alice"]).unwrap();
    assert_success(&passwd, &s.agent);
    assert_eq!(passwd.stdout(), ALICE_LINE);
    assert_pam_success(&s.pam.authenticate("alice", ALICE.password).unwrap(), &s.agent);

    let aside = moved_aside(&s.agent.cache_dir());
    assert_eq!(aside.len(), 1, "expected one cache.redb.broken-* file: {aside:?}\n{}", s.agent.log());
    assert!(fs::read(&aside[0]).unwrap() == garbage, "{} is not the garbage file", aside[0].display());
    assert!(fs::read(s.agent.cache_file()).unwrap() != garbage, "cache.redb is still the garbage");
    assert_eq!(mode_and_owner(&s.agent.cache_file()).unwrap(), (0o600, euid()));
    let log = s.agent.log_since(mark);
    assert!(
        log.lines().any(|l| l.contains("WARN") && l.contains("cache.redb")),
        "no warning names the cache file:\n{log}"
    );
}

/// Beyond the Done-when list: a real login (sshd, login) runs the account check after the
/// password, and it must pass offline too.
#[test]
fn an_offline_login_also_passes_the_account_check() {
    let mut s = offline_setup(|o| o);
    let login =
        |pam: &Pam| pam.pamtester(Caller::Root, "alice", &["authenticate", "acct_mgmt"], &[ALICE.password], &[]);
    assert_pam_success(&login(&s.pam).unwrap(), &s.agent);
    let_the_cache_go_stale();
    s.slapd.stop().unwrap();
    s.guard_every_command();
    let out = login(&s.pam).unwrap();
    assert_pam_success(&out, &s.agent);
    assert!(out.stdout().contains("account management done"), "{out}");
}

/// From the Build list: a password changed online replaces the verifier.
#[test]
fn a_password_changed_online_replaces_the_offline_verifier() {
    let mut s = offline_setup(|o| o);
    assert_pam_success(&s.pam.authenticate(CHANGER.name, CHANGER.password).unwrap(), &s.agent);
    let out = s.pam.chauthtok(Caller::user(&CHANGER), CHANGER.name, CHANGER.password, CHANGER_NEW_PASSWORD).unwrap();
    assert_pam_success(&out, &s.agent);
    s.slapd.stop().unwrap();
    s.guard_every_command();
    assert_pam_success(&s.pam.authenticate(CHANGER.name, CHANGER_NEW_PASSWORD).unwrap(), &s.agent);
    assert_pam_error(&s.pam.authenticate(CHANGER.name, CHANGER.password).unwrap(), PamCode::AuthErr, &s.agent);
}
