//! Issue 7 item 6: the wall clock jumping back and forth while the agent runs (NTP stepping a
//! laptop's clock after a suspend, an RTC that lost its battery, `date -s`). The agent runs under
//! a [`JumpableClock`]: its wall clock (`CLOCK_REALTIME`) jumps when the test says, its monotonic
//! clock stays real. Which clock each rule uses, and what these tests show:
//!
//! | what | clock | shown by |
//! | --- | --- | --- |
//! | in-memory `ttl` | monotonic | jumps either way change nothing; after a jump back the entry still expires on time |
//! | disk cache ages (`fetched_at`) | wall (must survive restarts) | an entry "from the future" is stale, answered and refreshed once, then fresh on the new timeline |
//! | `offline.max_age` | wall (must survive restarts) | refused past the window, accepted again when the clock comes back into it; a jump back does not stretch it |
//! | offline `lockout` | wall, capped at `lockout` from now | a jump back keeps the lock but never makes it longer than `lockout`; a jump forward past it ends it |
//!
//! Every verdict is an observable effect: slapd's log of searches, `lanyardctl user`'s source
//! line and the agent's counters (`lanyardctl metrics`), getent and pamtester results. Nothing
//! measures time. The only sleeps are setup (past a 2 s ttl), and every wait is a poll bounded in
//! tries and time.

use std::time::Duration;

use lanyard_tests::agent::JumpableClock;
use lanyard_tests::fixture::{ALICE, BOB};
use lanyard_tests::pam::PamCode;
use lanyard_tests::{
    Agent, AgentConfig, HANG_GUARD, Launch, Namespace, OfflineConfig, Output, Pam, Slapd, lanyardctl_path, poll_until,
    require_built, run_bounded,
};

use crate::common::{assert_pam_error, assert_pam_success, assert_success};

const ALICE_LINE: &str = "alice:x:10001:10000:Alice Liddell:/home/alice:/bin/bash";
const WRONG_PASSWORD: &str = "not-Alices-password-1";
/// What every search the agent makes for alice's entry by name has in its filter.
const ALICE_FILTER: &str = "(uid=alice)";

/// `[directory] timeout` and the hang guard of every command while slapd is stopped: the budget
/// plus a generous margin for unshare, exec and an Argon2id check on a loaded machine. A hang
/// guard, not a latency measurement; below the modules' 7 s reply deadline (see offline.rs).
const BUDGET: &str = "1s";
const OFFLINE_GUARD: Duration = Duration::from_secs(5);

/// The short ttl of [`a_short_memory_ttl_still_runs_out_after_the_wall_clock_jumps_back`], and
/// the bounded sleep that takes every entry past it (setup, not an assertion).
const SHORT_TTL: &str = "2s";
const PAST_SHORT_TTL: Duration = Duration::from_millis(2500);

/// Waiting for something the agent does in the background (a refresh reaching slapd, its answer
/// reaching memory): at most 41 tries, 250 ms apart.
const BACKGROUND_LIMIT: Duration = Duration::from_secs(10);
const BACKGROUND_POLL: Duration = Duration::from_millis(250);

/// slapd, an agent on a jumpable clock, and the namespaces for getent and pamtester. Fields drop
/// in this order: the agent stops before the clock's spec file goes away.
struct Clocked {
    ns: Namespace,
    pam: Pam,
    agent: Agent,
    slapd: Slapd,
    clock: JumpableClock,
}

fn clocked(adjust: impl FnOnce(AgentConfig) -> AgentConfig) -> Clocked {
    let slapd = Slapd::start().expect("starting slapd");
    let clock = JumpableClock::new().expect("preparing the clock");
    let config = adjust(
        AgentConfig::for_slapd(&slapd)
            .timeout(BUDGET)
            .offline(OfflineConfig::default().probe_interval("1s").max_age("2d").lockout_after(2, "1h")),
    );
    let agent = Agent::start_with(&config, &clock.launch().unwrap()).expect("starting lanyardd");
    let ns = Namespace::for_agent(&agent).expect("preparing the namespace");
    let pam = Pam::for_agent(&agent).expect("preparing the PAM stack");
    Clocked { ns, pam, agent, slapd, clock }
}

