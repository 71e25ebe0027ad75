//! The byte layout shared by [`super::SnapshotBuilder`] (the agent writes it) and
//! [`super::Snapshot`] (the NSS module reads it). Everything that both sides must agree on lives
//! here, so a change to the layout is a change to this file and to [`VERSION`].
//!
//! All integers are little-endian and fixed-width, read from unaligned bytes (the reader never
//! casts the mapping to a struct). Offsets are absolute from the start of the file and fit in a
//! u32 because the file is at most [`MAX_FILE_LEN`].
//!
//! ```text
//! header (HEADER_LEN = 144 bytes)
//!   0  magic               [u8; 8]  b"LNYDSNAP"
//!   8  version             u32      VERSION; anything else is refused
//!  12  flags               u32      FLAG_USERS_COMPLETE | FLAG_GROUPS_COMPLETE; other bits ignored
//!  16  generation          u64      increases with every file the agent publishes
//!  24  total length        u64      must equal the mapped length (catches truncated files)
//!  32  superseded          u64      0 while current; set nonzero in the old file after a rename
//!  40  users complete until  u64    meaningful only with FLAG_USERS_COMPLETE
//!  48  groups complete until u64    meaningful only with FLAG_GROUPS_COMPLETE
//!  56  records offset      u32      } the area every bucket points into
//!  60  records length      u32      }
//!  64  user count          u32      informational (records in the area)
//!  68  group count         u32      informational
//!  72  index: users by name   offset u32, bucket count u32, max probes u32
//!  84  index: users by uid    (same)
//!  96  index: groups by name  (same)
//! 108  index: groups by gid   (same)
//! 120  index: group lists by user name (same)
//! 132  reserved            [u8; 12] zero
//!
//! user record                          group record
//!   tag      u32  TAG_USER               tag      u32  TAG_GROUP
//!   expires  u64                         expires  u64
//!   uid      u32                         gid      u32
//!   gid      u32                         name     str
//!   name     str                         count    u32 members
//!   gecos    str                         block    u32 length of the member block
//!   home     str                         offsets  count × u32 (each member's start in block)
//!   shell    str                         block    the members, each followed by a NUL
//!   gids     u32 count (GIDS_UNKNOWN = not known), then count × u32
//!
//! group list record (initgroups for a name with no user record here: a user looked up only
//! by `getgrouplist`, or a local user named in directory groups)
//!   tag      u32  TAG_GROUP_LIST
//!   expires  u64
//!   name     str
//!   gids     u32 count, then count × u32
//!
//! str = u32 length + that many bytes (no NUL, no terminator). The member block is already in
//! the shape `gr_mem` points into: the module copies it in one piece and adds the offsets to
//! where it landed, instead of walking 5,000 strings one by one.
//!
//! index = bucket count × u32 (absolute record offset, 0 = empty; the header occupies offset 0,
//!         so no record can start there)
//! ```

/// Identifies a Lanyard snapshot (and not some other file mapped by mistake).
pub const MAGIC: [u8; 8] = *b"LNYDSNAP";

/// Bumped for any incompatible change; a reader refuses every other version (the module then
/// asks the agent over the socket, which is always correct, only slower).
pub const VERSION: u32 = 3;

/// Size of the fixed header; the records area starts at or after it.
pub const HEADER_LEN: usize = 144;

/// Header field offsets (see the module documentation).
pub const OFF_MAGIC: usize = 0;
pub const OFF_VERSION: usize = 8;
pub const OFF_FLAGS: usize = 12;
pub const OFF_GENERATION: usize = 16;
pub const OFF_TOTAL_LEN: usize = 24;
pub const OFF_SUPERSEDED: usize = 32;
pub const OFF_USERS_COMPLETE_UNTIL: usize = 40;
pub const OFF_GROUPS_COMPLETE_UNTIL: usize = 48;
pub const OFF_RECORDS_OFFSET: usize = 56;
pub const OFF_RECORDS_LEN: usize = 60;
pub const OFF_USER_COUNT: usize = 64;
pub const OFF_GROUP_COUNT: usize = 68;
/// Five index descriptors of [`INDEX_DESCRIPTOR_LEN`] bytes each, in [`IndexKind`] order.
pub const OFF_INDEXES: usize = 72;
pub const INDEX_DESCRIPTOR_LEN: usize = 12;

