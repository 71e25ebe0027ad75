//! The fixture slapd's password policy and account states, checked with ldap-utils alone: what
//! the PAM tests rely on holds before any Lanyard code runs.

use lanyard_tests::Slapd;
use lanyard_tests::fixture::{
    self, ALICE, BOB, CHANGER, CHANGER_NEW_PASSWORD, LOCKED, LOCKED_FOREVER, OUTSIDER, POLICY_MAX_FAILURE,
    TOO_SHORT_PASSWORD, user_dn,
};

/// ldapwhoami exits with the LDAP result code; 49 is invalidCredentials.
const INVALID_CREDENTIALS: i32 = 49;

#[track_caller]
fn assert_binds(slapd: &Slapd, name: &str, password: &str) {
    let out = slapd.whoami_as(&user_dn(name), password).unwrap();
    assert!(out.status.success(), "{name} cannot bind:\n{out}");
    assert_eq!(out.stdout().trim(), format!("dn:{}", user_dn(name)));
}

#[track_caller]
fn assert_bind_refused(slapd: &Slapd, name: &str, password: &str) {
    let out = slapd.whoami_as(&user_dn(name), password).unwrap();
    assert_eq!(out.code(), Some(INVALID_CREDENTIALS), "{out}");
}

#[test]
fn users_bind_over_starttls_with_their_fixture_passwords() {
    let slapd = Slapd::start().unwrap();
    for user in [ALICE, BOB, OUTSIDER, CHANGER, fixture::JOSE, fixture::EXPIRED, fixture::AGED] {
        assert_binds(&slapd, user.name, user.password);
    }
    assert_bind_refused(&slapd, "alice", BOB.password);
    let log = slapd.log();
    let alice_bind = format!("BIND dn=\"{}\" mech=SIMPLE", user_dn("alice"));
    assert!(log.lines().any(|l| l.contains(&alice_bind) && l.ends_with(" ssf=256")), "{log}");
}

#[test]
fn the_locked_user_cannot_bind_even_with_the_right_password() {
    let slapd = Slapd::start().unwrap();
    assert_bind_refused(&slapd, "locked", LOCKED.password);
    // The same password on an unlocked entry would work: the lock is what refuses it.
    let unlock = format!("dn: {}\nchangetype: modify\ndelete: pwdAccountLockedTime\n", user_dn("locked"));
    slapd.modify_as_admin(&unlock).unwrap();
    assert_binds(&slapd, "locked", LOCKED.password);
}

#[test]
fn the_reader_sees_the_account_state_attributes() {
    let slapd = Slapd::start().unwrap();
    let out = slapd
        .search_as_reader(
            "(|(uid=expired)(uid=aged)(uid=locked))",
            &["uid", "shadowExpire", "shadowLastChange", "shadowMax", "pwdAccountLockedTime"],
        )
        .unwrap();
    assert!(out.status.success(), "{out}");
    let text = out.stdout();
    for line in [
        "shadowExpire: 1".to_owned(),
        "shadowLastChange: 1".to_owned(),
        "shadowMax: 30".to_owned(),
        format!("pwdAccountLockedTime: {LOCKED_FOREVER}"),
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
}

#[test]
fn a_password_shorter_than_the_policy_minimum_is_refused_with_a_readable_reason() {
    let slapd = Slapd::start().unwrap();
    let out = slapd.passwd_as(&user_dn("changer"), CHANGER.password, TOO_SHORT_PASSWORD).unwrap();
    assert!(!out.status.success(), "{out}");
    assert!(out.stdout().contains("Constraint violation (19)"), "{out}");
    assert!(out.stdout().contains("Password fails quality checking policy"), "{out}");
    assert_binds(&slapd, "changer", CHANGER.password);
    assert_bind_refused(&slapd, "changer", TOO_SHORT_PASSWORD);
}

#[test]
fn a_user_changes_their_own_password_and_it_is_stored_hashed() {
    let slapd = Slapd::start().unwrap();
    let out = slapd.passwd_as(&user_dn("changer"), CHANGER.password, CHANGER_NEW_PASSWORD).unwrap();
    assert!(out.status.success(), "{out}");
    assert_binds(&slapd, "changer", CHANGER_NEW_PASSWORD);
    assert_bind_refused(&slapd, "changer", CHANGER.password);

    let stored = slapd.search_as_admin("(uid=changer)", &["userPassword"]).unwrap();
    let value = stored.stdout().lines().find_map(|l| l.strip_prefix("userPassword:: ").map(str::to_owned));
    let value = value.unwrap_or_else(|| panic!("no userPassword in\n{stored}"));
    // Not the cleartext: base64 of "{SSHA}..." starts with "e1NTSEF9".
    assert!(value.starts_with(&fixture::base64(b"{SSHA}")[..8]), "{value}");
    // The control: alice's untouched fixture value is stored as it was loaded, in clear.
    let alice = slapd.search_as_admin("(uid=alice)", &["userPassword"]).unwrap();
    let loaded = format!("userPassword:: {}", fixture::base64(ALICE.password.as_bytes()));
    assert!(alice.stdout().lines().any(|l| l == loaded), "{alice}");
}

#[test]
fn the_default_policy_locks_an_account_after_too_many_failed_binds() {
    let slapd = Slapd::start().unwrap();
    for _ in 0..POLICY_MAX_FAILURE {
        assert_bind_refused(&slapd, "bob", "not-bobs-password");
    }
    assert_bind_refused(&slapd, "bob", BOB.password);
    let state = slapd.search_as_reader("(uid=bob)", &["pwdAccountLockedTime"]).unwrap();
    assert!(state.stdout().contains("pwdAccountLockedTime: "), "{state}");
    // Everyone else is unaffected.
    assert_binds(&slapd, "alice", ALICE.password);
}
