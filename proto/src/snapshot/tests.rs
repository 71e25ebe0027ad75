use super::format::{self, HEADER_LEN, IndexKind, OFF_TOTAL_LEN};
use super::*;
use crate::{Group, Passwd};

fn user(name: &str, uid: u32) -> Passwd {
    Passwd {
        name: name.into(),
        uid,
        gid: uid + 1,
        gecos: format!("{name} Ärger"),
        home: format!("/home/{name}"),
        shell: "/bin/bash".into(),
    }
}

fn group(name: &str, gid: u32, members: usize) -> Group {
    Group { name: name.into(), gid, members: (0..members).map(|i| format!("member{i}")).collect() }
}

fn assert_user(record: UserRecord<'_>, expected: &Passwd) {
    assert_eq!(record.name, expected.name.as_bytes());
    assert_eq!(record.uid, expected.uid);
    assert_eq!(record.gid, expected.gid);
    assert_eq!(record.gecos, expected.gecos.as_bytes());
    assert_eq!(record.home, expected.home.as_bytes());
    assert_eq!(record.shell, expected.shell.as_bytes());
}

fn assert_group(record: GroupRecord<'_>, expected: &Group) {
    assert_eq!(record.name, expected.name.as_bytes());
    assert_eq!(record.gid, expected.gid);
    assert_eq!(record.member_count(), expected.members.len());
    assert_eq!(record.members().len(), expected.members.len());
    assert_eq!(record.member_bytes(), expected.members.iter().map(String::len).sum::<usize>());
    let members: Vec<&[u8]> = record.members().collect();
    let expected: Vec<&[u8]> = expected.members.iter().map(String::as_bytes).collect();
    assert_eq!(members, expected);
}

const NOW: u64 = 1_000;
const LATER: u64 = 2_000;

/// A small snapshot with a bit of everything, for the damage tests.
fn small() -> Vec<u8> {
    let mut b = SnapshotBuilder::new(7);
    b.add_user(&user("alice", 1001), Some(&[10, 20]), LATER);
    b.add_user(&user("bob", 1002), None, LATER);
    b.add_user(&user("carol", 1003), Some(&[]), LATER);
    b.add_group(&group("staff", 10, 2), LATER);
    b.add_group(&group("empty", 11, 0), LATER);
    b.set_complete_users(LATER);
    b.set_complete_groups(LATER);
    b.finish()
}

#[test]
fn every_lookup_returns_what_went_in() {
    let users: Vec<Passwd> = (0..300).map(|i| user(&format!("user{i}"), 10_000 + i)).collect();
    let gid_lists: Vec<Option<Vec<u32>>> =
        (0..300u32).map(|i| if i % 3 == 0 { None } else { Some((0..i % 40).map(|g| 20_000 + g).collect()) }).collect();
    let groups = [group("none", 500, 0), group("one", 501, 1), group("big", 502, 5_000)];
    let mut b = SnapshotBuilder::new(42);
    for (u, gids) in users.iter().zip(&gid_lists) {
        b.add_user(u, gids.as_deref(), LATER);
    }
    for g in &groups {
        b.add_group(g, LATER);
    }
    assert_eq!(b.dropped(), 0);
    let bytes = b.finish();
    let snap = Snapshot::parse(&bytes).unwrap();
    assert_eq!(snap.generation(), 42);
    assert_eq!((snap.user_count(), snap.group_count()), (300, 3));
    for (u, gids) in users.iter().zip(&gid_lists) {
        let Answer::Fresh(r) = snap.user_by_name(u.name.as_bytes(), NOW) else { panic!("{}", u.name) };
        assert_user(r, u);
        let Answer::Fresh(r) = snap.user_by_uid(u.uid, NOW) else { panic!("{}", u.uid) };
        assert_user(r, u);
        match (snap.groups_of(u.name.as_bytes(), NOW), gids) {
            (Answer::Fresh(list), Some(gids)) => {
                assert_eq!(list.len(), gids.len());
                assert_eq!(list.iter().collect::<Vec<_>>(), *gids);
            }
            (Answer::Unknown, None) => {}
            (other, _) => panic!("{}: {other:?}", u.name),
        }
    }
    for g in &groups {
        let Answer::Fresh(r) = snap.group_by_name(g.name.as_bytes(), NOW) else { panic!("{}", g.name) };
        assert_group(r, g);
        let Answer::Fresh(r) = snap.group_by_gid(g.gid, NOW) else { panic!("{}", g.gid) };
        assert_group(r, g);
    }
    // Not complete: anything missing is Unknown, never Absent.
    assert_eq!(snap.user_by_name(b"nobody", NOW), Answer::Unknown);
    assert_eq!(snap.user_by_uid(1, NOW), Answer::Unknown);
    assert_eq!(snap.group_by_name(b"nogroup", NOW), Answer::Unknown);
    assert_eq!(snap.group_by_gid(1, NOW), Answer::Unknown);
    assert_eq!(snap.groups_of(b"nobody", NOW), Answer::Unknown);
}

