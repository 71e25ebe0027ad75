//! The persistent cache: lookup answers, enumeration listings and offline verifiers in one redb
//! file, `<cache_dir>/cache.redb`, so a restarted agent still answers while the directory is out
//! of reach. All of the agent's redb code lives in this file; the rest sees [`Store`],
//! [`StoreKey`], [`Stored`] and [`Write`].
//!
//! - Keys and values are postcard bytes: redb stays a byte map, and the layout is one number,
//!   [`SCHEMA_VERSION`], in the `meta` table. A file of another version is not migrated but
//!   moved aside and rebuilt: it is a cache.
//! - Writes come in batches, one transaction and one fsync each ([`Store::apply`]); collecting
//!   them off the request path is [`super::writer`]'s job.
//! - A file that cannot be trusted (garbage, truncated, another version) never stops the agent:
//!   it is renamed to `cache.redb.broken-<unix secs>` for whoever wants to look, with a warning,
//!   and the agent starts with an empty cache.
//! - The file holds names, ids and password verifiers: mode 0600, checked on every open.

use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io;
use std::ops::Range;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lanyard_proto::{Group, Invalidation, Passwd, Response};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, Table, TableDefinition};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use crate::offline::Verifier;

/// The file inside `cache_dir`.
pub const FILE_NAME: &str = "cache.redb";

/// Bump when a table or any stored type (`StoreKey`, `Stored`, `Response` and what it holds,
/// `Verifier`) changes shape; older files are then moved aside and rebuilt. Appending a
/// variant to an enum keeps old bytes readable and needs no bump.
pub const SCHEMA_VERSION: u64 = 1;

/// redb's page cache; its default (1 GiB) is sized for databases, not for a laptop's cache.
/// redb keeps every page it writes in this cache (up to the limit), so at 32 MiB a large
/// directory's listings sat in the agent's heap twice: once as answers in memory, once as
/// pages. The file is read only on a memory miss (after a restart, offline, past the memory
/// ttl), and those reads are `pread`s the kernel's page cache serves in microseconds: a small
/// cache costs nothing measurable. Half of it bounds the write buffer; a larger commit (a
/// 100,000-user listing) is written out before its fsync instead of held, which redb handles.
const PAGE_CACHE_BYTES: usize = 4 << 20;

/// After a failed write, how long before the next attempt to reopen the file.
const REOPEN_EVERY: Duration = Duration::from_secs(10);

/// postcard([`StoreKey`]) → postcard(`Stored<Response>`).
const ANSWERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("answers");
/// [`Listing::key`] → postcard(`Stored<Vec<Passwd>>` or `Stored<Vec<Group>>`).
const LISTINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("listings");
/// User name → postcard([`Verifier`]).
const VERIFIERS: TableDefinition<&str, &[u8]> = TableDefinition::new("verifiers");
/// `"schema_version"` → [`SCHEMA_VERSION`].
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const VERSION_KEY: &str = "schema_version";

/// What a lookup answer is stored under: the protocol's own lookups, without anything else a
/// request carries. Its postcard encoding is the key, so the variants' order is part of the
/// schema (proto only ever appends).
pub type StoreKey = lanyard_proto::Lookup;

/// A value with when it was fetched (wall-clock seconds since the Unix epoch, so it means the
/// same after a restart) and whether it was invalidated since.
///
/// Field order matters: `mark_stale` rewrites the `fetched_at`/`stale` prefix of the encoding
/// without decoding `value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored<T> {
    pub fetched_at: u64,
    pub stale: bool,
    pub value: T,
}

/// The two enumeration listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Users,
    Groups,
}

impl Listing {
    fn key(self) -> &'static str {
        match self {
            Listing::Users => "users",
            Listing::Groups => "groups",
        }
    }
}

/// What the disk cache holds, for `lanyardctl status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreSummary {
    pub answers: u64,
    pub users: u64,
    pub groups: u64,
    pub verifiers: u64,
    /// Oldest and newest `fetched_at` among the answers.
    pub oldest: Option<u64>,
    pub newest: Option<u64>,
}

