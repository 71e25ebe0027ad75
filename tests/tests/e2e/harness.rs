//! The fixture slapd itself. If these fail, every other result is suspect: a slapd that accepted
//! plaintext binds would let a silent plaintext fallback pass.

use std::time::Instant;

use lanyard_tests::Slapd;
use lanyard_tests::fixture::{self, READER_DN};

/// ldapwhoami exits with the LDAP result code; 13 is confidentialityRequired.
const CONFIDENTIALITY_REQUIRED: i32 = 13;

#[test]
fn slapd_refuses_a_simple_bind_without_tls() {
    let started = Instant::now();
    let slapd = Slapd::start().unwrap();
    eprintln!("slapd start (certificates, slapadd, ready): {:?}", started.elapsed());

    let plain = slapd.whoami_as_reader(&slapd.uri_starttls(), false).unwrap();
    assert_eq!(plain.code(), Some(CONFIDENTIALITY_REQUIRED), "{plain}");
    assert!(plain.stderr().contains("Confidentiality required"), "{plain}");

    let tls = slapd.whoami_as_reader(&slapd.uri_starttls(), true).unwrap();
    assert!(tls.status.success(), "{tls}");
    assert_eq!(tls.stdout().trim(), format!("dn:{READER_DN}"));

    let log = slapd.log();
    assert!(log.contains("err=13") && log.contains("TLS confidentiality required"), "{log}");
}

#[test]
fn slapd_serves_ldaps_with_the_run_ca_and_not_with_the_wrong_one() {
    let slapd = Slapd::start().unwrap();
    let reader_binds =
        |log: &str| log.lines().filter(|l| l.contains(&format!("BIND dn=\"{READER_DN}\" mech=SIMPLE"))).count();

    let mark = slapd.log_mark();
    let good = slapd.whoami_as_reader(&slapd.uri_ldaps(), false).unwrap();
    assert!(good.status.success(), "{good}");
    assert_eq!(reader_binds(&slapd.log_since(mark)), 1, "{}", slapd.log());

    let mark = slapd.log_mark();
    let mut cmd = slapd.ldap_tool("ldapwhoami");
    cmd.env("LDAPTLS_CACERT", slapd.wrong_ca_pem())
        .args(["-x", "-ZZ", "-H", &slapd.uri_starttls(), "-D", READER_DN, "-y"])
        .arg(slapd.bind_secret());
    let wrong = lanyard_tests::run_bounded(&mut cmd, "ldapwhoami (wrong CA)", lanyard_tests::HANG_GUARD).unwrap();
    assert!(!wrong.status.success(), "the wrong CA was accepted:\n{wrong}");
    assert_eq!(reader_binds(&slapd.log_since(mark)), 0, "{}", slapd.log());
}

#[test]
fn fixture_is_loaded_and_readable_by_the_reader() {
    let slapd = Slapd::start().unwrap();

    let alice = slapd.search_as_reader("(uid=alice)", &["uidNumber", "gidNumber", "gecos", "homeDirectory"]).unwrap();
    assert!(alice.status.success(), "{alice}");
    let text = alice.stdout();
    for line in ["uidNumber: 10001", "gidNumber: 10000", "gecos: Alice Liddell", "homeDirectory: /home/alice"] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }

    let jose = slapd.search_as_reader("(uid=jose)", &["gecos"]).unwrap();
    assert!(jose.stdout().contains(&format!("gecos:: {}", fixture::base64("José Müller-Ærø".as_bytes()))), "{jose}");

    let big = slapd.search_as_reader("(cn=biggroup)", &["memberUid"]).unwrap();
    assert!(big.status.success(), "{big}");
    let members = big.stdout().lines().filter(|l| l.starts_with("memberUid: ")).count();
    assert_eq!(members, 5001);
    assert_eq!(members, fixture::BIG_GROUP_MEMBER_COUNT);

    let users = slapd.search_as_reader("(objectClass=posixAccount)", &["1.1"]).unwrap();
    assert_eq!(users.stdout().lines().filter(|l| l.starts_with("dn: ")).count(), 308, "{users}");
    let groups = slapd.search_as_reader("(objectClass=posixGroup)", &["1.1"]).unwrap();
    assert_eq!(groups.stdout().lines().filter(|l| l.starts_with("dn: ")).count(), fixture::GROUP_COUNT, "{groups}");
}

