//! Writing a snapshot: the agent collects users and groups, then [`SnapshotBuilder::finish`]
//! lays out the records and the four hash indexes in one buffer it can write to a temporary
//! file and rename into place.

use std::collections::HashSet;

use super::format::{
    FLAG_GROUPS_COMPLETE, FLAG_USERS_COMPLETE, GIDS_UNKNOWN, HEADER_LEN, IndexKind, MAGIC, MAX_FILE_LEN, MAX_GIDS,
    MAX_MEMBERS, MAX_STRING_LEN, OFF_FLAGS, OFF_GENERATION, OFF_GROUP_COUNT, OFF_GROUPS_COMPLETE_UNTIL, OFF_MAGIC,
    OFF_RECORDS_LEN, OFF_RECORDS_OFFSET, OFF_TOTAL_LEN, OFF_USER_COUNT, OFF_USERS_COMPLETE_UNTIL, OFF_VERSION,
    TAG_GROUP, TAG_GROUP_LIST, TAG_USER, VERSION, bucket_count, hash, hash_id,
};
use crate::{Group, Passwd};

/// Collects entries for one snapshot file.
///
/// Duplicates: the first entry added wins, as in `/etc/passwd` where the first matching line
/// answers. A user (group) whose name was already added is ignored entirely; one whose uid
/// (gid) was already taken by another name is stored and found by its name, but a lookup by id
/// answers the first. Names are compared as bytes: `Alice` and `alice` are different users.
///
/// Limits: an entry the reader would refuse (a string over [`super::MAX_STRING_LEN`] bytes,
/// more than [`super::MAX_MEMBERS`] members or [`super::MAX_GIDS`] gids, or one that would
/// push the file past [`super::MAX_FILE_LEN`]) is not stored, and the snapshot then no longer
/// claims to be complete for that kind, so the module asks the agent instead of answering "no
/// such user". [`SnapshotBuilder::dropped`] counts them for the agent's log.
#[derive(Debug)]
pub struct SnapshotBuilder {
    generation: u64,
    users_complete_until: Option<u64>,
    groups_complete_until: Option<u64>,
    /// Record bytes; a record at `i` lives at absolute offset `HEADER_LEN + i`.
    records: Vec<u8>,
    user_names: HashSet<String>,
    uids: HashSet<u32>,
    group_names: HashSet<String>,
    gids: HashSet<u32>,
    /// (hash, absolute record offset) per index, in [`IndexKind`] order.
    entries: [Vec<(u64, u32)>; 5],
    list_names: HashSet<String>,
    users_dropped: bool,
    groups_dropped: bool,
    dropped: usize,
}

impl SnapshotBuilder {
    /// `generation`: increases with every file the agent publishes.
    pub fn new(generation: u64) -> Self {
        SnapshotBuilder {
            generation,
            users_complete_until: None,
            groups_complete_until: None,
            records: Vec::new(),
            user_names: HashSet::new(),
            uids: HashSet::new(),
            group_names: HashSet::new(),
            gids: HashSet::new(),
            entries: [Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new()],
            list_names: HashSet::new(),
            users_dropped: false,
            groups_dropped: false,
            dropped: 0,
        }
    }

    /// The snapshot holds every user of the directory (fresh until `until`): a name or uid
    /// absent from it is known not to exist. Set only from a complete listing.
    pub fn set_complete_users(&mut self, until: u64) {
        self.users_complete_until = Some(until);
    }

    /// The snapshot holds every group of the directory (fresh until `until`). Set only from a
    /// complete listing.
    pub fn set_complete_groups(&mut self, until: u64) {
        self.groups_complete_until = Some(until);
    }

    /// `expires`: a time on the clock the reader passes in (the agent uses CLOCK_BOOTTIME in
    /// ms; the format does not care); it also dates `groups`. `groups`: the user's
    /// supplementary gids (initgroups) if known, stored exactly as given (the module hands
    /// them to `initgroups`, which adds the primary gid itself).
    pub fn add_user(&mut self, user: &Passwd, groups: Option<&[u32]>, expires: u64) {
        if self.user_names.contains(&user.name) {
            return;
        }
        let strings = [&user.name, &user.gecos, &user.home, &user.shell];
        let gids = groups.unwrap_or(&[]);
        let len = 4 + 8 + 4 + 4 + strings.iter().map(|s| 4 + s.len()).sum::<usize>() + 4 + 4 * gids.len();
        if strings.iter().any(|s| s.len() > MAX_STRING_LEN) || gids.len() > MAX_GIDS || !self.fits(len, 1, 0) {
            self.users_dropped = true;
            self.dropped += 1;
            return;
        }
        let offset = self.next_offset();
        put_u32(&mut self.records, TAG_USER);
        put_u64(&mut self.records, expires);
        put_u32(&mut self.records, user.uid);
        put_u32(&mut self.records, user.gid);
        for s in strings {
            put_str(&mut self.records, s.as_bytes());
        }
        match groups {
            // Fits in a u32: checked against MAX_GIDS above.
            Some(gids) => put_u32(&mut self.records, gids.len() as u32),
            None => put_u32(&mut self.records, GIDS_UNKNOWN),
        }
        for &gid in gids {
            put_u32(&mut self.records, gid);
        }
        self.user_names.insert(user.name.clone());
        self.entries[IndexKind::UserByName as usize].push((hash(user.name.as_bytes()), offset));
        if self.uids.insert(user.uid) {
            self.entries[IndexKind::UserByUid as usize].push((hash_id(user.uid), offset));
        }
    }