/// One change, applied with others in a batch by [`Store::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Only `User`, `Group` and `GroupIds` answers are stored; anything else is skipped.
    Answer(StoreKey, Stored<Response>),
    Users(Stored<Vec<Passwd>>),
    Groups(Stored<Vec<Group>>),
    /// Forgets an answer the directory no longer gives (the user or group was deleted), so
    /// it is not served offline.
    RemoveAnswer(StoreKey),
    Verifier(String, Verifier),
    RemoveVerifier(String),
    /// Marks entries stale, keeping them for offline use: a user's `UserByName`, `UserByUid`
    /// and `GroupsOfUser` answers; a group's `GroupByName` and `GroupByGid` answers; or every
    /// answer and both listings.
    Invalidate(Invalidation),
    /// Wipes every answer, listing and verifier.
    Clear,
}

/// What went wrong with the persistent cache. None of it is fatal to the agent: it can always
/// serve from memory and the directory.
#[derive(Debug)]
pub enum StoreError {
    /// The cache directory or file could not be set up (permissions, read-only file system):
    /// run without the persistent cache and say so.
    Io { path: PathBuf, source: io::Error },
    /// redb failed: another process holds the file, the disk is full, an I/O error. For a read,
    /// treat it as a miss; for a write, the batch is lost (later batches may succeed).
    Database(redb::Error),
    /// A stored value did not decode (or a value did not encode): treat it as a miss.
    Encoding(postcard::Error),
    /// The file was unusable, and so was the fresh one made in its place: run without the
    /// persistent cache.
    Unusable { path: PathBuf, why: String },
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            StoreError::Database(e) => write!(f, "cache database: {e}"),
            StoreError::Encoding(e) => write!(f, "cache value: {e}"),
            StoreError::Unusable { path, why } => write!(f, "{}: {why}", path.display()),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io { source, .. } => Some(source),
            StoreError::Database(e) => Some(e),
            StoreError::Encoding(e) => Some(e),
            StoreError::Unusable { .. } => None,
        }
    }
}

impl From<postcard::Error> for StoreError {
    fn from(e: postcard::Error) -> StoreError {
        StoreError::Encoding(e)
    }
}

/// redb has one error type per operation; callers only need to know it was the database.
fn db_error(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Database(e.into())
}

/// Why [`open_database`] gave up: the file is bad (move it aside and start again) or the
/// trouble is elsewhere (a new file would not help).
enum OpenFailure {
    Broken(String),
    Failed(StoreError),
}

/// The persistent cache. Reads may run concurrently with each other and with one
/// [`Store::apply`]; readers see whole batches only.
pub struct Store {
    file: RwLock<File>,
    path: PathBuf,
    fresh: bool,
    commits: AtomicU64,
}

/// The open database: none after an I/O error and a failed attempt to reopen it.
struct File {
    db: Option<Database>,
    last_reopen: Option<Instant>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).field("fresh", &self.fresh).finish_non_exhaustive()
    }
}

