//! `lanyardctl` against the real agent and slapd: every command, and `doctor` on a good setup
//! and on each broken one it must name (wrong CA, server down, wrong bind password, a server
//! that only speaks plaintext, nsswitch without lanyard), and its warning for a server that
//! evaluates simple binds sent in clear. Every server is a real slapd ([`Slapd::start_plaintext`]
//! for the plaintext ones).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use lanyard_tests::fixture::{ALICE, READER_DN};
use lanyard_tests::process::run_bounded_with_input;
use lanyard_tests::tempdir::write_file_mode;
use lanyard_tests::{
    Agent, AgentConfig, HANG_GUARD, Output, Slapd, TempDir, lanyardctl_path, poll_until, require_built, run_bounded,
};

use crate::common::setup;

const ALICE_LINE: &str = "alice:x:10001:10000:Alice Liddell:/home/alice:/bin/bash";

/// `lanyardctl --socket SOCKET --config CONFIG ARGS...` as root.
fn ctl(agent: &Agent, args: &[&str]) -> Output {
    ctl_at(&agent.socket(), agent.config_path(), args)
}

fn ctl_at(socket: &Path, config: &Path, args: &[&str]) -> Output {
    require_built(&lanyardctl_path()).unwrap();
    let mut cmd = Command::new(lanyardctl_path());
    cmd.arg("--socket").arg(socket).arg("--config").arg(config).args(args);
    run_bounded(&mut cmd, &format!("lanyardctl {}", args.join(" ")), HANG_GUARD).unwrap()
}

#[track_caller]
fn assert_code(out: &Output, code: i32, agent: Option<&Agent>) {
    let log = agent.map(Agent::log).unwrap_or_default();
    assert_eq!(out.code(), Some(code), "{out}\n--- lanyardd log ---\n{log}");
}

#[test]
fn status_reports_online_with_the_server_tls_version_and_certificate() {
    let s = setup();
    // The agent connects in the background at start: wait (bounded) until it names its server.
    let out = poll_until("status to name a server", Duration::from_secs(10), Duration::from_millis(50), || {
        let out = ctl(&s.agent, &["status"]);
        Ok(out.stdout().contains(&format!("server:       {}", s.slapd.uri_starttls())).then_some(out))
    })
    .unwrap();
    assert_code(&out, 0, Some(&s.agent));
    let text = out.stdout();
    assert!(text.contains("agent:        online for"), "{out}");
    assert!(text.contains("tls:          TLSv1_"), "{out}");
    assert!(text.contains("certificate:  expires in"), "{out}");
    assert!(text.contains("disk cache:") && text.contains("memory:"), "{out}");
}

#[test]
fn status_exits_2_when_the_agent_is_not_running() {
    let dir = TempDir::new("ctl").unwrap();
    let out = ctl_at(&dir.join("socket"), &dir.join("lanyard.toml"), &["status"]);
    assert_code(&out, 2, None);
    assert!(out.stderr().contains("cannot connect"), "{out}");
}

#[test]
fn user_comes_from_the_directory_then_from_memory() {
    let s = setup();
    let first = ctl(&s.agent, &["user", "alice"]);
    assert_code(&first, 0, Some(&s.agent));
    assert_eq!(first.lines(), [ALICE_LINE, "source: directory"], "{first}");
    let second = ctl(&s.agent, &["user", "10001"]);
    assert_code(&second, 0, Some(&s.agent));
    assert_eq!(second.lines()[0], ALICE_LINE, "{second}");
    let third = ctl(&s.agent, &["user", "alice"]);
    assert!(third.lines()[1].starts_with("source: memory (fetched "), "{third}");
}

#[test]
fn unknown_user_exits_1_and_says_not_found() {
    let s = setup();
    let out = ctl(&s.agent, &["user", "nosuchuser"]);
    assert_code(&out, 1, Some(&s.agent));
    assert!(out.stdout().contains("not found"), "{out}");
}

#[test]
fn group_developers_lists_its_members() {
    let s = setup();
    let out = ctl(&s.agent, &["group", "developers"]);
    assert_code(&out, 0, Some(&s.agent));
    assert_eq!(out.lines(), ["developers:x:10010:alice,bob", "source: directory"], "{out}");
    let by_gid = ctl(&s.agent, &["group", "10010"]);
    assert_eq!(by_gid.lines()[0], "developers:x:10010:alice,bob", "{by_gid}");
}

