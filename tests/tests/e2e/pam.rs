//! Logins through `pam_lanyard.so` with the system's pamtester: authentication, account
//! checks, access rules, password changes, sessions, and what happens when the agent or the
//! directory is gone. slapd's log is the witness for what reached the directory.

use lanyard_tests::fixture::{
    AGED, ALICE, BOB, CHANGER, CHANGER_NEW_PASSWORD, EXPIRED, LOCKED, OUTSIDER, TOO_SHORT_PASSWORD, user_dn,
};
use lanyard_tests::pam::{PamCode, pam_error};
use lanyard_tests::{Agent, Caller, Output, Pam, PamConfig, Slapd};

use crate::common::{PamSetup, Thaw, assert_pam_error, assert_pam_success, binds_since, pam_setup, pam_setup_with};

/// The `ssf=` (security strength) of each successful simple bind as `user` in `log`.
fn user_bind_ssfs(log: &str, user: &str) -> Vec<u32> {
    let bind = format!("BIND dn=\"{}\" mech=SIMPLE", user_dn(user));
    log.lines()
        .filter(|l| l.contains(&bind))
        .map(|l| {
            let ssf = l.rsplit_once(" ssf=").map(|(_, v)| v).unwrap_or_else(|| panic!("no ssf in {l}"));
            ssf.trim().parse().unwrap_or_else(|_| panic!("bad ssf in {l}"))
        })
        .collect()
}

/// Lines pamtester did not write: messages the module showed through the conversation.
fn module_messages(out: &Output) -> Vec<String> {
    let text = out.stdout() + &out.stderr();
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.contains("pamtester: ")).map(str::to_owned).collect()
}

#[test]
fn the_right_password_authenticates_through_a_bind_inside_tls() {
    let s = pam_setup();
    let mark = s.slapd.log_mark();
    let out = s.pam.authenticate("alice", ALICE.password).unwrap();
    assert_pam_success(&out, &s.agent);
    assert!(out.stdout().contains("pamtester: successfully authenticated"), "{out}");
    let log = s.slapd.log_since(mark);
    let ssfs = user_bind_ssfs(&log, "alice");
    assert!(!ssfs.is_empty(), "no successful bind as alice reached slapd:\n{log}");
    assert!(ssfs.iter().all(|&ssf| ssf > 0), "alice bound without TLS: {ssfs:?}\n{log}");
}

#[test]
fn a_wrong_password_is_an_authentication_failure() {
    let s = pam_setup();
    let mark = s.slapd.log_mark();
    let out = s.pam.authenticate("alice", "not-Alices-password-1").unwrap();
    assert_pam_error(&out, PamCode::AuthErr, &s.agent);
    // The directory judged it: a bind was tried, and none succeeded.
    assert!(binds_since(&s.slapd, mark, "alice") >= 1, "{}", s.slapd.log_since(mark));
    assert_eq!(user_bind_ssfs(&s.slapd.log_since(mark), "alice"), Vec::<u32>::new());
}

#[test]
fn an_empty_password_fails_without_a_bind_reaching_slapd() {
    let s = pam_setup();
    let mark = s.slapd.log_mark();
    let out = s.pam.authenticate("alice", "").unwrap();
    assert_pam_error(&out, PamCode::AuthErr, &s.agent);
    assert_eq!(
        binds_since(&s.slapd, mark, "alice"),
        0,
        "an empty password reached slapd:\n{}",
        s.slapd.log_since(mark)
    );

    // The control: the same count sees the bind of a real attempt.
    let mark = s.slapd.log_mark();
    assert_pam_success(&s.pam.authenticate("alice", ALICE.password).unwrap(), &s.agent);
    assert!(binds_since(&s.slapd, mark, "alice") >= 1, "{}", s.slapd.log_since(mark));
}

#[test]
fn an_unknown_user_is_user_unknown() {
    let s = pam_setup();
    let out = s.pam.authenticate("nosuchuser", "some-Password-1").unwrap();
    assert_pam_error(&out, PamCode::UserUnknown, &s.agent);
    let out = s.pam.acct_mgmt("nosuchuser").unwrap();
    assert_pam_error(&out, PamCode::UserUnknown, &s.agent);
}

