//! Socket abuse (issue 7, item 2): a thousand silent connections from root and a flood of
//! requests from one non-root uid at once. Throughout, bystanders (root and another uid) get
//! their answers, the agent stays up and its memory stays bounded. Broken frames are in
//! `hostile`.
//!
//! Nothing here asserts a latency: each bystander command runs under [`BYSTANDER_GUARD`], a
//! hang guard; the slowest answer and the agent's memory are printed for the notes.

use std::ffi::OsStr;
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use lanyard_tests::fixture::{BOB, JOSE};
use lanyard_tests::{Agent, Output, run_bounded};

use crate::common::{assert_success, setup};

const ALICE_LINE: &str = "alice:x:10001:10000:Alice Liddell:/home/alice:/bin/bash\n";
/// Silent connections root holds open at once (the agent serves 512, the rest wait in its
/// backlog).
const SILENT_CONNECTIONS: usize = 1000;
/// How long the flood lasts. Silent connections are dropped by the agent after its 2 s read
/// timeout and opened again, so this covers several rounds.
const FLOOD: Duration = Duration::from_secs(12);
/// The non-root flooder: this many connections at once (the agent serves 16 of one uid) and at
/// most this many requests in all.
const FLOODER_CONNECTIONS: usize = 64;
const FLOODER_REQUESTS: usize = 200_000;
/// The flooder stops itself after [`FLOOD`]; its hang guard adds this.
const FLOODER_GUARD_MARGIN: Duration = Duration::from_secs(20);
/// A hang guard on each bystander command, NOT a latency budget: the modules themselves give
/// up after 7 s, so an answer always comes before this.
const BYSTANDER_GUARD: Duration = Duration::from_secs(15);
/// At most this many bystander rounds (one root and one non-root lookup each) during the flood.
const BYSTANDER_ROUNDS: usize = 40;
/// The agent's resident memory after the flood must stay below this: generous, it only
/// catches growth without bound.
const RSS_LIMIT_KB: u64 = 200 * 1024;

/// `VmRSS` of `pid` in kB.
fn vm_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap_or_else(|| panic!("no VmRSS:\n{status}"));
    line.split_whitespace().nth(1).and_then(|kb| kb.parse().ok()).unwrap_or_else(|| panic!("{line}"))
}

/// Raises this process's soft open-file limit to its hard limit: the flood holds a thousand
/// sockets, more than the usual soft limit of 1024.
fn raise_open_file_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid, writable rlimit for the duration of the call.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: `limit` is a valid rlimit; raising the soft limit up to the hard one is allowed.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    limit.rlim_cur
}

