//! Reading a snapshot: [`Snapshot::parse`] checks the header once per mapping, then each lookup
//! hashes the key, probes at most the index's recorded maximum of buckets, compares the stored
//! key with the asked one and validates only the record it answers with. Every offset and
//! length from the file goes through checked arithmetic and `get`, so a truncated, corrupted or
//! hostile file yields an error or [`Answer::Unknown`], never a panic or another key's record.

use super::format::{
    FLAG_GROUPS_COMPLETE, FLAG_USERS_COMPLETE, GIDS_UNKNOWN, HEADER_LEN, IndexKind, MAGIC, MAX_FILE_LEN, MAX_GIDS,
    MAX_MEMBERS, MAX_STRING_LEN, OFF_FLAGS, OFF_GENERATION, OFF_GROUP_COUNT, OFF_GROUPS_COMPLETE_UNTIL, OFF_MAGIC,
    OFF_RECORDS_LEN, OFF_RECORDS_OFFSET, OFF_TOTAL_LEN, OFF_USER_COUNT, OFF_USERS_COMPLETE_UNTIL, OFF_VERSION,
    TAG_GROUP, TAG_GROUP_LIST, TAG_USER, VERSION, hash, hash_id, read_u32, read_u64,
};
use super::{Answer, SnapshotError};

/// A parsed snapshot borrowing the mapped bytes. Cheap to keep for the life of the mapping:
/// only the header's numbers are copied out.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    bytes: &'a [u8],
    generation: u64,
    users_complete_until: Option<u64>,
    groups_complete_until: Option<u64>,
    /// Absolute offset of `records`: bucket values are absolute, record parsing is relative.
    records_start: usize,
    /// Every record lies inside this slice, so a record can never be read out of the indexes or
    /// the header.
    records: &'a [u8],
    user_count: u32,
    group_count: u32,
    indexes: [Index; 5],
}

/// One hash index as checked by `parse`: its buckets lie inside the file.
#[derive(Debug, Clone, Copy)]
struct Index {
    offset: usize,
    mask: usize,
    /// min(recorded maximum probe length, bucket count): no lookup probes more.
    probes: usize,
}

/// A user as `getpwnam`/`getpwuid` fill in `struct passwd` (the password field is always `x`
/// and is not stored). Every string is free of NUL bytes (the reader checked) and not
/// NUL-terminated: the module copies each into the caller's buffer and adds the terminator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserRecord<'a> {
    pub name: &'a [u8],
    pub uid: u32,
    pub gid: u32,
    pub gecos: &'a [u8],
    pub home: &'a [u8],
    pub shell: &'a [u8],
}

/// A group as `getgrnam`/`getgrgid` fill in `struct group`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupRecord<'a> {
    pub name: &'a [u8],
    pub gid: u32,
    members: Members<'a>,
}

impl<'a> GroupRecord<'a> {
    /// The member names (`gr_mem`), each NUL-free.
    pub fn members(&self) -> Members<'a> {
        self.members
    }

    /// How many members: the module needs it to size the `gr_mem` pointer array.
    pub fn member_count(&self) -> usize {
        self.members.offsets.len() / 4
    }

    /// The members' bytes added up (without terminators), at most: exact for a file the agent
    /// wrote; a damaged block may hold bytes no member points at. With `member_count` it bounds
    /// what `gr_mem` needs in the caller's buffer.
    pub fn member_bytes(&self) -> usize {
        self.members.block.len() - self.member_count()
    }

    /// The members as one block of NUL-terminated strings, and where each starts in it: what
    /// `gr_mem` needs, copied in one piece. Validated: every offset starts a string inside
    /// the block, and the block ends with a NUL.
    pub fn member_block(&self) -> (&'a [u8], impl ExactSizeIterator<Item = usize> + Clone + 'a) {
        (self.members.block, self.members.starts())
    }
}

/// An iterator over a group's member names. Validated when the group was looked up, so it
/// yields exactly `member_count` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Members<'a> {
    /// count × u32 LE: each member's start in `block`.
    offsets: &'a [u8],
    /// The NUL-terminated members.
    block: &'a [u8],
}

impl<'a> Members<'a> {
    fn starts(&self) -> impl ExactSizeIterator<Item = usize> + Clone + 'a {
        // chunks_exact yields 4-byte chunks only; the fallback is unreachable.
        self.offsets.chunks_exact(4).map(|c| c.try_into().map_or(0, u32::from_le_bytes) as usize)
    }
}