impl Store {
    /// Opens or creates `<dir>/cache.redb` with mode 0600 (`dir` is created 0700 if missing).
    /// A file that cannot be opened, is corrupt, or has another schema version is moved aside
    /// to `cache.redb.broken-<unix secs>` with a warning naming why, and a fresh one is made
    /// ([`Store::started_fresh`] then says so).
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        make_private_dir(dir)?;
        let path = dir.join(FILE_NAME);
        let why = match open_database(&path) {
            Ok((db, fresh)) => return Ok(Store::new(db, path, fresh)),
            Err(OpenFailure::Failed(e)) => return Err(e),
            Err(OpenFailure::Broken(why)) => why,
        };
        let aside = move_aside(&path)?;
        warn!("cache file {} {why}: moved aside to {}, starting with an empty cache", path.display(), aside.display());
        match open_database(&path) {
            Ok((db, _)) => Ok(Store::new(db, path, true)),
            Err(OpenFailure::Failed(e)) => Err(e),
            Err(OpenFailure::Broken(why)) => Err(StoreError::Unusable { path, why }),
        }
    }

    fn new(db: Database, path: PathBuf, fresh: bool) -> Store {
        let file = RwLock::new(File { db: Some(db), last_reopen: None });
        Store { file, path, fresh, commits: AtomicU64::new(0) }
    }

    /// Whether this store started without data: no file, an empty one, or a broken one moved
    /// aside.
    pub fn started_fresh(&self) -> bool {
        self.fresh
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Batches committed since this store was opened (for tests and statistics).
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    pub fn answer(&self, key: &StoreKey) -> Result<Option<Stored<Response>>, StoreError> {
        let key = postcard::to_stdvec(key)?;
        self.get(ANSWERS, key.as_slice())
    }

    pub fn users(&self) -> Result<Option<Stored<Vec<Passwd>>>, StoreError> {
        self.get(LISTINGS, Listing::Users.key())
    }

    pub fn groups(&self) -> Result<Option<Stored<Vec<Group>>>, StoreError> {
        self.get(LISTINGS, Listing::Groups.key())
    }

    pub fn verifier(&self, user: &str) -> Result<Option<Verifier>, StoreError> {
        self.get(VERIFIERS, user)
    }

    /// Counts and ages for `lanyardctl status`. Reads every answer's head (not its value).
    pub fn summary(&self) -> Result<StoreSummary, StoreError> {
        let txn = self.with_db(|db| db.begin_read().map_err(db_error))?;
        let answers = txn.open_table(ANSWERS).map_err(db_error)?;
        let mut summary = StoreSummary::default();
        for entry in answers.iter().map_err(db_error)? {
            let (_, value) = entry.map_err(db_error)?;
            let (head, _) = postcard::take_from_bytes::<StoredHead>(value.value())?;
            summary.answers += 1;
            summary.oldest = Some(summary.oldest.map_or(head.fetched_at, |t: u64| t.min(head.fetched_at)));
            summary.newest = Some(summary.newest.map_or(head.fetched_at, |t: u64| t.max(head.fetched_at)));
        }
        summary.verifiers = txn.open_table(VERIFIERS).map_err(db_error)?.len().map_err(db_error)?;
        drop(txn);
        summary.users = self.users()?.map_or(0, |s| s.value.len() as u64);
        summary.groups = self.groups()?.map_or(0, |s| s.value.len() as u64);
        Ok(summary)
    }

    fn get<K: redb::Key + 'static, T: DeserializeOwned>(
        &self,
        table: TableDefinition<K, &'static [u8]>,
        key: K::SelfType<'_>,
    ) -> Result<Option<T>, StoreError> {
        let txn = self.with_db(|db| db.begin_read().map_err(db_error))?;
        let table = txn.open_table(table).map_err(db_error)?;
        let Some(bytes) = table.get(key).map_err(db_error)? else { return Ok(None) };
        Ok(Some(postcard::from_bytes(bytes.value())?))
    }

    /// Applies `batch` in one write transaction: one commit (one fsync, about a millisecond on
    /// an SSD) whatever its length, and all of it or none of it on disk after a crash. Blocks:
    /// async callers run it on a blocking thread.
    ///
    /// After a failed commit (disk full, EIO) redb refuses every later write until the file is
    /// reopened: the next batch reopens it (at most every 10 s), so writes resume
    /// once the disk has room again.
    pub fn apply(&self, batch: &[Write]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        match self.with_db(|db| write_batch(db, batch)) {
            Err(StoreError::Database(redb::Error::PreviousIo | redb::Error::DatabaseClosed)) => {
                self.reopen()?;
                self.with_db(|db| write_batch(db, batch))?;
            }
            result => result?,
        }
        self.commits.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn with_db<T>(&self, f: impl FnOnce(&Database) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let file = self.file.read().unwrap_or_else(PoisonError::into_inner);
        f(file.db.as_ref().ok_or(StoreError::Database(redb::Error::DatabaseClosed))?)
    }

    fn reopen(&self) -> Result<(), StoreError> {
        let mut file = self.file.write().unwrap_or_else(PoisonError::into_inner);
        if file.last_reopen.is_some_and(|last| last.elapsed() < REOPEN_EVERY) {
            return Err(StoreError::Database(redb::Error::PreviousIo));
        }
        file.last_reopen = Some(Instant::now());
        // Closed first: redb refuses a second handle on a file this process holds.
        file.db = None;
        match open_database(&self.path) {
            Ok((db, _)) => {
                file.db = Some(db);
                info!("cache file {} reopened after a failed write", self.path.display());
                Ok(())
            }
            Err(OpenFailure::Failed(e)) => Err(e),
            Err(OpenFailure::Broken(why)) => Err(StoreError::Unusable { path: self.path.clone(), why }),
        }
    }

    /// Writes another schema version, as a later (or earlier) agent would have.
    #[cfg(test)]
    pub(crate) fn set_schema_version(&self, version: u64) -> Result<(), StoreError> {
        self.with_db(|db| {
            let txn = db.begin_write().map_err(db_error)?;
            txn.open_table(META).map_err(db_error)?.insert(VERSION_KEY, version).map_err(db_error)?;
            txn.commit().map_err(db_error)
        })
    }
}