/// The snapshot lists every user of the directory: a name or uid not in it does not exist
/// (until the "users complete until" time).
pub const FLAG_USERS_COMPLETE: u32 = 1;
/// The same for groups.
pub const FLAG_GROUPS_COMPLETE: u32 = 2;

/// Record tags: a bucket that points at the wrong kind of record (corruption) is caught before
/// its bytes are read as fields.
pub const TAG_USER: u32 = u32::from_le_bytes(*b"USER");
pub const TAG_GROUP: u32 = u32::from_le_bytes(*b"GRUP");
pub const TAG_GROUP_LIST: u32 = u32::from_le_bytes(*b"GLST");

/// The gid count of a user whose group list the agent did not know: `groups_of` answers
/// Unknown and the module asks the agent.
pub const GIDS_UNKNOWN: u32 = u32::MAX;

/// Largest file either side accepts. Bounds every offset to a u32 and keeps a hostile file from
/// making the reader walk gigabytes; a directory with a million users is far below it.
pub const MAX_FILE_LEN: usize = 1 << 30;
/// Largest string (name, gecos, home, shell, member). PATH_MAX is 4096; gecos is free text but
/// has no business being longer than this.
pub const MAX_STRING_LEN: usize = 64 * 1024;
/// Most members in one group. `getgrnam` copies them all into the caller's buffer, and the
/// frame limit on the socket allows a few hundred thousand; groups beyond this are not stored
/// (the module asks the agent).
pub const MAX_MEMBERS: usize = 1 << 20;
/// Most supplementary gids of one user: Linux's NGROUPS_MAX.
pub const MAX_GIDS: usize = 65_536;

/// The five hash indexes, in header order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    UserByName = 0,
    UserByUid = 1,
    GroupByName = 2,
    GroupByGid = 3,
    GroupListByName = 4,
}

impl IndexKind {
    pub const ALL: [IndexKind; 5] = [
        IndexKind::UserByName,
        IndexKind::UserByUid,
        IndexKind::GroupByName,
        IndexKind::GroupByGid,
        IndexKind::GroupListByName,
    ];

    /// For error messages.
    pub const fn name(self) -> &'static str {
        match self {
            IndexKind::UserByName => "users by name",
            IndexKind::UserByUid => "users by uid",
            IndexKind::GroupByName => "groups by name",
            IndexKind::GroupByGid => "groups by gid",
            IndexKind::GroupListByName => "group lists by name",
        }
    }

    /// Where this index's descriptor sits in the header.
    pub const fn descriptor_offset(self) -> usize {
        OFF_INDEXES + self as usize * INDEX_DESCRIPTOR_LEN
    }
}

/// FNV-1a 64 of the key bytes (offset basis 0xcbf29ce484222325, prime 0x100000001b3), the
/// upper half folded into the lower half. Names are hashed as their bytes, uids and gids as
/// their 4 little-endian bytes. Fixed forever for a given [`VERSION`]: builder and reader must
/// agree bit for bit. Not keyed: the file is written by root from directory data, and a
/// crafted set of colliding names costs probes bounded by the index's recorded maximum, not a
/// wrong answer.
pub const fn hash(key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < key.len() {
        h ^= key[i] as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    // FNV's low bits mix poorly (they depend only on the inputs' low bits), and the bucket is
    // taken from the low bits: fold the well-mixed high half in.
    h ^ (h >> 32)
}

/// The hash of a uid or gid key.
pub const fn hash_id(id: u32) -> u64 {
    hash(&id.to_le_bytes())
}

/// Buckets for `entries` keys: a power of two, at most half full, so probe sequences stay short
/// (about 1.5 probes on average for a hit) and an insert always finds an empty bucket.
pub fn bucket_count(entries: usize) -> usize {
    entries.saturating_mul(2).max(1).next_power_of_two()
}

/// Reads a little-endian u32 at `at`, or `None` past the end. Never panics.
pub fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let end = at.checked_add(4)?;
    let b: [u8; 4] = bytes.get(at..end)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

/// Reads a little-endian u64 at `at`, or `None` past the end. Never panics.
pub fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let end = at.checked_add(8)?;
    let b: [u8; 8] = bytes.get(at..end)?.try_into().ok()?;
    Some(u64::from_le_bytes(b))
}