#[test]
fn duplicates_first_wins() {
    let mut b = SnapshotBuilder::new(1);
    let first = user("alice", 1000);
    let same_uid = user("alicia", 1000);
    let mut same_name = user("alice", 2000);
    same_name.shell = "/bin/zsh".into();
    b.add_user(&first, Some(&[1]), LATER);
    b.add_user(&same_uid, Some(&[2]), LATER);
    b.add_user(&same_name, Some(&[3]), LATER);
    b.add_group(&group("staff", 10, 1), LATER);
    b.add_group(&group("staff", 11, 2), LATER);
    b.add_group(&group("other", 10, 3), LATER);
    b.set_complete_users(LATER);
    b.set_complete_groups(LATER);
    let bytes = b.finish();
    let snap = Snapshot::parse(&bytes).unwrap();
    assert_user(snap.user_by_name(b"alice", NOW).record().unwrap(), &first);
    assert_user(snap.user_by_uid(1000, NOW).record().unwrap(), &first);
    // The second holder of uid 1000 is still found by name.
    assert_user(snap.user_by_name(b"alicia", NOW).record().unwrap(), &same_uid);
    // The ignored duplicate name left no trace, not even its uid.
    assert_eq!(snap.user_by_uid(2000, NOW), Answer::Absent);
    assert_eq!(snap.groups_of(b"alice", NOW).record().unwrap().iter().collect::<Vec<_>>(), [1]);
    assert_group(snap.group_by_name(b"staff", NOW).record().unwrap(), &group("staff", 10, 1));
    assert_group(snap.group_by_gid(10, NOW).record().unwrap(), &group("staff", 10, 1));
    assert_group(snap.group_by_name(b"other", NOW).record().unwrap(), &group("other", 10, 3));
    assert_eq!(snap.group_by_gid(11, NOW), Answer::Absent);
}

#[test]
fn names_differing_in_case_are_distinct() {
    let mut b = SnapshotBuilder::new(1);
    b.add_user(&user("Alice", 1), None, LATER);
    b.add_user(&user("alice", 2), None, LATER);
    b.add_group(&group("Staff", 1, 0), LATER);
    b.add_group(&group("staff", 2, 0), LATER);
    b.set_complete_users(LATER);
    b.set_complete_groups(LATER);
    let bytes = b.finish();
    let snap = Snapshot::parse(&bytes).unwrap();
    assert_eq!(snap.user_by_name(b"Alice", NOW).record().unwrap().uid, 1);
    assert_eq!(snap.user_by_name(b"alice", NOW).record().unwrap().uid, 2);
    assert_eq!(snap.user_by_name(b"ALICE", NOW), Answer::Absent);
    assert_eq!(snap.group_by_name(b"Staff", NOW).record().unwrap().gid, 1);
    assert_eq!(snap.group_by_name(b"staff", NOW).record().unwrap().gid, 2);
    assert_eq!(snap.group_by_name(b"STAFF", NOW), Answer::Absent);
}

