//! Authorization (issue 7, item 3): a non-root caller cannot authenticate someone else, cannot
//! clear or invalidate the cache, and cannot reach an offline verifier or any secret through any
//! request; the cache and the bind password file are unreadable by other users, and the
//! world-readable snapshot beside the socket holds no secret.
//!
//! Every [`Request`](lanyard_proto::Request) variant is sent raw by `lanyard-ask` (one request,
//! every response printed as its `Debug` and its frame in hex), run under
//! `setpriv --reuid U --regid G --clear-groups` so the agent sees that uid through
//! `SO_PEERCRED`: bob (uid 10002, a directory account) and a stranger (uid 20000, no account),
//! after alice and bob logged in online as root (so the agent holds an offline verifier for
//! each, and binds as the reader with its password). Then root sends the same requests.
//!
//! | request (target) | bob, uid 10002 | stranger, uid 20000 | root |
//! | --- | --- | --- | --- |
//! | `UserByName`, `UserByUid`, `GroupByName`, `GroupByGid`, `GroupsOfUser` | answered | answered | answered |
//! | `EnumerateUsers`, `EnumerateGroups` | pages, `EndOfPages` | pages, `EndOfPages` | pages, `EndOfPages` |
//! | `Authenticate` alice, right or wrong password | `Refused`, no bind as alice | `Refused`, no bind | `Authenticated` / `WrongPassword` |
//! | `Authenticate` bob (bob's own), right / wrong | `Authenticated` / `WrongPassword` | `Refused` | `Authenticated` / `WrongPassword` |
//! | `Authenticate` an unknown name | `NotFound` | `NotFound` | `NotFound` |
//! | `CheckAccount` alice / bob | `Refused` / `AccountOk` | `Refused` / `Refused` | `AccountOk` / `AccountOk` |
//! | `ChangePassword` alice, right current password | `Refused`, no bind | `Refused`, no bind | (not sent: it would change it) |
//! | `ChangePassword` alice / bob, wrong current password | `Refused` / `WrongPassword` | `Refused` / `Refused` | `WrongPassword` / `WrongPassword` |
//! | `ChangePassword` alice / bob, no current password | `Refused` / `Refused` | `Refused` / `Refused` | `Refused` / `Refused` (`root_may_reset_passwords` is off) |
//! | `OpenSession` alice / bob | `Refused` / `SessionReady` | `Refused` / `Refused` | `SessionReady` / `SessionReady` |
//! | `Status`, `Metrics`, `Trace` (all five lookups) | answered | answered | answered |
//! | `Invalidate` user, group, all | `Refused` (memory still answers) | `Refused` | `Invalidated` |
//! | `ClearCache` | `Refused` (verifiers still there) | `Refused` | `Cleared` (verifiers gone) |
//! | offline: `Authenticate` alice, right or wrong, past the lockout count | `Refused`; alice is not locked out | `Refused` | `Authenticated { offline: true }` |
//! | offline: `Authenticate` bob | `Authenticated { offline: true }` | `Refused` | |
//!
//! No answer to anyone (its `Debug` text and its frame's bytes) holds a test password, the
//! reader's bind password, `$argon2`, or a verifier's salt or hash (as stored, base64, and
//! decoded). The files, opened as bob and as the stranger: the cache file (0600, in the 0700
//! cache directory), the cache directory and the bind password file are refused (permission
//! denied; for the directory and the password file the directory above is open to them, so it
//! is their own mode that refuses); every file beside the socket they can read, the snapshot
//! (0644 by design) at least, holds users and none of those secrets.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use lanyard_proto::snapshot::SNAPSHOT_FILE_NAME;
use lanyard_tests::fixture::{ALICE, BOB, NAMED_USERS};
use lanyard_tests::process::run_bounded_with_input;
use lanyard_tests::tempdir::mode_and_owner;
use lanyard_tests::{Agent, AgentConfig, HANG_GUARD, OfflineConfig, Output, Slapd, poll_until, run_bounded};

use crate::common::binds_since;

/// How long the agent may take to write what a login left behind (a verifier, a snapshot): a
/// bound on a poll, never a measurement.
const WRITE_LIMIT: Duration = Duration::from_secs(15);
const WRONG: &str = "not-the-Right-Pass-1";
const NEW: &str = "a-New-Password-Nobody-Sets-9";

/// Who sends a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Root,
    Uid(u32, u32),
}