#[test]
fn an_invalidated_user_is_asked_of_the_directory_again() {
    let s = setup();
    assert_code(&ctl(&s.agent, &["user", "alice"]), 0, Some(&s.agent));
    let out = ctl(&s.agent, &["cache", "invalidate", "user", "alice"]);
    assert_code(&out, 0, Some(&s.agent));
    assert_eq!(out.stdout(), "invalidated\n");
    let after = ctl(&s.agent, &["user", "alice"]);
    assert_code(&after, 0, Some(&s.agent));
    // The disk is marked stale before the reply, and a marked entry is not answered while
    // the directory can be asked.
    assert_eq!(after.lines()[1], "source: directory", "{after}");
    for args in
        [&["cache", "invalidate", "group", "developers"][..], &["cache", "invalidate", "all"], &["cache", "invalidate"]]
    {
        assert_code(&ctl(&s.agent, args), 0, Some(&s.agent));
    }
}

#[test]
fn cache_clear_is_refused_for_a_user_and_done_for_root() {
    let s = setup();
    assert_code(&ctl(&s.agent, &["user", "alice"]), 0, Some(&s.agent));
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=10002", "--regid=10000", "--clear-groups"])
        .arg(lanyardctl_path())
        .arg("--socket")
        .arg(s.agent.socket())
        .args(["cache", "clear"]);
    let refused = run_bounded(&mut cmd, "lanyardctl cache clear as 10002", HANG_GUARD).unwrap();
    assert_code(&refused, 1, Some(&s.agent));
    assert!(refused.stderr().contains("refused: only root may clear the cache"), "{refused}");
    assert!(ctl(&s.agent, &["user", "alice"]).stdout().contains("source: memory"), "the refused clear wiped memory");

    let cleared = ctl(&s.agent, &["cache", "clear"]);
    assert_code(&cleared, 0, Some(&s.agent));
    assert_eq!(cleared.stdout(), "cleared\n");
    let after = ctl(&s.agent, &["user", "alice"]);
    assert_eq!(after.lines(), [ALICE_LINE, "source: directory"], "{after}");
}

#[test]
fn metrics_prints_prometheus_text() {
    let s = setup();
    assert_code(&ctl(&s.agent, &["user", "alice"]), 0, Some(&s.agent));
    let out = ctl(&s.agent, &["metrics"]);
    assert_code(&out, 0, Some(&s.agent));
    assert!(out.stdout().lines().any(|l| l.starts_with("# TYPE ")), "{out}");
}

#[test]
fn config_check_says_ok_or_names_the_key_and_the_file() {
    let s = setup();
    let good = ctl(&s.agent, &["config", "check"]);
    assert_code(&good, 0, None);
    assert_eq!(good.stdout(), "ok\n");

    let dir = TempDir::new("ctl").unwrap();
    let bad = write_config(&dir, &AgentConfig::for_slapd(&s.slapd).directory_line("colour = \"red\""));
    let out = ctl(&s.agent, &["config", "check", bad.to_str().unwrap()]);
    assert_code(&out, 1, None);
    assert!(out.stdout().contains(bad.to_str().unwrap()) && out.stdout().contains("colour"), "{out}");
}

#[test]
fn auth_test_logs_in_with_the_password_from_stdin_and_refuses_users() {
    let s = setup();
    let run = |password: &str| {
        let mut cmd = Command::new(lanyardctl_path());
        cmd.arg("--socket").arg(s.agent.socket()).args(["auth-test", "alice"]);
        run_bounded_with_input(&mut cmd, format!("{password}\n").as_bytes(), "lanyardctl auth-test", HANG_GUARD)
            .unwrap()
    };
    let right = run(ALICE.password);
    assert_code(&right, 0, Some(&s.agent));
    assert!(right.stdout().contains("alice: authenticated"), "{right}");
    let wrong = run("not-her-password");
    assert_code(&wrong, 1, Some(&s.agent));
    assert!(wrong.stdout().contains("wrong password"), "{wrong}");

    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=10002", "--regid=10000", "--clear-groups"])
        .arg(lanyardctl_path())
        .arg("--socket")
        .arg(s.agent.socket())
        .args(["auth-test", "alice"]);
    let refused = run_bounded(&mut cmd, "lanyardctl auth-test as 10002", HANG_GUARD).unwrap();
    assert_code(&refused, 1, None);
    assert!(refused.stderr().contains("only root"), "{refused}");
}