impl Clocked {
    fn launch(&self) -> Launch {
        self.clock.launch().unwrap()
    }

    /// Moves the agent's wall clock to the real time plus `offset` (not cumulative).
    fn jump(&self, offset: &str) {
        self.clock.jump(offset).unwrap();
    }

    /// Stops slapd; from here on every command runs under [`OFFLINE_GUARD`].
    fn stop_slapd(&mut self) {
        self.slapd.stop().unwrap();
        self.ns.set_guard(OFFLINE_GUARD);
        self.pam.set_guard(OFFLINE_GUARD);
    }

    /// `lanyardctl user alice`: asserts her entry and returns the `source: ...` line.
    #[track_caller]
    fn alice_source(&self) -> String {
        let out = ctl(&self.agent, &["user", "alice"]);
        assert_success(&out, &self.agent);
        let lines = out.lines();
        assert_eq!(lines.len(), 2, "{out}");
        assert_eq!(lines[0], ALICE_LINE, "{out}");
        lines[1].clone()
    }

    /// `getent passwd alice` through the NSS module: her line.
    #[track_caller]
    fn getent_alice(&self) {
        let out = self.ns.getent("passwd", &["alice"]).unwrap();
        assert_success(&out, &self.agent);
        assert_eq!(out.stdout(), format!("{ALICE_LINE}\n"), "{out}");
    }

    /// How many searches for alice slapd logged since `mark`.
    fn alice_searches_since(&self, mark: usize) -> usize {
        Slapd::search_filters(&self.slapd.log_since(mark)).iter().filter(|f| f.contains(ALICE_FILTER)).count()
    }

    /// Waits (bounded) until slapd has logged a search for alice since `mark`: the agent's
    /// background refresh reached the directory.
    #[track_caller]
    fn wait_for_alice_search(&self, mark: usize, why: &str) {
        let found = poll_until(why, BACKGROUND_LIMIT, BACKGROUND_POLL, || {
            Ok((self.alice_searches_since(mark) > 0).then_some(()))
        });
        if let Err(e) = found {
            panic!("{e:#}\n--- slapd log since the mark ---\n{}", self.slapd.log_since(mark));
        }
    }

    /// Waits (bounded) until alice is answered from memory again: a refresh has landed.
    #[track_caller]
    fn wait_for_alice_in_memory(&self) {
        let mut last = String::new();
        let found = poll_until("alice to be answered from memory", BACKGROUND_LIMIT, BACKGROUND_POLL, || {
            last = self.alice_source();
            Ok(last.starts_with("source: memory (").then_some(()))
        });
        if let Err(e) = found {
            panic!("{e:#}; last source: {last}\n--- lanyardd log ---\n{}", self.agent.log());
        }
    }

    /// The agent's counter `lanyard_NAME_total`, from `lanyardctl metrics`.
    #[track_caller]
    fn counter(&self, name: &str) -> u64 {
        let out = ctl(&self.agent, &["metrics"]);
        assert_success(&out, &self.agent);
        let sample = format!("lanyard_{name}_total ");
        let line = out.lines().into_iter().find(|l| l.starts_with(&sample));
        let value = line.and_then(|l| l[sample.len()..].trim().parse::<f64>().ok());
        value.unwrap_or_else(|| panic!("no counter {sample:?} in:\n{out}")) as u64
    }
}

/// `lanyardctl --socket SOCKET --config CONFIG ARGS...` as root. lanyardctl itself runs on the
/// real clock: only the ages it prints depend on that, and no test here reads them.
fn ctl(agent: &Agent, args: &[&str]) -> Output {
    require_built(&lanyardctl_path()).unwrap();
    let mut cmd = std::process::Command::new(lanyardctl_path());
    cmd.arg("--socket").arg(agent.socket()).arg("--config").arg(agent.config_path()).args(args);
    run_bounded(&mut cmd, &format!("lanyardctl {}", args.join(" ")), HANG_GUARD).unwrap()
}