const BOB_UID: Who = Who::Uid(BOB.uid, BOB.gid);
/// A uid with no directory account (the fixture's bulk users start at 20001).
const STRANGER: Who = Who::Uid(20000, 20000);

impl Who {
    /// `setpriv ... PROGRAM` or `PROGRAM`.
    fn command(self, program: &str) -> Command {
        match self {
            Who::Root => Command::new(program),
            Who::Uid(uid, gid) => {
                let mut cmd = Command::new("setpriv");
                cmd.args([format!("--reuid={uid}"), format!("--regid={gid}"), "--clear-groups".into(), program.into()]);
                cmd
            }
        }
    }

    fn name(self) -> String {
        match self {
            Who::Root => "root".into(),
            Who::Uid(uid, _) => format!("uid {uid}"),
        }
    }
}

/// Everything `lanyard-ask` printed for one request.
#[derive(Debug)]
struct Answer {
    /// Each response's `Debug`, in order.
    debug: Vec<String>,
    /// Each response's frame.
    frames: Vec<Vec<u8>>,
}

impl Answer {
    fn first(&self) -> &str {
        self.debug.first().map_or("", String::as_str)
    }
}

/// Sends one request (`lanyard-ask` words, passwords on stdin) as `who`.
fn ask(agent: &Agent, who: Who, words: &[&str], passwords: &[&str]) -> Answer {
    let mut cmd = who.command(env!("CARGO_BIN_EXE_lanyard-ask"));
    cmd.arg(agent.socket()).args(words);
    let input: Vec<u8> = passwords.iter().flat_map(|p| p.bytes().chain([b'\n'])).collect();
    let description = format!("lanyard-ask {} as {}", words.join(" "), who.name());
    let out = run_bounded_with_input(&mut cmd, &input, &description, HANG_GUARD).unwrap();
    assert_eq!(out.code(), Some(0), "{out}\n--- lanyardd log ---\n{}", agent.log());
    let mut answer = Answer { debug: Vec::new(), frames: Vec::new() };
    for line in out.lines() {
        if let Some(debug) = line.strip_prefix("response: ") {
            answer.debug.push(debug.to_owned());
        } else if let Some(hex) = line.strip_prefix("frame: ") {
            answer.frames.push(unhex(hex));
        }
    }
    assert!(!answer.debug.is_empty() && answer.debug.len() == answer.frames.len(), "{out}");
    answer
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()).collect()
}

/// Runs `argv` as `who`.
fn run_as(who: Who, argv: &[&str]) -> Output {
    let mut cmd = who.command(argv[0]);
    cmd.args(&argv[1..]);
    run_bounded(&mut cmd, &format!("{} as {}", argv.join(" "), who.name()), HANG_GUARD).unwrap()
}

/// What no answer and no world-readable file may hold, named for the failure message.
struct Secrets(Vec<(String, Vec<u8>)>);

impl Secrets {
    /// The test passwords, the reader's bind password, `$argon2`, and every verifier in the
    /// agent's cache file.
    fn gather(slapd: &Slapd, agent: &Agent) -> Secrets {
        let mut secrets: Vec<(String, Vec<u8>)> =
            NAMED_USERS.iter().map(|u| (format!("{}'s password", u.name), u.password.as_bytes().to_vec())).collect();
        for (what, secret) in [("a wrong password", WRONG), ("a new password", NEW)] {
            secrets.push((what.into(), secret.as_bytes().to_vec()));
        }
        let reader = fs::read_to_string(slapd.bind_secret()).unwrap();
        assert!(!reader.trim_end().is_empty());
        secrets.push(("the reader's bind password".into(), reader.trim_end().as_bytes().to_vec()));
        secrets.push(("$argon2".into(), b"$argon2".to_vec()));
        let verifiers = verifiers_in(&fs::read(agent.cache_file()).unwrap());
        // Alice's and bob's (older copies of a page may hold earlier ones too).
        assert!(verifiers.len() >= 2, "verifiers in the cache file: {verifiers:?}\n{}", agent.log());
        for (n, phc) in verifiers.iter().enumerate() {
            let parts: Vec<&str> = phc.split('$').collect();
            let [_, _, _, _, salt, hash] = parts.as_slice() else { panic!("not a PHC string: {phc}") };
            assert_eq!((unbase64(salt).len(), unbase64(hash).len()), (16, 32), "{phc}");
            for (what, text) in [("salt", salt), ("hash", hash)] {
                secrets.push((format!("verifier {n}'s {what} (base64)"), text.as_bytes().to_vec()));
                secrets.push((format!("verifier {n}'s {what} (bytes)"), unbase64(text)));
            }
        }
        Secrets(secrets)
    }