    /// `expires`: as for [`SnapshotBuilder::add_user`].
    pub fn add_group(&mut self, group: &Group, expires: u64) {
        if self.group_names.contains(&group.name) {
            return;
        }
        let block_len = group.members.iter().map(|m| m.len() + 1).sum::<usize>();
        let len = 4 + 8 + 4 + 4 + group.name.len() + 4 + 4 + 4 * group.members.len() + block_len;
        // A NUL inside a member would split it in the block: such a group cannot be stored
        // (the agent is asked instead, and cannot hand it to glibc either).
        if group.name.len() > MAX_STRING_LEN
            || group.members.len() > MAX_MEMBERS
            || group.members.iter().any(|m| m.len() > MAX_STRING_LEN || m.contains('\0'))
            || u32::try_from(block_len).is_err()
            || !self.fits(len, 0, 1)
        {
            self.groups_dropped = true;
            self.dropped += 1;
            return;
        }
        let offset = self.next_offset();
        put_u32(&mut self.records, TAG_GROUP);
        put_u64(&mut self.records, expires);
        put_u32(&mut self.records, group.gid);
        put_str(&mut self.records, group.name.as_bytes());
        // Fit in a u32: checked against MAX_MEMBERS and above.
        put_u32(&mut self.records, group.members.len() as u32);
        put_u32(&mut self.records, block_len as u32);
        let mut start = 0u32;
        for m in &group.members {
            put_u32(&mut self.records, start);
            start += m.len() as u32 + 1;
        }
        for m in &group.members {
            self.records.extend_from_slice(m.as_bytes());
            self.records.push(0);
        }
        self.group_names.insert(group.name.clone());
        self.entries[IndexKind::GroupByName as usize].push((hash(group.name.as_bytes()), offset));
        if self.gids.insert(group.gid) {
            self.entries[IndexKind::GroupByGid as usize].push((hash_id(group.gid), offset));
        }
    }

    /// `name`'s supplementary gids (initgroups) where no user record of that name is added:
    /// a name looked up only through `getgrouplist`, or a local user in directory groups.
    /// Looked up by [`super::Snapshot::groups_of`] before the user records. A second list for
    /// the same name is ignored; one over [`MAX_GIDS`] is dropped.
    pub fn add_group_list(&mut self, name: &str, gids: &[u32], expires: u64) {
        if self.list_names.contains(name) {
            return;
        }
        let len = 4 + 8 + 4 + name.len() + 4 + 4 * gids.len();
        if name.len() > MAX_STRING_LEN || gids.len() > MAX_GIDS || !self.fits_list(len) {
            self.dropped += 1;
            return;
        }
        let offset = self.next_offset();
        put_u32(&mut self.records, TAG_GROUP_LIST);
        put_u64(&mut self.records, expires);
        put_str(&mut self.records, name.as_bytes());
        // Fits in a u32: checked against MAX_GIDS above.
        put_u32(&mut self.records, gids.len() as u32);
        for gid in gids {
            put_u32(&mut self.records, *gid);
        }
        self.list_names.insert(name.to_owned());
        self.entries[IndexKind::GroupListByName as usize].push((hash(name.as_bytes()), offset));
    }