impl<'a> Iterator for Members<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (first, rest) = self.offsets.split_first_chunk::<4>()?;
        self.offsets = rest;
        let start = u32::from_le_bytes(*first) as usize;
        // Validated: start < block.len() and a NUL follows before the block's end.
        let tail = self.block.get(start..)?;
        let len = tail.iter().position(|&b| b == 0)?;
        tail.get(..len)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.offsets.len() / 4, Some(self.offsets.len() / 4))
    }
}

impl ExactSizeIterator for Members<'_> {}

/// The gids `initgroups` adds for a user, read from unaligned little-endian bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GidList<'a> {
    /// Exactly 4 × count bytes.
    bytes: &'a [u8],
}

impl<'a> GidList<'a> {
    pub fn len(&self) -> usize {
        self.bytes.len() / 4
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = u32> + 'a {
        // chunks_exact yields 4-byte chunks only; the fallback is unreachable.
        self.bytes.chunks_exact(4).map(|c| c.try_into().map_or(0, u32::from_le_bytes))
    }
}

/// What one probe of a bucket found.
enum Probe<T> {
    Hit(u64, T),
    /// Another key: keep probing.
    Miss,
    /// The record is damaged, of the wrong kind, or cannot be answered from the file (a NUL
    /// in a string, an unknown group list): the whole lookup answers Unknown.
    Bad,
}

/// What a whole lookup found, before completeness and expiry turn it into an [`Answer`].
enum Found<T> {
    Hit(u64, T),
    Missing,
    Bad,
}

impl<'a> Snapshot<'a> {
    /// Checks magic, version, declared total length == bytes.len(), every table's bounds.
    /// Never panics. Records are not walked here (that would cost time proportional to the
    /// file on every mapping); each lookup checks the one record it answers with.
    pub fn parse(bytes: &'a [u8]) -> Result<Snapshot<'a>, SnapshotError> {
        let field32 = |at| read_u32(bytes, at).ok_or(SnapshotError::TooShort);
        let field64 = |at| read_u64(bytes, at).ok_or(SnapshotError::TooShort);
        if bytes.len() < HEADER_LEN {
            return Err(SnapshotError::TooShort);
        }
        if bytes.get(OFF_MAGIC..OFF_MAGIC + MAGIC.len()) != Some(&MAGIC[..]) {
            return Err(SnapshotError::BadMagic);
        }
        let version = field32(OFF_VERSION)?;
        if version != VERSION {
            return Err(SnapshotError::Version(version));
        }
        if bytes.len() > MAX_FILE_LEN {
            return Err(SnapshotError::TooLarge(bytes.len()));
        }
        let declared = field64(OFF_TOTAL_LEN)?;
        if declared != bytes.len() as u64 {
            return Err(SnapshotError::Length { declared, actual: bytes.len() });
        }
        let flags = field32(OFF_FLAGS)?;
        let complete = |flag, at| -> Result<Option<u64>, SnapshotError> {
            Ok(if flags & flag != 0 { Some(field64(at)?) } else { None })
        };
        let records_start = field32(OFF_RECORDS_OFFSET)? as usize;
        let records_len = field32(OFF_RECORDS_LEN)? as usize;
        let records = section(bytes, records_start, records_len).ok_or(SnapshotError::BadSection("records"))?;
        let mut indexes = [Index { offset: 0, mask: 0, probes: 0 }; 5];
        for (kind, index) in IndexKind::ALL.iter().zip(indexes.iter_mut()) {
            let at = kind.descriptor_offset();
            let (offset, count, max_probe) = (field32(at)? as usize, field32(at + 4)? as usize, field32(at + 8)?);
            let bad = || SnapshotError::BadSection(kind.name());
            if !count.is_power_of_two() {
                return Err(bad());
            }
            section(bytes, offset, count.checked_mul(4).ok_or_else(bad)?).ok_or_else(bad)?;
            *index = Index { offset, mask: count - 1, probes: (max_probe as usize).min(count) };
        }
        Ok(Snapshot {
            bytes,
            generation: field64(OFF_GENERATION)?,
            users_complete_until: complete(FLAG_USERS_COMPLETE, OFF_USERS_COMPLETE_UNTIL)?,
            groups_complete_until: complete(FLAG_GROUPS_COMPLETE, OFF_GROUPS_COMPLETE_UNTIL)?,
            records_start,
            records,
            user_count: field32(OFF_USER_COUNT)?,
            group_count: field32(OFF_GROUP_COUNT)?,
            indexes,
        })
    }

    /// Which file this is: increases with every file the agent publishes, so the module can
    /// tell a remapped file from the one it already has.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Until when the snapshot claims to list every user (None: it does not).
    pub fn users_complete_until(&self) -> Option<u64> {
        self.users_complete_until
    }

    /// Until when the snapshot claims to list every group (None: it does not).
    pub fn groups_complete_until(&self) -> Option<u64> {
        self.groups_complete_until
    }

    /// Users and groups stored (as the header says; for diagnostics only).
    pub fn user_count(&self) -> u32 {
        self.user_count
    }

    pub fn group_count(&self) -> u32 {
        self.group_count
    }

    /// Whether the agent has since published a newer file ([`super::is_superseded`] on these
    /// bytes).
    pub fn is_superseded(&self) -> bool {
        super::is_superseded(self.bytes)
    }

    pub fn user_by_name(&self, name: &[u8], now: u64) -> Answer<UserRecord<'a>> {
        let found = self.find(IndexKind::UserByName, hash(name), |rec| match parse_user(rec) {
            Some(u) if u.record.name != name => Probe::Miss,
            Some(u) if u.clean => Probe::Hit(u.expires, u.record),
            _ => Probe::Bad,
        });
        answer(found, self.users_complete_until, now)
    }

