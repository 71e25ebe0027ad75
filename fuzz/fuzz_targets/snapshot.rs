//! The mapped snapshot file: any bytes parse to an error or a snapshot whose every lookup
//! answers without panicking and never with a record for another key. Structured inputs also
//! check the round trip: what the builder was given is exactly what the reader answers, and
//! the same file with bytes flipped still never answers for the wrong key.
#![no_main]

use std::collections::HashMap;

use arbitrary::Arbitrary;
use lanyard_proto::snapshot::{Answer, Snapshot, SnapshotBuilder, is_superseded};
use lanyard_proto::{Group, GroupRecord, Passwd, UserRecord};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Input {
    Raw { bytes: Vec<u8>, names: Vec<Vec<u8>>, ids: Vec<u32>, now: u64 },
    Built(Built),
}

#[derive(Debug, Arbitrary)]
struct Built {
    generation: u64,
    users: Vec<User>,
    groups: Vec<GroupIn>,
    users_complete: Option<u64>,
    groups_complete: Option<u64>,
    now: u64,
    /// Extra names and ids to ask about (most absent).
    probes: Vec<(String, u32)>,
    /// (position, xor mask) damage applied after the round trip.
    flips: Vec<(u32, u8)>,
}

#[derive(Debug, Arbitrary)]
struct User {
    passwd: (String, u32, u32, String, String, String),
    groups: Option<Vec<u32>>,
    expires: u64,
}

#[derive(Debug, Arbitrary)]
struct GroupIn {
    name: String,
    gid: u32,
    members: Vec<String>,
    expires: u64,
}

fuzz_target!(|input: Input| match input {
    Input::Raw { bytes, names, ids, now } => {
        let _ = is_superseded(&bytes);
        if let Ok(snap) = Snapshot::parse(&bytes) {
            lookup_all(&snap, names.iter().map(Vec::as_slice), &ids, now);
        }
    }
    Input::Built(built) => round_trip(built),
});

/// Every lookup kind for every key; checks only what holds for any file.
fn lookup_all<'k>(snap: &Snapshot<'_>, names: impl Iterator<Item = &'k [u8]>, ids: &[u32], now: u64) {
    let _ = snap.is_superseded();
    for name in names {
        if let Some(r) = snap.user_by_name(name, now).record() {
            assert_eq!(r.name, name);
        }
        if let Some(r) = snap.group_by_name(name, now).record() {
            assert_eq!(r.name, name);
            assert_eq!(r.members().count(), r.member_count());
            assert!(r.members().map(<[u8]>::len).sum::<usize>() <= r.member_bytes());
        }
        if let Some(list) = snap.groups_of(name, now).record() {
            assert_eq!(list.iter().count(), list.len());
        }
    }
    for &id in ids {
        if let Some(r) = snap.user_by_uid(id, now).record() {
            assert_eq!(r.uid, id);
        }
        if let Some(r) = snap.group_by_gid(id, now).record() {
            assert_eq!(r.gid, id);
            assert_eq!(r.members().count(), r.member_count());
        }
    }
}

fn has_nul(strings: &[&str]) -> bool {
    strings.iter().any(|s| s.contains('\0'))
}

/// What a present record must be answered as: Unknown when it cannot go into a C string.
fn expect<T>(nul: bool, expires: u64, now: u64, value: T) -> Answer<T> {
    match (nul, expires > now) {
        (true, _) => Answer::Unknown,
        (false, true) => Answer::Fresh(value),
        (false, false) => Answer::Stale(value),
    }
}

type UserFields<'a> = (&'a [u8], u32, u32, &'a [u8], &'a [u8], &'a [u8]);

