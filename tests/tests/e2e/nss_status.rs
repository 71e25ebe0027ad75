//! The `enum nss_status` the module hands glibc, read with `lanyard-nss-probe` (getent exits 2
//! for NOTFOUND and UNAVAIL alike): SUCCESS for a directory user, NOTFOUND only when the agent
//! answered "no such entry", UNAVAIL whenever no answer could be had (DESIGN.md's status
//! mapping). With `[NOTFOUND=return]` in nsswitch.conf, an UNAVAIL reported as NOTFOUND would
//! make a directory user vanish during an outage.
//!
//! While the directory is unreachable every probe runs under [`GUARD`], shorter than the
//! module's own reply deadline: an agent stuck on the directory makes the test fail as hung
//! instead of passing on the module's timeout (which is UNAVAIL too).

use std::time::Duration;

use lanyard_tests::{Namespace, TempDir};

use crate::common::{
    NSS_STATUS_NOTFOUND, NSS_STATUS_SUCCESS, NSS_STATUS_UNAVAIL, Setup, assert_nss_status, getpwnam_status, setup,
    setup_with,
};

/// `[directory] timeout` while the directory goes away, in seconds.
const BUDGET_SECS: u64 = 1;
/// The hang guard of each probe while the directory is unreachable: the budget plus a generous
/// margin for unshare, exec and a loaded machine. A hang guard, NOT a latency measurement.
const GUARD: Duration = Duration::from_secs(BUDGET_SECS + 4);
// Below the module's reply deadline (`Deadlines::default().reply`, 7 s): see the module docs.
const _: () = assert!(BUDGET_SECS + 4 < 7);

/// A directory user no test here looks up before the directory goes away.
const NEVER_CACHED: &str = "user0042";

#[track_caller]
fn assert_finds_alice(s: &Setup) {
    let answer = getpwnam_status(&s.ns, "alice");
    assert_nss_status(&answer, NSS_STATUS_SUCCESS, &s.agent);
    assert_eq!(answer.found, Some(("alice".to_owned(), 10001)), "{answer:?}");
}

/// An agent with a 1 s directory budget that has answered alice once (so she is cached),
/// with every later probe under [`GUARD`].
fn setup_with_alice_cached() -> Setup {
    let mut s = setup_with(|config| config.timeout(&format!("{BUDGET_SECS}s")));
    assert_finds_alice(&s);
    s.ns.set_guard(GUARD);
    s
}

#[test]
fn getpwnam_r_returns_success_and_leaves_errno_alone_for_a_directory_user() {
    let s = setup();
    assert_finds_alice(&s);
}

#[test]
fn getpwnam_r_returns_notfound_for_an_unknown_user_while_the_agent_is_up() {
    let s = setup();
    for name in ["nosuchuser", "member0001"] {
        let answer = getpwnam_status(&s.ns, name);
        assert_nss_status(&answer, NSS_STATUS_NOTFOUND, &s.agent);
        assert_eq!(answer.found, None);
    }
    // Refused by the module before any traffic: a name nobody can have is NOTFOUND as well.
    assert_nss_status(&getpwnam_status(&s.ns, "*)(uid=*"), NSS_STATUS_NOTFOUND, &s.agent);
}

#[test]
fn getpwnam_r_returns_unavail_when_the_agent_is_stopped() {
    let mut s = setup();
    assert_finds_alice(&s);
    s.agent.stop().unwrap();
    // Not alice: the agent's snapshot may hold her by now and answers her with the agent gone
    // (snapshot.rs). Names nobody asked for are UNAVAIL.
    for name in ["bob", "nosuchuser"] {
        let answer = getpwnam_status(&s.ns, name);
        assert_nss_status(&answer, NSS_STATUS_UNAVAIL, &s.agent);
        assert_eq!(answer.found, None);
    }
}

#[test]
fn getpwnam_r_returns_unavail_when_no_agent_ever_ran() {
    let empty_run_dir = TempDir::new("norun").unwrap();
    let ns = Namespace::new(empty_run_dir.path()).unwrap();
    let answer = getpwnam_status(&ns, "alice");
    assert_eq!((answer.status, answer.errno, answer.found), (NSS_STATUS_UNAVAIL, libc::ENOENT, None));
}

/// Offline, the agent cannot know whether a name it never cached exists: UNAVAIL, never
/// NOTFOUND. A cached user still resolves, so the agent itself is answering.
#[test]
fn getpwnam_r_returns_unavail_for_a_never_cached_name_while_the_directory_is_stopped() {
    let mut s = setup_with_alice_cached();
    s.slapd.stop().unwrap();
    for name in [NEVER_CACHED, "nosuchuser"] {
        assert_nss_status(&getpwnam_status(&s.ns, name), NSS_STATUS_UNAVAIL, &s.agent);
    }
    assert_finds_alice(&s);
}

#[test]
fn getpwnam_r_returns_unavail_for_a_never_cached_name_while_the_directory_is_hung() {
    let mut s = setup_with_alice_cached();
    // Thawed on drop, also when an assertion fails.
    s.slapd.freeze().unwrap();
    for name in [NEVER_CACHED, "nosuchuser"] {
        assert_nss_status(&getpwnam_status(&s.ns, name), NSS_STATUS_UNAVAIL, &s.agent);
    }
    assert_finds_alice(&s);
}
