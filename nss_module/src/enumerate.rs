//! `setpwent` / `getpwent_r` / `endpwent` and the group trio.
//!
//! One enumeration per database and process, as glibc expects (it serializes these calls with
//! its own lock; ours only keeps the state sound). `set*ent` opens a connection and sends
//! `Enumerate*`; the agent streams pages closed by `EndOfPages` on that connection, and the
//! [`Cursor`] hands out one entry per `get*ent_r`, asking for the next page only when the
//! current one is used up.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use lanyard_proto::{Client, Deadlines, Group, Passwd, Request, Response};

use crate::buffer::{self, PackError, PackedGroup, PackedPasswd};
use crate::lookup::not_an_entry;
use crate::status::{Error, Unavailable};

/// Where pages come from: the agent's connection, or a fake in tests.
pub trait PageSource<T> {
    /// The next page, or `None` after the last one.
    fn next_page(&mut self) -> Result<Option<Vec<T>>, Error>;
}

/// The stream of pages on one connection to the agent.
#[derive(Debug)]
pub struct AgentPages {
    client: Client,
}

impl AgentPages {
    pub fn open(socket: &Path, request: &Request) -> Result<AgentPages, Error> {
        let unreachable = |_| Error::Unavailable(Unavailable::Unreachable);
        let mut client = Client::connect(socket, Deadlines::default()).map_err(unreachable)?;
        client.send(request).map_err(unreachable)?;
        Ok(AgentPages { client })
    }

    fn receive(&mut self) -> Result<Response, Error> {
        self.client.receive().map_err(|_| Error::Unavailable(Unavailable::Unreachable))
    }
}

impl PageSource<Passwd> for AgentPages {
    fn next_page(&mut self) -> Result<Option<Vec<Passwd>>, Error> {
        match self.receive()? {
            Response::UserPage(page) => Ok(Some(page)),
            Response::EndOfPages => Ok(None),
            other => Err(not_an_entry(&other)),
        }
    }
}

impl PageSource<Group> for AgentPages {
    fn next_page(&mut self) -> Result<Option<Vec<Group>>, Error> {
        match self.receive()? {
            Response::GroupPage(page) => Ok(Some(page)),
            Response::EndOfPages => Ok(None),
            other => Err(not_an_entry(&other)),
        }
    }
}

/// A position in an enumeration.
#[derive(Debug)]
pub struct Cursor<T, S> {
    source: S,
    page: Vec<T>,
    /// Index in `page` of the entry the next call returns.
    next: usize,
    /// Set once the stream ended (`End`) or failed; every later call returns it again, so a
    /// caller that keeps calling after an error never restarts the stream by accident.
    finished: Option<Error>,
}

impl<T, S: PageSource<T>> Cursor<T, S> {
    pub fn new(source: S) -> Cursor<T, S> {
        Cursor { source, page: Vec::new(), next: 0, finished: None }
    }

    /// Packs the next entry with `pack`. The cursor advances only past an entry that was
    /// packed or that can never be (a NUL byte: skipped); after "too small" the same entry
    /// comes again, since glibc retries with a larger buffer.
    pub fn next<P>(&mut self, mut pack: impl FnMut(&T) -> Result<P, PackError>) -> Result<P, Error> {
        loop {
            if let Some(entry) = self.page.get(self.next) {
                match pack(entry) {
                    Ok(packed) => {
                        self.next += 1;
                        return Ok(packed);
                    }
                    Err(PackError::ContainsNul) => self.next += 1,
                    Err(PackError::TooSmall) => return Err(Error::BufferTooSmall),
                }
                continue;
            }
            if let Some(error) = self.finished {
                return Err(error);
            }
            match self.source.next_page() {
                Ok(Some(page)) => (self.page, self.next) = (page, 0),
                Ok(None) => self.finish(Error::End),
                Err(error) => self.finish(error),
            }
        }
    }

    fn finish(&mut self, error: Error) {
        self.finished = Some(error);
        self.page = Vec::new();
        self.next = 0;
    }
}

type State<T> = Mutex<Option<Cursor<T, AgentPages>>>;

static USERS: State<Passwd> = Mutex::new(None);
static GROUPS: State<Group> = Mutex::new(None);

/// `setpwent`: drops any running enumeration and starts a new one.
pub fn start_users(socket: &Path) -> Result<(), Error> {
    start(&USERS, socket, &Request::EnumerateUsers)
}

/// `getpwent_r`: the next user, starting an enumeration if `setpwent` was never called.
pub fn next_user(socket: &Path, buf: &mut [u8]) -> Result<PackedPasswd, Error> {
    next(&USERS, socket, &Request::EnumerateUsers, |user| buffer::pack_passwd(user, buf))
}

/// `endpwent`: closes the connection.
pub fn end_users() -> Result<(), Error> {
    *lock(&USERS) = None;
    Ok(())
}

/// `setgrent`.
pub fn start_groups(socket: &Path) -> Result<(), Error> {
    start(&GROUPS, socket, &Request::EnumerateGroups)
}

/// `getgrent_r`.
pub fn next_group(socket: &Path, buf: &mut [u8]) -> Result<PackedGroup, Error> {
    next(&GROUPS, socket, &Request::EnumerateGroups, |group| buffer::pack_group(group, buf))
}

/// `endgrent`.
pub fn end_groups() -> Result<(), Error> {
    *lock(&GROUPS) = None;
    Ok(())
}

/// A panic while the lock was held (caught at the FFI boundary) poisons it; the state inside is
/// still a valid cursor, so carry on with it rather than panic in someone else's process.
fn lock<T>(state: &State<T>) -> MutexGuard<'_, Option<Cursor<T, AgentPages>>> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