    pub fn user_by_uid(&self, uid: u32, now: u64) -> Answer<UserRecord<'a>> {
        let found = self.find(IndexKind::UserByUid, hash_id(uid), |rec| match parse_user(rec) {
            Some(u) if u.record.uid != uid => Probe::Miss,
            Some(u) if u.clean => Probe::Hit(u.expires, u.record),
            _ => Probe::Bad,
        });
        answer(found, self.users_complete_until, now)
    }

    pub fn group_by_name(&self, name: &[u8], now: u64) -> Answer<GroupRecord<'a>> {
        let found = self.find(IndexKind::GroupByName, hash(name), |rec| match parse_group(rec) {
            Some(g) if g.record.name != name => Probe::Miss,
            Some(g) if g.clean => Probe::Hit(g.expires, g.record),
            _ => Probe::Bad,
        });
        answer(found, self.groups_complete_until, now)
    }

    pub fn group_by_gid(&self, gid: u32, now: u64) -> Answer<GroupRecord<'a>> {
        let found = self.find(IndexKind::GroupByGid, hash_id(gid), |rec| match parse_group(rec) {
            Some(g) if g.record.gid != gid => Probe::Miss,
            Some(g) if g.clean => Probe::Hit(g.expires, g.record),
            _ => Probe::Bad,
        });
        answer(found, self.groups_complete_until, now)
    }

    /// initgroups: the name's gids, from its group list record if there is one, else from its
    /// user record (dated by the user's expiry). Absent when the user is known not to exist
    /// and no list names it; Unknown when the user is present but the agent did not know the
    /// list.
    pub fn groups_of(&self, name: &[u8], now: u64) -> Answer<GidList<'a>> {
        let listed = self.find(IndexKind::GroupListByName, hash(name), |rec| match parse_group_list(rec) {
            Some((listed, _, _)) if listed != name => Probe::Miss,
            Some((_, expires, gids)) => Probe::Hit(expires, gids),
            None => Probe::Bad,
        });
        match listed {
            Found::Missing => {}
            found => return answer(found, None, now),
        }
        let found = self.find(IndexKind::UserByName, hash(name), |rec| match parse_user(rec) {
            Some(u) if u.record.name != name => Probe::Miss,
            Some(User { clean: true, expires, gids: Some(gids), .. }) => Probe::Hit(expires, gids),
            _ => Probe::Bad,
        });
        answer(found, self.users_complete_until, now)
    }

    /// Probes `kind`'s buckets from the key's home bucket, at most `probes` of them; an empty
    /// bucket ends the search (linear probing never leaves a gap inside a key's sequence).
    fn find<T>(&self, kind: IndexKind, h: u64, mut visit: impl FnMut(&'a [u8]) -> Probe<T>) -> Found<T> {
        let Some(index) = self.indexes.get(kind as usize) else { return Found::Bad };
        let mut slot = (h as usize) & index.mask;
        for _ in 0..index.probes {
            let at = slot.checked_mul(4).and_then(|o| o.checked_add(index.offset));
            let Some(offset) = at.and_then(|at| read_u32(self.bytes, at)) else {
                return Found::Bad;
            };
            if offset == 0 {
                return Found::Missing;
            }
            let Some(record) =
                (offset as usize).checked_sub(self.records_start).and_then(|rel| self.records.get(rel..))
            else {
                return Found::Bad;
            };
            match visit(record) {
                Probe::Hit(expires, value) => return Found::Hit(expires, value),
                Probe::Miss => slot = (slot + 1) & index.mask,
                Probe::Bad => return Found::Bad,
            }
        }
        Found::Missing
    }
}

