//! Secrets (issue 7, item 5): after successful and failed logins, an offline login and a
//! password change, with the agent logging at debug level, no test password is in the agent's
//! log, in slapd's log, or in a core dump of the running agent (`gcore`, written to scratch).
//! The loopback capture of the same flows is in `capture`.

use std::fs;
use std::time::Duration;

use lanyard_tests::fixture::{ALICE, BOB, CHANGER, CHANGER_NEW_PASSWORD, JOSE, LOCKED, NAMED_USERS};
use lanyard_tests::pam::PamCode;
use lanyard_tests::{Agent, AgentConfig, Caller, Launch, OfflineConfig, Pam, Slapd, TempDir, run_bounded};

use crate::common::{assert_pam_error, assert_pam_success};

const WRONG_ALICE: &str = "not-Alices-password-1";
const WRONG_BOB: &str = "wrong-Bob-Secret-9";
const WRONG_NOBODY: &str = "nobodys-Password-8";
const READERS_PASSWORD: &str = "the reader's bind password";
/// gcore stops the agent, copies its memory and lets it go; a hang guard.
const GCORE_GUARD: Duration = Duration::from_secs(120);
/// Commands after slapd is stopped: a hang guard over the 1 s directory budget.
const OFFLINE_GUARD: Duration = Duration::from_secs(6);

/// slapd, an agent logging at debug level, and the scenario's secrets, named.
struct Scenario {
    pam: Pam,
    agent: Agent,
    slapd: Slapd,
    secrets: Vec<(String, String)>,
}

/// Logins that succeed and fail, online and offline, and a password change.
fn logins_at_debug_level() -> Scenario {
    let mut s = online_logins_at_debug_level();
    s.slapd.stop().unwrap();
    s.pam.set_guard(OFFLINE_GUARD);
    assert_pam_success(&s.pam.authenticate("alice", ALICE.password).unwrap(), &s.agent);
    assert_pam_error(&s.pam.authenticate("alice", WRONG_ALICE).unwrap(), PamCode::AuthErr, &s.agent);
    assert!(s.agent.log().contains("now offline"), "the agent never went offline:\n{}", s.agent.log());
    s
}

/// Logins that succeed and fail and a password change, with the directory up.
fn online_logins_at_debug_level() -> Scenario {
    let slapd = Slapd::start().unwrap();
    let config = AgentConfig::for_slapd(&slapd).timeout("1s").offline(OfflineConfig::default().probe_interval("1s"));
    let launch = Launch::default().env(vec![("RUST_LOG".into(), "debug".into())]);
    let agent = Agent::start_with(&config, &launch).unwrap();
    let pam = Pam::for_agent(&agent).unwrap();

    assert_pam_success(&pam.authenticate("alice", ALICE.password).unwrap(), &agent);
    assert_pam_error(&pam.authenticate("alice", WRONG_ALICE).unwrap(), PamCode::AuthErr, &agent);
    assert_pam_success(&pam.authenticate("bob", BOB.password).unwrap(), &agent);
    assert_pam_error(&pam.authenticate("bob", WRONG_BOB).unwrap(), PamCode::AuthErr, &agent);
    assert_pam_success(&pam.authenticate("jose", JOSE.password).unwrap(), &agent);
    // The right password, refused by the policy's lock: it still went through the agent.
    assert_eq!(pam.authenticate("locked", LOCKED.password).unwrap().code(), Some(1));
    let nobody = pam.authenticate("nosuchuser", WRONG_NOBODY).unwrap();
    assert_eq!(nobody.code(), Some(1), "{nobody}");
    let change = pam.chauthtok(Caller::user(&CHANGER), CHANGER.name, CHANGER.password, CHANGER_NEW_PASSWORD).unwrap();
    assert_pam_success(&change, &agent);
    assert_pam_success(&pam.authenticate(CHANGER.name, CHANGER_NEW_PASSWORD).unwrap(), &agent);

    let mut secrets: Vec<(String, String)> =
        NAMED_USERS.iter().map(|u| (format!("{}'s password", u.name), u.password.to_owned())).collect();
    for (what, secret) in [
        ("changer's new password", CHANGER_NEW_PASSWORD),
        ("a wrong password for alice", WRONG_ALICE),
        ("a wrong password for bob", WRONG_BOB),
        ("a password for an unknown user", WRONG_NOBODY),
    ] {
        secrets.push((what.to_owned(), secret.to_owned()));
    }
    let reader = fs::read_to_string(slapd.bind_secret()).unwrap();
    secrets.push((READERS_PASSWORD.to_owned(), reader.trim_end().to_owned()));
    Scenario { pam, agent, slapd, secrets }
}

/// Where `needle` occurs in `haystack` (offsets; overlapping matches counted).
fn occurrences(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    if needle.is_empty() {
        return Vec::new();
    }
    haystack.windows(needle.len()).enumerate().filter(|(_, w)| *w == needle).map(|(i, _)| i).collect()
}

