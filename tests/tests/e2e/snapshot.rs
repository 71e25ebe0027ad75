//! The NSS fast path: the snapshot the agent publishes beside its socket, mapped by the module.
//!
//! Which path answered is told by `lanyard_lookups_total`: it counts requests that reached the
//! agent, so a lookup the snapshot answered leaves it where it was. Each test first waits
//! (bounded) until a round of lookups leaves that counter unchanged: then the snapshot holds
//! what they ask, whatever the timing of the agent's 50 ms coalesced publication.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use lanyard_proto::snapshot::SNAPSHOT_FILE_NAME;
use lanyard_proto::snapshot::format::{OFF_RECORDS_LEN, OFF_RECORDS_OFFSET};
use lanyard_proto::{Client, Deadlines, Invalidation, Request, Response};
use lanyard_tests::{Agent, HANG_GUARD, Output, TempDir, lanyardctl_path, poll_until, require_built, run_bounded};

use crate::common::{Setup, assert_success, setup};

const ALICE_LINE: &str = "alice:x:10001:10000:Alice Liddell:/home/alice:/bin/bash\n";
const DEVELOPERS_LINES: [&str; 2] = ["developers:x:10010:alice,bob\n", "developers:x:10010:bob,alice\n"];
/// How long the snapshot may take to hold what was just looked up: a bound on a poll (the agent
/// publishes 50 ms after a change), never a measurement.
const PUBLISH_LIMIT: Duration = Duration::from_secs(15);

/// One sample of the agent's metrics, read over its socket (a `Metrics` request is not a lookup:
/// reading it does not move `lanyard_lookups_total`).
fn metric(agent: &Agent, name: &str) -> f64 {
    let text = match Client::call(&agent.socket(), &Request::Metrics, Deadlines::default()) {
        Ok(Response::Metrics(text)) => text,
        other => panic!("expected metrics, got {other:?}\n--- lanyardd log ---\n{}", agent.log()),
    };
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in:\n{text}"))
}

fn lookups(agent: &Agent) -> f64 {
    metric(agent, "lanyard_lookups_total")
}

fn published(agent: &Agent) -> f64 {
    metric(agent, "lanyard_snapshots_published_total")
}

fn snapshot_path(agent: &Agent) -> PathBuf {
    agent.run_dir().join(SNAPSHOT_FILE_NAME)
}

/// `getent passwd alice`, `getent group developers` and `id alice`, each checked in full.
fn alice_lookups(s: &Setup) {
    let out = s.ns.getent("passwd", &["alice"]).unwrap();
    assert_success(&out, &s.agent);
    assert_eq!(out.stdout(), ALICE_LINE, "{out}");
    let out = s.ns.getent("group", &["developers"]).unwrap();
    assert_success(&out, &s.agent);
    assert!(DEVELOPERS_LINES.contains(&out.stdout().as_str()), "{out}");
    assert_id_alice(&s.ns.run(&["id", "alice"]).unwrap(), &s.agent);
}

#[track_caller]
fn assert_id_alice(out: &Output, agent: &Agent) {
    assert_success(out, agent);
    let text = out.stdout();
    let (head, groups) = text.trim_end().split_once(" groups=").unwrap_or_else(|| panic!("{out}"));
    assert_eq!(head, "uid=10001(alice) gid=10000(staff)", "{out}");
    let listed: BTreeSet<&str> = groups.split(',').collect();
    let expected: BTreeSet<&str> =
        ["10000(staff)", "10010(developers)", "10011(ops)", "10012(admins)", "10100(biggroup)"].into();
    assert_eq!(listed, expected, "{out}");
}

/// Runs `round` until one whole round leaves `lanyard_lookups_total` unchanged: from then on
/// the snapshot answers everything `round` asks. Bounded in time and tries.
fn until_served_from_snapshot(s: &Setup, what: &str, mut round: impl FnMut()) {
    poll_until(&format!("{what} to be answered from the snapshot"), PUBLISH_LIMIT, Duration::from_millis(50), || {
        let before = lookups(&s.agent);
        round();
        Ok((lookups(&s.agent) == before).then_some(()))
    })
    .unwrap_or_else(|e| panic!("{e:#}\n--- lanyardd log ---\n{}", s.agent.log()));
}