#[test]
fn fresh_stale_absent_unknown() {
    let build = |users: Option<u64>, groups: Option<u64>| {
        let mut b = SnapshotBuilder::new(1);
        b.add_user(&user("fresh", 1), Some(&[5]), LATER);
        b.add_user(&user("stale", 2), Some(&[6]), NOW);
        b.add_user(&user("nogroups", 3), None, LATER);
        b.add_group(&group("fresh", 1, 1), LATER);
        b.add_group(&group("stale", 2, 1), NOW - 1);
        if let Some(until) = users {
            b.set_complete_users(until);
        }
        if let Some(until) = groups {
            b.set_complete_groups(until);
        }
        b.finish()
    };
    // Presence does not depend on completeness; expiry is strict (expires == now is stale).
    for (users, groups) in [(None, None), (Some(LATER), Some(LATER)), (Some(NOW), Some(NOW))] {
        let bytes = build(users, groups);
        let snap = Snapshot::parse(&bytes).unwrap();
        assert!(matches!(snap.user_by_name(b"fresh", NOW), Answer::Fresh(r) if r.uid == 1));
        assert!(matches!(snap.user_by_name(b"stale", NOW), Answer::Stale(r) if r.uid == 2));
        assert!(matches!(snap.user_by_uid(1, NOW), Answer::Fresh(r) if r.uid == 1));
        assert!(matches!(snap.user_by_uid(2, NOW), Answer::Stale(r) if r.uid == 2));
        assert!(matches!(snap.group_by_name(b"fresh", NOW), Answer::Fresh(r) if r.gid == 1));
        assert!(matches!(snap.group_by_gid(2, NOW), Answer::Stale(r) if r.gid == 2));
        assert!(matches!(snap.groups_of(b"fresh", NOW), Answer::Fresh(l) if l.iter().eq([5])));
        assert!(matches!(snap.groups_of(b"stale", NOW), Answer::Stale(l) if l.iter().eq([6])));
        // Present, list unknown: ask the agent even when complete.
        assert_eq!(snap.groups_of(b"nogroups", NOW), Answer::Unknown);
    }
    let missing = |bytes: &[u8]| {
        let snap = Snapshot::parse(bytes).unwrap();
        [
            snap.user_by_name(b"ghost", NOW).map(|_| ()),
            snap.user_by_uid(99, NOW).map(|_| ()),
            snap.groups_of(b"ghost", NOW).map(|_| ()),
            snap.group_by_name(b"ghost", NOW).map(|_| ()),
            snap.group_by_gid(99, NOW).map(|_| ()),
        ]
    };
    use Answer::{Absent, Unknown};
    assert_eq!(missing(&build(None, None)), [Unknown, Unknown, Unknown, Unknown, Unknown]);
    assert_eq!(missing(&build(Some(LATER), None)), [Absent, Absent, Absent, Unknown, Unknown]);
    assert_eq!(missing(&build(None, Some(LATER))), [Unknown, Unknown, Unknown, Absent, Absent]);
    assert_eq!(missing(&build(Some(LATER), Some(LATER))), [Absent; 5]);
    // Completeness that has expired (until == now counts as expired) says nothing.
    assert_eq!(missing(&build(Some(NOW), Some(NOW - 1))), [Unknown; 5]);
    let snap_bytes = build(Some(LATER), Some(NOW));
    let snap = Snapshot::parse(&snap_bytes).unwrap();
    assert_eq!((snap.users_complete_until(), snap.groups_complete_until()), (Some(LATER), Some(NOW)));
}

