//! The 389 Directory Server harness itself, with ldap-utils alone: the rfc2307bis data, TLS
//! demanded for binds, Password Modify, restarts on the same ports, nothing left behind.

use std::collections::BTreeSet;
use std::path::Path;

use lanyard_tests::ds389::{self, Ds389, ENG, EVERYONE, LOOP_A, LOOP_B, group_dn};
use lanyard_tests::fixture::{ALICE, CHANGER, CHANGER_NEW_PASSWORD, LOCKED, READER_DN, user_dn};

/// ldapwhoami exits with the LDAP result code.
const INVALID_CREDENTIALS: i32 = 49;
const CONFIDENTIALITY_REQUIRED: i32 = 13;
const UNWILLING_TO_PERFORM: i32 = 53;

/// The values of `attr` in LDIF output.
fn values(ldif: &str, attr: &str) -> BTreeSet<String> {
    let prefix = format!("{attr}: ");
    ldif.lines().filter_map(|l| l.strip_prefix(&prefix)).map(str::to_owned).collect()
}

#[test]
fn ds389_serves_the_directory_over_tls_and_refuses_binds_in_clear() {
    let ds = Ds389::start().unwrap();
    eprintln!("389 ready: {:?}; ns-slapd VmRSS {:?} KiB", ds.startup_stages(), ds.vm_rss_kib());
    // Nothing of the instance is in the host's /etc: it lives in the namespace's bind mounts.
    assert!(!Path::new("/etc/dirsrv/slapd-lanyard").exists(), "the instance was created on the host");

    let alice = ds.search_as_reader("(uid=alice)", &["uidNumber", "userPassword"]).unwrap();
    assert!(alice.status.success(), "{alice}");
    assert_eq!(values(&alice.stdout(), "uidNumber"), BTreeSet::from(["10001".to_owned()]), "{alice}");
    assert!(!alice.stdout().contains("userPassword"), "the reader reads passwords:\n{alice}");
    let eng = ds.search_as_reader("(cn=eng)", &["member", "gidNumber"]).unwrap();
    assert_eq!(values(&eng.stdout(), "member"), BTreeSet::from([group_dn("developers")]), "{eng}");
    assert_eq!(values(&eng.stdout(), "gidNumber"), BTreeSet::from([ENG.gid.to_string()]), "{eng}");
    let log = ds.log();
    assert!(Ds389::search_filters(&log).iter().any(|f| f == "(cn=eng)"), "{log}");

    let bound = ds.whoami_as(&user_dn("alice"), ALICE.password).unwrap();
    assert!(bound.status.success(), "{bound}");
    assert_eq!(bound.stdout().trim(), format!("dn: {}", user_dn("alice")));
    let clear = ds.whoami_without_tls(&user_dn("alice"), ALICE.password).unwrap();
    assert_eq!(clear.code(), Some(CONFIDENTIALITY_REQUIRED), "{clear}");
    assert!(clear.stderr().contains("Confidentiality required"), "{clear}");

    let changed = ds.passwd_as(&user_dn("changer"), CHANGER.password, CHANGER_NEW_PASSWORD).unwrap();
    assert!(changed.status.success(), "{changed}");
    assert!(ds.whoami_as(&user_dn("changer"), CHANGER_NEW_PASSWORD).unwrap().status.success());
    let old = ds.whoami_as(&user_dn("changer"), CHANGER.password).unwrap();
    assert_eq!(old.code(), Some(INVALID_CREDENTIALS), "{old}");

    let (pid, holder) = (ds.pid(), ds.namespace_pid());
    drop(ds);
    for gone in [pid, holder] {
        assert!(!Path::new(&format!("/proc/{gone}")).exists(), "pid {gone} outlived the harness");
    }
}

#[test]
fn ds389_resolves_nested_groups_locks_the_389_way_and_restarts_on_its_ports() {
    let mut ds = Ds389::start().unwrap();
    // memberOf holds every group alice is in, through eng > developers and the loop.
    let alice = ds.search_as_reader("(uid=alice)", &["memberOf"]).unwrap();
    let expected: BTreeSet<String> = ds389::transitive_groups("alice").into_iter().map(group_dn).collect();
    assert_eq!(values(&alice.stdout(), "memberOf"), expected, "{alice}");
    for group in [EVERYONE, LOOP_A, LOOP_B] {
        assert!(expected.contains(&group_dn(group.name)), "{} is not among alice's groups", group.name);
    }
    let loop_b = ds.search_as_reader("(cn=loop-b)", &["member", "memberOf"]).unwrap();
    let loop_b_members = BTreeSet::from([group_dn("loop-a"), user_dn("bob")]);
    assert_eq!(values(&loop_b.stdout(), "member"), loop_b_members, "{loop_b}");
    assert_eq!(values(&loop_b.stdout(), "memberOf"), BTreeSet::from([group_dn("loop-a")]), "{loop_b}");

    let locked = ds.whoami_as(&user_dn("locked"), LOCKED.password).unwrap();
    assert_eq!(locked.code(), Some(UNWILLING_TO_PERFORM), "{locked}");
    assert!(locked.stderr().contains("Account inactivated"), "{locked}");

    let (starttls, ldaps) = (ds.uri_starttls(), ds.uri_ldaps());
    let old_pid = ds.pid();
    ds.stop().unwrap();
    assert!(!Path::new(&format!("/proc/{old_pid}")).exists());
    ds.start_again().unwrap();
    assert_eq!((ds.uri_starttls(), ds.uri_ldaps()), (starttls, ldaps));
    let mut over_ldaps = ds.ldap_tool("ldapwhoami");
    over_ldaps.args(["-x", "-H", &ds.uri_ldaps(), "-D", READER_DN, "-y"]).arg(ds.bind_secret());
    let who = lanyard_tests::run_bounded(&mut over_ldaps, "ldapwhoami ldaps", lanyard_tests::HANG_GUARD).unwrap();
    assert_eq!(who.stdout().trim(), format!("dn: {READER_DN}"), "{who}");
}
