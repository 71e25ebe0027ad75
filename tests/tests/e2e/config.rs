//! Configurations lanyardd must refuse at start, with a message naming the key (and, for an
//! unknown key, the file). A valid twin of each starts, so a refusal is about the defect.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use lanyard_tests::slapd::closed_port;
use lanyard_tests::tempdir::write_file_mode;
use lanyard_tests::{Agent, AgentConfig, TempDir, TestPki};

/// A CA and a 0600 password file, and a config using them against a port nobody listens on.
struct Offline {
    config: AgentConfig,
    dir: TempDir,
}

fn offline() -> Offline {
    let dir = TempDir::new("cfg").unwrap();
    let pki = TestPki::generate(dir.path()).unwrap();
    let secret = dir.join("bind.secret");
    write_file_mode(&secret, b"not-a-real-password", 0o600).unwrap();
    let uri = format!("ldap://127.0.0.1:{}", closed_port().unwrap());
    Offline { config: AgentConfig::new(vec![uri], &pki.ca_pem, &secret), dir }
}

#[track_caller]
fn assert_refused(status: ExitStatus, log: &str, key: &str) {
    assert!(
        status.code().is_some_and(|c| c != 0),
        "lanyardd exited with {status} (signal {:?}):\n{log}",
        status.signal()
    );
    assert!(!log.contains("panicked"), "lanyardd panicked instead of refusing:\n{log}");
    assert!(log.contains(key), "the message does not name `{key}`:\n{log}");
}

#[test]
fn a_valid_config_starts_even_with_the_directory_unreachable() {
    let o = offline();
    let mut agent = Agent::start(&o.config).unwrap();
    assert!(agent.exited().unwrap().is_none(), "{}", agent.log());
}

#[test]
fn unknown_key_is_refused_naming_the_key_and_the_file() {
    let o = offline();
    let (status, log, path) = Agent::run_expect_failure(&o.config.directory_line("colour = \"red\"")).unwrap();
    assert_refused(status, &log, "colour");
    assert!(log.contains(&*path.to_string_lossy()), "the message does not name {}:\n{log}", path.display());
}

#[test]
fn bad_uri_is_refused_naming_uris() {
    let o = offline();
    let (status, log, _) = Agent::run_expect_failure(&o.config.uris(vec!["http://x".into()])).unwrap();
    assert_refused(status, &log, "uris");
}

#[test]
fn missing_ca_file_is_refused_naming_ca_file() {
    let o = offline();
    let missing = o.dir.join("no-such-ca.pem");
    let (status, log, _) = Agent::run_expect_failure(&o.config.ca_file(&missing)).unwrap();
    assert_refused(status, &log, "ca_file");
}

#[test]
fn readable_bind_password_file_is_refused_naming_it() {
    let o = offline();
    let open = o.dir.join("open.secret");
    write_file_mode(&open, b"not-a-real-password", 0o644).unwrap();
    let (status, log, _) = Agent::run_expect_failure(&o.config.bind_password_file(&open)).unwrap();
    assert_refused(status, &log, "bind_password_file");
}