#[test]
fn nul_inside_a_string_is_unknown() {
    let mut b = SnapshotBuilder::new(1);
    let mut bad = user("bad", 1);
    bad.gecos = "a\0b".into();
    b.add_user(&bad, Some(&[1]), LATER);
    b.add_user(&user("nul\0name", 2), None, LATER);
    let mut g = group("g", 1, 2);
    g.members[1] = "x\0".into();
    b.add_group(&g, LATER);
    b.set_complete_users(LATER);
    b.set_complete_groups(LATER);
    let bytes = b.finish();
    let snap = Snapshot::parse(&bytes).unwrap();
    assert_eq!(snap.user_by_name(b"bad", NOW), Answer::Unknown);
    assert_eq!(snap.user_by_uid(1, NOW), Answer::Unknown);
    assert_eq!(snap.groups_of(b"bad", NOW), Answer::Unknown);
    assert_eq!(snap.user_by_name(b"nul\0name", NOW), Answer::Unknown);
    assert_eq!(snap.user_by_uid(2, NOW), Answer::Unknown);
    assert_eq!(snap.group_by_name(b"g", NOW), Answer::Unknown);
    assert_eq!(snap.group_by_gid(1, NOW), Answer::Unknown);
}

#[test]
fn oversized_entries_are_dropped_and_void_completeness() {
    let mut b = SnapshotBuilder::new(1);
    let mut huge = user("huge", 1);
    huge.gecos = "x".repeat(MAX_STRING_LEN + 1);
    b.add_user(&huge, None, LATER);
    b.add_user(&user("ok", 2), None, LATER);
    let too_many: Vec<u32> = (0..=MAX_GIDS as u32).collect();
    b.add_user(&user("joiner", 3), Some(&too_many), LATER);
    b.add_group(&group("fine", 1, 1), LATER);
    b.set_complete_users(LATER);
    b.set_complete_groups(LATER);
    assert_eq!(b.dropped(), 2);
    let bytes = b.finish();
    let snap = Snapshot::parse(&bytes).unwrap();
    // A dropped user must not be reported as nonexistent.
    assert_eq!(snap.users_complete_until(), None);
    assert_eq!(snap.user_by_name(b"huge", NOW), Answer::Unknown);
    assert_eq!(snap.user_by_name(b"joiner", NOW), Answer::Unknown);
    assert!(matches!(snap.user_by_name(b"ok", NOW), Answer::Fresh(_)));
    // Groups were all stored: still complete.
    assert_eq!(snap.groups_complete_until(), Some(LATER));
    assert_eq!(snap.group_by_name(b"missing", NOW), Answer::Absent);
}

#[test]
fn empty_snapshot() {
    let bytes = SnapshotBuilder::new(0).finish();
    let snap = Snapshot::parse(&bytes).unwrap();
    assert_eq!(snap.user_by_name(b"", NOW), Answer::Unknown);
    assert_eq!(snap.user_by_uid(0, NOW), Answer::Unknown);
    let mut b = SnapshotBuilder::new(0);
    b.set_complete_users(LATER);
    b.set_complete_groups(LATER);
    let bytes = b.finish();
    let snap = Snapshot::parse(&bytes).unwrap();
    assert_eq!(snap.user_by_name(b"root", NOW), Answer::Absent);
    assert_eq!(snap.group_by_gid(0, NOW), Answer::Absent);
}

#[test]
fn header_errors() {
    let good = small();
    assert_eq!(Snapshot::parse(&[]).unwrap_err(), SnapshotError::TooShort);
    let mut bad = good.clone();
    bad[0] ^= 1;
    assert_eq!(Snapshot::parse(&bad).unwrap_err(), SnapshotError::BadMagic);
    let mut bad = good.clone();
    bad[format::OFF_VERSION] = 1;
    assert_eq!(Snapshot::parse(&bad).unwrap_err(), SnapshotError::Version(1), "the layout before member blocks");
    let mut bad = good.clone();
    bad.push(0);
    assert!(matches!(Snapshot::parse(&bad).unwrap_err(), SnapshotError::Length { .. }));
    // A bucket array claiming more than the file holds.
    let mut bad = good.clone();
    let at = IndexKind::GroupByGid.descriptor_offset() + 4;
    bad[at..at + 4].copy_from_slice(&(1u32 << 31).to_le_bytes());
    assert!(matches!(Snapshot::parse(&bad).unwrap_err(), SnapshotError::BadSection(_)));
    // Not a power of two.
    let mut bad = good;
    bad[at..at + 4].copy_from_slice(&3u32.to_le_bytes());
    assert!(matches!(Snapshot::parse(&bad).unwrap_err(), SnapshotError::BadSection(_)));
}