fn got_user(a: Answer<UserRecord<'_>>) -> Answer<UserFields<'_>> {
    a.map(|r| (r.name, r.uid, r.gid, r.gecos, r.home, r.shell))
}

fn got_group(a: Answer<GroupRecord<'_>>) -> Answer<(&[u8], u32, Vec<&[u8]>)> {
    a.map(|r| (r.name, r.gid, r.members().collect()))
}

fn round_trip(built: Built) {
    let now = built.now;
    let mut b = SnapshotBuilder::new(built.generation);
    let users: Vec<(Passwd, Option<Vec<u32>>, u64)> = built
        .users
        .into_iter()
        .map(|u| {
            let (name, uid, gid, gecos, home, shell) = u.passwd;
            (Passwd { name, uid, gid, gecos, home, shell }, u.groups, u.expires)
        })
        .collect();
    let groups: Vec<(Group, u64)> =
        built.groups.into_iter().map(|g| (Group { name: g.name, gid: g.gid, members: g.members }, g.expires)).collect();
    for (p, gids, expires) in &users {
        b.add_user(p, gids.as_deref(), *expires);
    }
    for (g, expires) in &groups {
        b.add_group(g, *expires);
    }
    if let Some(until) = built.users_complete {
        b.set_complete_users(until);
    }
    if let Some(until) = built.groups_complete {
        b.set_complete_groups(until);
    }
    let dropped = b.dropped();
    let mut bytes = b.finish();
    let snap = Snapshot::parse(&bytes).expect("a built snapshot parses");
    assert_eq!(snap.generation(), built.generation);
    assert!(!is_superseded(&bytes));
    // An entry over a size limit (only with a large -max_len) is not stored: the model below
    // does not follow that, so such inputs only get the any-file checks.
    if dropped > 0 {
        let names: Vec<&[u8]> = users.iter().map(|(p, _, _)| p.name.as_bytes()).collect();
        let ids: Vec<u32> = users.iter().map(|(p, _, _)| p.uid).collect();
        lookup_all(&snap, names.into_iter(), &ids, now);
        return;
    }

    // The model: the first user (group) of each name is stored; the first stored one of each
    // id answers for it.
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    let mut by_uid: HashMap<u32, usize> = HashMap::new();
    for (i, (p, _, _)) in users.iter().enumerate() {
        if !by_name.contains_key(p.name.as_str()) {
            by_name.insert(&p.name, i);
            by_uid.entry(p.uid).or_insert(i);
        }
    }
    let mut group_by_name: HashMap<&str, usize> = HashMap::new();
    let mut by_gid: HashMap<u32, usize> = HashMap::new();
    for (i, (g, _)) in groups.iter().enumerate() {
        if !group_by_name.contains_key(g.name.as_str()) {
            group_by_name.insert(&g.name, i);
            by_gid.entry(g.gid).or_insert(i);
        }
    }
    let user_answer = |i: usize| {
        let (p, _, expires) = &users[i];
        let nul = has_nul(&[&p.name, &p.gecos, &p.home, &p.shell]);
        expect(
            nul,
            *expires,
            now,
            (p.name.as_bytes(), p.uid, p.gid, p.gecos.as_bytes(), p.home.as_bytes(), p.shell.as_bytes()),
        )
    };
    let group_answer = |i: usize| {
        let (g, expires) = &groups[i];
        let mut strings = vec![g.name.as_str()];
        strings.extend(g.members.iter().map(String::as_str));
        let members: Vec<&[u8]> = g.members.iter().map(String::as_bytes).collect();
        expect(has_nul(&strings), *expires, now, (g.name.as_bytes(), g.gid, members))
    };

    for (&name, &i) in &by_name {
        assert_eq!(got_user(snap.user_by_name(name.as_bytes(), now)), user_answer(i));
        let (p, gids, expires) = &users[i];
        let want = match gids {
            Some(gids) if !has_nul(&[&p.name, &p.gecos, &p.home, &p.shell]) => {
                expect(false, *expires, now, gids.clone())
            }
            _ => Answer::Unknown,
        };
        assert_eq!(snap.groups_of(name.as_bytes(), now).map(|l| l.iter().collect::<Vec<_>>()), want);
    }
    for (&uid, &i) in &by_uid {
        assert_eq!(got_user(snap.user_by_uid(uid, now)), user_answer(i));
    }
    for (&name, &i) in &group_by_name {
        assert_eq!(got_group(snap.group_by_name(name.as_bytes(), now)), group_answer(i));
    }
    for (&gid, &i) in &by_gid {
        assert_eq!(got_group(snap.group_by_gid(gid, now)), group_answer(i));
    }
    // Keys never added: Absent exactly when that kind is complete and fresh.
    let complete = |until: Option<u64>| until.is_some_and(|u| u > now);
    for (name, id) in &built.probes {
        let absent = |complete: bool| if complete { "absent" } else { "unknown" };
        let kind = |a: Answer<()>| match a {
            Answer::Absent => "absent",
            Answer::Unknown => "unknown",
            _ => "present",
        };
        if !by_name.contains_key(name.as_str()) {
            let want = absent(complete(built.users_complete));
            assert_eq!(kind(snap.user_by_name(name.as_bytes(), now).map(|_| ())), want);
            assert_eq!(kind(snap.groups_of(name.as_bytes(), now).map(|_| ())), want);
        }
        if !by_uid.contains_key(id) {
            assert_eq!(kind(snap.user_by_uid(*id, now).map(|_| ())), absent(complete(built.users_complete)));
        }
        if !group_by_name.contains_key(name.as_str()) {
            let want = absent(complete(built.groups_complete));
            assert_eq!(kind(snap.group_by_name(name.as_bytes(), now).map(|_| ())), want);
        }
        if !by_gid.contains_key(id) {
            assert_eq!(kind(snap.group_by_gid(*id, now).map(|_| ())), absent(complete(built.groups_complete)));
        }
    }

    // Damage: whatever still parses answers every key for that key only.
    if built.flips.is_empty() {
        return;
    }
    for (at, mask) in &built.flips {
        let len = bytes.len();
        if let Some(b) = bytes.get_mut(*at as usize % len) {
            *b ^= mask;
        }
    }
    if let Ok(snap) = Snapshot::parse(&bytes) {
        let names: Vec<&[u8]> = users
            .iter()
            .map(|(p, _, _)| p.name.as_bytes())
            .chain(groups.iter().map(|(g, _)| g.name.as_bytes()))
            .chain(built.probes.iter().map(|(n, _)| n.as_bytes()))
            .collect();
        let ids: Vec<u32> = users
            .iter()
            .map(|(p, _, _)| p.uid)
            .chain(groups.iter().map(|(g, _)| g.gid))
            .chain(built.probes.iter().map(|(_, id)| *id))
            .collect();
        lookup_all(&snap, names.into_iter(), &ids, now);
    }
}