#[test]
fn anonymous_clients_read_nothing_and_the_reader_reads_no_passwords() {
    let slapd = Slapd::start().unwrap();
    let mut cmd = slapd.ldap_tool("ldapsearch");
    cmd.args(["-x", "-ZZ", "-LLL", "-H", &slapd.uri_starttls(), "-b", fixture::BASE_DN, "(uid=alice)"]);
    let anonymous = lanyard_tests::run_bounded(&mut cmd, "ldapsearch (anonymous)", lanyard_tests::HANG_GUARD).unwrap();
    // The base entry itself is invisible to anonymous: "No such object" (32), and no entry.
    assert_eq!(anonymous.code(), Some(32), "{anonymous}");
    assert_eq!(anonymous.stdout().trim(), "", "anonymous read something");

    let reader = slapd.search_as_reader("(uid=alice)", &["userPassword", "uid"]).unwrap();
    assert!(reader.stdout().contains("uid: alice"), "{reader}");
    assert!(!reader.stdout().contains("userPassword"), "{reader}");
}

#[test]
fn slapd_log_records_the_filters_it_was_sent() {
    let slapd = Slapd::start().unwrap();
    let mark = slapd.log_mark();
    slapd.search_as_reader("(&(objectClass=posixAccount)(uid=bob))", &["uid"]).unwrap();
    let filters = Slapd::search_filters(&slapd.log_since(mark));
    assert_eq!(filters, ["(&(objectClass=posixAccount)(uid=bob))"]);
}

#[test]
fn admin_changes_apply_over_starttls() {
    let slapd = Slapd::start().unwrap();
    slapd
        .modify_as_admin(
            "dn: uid=bob,ou=people,dc=example,dc=org\nchangetype: modify\nreplace: loginShell\nloginShell: /bin/zsh\n",
        )
        .unwrap();
    let bob = slapd.search_as_reader("(uid=bob)", &["loginShell"]).unwrap();
    assert!(bob.stdout().contains("loginShell: /bin/zsh"), "{bob}");
}

#[test]
fn slapd_is_stopped_when_dropped() {
    let slapd = Slapd::start().unwrap();
    let pid = slapd.pid();
    let conf = slapd.dir().join("slapd.conf");
    let dir = slapd.dir().to_path_buf();
    let ours = || {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains(&*conf.to_string_lossy()))
            .unwrap_or(false)
    };
    assert!(ours(), "pid {pid} is not our slapd");
    drop(slapd);
    assert!(!ours(), "slapd (pid {pid}) still runs after drop");
    if std::env::var_os(lanyard_tests::tempdir::KEEP_ENV).is_none() {
        assert!(!dir.exists(), "{} was not removed", dir.display());
    }
}

#[test]
fn namespace_sees_the_test_nsswitch_and_run_dir_and_the_host_does_not() {
    let host_nsswitch = std::fs::read("/etc/nsswitch.conf").unwrap();
    let run_dir = lanyard_tests::TempDir::new("nsrun").unwrap();
    std::fs::write(run_dir.join("marker"), b"ours").unwrap();
    let ns = lanyard_tests::Namespace::new(run_dir.path()).unwrap();

    let out = ns.run(&["cat", "/etc/nsswitch.conf", "/run/lanyard/marker"]).unwrap();
    assert!(out.status.success(), "{out}");
    assert_eq!(out.stdout(), format!("{}ours", lanyard_tests::namespace::NSSWITCH_CONF));
    let env = ns.run(&["sh", "-c", "echo \"$LD_LIBRARY_PATH\"; ls \"$LD_LIBRARY_PATH\"; ls /run"]).unwrap();
    assert!(env.stdout().lines().nth(1) == Some("libnss_lanyard.so.2"), "{env}");
    assert_eq!(env.stdout().lines().skip(2).collect::<Vec<_>>(), ["lanyard"], "{env}");

    assert_eq!(std::fs::read("/etc/nsswitch.conf").unwrap(), host_nsswitch, "the host's nsswitch.conf changed");
    assert!(!std::path::Path::new("/run/lanyard/marker").exists(), "the mount leaked to the host");
}