/// The secrets found in `text`, with how often.
fn secrets_in(text: &[u8], secrets: &[(String, String)]) -> Vec<(String, usize)> {
    secrets
        .iter()
        .map(|(what, secret)| (what.clone(), occurrences(text, secret.as_bytes()).len()))
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[test]
fn the_secret_search_finds_what_is_there() {
    let secrets = vec![("a".to_owned(), "pw-1".to_owned()), ("b".to_owned(), "pw-2".to_owned())];
    assert_eq!(secrets_in(b"xx pw-1 yy pw-1pw-1", &secrets), vec![("a".to_owned(), 3)]);
    assert!(secrets_in(b"pw-", &secrets).is_empty());
}

#[test]
fn debug_logs_of_the_agent_and_slapd_hold_no_test_password_after_logins_and_a_change() {
    let s = logins_at_debug_level();
    let agent_log = s.agent.log();
    // Not vacuous: the agent did log at debug level, and slapd logged the binds.
    assert!(agent_log.contains("DEBUG"), "no debug lines in the agent's log:\n{agent_log}");
    let slapd_log = s.slapd.log();
    assert!(slapd_log.contains("BIND"), "slapd logged no bind:\n{slapd_log}");
    eprintln!("agent log {} bytes, slapd log {} bytes", agent_log.len(), slapd_log.len());
    assert_eq!(secrets_in(agent_log.as_bytes(), &s.secrets), vec![], "in the agent's log:\n{agent_log}");
    assert_eq!(secrets_in(slapd_log.as_bytes(), &s.secrets), vec![], "in slapd's log");
    drop(s.pam);
}

/// A core dump of the running agent (`gcore`) after the logins; the dump goes to scratch.
fn core_of(agent: &Agent) -> (TempDir, Vec<u8>) {
    let dir = TempDir::new("core").unwrap();
    let prefix = dir.join("lanyardd");
    let mut gcore = std::process::Command::new("gcore");
    gcore.arg("-o").arg(&prefix).arg(agent.pid().to_string());
    let out = run_bounded(&mut gcore, "gcore lanyardd", GCORE_GUARD).unwrap();
    assert_eq!(out.code(), Some(0), "{out}");
    let core = fs::read(dir.join(format!("lanyardd.{}", agent.pid()))).unwrap();
    (dir, core)
}

/// The agent wipes its own copies of passwords (`Secret`, zeroized on drop), and its allocator
/// wipes every block it frees, which covers the copies libraries make (ldap3's BER encoding of
/// the bind, rustls' plaintext records). What the dump may hold is the service account's own
/// password: the agent needs it to open new connections, so it is live on purpose (and checked
/// to stay out of the logs above).
#[test]
fn a_core_dump_of_the_agent_after_logins_holds_no_test_password() {
    // Online first: the binder connections that carried the binds are still open (pooled), so
    // their buffers are live, not freed.
    let mut s = online_logins_at_debug_level();
    assert_no_user_password_in_a_core_dump(&mut s, "online, connections open");
    s.slapd.stop().unwrap();
    s.pam.set_guard(OFFLINE_GUARD);
    assert_pam_success(&s.pam.authenticate("alice", ALICE.password).unwrap(), &s.agent);
    assert_pam_error(&s.pam.authenticate("alice", WRONG_ALICE).unwrap(), PamCode::AuthErr, &s.agent);
    assert_no_user_password_in_a_core_dump(&mut s, "offline, after offline logins");
}

fn assert_no_user_password_in_a_core_dump(s: &mut Scenario, when: &str) {
    let (_dir, core) = core_of(&s.agent);
    assert_eq!(s.agent.exited().unwrap(), None, "gcore left lanyardd dead");
    // Not vacuous: the dump holds what the agent keeps on purpose (cached entries, its bind DN).
    assert!(!occurrences(&core, b"Alice Liddell").is_empty(), "alice's cached entry is not in the dump");
    assert!(!occurrences(&core, lanyard_tests::fixture::READER_DN.as_bytes()).is_empty());
    let users_secrets: Vec<_> = s.secrets.iter().filter(|(what, _)| what != READERS_PASSWORD).cloned().collect();
    assert_eq!(users_secrets.len(), s.secrets.len() - 1);
    let found = secrets_in(&core, &users_secrets);
    eprintln!("core dump ({when}): {} bytes; secrets found: {found:?}", core.len());
    // Where: the bytes around each occurrence, for whoever goes after the copies.
    for (what, secret) in &users_secrets {
        for at in occurrences(&core, secret.as_bytes()) {
            let context = &core[at.saturating_sub(48)..(at + secret.len() + 16).min(core.len())];
            eprintln!("{what} at {at:#x}: {}", context.escape_ascii());
        }
    }
    assert_eq!(found, vec![], "test passwords in a core dump of lanyardd ({when})");
}