    /// Asserts `haystack` holds none of the secrets.
    #[track_caller]
    fn assert_absent(&self, what: &str, haystack: &[u8]) {
        for (name, secret) in &self.0 {
            assert!(!contains(haystack, secret), "{what} holds {name}");
        }
    }

    #[track_caller]
    fn assert_clean(&self, what: &str, answer: &Answer) {
        for (debug, frame) in answer.debug.iter().zip(&answer.frames) {
            self.assert_absent(&format!("{what}: {debug}"), debug.as_bytes());
            self.assert_absent(&format!("{what} (frame): {debug}"), frame);
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The distinct Argon2id PHC strings in a cache file (postcard keeps a string's bytes as they
/// are; redb may hold older copies of a page too).
fn verifiers_in(file: &[u8]) -> Vec<String> {
    const START: &[u8] = b"$argon2id$";
    let mut found: Vec<String> = Vec::new();
    let mut at = 0;
    while let Some(offset) = file[at..].windows(START.len()).position(|w| w == START) {
        let start = at + offset;
        let end = file[start..]
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || b"$=,+/".contains(b)))
            .map_or(file.len(), |n| start + n);
        let phc = String::from_utf8_lossy(&file[start..end]).into_owned();
        if phc.split('$').count() == 6 && !found.contains(&phc) {
            found.push(phc);
        }
        at = end;
    }
    found
}

/// Standard base64 without padding, as PHC strings write it.
fn unbase64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut bits, mut count) = (0u32, 0);
    for c in text.bytes() {
        let value = ALPHABET.iter().position(|&a| a == c).unwrap_or_else(|| panic!("not base64: {text}"));
        bits = (bits << 6) | value as u32;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

/// The `offline_verifiers` count root's `Status` shows.
fn verifier_count(agent: &Agent) -> u64 {
    let status = ask(agent, Who::Root, &["status"], &[]);
    let text = status.first();
    let (_, rest) = text.split_once("offline_verifiers: ").unwrap_or_else(|| panic!("{text}"));
    rest.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

/// Waits (bounded) until root's `Status` counts `count` offline verifiers.
#[track_caller]
fn wait_for_verifiers(agent: &Agent, count: u64) {
    let done = poll_until("the offline verifiers", WRITE_LIMIT, Duration::from_millis(50), || {
        Ok((verifier_count(agent) == count).then_some(()))
    });
    assert!(done.is_ok(), "{done:?}: {} verifiers\n{}", verifier_count(agent), agent.log());
}

/// slapd and an agent (with `offline` settings), after alice and bob logged in online as root:
/// both have offline verifiers on disk.
fn after_logins(offline: OfflineConfig) -> (Agent, Slapd) {
    let slapd = Slapd::start().unwrap();
    let agent = Agent::start(&AgentConfig::for_slapd(&slapd).timeout("1s").offline(offline)).unwrap();
    logins(&agent);
    (agent, slapd)
}

/// Alice and bob log in online as root; waits (bounded) until both verifiers are on disk.
fn logins(agent: &Agent) {
    for (user, password) in [("alice", ALICE.password), ("bob", BOB.password)] {
        let answer = ask(agent, Who::Root, &["authenticate", user], &[password]);
        assert_eq!(answer.first(), "Authenticated { offline: false }", "{}", agent.log());
    }
    wait_for_verifiers(agent, 2);
}

/// One row of the sweep: the request, its stdin, and how each caller's first response starts
/// (`None`: not sent by that caller).
struct Row {
    words: &'static [&'static str],
    stdin: &'static [&'static str],
    bob: Option<&'static str>,
    stranger: Option<&'static str>,
    root: Option<&'static str>,
}

const fn row(
    words: &'static [&'static str],
    stdin: &'static [&'static str],
    bob: &'static str,
    stranger: &'static str,
    root: &'static str,
) -> Row {
    Row { words, stdin, bob: Some(bob), stranger: Some(stranger), root: Some(root) }
}

const AUTHENTICATED: &str = "Authenticated { offline: false }";
const REFUSED: &str = "Refused(";