#[track_caller]
fn assert_stale_from_disk(source: &str) {
    assert!(source.starts_with("source: disk (") && source.ends_with(", stale)"), "not a stale disk answer: {source}");
}

/// With a 1 h ttl, alice's entry cached in memory is answered from memory, with no search, after
/// the wall clock jumps two days ahead, two days back, and back to the real time. A ttl measured
/// on the wall clock would have expired at the jump ahead (and gone to the disk cache, whose
/// entry is then two days old: a stale answer and a refresh).
#[test]
fn memory_ttl_ignores_wall_clock_jumps_both_ways() {
    let s = clocked(|c| c.ttl("1h"));
    let mark = s.slapd.log_mark();
    assert_eq!(s.alice_source(), "source: directory");
    // Positive control: slapd's log does show the agent's search for her.
    assert_eq!(s.alice_searches_since(mark), 1, "{}", s.slapd.log_since(mark));
    // The snapshot is published shortly after the cache changes: wait until it holds her.
    poll_until("alice in the NSS snapshot", Duration::from_secs(5), Duration::from_millis(50), || {
        let lookups = s.counter("lookups");
        s.getent_alice();
        Ok((s.counter("lookups") == lookups).then_some(()))
    })
    .unwrap();

    for offset in ["+2d", "-2d", "+0"] {
        s.jump(offset);
        let mark = s.slapd.log_mark();
        let (misses, stale, disk) =
            (s.counter("cache_misses"), s.counter("cache_stale_answers"), s.counter("cache_disk_hits"));
        let (memory_hits, lookups) = (s.counter("cache_memory_hits"), s.counter("lookups"));
        // getent: from the NSS module's snapshot, whose expiries are on CLOCK_BOOTTIME, which a
        // wall-clock jump does not move: it never reaches the agent.
        s.getent_alice();
        assert_eq!(s.counter("lookups"), lookups, "after a jump to {offset}: getent was not answered in-process");
        let source = s.alice_source();
        assert!(source.starts_with("source: memory (fetched "), "after a jump to {offset}: {source}");
        assert_eq!(
            (s.counter("cache_memory_hits"), s.counter("cache_misses")),
            (memory_hits + 1, misses),
            "after a jump to {offset}: lanyardctl was not answered from memory"
        );
        assert_eq!((s.counter("cache_stale_answers"), s.counter("cache_disk_hits")), (stale, disk), "at {offset}");
        // A memory hit this young queues no refresh, so nothing can reach slapd later either.
        assert_eq!(s.alice_searches_since(mark), 0, "after a jump to {offset}:\n{}", s.slapd.log_since(mark));
    }
}

/// With a 2 s ttl, the wall clock set back a day does not make the entry in memory fresh for a
/// day: once 2 real seconds have passed, alice's next lookup is no memory hit. The disk cache's
/// copy is then "from the future" (fetched a day ahead of the agent's clock): it is answered as
/// stale and refreshed at once. The refreshed copy carries the new timeline's time, and it too
/// goes stale after the ttl: no entry stays fresh "until the clock catches up".
#[test]
fn a_short_memory_ttl_still_runs_out_after_the_wall_clock_jumps_back() {
    let s = clocked(|c| c.ttl(SHORT_TTL));
    let mark = s.slapd.log_mark();
    assert_eq!(s.alice_source(), "source: directory");
    assert_eq!(s.alice_searches_since(mark), 1, "{}", s.slapd.log_since(mark));

    s.jump("-1d");
    for round in ["the entry fetched before the jump", "the entry refreshed after the jump"] {
        std::thread::sleep(PAST_SHORT_TTL);
        let mark = s.slapd.log_mark();
        let memory_hits = s.counter("cache_memory_hits");
        let source = s.alice_source();
        assert_stale_from_disk(&source);
        assert_eq!(s.counter("cache_memory_hits"), memory_hits, "{round}: still a memory hit past the ttl");
        s.wait_for_alice_search(mark, &format!("{round}: a refresh of alice to reach slapd"));
        s.wait_for_alice_in_memory();
        s.getent_alice();
    }
}