#[test]
fn lookups_are_answered_from_the_snapshot_while_the_agent_runs_and_after_it_is_killed() {
    let mut s = setup();
    let published_at_start = published(&s.agent);
    // The first round goes through the socket and fills the caches the snapshot is made of.
    let before = lookups(&s.agent);
    alice_lookups(&s);
    assert!(lookups(&s.agent) > before, "the first lookups cannot have come from an empty snapshot");
    until_served_from_snapshot(&s, "alice, developers and id alice", || alice_lookups(&s));
    assert!(published(&s.agent) > published_at_start, "answered without a new snapshot?");

    // A lookup by uid was never sent to the agent, yet the record holds it: the snapshot's own
    // index answers, and the agent, still running, is not asked.
    let before = lookups(&s.agent);
    let out = s.ns.getent("passwd", &["10001"]).unwrap();
    assert_success(&out, &s.agent);
    assert_eq!(out.stdout(), ALICE_LINE);
    assert_eq!(lookups(&s.agent), before, "a fresh lookup reached the running agent");

    // A crash: nothing listens any more, the socket file stays behind. The mapped file still
    // answers, for the whole of its TTL.
    let status = s.agent.kill().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    alice_lookups(&s);
    let out = s.ns.getent("passwd", &["10001"]).unwrap();
    assert_success(&out, &s.agent);
    assert_eq!(out.stdout(), ALICE_LINE);
}

/// `lanyardctl ARGS...` against `agent`, as root.
fn lanyardctl(agent: &Agent, args: &[&str]) -> Output {
    require_built(&lanyardctl_path()).unwrap();
    let mut cmd = Command::new(lanyardctl_path());
    cmd.arg("--socket").arg(agent.socket()).arg("--config").arg(agent.config_path()).args(args);
    run_bounded(&mut cmd, &format!("lanyardctl {}", args.join(" ")), HANG_GUARD).unwrap()
}

fn set_alices_gecos(s: &Setup, gecos: &str) {
    let ldif =
        format!("dn: uid=alice,ou=people,dc=example,dc=org\nchangetype: modify\nreplace: gecos\ngecos: {gecos}\n");
    let out = s.slapd.modify_as_admin(&ldif).unwrap();
    assert_eq!(out.code(), Some(0), "{out}");
}

const ALICE_CHANGED: &str = "alice:x:10001:10000:Alice Changed:/home/alice:/bin/bash\n";

/// Alice in the snapshot, then her gecos changed in the directory: lookups keep the old entry,
/// answered from the snapshot without asking the agent.
fn alice_changed_under_the_snapshot(s: &Setup) {
    until_served_from_snapshot(s, "getent passwd alice", || {
        let out = s.ns.getent("passwd", &["alice"]).unwrap();
        assert_success(&out, &s.agent);
        assert_eq!(out.stdout(), ALICE_LINE);
    });
    set_alices_gecos(s, "Alice Changed");
    let before = lookups(&s.agent);
    let out = s.ns.getent("passwd", &["alice"]).unwrap();
    assert_success(&out, &s.agent);
    assert_eq!(out.stdout(), ALICE_LINE, "the snapshot holds alice as she was");
    assert_eq!(lookups(&s.agent), before, "not answered from the snapshot");
}

/// `lanyardctl ARGS` (an invalidation or a clear) and, with no wait in between, one lookup:
/// the reply means the snapshot no longer holds alice, so that lookup reaches the agent.
/// Returns what it printed.
fn lanyardctl_then_getent_alice(s: &Setup, args: &[&str], said: &str) -> String {
    let out = lanyardctl(&s.agent, args);
    assert_eq!((out.code(), out.stdout().as_str()), (Some(0), said), "{out}");
    let before = lookups(&s.agent);
    let out = s.ns.getent("passwd", &["alice"]).unwrap();
    assert_success(&out, &s.agent);
    assert_eq!(lookups(&s.agent), before + 1.0, "after `lanyardctl {}` the snapshot still answered", args.join(" "));
    out.stdout()
}