/// Every request variant, in the forms that target another user (alice), the caller's own user
/// (bob) and nobody. The ones that change state for root come last.
const SWEEP: &[Row] = &[
    row(&["user-by-name", "alice"], &[], "User(", "User(", "User("),
    row(&["user-by-uid", "10001"], &[], "User(", "User(", "User("),
    row(&["group-by-name", "developers"], &[], "Group(", "Group(", "Group("),
    row(&["group-by-gid", "10010"], &[], "Group(", "Group(", "Group("),
    row(&["groups-of-user", "alice"], &[], "GroupIds(", "GroupIds(", "GroupIds("),
    row(&["enumerate-users"], &[], "UserPage(", "UserPage(", "UserPage("),
    row(&["enumerate-groups"], &[], "GroupPage(", "GroupPage(", "GroupPage("),
    row(&["authenticate", "alice"], &[ALICE.password], REFUSED, REFUSED, AUTHENTICATED),
    row(&["authenticate", "alice"], &[WRONG], REFUSED, REFUSED, "WrongPassword"),
    row(&["authenticate", "bob"], &[BOB.password], AUTHENTICATED, REFUSED, AUTHENTICATED),
    row(&["authenticate", "bob"], &[WRONG], "WrongPassword", REFUSED, "WrongPassword"),
    row(&["authenticate", "nosuchuser"], &[WRONG], "NotFound", "NotFound", "NotFound"),
    row(&["check-account", "alice"], &[], REFUSED, REFUSED, "AccountOk {"),
    row(&["check-account", "bob"], &[], "AccountOk {", REFUSED, "AccountOk {"),
    Row {
        words: &["change-password", "alice"],
        stdin: &[NEW, ALICE.password],
        bob: Some(REFUSED),
        stranger: Some(REFUSED),
        root: None,
    },
    row(&["change-password", "alice"], &[NEW, WRONG], REFUSED, REFUSED, "WrongPassword"),
    row(&["change-password", "bob"], &[NEW, WRONG], "WrongPassword", REFUSED, "WrongPassword"),
    row(&["reset-password", "alice"], &[NEW], REFUSED, REFUSED, REFUSED),
    row(&["reset-password", "bob"], &[NEW], REFUSED, REFUSED, REFUSED),
    row(&["open-session", "alice"], &[], REFUSED, REFUSED, "SessionReady {"),
    row(&["open-session", "bob"], &[], "SessionReady {", REFUSED, "SessionReady {"),
    row(&["status"], &[], "Status(", "Status(", "Status("),
    row(&["metrics"], &[], "Metrics(", "Metrics(", "Metrics("),
    row(&["trace", "user-by-name", "alice"], &[], "Traced {", "Traced {", "Traced {"),
    row(&["trace", "user-by-uid", "10001"], &[], "Traced {", "Traced {", "Traced {"),
    row(&["trace", "group-by-name", "developers"], &[], "Traced {", "Traced {", "Traced {"),
    row(&["trace", "group-by-gid", "10010"], &[], "Traced {", "Traced {", "Traced {"),
    row(&["trace", "groups-of-user", "alice"], &[], "Traced {", "Traced {", "Traced {"),
    row(&["invalidate", "user", "alice"], &[], REFUSED, REFUSED, "Invalidated"),
    row(&["invalidate", "group", "developers"], &[], REFUSED, REFUSED, "Invalidated"),
    row(&["invalidate", "all"], &[], REFUSED, REFUSED, "Invalidated"),
    row(&["clear-cache"], &[], REFUSED, REFUSED, "Cleared"),
];

/// Sends every row of [`SWEEP`] as `who`, checks each answer against the table and the secrets,
/// and prints it.
fn sweep(agent: &Agent, secrets: &Secrets, who: Who) {
    for row in SWEEP {
        let expected = match who {
            Who::Root => row.root,
            w if w == BOB_UID => row.bob,
            _ => row.stranger,
        };
        let Some(expected) = expected else { continue };
        let answer = ask(agent, who, row.words, row.stdin);
        let what = format!("{} as {}", row.words.join(" "), who.name());
        println!("{what}: {}", answer.debug.iter().map(|d| summary(d)).collect::<Vec<_>>().join(" | "));
        assert!(
            answer.first().starts_with(expected),
            "{what}: expected {expected}..., got {answer:?}\n{}",
            agent.log()
        );
        if expected.ends_with("Page(") {
            assert_eq!(answer.debug.last().map(String::as_str), Some("EndOfPages"), "{what}");
        } else {
            assert_eq!(answer.debug.len(), 1, "{what}: {answer:?}");
        }
        secrets.assert_clean(&what, &answer);
    }
}