/// Connects to `socket` without blocking: `None` when the agent's backlog is full (EAGAIN).
/// A blocking connect would wait for room in the backlog.
fn connect_nonblocking(socket: &Path) -> Option<UnixStream> {
    // SAFETY: plain socket(2); the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_un is plain old data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let path = socket.as_os_str().as_bytes();
    assert!(path.len() < addr.sun_path.len(), "socket path too long: {}", socket.display());
    for (dst, src) in addr.sun_path.iter_mut().zip(path) {
        *dst = *src as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: `addr` is a valid sockaddr_un of `len` bytes, NUL-terminated (zeroed past the path).
    let rc = unsafe { libc::connect(fd.as_raw_fd(), (&raw const addr).cast(), len) };
    if rc == 0 {
        return Some(UnixStream::from(fd));
    }
    let e = std::io::Error::last_os_error();
    assert_eq!(e.kind(), ErrorKind::WouldBlock, "connect to {}: {e}", socket.display());
    None
}

/// Whether the agent has hung up on this (non-blocking) connection.
fn hung_up(stream: &UnixStream) -> bool {
    let mut byte = 0u8;
    // SAFETY: `byte` is one writable byte; MSG_PEEK | MSG_DONTWAIT neither consumes nor blocks.
    let n = unsafe { libc::recv(stream.as_raw_fd(), (&raw mut byte).cast(), 1, libc::MSG_PEEK | libc::MSG_DONTWAIT) };
    // 0: end of file; -1 with anything but EAGAIN: reset. The agent never writes here.
    !(n < 0 && std::io::Error::last_os_error().kind() == ErrorKind::WouldBlock)
}

/// What the silent flood did.
#[derive(Debug, Default)]
struct SilentFlood {
    opened: usize,
    dropped_by_agent: usize,
    most_held: usize,
    backlog_full: usize,
}

/// Holds up to [`SILENT_CONNECTIONS`] silent connections to `socket` for [`FLOOD`], opening a
/// new one for each the agent drops. Bounded: rounds 50 ms apart until the time is up.
fn silent_flood(socket: &Path) -> SilentFlood {
    let mut held: Vec<UnixStream> = Vec::with_capacity(SILENT_CONNECTIONS);
    let mut flood = SilentFlood::default();
    let end = Instant::now() + FLOOD;
    let max_rounds = FLOOD.as_millis() / 50 + 1;
    for _ in 0..max_rounds {
        if Instant::now() >= end {
            break;
        }
        let before = held.len();
        held.retain(|s| !hung_up(s));
        flood.dropped_by_agent += before - held.len();
        while held.len() < SILENT_CONNECTIONS {
            match connect_nonblocking(socket) {
                Some(stream) => {
                    held.push(stream);
                    flood.opened += 1;
                }
                None => {
                    flood.backlog_full += 1;
                    break;
                }
            }
        }
        flood.most_held = flood.most_held.max(held.len());
        std::thread::sleep(Duration::from_millis(50));
    }
    flood
}

/// Runs `lanyard-flood` as bob (uid 10002) inside `ns`, against the agent's socket there, on a
/// thread of its own; the thread returns its output (it is killed if it outlives its guard).
fn start_flooder(ns: &lanyard_tests::Namespace) -> std::thread::JoinHandle<Output> {
    let flood = env!("CARGO_BIN_EXE_lanyard-flood");
    let argv: Vec<String> = vec![
        "setpriv".into(),
        format!("--reuid={}", BOB.uid),
        format!("--regid={}", BOB.gid),
        "--clear-groups".into(),
        flood.into(),
        "/run/lanyard/socket".into(),
        FLOODER_CONNECTIONS.to_string(),
        FLOODER_REQUESTS.to_string(),
        FLOOD.as_secs().to_string(),
    ];
    let mut cmd = ns.command(&[], &argv);
    std::thread::spawn(move || run_bounded(&mut cmd, "lanyard-flood as bob", FLOOD + FLOODER_GUARD_MARGIN).unwrap())
}

#[track_caller]
fn assert_agent_alive(agent: &mut Agent) {
    assert_eq!(agent.exited().unwrap(), None, "lanyardd exited\n{}", agent.log());
}

#[test]
fn bystanders_are_answered_through_a_thousand_silent_connections_and_a_one_uid_flood() {
    let mut s = setup();
    s.ns.set_guard(BYSTANDER_GUARD);
    let files = raise_open_file_limit();
    assert!(files > SILENT_CONNECTIONS as u64 + 256, "the hard open-file limit ({files}) is too low for the flood");
    // Positive control and warm-up: both bystanders answer before the flood.
    let jose_getent = |ns: &lanyard_tests::Namespace| {
        let argv = [
            "setpriv".to_owned(),
            format!("--reuid={}", JOSE.uid),
            format!("--regid={}", JOSE.gid),
            "--clear-groups".into(),
            "getent".into(),
            "passwd".into(),
            "alice".into(),
        ];
        ns.run(&argv.iter().map(OsStr::new).collect::<Vec<_>>()).unwrap()
    };
    for out in [s.ns.getent("passwd", &["alice"]).unwrap(), jose_getent(&s.ns)] {
        assert_success(&out, &s.agent);
        assert_eq!(out.stdout(), ALICE_LINE);
    }
    let pid = s.agent.pid();
    let rss_before = vm_rss_kb(pid);

    let flooder = start_flooder(&s.ns);
    let socket = s.agent.socket();
    let silent = std::thread::spawn(move || silent_flood(&socket));
    // Let both floods get going before the first bystander asks.
    std::thread::sleep(Duration::from_millis(500));

    let mut slowest = (Duration::ZERO, "");
    let mut rounds = 0;
    while !silent.is_finished() && rounds < BYSTANDER_ROUNDS {
        rounds += 1;
        for (who, run) in [
            ("root", &(|ns: &lanyard_tests::Namespace| ns.getent("passwd", &["alice"]).unwrap()) as &dyn Fn(_) -> _),
            ("jose (uid 10003)", &jose_getent),
        ] {
            let started = Instant::now();
            let out = run(&s.ns);
            let took = started.elapsed();
            assert_success(&out, &s.agent);
            assert_eq!(out.stdout(), ALICE_LINE, "{who} during the flood");
            if took > slowest.0 {
                slowest = (took, who);
            }
        }
        assert_agent_alive(&mut s.agent);
    }
    let silent = silent.join().unwrap();
    let flooder_out = flooder.join().unwrap();
    assert_eq!(flooder_out.code(), Some(0), "{flooder_out}");
    assert_agent_alive(&mut s.agent);
    let rss_after = vm_rss_kb(pid);

    eprintln!(
        "silent flood: {} connections opened, at most {} held at once, {} dropped by the agent, backlog full {} times",
        silent.opened, silent.most_held, silent.dropped_by_agent, silent.backlog_full
    );
    eprintln!("uid {} flood ({FLOODER_CONNECTIONS} connections): {}", BOB.uid, flooder_out.stdout().trim());
    eprintln!("bystanders: {rounds} rounds, slowest answer {:?} ({})", slowest.0, slowest.1);
    eprintln!("lanyardd VmRSS: {rss_before} kB before, {rss_after} kB after");

    assert!(rounds >= 2, "the bystanders asked only {rounds} times during the flood");
    assert_eq!(
        silent.most_held, SILENT_CONNECTIONS,
        "the flood never held {SILENT_CONNECTIONS} connections: {silent:?}"
    );
    assert!(rss_after < RSS_LIMIT_KB, "lanyardd grew to {rss_after} kB (from {rss_before} kB)");
    // After the flood, everyone is served as before.
    assert_success(&s.ns.getent("passwd", &["alice"]).unwrap(), &s.agent);
}