fn write_batch(db: &Database, batch: &[Write]) -> Result<(), StoreError> {
    let txn = db.begin_write().map_err(db_error)?;
    {
        let mut tables = Tables {
            answers: txn.open_table(ANSWERS).map_err(db_error)?,
            listings: txn.open_table(LISTINGS).map_err(db_error)?,
            verifiers: txn.open_table(VERIFIERS).map_err(db_error)?,
        };
        for write in batch {
            tables.apply(write)?;
        }
    }
    txn.commit().map_err(db_error)
}

/// The tables of one write transaction.
struct Tables<'txn> {
    answers: Table<'txn, &'static [u8], &'static [u8]>,
    listings: Table<'txn, &'static str, &'static [u8]>,
    verifiers: Table<'txn, &'static str, &'static [u8]>,
}

impl Tables<'_> {
    fn apply(&mut self, write: &Write) -> Result<(), StoreError> {
        match write {
            Write::Answer(key, stored) => {
                if !matches!(stored.value, Response::User(_) | Response::Group(_) | Response::GroupIds(_)) {
                    debug!(?key, answer = %stored.value.summary(), "not an answer the store keeps: skipped");
                    return Ok(());
                }
                let key = postcard::to_stdvec(key)?;
                let value = postcard::to_stdvec(stored)?;
                self.answers.insert(key.as_slice(), value.as_slice()).map_err(db_error)?;
            }
            Write::RemoveAnswer(key) => {
                self.answers.remove(postcard::to_stdvec(key)?.as_slice()).map_err(db_error)?;
            }
            Write::Users(stored) => self.set_listing(Listing::Users, &postcard::to_stdvec(stored)?)?,
            Write::Groups(stored) => self.set_listing(Listing::Groups, &postcard::to_stdvec(stored)?)?,
            Write::Verifier(user, verifier) => {
                let value = postcard::to_stdvec(verifier)?;
                self.verifiers.insert(user.as_str(), value.as_slice()).map_err(db_error)?;
            }
            Write::RemoveVerifier(user) => {
                self.verifiers.remove(user.as_str()).map_err(db_error)?;
            }
            Write::Invalidate(what) => self.invalidate(what)?,
            Write::Clear => {
                self.answers.retain(|_, _| false).map_err(db_error)?;
                self.listings.retain(|_, _| false).map_err(db_error)?;
                self.verifiers.retain(|_, _| false).map_err(db_error)?;
            }
        }
        Ok(())
    }

    fn set_listing(&mut self, listing: Listing, value: &[u8]) -> Result<(), StoreError> {
        self.listings.insert(listing.key(), value).map_err(db_error)?;
        Ok(())
    }

    fn invalidate(&mut self, what: &Invalidation) -> Result<(), StoreError> {
        let keys = match what {
            Invalidation::User(name) => {
                let by_uid =
                    self.keys_of_kind(&StoreKey::UserByUid(0), |r| matches!(r, Response::User(p) if p.name == *name))?;
                let named = [StoreKey::UserByName(name.clone()), StoreKey::GroupsOfUser(name.clone())];
                encode_all(&named)?.into_iter().chain(by_uid).collect()
            }
            Invalidation::Group(name) => {
                let by_gid = self
                    .keys_of_kind(&StoreKey::GroupByGid(0), |r| matches!(r, Response::Group(g) if g.name == *name))?;
                encode_all(&[StoreKey::GroupByName(name.clone())])?.into_iter().chain(by_gid).collect()
            }
            Invalidation::All => {
                for listing in [Listing::Users, Listing::Groups] {
                    let marked = match self.listings.get(listing.key()).map_err(db_error)? {
                        Some(bytes) => mark_stale(bytes.value())?,
                        None => continue,
                    };
                    self.set_listing(listing, &marked)?;
                }
                let mut keys = Vec::new();
                for entry in self.answers.iter().map_err(db_error)? {
                    keys.push(entry.map_err(db_error)?.0.value().to_vec());
                }
                keys
            }
        };
        for key in keys {
            let marked = match self.answers.get(key.as_slice()).map_err(db_error)? {
                Some(bytes) => mark_stale(bytes.value()),
                None => continue,
            };
            match marked {
                Ok(marked) => {
                    self.answers.insert(key.as_slice(), marked.as_slice()).map_err(db_error)?;
                }
                // Unreadable, so useless: it would fail every invalidation after this one too.
                Err(e) => {
                    debug!("dropping an undecodable cached answer: {e}");
                    self.answers.remove(key.as_slice()).map_err(db_error)?;
                }
            }
        }
        Ok(())
    }

    /// The keys of every answer of `sample`'s kind (`UserByUid`, ...) whose answer satisfies
    /// `pick`. postcard starts an enum with its variant index, one byte below 128, so one kind's
    /// keys are one contiguous range of the table.
    fn keys_of_kind(&self, sample: &StoreKey, pick: impl Fn(&Response) -> bool) -> Result<Vec<Vec<u8>>, StoreError> {
        let kind = kind_range(sample)?;
        let mut keys = Vec::new();
        for entry in self.answers.range(kind.start.as_slice()..kind.end.as_slice()).map_err(db_error)? {
            let (key, value) = entry.map_err(db_error)?;
            // An undecodable answer cannot be picked; invalidating all drops it.
            if postcard::from_bytes::<Stored<Response>>(value.value()).is_ok_and(|stored| pick(&stored.value)) {
                keys.push(key.value().to_vec());
            }
        }
        Ok(keys)
    }
}

