//! The snapshot: a read-only file of users, groups and each user's group list that the agent
//! publishes next to its socket and the NSS module maps and answers from, without a socket
//! round trip, without threads and without allocating.
//!
//! Why it exists: `getpwnam`, `getgrgid` and `initgroups` run inside every program (`ls -l`
//! asks once per file owner), and a connect/write/read to the agent costs tens of
//! microseconds. A mapped, pre-indexed file answers in well under one.
//!
//! Who does what:
//! - The agent ([`SnapshotBuilder`]) writes a complete new file to a temporary name in the
//!   socket's directory, renames it to [`SNAPSHOT_FILE_NAME`], then sets the old file's
//!   superseded word ([`SUPERSEDED_OFFSET`], via `pwrite` on the fd it kept). It never changes
//!   any other byte of a published file and never truncates one (a reader's mapping would
//!   fault), so the only bytes a reader sees change are that word's.
//! - The NSS module ([`Snapshot`]) maps the file read-only, [`Snapshot::parse`]s it once, and
//!   per lookup first calls [`is_superseded`] (one volatile load, no syscall): when set it
//!   remaps the current file. [`Answer::Fresh`] and [`Answer::Absent`] are answered from the
//!   file; [`Answer::Stale`] only when the agent cannot be reached; [`Answer::Unknown`] means
//!   ask the agent.
//!
//! The byte layout and the hash are in [`format`](mod@format). Nothing secret is stored: `Passwd` carries
//! no password, and the file is world-readable by design (it holds what `getent` shows anyone).

mod builder;
pub mod format;
mod reader;
#[cfg(test)]
mod tests;

pub use builder::SnapshotBuilder;
pub use format::{MAX_FILE_LEN, MAX_GIDS, MAX_MEMBERS, MAX_STRING_LEN};
pub use reader::{GidList, GroupRecord, Members, Snapshot, UserRecord};

/// File name inside the socket's directory (/run/lanyard/snapshot).
pub const SNAPSHOT_FILE_NAME: &str = "snapshot";

/// Byte offset of the 8-byte "superseded" word in the header: the agent sets it to 1 in the OLD
/// file (through its fd, pwrite) after renaming a new file into place; readers check it with
/// one volatile load per lookup to notice a new generation without a syscall. 8-byte aligned
/// within the file (and so within a page-aligned mapping).
pub const SUPERSEDED_OFFSET: usize = format::OFF_SUPERSEDED;

/// Whether the agent has marked these bytes superseded (any nonzero byte in the word); false if
/// `bytes` is too short to hold the word.
///
/// The word is read as eight single bytes in one volatile load: the agent writes it from
/// another process, so the compiler must not assume it unchanged between two lookups, and a
/// byte array has no alignment requirement, so this is sound for any slice. A torn read cannot
/// matter: the word only ever goes from zero to nonzero.
pub fn is_superseded(bytes: &[u8]) -> bool {
    let Some(word) = bytes.get(SUPERSEDED_OFFSET..SUPERSEDED_OFFSET + 8) else {
        return false;
    };
    let ptr = word.as_ptr().cast::<[u8; 8]>();
    // SAFETY: `word` is exactly 8 readable bytes (checked by `get` above), `[u8; 8]` has
    // alignment 1, and every bit pattern is a valid `[u8; 8]`.
    let value = unsafe { std::ptr::read_volatile(ptr) };
    value != [0; 8]
}

/// What a lookup in the snapshot says. The module maps it onto its answer: Fresh → SUCCESS,
/// Absent → NOTFOUND, Stale → ask the agent, and use it only if the agent cannot be reached,
/// Unknown → ask the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer<T> {
    /// Present and its expiry is after `now`.
    Fresh(T),
    /// Present but expired: the module uses it only when the agent cannot be reached.
    Stale(T),
    /// Not present, and the snapshot is complete (and the completeness is fresh) for that kind:
    /// no such entry.
    Absent,
    /// Not present and not known complete, or the file is inconsistent around this record (a
    /// damaged record, a NUL inside a string, a user whose group list the agent did not know).
    Unknown,
}

impl<T> Answer<T> {
    /// The record, fresh or stale.
    pub fn record(self) -> Option<T> {
        match self {
            Answer::Fresh(t) | Answer::Stale(t) => Some(t),
            Answer::Absent | Answer::Unknown => None,
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Answer<U> {
        match self {
            Answer::Fresh(t) => Answer::Fresh(f(t)),
            Answer::Stale(t) => Answer::Stale(f(t)),
            Answer::Absent => Answer::Absent,
            Answer::Unknown => Answer::Unknown,
        }
    }
}

/// Why a file is not a snapshot this reader can use. Every variant means the same to the
/// module: do not use the file, ask the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    /// Shorter than the header.
    TooShort,
    /// Not a snapshot file.
    BadMagic,
    /// A layout version this reader does not know.
    Version(u32),
    /// Larger than [`MAX_FILE_LEN`].
    TooLarge(usize),
    /// The header's total length differs from the mapped length (truncated or being written).
    Length { declared: u64, actual: usize },
    /// A table lies outside the file or is malformed.
    BadSection(&'static str),
}

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapshotError::TooShort => write!(f, "snapshot shorter than its header"),
            SnapshotError::BadMagic => write!(f, "not a snapshot file"),
            SnapshotError::Version(v) => write!(f, "snapshot version {v}, expected {}", format::VERSION),
            SnapshotError::TooLarge(len) => write!(f, "snapshot of {len} bytes exceeds {MAX_FILE_LEN}"),
            SnapshotError::Length { declared, actual } => {
                write!(f, "snapshot declares {declared} bytes but has {actual}")
            }
            SnapshotError::BadSection(what) => write!(f, "snapshot table {what} out of bounds"),
        }
    }
}

impl std::error::Error for SnapshotError {}