// ---- doctor ----

/// Scratch files for one doctor run: the config, an nsswitch.conf and a pam.d.
struct DoctorFiles {
    dir: TempDir,
}

impl DoctorFiles {
    fn new(config: &AgentConfig) -> DoctorFiles {
        let dir = TempDir::new("doctor").unwrap();
        write_config(&dir, config);
        std::fs::write(dir.join("nsswitch.conf"), "passwd: files lanyard\ngroup: files lanyard\nshadow: files\n")
            .unwrap();
        std::fs::create_dir(dir.join("pam.d")).unwrap();
        std::fs::write(dir.join("pam.d/common-auth"), "auth sufficient pam_lanyard.so\nauth required pam_unix.so\n")
            .unwrap();
        DoctorFiles { dir }
    }

    fn run(&self) -> Output {
        let mut cmd = Command::new(lanyardctl_path());
        cmd.arg("--config")
            .arg(self.dir.join("lanyard.toml"))
            .arg("doctor")
            .arg("--nsswitch")
            .arg(self.dir.join("nsswitch.conf"))
            .arg("--pam-dir")
            .arg(self.dir.join("pam.d"));
        run_bounded(&mut cmd, "lanyardctl doctor", HANG_GUARD).unwrap()
    }
}

fn write_config(dir: &TempDir, config: &AgentConfig) -> PathBuf {
    let path = dir.join("lanyard.toml");
    std::fs::write(&path, config.render(&dir.join("socket"), &dir.join("cache"))).unwrap();
    path
}

/// The doctor's first `FAIL` line, and whether a hint follows it.
fn first_failure(out: &Output) -> (String, bool) {
    let lines = out.lines();
    let at = lines.iter().position(|l| l.starts_with("FAIL  ")).unwrap_or_else(|| panic!("no failure:\n{out}"));
    let hinted = lines.get(at + 1).is_some_and(|l| l.trim_start().starts_with("hint: "));
    (lines[at].clone(), hinted)
}

#[track_caller]
fn assert_fails_at(out: &Output, step: &str) {
    assert_code(out, 1, None);
    let (line, hinted) = first_failure(out);
    assert!(line.starts_with(&format!("FAIL  {step}")), "expected the {step} step to fail first:\n{out}");
    assert!(hinted, "the first failure carries no hint:\n{out}");
}

#[test]
fn doctor_passes_on_a_good_setup() {
    let slapd = Slapd::start().unwrap();
    let out = DoctorFiles::new(&AgentConfig::for_slapd(&slapd)).run();
    assert_code(&out, 0, None);
    let uri = slapd.uri_starttls();
    for step in ["config", "dns", "tcp", "starttls", "tls", "bind", "base", "users", "plaintext"] {
        let prefix = if step == "config" { "ok    config: ".to_owned() } else { format!("ok    {step} {uri}: ") };
        assert!(out.lines().iter().any(|l| l.starts_with(&prefix)), "no passing {step} step:\n{out}");
    }
    assert!(out.stdout().contains("refused (confidentialityRequired)"), "{out}");
    assert!(out.lines().iter().any(|l| l.starts_with("ok    nsswitch: ")), "{out}");
    assert!(out.lines().iter().any(|l| l.starts_with("ok    pam: ") && l.contains("common-auth")), "{out}");
    assert!(!out.stdout().contains("FAIL"), "{out}");
}

#[test]
fn doctor_names_the_tls_step_for_a_wrong_ca() {
    let slapd = Slapd::start().unwrap();
    let out = DoctorFiles::new(&AgentConfig::for_slapd(&slapd).ca_file(slapd.wrong_ca_pem())).run();
    assert_fails_at(&out, "tls ");
    assert!(out.stdout().to_lowercase().contains("unknownissuer"), "{out}");
}