fn encode_all(keys: &[StoreKey]) -> Result<Vec<Vec<u8>>, StoreError> {
    Ok(keys.iter().map(postcard::to_stdvec).collect::<Result<_, _>>()?)
}

/// The encoded keys of `sample`'s kind span `[tag]..[tag + 1]`.
fn kind_range(sample: &StoreKey) -> Result<Range<Vec<u8>>, StoreError> {
    let encoded = postcard::to_stdvec(sample)?;
    let tag = encoded.first().copied().unwrap_or_default();
    Ok(vec![tag]..vec![tag.saturating_add(1)])
}

/// The leading fields of every [`Stored`] encoding.
#[derive(Serialize, Deserialize)]
struct StoredHead {
    fetched_at: u64,
    stale: bool,
}

/// The encoding of a `Stored<T>` with `stale` set, for any `T`: a 1 MB user listing is not
/// decoded to flip one byte.
fn mark_stale(encoded: &[u8]) -> Result<Vec<u8>, postcard::Error> {
    let (head, value) = postcard::take_from_bytes::<StoredHead>(encoded)?;
    let mut marked = postcard::to_stdvec(&StoredHead { stale: true, ..head })?;
    marked.extend_from_slice(value);
    Ok(marked)
}

/// Opens (or creates) the file and checks its schema. Returns whether it was empty.
fn open_database(path: &Path) -> Result<(Database, bool), OpenFailure> {
    let created = make_private_file(path).map_err(OpenFailure::Failed)?;
    // The integrity check reads the whole file (milliseconds for a cache) and turns a damaged
    // file into an error where a plain open might trust it, or panic: redb's debug builds
    // assert on states only corruption produces.
    let opened = panic::catch_unwind(AssertUnwindSafe(|| {
        Database::builder().set_cache_size(PAGE_CACHE_BYTES).set_check_integrity_on_open(true).create(path)
    }));
    let db = match opened {
        Ok(Ok(db)) => db,
        Ok(Err(e)) => return Err(classify(e.into())),
        Err(_) => return Err(OpenFailure::Broken("made redb panic while opening it".into())),
    };
    let empty = prepare_tables(&db)?;
    Ok((db, created || empty))
}