/// Turns what a lookup found into the module's answer: a record is Fresh until it expires;
/// a missing key means "no such entry" only while the snapshot's completeness is fresh.
fn answer<T>(found: Found<T>, complete_until: Option<u64>, now: u64) -> Answer<T> {
    match found {
        Found::Hit(expires, value) if expires > now => Answer::Fresh(value),
        Found::Hit(_, value) => Answer::Stale(value),
        Found::Missing if complete_until.is_some_and(|until| until > now) => Answer::Absent,
        Found::Missing | Found::Bad => Answer::Unknown,
    }
}

/// `bytes[offset..offset + len]` if it lies inside the file and after the header.
fn section(bytes: &[u8], offset: usize, len: usize) -> Option<&[u8]> {
    if offset < HEADER_LEN {
        return None;
    }
    bytes.get(offset..offset.checked_add(len)?)
}

/// A user record read from the records area. `clean`: no string holds a NUL byte (one that
/// does cannot be handed to C, so the lookup answers Unknown rather than a truncated name).
struct User<'a> {
    expires: u64,
    record: UserRecord<'a>,
    /// None: the agent did not know the user's groups.
    gids: Option<GidList<'a>>,
    clean: bool,
}

/// Parses a whole user record (a few fixed fields, four strings and a length-checked gid
/// array: constant work apart from the NUL scan). None: damaged or not a user record.
fn parse_user(rec: &[u8]) -> Option<User<'_>> {
    let mut c = Cursor { bytes: rec, pos: 0 };
    if c.u32()? != TAG_USER {
        return None;
    }
    let expires = c.u64()?;
    let (uid, gid) = (c.u32()?, c.u32()?);
    let record = UserRecord { uid, gid, name: c.str()?, gecos: c.str()?, home: c.str()?, shell: c.str()? };
    let gids = match c.u32()? {
        GIDS_UNKNOWN => None,
        n if n as usize <= MAX_GIDS => Some(GidList { bytes: c.take(n as usize * 4)? }),
        _ => return None,
    };
    let clean = [record.name, record.gecos, record.home, record.shell].iter().all(|s| !s.contains(&0));
    Some(User { expires, record, gids, clean })
}

/// A group list record: its name, expiry and gids.
fn parse_group_list(rec: &[u8]) -> Option<(&[u8], u64, GidList<'_>)> {
    let mut c = Cursor { bytes: rec, pos: 0 };
    if c.u32()? != TAG_GROUP_LIST {
        return None;
    }
    let expires = c.u64()?;
    let name = c.str()?;
    let count = c.u32()? as usize;
    if count > MAX_GIDS {
        return None;
    }
    Some((name, expires, GidList { bytes: c.take(count * 4)? }))
}

struct ParsedGroup<'a> {
    expires: u64,
    record: GroupRecord<'a>,
    clean: bool,
}

/// Parses a whole group record, walking every member once to check its bounds and bytes, so
/// the [`Members`] iterator handed out can never fail halfway through a `gr_mem` copy.
fn parse_group(rec: &[u8]) -> Option<ParsedGroup<'_>> {
    let mut c = Cursor { bytes: rec, pos: 0 };
    if c.u32()? != TAG_GROUP {
        return None;
    }
    let expires = c.u64()?;
    let gid = c.u32()?;
    let name = c.str()?;
    let count = c.u32()? as usize;
    if count > MAX_MEMBERS {
        return None;
    }
    let block_len = c.u32()? as usize;
    let offsets = c.take(count.checked_mul(4)?)?;
    let block = c.take(block_len)?;
    let members = Members { offsets, block };
    // Every member starts inside the block, right after a NUL (or at its start), after the
    // one before it, and the block ends with a NUL: each start is a whole C string, none twice.
    // One compare per member, no string walk.
    let ends_with_nul = block.last().is_none_or(|&b| b == 0);
    let mut previous = None;
    let starts_ok = members.starts().all(|s| {
        let in_order = previous.is_none_or(|p| s > p);
        previous = Some(s);
        in_order && s < block.len() && (s == 0 || block[s - 1] == 0)
    });
    let shaped = (count == 0) == block.is_empty() && ends_with_nul && starts_ok;
    let clean = shaped && !name.contains(&0);
    Some(ParsedGroup { expires, record: GroupRecord { name, gid, members }, clean })
}

/// A position in a record; every read is bounds-checked and returns None past the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    fn u32(&mut self) -> Option<u32> {
        let v = read_u32(self.bytes, self.pos)?;
        self.pos += 4;
        Some(v)
    }

    fn u64(&mut self) -> Option<u64> {
        let v = read_u64(self.bytes, self.pos)?;
        self.pos += 8;
        Some(v)
    }

    /// A length-prefixed string of at most MAX_STRING_LEN bytes.
    fn str(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()? as usize;
        if len > MAX_STRING_LEN {
            return None;
        }
        self.take(len)
    }
}