/// The first 160 characters of a response, for the printed table.
fn summary(debug: &str) -> String {
    if debug.chars().count() <= 160 {
        debug.to_owned()
    } else {
        format!("{}...", debug.chars().take(160).collect::<String>())
    }
}

/// The `Source` of root's trace of alice.
fn alice_source(agent: &Agent) -> String {
    let answer = ask(agent, Who::Root, &["trace", "user-by-name", "alice"], &[]);
    let (_, source) = answer.first().split_once("source: ").unwrap_or_else(|| panic!("{answer:?}"));
    source.to_owned()
}

#[test]
fn every_request_from_a_non_root_caller_is_refused_or_answered_without_secrets() {
    let (agent, slapd) = after_logins(OfflineConfig::default());
    let secrets = Secrets::gather(&slapd, &agent);
    assert!(alice_source(&agent).starts_with("Memory"), "{}", alice_source(&agent));

    let mark = slapd.log_mark();
    for who in [BOB_UID, STRANGER] {
        sweep(&agent, &secrets, who);
    }
    let binds = binds_since(&slapd, mark, "alice");
    assert_eq!(binds, 0, "a non-root caller's request bound as alice:\n{}", slapd.log_since(mark));
    // The refused ClearCache and Invalidate changed nothing.
    assert_eq!(verifier_count(&agent), 2, "{}", agent.log());
    assert!(alice_source(&agent).starts_with("Memory"), "{}", alice_source(&agent));

    // Root: the same requests, with the answers the table gives.
    let mark = slapd.log_mark();
    sweep(&agent, &secrets, Who::Root);
    assert!(
        binds_since(&slapd, mark, "alice") >= 2,
        "root's requests never bound as alice:\n{}",
        slapd.log_since(mark)
    );
    wait_for_verifiers(&agent, 0);
}

#[test]
fn offline_a_non_root_caller_cannot_reach_another_users_verifier() {
    let (mut agent, mut slapd) = after_logins(OfflineConfig::default().lockout_after(2, "1h").probe_interval("1s"));
    let secrets = Secrets::gather(&slapd, &agent);
    slapd.stop().unwrap();

    // More wrong passwords than the lockout allows, and the right one, from bob and the stranger.
    for who in [BOB_UID, STRANGER] {
        for password in [ALICE.password, WRONG, WRONG, WRONG, ALICE.password] {
            let answer = ask(&agent, who, &["authenticate", "alice"], &[password]);
            println!("offline: authenticate alice as {}: {}", who.name(), answer.first());
            assert!(answer.first().starts_with(REFUSED), "{}: {answer:?}\n{}", who.name(), agent.log());
            secrets.assert_clean("offline authenticate alice", &answer);
        }
        for words in [&["check-account", "alice"][..], &["open-session", "alice"]] {
            let answer = ask(&agent, who, words, &[]);
            println!("offline: {} as {}: {}", words.join(" "), who.name(), answer.first());
            assert!(answer.first().starts_with(REFUSED), "{}: {answer:?}\n{}", who.name(), agent.log());
        }
        let answer = ask(&agent, who, &["clear-cache"], &[]);
        assert!(answer.first().starts_with(REFUSED), "{}: {answer:?}", who.name());
    }
    // Bob's own verifier is his to use (a screen locker), and the stranger's attempt is not.
    let own = ask(&agent, BOB_UID, &["authenticate", "bob"], &[BOB.password]);
    println!("offline: authenticate bob as uid {}: {}", BOB.uid, own.first());
    assert_eq!(own.first(), "Authenticated { offline: true }", "{}", agent.log());
    let stranger = ask(&agent, STRANGER, &["authenticate", "bob"], &[BOB.password]);
    assert!(stranger.first().starts_with(REFUSED), "{stranger:?}");

    // None of it reached alice's verifier: no failures were counted, so no lockout.
    let root = ask(&agent, Who::Root, &["authenticate", "alice"], &[ALICE.password]);
    println!("offline: authenticate alice as root: {}", root.first());
    assert_eq!(root.first(), "Authenticated { offline: true }", "{}", agent.log());
    assert_eq!(verifier_count(&agent), 2);
    assert_eq!(agent.exited().unwrap(), None, "{}", agent.log());
}

