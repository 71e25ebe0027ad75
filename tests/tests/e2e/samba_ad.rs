//! The Samba AD DC harness, checked with ldap-utils alone: what the `schema = "ad"` tests will
//! rely on holds before any Lanyard code runs. One DC serves every check (provisioning one
//! costs seconds of CPU); the timings and memory it reports are printed with `--nocapture`.

use std::path::Path;
use std::time::Duration;

use lanyard_tests::fixture::{ALICE, CHANGER, CHANGER_NEW_PASSWORD};
use lanyard_tests::samba_ad::data::{self, AdState, BIG_GROUP_MEMBER_COUNT, DC_FQDN, dn_of, upn};
use lanyard_tests::samba_ad::{SambaAd, SambaProcess};
use lanyard_tests::{HANG_GUARD, Output, poll_until, run_bounded};

/// ldapsearch exits with the LDAP result code: 49 invalidCredentials, 8 strongerAuthRequired.
const INVALID_CREDENTIALS: i32 = 49;
const STRONGER_AUTH_REQUIRED: i32 = 8;

/// Values of `attr` (any options, e.g. `member;range=0-1499`) in unwrapped LDIF, by the exact
/// attribute description the server sent.
fn values(out: &Output, description: &str) -> Vec<String> {
    let prefix = format!("{description}: ");
    out.lines().into_iter().filter_map(|l| l.strip_prefix(&prefix).map(str::to_owned)).collect()
}

fn descriptions(out: &Output, attr: &str) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for line in out.lines() {
        let Some((description, _)) = line.split_once(": ") else { continue };
        if description.split(';').next() == Some(attr) && !seen.iter().any(|s| s == description) {
            seen.push(description.to_owned());
        }
    }
    seen
}

#[track_caller]
fn assert_binds(ad: &SambaAd, who: &str, password: &str) {
    let out = ad.search_as(who, password, "(sAMAccountName=alice)", &["uidNumber"]).unwrap();
    assert!(out.status.success(), "{who} cannot bind over StartTLS:\n{out}");
    assert_eq!(values(&out, "uidNumber"), ["10001"], "{out}");
}

fn report(ad: &SambaAd, processes: &[SambaProcess]) {
    let t = ad.timings();
    eprintln!("samba AD: provision {:?}, data load {:?}, start to ready {:?}", t.provision, t.load, t.ready);
    let (rss, pss): (u64, u64) = processes.iter().fold((0, 0), |(r, p), x| (r + x.rss_kb, p + x.pss_kb));
    eprintln!("samba AD: {} processes, VmRSS summed {} kB, Pss summed {} kB", processes.len(), rss, pss);
    for p in processes {
        eprintln!("  {:>7} {:<16} VmRSS {:>6} kB  Pss {:>6} kB", p.pid, p.name, p.rss_kb, p.pss_kb);
    }
}