#[test]
fn doctor_names_the_tcp_step_when_the_server_is_down() {
    let mut slapd = Slapd::start().unwrap();
    let files = DoctorFiles::new(&AgentConfig::for_slapd(&slapd));
    slapd.stop().unwrap();
    assert_fails_at(&files.run(), "tcp ");
}

#[test]
fn doctor_names_the_bind_step_for_a_wrong_bind_password() {
    let slapd = Slapd::start().unwrap();
    let dir = TempDir::new("doctor-pw").unwrap();
    let wrong = dir.join("bind.secret");
    write_file_mode(&wrong, b"not-the-reader-password", 0o600).unwrap();
    let out = DoctorFiles::new(&AgentConfig::for_slapd(&slapd).bind_password_file(&wrong)).run();
    assert_fails_at(&out, "bind ");
    assert!(out.stdout().contains("invalidCredentials (49)"), "{out}");
}

#[test]
fn doctor_names_the_starttls_step_for_a_server_that_only_speaks_plaintext() {
    let slapd = Slapd::start_plaintext().unwrap();
    let uri = slapd.uri_ldap();
    let mark = slapd.log_mark();
    let out = DoctorFiles::new(&AgentConfig::for_slapd(&slapd).uris(vec![uri.clone()]).tls("starttls")).run();
    assert_fails_at(&out, &format!("starttls {uri}: "));
    assert!(out.lines().iter().any(|l| l.starts_with(&format!("ok    tcp {uri}: "))), "{out}");
    // The server's steps stop at the refusal: the bind password was not sent in clear instead.
    let log = slapd.log_since(mark);
    assert_eq!(Slapd::bind_attempts(&log, READER_DN), 0, "doctor bound after StartTLS was refused:\n{log}");
}

#[test]
fn doctor_warns_that_a_plaintext_server_evaluates_binds_sent_in_clear() {
    let slapd = Slapd::start_plaintext().unwrap();
    let uri = slapd.uri_ldap();
    let mark = slapd.log_mark();
    let out = DoctorFiles::new(&AgentConfig::for_slapd(&slapd).uris(vec![uri.clone()]).tls("danger-plaintext")).run();
    // Warnings, not failures: the setup works, it is only unsafe.
    assert_code(&out, 0, None);
    let lines = out.lines();
    assert!(lines.iter().any(|l| l.starts_with(&format!("warn  tls {uri}: "))), "{out}");
    for step in ["bind", "base", "users"] {
        assert!(
            lines.iter().any(|l| l.starts_with(&format!("ok    {step} {uri}: "))),
            "no passing {step} step:\n{out}"
        );
    }
    let at = lines
        .iter()
        .position(|l| l.starts_with(&format!("warn  plaintext {uri}: ")))
        .unwrap_or_else(|| panic!("the plaintext step does not warn:\n{out}"));
    assert!(lines[at].contains("invalidCredentials"), "{out}");
    assert!(lines.get(at + 1).is_some_and(|l| l.trim_start().starts_with("hint: ")), "no hint:\n{out}");
    // The warning rests on slapd's own answer: it evaluated the dummy password sent in clear.
    let log = slapd.log_since(mark);
    assert!(log.lines().any(|l| l.contains(" RESULT tag=97 err=49")), "slapd never refused a bind with 49:\n{log}");
}

#[test]
fn doctor_names_nsswitch_when_it_does_not_name_lanyard() {
    let slapd = Slapd::start().unwrap();
    let files = DoctorFiles::new(&AgentConfig::for_slapd(&slapd));
    std::fs::write(files.dir.join("nsswitch.conf"), "passwd: files\ngroup: files lanyard\n").unwrap();
    let out = files.run();
    assert_fails_at(&out, "nsswitch: ");
    assert!(out.stdout().contains("does not name lanyard for passwd"), "{out}");
}

#[test]
fn doctor_warns_when_no_pam_file_loads_the_module() {
    let slapd = Slapd::start().unwrap();
    let files = DoctorFiles::new(&AgentConfig::for_slapd(&slapd));
    std::fs::write(files.dir.join("pam.d/common-auth"), "# auth sufficient pam_lanyard.so\n").unwrap();
    let out = files.run();
    assert_code(&out, 0, None);
    assert!(out.lines().iter().any(|l| l.starts_with("warn  pam: ")), "{out}");
}