/// `cat PATH` (or `ls PATH` for a directory) as `who` is refused for lack of permission, and
/// PATH is root's with no group or other bits. With `parent_open`, the directory above is first
/// shown open to `who` (searchable), so it is PATH's own mode that refuses.
#[track_caller]
fn assert_closed_to(who: Who, path: &Path, parent_open: bool) {
    if parent_open {
        let parent = path.parent().unwrap().to_str().unwrap();
        let open = run_as(who, &["test", "-x", parent]);
        assert_eq!(open.code(), Some(0), "{parent} is closed to {}: the test proves nothing\n{open}", who.name());
    }
    let path = path.to_str().unwrap();
    let program = if Path::new(path).is_dir() { "ls" } else { "cat" };
    let out = run_as(who, &[program, path]);
    println!("{program} {path} as {}: exit {:?}, {}", who.name(), out.code(), out.stderr().trim_end());
    assert_ne!(out.code(), Some(0), "{} read {path}:\n{out}", who.name());
    assert!(out.stderr().contains("Permission denied"), "{out}");
    assert!(out.stdout.is_empty(), "{out}");
    let (mode, owner) = mode_and_owner(Path::new(path)).unwrap();
    assert_eq!((mode & 0o077, owner), (0, 0), "{path} is {mode:o}, owned by {owner}");
}

#[test]
fn the_cache_and_bind_password_are_closed_to_other_users_and_the_snapshot_holds_no_secret() {
    let slapd = Slapd::start().unwrap();
    let mut agent = Agent::start(&AgentConfig::for_slapd(&slapd)).unwrap();
    // The harness made `cache_dir` (with its own umask) before the agent started, and the agent
    // leaves an existing directory's mode alone (the package's unit makes it 0700). Here the
    // agent makes it, as on a host where it is missing.
    agent.stop().unwrap();
    fs::remove_dir_all(agent.cache_dir()).unwrap();
    agent.restart().unwrap();
    logins(&agent);
    let secrets = Secrets::gather(&slapd, &agent);
    for words in [&["user-by-name", "alice"][..], &["user-by-name", "bob"], &["groups-of-user", "alice"]] {
        assert!(!ask(&agent, Who::Root, words, &[]).first().starts_with("Unavailable"));
    }
    let snapshot = agent.run_dir().join(SNAPSHOT_FILE_NAME);
    let published = poll_until("alice and bob in the snapshot", WRITE_LIMIT, Duration::from_millis(50), || {
        let bytes = fs::read(&snapshot).unwrap_or_default();
        Ok((contains(&bytes, b"alice") && contains(&bytes, b"Bob Builder")).then_some(()))
    });
    assert!(published.is_ok(), "{published:?}\n{}", agent.log());

    for who in [BOB_UID, STRANGER] {
        // The cache file sits in the cache directory (0700): both refuse on their own.
        assert_closed_to(who, &agent.cache_file(), false);
        assert_closed_to(who, &agent.cache_dir(), true);
        assert_closed_to(who, slapd.bind_secret(), true);
        // Everything beside the socket that this uid can read holds no secret: the snapshot,
        // at least, which it must be able to read.
        let mut read = Vec::<PathBuf>::new();
        for entry in fs::read_dir(agent.run_dir()).unwrap() {
            let path = entry.unwrap().path();
            if !path.is_file() {
                continue;
            }
            let out = run_as(who, &["cat", path.to_str().unwrap()]);
            if out.code() == Some(0) {
                secrets.assert_absent(&format!("{} as {} reads it", path.display(), who.name()), &out.stdout);
                read.push(path);
            }
        }
        println!("readable by {} beside the socket: {read:?}", who.name());
        assert!(read.contains(&snapshot), "{} cannot read the snapshot", who.name());
    }
    let (mode, _) = mode_and_owner(&snapshot).unwrap();
    assert_eq!(mode, 0o644, "the snapshot is {mode:o}");
    let bytes = fs::read(&snapshot).unwrap();
    secrets.assert_absent("the snapshot", &bytes);
}

#[test]
fn verifiers_are_found_in_bytes_and_their_base64_decodes() {
    let file = b"\x00\x35$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGVsbG8\x08$argon2id$x\x00";
    assert_eq!(verifiers_in(file), vec!["$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGVsbG8".to_owned()]);
    assert_eq!(unbase64("aGVsbG8"), b"hello");
    assert_eq!(unbase64("c2FsdHNhbHQ"), b"saltsalt");
    assert!(contains(b"xxhelloxx", b"hello") && !contains(b"hell", b"hello") && !contains(b"x", b""));
}
