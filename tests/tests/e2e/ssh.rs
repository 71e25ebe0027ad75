//! A real login: Debian's OpenSSH server on a loopback port, authenticating, checking and
//! opening sessions with `pam_lanyard.so` only, and the real `ssh` client typing alice's
//! directory password.

use std::collections::BTreeSet;

use lanyard_tests::fixture::{ALICE, OUTSIDER};
use lanyard_tests::sshd::SshdOptions;
use lanyard_tests::{Agent, AgentConfig, Output, PamConfig, Slapd, Sshd};

/// sshd, the agent it asks and slapd; fields drop in that order.
struct SshSetup {
    sshd: Sshd,
    agent: Agent,
    _slapd: Slapd,
}

fn ssh_setup(pam: PamConfig) -> SshSetup {
    let slapd = Slapd::start().expect("starting slapd");
    let agent = Agent::start(&AgentConfig::for_slapd(&slapd).pam(pam)).expect("starting lanyardd");
    let sshd = Sshd::start(&SshdOptions::lanyard(&agent, &[])).expect("starting sshd");
    SshSetup { sshd, agent, _slapd: slapd }
}

impl SshSetup {
    /// Everything worth seeing when a login went wrong.
    fn context(&self, out: &Output) -> String {
        format!("{out}\n--- sshd log ---\n{}\n--- lanyardd log ---\n{}", self.sshd.log(), self.agent.log())
    }
}

#[test]
fn sshd_logs_alice_in_with_her_directory_password_and_id_lists_her_groups() {
    let s = ssh_setup(PamConfig::default());
    let out = s.sshd.ssh("alice", ALICE.password, "id").unwrap();
    assert_eq!(out.code(), Some(0), "{}", s.context(&out));
    let text = out.stdout();
    let (head, groups) = text.trim_end().split_once(" groups=").unwrap_or_else(|| panic!("{}", s.context(&out)));
    assert_eq!(head, "uid=10001(alice) gid=10000(staff)");
    let listed: BTreeSet<&str> = groups.split(',').collect();
    let expected: BTreeSet<&str> =
        ["10000(staff)", "10010(developers)", "10011(ops)", "10012(admins)", "10100(biggroup)"].into();
    assert_eq!(listed, expected, "{}", s.context(&out));
    assert!(s.sshd.log().contains("Accepted password for alice from 127.0.0.1"), "{}", s.context(&out));
}

#[test]
fn sshd_refuses_alice_with_a_wrong_password() {
    let s = ssh_setup(PamConfig::default());
    let out = s.sshd.ssh("alice", "not-Alices-password-1", "id").unwrap();
    assert_eq!(out.code(), Some(255), "{}", s.context(&out));
    assert!(out.stderr().contains("Permission denied"), "{}", s.context(&out));
    assert!(!out.stdout().contains("uid="), "{}", s.context(&out));
    assert!(s.sshd.log().contains("Failed password for alice from 127.0.0.1"), "{}", s.context(&out));
}

#[test]
fn sshd_session_creates_alices_home_directory() {
    let s = ssh_setup(PamConfig::default().create_home("0700"));
    let out = s.sshd.ssh("alice", ALICE.password, "pwd; stat -c '%u %g %a' \"$HOME\"").unwrap();
    assert_eq!(out.code(), Some(0), "{}", s.context(&out));
    assert_eq!(out.stdout(), "/home/alice\n10001 10000 700\n", "{}", s.context(&out));
}

#[test]
fn sshd_refuses_a_user_outside_the_allowed_groups_and_admits_a_member() {
    let s = ssh_setup(PamConfig::default().allowed_groups(&["developers"]));
    let out = s.sshd.ssh(OUTSIDER.name, OUTSIDER.password, "id").unwrap();
    assert_eq!(out.code(), Some(255), "{}", s.context(&out));
    assert!(!out.stdout().contains("uid="), "{}", s.context(&out));

    let out = s.sshd.ssh("alice", ALICE.password, "id -un").unwrap();
    assert_eq!((out.code(), out.stdout().as_str()), (Some(0), "alice\n"), "{}", s.context(&out));
}