/// After an invalidation the agent may answer once from its disk cache, stale, while it asks
/// the directory again (`ctl.rs`: "answered stale from disk or again from the directory");
/// the new entry must then follow, from the agent and from the snapshot it republishes.
fn invalidation_is_visible_to_the_next_lookup(s: &Setup, invalidate_args: &[&str]) {
    alice_changed_under_the_snapshot(s);
    let first = lanyardctl_then_getent_alice(s, invalidate_args, "invalidated\n");
    assert!(first == ALICE_LINE || first == ALICE_CHANGED, "{first}");
    until_served_from_snapshot(s, "alice's new entry", || {
        let out = s.ns.getent("passwd", &["alice"]).unwrap();
        assert_success(&out, &s.agent);
        // Until the refresh lands, the stale answer may repeat; a fresh old entry would never
        // become this and the poll would fail.
        assert!(out.stdout() == ALICE_LINE || out.stdout() == ALICE_CHANGED, "{out}");
    });
    let out = s.ns.getent("passwd", &["alice"]).unwrap();
    if out.stdout() != ALICE_CHANGED {
        // Where the agent's own copy came from tells a re-cached disk entry from a lost refresh.
        let agent_says = lanyardctl(&s.agent, &["user", "alice"]);
        panic!(
            "the snapshot settled on alice's old entry:\n{out}\nthe agent's copy: {agent_says}\nfirst answer after the invalidation: {first}"
        );
    }
}

#[test]
fn an_invalidation_sends_the_next_lookup_to_the_agent_and_the_new_entry_follows() {
    let s = setup();
    invalidation_is_visible_to_the_next_lookup(&s, &["cache", "invalidate"]);
}

#[test]
fn after_a_cache_clear_the_very_next_lookup_has_the_new_entry() {
    let s = setup();
    alice_changed_under_the_snapshot(&s);
    // A clear also empties the disk cache (and waits for it): the directory answers at once.
    assert_eq!(lanyardctl_then_getent_alice(&s, &["cache", "clear"], "cleared\n"), ALICE_CHANGED);
}

/// An enumeration's listing also feeds the snapshot (and marks it complete). Invalidating one
/// user must take that user out of the snapshot too; otherwise `getent passwd alice` keeps the
/// old entry from the listing for the rest of its TTL without ever asking the agent (before
/// the snapshot, it asked the agent, whose per-key answers the invalidation had cleared).
#[test]
fn invalidating_one_user_after_an_enumeration_sends_the_next_lookup_to_the_agent() {
    let s = setup();
    let out = s.ns.getent::<&str>("passwd", &[]).unwrap();
    assert_success(&out, &s.agent);
    assert!(out.lines().iter().any(|l| format!("{l}\n") == ALICE_LINE), "alice not enumerated");
    invalidation_is_visible_to_the_next_lookup(&s, &["cache", "invalidate", "user", "alice"]);
}

/// Puts `bytes` in place of the agent's snapshot the way the agent does (a new file, renamed
/// over the old one), with `mode` set explicitly whatever the umask.
fn replace_snapshot(agent: &Agent, bytes: &[u8], mode: u32) {
    let staged = agent.run_dir().join(".snapshot.test.new");
    fs::write(&staged, bytes).unwrap();
    fs::set_permissions(&staged, fs::Permissions::from_mode(mode)).unwrap();
    fs::rename(&staged, snapshot_path(agent)).unwrap();
}

