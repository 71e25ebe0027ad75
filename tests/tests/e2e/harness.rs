//! The fixture slapd and the agent runner themselves. If these fail, every other result is
//! suspect: a slapd that accepted plaintext binds would let a silent plaintext fallback pass, and
//! a "stopped" slapd that still answered would let an offline test pass online.

use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant, SystemTime};

use lanyard_tests::fixture::{self, READER_DN, user_dn};
use lanyard_tests::slapd::closed_port;
use lanyard_tests::tempdir::write_file_mode;
use lanyard_tests::{Agent, AgentConfig, Launch, Slapd, TempDir, TestPki, run_bounded, shifted_clock};

/// ldapwhoami exits with the LDAP result code; 13 is confidentialityRequired.
const CONFIDENTIALITY_REQUIRED: i32 = 13;
/// The StartTLS extended operation (RFC 4511, 4.14.1).
const STARTTLS_OID: &str = "1.3.6.1.4.1.1466.20037";

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
fn a_plaintext_slapd_takes_a_simple_bind_in_clear_and_refuses_starttls() {
    let slapd = Slapd::start_plaintext().unwrap();
    let conf = std::fs::read_to_string(slapd.dir().join("slapd.conf")).unwrap();
    assert!(!conf.lines().any(|l| l.starts_with("TLS") || l.starts_with("security")), "{conf}");

    let plain = slapd.whoami_as_reader(&slapd.uri_ldap(), false).unwrap();
    assert!(plain.status.success(), "{plain}");
    assert_eq!(plain.stdout().trim(), format!("dn:{READER_DN}"));

    let mark = slapd.log_mark();
    let starttls = slapd.whoami_as_reader(&slapd.uri_ldap(), true).unwrap();
    assert!(!starttls.status.success(), "StartTLS succeeded on a slapd without TLS:\n{starttls}");
    // Refused by slapd itself (not a connection failure), and -ZZ never sent the password.
    let log = slapd.log_since(mark);
    assert!(log.contains(&format!("EXT oid={STARTTLS_OID}")), "{log}");
    assert_eq!(Slapd::bind_attempts(&log, READER_DN), 0, "{log}");
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
    for slapd in [Slapd::start().unwrap(), Slapd::start_plaintext().unwrap()] {
        assert_stopped_when_dropped(slapd);
    }
}

fn assert_stopped_when_dropped(slapd: Slapd) {
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

#[test]
fn slapd_started_again_keeps_its_ports_and_its_data() {
    let mut slapd = Slapd::start().unwrap();
    let (uri, ldaps) = (slapd.uri_starttls(), slapd.uri_ldaps());
    slapd
        .modify_as_admin(
            "dn: uid=bob,ou=people,dc=example,dc=org\nchangetype: modify\nreplace: loginShell\nloginShell: /bin/zsh\n",
        )
        .unwrap();
    let pid = slapd.pid();
    slapd.stop().unwrap();
    assert!(TcpStream::connect(slapd.starttls_addr()).is_err(), "something still listens on slapd's port");
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "slapd (pid {pid}) still runs");

    // A change made while it is down, straight into its database.
    let gecos = "gecos: Alice Changed-While-Down\n";
    slapd
        .modify_while_stopped(&format!("dn: {}\nchangetype: modify\nreplace: gecos\n{gecos}", user_dn("alice")))
        .unwrap();
    slapd.start_again().unwrap();
    assert_ne!(slapd.pid(), pid);
    assert_eq!((slapd.uri_starttls(), slapd.uri_ldaps()), (uri, ldaps));
    let bob = slapd.search_as_reader("(uid=bob)", &["loginShell"]).unwrap();
    assert!(bob.stdout().contains("loginShell: /bin/zsh"), "the change made before the stop is gone:\n{bob}");
    let alice = slapd.search_as_reader("(uid=alice)", &["gecos"]).unwrap();
    assert!(alice.stdout().contains(gecos), "the change made while stopped is not served:\n{alice}");
    let users = slapd.search_as_reader("(objectClass=posixAccount)", &["1.1"]).unwrap();
    assert_eq!(users.stdout().lines().filter(|l| l.starts_with("dn: ")).count(), 308, "{users}");
    // Its log goes on in the same file: a mark taken before the restart still works.
    assert_eq!(slapd.log().matches("slapd starting").count(), 2, "{}", slapd.log());
}

/// The 2 s guard below is how the hang shows: a frozen slapd never answers, so the guard fires.
#[test]
fn a_frozen_slapd_accepts_connections_but_answers_nothing_until_thawed() {
    let mut slapd = Slapd::start().unwrap();
    slapd.freeze().unwrap();
    assert!(slapd.is_frozen());
    // The kernel completes the handshake for a stopped process's listening socket.
    assert!(TcpStream::connect(slapd.starttls_addr()).is_ok(), "a frozen slapd's port refused the connection");
    let mut cmd = slapd.ldap_tool("ldapwhoami");
    cmd.args(["-x", "-ZZ", "-H", &slapd.uri_starttls(), "-D", READER_DN, "-y"]).arg(slapd.bind_secret());
    let hung = run_bounded(&mut cmd, "ldapwhoami (frozen slapd)", Duration::from_secs(2));
    let message = format!("{:#}", hung.expect_err("a frozen slapd answered"));
    assert!(message.contains("hang guard"), "{message}");

    slapd.thaw().unwrap();
    assert!(!slapd.is_frozen());
    let who = slapd.whoami_as_reader(&slapd.uri_starttls(), true).unwrap();
    assert!(who.status.success(), "{who}");
}