    /// Entries not stored because they exceed a limit (see the type's documentation).
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// The file's bytes, ready to be written to a temporary file and renamed into place.
    pub fn finish(self) -> Vec<u8> {
        let records_len = self.records.len();
        let indexes: Vec<(Vec<u32>, u32)> = self.entries.iter().map(|e| build_index(e)).collect();
        let total = HEADER_LEN + records_len + indexes.iter().map(|(b, _)| 4 * b.len()).sum::<usize>();
        let mut out = Vec::with_capacity(total);
        out.resize(HEADER_LEN, 0);
        out.extend_from_slice(&self.records);

        let mut flags = 0;
        let mut users_until = 0;
        let mut groups_until = 0;
        if let (Some(until), false) = (self.users_complete_until, self.users_dropped) {
            flags |= FLAG_USERS_COMPLETE;
            users_until = until;
        }
        if let (Some(until), false) = (self.groups_complete_until, self.groups_dropped) {
            flags |= FLAG_GROUPS_COMPLETE;
            groups_until = until;
        }
        let mut header = [0u8; HEADER_LEN];
        set(&mut header, OFF_MAGIC, &MAGIC);
        set(&mut header, OFF_VERSION, &VERSION.to_le_bytes());
        set(&mut header, OFF_FLAGS, &flags.to_le_bytes());
        set(&mut header, OFF_GENERATION, &self.generation.to_le_bytes());
        set(&mut header, OFF_TOTAL_LEN, &(total as u64).to_le_bytes());
        set(&mut header, OFF_USERS_COMPLETE_UNTIL, &users_until.to_le_bytes());
        set(&mut header, OFF_GROUPS_COMPLETE_UNTIL, &groups_until.to_le_bytes());
        // Every length below fits in a u32: `fits` kept the whole file under MAX_FILE_LEN.
        set(&mut header, OFF_RECORDS_OFFSET, &(HEADER_LEN as u32).to_le_bytes());
        set(&mut header, OFF_RECORDS_LEN, &(records_len as u32).to_le_bytes());
        set(&mut header, OFF_USER_COUNT, &(self.user_names.len() as u32).to_le_bytes());
        set(&mut header, OFF_GROUP_COUNT, &(self.group_names.len() as u32).to_le_bytes());
        for (kind, (buckets, max_probe)) in IndexKind::ALL.iter().zip(&indexes) {
            let at = kind.descriptor_offset();
            set(&mut header, at, &(out.len() as u32).to_le_bytes());
            set(&mut header, at + 4, &(buckets.len() as u32).to_le_bytes());
            set(&mut header, at + 8, &max_probe.to_le_bytes());
            for b in buckets {
                out.extend_from_slice(&b.to_le_bytes());
            }
        }
        if let Some(h) = out.get_mut(..HEADER_LEN) {
            h.copy_from_slice(&header);
        }
        out
    }

    fn next_offset(&self) -> u32 {
        // Below MAX_FILE_LEN (< 2^32): `fits` was checked before every record.
        (HEADER_LEN + self.records.len()) as u32
    }

    /// Whether a record of `len` bytes, plus `users`/`groups` more index entries, keeps the
    /// finished file within MAX_FILE_LEN (every index is sized for its worst case).
    fn fits(&self, len: usize, users: usize, groups: usize) -> bool {
        self.fits_with(len, users, groups, 0)
    }

    fn fits_list(&self, len: usize) -> bool {
        self.fits_with(len, 0, 0, 1)
    }

    fn fits_with(&self, len: usize, users: usize, groups: usize, lists: usize) -> bool {
        let u = self.entries[IndexKind::UserByName as usize].len() + users;
        let g = self.entries[IndexKind::GroupByName as usize].len() + groups;
        let l = self.entries[IndexKind::GroupListByName as usize].len() + lists;
        let index_bytes = 4 * (2 * bucket_count(u) + 2 * bucket_count(g) + bucket_count(l));
        HEADER_LEN
            .checked_add(self.records.len())
            .and_then(|t| t.checked_add(len))
            .and_then(|t| t.checked_add(index_bytes))
            .is_some_and(|t| t <= MAX_FILE_LEN)
    }
}

/// Open addressing with linear probing: each key goes to the first empty bucket at or after
/// `hash & mask`, in insertion order (so the first of two equal keys is found first). Returns
/// the buckets and the longest probe sequence any key needs, which bounds every lookup.
fn build_index(entries: &[(u64, u32)]) -> (Vec<u32>, u32) {
    let count = bucket_count(entries.len());
    let mask = count - 1;
    let mut buckets = vec![0u32; count];
    let mut max_probe = 0u32;
    for &(h, offset) in entries {
        let mut slot = (h as usize) & mask;
        let mut probes = 1u32;
        // Terminates: the table is at most half full.
        while let Some(b) = buckets.get_mut(slot) {
            if *b == 0 {
                *b = offset;
                break;
            }
            slot = (slot + 1) & mask;
            probes += 1;
        }
        max_probe = max_probe.max(probes);
    }
    (buckets, max_probe)
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Length (checked against MAX_STRING_LEN by the caller) then bytes.
fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    put_u32(out, s.len() as u32);
    out.extend_from_slice(s);
}

fn set(header: &mut [u8; HEADER_LEN], at: usize, bytes: &[u8]) {
    if let Some(dst) = header.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}
