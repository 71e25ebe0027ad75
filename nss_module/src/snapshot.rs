//! The fast path: answers from the snapshot the agent publishes beside its socket
//! (`lanyard_proto::snapshot`), mapped once per process, without a socket round trip.
//!
//! [`with`] hands a lookup the current snapshot and the time. Each call costs one volatile
//! load (has the agent replaced the file?), a header check and the lookup itself; no syscall
//! but reading CLOCK_BOOTTIME (vDSO). When the file was replaced, the new one is mapped; when
//! there is none (an agent without snapshots, or not started yet), opening is retried at most
//! every [`RETRY_OPEN`], so a host without it pays one failed `open` a second, not one per call.
//!
//! Concurrency: the state sits behind an `RwLock` that is only ever *tried*: lookups share the
//! read side, a remap takes the write side, and anyone who would have to wait asks the agent
//! instead. So nothing ever blocks here, and a child forked while another thread held the lock
//! (glibc's rule for locks across `fork`) answers through the socket instead of deadlocking.
//! A mapping is unmapped only under the write lock, so never under a reader.

use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError};
use std::time::{Duration, Instant};

use lanyard_proto::snapshot::{SNAPSHOT_FILE_NAME, is_superseded};
use lanyard_proto::{Snapshot, boottime_ms};

use crate::ffi::MappedFile;

/// How long after a failed open (no file, a bad file) the next lookup may try again.
const RETRY_OPEN: Duration = Duration::from_secs(1);

/// Remaps in one call at most: each replaced file is followed by a newer one only while the
/// agent publishes faster than we map, and a lookup never chases it for long.
const MAX_REMAPS: usize = 3;

struct State {
    /// The socket this state belongs to (tests use several; the shipped module one).
    socket: PathBuf,
    mapped: Option<MappedFile>,
    /// When opening last failed, if it did.
    failed_at: Option<Instant>,
}

#[cfg(not(test))]
static STATE: RwLock<Option<State>> = RwLock::new(None);

/// The shipped module has one state per process. Unit tests run in parallel threads, each
/// against its own fake agent: one state per thread keeps them from contending for the lock
/// (and so falling back to the socket) in each other's way. The e2e tests drive the real one.
fn state() -> &'static RwLock<Option<State>> {
    #[cfg(not(test))]
    return &STATE;
    #[cfg(test)]
    {
        thread_local! {
            static STATE: &'static RwLock<Option<State>> = Box::leak(Box::new(RwLock::new(None)));
        }
        STATE.with(|state| *state)
    }
}