fn start<T>(state: &State<T>, socket: &Path, request: &Request) -> Result<(), Error>
where
    AgentPages: PageSource<T>,
{
    let mut slot = lock(state);
    *slot = None; // the old connection goes even if the new one cannot be had
    *slot = Some(Cursor::new(AgentPages::open(socket, request)?));
    Ok(())
}

fn next<T, P>(
    state: &State<T>,
    socket: &Path,
    request: &Request,
    pack: impl FnMut(&T) -> Result<P, PackError>,
) -> Result<P, Error>
where
    AgentPages: PageSource<T>,
{
    let mut slot = lock(state);
    let cursor = match slot.take() {
        Some(cursor) => cursor,
        None => Cursor::new(AgentPages::open(socket, request)?),
    };
    slot.insert(cursor).next(pack)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// Pages handed out in order; counts how often it was asked.
    #[derive(Debug, Default)]
    struct FakePages {
        pages: VecDeque<Result<Option<Vec<&'static str>>, Error>>,
        asked: usize,
    }

    impl FakePages {
        fn new(pages: &[&[&'static str]]) -> FakePages {
            let mut pages: VecDeque<_> = pages.iter().map(|p| Ok(Some(p.to_vec()))).collect();
            pages.push_back(Ok(None));
            FakePages { pages, asked: 0 }
        }
    }

    impl PageSource<&'static str> for FakePages {
        fn next_page(&mut self) -> Result<Option<Vec<&'static str>>, Error> {
            self.asked += 1;
            self.pages.pop_front().unwrap_or(Ok(None))
        }
    }

    /// Packs into a pretend buffer of `room` bytes; `!` marks an entry with a NUL byte.
    fn packer(room: usize) -> impl FnMut(&&'static str) -> Result<String, PackError> {
        move |entry| match entry {
            e if e.contains('!') => Err(PackError::ContainsNul),
            e if e.len() > room => Err(PackError::TooSmall),
            e => Ok(e.to_string()),
        }
    }

    fn drain(cursor: &mut Cursor<&'static str, FakePages>) -> Vec<String> {
        std::iter::from_fn(|| cursor.next(packer(100)).ok()).collect()
    }

    #[test]
    fn entries_come_one_at_a_time_across_pages_and_empty_pages() {
        let mut cursor = Cursor::new(FakePages::new(&[&["a", "b"], &[], &["c"]]));
        assert_eq!(drain(&mut cursor), ["a", "b", "c"]);
        assert_eq!(cursor.next(packer(100)), Err(Error::End));
    }

    #[test]
    fn a_page_is_fetched_only_when_the_current_one_is_used_up() {
        let mut cursor = Cursor::new(FakePages::new(&[&["a", "b"], &["c"]]));
        assert_eq!(cursor.source.asked, 0, "nothing is fetched before the first entry is wanted");
        cursor.next(packer(100)).unwrap();
        cursor.next(packer(100)).unwrap();
        assert_eq!(cursor.source.asked, 1);
        cursor.next(packer(100)).unwrap();
        assert_eq!(cursor.source.asked, 2);
    }

    #[test]
    fn a_too_small_buffer_gets_the_same_entry_on_the_next_call() {
        let mut cursor = Cursor::new(FakePages::new(&[&["a", "longer", "c"]]));
        assert_eq!(cursor.next(packer(100)), Ok("a".into()));
        assert_eq!(cursor.next(packer(3)), Err(Error::BufferTooSmall));
        assert_eq!(cursor.next(packer(3)), Err(Error::BufferTooSmall));
        assert_eq!(cursor.next(packer(100)), Ok("longer".into()));
        assert_eq!(cursor.next(packer(100)), Ok("c".into()));
    }

    #[test]
    fn entries_with_a_nul_byte_are_skipped() {
        let mut cursor = Cursor::new(FakePages::new(&[&["a", "b!"], &["c!"], &["d"]]));
        assert_eq!(drain(&mut cursor), ["a", "d"]);
    }

    #[test]
    fn the_end_stays_the_end() {
        let mut cursor = Cursor::new(FakePages::new(&[&["a"]]));
        drain(&mut cursor);
        for _ in 0..3 {
            assert_eq!(cursor.next(packer(100)), Err(Error::End));
        }
        assert_eq!(cursor.source.asked, 2, "no page is asked for after the end");
    }

    #[test]
    fn a_broken_stream_stays_unavailable_after_the_entries_already_received() {
        let broken = Error::Unavailable(Unavailable::Unreachable);
        let source = FakePages { pages: VecDeque::from([Ok(Some(vec!["a"])), Err(broken)]), asked: 0 };
        let mut cursor = Cursor::new(source);
        assert_eq!(cursor.next(packer(100)), Ok("a".into()));
        assert_eq!(cursor.next(packer(100)), Err(broken));
        assert_eq!(cursor.next(packer(100)), Err(broken));
        assert_eq!(cursor.source.asked, 2);
    }

    #[test]
    fn an_enumeration_through_the_agent_ends_with_end() {
        use crate::fake_agent::{self, FakeAgent};
        let agent = FakeAgent::start(fake_agent::directory);
        let mut cursor: Cursor<Passwd, _> =
            Cursor::new(AgentPages::open(agent.path(), &Request::EnumerateUsers).unwrap());
        let mut names = Vec::new();
        while let Ok(user) = cursor.next(|u: &Passwd| Ok::<_, PackError>(u.name.clone())) {
            names.push(user);
        }
        assert_eq!(names, ["alice", "bob", "nul", "carol"], "the cursor itself does not judge entries");
        assert_eq!(cursor.next(|u: &Passwd| Ok::<_, PackError>(u.uid)), Err(Error::End));
        assert_eq!(agent.requests(), [Request::EnumerateUsers]);
    }
}
