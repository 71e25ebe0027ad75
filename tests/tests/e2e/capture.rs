//! What crosses the loopback wire to slapd: a recording proxy sits between the agent and slapd
//! and keeps every byte of every connection, both ways. Passwords must never be among them.

use std::fs;
use std::process::Command;

use lanyard_tests::fixture::{ALICE, CHANGER, CHANGER_NEW_PASSWORD, READER_DN};
use lanyard_tests::{Agent, AgentConfig, Caller, HANG_GUARD, Pam, RecordingProxy, Slapd, run_bounded};

use crate::common::{assert_pam_error, assert_pam_success};
use lanyard_tests::pam::PamCode;

/// The StartTLS extended request's OID, as it travels inside the request (an octet string).
const STARTTLS_OID: &[u8] = b"1.3.6.1.4.1.1466.20037";

fn reader_password(slapd: &Slapd) -> String {
    fs::read_to_string(slapd.bind_secret()).unwrap()
}

/// `ldapwhoami` as the reader through `proxy`, with or without `-ZZ`.
fn whoami_through(slapd: &Slapd, proxy: &RecordingProxy, starttls: bool) -> lanyard_tests::Output {
    let mut cmd: Command = slapd.ldap_tool("ldapwhoami");
    cmd.args(["-x", "-H", &proxy.ldap_uri(), "-D", READER_DN, "-y"]).arg(slapd.bind_secret());
    if starttls {
        cmd.arg("-ZZ");
    }
    run_bounded(&mut cmd, "ldapwhoami through the proxy", HANG_GUARD).unwrap()
}

#[test]
fn the_proxy_relays_a_starttls_bind_and_records_no_password() {
    let slapd = Slapd::start().unwrap();
    let proxy = RecordingProxy::start(slapd.starttls_addr()).unwrap();
    let out = whoami_through(&slapd, &proxy, true);
    assert!(out.status.success(), "{out}");
    assert_eq!(out.stdout().trim(), format!("dn:{READER_DN}"));
    assert_eq!(proxy.connections().unwrap(), 1);
    assert_eq!(proxy.recordings_containing(STARTTLS_OID).unwrap(), ["conn-0001.to-server"]);
    assert!(proxy.recordings_containing(reader_password(&slapd).as_bytes()).unwrap().is_empty());
}

/// The check below can fail: a bind sent in clear is caught with the same search (slapd
/// refuses it, but only after the password has crossed the wire).
#[test]
fn the_capture_catches_a_password_sent_in_clear() {
    let slapd = Slapd::start().unwrap();
    let proxy = RecordingProxy::start(slapd.starttls_addr()).unwrap();
    let out = whoami_through(&slapd, &proxy, false);
    assert_eq!(out.code(), Some(13), "slapd accepted a plaintext bind:\n{out}");
    assert_eq!(proxy.recordings_containing(reader_password(&slapd).as_bytes()).unwrap(), ["conn-0001.to-server"]);
    assert!(proxy.recordings_containing(STARTTLS_OID).unwrap().is_empty());
}

#[test]
fn no_password_crosses_to_slapd_in_clear_during_logins_and_a_password_change() {
    let slapd = Slapd::start().unwrap();
    let proxy = RecordingProxy::start(slapd.starttls_addr()).unwrap();
    let agent = Agent::start(&AgentConfig::for_slapd(&slapd).uris(vec![proxy.ldap_uri()])).unwrap();
    let pam = Pam::for_agent(&agent).unwrap();
    let wrong = "not-Alices-password-1";

    assert_pam_success(&pam.authenticate("alice", ALICE.password).unwrap(), &agent);
    assert_pam_error(&pam.authenticate("alice", wrong).unwrap(), PamCode::AuthErr, &agent);
    let change = pam.chauthtok(Caller::user(&CHANGER), CHANGER.name, CHANGER.password, CHANGER_NEW_PASSWORD).unwrap();
    assert_pam_success(&change, &agent);
    assert_pam_success(&pam.authenticate(CHANGER.name, CHANGER_NEW_PASSWORD).unwrap(), &agent);

    let recordings = proxy.recordings().unwrap();
    let to_server: Vec<_> =
        recordings.iter().filter(|r| r.name.ends_with(".to-server") && !r.bytes.is_empty()).collect();
    assert!(!to_server.is_empty(), "the agent sent nothing through the proxy");
    // Not vacuous: every connection the agent opened asked for StartTLS, in clear, first.
    for r in &to_server {
        assert!(lanyard_tests::proxy::contains(&r.bytes, STARTTLS_OID), "{} never asked for StartTLS", r.name);
    }
    let reader = reader_password(&slapd);
    for (what, secret) in [
        ("alice's password", ALICE.password),
        ("a wrong password", wrong),
        ("changer's old password", CHANGER.password),
        ("changer's new password", CHANGER_NEW_PASSWORD),
        ("the reader's password", reader.as_str()),
    ] {
        let found = proxy.recordings_containing(secret.as_bytes()).unwrap();
        assert!(
            found.is_empty(),
            "{what} crossed the wire in clear in {found:?} (recordings in {})",
            proxy.dir().display()
        );
    }
    let total: usize = recordings.iter().map(|r| r.bytes.len()).sum();
    eprintln!("{} connections, {total} bytes recorded", to_server.len());
}