/// Runs `lookup` on the current snapshot for the agent at `socket`, with the snapshot clock's
/// now. `None`: no usable snapshot right now (absent, damaged, being replaced under
/// contention), so the caller asks the agent; `lookup` also returns `None` for that.
pub fn with<R>(socket: &Path, lookup: impl FnOnce(&Snapshot<'_>, u64) -> Option<R>) -> Option<R> {
    {
        let state = try_read()?;
        if let Some(State { socket: known, mapped: Some(mapped), .. }) = state.as_ref()
            && known == socket
            && !is_superseded(mapped.bytes())
        {
            let snapshot = Snapshot::parse(mapped.bytes()).ok()?;
            return lookup(&snapshot, boottime_ms());
        }
    }
    let mut state = try_write()?;
    remap(&mut state, socket)?;
    let mapped = state.as_ref()?.mapped.as_ref()?;
    let snapshot = Snapshot::parse(mapped.bytes()).ok()?;
    lookup(&snapshot, boottime_ms())
}

/// Maps the current file if the state has none, belongs to another socket, or was replaced.
/// `None` if there is no usable file now.
fn remap(state: &mut Option<State>, socket: &Path) -> Option<()> {
    if state.as_ref().is_none_or(|s| s.socket != socket) {
        *state = Some(State { socket: socket.to_owned(), mapped: None, failed_at: None });
    }
    let state = state.as_mut()?;
    for _ in 0..MAX_REMAPS {
        match &state.mapped {
            Some(mapped) if !is_superseded(mapped.bytes()) => return Some(()),
            Some(_) => {}
            None if state.failed_at.is_some_and(|at| at.elapsed() < RETRY_OPEN) => return None,
            None => {}
        }
        // Unmapped here, under the write lock: no reader holds a borrow of it.
        state.mapped = None;
        match MappedFile::open(&socket.with_file_name(SNAPSHOT_FILE_NAME)) {
            Ok(mapped) if Snapshot::parse(mapped.bytes()).is_ok() => {
                state.mapped = Some(mapped);
                state.failed_at = None;
            }
            _ => {
                state.failed_at = Some(Instant::now());
                return None;
            }
        }
    }
    None
}

fn try_read() -> Option<RwLockReadGuard<'static, Option<State>>> {
    match state().try_read() {
        Ok(guard) => Some(guard),
        // A panic while mapping (caught at the FFI boundary) leaves a consistent Option.
        Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

fn try_write() -> Option<RwLockWriteGuard<'static, Option<State>>> {
    match state().try_write() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use lanyard_proto::snapshot::SUPERSEDED_OFFSET;
    use lanyard_proto::testing::{group, user};
    use lanyard_proto::{Request, SnapshotBuilder, boottime_ms};

    use super::*;
    use crate::fake_agent::{self, FakeAgent, scratch_dir};
    use crate::lookup::{self, groups_of_user, user_by_name, user_by_uid};
    use crate::status::{Error, Unavailable};

    const HOUR_MS: u64 = 3_600_000;

    /// A snapshot beside `socket` as the agent would publish it: alice (with her groups) and
    /// staff, expiring at `expires`; complete if `complete`.
    fn publish(socket: &Path, expires: u64, complete: bool) {
        let mut builder = SnapshotBuilder::new(1);
        let mut alice = user("alice", 10001);
        alice.gecos = "From the snapshot".into();
        builder.add_user(&alice, Some(&[50, 51]), expires);
        builder.add_group(&group("staff", 50, &["alice", "bob"]), expires);
        if complete {
            builder.set_complete_users(expires);
            builder.set_complete_groups(expires);
        }
        replace(socket, &builder.finish());
    }

    /// Renames `bytes` into place and marks the file it replaces, as the agent does.
    fn replace(socket: &Path, bytes: &[u8]) {
        let path = socket.with_file_name(SNAPSHOT_FILE_NAME);
        let old = fs::OpenOptions::new().write(true).open(&path).ok();
        let temporary = socket.with_file_name("snapshot.new");
        fs::write(&temporary, bytes).unwrap();
        fs::rename(&temporary, &path).unwrap();
        if let Some(old) = old {
            std::os::unix::fs::FileExt::write_all_at(&old, &[1], SUPERSEDED_OFFSET as u64).unwrap();
        }
    }

    fn gecos(socket: &Path, name: &[u8]) -> Result<String, Error> {
        let mut buf = [0u8; 512];
        let packed = user_by_name(socket, name, &mut buf)?;
        let end = buf[packed.gecos..].iter().position(|&b| b == 0).unwrap();
        Ok(String::from_utf8(buf[packed.gecos..packed.gecos + end].to_vec()).unwrap())
    }

    #[test]
    fn a_fresh_entry_is_answered_without_the_agent() {
        let agent = FakeAgent::start(fake_agent::directory);
        publish(agent.path(), boottime_ms() + HOUR_MS, false);
        assert_eq!(gecos(agent.path(), b"alice").unwrap(), "From the snapshot");
        assert_eq!(user_by_uid(agent.path(), 10001, &mut [0; 512]).unwrap().uid, 10001);
        let mut staff = [0u8; 512];
        assert_eq!(lookup::group_by_name(agent.path(), b"staff", &mut staff).unwrap().members.len(), 2);
        let mut gids = Vec::new();
        groups_of_user(agent.path(), b"alice", 100, 0, &mut gids).unwrap();
        assert_eq!(gids, [50, 51]);
        assert_eq!(agent.requests(), [], "the agent was asked");
        // Not held and not complete: the agent answers.
        assert_eq!(gecos(agent.path(), b"bob").unwrap(), "bob gecos");
        assert_eq!(agent.requests(), [Request::UserByName("bob".into())]);
    }

    #[test]
    fn a_complete_snapshot_answers_not_found_itself_but_never_for_an_invalid_name() {
        let agent = FakeAgent::start(fake_agent::directory);
        publish(agent.path(), boottime_ms() + HOUR_MS, true);
        assert_eq!(gecos(agent.path(), b"bob"), Err(Error::NotFound));
        assert_eq!(user_by_uid(agent.path(), 4242, &mut [0; 512]), Err(Error::NotFound));
        assert_eq!(gecos(agent.path(), b"*"), Err(Error::NotFound));
        assert_eq!(agent.requests(), []);
    }

    #[test]
    fn an_expired_entry_goes_to_the_agent_and_answers_only_when_the_agent_is_gone() {
        let agent = FakeAgent::start(fake_agent::directory);
        publish(agent.path(), boottime_ms().saturating_sub(1), true);
        // Expired, and an expired completeness says nothing: the agent answers.
        assert_eq!(gecos(agent.path(), b"alice").unwrap(), "alice gecos");
        assert_eq!(gecos(agent.path(), b"bob").unwrap(), "bob gecos");
        assert_eq!(agent.requests().len(), 2);

        let dir = scratch_dir();
        let gone = dir.join("agent.sock");
        publish(&gone, boottime_ms().saturating_sub(1), true);
        assert_eq!(gecos(&gone, b"alice").unwrap(), "From the snapshot");
        // What the snapshot does not hold stays "unavailable", never "not found".
        assert_eq!(gecos(&gone, b"bob"), Err(Error::Unavailable(Unavailable::Unreachable)));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_replaced_snapshot_is_noticed_and_a_damaged_one_is_not_used() {
        let agent = FakeAgent::start(fake_agent::directory);
        publish(agent.path(), boottime_ms() + HOUR_MS, false);
        assert_eq!(gecos(agent.path(), b"alice").unwrap(), "From the snapshot");
        // A new file without alice: the next lookup maps it and asks the agent.
        replace(agent.path(), &SnapshotBuilder::new(2).finish());
        assert_eq!(gecos(agent.path(), b"alice").unwrap(), "alice gecos");
        assert_eq!(agent.requests().len(), 1);

        publish(agent.path(), boottime_ms() + HOUR_MS, false);
        let path = agent.path().with_file_name(SNAPSHOT_FILE_NAME);
        let good = fs::read(&path).unwrap();
        let mut damaged: Vec<(&str, Vec<u8>)> =
            vec![("truncated", good[..good.len() / 2].to_vec()), ("garbage", vec![0xa5; good.len()])];
        let mut flipped = good.clone();
        flipped[..8].copy_from_slice(b"NOTASNAP");
        damaged.push(("bad magic", flipped));
        for (what, bytes) in damaged {
            replace(agent.path(), &bytes);
            let before = agent.requests().len();
            assert_eq!(gecos(agent.path(), b"alice").unwrap(), "alice gecos", "{what}");
            assert_eq!(agent.requests().len(), before + 1, "{what}: the agent was not asked");
        }
        // Writable by others: not trusted, whatever it holds.
        replace(agent.path(), &good);
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
        let before = agent.requests().len();
        assert_eq!(gecos(agent.path(), b"alice").unwrap(), "alice gecos");
        assert_eq!(agent.requests().len(), before + 1);
    }
}

/// What the module's own share of a warm lookup costs (no glibc, no `files` module before it):
/// `cargo test -p nss_lanyard --release -- --ignored --nocapture module_lookup_speed`.
#[cfg(test)]
mod speed {
    use std::time::Instant;

    use lanyard_proto::testing::{group, scratch_dir, user};
    use lanyard_proto::{SnapshotBuilder, boottime_ms};

    use super::SNAPSHOT_FILE_NAME;
    use crate::lookup::{self, GidList};

    #[test]
    #[ignore = "prints figures; run in release"]
    fn module_lookup_speed() {
        let dir = scratch_dir();
        let socket = dir.join("agent.sock");
        let expires = boottime_ms() + 3_600_000;
        let mut builder = SnapshotBuilder::new(1);
        let members: Vec<String> = (0..5000).map(|i| format!("user{i:05}")).collect();
        let member_refs: Vec<&str> = members.iter().map(String::as_str).collect();
        let gids: Vec<u32> = (0..50).map(|i| 20_000 + i).collect();
        for i in 0..10_000u32 {
            builder.add_user(&user(&format!("user{i:05}"), 100_000 + i), Some(&gids), expires);
        }
        builder.add_group(&group("biggroup", 5000, &member_refs), expires);
        std::fs::write(dir.join(SNAPSHOT_FILE_NAME), builder.finish()).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let time = |what: &str, rounds: u32, mut f: Box<dyn FnMut() + '_>| {
            f();
            let start = Instant::now();
            for _ in 0..rounds {
                f();
            }
            println!("{what}: {:.0} ns", start.elapsed().as_nanos() as f64 / f64::from(rounds));
        };
        time("getpwnam", 200_000, Box::new(|| _ = lookup::user_by_name(&socket, b"user04242", &mut buf).unwrap()));
        let mut buf = vec![0u8; 1 << 20];
        time(
            "getgrnam 5000 members",
            2_000,
            Box::new(|| _ = lookup::group_by_name(&socket, b"biggroup", &mut buf).unwrap()),
        );
        struct Gids(Vec<u32>);
        impl GidList for Gids {
            fn as_slice(&self) -> &[u32] {
                &self.0
            }
            fn capacity(&self) -> usize {
                self.0.capacity()
            }
            fn grow(&mut self, capacity: usize) -> Result<(), crate::status::Error> {
                self.0.reserve(capacity - self.0.len());
                Ok(())
            }
            fn push(&mut self, gid: u32) {
                self.0.push(gid)
            }
        }
        time(
            "initgroups 50 groups",
            200_000,
            Box::new(|| {
                let mut list = Gids(Vec::with_capacity(64));
                lookup::groups_of_user(&socket, b"user04242", 7, 0, &mut list).unwrap();
            }),
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
