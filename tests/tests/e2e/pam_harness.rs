//! The PAM and sshd runners themselves, with Linux-PAM's own modules (pam_permit, pam_deny,
//! pam_exec) in place of ours: if these fail, a PAM test's verdict says nothing about
//! `pam_lanyard.so`.

use std::fs;
use std::path::Path;

use lanyard_tests::pam::{PamCode, pam_error};
use lanyard_tests::sshd::SshdOptions;
use lanyard_tests::{Caller, Pam, Sshd, TempDir};

/// A stack whose `auth` runs `check` through pam_exec with the typed password on its stdin,
/// and whose other groups permit.
fn exec_stack(check: &Path) -> String {
    format!(
        "auth     required pam_exec.so expose_authtok {}\n\
         account  required pam_permit.so\n\
         password required pam_permit.so\n\
         session  required pam_permit.so\n",
        check.display()
    )
}

/// A script that succeeds when its stdin (pam_exec sends the password and a NUL) is `expected`.
fn password_check(dir: &TempDir, expected: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join("check.sh");
    fs::write(&script, format!("#!/bin/sh\n[ \"$(tr -d '\\000')\" = '{expected}' ]\n")).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[test]
fn pamtester_feeds_the_password_to_the_mounted_test_service() {
    let run = TempDir::new("norun").unwrap();
    let check = password_check(&run, "right-Password-1");
    let pam = Pam::with_service(run.path(), &exec_stack(&check)).unwrap();

    let good = pam.authenticate("anyone", "right-Password-1").unwrap();
    assert_eq!(good.code(), Some(0), "{good}\n{}", pam.service_text());
    assert!(good.stdout().contains("pamtester: successfully authenticated"), "{good}");
    assert_eq!(pam_error(&good), None);

    let bad = pam.authenticate("anyone", "wrong-Password-1").unwrap();
    assert_eq!(bad.code(), Some(1), "{bad}");
    // pam_exec reports a failing command as a system error.
    assert_eq!(pam_error(&bad).as_deref(), Some(PamCode::SystemErr.text()), "{bad}");
}

#[test]
fn pamtester_answers_several_prompts_in_turn() {
    let run = TempDir::new("norun").unwrap();
    let check = password_check(&run, "second-Answer-2");
    let pam = Pam::with_service(run.path(), &exec_stack(&check)).unwrap();
    // Two operations, two prompts: each reads one line of the input.
    let out = pam.pamtester(Caller::Root, "anyone", &["authenticate", "authenticate"], &["x", "y"], &[]).unwrap();
    assert_eq!(out.code(), Some(1), "the first answer matched:\n{out}");
    let out = pam
        .pamtester(
            Caller::Root,
            "anyone",
            &["authenticate", "authenticate"],
            &["second-Answer-2", "second-Answer-2"],
            &[],
        )
        .unwrap();
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(out.stdout().matches("successfully authenticated").count(), 2, "{out}");
}

#[test]
fn pam_deny_reads_as_an_authentication_failure_and_pam_permit_as_success() {
    // pam_deny answers PAM_AUTH_ERR whatever it is asked.
    let run = TempDir::new("norun").unwrap();
    let deny = Pam::with_service(run.path(), "auth required pam_deny.so\naccount required pam_deny.so\n").unwrap();
    let out = deny.authenticate("anyone", "whatever").unwrap();
    assert_eq!((out.code(), pam_error(&out).as_deref()), (Some(1), Some(PamCode::AuthErr.text())), "{out}");
    let out = deny.acct_mgmt("anyone").unwrap();
    assert_eq!((out.code(), pam_error(&out).as_deref()), (Some(1), Some(PamCode::AuthErr.text())), "{out}");

    let permit = Pam::with_service(run.path(), "account required pam_permit.so\n").unwrap();
    let out = permit.acct_mgmt("anyone").unwrap();
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(out.stdout().contains("account management done"), "{out}");
}

#[test]
fn pamtester_runs_as_the_given_caller_and_the_host_pam_d_is_untouched() {
    let host_pam_d: Vec<_> = fs::read_dir("/etc/pam.d").unwrap().map(|e| e.unwrap().file_name()).collect();
    let run = TempDir::new("norun").unwrap();
    let check = password_check(&run, "bobs-Own-Pass-3");
    let pam = Pam::with_service(run.path(), &exec_stack(&check)).unwrap();

    let bob = Caller::Uid { uid: 10002, gid: 10000 };
    let out = pam.authenticate_as(bob, "bob", "bobs-Own-Pass-3").unwrap();
    assert_eq!(out.code(), Some(0), "{out}");
    let ids = pam.shell("setpriv --reuid=10002 --regid=10000 --clear-groups id -u; ls /etc/pam.d").unwrap();
    assert_eq!(ids.lines(), ["10002", "lanyard-test"], "{ids}");

    let after: Vec<_> = fs::read_dir("/etc/pam.d").unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(after, host_pam_d);
    assert!(!Path::new("/etc/pam.d/lanyard-test").exists(), "the test service leaked to the host");
}

#[test]
fn sshd_starts_on_loopback_in_its_namespace_and_ssh_logs_in() {
    let wtmp_before = fs::metadata("/var/log/wtmp").map(|m| m.len()).ok();
    let run = TempDir::new("norun").unwrap();
    // pam_permit lets anyone in: AllowUsers keeps it to nobody, whose shell only says no.
    let started = std::time::Instant::now();
    let mut sshd = Sshd::start(&SshdOptions::permit_only(run.path(), "nobody")).unwrap();
    eprintln!("sshd start (host key, namespace, listening): {:?}", started.elapsed());

    let out = sshd.ssh("nobody", "any-Password-0", "id").unwrap();
    assert!(out.stdout().contains("This account is currently not available."), "{out}\n{}", sshd.log());
    let log = sshd.log();
    assert!(log.contains("Accepted password for nobody from 127.0.0.1"), "{log}");

    let refused = sshd.ssh("root", "any-Password-0", "id").unwrap();
    assert_eq!(refused.code(), Some(255), "{refused}\n{}", sshd.log());
    assert!(refused.stderr().contains("Permission denied"), "{refused}");
    assert!(sshd.log().contains("not listed in AllowUsers"), "{}", sshd.log());

    let pid = sshd.pid().unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    sshd.stop().unwrap();
    assert!(
        fs::read_to_string(format!("/proc/{pid}/cmdline")).map_or(true, |c| !c.contains("sshd")),
        "sshd (pid {pid}) still runs after stop"
    );
    assert_eq!(fs::metadata("/var/log/wtmp").map(|m| m.len()).ok(), wtmp_before, "the host's wtmp changed");
}
