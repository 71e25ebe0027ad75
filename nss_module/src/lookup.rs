//! The safe logic behind the by-name, by-id and initgroups entry points: check the name, ask
//! the agent once, pack the answer into the caller's buffer.
//!
//! The socket path is a parameter so tests can point at a fake agent in a temporary directory;
//! `ffi.rs` always passes [`lanyard_proto::DEFAULT_SOCKET`].

use std::collections::HashSet;
use std::path::Path;

use lanyard_proto::name::is_valid_name;
use lanyard_proto::{Client, Group, Passwd, Request, Response};
use libc::{c_long, gid_t};

use lanyard_proto::snapshot::Answer;
use lanyard_proto::{GidList as SnapshotGids, GroupRecord, Snapshot, UserRecord};

use crate::buffer::{self, PackError, PackedGroup, PackedPasswd};
use crate::status::{Error, Unavailable};
use crate::{retry, snapshot, stuck};

/// `getpwnam_r`.
pub fn user_by_name(socket: &Path, name: &[u8], buf: &mut [u8]) -> Result<PackedPasswd, Error> {
    let checked = checked_name(name)?;
    let from_snapshot = |snapshot: &Snapshot<'_>, now, stale, buf: &mut [u8]| {
        decide(snapshot.user_by_name(name, now), stale, |user| pack_user_record(&user, buf))
    };
    fast_or_agent(socket, buf, from_snapshot, |buf| {
        lookup(socket, Request::UserByName(checked.to_owned()), buf, |r, buf| {
            packed(buffer::pack_passwd(user(r)?, buf))
        })
    })
}

/// `getpwuid_r`.
pub fn user_by_uid(socket: &Path, uid: u32, buf: &mut [u8]) -> Result<PackedPasswd, Error> {
    let from_snapshot = |snapshot: &Snapshot<'_>, now, stale, buf: &mut [u8]| {
        decide(snapshot.user_by_uid(uid, now), stale, |user| pack_user_record(&user, buf))
    };
    fast_or_agent(socket, buf, from_snapshot, |buf| {
        lookup(socket, Request::UserByUid(uid), buf, |r, buf| packed(buffer::pack_passwd(user(r)?, buf)))
    })
}

/// `getgrnam_r`.
pub fn group_by_name(socket: &Path, name: &[u8], buf: &mut [u8]) -> Result<PackedGroup, Error> {
    let checked = checked_name(name)?;
    let from_snapshot = |snapshot: &Snapshot<'_>, now, stale, buf: &mut [u8]| {
        decide(snapshot.group_by_name(name, now), stale, |group| pack_group_record(&group, buf))
    };
    fast_or_agent(socket, buf, from_snapshot, |buf| {
        lookup(socket, Request::GroupByName(checked.to_owned()), buf, |r, buf| {
            packed(buffer::pack_group(group(r)?, buf))
        })
    })
}

/// `getgrgid_r`.
pub fn group_by_gid(socket: &Path, gid: u32, buf: &mut [u8]) -> Result<PackedGroup, Error> {
    let from_snapshot = |snapshot: &Snapshot<'_>, now, stale, buf: &mut [u8]| {
        decide(snapshot.group_by_gid(gid, now), stale, |group| pack_group_record(&group, buf))
    };
    fast_or_agent(socket, buf, from_snapshot, |buf| {
        lookup(socket, Request::GroupByGid(gid), buf, |r, buf| packed(buffer::pack_group(group(r)?, buf)))
    })
}

fn pack_user_record(user: &UserRecord<'_>, buf: &mut [u8]) -> Result<PackedPasswd, Error> {
    packed(buffer::pack_passwd_record(user, buf))
}

fn pack_group_record(group: &GroupRecord<'_>, buf: &mut [u8]) -> Result<PackedGroup, Error> {
    let (block, starts) = group.member_block();
    packed(buffer::pack_group_block(group.name, group.gid, block, starts, buf))
}

/// Whether a record past its expiry may answer: only once the agent could not be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stale {
    Refused,
    Accepted,
}

