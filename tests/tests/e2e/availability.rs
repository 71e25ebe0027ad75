//! Without a working agent, lookups fail at once (every command runs under the hang guard) and
//! users from `files` still resolve.

use lanyard_tests::{Namespace, Output, TempDir};

use crate::common::{GETENT_NOT_FOUND, Thaw, setup};

#[track_caller]
fn assert_fails_cleanly(out: &Output) {
    assert_eq!(out.code(), Some(GETENT_NOT_FOUND), "{out}");
    assert_eq!(out.stdout(), "", "{out}");
}

/// `files` users through the same namespace: root by name, by uid, and through id.
#[track_caller]
fn assert_files_still_answer(ns: &Namespace) {
    let root = ns.getent("passwd", &["root"]).unwrap();
    assert_eq!(root.code(), Some(0), "{root}");
    assert!(root.stdout().starts_with("root:x:0:0:"), "{root}");
    let by_uid = ns.getent("passwd", &["0"]).unwrap();
    assert!(by_uid.stdout().starts_with("root:x:0:0:"), "{by_uid}");
    let id = ns.run(&["id", "root"]).unwrap();
    assert_eq!(id.code(), Some(0), "{id}");
    assert!(id.stdout().starts_with("uid=0(root) gid=0(root)"), "{id}");
}

/// Lookups of a directory user and group nobody asked for before, so the agent's snapshot
/// (which keeps answering what it holds while the agent is away: `snapshot.rs`) cannot.
fn assert_directory_lookups_fail(ns: &Namespace, user: &str, uid: &str, group: &str) {
    assert_fails_cleanly(&ns.getent("passwd", &[user]).unwrap());
    assert_fails_cleanly(&ns.getent("passwd", &[uid]).unwrap());
    assert_fails_cleanly(&ns.getent("group", &[group]).unwrap());
    let id = ns.run(&["id", user]).unwrap();
    assert_eq!(id.code(), Some(1), "{id}");
}

#[test]
fn lookups_fail_promptly_and_files_still_answer_when_the_agent_is_stopped() {
    let mut s = setup();
    let before = s.ns.getent("passwd", &["alice"]).unwrap();
    assert_eq!(before.code(), Some(0), "lookup failed while the agent ran:\n{before}\n{}", s.agent.log());

    s.agent.stop().unwrap();
    // Not alice: the snapshot may hold her by now, and answers her with the agent gone.
    assert_directory_lookups_fail(&s.ns, "bob", "10002", "ops");
    assert_files_still_answer(&s.ns);
}

#[test]
fn lookups_fail_promptly_when_no_agent_ever_ran() {
    let empty_run_dir = TempDir::new("norun").unwrap();
    let ns = Namespace::new(empty_run_dir.path()).unwrap();
    assert_directory_lookups_fail(&ns, "alice", "10001", "developers");
    assert_files_still_answer(&ns);
}

/// An agent that accepts connections but never answers (SIGSTOP): the module's socket timeouts
/// must end the lookup; the hang guard fails the test if they do not.
#[test]
fn lookups_return_when_the_agent_is_frozen() {
    let mut s = setup();
    s.agent.freeze().unwrap();
    let thaw_on_exit = Thaw(&mut s.agent);
    assert_fails_cleanly(&s.ns.getent("passwd", &["alice"]).unwrap());
    assert_files_still_answer(&s.ns);
    drop(thaw_on_exit);
}

/// A stuck agent costs a process one full reply deadline (7 s), not one per lookup: after the
/// first timeout the module gives it a short deadline. Six lookups in one `getent` would take
/// 42 s otherwise; the guard (a hang guard with a wide margin, not a measurement) is 20 s.
#[test]
fn a_frozen_agent_costs_a_process_one_long_wait_not_one_per_lookup() {
    let mut s = setup();
    s.agent.freeze().unwrap();
    let thaw_on_exit = Thaw(&mut s.agent);
    s.ns.set_guard(std::time::Duration::from_secs(20));
    let out = s.ns.getent("passwd", &["alice", "bob", "jose", "user0001", "user0002", "user0003"]).unwrap();
    assert_fails_cleanly(&out);
    drop(thaw_on_exit);
}