/// `ignore_unknown_user` makes the module step aside (PAM_IGNORE), so the next module decides:
/// here pam_permit lets the unknown user through, while a directory user's wrong password
/// still fails the stack.
#[test]
fn ignore_unknown_user_lets_the_next_module_decide() {
    let slapd = Slapd::start().unwrap();
    let agent = Agent::start(&lanyard_tests::AgentConfig::for_slapd(&slapd)).unwrap();
    let stack = "auth required @MODULE@ ignore_unknown_user\nauth required pam_permit.so\n\
                 account required @MODULE@ ignore_unknown_user\naccount required pam_permit.so\n";
    let pam = Pam::with_service(&agent.run_dir(), stack).unwrap();
    assert_pam_success(&pam.authenticate("nosuchuser", "some-Password-1").unwrap(), &agent);
    assert_pam_success(&pam.acct_mgmt("nosuchuser").unwrap(), &agent);
    assert_pam_error(&pam.authenticate("alice", "not-Alices-password-1").unwrap(), PamCode::AuthErr, &agent);
    assert_pam_success(&pam.authenticate("alice", ALICE.password).unwrap(), &agent);
}

#[test]
fn a_non_root_caller_cannot_authenticate_another_user() {
    let s = pam_setup();
    let bob = Caller::user(&BOB);
    let mark = s.slapd.log_mark();
    let out = s.pam.authenticate_as(bob, "alice", ALICE.password).unwrap();
    assert_eq!(out.code(), Some(1), "bob's process authenticated alice:\n{out}\n{}", s.agent.log());
    assert!(pam_error(&out).is_some(), "{out}");
    assert_eq!(binds_since(&s.slapd, mark, "alice"), 0, "alice's password was tried:\n{}", s.slapd.log_since(mark));

    // A screen locker: bob's own process checking bob's password is allowed.
    assert_pam_success(&s.pam.authenticate_as(bob, "bob", BOB.password).unwrap(), &s.agent);
}

#[test]
fn an_active_account_passes_the_account_check() {
    let s = pam_setup();
    let out = s.pam.acct_mgmt("alice").unwrap();
    assert_pam_success(&out, &s.agent);
    assert!(out.stdout().contains("account management done"), "{out}");
}

#[test]
fn an_expired_account_is_acct_expired() {
    let s = pam_setup();
    assert_pam_error(&s.pam.acct_mgmt(EXPIRED.name).unwrap(), PamCode::AcctExpired, &s.agent);
}

#[test]
fn a_password_past_its_maximum_age_is_new_authtok_reqd() {
    let s = pam_setup();
    // Its password is right: only the account check asks for a new one.
    assert_pam_success(&s.pam.authenticate(AGED.name, AGED.password).unwrap(), &s.agent);
    assert_pam_error(&s.pam.acct_mgmt(AGED.name).unwrap(), PamCode::NewAuthtokReqd, &s.agent);
}

#[test]
fn an_account_locked_by_the_password_policy_is_perm_denied() {
    let s = pam_setup();
    assert_pam_error(&s.pam.acct_mgmt(LOCKED.name).unwrap(), PamCode::PermDenied, &s.agent);
    let out = s.pam.authenticate(LOCKED.name, LOCKED.password).unwrap();
    assert_eq!(out.code(), Some(1), "a locked account authenticated:\n{out}\n{}", s.agent.log());
}

#[test]
fn allowed_groups_deny_a_user_outside_them_with_a_message_and_admit_a_member() {
    let s = pam_setup_with(|c| c.pam(PamConfig::default().allowed_groups(&["developers"])), &[]);
    let out = s.pam.acct_mgmt(OUTSIDER.name).unwrap();
    assert_pam_error(&out, PamCode::PermDenied, &s.agent);
    assert!(!module_messages(&out).is_empty(), "the user was not told why:\n{out}");
    assert_pam_success(&s.pam.acct_mgmt("alice").unwrap(), &s.agent);
    assert_pam_success(&s.pam.acct_mgmt("bob").unwrap(), &s.agent);
}

#[test]
fn an_access_filter_denies_a_user_it_does_not_match() {
    let filter = "(&(objectClass=posixAccount)(!(uid=outsider)))";
    let s = pam_setup_with(|c| c.pam(PamConfig::default().access_filter(filter)), &[]);
    assert_pam_error(&s.pam.acct_mgmt(OUTSIDER.name).unwrap(), PamCode::PermDenied, &s.agent);
    assert_pam_success(&s.pam.acct_mgmt("alice").unwrap(), &s.agent);
}