/// A deterministic byte stream (xorshift), so a failure can be reproduced.
fn garbage(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// Where alice's user record starts in `snapshot`: its name is preceded by its length and,
/// before that, the tag, expiry, uid and gid (proto/src/snapshot/format.rs).
fn alice_record(snapshot: &[u8]) -> usize {
    let mut needle = 5u32.to_le_bytes().to_vec();
    needle.extend_from_slice(b"alice");
    needle.extend_from_slice(&13u32.to_le_bytes());
    needle.extend_from_slice(b"Alice Liddell");
    let at = snapshot.windows(needle.len()).position(|w| w == needle).expect("alice's record in the snapshot");
    let start = at - 4 - 4 - 4 - 8;
    assert_eq!(&snapshot[start + 12..start + 16], &10001u32.to_le_bytes(), "not alice's uid where expected");
    start
}

fn u32_at(bytes: &[u8], at: usize) -> usize {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize
}

/// What is at the snapshot's path now: the bytes of the file, or of the symlink itself.
fn file_identity(path: &Path) -> (u64, Vec<u8>) {
    let meta = fs::symlink_metadata(path).unwrap();
    let bytes = if meta.file_type().is_symlink() {
        fs::read_link(path).unwrap().into_os_string().into_encoded_bytes()
    } else {
        fs::read(path).unwrap()
    };
    (meta.ino(), bytes)
}

#[test]
fn a_truncated_corrupted_or_unsafe_snapshot_sends_lookups_to_the_socket() {
    let s = setup();
    until_served_from_snapshot(&s, "getent passwd alice", || {
        let out = s.ns.getent("passwd", &["alice"]).unwrap();
        assert_success(&out, &s.agent);
        assert_eq!(out.stdout(), ALICE_LINE);
    });
    let good = fs::read(snapshot_path(&s.agent)).unwrap();
    let alice = alice_record(&good);
    let (records, records_len) = (u32_at(&good, OFF_RECORDS_OFFSET), u32_at(&good, OFF_RECORDS_LEN));
    let flipped = |range: std::ops::Range<usize>| {
        let mut bytes = good.clone();
        bytes[range].iter_mut().for_each(|b| *b ^= 0xff);
        bytes
    };
    let mut valid_header_then_garbage = good[..128].to_vec();
    valid_header_then_garbage.extend(garbage(good.len() - 128, 0x5eed_0001));
    let variants: Vec<(&str, Vec<u8>, u32)> = vec![
        ("truncated to half", good[..good.len() / 2].to_vec(), 0o644),
        ("truncated by one byte", good[..good.len() - 1].to_vec(), 0o644),
        ("truncated inside the header", good[..40].to_vec(), 0o644),
        ("empty", Vec::new(), 0o644),
        ("alice's record tag flipped", flipped(alice..alice + 4), 0o644),
        ("alice's name length flipped", flipped(alice + 20..alice + 24), 0o644),
        ("every byte of the records area flipped", flipped(records..records + records_len), 0o644),
        ("garbage", garbage(good.len(), 0x5eed_0002), 0o644),
        ("a valid header, then garbage", valid_header_then_garbage, 0o644),
        ("an intact copy, writable by everyone", good.clone(), 0o666),
        ("an intact copy, writable by its group", good.clone(), 0o664),
    ];
    let published_before = published(&s.agent);
    for (what, bytes, mode) in &variants {
        replace_snapshot(&s.agent, bytes, *mode);
        socket_answers_alice(&s, what);
    }
    // A symlink to an intact copy: the module opens with O_NOFOLLOW and must not follow it.
    let dir = TempDir::new("snapshot").unwrap();
    let target = dir.join("elsewhere");
    fs::write(&target, &good).unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
    let staged = s.agent.run_dir().join(".snapshot.test.link");
    symlink(&target, &staged).unwrap();
    fs::rename(&staged, snapshot_path(&s.agent)).unwrap();
    socket_answers_alice(&s, "a symlink to an intact copy");
    assert_eq!(published(&s.agent), published_before, "the agent republished meanwhile: the test proved nothing");
}

/// After the snapshot was replaced by `what`: getent answers alice correctly, exits on its own
/// (no signal), through the socket (the agent counted the lookup), and the damaged file was
/// still in place after the lookup (the agent had not replaced it with a good one meanwhile).
fn socket_answers_alice(s: &Setup, what: &str) {
    let path = snapshot_path(&s.agent);
    let placed = file_identity(&path);
    let before = lookups(&s.agent);
    let out = s.ns.getent("passwd", &["alice"]).unwrap();
    assert_eq!(out.status.signal(), None, "{what}: getent was killed by a signal\n{out}");
    assert_success(&out, &s.agent);
    assert_eq!(out.stdout(), ALICE_LINE, "{what}: {out}");
    assert_eq!(lookups(&s.agent), before + 1.0, "{what}: not answered through the socket");
    assert!(file_identity(&path) == placed, "{what}: the agent replaced the file during the lookup");
}

/// Readers in threads of one long-running process, and children it forks mid-run, while the
/// agent replaces the snapshot again and again (invalidations empty it, lookups refill it):
/// every answer is complete and correct (`lanyard-nss-threads` checks every field).
#[test]
fn threads_and_forked_children_get_whole_entries_while_the_snapshot_is_replaced() {
    const THREADS: &str = "8";
    /// Per thread: only a bound in case the stop file never comes.
    const MAX_ITERATIONS: &str = "2000000";
    const FORKS: &str = "40";
    /// Rounds of invalidate-then-refill; each publishes at least twice.
    const ROUNDS: usize = 60;
    const MIN_PUBLISHED: f64 = 50.0;
    let mut s = setup();
    s.ns.set_guard(Duration::from_secs(300));
    let dir = TempDir::new("threads").unwrap();
    let (stop, ready) = (dir.join("stop"), dir.join("ready"));
    let program = OsStr::new(env!("CARGO_BIN_EXE_lanyard-nss-threads"));
    let argv = [program, OsStr::new(THREADS), OsStr::new(MAX_ITERATIONS), stop.as_os_str(), ready.as_os_str()]
        .into_iter()
        .chain([OsStr::new(FORKS)])
        .map(OsStr::to_owned)
        .collect::<Vec<_>>();

    std::thread::scope(|scope| {
        let ns = &s.ns;
        let readers = scope.spawn(move || ns.run(&argv));
        poll_until(
            "lanyard-nss-threads to start its lookups",
            Duration::from_secs(60),
            Duration::from_millis(10),
            || {
                anyhow::ensure!(!readers.is_finished(), "lanyard-nss-threads ended before it was ready");
                Ok(ready.exists().then_some(()))
            },
        )
        .unwrap();

        let published_before = published(&s.agent);
        let lookups_before = lookups(&s.agent);
        let socket = s.agent.socket();
        for round in 0..ROUNDS {
            let published_now = published(&s.agent);
            let reply = Client::call(&socket, &Request::Invalidate(Invalidation::All), Deadlines::default());
            assert!(matches!(reply, Ok(Response::Invalidated)), "{reply:?}");
            // Published before the reply: the readers now see a nearly empty snapshot.
            assert!(published(&s.agent) > published_now, "round {round}: the invalidation did not publish");
            // Refill with users the readers do not ask for, as well as what they ask for
            // themselves, and wait (bounded) for the coalesced publication.
            for i in 0..3 {
                let name = lanyard_tests::fixture::bulk_user_name(1 + (round * 3 + i) as u32 % 300);
                let reply = Client::call(&socket, &Request::UserByName(name), Deadlines::default());
                assert!(matches!(reply, Ok(Response::User(_))), "{reply:?}");
            }
            let after_invalidation = published(&s.agent);
            poll_until("the refilled snapshot", PUBLISH_LIMIT, Duration::from_millis(5), || {
                Ok((published(&s.agent) > after_invalidation).then_some(()))
            })
            .unwrap();
            // Let the readers use the full file for a moment before it is emptied again.
            std::thread::sleep(Duration::from_millis(20));
        }
        let moved = published(&s.agent) - published_before;
        assert!(!readers.is_finished(), "lanyard-nss-threads ended before the replacements did (iteration bound?)");
        fs::write(&stop, b"stop\n").unwrap();
        let out = readers.join().expect("the reader thread").expect("running lanyard-nss-threads");
        eprintln!("lanyard-nss-threads: {}snapshots published meanwhile: {moved}", out.stdout());
        assert_eq!(out.code(), Some(0), "{out}\n--- lanyardd log ---\n{}", s.agent.log());
        let text = out.stdout();
        let count = |key: &str| -> u64 {
            let value = text.split_whitespace().find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='));
            value.and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no {key}= in {out}"))
        };
        assert_eq!((count("mismatches"), count("errors"), count("fork_failures")), (0, 0, 0), "{out}");
        assert!(count("lookups") >= 1000, "too few lookups to mean anything: {out}");
        assert!(count("forks") >= 1, "no child was forked mid-run: {out}");
        assert!(moved >= MIN_PUBLISHED, "only {moved} snapshots published during the run");
        // Some answers came from the snapshot, not only from the socket: fewer requests reached
        // the agent than the program made (its own, and the refills above, included).
        let reached = lookups(&s.agent) - lookups_before;
        assert!(reached < count("lookups") as f64, "every lookup went to the agent ({reached}): {out}");
    });
}