/// offline.max_age (2 d) on the wall clock, as it must be to survive restarts: with slapd
/// stopped after an online login, the login is refused while the clock says 3 days later, and
/// accepted again once the clock is put back inside the window (1 day later, then the real
/// time). A refusal for age changes nothing stored, so a clock that was wrong for a while
/// costs nothing once it is right. Lookups answer from the cache throughout.
#[test]
fn the_offline_window_follows_the_wall_clock_forward_and_back() {
    let mut s = clocked(|c| c);
    assert_pam_success(&s.pam.authenticate("alice", ALICE.password).unwrap(), &s.agent);
    s.getent_alice();
    s.stop_slapd();
    assert_pam_success(&s.pam.authenticate("alice", ALICE.password).unwrap(), &s.agent);

    s.jump("+3d");
    assert_pam_error(&s.pam.authenticate("alice", ALICE.password).unwrap(), PamCode::AuthinfoUnavail, &s.agent);
    s.getent_alice();

    for offset in ["+1d", "+0"] {
        s.jump(offset);
        assert_pam_success(&s.pam.authenticate("alice", ALICE.password).unwrap(), &s.agent);
    }
    // A fresh agent on the same cache whose clock is 3 days ahead refuses too: the window is
    // on disk, not in the process.
    s.jump("+3d");
    s.agent.restart_with(&s.launch()).unwrap();
    assert_pam_error(&s.pam.authenticate("alice", ALICE.password).unwrap(), PamCode::AuthinfoUnavail, &s.agent);
    s.jump("+0");
    s.agent.restart_with(&s.launch()).unwrap();
    assert_pam_success(&s.pam.authenticate("alice", ALICE.password).unwrap(), &s.agent);
}

/// The clock set back to before the last online login: the verifier is counted as made at the
/// first offline check that sees it (the login works), and it expires max_age (2 d) after that
/// check: 3 days later on the jumped clock it is refused, where an age counted from the real
/// login time would still be negative and let it in until the clock caught up. Put right
/// again, the clock leaves the verifier 5 days old: still refused (the agent errs on the side
/// of refusing; the jump back cost the verifier its age). The next online login that makes a
/// verifier gives the user the whole window back.
#[test]
fn a_jump_back_before_the_last_online_login_does_not_stretch_the_offline_window() {
    let mut s = clocked(|c| c);
    assert_pam_success(&s.pam.authenticate("alice", ALICE.password).unwrap(), &s.agent);
    s.stop_slapd();

    s.jump("-5d");
    assert_pam_success(&s.pam.authenticate("alice", ALICE.password).unwrap(), &s.agent);
    s.jump("-2d");
    assert_pam_error(&s.pam.authenticate("alice", ALICE.password).unwrap(), PamCode::AuthinfoUnavail, &s.agent);
    s.jump("+0");
    assert_pam_error(&s.pam.authenticate("alice", ALICE.password).unwrap(), PamCode::AuthinfoUnavail, &s.agent);

    // Back online. The agent makes a new verifier at most every 10 minutes (monotonic) per user,
    // and alice's was made minutes ago: a restarted agent has no such memory, so its first
    // online login makes one (last_online_login = now).
    s.slapd.start_again().unwrap();
    s.agent.restart_with(&s.launch()).unwrap();
    assert_pam_success(&s.pam.authenticate("alice", ALICE.password).unwrap(), &s.agent);
    s.stop_slapd();
    assert_pam_success(&s.pam.authenticate("alice", ALICE.password).unwrap(), &s.agent);
}