/// `{user}` is filled in by the agent: the rule admits exactly the user it names.
#[test]
fn an_access_filter_placeholder_is_the_user_being_checked() {
    let filter = "(&(uid={user})(|(uid=alice)(uid=bob)))";
    let s = pam_setup_with(|c| c.pam(PamConfig::default().access_filter(filter)), &[]);
    assert_pam_success(&s.pam.acct_mgmt("alice").unwrap(), &s.agent);
    assert_pam_error(&s.pam.acct_mgmt(OUTSIDER.name).unwrap(), PamCode::PermDenied, &s.agent);
}

#[test]
fn chauthtok_changes_the_password_then_only_the_new_one_works() {
    let s = pam_setup();
    let out = s.pam.chauthtok(Caller::user(&CHANGER), CHANGER.name, CHANGER.password, CHANGER_NEW_PASSWORD).unwrap();
    assert_pam_success(&out, &s.agent);
    assert!(out.stdout().contains("authentication token altered successfully"), "{out}");

    assert_pam_success(&s.pam.authenticate(CHANGER.name, CHANGER_NEW_PASSWORD).unwrap(), &s.agent);
    assert_pam_error(&s.pam.authenticate(CHANGER.name, CHANGER.password).unwrap(), PamCode::AuthErr, &s.agent);
    // The directory agrees, without Lanyard in the way.
    let direct = s.slapd.whoami_as(&user_dn(CHANGER.name), CHANGER_NEW_PASSWORD).unwrap();
    assert!(direct.status.success(), "{direct}");
}

#[test]
fn a_password_the_policy_rejects_fails_with_the_directorys_reason() {
    let s = pam_setup();
    let out = s.pam.chauthtok(Caller::user(&CHANGER), CHANGER.name, CHANGER.password, TOO_SHORT_PASSWORD).unwrap();
    assert_eq!(out.code(), Some(1), "{out}\n{}", s.agent.log());
    let text = (out.stdout() + &out.stderr()).to_lowercase();
    assert!(text.contains("password fails quality checking policy"), "no readable reason:\n{out}");
    // Nothing changed.
    assert_pam_success(&s.pam.authenticate(CHANGER.name, CHANGER.password).unwrap(), &s.agent);
}

#[test]
fn chauthtok_with_a_wrong_current_password_changes_nothing() {
    let s = pam_setup();
    let out =
        s.pam.chauthtok(Caller::user(&CHANGER), CHANGER.name, "not-the-Current-one-1", CHANGER_NEW_PASSWORD).unwrap();
    assert_eq!(out.code(), Some(1), "{out}\n{}", s.agent.log());
    assert_pam_success(&s.pam.authenticate(CHANGER.name, CHANGER.password).unwrap(), &s.agent);
    assert_pam_error(&s.pam.authenticate(CHANGER.name, CHANGER_NEW_PASSWORD).unwrap(), PamCode::AuthErr, &s.agent);
}

#[test]
fn opening_a_session_creates_the_home_directory_from_skel_with_the_configured_mode() {
    let s = pam_setup_with(|c| c.pam(PamConfig::default().create_home("0750")), &[]);
    // One namespace run: the tmpfs /home goes away with it.
    let out = s
        .pam
        .shell(
            "pamtester lanyard-test alice open_session >&2 || exit 9; \
             stat -c '%u %g %a' /home/alice; ls -A /home/alice | tr '\\n' ' '; echo; \
             ls -A /etc/skel | tr '\\n' ' '; echo; stat -c '%u %g' /home/alice/.profile",
        )
        .unwrap();
    assert_eq!(out.code(), Some(0), "{out}\n{}", s.agent.log());
    let lines = out.lines();
    assert_eq!(lines.first().map(String::as_str), Some("10001 10000 750"), "{out}");
    assert_eq!(lines.get(1), lines.get(2), "home is not a copy of /etc/skel:\n{out}");
    assert_eq!(lines.get(3).map(String::as_str), Some("10001 10000"), "{out}");
}

#[test]
fn no_home_directory_is_created_when_create_home_is_off() {
    let s = pam_setup();
    let out = s.pam.shell("pamtester lanyard-test alice open_session >&2; echo rc=$?; ls -A /home").unwrap();
    assert_eq!(out.stdout(), "rc=0\n", "{out}\n{}", s.agent.log());
}