/// Every lookup kind over the small file's keys and a few absent ones; panics if an answer
/// carries a record for a key other than the one asked.
fn lookup_everything(snap: &Snapshot<'_>) {
    for name in [&b"alice"[..], b"bob", b"carol", b"staff", b"empty", b"", b"ghost"] {
        if let Some(r) = snap.user_by_name(name, NOW).record() {
            assert_eq!(r.name, name);
        }
        if let Some(r) = snap.group_by_name(name, NOW).record() {
            assert_eq!(r.name, name);
            assert_eq!(r.members().count(), r.member_count());
        }
        if let Some(list) = snap.groups_of(name, NOW).record() {
            assert_eq!(list.iter().count(), list.len());
        }
    }
    for id in [0, 10, 11, 12, 1001, 1002, 1003, 1004, u32::MAX] {
        if let Some(r) = snap.user_by_uid(id, NOW).record() {
            assert_eq!(r.uid, id);
        }
        if let Some(r) = snap.group_by_gid(id, NOW).record() {
            assert_eq!(r.gid, id);
            assert_eq!(r.members().count(), r.member_count());
        }
    }
}

#[test]
fn every_truncation_is_refused_or_unknown() {
    let good = small();
    for len in 0..good.len() {
        let prefix = &good[..len];
        assert!(Snapshot::parse(prefix).is_err(), "prefix of {len} bytes parsed");
        // The same prefix with its length field patched to match gets past the length check,
        // so the table and record checks are exercised too.
        let mut patched = prefix.to_vec();
        if let Some(field) = patched.get_mut(OFF_TOTAL_LEN..OFF_TOTAL_LEN + 8) {
            field.copy_from_slice(&(len as u64).to_le_bytes());
        }
        if let Ok(snap) = Snapshot::parse(&patched) {
            lookup_everything(&snap);
        }
    }
}

/// xorshift64: a fixed-seed generator so failures reproduce, without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_damage_never_panics_or_answers_another_key() {
    let good = small();
    let mut rng = Rng(0x5eed_1a2b_3c4d_5e6f);
    let mut parsed = 0;
    for round in 0..20_000 {
        let mut bytes = good.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bytes.len());
            // Mostly single-bit flips; sometimes a whole byte set to 0 or 0xff, which hits
            // lengths and offsets hard.
            bytes[at] = match rng.below(4) {
                0 => 0,
                1 => 0xff,
                _ => bytes[at] ^ (1 << rng.below(8)),
            };
        }
        // Keep the header's length honest half the time, so damage reaches the tables.
        if round % 2 == 0 {
            let len = bytes.len() as u64;
            bytes[OFF_TOTAL_LEN..OFF_TOTAL_LEN + 8].copy_from_slice(&len.to_le_bytes());
        }
        if let Ok(snap) = Snapshot::parse(&bytes) {
            parsed += 1;
            lookup_everything(&snap);
        }
    }
    assert!(parsed > 1_000, "too few damaged files parsed ({parsed}) to exercise the lookups");
}

#[test]
fn hostile_index_is_bounded() {
    // Every bucket of every index points at alice's record, and each claims the whole table
    // as its probe length: a lookup for another key visits each bucket once, then gives up.
    let mut bytes = small();
    let records = format::read_u32(&bytes, format::OFF_RECORDS_OFFSET).unwrap();
    for kind in IndexKind::ALL {
        let at = kind.descriptor_offset();
        let offset = format::read_u32(&bytes, at).unwrap() as usize;
        let count = format::read_u32(&bytes, at + 4).unwrap() as usize;
        bytes[at + 8..at + 12].copy_from_slice(&(count as u32).to_le_bytes());
        for b in 0..count {
            bytes[offset + 4 * b..offset + 4 * b + 4].copy_from_slice(&records.to_le_bytes());
        }
    }
    let snap = Snapshot::parse(&bytes).unwrap();
    assert!(matches!(snap.user_by_name(b"alice", NOW), Answer::Fresh(r) if r.name == b"alice"));
    // Not found after a full scan: the builder's own probe bound would have ended it sooner.
    assert_eq!(snap.user_by_name(b"ghost", NOW), Answer::Absent);
    // A user record reached through a group index is caught by its tag.
    assert_eq!(snap.group_by_name(b"staff", NOW), Answer::Unknown);
    lookup_everything(&snap);
}