#[test]
fn samba_ad_serves_the_fixture_over_tls_only_and_is_gone_after_drop() {
    let ad = SambaAd::start().unwrap();
    let processes = ad.processes().unwrap();
    report(&ad, &processes);
    assert!(processes.iter().any(|p| p.pid == ad.pid() && p.name == "samba"), "{processes:?}");

    // The reader finds alice with her RFC 2307 attributes.
    let alice =
        ad.search_as_reader("(sAMAccountName=alice)", &["uidNumber", "gidNumber", "unixHomeDirectory"]).unwrap();
    assert!(alice.status.success(), "{alice}");
    assert!(alice.stdout().contains(&format!("dn: {}\n", dn_of("alice"))), "{alice}");
    assert_eq!(values(&alice, "uidNumber"), ["10001"], "{alice}");
    assert_eq!(values(&alice, "gidNumber"), ["10000"], "{alice}");
    assert_eq!(values(&alice, "unixHomeDirectory"), [ALICE.home], "{alice}");

    // LDAPS, and StartTLS to the DC's DNS name (what SRV discovery yields: resolved by Samba's
    // DNS, named in the certificate); a client trusting another CA gets nothing.
    let reader_at = |uri: &str, ca: &Path| {
        let mut cmd = ad.ldap_tool("ldapsearch");
        cmd.env("LDAPTLS_CACERT", ca).args(["-x", "-LLL", "-H", uri, "-D", ad.bind_dn(), "-y"]);
        cmd.arg(ad.bind_secret()).args(["-b", ad.base_dn(), "(sAMAccountName=bob)", "uidNumber"]);
        if uri.starts_with("ldap://") {
            cmd.arg("-ZZ");
        }
        run_bounded(&mut cmd, &format!("ldapsearch -H {uri}"), HANG_GUARD).unwrap()
    };
    for uri in [ad.uri_ldaps(), format!("ldap://{DC_FQDN}")] {
        let bob = reader_at(&uri, ad.ca_pem());
        assert_eq!(values(&bob, "uidNumber"), ["10002"], "{bob}");
        let wrong = reader_at(&uri, &ad.pki().wrong_ca_pem);
        assert!(!wrong.status.success() && wrong.stdout().is_empty(), "the wrong CA was accepted:\n{wrong}");
    }

    // Nesting: alice is in developers, eng holds developers, everyone holds eng.
    let chain = ad.search_as_reader(&format!("(member:1.2.840.113556.1.4.1941:={})", dn_of("alice")), &["cn"]).unwrap();
    let mut groups = values(&chain, "cn");
    groups.sort();
    assert_eq!(groups, ["admins", "biggroup", "developers", "eng", "everyone", "ops"], "{chain}");

    // Range retrieval: Samba 4.17 answers `member;range=0-*` whole (a Windows DC would stop at
    // 1,500 and name the range 0-1499); a client that asks range by range gets 0-1499, then
    // the rest as 1500-*.
    let whole = ad.search_as_reader("(sAMAccountName=biggroup)", &["member;range=0-*"]).unwrap();
    assert_eq!(descriptions(&whole, "member"), ["member;range=0-*"], "{whole}");
    assert_eq!(values(&whole, "member;range=0-*").len(), BIG_GROUP_MEMBER_COUNT);
    let first = ad.search_as_reader("(sAMAccountName=biggroup)", &["member;range=0-1499"]).unwrap();
    assert_eq!(descriptions(&first, "member"), ["member;range=0-1499"], "{first}");
    let rest = ad.search_as_reader("(sAMAccountName=biggroup)", &["member;range=1500-*"]).unwrap();
    assert_eq!(descriptions(&rest, "member"), ["member;range=1500-*"], "{rest}");
    let mut members = values(&first, "member;range=0-1499");
    assert_eq!(members.len(), 1500);
    members.extend(values(&rest, "member;range=1500-*"));
    members.sort();
    members.dedup();
    assert_eq!(members.len(), BIG_GROUP_MEMBER_COUNT);
    assert!(members.contains(&dn_of("alice")) && members.contains(&dn_of("big1600")));

    // alice binds over StartTLS as her DN, her UPN and EXAMPLE\alice.
    for who in [dn_of("alice"), upn("alice"), "EXAMPLE\\alice".to_owned()] {
        assert_binds(&ad, &who, ALICE.password);
    }
    let wrong = ad.search_as(&upn("alice"), "not-her-password", "(sAMAccountName=alice)", &["dn"]).unwrap();
    assert_eq!(wrong.code(), Some(INVALID_CREDENTIALS), "{wrong}");
    assert!(wrong.stderr().contains("data 52e"), "{wrong}");

    // Without TLS a simple bind is refused before the password is checked.
    let plain = ad.bind_in_clear(&upn("alice"), ALICE.password).unwrap();
    assert_eq!(plain.code(), Some(STRONGER_AUTH_REQUIRED), "{plain}");
    assert!(plain.stderr().contains("Transport encryption required"), "{plain}");

    // Each account state refuses the right password with its own sub-code.
    for u in data::USERS.iter().filter(|u| u.state != AdState::Active) {
        let out = ad.search_as(&upn(u.user.name), u.user.password, "(sAMAccountName=alice)", &["dn"]).unwrap();
        let code = u.state.bind_refusal().unwrap();
        assert_eq!(out.code(), Some(INVALID_CREDENTIALS), "{}: {out}", u.user.name);
        assert!(
            out.stderr().contains(&format!("data {code},")),
            "{} should be refused with {code}: {out}",
            u.user.name
        );
    }

    // changer changes its own password with a unicodePwd modify; only the new one binds.
    let changed = ad.change_password_as(&upn("changer"), &dn_of("changer"), CHANGER.password, CHANGER_NEW_PASSWORD);
    assert!(changed.as_ref().is_ok_and(|o| o.status.success()), "{changed:?}");
    assert_binds(&ad, &dn_of("changer"), CHANGER_NEW_PASSWORD);
    let old = ad.search_as(&upn("changer"), CHANGER.password, "(sAMAccountName=alice)", &["dn"]).unwrap();
    assert_eq!(old.code(), Some(INVALID_CREDENTIALS), "{old}");

    // Samba's own DNS: the SRV record provision wrote, and the A record its target needs.
    let mut getent = ad.command("getent");
    getent.args(["hosts", DC_FQDN]);
    let a = run_bounded(&mut getent, "getent hosts", HANG_GUARD).unwrap();
    assert!(a.stdout().starts_with("127.0.0.1 "), "{a}");
    let mut python = ad.command("/usr/bin/python3");
    python.args([
        "-c",
        "import dns.resolver\nfor r in dns.resolver.resolve('_ldap._tcp.example.org', 'SRV'): print(r.to_text())",
    ]);
    let srv = run_bounded(&mut python, "SRV _ldap._tcp.example.org", HANG_GUARD).unwrap();
    assert_eq!(srv.stdout().trim(), format!("0 100 389 {DC_FQDN}."), "{srv}");

    // Every authentication above was audited, with its transport.
    let log = ad.log();
    assert!(log.contains("Auth: [LDAP,simple bind/TLS]"), "{log}");

    drop(ad);
    let gone = poll_until("every samba process to exit", Duration::from_secs(5), Duration::from_millis(20), || {
        let alive: Vec<u32> =
            processes.iter().map(|p| p.pid).filter(|pid| Path::new(&format!("/proc/{pid}")).exists()).collect();
        Ok(alive.is_empty().then_some(()))
    });
    assert!(gone.is_ok(), "samba processes outlived the drop: {processes:?}");
}