/// Offline lockout (2 wrong passwords, 1 h) around clock jumps. Set back a day, the clock keeps
/// alice locked out, but no longer than 1 h from then: 2 h later on the jumped clock she logs in,
/// where the lock's original end (1 h after the real time) would have kept her out another 23 h.
/// Put right (a day forward), nothing is locked and the verifier still works. A new lockout ends
/// when the clock jumps past it: lockouts are on the wall clock, like everything persisted.
#[test]
fn an_offline_lockout_survives_a_jump_back_but_never_outlasts_its_length() {
    let mut s = clocked(|c| c.offline(OfflineConfig::default().probe_interval("1s").lockout_after(2, "1h")));
    assert_pam_success(&s.pam.authenticate("alice", ALICE.password).unwrap(), &s.agent);
    assert_pam_success(&s.pam.authenticate("bob", BOB.password).unwrap(), &s.agent);
    s.stop_slapd();

    let lock_alice_out = |s: &Clocked| {
        for _ in 0..2 {
            assert_pam_error(&s.pam.authenticate("alice", WRONG_PASSWORD).unwrap(), PamCode::AuthErr, &s.agent);
        }
        assert_pam_error(&s.pam.authenticate("alice", ALICE.password).unwrap(), PamCode::Maxtries, &s.agent);
    };
    lock_alice_out(&s);

    s.jump("-1d");
    assert_pam_error(&s.pam.authenticate("alice", ALICE.password).unwrap(), PamCode::Maxtries, &s.agent);
    // The lock is alice's alone.
    assert_pam_success(&s.pam.authenticate("bob", BOB.password).unwrap(), &s.agent);
    s.jump("-22h");
    assert_pam_success(&s.pam.authenticate("alice", ALICE.password).unwrap(), &s.agent);
    s.jump("+0");
    assert_pam_success(&s.pam.authenticate("alice", ALICE.password).unwrap(), &s.agent);

    lock_alice_out(&s);
    s.jump("+2h");
    assert_pam_success(&s.pam.authenticate("alice", ALICE.password).unwrap(), &s.agent);
}

/// The disk cache across restarts. Its entries carry wall-clock fetch times (so their age
/// survives a restart); a fresh agent whose clock is two days behind the entry finds it "from the
/// future": answered, as stale, and refreshed at once, not taken as fresh until the clock
/// catches up. The refreshed entry carries the agent's time, so the next restart on the same
/// clock finds it fresh (no refresh loop). Two days ahead instead, it is stale by age.
#[test]
fn a_disk_entry_from_the_future_is_not_fresh_after_a_restart() {
    let mut s = clocked(|c| c.ttl("1h"));
    assert_eq!(s.alice_source(), "source: directory");

    s.jump("-2d");
    s.agent.restart_with(&s.launch()).unwrap();
    let mark = s.slapd.log_mark();
    let source = s.alice_source();
    assert_stale_from_disk(&source);
    s.wait_for_alice_search(mark, "the refresh of alice's entry from the future to reach slapd");
    s.wait_for_alice_in_memory();

    // Restarted on the same (jumped) clock: the refreshed entry is fresh, answered from disk with
    // no search (a fresh disk hit queues no refresh).
    s.agent.restart_with(&s.launch()).unwrap();
    let mark = s.slapd.log_mark();
    let source = s.alice_source();
    assert!(source.starts_with("source: disk (") && !source.ends_with(", stale)"), "{source}");
    assert_eq!(s.counter("cache_disk_hits"), 1);
    s.getent_alice();
    assert_eq!(s.alice_searches_since(mark), 0, "{}", s.slapd.log_since(mark));

    s.jump("+2d");
    s.agent.restart_with(&s.launch()).unwrap();
    let mark = s.slapd.log_mark();
    assert_stale_from_disk(&s.alice_source());
    s.wait_for_alice_search(mark, "the refresh of alice's two-day-old entry to reach slapd");
}