#[test]
fn a_frozen_slapd_is_thawed_and_stopped_on_drop() {
    let mut slapd = Slapd::start().unwrap();
    let pid = slapd.pid();
    slapd.freeze().unwrap();
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let state = state.rsplit_once(')').map(|(_, rest)| rest.trim_start().chars().next()).unwrap();
    assert_eq!(state, Some('T'), "SIGSTOP did not stop slapd");
    drop(slapd);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "slapd (pid {pid}) outlived its drop");
}

/// An agent whose directory nobody listens on, with its CA and secret kept alive beside it.
struct LoneAgent {
    agent: Agent,
    _dir: TempDir,
}

fn lone_agent(launch: &Launch) -> LoneAgent {
    let dir = TempDir::new("lone").unwrap();
    let pki = TestPki::generate(dir.path()).unwrap();
    let secret = dir.join("bind.secret");
    write_file_mode(&secret, b"not-a-real-password", 0o600).unwrap();
    let uri = format!("ldap://127.0.0.1:{}", closed_port().unwrap());
    LoneAgent {
        agent: Agent::start_with(&AgentConfig::new(vec![uri], &pki.ca_pem, &secret), launch).unwrap(),
        _dir: dir,
    }
}

fn umask_of(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find_map(|l| l.strip_prefix("Umask:")).map(|m| m.trim().to_owned()).unwrap_or_default()
}

#[test]
fn the_agent_restarts_with_the_same_config_socket_and_cache_dir() {
    let mut lone = lone_agent(&Launch::default());
    let agent = &mut lone.agent;
    let (pid, socket, cache_dir, config) =
        (agent.pid(), agent.socket(), agent.cache_dir(), agent.config_path().to_path_buf());
    assert!(std::fs::read_to_string(&config).unwrap().contains(&format!("cache_dir = \"{}\"", cache_dir.display())));
    std::fs::write(cache_dir.join("marker"), b"kept").unwrap();
    let mark = agent.log_mark();

    agent.restart().unwrap();
    assert_ne!(agent.pid(), pid);
    assert_eq!((agent.socket(), agent.cache_dir(), agent.config_path()), (socket.clone(), cache_dir.clone(), &*config));
    assert!(UnixStream::connect(&socket).is_ok(), "the restarted agent does not listen on {}", socket.display());
    assert_eq!(std::fs::read(cache_dir.join("marker")).unwrap(), b"kept");
    assert_eq!(agent.cache_file(), cache_dir.join("cache.redb"));
    // One log across runs; the mark splits them.
    assert!(agent.log().contains("SIGTERM"), "{}", agent.log());
    assert_eq!(agent.log_since(mark).matches("listening").count(), 1, "{}", agent.log_since(mark));
}

#[test]
fn an_agent_killed_with_sigkill_leaves_a_stale_socket_and_restarts_over_it() {
    let mut lone = lone_agent(&Launch::default());
    let agent = &mut lone.agent;
    let status = agent.kill().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    assert!(agent.socket().exists(), "a killed agent cannot have removed its socket");
    assert!(UnixStream::connect(agent.socket()).is_err(), "nothing should answer on a dead agent's socket");
    assert!(agent.kill().is_err(), "killing a dead agent claimed to work");

    agent.restart().unwrap();
    assert!(UnixStream::connect(agent.socket()).is_ok());
    assert!(agent.exited().unwrap().is_none(), "{}", agent.log());
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn today() -> i64 {
    let secs = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    i64::try_from(secs / 86_400).unwrap()
}

/// The day of the first line of a log that starts with an RFC 3339 timestamp.
fn first_log_day(log: &str) -> i64 {
    let date = log.get(..10).unwrap_or_else(|| panic!("no timestamp in {log:?}"));
    let parts: Vec<i64> = date.split('-').map(|p| p.parse().unwrap_or_else(|_| panic!("{date:?}"))).collect();
    assert_eq!(parts.len(), 3, "{date:?}");
    days_from_civil(parts[0], parts[1], parts[2])
}

#[test]
fn a_launch_sets_the_agents_umask_and_moves_only_that_runs_wall_clock() {
    assert_eq!(days_from_civil(1970, 1, 1), 0);
    assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    let before = today();
    let mut lone = lone_agent(&Launch::default().umask(0o000).env(shifted_clock("+15d").unwrap()));
    let after = today();
    let agent = &mut lone.agent;
    assert_eq!(umask_of(agent.pid()), "0000");
    let day = first_log_day(&agent.log());
    assert!((before + 15..=after + 15).contains(&day), "log day {day}, today {before}..{after}:\n{}", agent.log());

    // Stopped first, so that its shutdown lines (still on the shifted clock) come before the mark.
    agent.stop().unwrap();
    let mark = agent.log_mark();
    let before = today();
    agent.restart().unwrap();
    let after = today();
    assert_ne!(umask_of(agent.pid()), "0000", "the umask outlived its launch");
    let day = first_log_day(&agent.log_since(mark));
    assert!((before..=after).contains(&day), "the shifted clock outlived its launch: day {day}, today {before}");
}