/// Creates the tables of a new file, or checks an existing file's schema version. Returns
/// whether the file was empty.
fn prepare_tables(db: &Database) -> Result<bool, OpenFailure> {
    let txn = db.begin_write().map_err(classify_any)?;
    let empty = txn.list_tables().map_err(classify_any)?.next().is_none();
    {
        let mut meta = txn.open_table(META).map_err(classify_any)?;
        let version = meta.get(VERSION_KEY).map_err(classify_any)?.map(|v| v.value());
        match version {
            Some(SCHEMA_VERSION) => {}
            None if empty => {
                meta.insert(VERSION_KEY, SCHEMA_VERSION).map_err(classify_any)?;
            }
            None => return Err(OpenFailure::Broken("has no schema version".into())),
            Some(other) => {
                return Err(OpenFailure::Broken(format!(
                    "has schema version {other} (this agent uses {SCHEMA_VERSION})"
                )));
            }
        }
    }
    txn.open_table(ANSWERS).map_err(classify_any)?;
    txn.open_table(LISTINGS).map_err(classify_any)?;
    txn.open_table(VERIFIERS).map_err(classify_any)?;
    txn.commit().map_err(classify_any)?;
    Ok(empty)
}

fn classify_any(e: impl Into<redb::Error>) -> OpenFailure {
    classify(e.into())
}

/// Which open errors mean the file itself is bad.
fn classify(e: redb::Error) -> OpenFailure {
    use redb::Error as E;
    match e {
        E::Corrupted(why) => OpenFailure::Broken(format!("is corrupt ({why})")),
        E::UpgradeRequired(format) => OpenFailure::Broken(format!("is in an old redb file format ({format})")),
        E::RepairAborted => OpenFailure::Broken("could not be repaired".into()),
        E::TableTypeMismatch { .. } | E::TableIsMultimap(_) | E::TypeDefinitionChanged { .. } => {
            OpenFailure::Broken(format!("has unexpected tables ({e})"))
        }
        E::Io(io) if matches!(io.kind(), io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof) => {
            OpenFailure::Broken(format!("is unreadable ({io})"))
        }
        // Another agent holds it, or the disk or permissions are the trouble: a new file
        // would not help, and the old one may be fine.
        e => OpenFailure::Failed(StoreError::Database(e)),
    }
}

/// Creates `dir` (and missing parents) 0700; an existing directory is left as it is (the
/// package may own it).
fn make_private_dir(dir: &Path) -> Result<(), StoreError> {
    let io = |source| StoreError::Io { path: dir.to_owned(), source };
    if dir.is_dir() {
        // Made by hand (mkdir under a 022 umask): other users could list it. Tightened if it
        // is ours; one someone else owns (chmod refused) is only reported.
        let mode = fs::metadata(dir).map_err(io)?.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            match fs::set_permissions(dir, Permissions::from_mode(0o700)) {
                Ok(()) => {
                    warn!("cache directory {} had mode {mode:04o}, open to other users: set to 0700", dir.display())
                }
                Err(e) => warn!("cache directory {} has mode {mode:04o}, open to other users: {e}", dir.display()),
            }
        }
        return Ok(());
    }
    DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io)?;
    fs::set_permissions(dir, Permissions::from_mode(0o700)).map_err(io)
}

/// Creates the file 0600 if missing (returns true), or makes an existing one 0600 if group or
/// others could access it.
fn make_private_file(path: &Path) -> Result<bool, StoreError> {
    let io = |source| StoreError::Io { path: path.to_owned(), source };
    match OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        // Explicitly: the mode passed to open() is filtered through the umask.
        Ok(_) => fs::set_permissions(path, Permissions::from_mode(0o600)).map(|()| true).map_err(io),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let mode = fs::metadata(path).map_err(io)?.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                fs::set_permissions(path, Permissions::from_mode(0o600)).map_err(io)?;
                warn!("cache file {} had mode {mode:04o}, open to other users: set to 0600", path.display());
            }
            Ok(false)
        }
        Err(e) => Err(io(e)),
    }
}

/// Renames a bad file to `cache.redb.broken-<unix secs>` (plus `.1`, `.2`, ... rather than
/// replace an earlier one from the same second).
fn move_aside(path: &Path) -> Result<PathBuf, StoreError> {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let base = format!("{FILE_NAME}.broken-{secs}");
    let mut aside = path.with_file_name(&base);
    let mut n = 0;
    while aside.exists() {
        n += 1;
        aside = path.with_file_name(format!("{base}.{n}"));
    }
    fs::rename(path, &aside).map_err(|source| StoreError::Io { path: path.to_owned(), source })?;
    Ok(aside)
}

#[cfg(test)]
mod tests;