#[test]
fn the_agent_logs_each_attempt_with_its_context_and_never_the_password() {
    let s = pam_setup();
    let items = ["rhost=192.0.2.7", "tty=pts/9"];
    let wrong = "not-Alices-password-1";
    let out = s.pam.pamtester(Caller::Root, "alice", &["authenticate"], &[wrong], &items).unwrap();
    assert_pam_error(&out, PamCode::AuthErr, &s.agent);
    let out = s.pam.pamtester(Caller::Root, "alice", &["authenticate"], &[ALICE.password], &items).unwrap();
    assert_pam_success(&out, &s.agent);

    let log = s.agent.log();
    let attempts: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("alice") && l.contains("lanyard-test") && l.contains("192.0.2.7") && l.contains("pts/9"))
        .collect();
    assert!(attempts.len() >= 2, "no audit line per attempt:\n{log}");
    assert!(!log.contains(ALICE.password) && !log.contains(wrong), "a password is in the agent's log:\n{log}");
}

#[test]
fn authentication_is_authinfo_unavail_when_the_agent_is_stopped() {
    let mut s = pam_setup();
    assert_pam_success(&s.pam.authenticate("alice", ALICE.password).unwrap(), &s.agent);
    s.agent.stop().unwrap();
    // Every command runs under the hang guard: returning at all is part of the check.
    assert_pam_error(&s.pam.authenticate("alice", ALICE.password).unwrap(), PamCode::AuthinfoUnavail, &s.agent);
    assert_pam_error(&s.pam.acct_mgmt("alice").unwrap(), PamCode::AuthinfoUnavail, &s.agent);
}

#[test]
fn authentication_returns_authinfo_unavail_when_the_agent_is_frozen() {
    let mut s = pam_setup();
    s.agent.freeze().unwrap();
    let thaw_on_exit = Thaw(&mut s.agent);
    let out = s.pam.authenticate("alice", ALICE.password).unwrap();
    drop(thaw_on_exit);
    assert_pam_error(&out, PamCode::AuthinfoUnavail, &s.agent);
}

#[test]
fn authentication_is_authinfo_unavail_when_the_directory_is_down() {
    let mut s = pam_setup();
    s.slapd.stop().unwrap();
    assert_pam_error(&s.pam.authenticate("alice", ALICE.password).unwrap(), PamCode::AuthinfoUnavail, &s.agent);
}

#[test]
fn ignore_authinfo_unavail_lets_the_next_module_decide_when_the_agent_is_down() {
    let PamSetup { pam: _, mut agent, slapd: _slapd } = pam_setup();
    let stack = "auth required @MODULE@ ignore_authinfo_unavail\nauth required pam_permit.so\n";
    let pam = Pam::with_service(&agent.run_dir(), stack).unwrap();
    // While the agent runs, the module still decides.
    assert_pam_error(&pam.authenticate("alice", "not-Alices-password-1").unwrap(), PamCode::AuthErr, &agent);
    agent.stop().unwrap();
    assert_pam_success(&pam.authenticate("alice", "not-Alices-password-1").unwrap(), &agent);
}

#[test]
fn repeated_failures_lock_the_account_out_without_reaching_slapd_and_spare_other_users() {
    let s = pam_setup_with(|c| c.pam(PamConfig::default().max_failures(3, "5m")), &[]);
    let mark = s.slapd.log_mark();
    for _ in 0..3 {
        assert_pam_error(&s.pam.authenticate("alice", "not-Alices-password-1").unwrap(), PamCode::AuthErr, &s.agent);
    }
    // One bind per failure: the directory judged each of them.
    assert_eq!(binds_since(&s.slapd, mark, "alice"), 3, "{}", s.slapd.log_since(mark));

    let mark = s.slapd.log_mark();
    let out = s.pam.authenticate("alice", ALICE.password).unwrap();
    assert_eq!(out.code(), Some(1), "the right password got through the lockout:\n{out}\n{}", s.agent.log());
    assert_eq!(
        binds_since(&s.slapd, mark, "alice"),
        0,
        "a locked-out attempt reached slapd:\n{}",
        s.slapd.log_since(mark)
    );

    assert_pam_success(&s.pam.authenticate("bob", BOB.password).unwrap(), &s.agent);
}