#[test]
fn superseded_word() {
    let mut bytes = small();
    assert_eq!(SUPERSEDED_OFFSET % 8, 0);
    assert!(!is_superseded(&bytes));
    assert!(!Snapshot::parse(&bytes).unwrap().is_superseded());
    bytes[SUPERSEDED_OFFSET..SUPERSEDED_OFFSET + 8].copy_from_slice(&1u64.to_le_bytes());
    assert!(is_superseded(&bytes));
    // The word is not covered by any check: a superseded file still parses and answers.
    let snap = Snapshot::parse(&bytes).unwrap();
    assert!(snap.is_superseded());
    assert!(matches!(snap.user_by_name(b"alice", NOW), Answer::Fresh(_)));
    bytes[SUPERSEDED_OFFSET..SUPERSEDED_OFFSET + 8].copy_from_slice(&0u64.to_le_bytes());
    assert!(!is_superseded(&bytes));
    assert!(!is_superseded(&bytes[..SUPERSEDED_OFFSET + 7]));
    assert!(!is_superseded(&[]));
}

#[test]
fn hash_is_pinned() {
    // FNV-1a 64 test vectors, folded: changing the hash is a format change (bump VERSION).
    let fold = |h: u64| h ^ (h >> 32);
    assert_eq!(format::hash(b""), fold(0xcbf2_9ce4_8422_2325));
    assert_eq!(format::hash(b"a"), fold(0xaf63_dc4c_8601_ec8c));
    assert_eq!(format::hash(b"foobar"), fold(0x8594_4171_f739_67e8));
    assert_eq!(format::hash_id(0x6463_6261), format::hash(b"abcd"));
    assert_eq!(HEADER_LEN, IndexKind::GroupListByName.descriptor_offset() + format::INDEX_DESCRIPTOR_LEN + 12);
}

/// 10,000 users named like a real directory's, ids sequential: the probe bound the builder
/// records stays small, so lookups stay O(1).
fn ten_thousand() -> Vec<u8> {
    let mut b = SnapshotBuilder::new(1);
    for i in 0..10_000u32 {
        b.add_user(&user(&format!("user{i:05}"), 100_000 + i), Some(&[100, 200, 300]), LATER);
        b.add_group(&group(&format!("group{i:05}"), 100_000 + i, 3), LATER);
    }
    b.finish()
}

#[test]
fn probe_sequences_stay_short() {
    let bytes = ten_thousand();
    for kind in IndexKind::ALL {
        let max_probe = format::read_u32(&bytes, kind.descriptor_offset() + 8).unwrap();
        assert!(max_probe <= 24, "{}: {max_probe} probes", kind.name());
    }
}