/// What the snapshot's answer means for this lookup; `None`: ask the agent.
fn decide<R, T>(answer: Answer<R>, stale: Stale, pack: impl FnOnce(R) -> Result<T, Error>) -> Option<Result<T, Error>> {
    match answer {
        Answer::Fresh(record) => Some(pack(record)),
        Answer::Stale(record) if stale == Stale::Accepted => Some(pack(record)),
        // The snapshot holds the whole directory, and it is fresh: no such entry.
        Answer::Absent => Some(Err(Error::NotFound)),
        Answer::Stale(_) | Answer::Unknown => None,
    }
}

/// The snapshot first: a fresh record is the answer, and so is "absent" from a snapshot that
/// holds the whole directory. Otherwise the agent; and if the agent cannot be reached at all
/// (restarting, stopped, stuck), the snapshot's record even past its expiry, so `ls -l` and
/// `id` keep working meanwhile.
fn fast_or_agent<T>(
    socket: &Path,
    buf: &mut [u8],
    from_snapshot: impl Fn(&Snapshot<'_>, u64, Stale, &mut [u8]) -> Option<Result<T, Error>>,
    ask_agent: impl FnOnce(&mut [u8]) -> Result<T, Error>,
) -> Result<T, Error> {
    if let Some(answer) = snapshot::with(socket, |snapshot, now| from_snapshot(snapshot, now, Stale::Refused, buf)) {
        return answer;
    }
    let answer = ask_agent(buf);
    if matches!(answer, Err(Error::Unavailable(Unavailable::Unreachable)))
        && let Some(stale) = snapshot::with(socket, |snapshot, now| from_snapshot(snapshot, now, Stale::Accepted, buf))
    {
        return stale;
    }
    answer
}

/// Asks once (or reuses the answer that did not fit the caller's last, smaller buffer) and
/// packs the entry into `buf`.
fn lookup<T>(
    socket: &Path,
    request: Request,
    buf: &mut [u8],
    pack: impl FnOnce(&Response, &mut [u8]) -> Result<T, Error>,
) -> Result<T, Error> {
    let response = match retry::take(&request) {
        Some(kept) => kept,
        None => ask(socket, &request)?,
    };
    let result = pack(&response, buf);
    if matches!(result, Err(Error::BufferTooSmall)) {
        retry::keep(request, response);
    }
    result
}

/// glibc's growable gid array for `initgroups_dyn`: `ffi.rs` implements it over the raw
/// `(*start, *size, *groupsp)` triple, tests over a `Vec`.
pub trait GidList {
    /// The gids already in the list (`(*groupsp)[..*start]`).
    fn as_slice(&self) -> &[gid_t];
    /// How many gids fit without growing (`*size`).
    fn capacity(&self) -> usize;
    /// Grows to hold `capacity` gids. On failure the list is unchanged.
    fn grow(&mut self, capacity: usize) -> Result<(), Error>;
    /// Appends `gid`. Only called while `as_slice().len() < capacity()`.
    fn push(&mut self, gid: gid_t);
}

/// `initgroups_dyn`: adds the groups `name` is a member of to `list`.
pub fn groups_of_user(
    socket: &Path,
    name: &[u8],
    skip: gid_t,
    limit: c_long,
    list: &mut impl GidList,
) -> Result<(), Error> {
    let checked = checked_name(name)?;
    // Copied out of the mapping before glibc's array grows (which may call malloc).
    let from_snapshot = |snapshot: &Snapshot<'_>, now, stale, _: &mut [u8]| {
        decide(snapshot.groups_of(name, now), stale, |gids: SnapshotGids<'_>| Ok(gids.iter().collect::<Vec<u32>>()))
    };
    let gids = fast_or_agent(socket, &mut [], from_snapshot, |_| {
        match ask(socket, &Request::GroupsOfUser(checked.to_owned()))? {
            Response::GroupIds(gids) => Ok(gids),
            other => Err(not_an_entry(&other)),
        }
    })?;
    append_gids(list, &gids, skip, limit)
}

/// Up to this many gids in all, duplicates are found by scanning the list.
const SCAN_LIMIT: usize = 64;

/// Appends each of `gids` that is not `skip` (the primary group, which glibc adds itself) and not
/// already listed. The array doubles when full, but never past `limit` when `limit > 0`; at the
/// limit we stop adding and still succeed, as glibc's files module does.
pub fn append_gids(list: &mut impl GidList, gids: &[u32], skip: gid_t, limit: c_long) -> Result<(), Error> {
    let max = usize::try_from(limit).ok().filter(|&l| l > 0).unwrap_or(usize::MAX);
    // A user can be in thousands of groups: past a few dozen, a set instead of scanning the
    // array (a scan of a short array is cheaper than building a set at all).
    let mut present: Option<HashSet<gid_t>> =
        (list.as_slice().len() + gids.len() > SCAN_LIMIT).then(|| list.as_slice().iter().copied().collect());
    for &gid in gids {
        let listed = match &present {
            Some(set) => set.contains(&gid),
            None => list.as_slice().contains(&gid),
        };
        if gid == skip || listed {
            continue;
        }
        let len = list.as_slice().len();
        if len >= max {
            break;
        }
        if len >= list.capacity() {
            list.grow(len.saturating_mul(2).max(len + 1).min(max))?;
        }
        list.push(gid);
        if let Some(set) = &mut present {
            set.insert(gid);
        }
    }
    Ok(())
}

/// Names the agent could never know are answered here, without a connection. The C string can
/// hold any bytes; only valid UTF-8 that passes the protocol's name rule is sent.
fn checked_name(name: &[u8]) -> Result<&str, Error> {
    match std::str::from_utf8(name) {
        Ok(name) if is_valid_name(name) => Ok(name),
        _ => Err(Error::NotFound),
    }
}

/// One request, one response, within the default deadlines.
fn ask(socket: &Path, request: &Request) -> Result<Response, Error> {
    match Client::call(socket, request, stuck::deadlines()) {
        Ok(response) => {
            stuck::answered();
            Ok(response)
        }
        Err(error) => {
            if error.is_reply_timeout() {
                stuck::timed_out();
            }
            Err(Error::Unavailable(Unavailable::Unreachable))
        }
    }
}

fn user(response: &Response) -> Result<&Passwd, Error> {
    match response {
        Response::User(user) => Ok(user),
        other => Err(not_an_entry(other)),
    }
}

fn group(response: &Response) -> Result<&Group, Error> {
    match response {
        Response::Group(group) => Ok(group),
        other => Err(not_an_entry(other)),
    }
}

/// What a response that is not the awaited entry means. `NotFound` stays apart from every way
/// of not getting an answer.
pub(crate) fn not_an_entry(response: &Response) -> Error {
    match response {
        Response::NotFound => Error::NotFound,
        Response::Unavailable(_) => Error::Unavailable(Unavailable::AgentUnavailable),
        Response::Refused(_) => Error::Unavailable(Unavailable::Refused),
        _ => Error::Unavailable(Unavailable::UnexpectedResponse),
    }
}

/// An entry with a NUL byte cannot be returned at all: for a lookup, that is "not found".
fn packed<T>(result: Result<T, PackError>) -> Result<T, Error> {
    result.map_err(|e| match e {
        PackError::TooSmall => Error::BufferTooSmall,
        PackError::ContainsNul => Error::NotFound,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_agent::{self, FakeAgent};
    use std::time::{Duration, Instant};

    fn c_str(buf: &[u8], offset: usize) -> &str {
        let len = buf[offset..].iter().position(|&b| b == 0).unwrap();
        std::str::from_utf8(&buf[offset..offset + len]).unwrap()
    }

    #[test]
    fn a_known_user_is_packed_into_the_buffer() {
        let agent = FakeAgent::start(fake_agent::directory);
        let mut buf = [0u8; 256];
        let packed = user_by_name(agent.path(), b"alice", &mut buf).unwrap();
        assert_eq!(c_str(&buf, packed.name), "alice");
        assert_eq!(c_str(&buf, packed.passwd), "x");
        assert_eq!(c_str(&buf, packed.dir), "/home/alice");
        assert_eq!(packed.uid, 10001);
        assert_eq!(agent.requests(), [Request::UserByName("alice".into())]);

        let by_uid = user_by_uid(agent.path(), 10001, &mut buf).unwrap();
        assert_eq!(c_str(&buf, by_uid.name), "alice");
    }

    #[test]
    fn an_unknown_user_is_not_found() {
        let agent = FakeAgent::start(fake_agent::directory);
        assert_eq!(user_by_name(agent.path(), b"ghost", &mut [0; 256]), Err(Error::NotFound));
        assert_eq!(user_by_uid(agent.path(), 4242, &mut [0; 256]), Err(Error::NotFound));
        assert_eq!(group_by_gid(agent.path(), 4242, &mut [0; 256]), Err(Error::NotFound));
    }

    #[test]
    fn names_that_cannot_be_names_are_not_found_without_a_connection() {
        let agent = FakeAgent::start(fake_agent::directory);
        for name in [&b""[..], b"*", b"al ice", b"a)(uid=*", b"\xff\xfe", b"\xc3\xa5lice", b"-rf"] {
            assert_eq!(user_by_name(agent.path(), name, &mut [0; 256]), Err(Error::NotFound), "{name:?}");
            assert_eq!(group_by_name(agent.path(), name, &mut [0; 256]), Err(Error::NotFound), "{name:?}");
            let mut list = Vec::new();
            assert_eq!(groups_of_user(agent.path(), name, 0, 0, &mut list), Err(Error::NotFound));
        }
        assert_eq!(agent.connections(), 0);
    }

    #[test]
    fn a_lookup_without_an_agent_is_unavailable_at_once() {
        let socket = fake_agent::scratch_dir().join("nobody-listens.sock");
        let started = Instant::now();
        let unavailable = Error::Unavailable(Unavailable::Unreachable);
        assert_eq!(user_by_name(&socket, b"alice", &mut [0; 256]), Err(unavailable));
        assert_eq!(group_by_gid(&socket, 50, &mut [0; 256]), Err(unavailable));
        assert_eq!(groups_of_user(&socket, b"alice", 0, 0, &mut Vec::new()), Err(unavailable));
        assert!(started.elapsed() < Duration::from_millis(500), "{:?}", started.elapsed());
    }

    #[test]
    fn an_agent_that_cannot_answer_or_refuses_is_unavailable_not_not_found() {
        let agent = FakeAgent::start(fake_agent::directory);
        assert_eq!(
            user_by_name(agent.path(), b"down", &mut [0; 256]),
            Err(Error::Unavailable(Unavailable::AgentUnavailable))
        );
        assert_eq!(user_by_name(agent.path(), b"secret", &mut [0; 256]), Err(Error::Unavailable(Unavailable::Refused)));
    }

    #[test]
    fn a_reply_of_the_wrong_kind_is_unavailable() {
        let agent = FakeAgent::start(fake_agent::directory);
        assert_eq!(
            user_by_name(agent.path(), b"confused", &mut [0; 256]),
            Err(Error::Unavailable(Unavailable::UnexpectedResponse))
        );
    }

    #[test]
    fn a_user_with_a_nul_byte_in_a_field_is_not_found_even_with_a_tiny_buffer() {
        let agent = FakeAgent::start(fake_agent::directory);
        assert_eq!(user_by_name(agent.path(), b"nul", &mut [0; 256]), Err(Error::NotFound));
        assert_eq!(user_by_name(agent.path(), b"nul", &mut []), Err(Error::NotFound));
    }

    #[test]
    fn a_short_buffer_is_too_small_and_the_retry_succeeds() {
        let agent = FakeAgent::start(fake_agent::directory);
        assert_eq!(group_by_name(agent.path(), b"staff", &mut [0; 8]), Err(Error::BufferTooSmall));
        let mut buf = [0u8; 256];
        let packed = group_by_name(agent.path(), b"staff", &mut buf).unwrap();
        assert_eq!(packed.members.iter().map(|&m| c_str(&buf, m)).collect::<Vec<_>>(), ["alice", "bob"]);
        assert_eq!(agent.connections(), 1, "the retry reuses the answer that did not fit");
    }

    #[test]
    fn a_retry_for_another_name_asks_the_agent_again() {
        let agent = FakeAgent::start(fake_agent::directory);
        assert_eq!(group_by_name(agent.path(), b"staff", &mut [0; 8]), Err(Error::BufferTooSmall));
        assert_eq!(group_by_name(agent.path(), b"wheel", &mut [0u8; 256]), Err(Error::NotFound));
        assert!(group_by_name(agent.path(), b"staff", &mut [0u8; 256]).is_ok());
        assert_eq!(agent.connections(), 3);
    }

    /// A `Vec` standing in for glibc's array; `room` is its `*size`.
    #[derive(Debug, Default)]
    struct Gids {
        gids: Vec<gid_t>,
        room: usize,
        fail_growth: bool,
    }

    impl GidList for Gids {
        fn as_slice(&self) -> &[gid_t] {
            &self.gids
        }
        fn capacity(&self) -> usize {
            self.room
        }
        fn grow(&mut self, capacity: usize) -> Result<(), Error> {
            assert!(capacity > self.room, "grow only grows");
            if self.fail_growth {
                return Err(Error::NoMemory);
            }
            self.room = capacity;
            Ok(())
        }
        fn push(&mut self, gid: gid_t) {
            assert!(self.gids.len() < self.room, "push past the array");
            self.gids.push(gid);
        }
    }

    impl GidList for Vec<gid_t> {
        fn as_slice(&self) -> &[gid_t] {
            self
        }
        fn capacity(&self) -> usize {
            usize::MAX
        }
        fn grow(&mut self, _: usize) -> Result<(), Error> {
            Ok(())
        }
        fn push(&mut self, gid: gid_t) {
            Vec::push(self, gid);
        }
    }

    #[test]
    fn groups_of_a_user_skip_the_primary_group_and_gids_already_listed() {
        let agent = FakeAgent::start(fake_agent::directory);
        // The agent answers [100, 50, 51, 50, 7] for alice.
        let mut list = Gids { gids: vec![100, 7], room: 2, fail_growth: false };
        groups_of_user(agent.path(), b"alice", 100, 0, &mut list).unwrap();
        assert_eq!(list.gids, [100, 7, 50, 51]);
        assert_eq!(list.room, 4, "doubled once");
    }

    #[test]
    fn groups_of_an_unknown_user_are_not_found() {
        let agent = FakeAgent::start(fake_agent::directory);
        assert_eq!(groups_of_user(agent.path(), b"ghost", 0, 0, &mut Vec::new()), Err(Error::NotFound));
    }

    #[test]
    fn the_gid_array_never_grows_past_a_positive_limit() {
        let mut list = Gids { gids: vec![1], room: 1, fail_growth: false };
        append_gids(&mut list, &[2, 3, 4, 5, 6], 0, 3).unwrap();
        assert_eq!((list.gids.as_slice(), list.room), (&[1, 2, 3][..], 3));

        // A limit of 0 or below means none.
        let mut list = Gids { gids: vec![], room: 0, fail_growth: false };
        append_gids(&mut list, &(1..=100).collect::<Vec<_>>(), 0, -1).unwrap();
        assert_eq!(list.gids.len(), 100);
        assert!(list.room >= 100);
    }

    #[test]
    fn a_failed_growth_is_no_memory_and_keeps_what_was_added() {
        let mut list = Gids { gids: vec![1], room: 2, fail_growth: true };
        assert_eq!(append_gids(&mut list, &[2, 3], 0, 0), Err(Error::NoMemory));
        assert_eq!((list.gids.as_slice(), list.room), (&[1, 2][..], 2));
    }
}