/// `cargo test -p lanyard-proto --release -- --ignored --nocapture lookup_speed`
#[test]
#[ignore = "timing; run in release mode"]
fn lookup_speed() {
    let bytes = ten_thousand();
    let snap = Snapshot::parse(&bytes).unwrap();
    let names: Vec<String> = (0..10_000).map(|i| format!("user{i:05}")).collect();
    let groups: Vec<String> = (0..10_000).map(|i| format!("group{i:05}")).collect();
    let rounds = 20;
    let time = |what: &str, f: &mut dyn FnMut(usize) -> bool| {
        let start = std::time::Instant::now();
        let mut hits = 0usize;
        for _ in 0..rounds {
            for i in 0..10_000 {
                hits += usize::from(std::hint::black_box(f(i)));
            }
        }
        let ns = start.elapsed().as_nanos() as f64 / (rounds * 10_000) as f64;
        assert_eq!(hits, rounds * 10_000);
        println!("{what}: {ns:.0} ns per lookup");
    };
    time("user_by_name", &mut |i| matches!(snap.user_by_name(names[i].as_bytes(), NOW), Answer::Fresh(_)));
    time("user_by_uid", &mut |i| matches!(snap.user_by_uid(100_000 + i as u32, NOW), Answer::Fresh(_)));
    time("group_by_name", &mut |i| matches!(snap.group_by_name(groups[i].as_bytes(), NOW), Answer::Fresh(_)));
    time("group_by_gid", &mut |i| matches!(snap.group_by_gid(100_000 + i as u32, NOW), Answer::Fresh(_)));
    time("groups_of", &mut |i| matches!(snap.groups_of(names[i].as_bytes(), NOW), Answer::Fresh(_)));
    time("absent name", &mut |i| {
        matches!(snap.user_by_name(groups[i].as_bytes(), NOW), Answer::Unknown) && !is_superseded(&bytes)
    });
    time("parse", &mut |_| Snapshot::parse(&bytes).is_ok());
}

#[test]
fn group_lists_answer_initgroups_for_names_without_a_user_record_and_come_first() {
    let mut b = SnapshotBuilder::new(1);
    b.add_user(&user("alice", 1), Some(&[10]), LATER);
    b.add_user(&user("bob", 2), None, LATER);
    b.add_group_list("localuser", &[20, 21], LATER);
    b.add_group_list("bob", &[30], NOW);
    b.add_group_list("localuser", &[99], LATER);
    b.set_complete_users(LATER);
    let bytes = b.finish();
    let snap = Snapshot::parse(&bytes).unwrap();
    let gids = |answer: Answer<GidList<'_>>| answer.record().map(|l| l.iter().collect::<Vec<_>>());
    // A local user named in directory groups: no user record, a list; the first list wins.
    assert!(matches!(snap.groups_of(b"localuser", NOW), Answer::Fresh(_)));
    assert_eq!(gids(snap.groups_of(b"localuser", NOW)), Some(vec![20, 21]));
    assert_eq!(snap.user_by_name(b"localuser", NOW), Answer::Absent);
    // A list beats the user record's unknown list, with its own expiry.
    assert!(matches!(snap.groups_of(b"bob", NOW), Answer::Stale(_)));
    assert_eq!(gids(snap.groups_of(b"alice", NOW)), Some(vec![10]));
    assert_eq!(snap.groups_of(b"carol", NOW), Answer::Absent);
}

/// Found by the fuzzer: a damaged group whose member offsets repeat. Offsets must rise, so no
/// member is counted twice and `member_bytes` stays an upper bound of what the members hold.
#[test]
fn member_offsets_that_repeat_or_fall_are_unknown() {
    let mut b = SnapshotBuilder::new(1);
    b.add_group(&Group { name: "g".into(), gid: 1, members: vec!["abcdef".into(), "x".into()] }, LATER);
    let good = b.finish();
    let find = |bytes: &[u8], needle: &[u8]| bytes.windows(needle.len()).position(|w| w == needle).unwrap();
    // count 2, block length 9, offsets [0, 7]: make them [0, 0], then [7, 0].
    let offsets = find(&good, &[2, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0]) + 8;
    for tampered in [[0u8, 0, 0, 0, 0, 0, 0, 0], [7, 0, 0, 0, 0, 0, 0, 0]] {
        let mut bad = good.clone();
        bad[offsets..offsets + 8].copy_from_slice(&tampered);
        let snap = Snapshot::parse(&bad).unwrap();
        assert_eq!(snap.group_by_name(b"g", NOW), Answer::Unknown, "{tampered:?}");
    }
    let snap = Snapshot::parse(&good).unwrap();
    let g = snap.group_by_name(b"g", NOW).record().unwrap();
    assert_eq!(g.members().collect::<Vec<_>>(), [&b"abcdef"[..], b"x"]);
    assert_eq!(g.member_bytes(), 7);
}
