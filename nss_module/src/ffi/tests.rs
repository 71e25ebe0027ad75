//! The entry points themselves, called the way glibc calls them, against a fake agent.
//!
//! `socket()` reads [`SOCKET`] in test builds, so each test thread can point the real
//! `extern "C"` functions at its own fake agent in a scratch directory; the shipped module has
//! no such switch.

use super::*;
use crate::fake_agent::{self, FakeAgent};
use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

thread_local! {
    pub(super) static SOCKET: RefCell<PathBuf> = RefCell::new(PathBuf::from(lanyard_proto::DEFAULT_SOCKET));
}

/// The enumeration state is per process: tests that enumerate (or reset it) take turns.
static ENUMERATION: Mutex<()> = Mutex::new(());

fn use_agent(socket: &Path) {
    SOCKET.with(|s| *s.borrow_mut() = socket.to_owned());
}

/// What an entry point returned: its status, errno afterwards, and the entry on success.
type Reply<T> = (NssStatus, c_int, Option<T>);

/// A `struct group` read back: name, gid, members.
type GroupEntry = (String, u32, Vec<String>);

/// errno's value before a call, to see whether the call touched it.
const UNTOUCHED: c_int = 12345;

/// A `struct passwd` read back into owned strings.
#[derive(Debug, PartialEq)]
struct User {
    name: String,
    passwd: String,
    uid: u32,
    gecos: String,
    dir: String,
    shell: String,
}

/// # Safety
/// `p` points to a NUL-terminated string.
unsafe fn text(p: *const c_char) -> String {
    // SAFETY: the caller's promise.
    unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_owned()
}

/// Calls a passwd entry point with a fresh buffer of `buflen` bytes.
fn call_passwd(
    buflen: usize,
    f: impl FnOnce(*mut passwd, *mut c_char, size_t, *mut c_int) -> NssStatus,
) -> Reply<User> {
    let mut pw = MaybeUninit::<passwd>::uninit();
    let mut buf = vec![0x55 as c_char; buflen];
    let mut errno = UNTOUCHED;
    let status = f(pw.as_mut_ptr(), buf.as_mut_ptr(), buf.len(), &mut errno);
    if status != NssStatus::Success {
        return (status, errno, None);
    }
    // SAFETY: on success the entry point wrote the whole struct, its strings in `buf`.
    let user = unsafe {
        let pw = pw.assume_init();
        let inside = |p: *mut c_char| buf.as_ptr_range().contains(&p.cast_const());
        assert!([pw.pw_name, pw.pw_passwd, pw.pw_gecos, pw.pw_dir, pw.pw_shell].into_iter().all(inside));
        User {
            name: text(pw.pw_name),
            passwd: text(pw.pw_passwd),
            uid: pw.pw_uid,
            gecos: text(pw.pw_gecos),
            dir: text(pw.pw_dir),
            shell: text(pw.pw_shell),
        }
    };
    (status, errno, Some(user))
}

/// Calls a group entry point with a buffer of `buflen` bytes starting `misalign` bytes into an
/// allocation (glibc's buffers need not be aligned); returns name, gid and members.
fn call_group(
    buflen: usize,
    misalign: usize,
    f: impl FnOnce(*mut group, *mut c_char, size_t, *mut c_int) -> NssStatus,
) -> Reply<GroupEntry> {
    let mut gr = MaybeUninit::<group>::uninit();
    let mut backing = vec![0x55 as c_char; buflen + misalign];
    let buf = &mut backing[misalign..];
    let mut errno = UNTOUCHED;
    let status = f(gr.as_mut_ptr(), buf.as_mut_ptr(), buf.len(), &mut errno);
    if status != NssStatus::Success {
        return (status, errno, None);
    }
    // SAFETY: on success the entry point wrote the whole struct; gr_mem is a null-terminated
    // array of C strings in `buf`.
    let entry = unsafe {
        let gr = gr.assume_init();
        assert!(gr.gr_mem.is_aligned(), "gr_mem at {:p}", gr.gr_mem);
        assert!(buf.as_ptr_range().contains(&gr.gr_mem.cast::<c_char>().cast_const()));
        assert_eq!(text(gr.gr_passwd), "x");
        let mut members = Vec::new();
        let mut slot = gr.gr_mem;
        while !(*slot).is_null() {
            members.push(text(*slot));
            slot = slot.add(1);
        }
        (text(gr.gr_name), gr.gr_gid, members)
    };
    (status, errno, Some(entry))
}

fn getpwnam(name: &CStr, buflen: usize) -> Reply<User> {
    // SAFETY: every argument is as glibc would pass it.
    call_passwd(buflen, |r, b, l, e| unsafe { _nss_lanyard_getpwnam_r(name.as_ptr(), r, b, l, e) })
}

fn getpwent(buflen: usize) -> Reply<User> {
    // SAFETY: every argument is as glibc would pass it.
    call_passwd(buflen, |r, b, l, e| unsafe { _nss_lanyard_getpwent_r(r, b, l, e) })
}

fn getgrent(buflen: usize) -> Reply<GroupEntry> {
    // SAFETY: every argument is as glibc would pass it.
    call_group(buflen, 0, |r, b, l, e| unsafe { _nss_lanyard_getgrent_r(r, b, l, e) })
}

/// Calls initgroups_dyn with a `malloc`ed array holding `initial` (size = its length), as glibc
/// does; returns the status, errno and the array afterwards.
fn initgroups(user: &CStr, skip: gid_t, initial: &[gid_t], limit: c_long) -> (NssStatus, c_int, Vec<gid_t>, c_long) {
    let (mut start, mut size) = (initial.len() as c_long, initial.len() as c_long);
    let mut errno = UNTOUCHED;
    // SAFETY: a fresh allocation for `initial.len()` gids (at least one byte), filled before use,
    // read back within `start`, and freed once; the entry point gets what glibc would pass.
    unsafe {
        let mut groups = libc::malloc(size_of_val(initial).max(1)).cast::<gid_t>();
        assert!(!groups.is_null());
        groups.copy_from_nonoverlapping(initial.as_ptr(), initial.len());
        let status =
            _nss_lanyard_initgroups_dyn(user.as_ptr(), skip, &mut start, &mut size, &mut groups, limit, &mut errno);
        let after = std::slice::from_raw_parts(groups, start as usize).to_vec();
        libc::free(groups.cast());
        (status, errno, after, size)
    }
}

#[test]
fn the_shipped_socket_is_the_fixed_default() {
    assert_eq!(socket(), Path::new("/run/lanyard/socket"));
}

#[test]
fn getpwnam_r_fills_struct_passwd_from_the_agent_and_leaves_errno_alone() {
    let agent = FakeAgent::start(fake_agent::directory);
    use_agent(agent.path());
    let (status, errno, user) = getpwnam(c"alice", 1024);
    assert_eq!((status, errno), (NssStatus::Success, UNTOUCHED));
    let expected = User {
        name: "alice".into(),
        passwd: "x".into(),
        uid: 10001,
        gecos: "alice gecos".into(),
        dir: "/home/alice".into(),
        shell: "/bin/sh".into(),
    };
    assert_eq!(user, Some(expected));

    // SAFETY: every argument is as glibc would pass it.
    let (status, _, user) = call_passwd(1024, |r, b, l, e| unsafe { _nss_lanyard_getpwuid_r(10001, r, b, l, e) });
    assert_eq!((status, user.map(|u| u.name)), (NssStatus::Success, Some("alice".into())));
}

#[test]
fn getgrnam_r_and_getgrgid_r_lay_out_an_aligned_gr_mem_at_every_buffer_offset() {
    let agent = FakeAgent::start(fake_agent::directory);
    use_agent(agent.path());
    let staff = Some(("staff".to_owned(), 50, vec!["alice".to_owned(), "bob".to_owned()]));
    for misalign in 0..2 * size_of::<*mut c_char>() {
        // SAFETY: every argument is as glibc would pass it.
        let by_name =
            call_group(256, misalign, |r, b, l, e| unsafe { _nss_lanyard_getgrnam_r(c"staff".as_ptr(), r, b, l, e) });
        assert_eq!(by_name, (NssStatus::Success, UNTOUCHED, staff.clone()), "misaligned by {misalign}");
        // SAFETY: every argument is as glibc would pass it.
        let by_gid = call_group(256, misalign, |r, b, l, e| unsafe { _nss_lanyard_getgrgid_r(50, r, b, l, e) });
        assert_eq!(by_gid, (NssStatus::Success, UNTOUCHED, staff.clone()), "misaligned by {misalign}");
    }
}

#[test]
fn a_short_buffer_is_tryagain_with_erange_and_a_larger_one_succeeds() {
    let agent = FakeAgent::start(fake_agent::directory);
    use_agent(agent.path());
    assert_eq!(getpwnam(c"alice", 8), (NssStatus::TryAgain, libc::ERANGE, None));
    assert_eq!(getpwnam(c"alice", 0).1, libc::ERANGE);
    assert_eq!(getpwnam(c"alice", 64).0, NssStatus::Success);
}

#[test]
fn unknown_and_impossible_names_are_notfound_with_enoent() {
    let agent = FakeAgent::start(fake_agent::directory);
    use_agent(agent.path());
    assert_eq!(getpwnam(c"ghost", 1024), (NssStatus::NotFound, libc::ENOENT, None));
    assert_eq!(getpwnam(c"nul", 1024), (NssStatus::NotFound, libc::ENOENT, None), "a NUL byte in gecos");
    assert_eq!(agent.connections(), 2);
    for name in [c"\xff\xfe", c"*", c"", c"alice\n", c"r\xc3\xa9mi"] {
        assert_eq!(getpwnam(name, 1024), (NssStatus::NotFound, libc::ENOENT, None), "{name:?}");
    }
    // SAFETY: a null name; everything else as glibc would pass it.
    let null_name = call_passwd(1024, |r, b, l, e| unsafe { _nss_lanyard_getpwnam_r(ptr::null(), r, b, l, e) });
    assert_eq!(null_name, (NssStatus::NotFound, libc::ENOENT, None));
    assert_eq!(agent.connections(), 2, "no connection for a name nobody can have");
}

#[test]
fn null_pointers_are_answered_without_a_crash() {
    let agent = FakeAgent::start(fake_agent::directory);
    use_agent(agent.path());
    let mut pw = MaybeUninit::<passwd>::uninit();
    let mut buf = [0 as c_char; 256];
    let mut errno = UNTOUCHED;
    // SAFETY: null pointers are part of each entry point's contract; the others are valid.
    unsafe {
        let status = _nss_lanyard_getpwnam_r(c"alice".as_ptr(), ptr::null_mut(), buf.as_mut_ptr(), 256, &mut errno);
        assert_eq!((status, errno), (NssStatus::Unavail, libc::EINVAL));
        let status = _nss_lanyard_getpwnam_r(c"alice".as_ptr(), pw.as_mut_ptr(), ptr::null_mut(), 256, &mut errno);
        assert_eq!(status, NssStatus::Unavail);
        let status =
            _nss_lanyard_getpwnam_r(c"alice".as_ptr(), pw.as_mut_ptr(), buf.as_mut_ptr(), 256, ptr::null_mut());
        assert_eq!(status, NssStatus::Success, "a null errnop is simply not written");
        let mut groups: *mut gid_t = ptr::null_mut();
        let mut start: c_long = 0;
        let status =
            _nss_lanyard_initgroups_dyn(c"alice".as_ptr(), 0, &mut start, ptr::null_mut(), &mut groups, 0, &mut errno);
        assert_eq!(status, NssStatus::Unavail);
        let status = _nss_lanyard_initgroups_dyn(
            c"alice".as_ptr(),
            0,
            &mut start,
            &mut start.clone(),
            ptr::null_mut(),
            0,
            &mut errno,
        );
        assert_eq!(status, NssStatus::Unavail);
    }
    assert_eq!(agent.connections(), 1, "only the call with every pointer set asked the agent");
}

#[test]
fn without_an_agent_every_entry_point_is_unavailable_at_once() {
    let _turn = ENUMERATION.lock().unwrap_or_else(PoisonError::into_inner);
    use_agent(&fake_agent::scratch_dir().join("nobody-listens.sock"));
    let started = Instant::now();
    let unavailable = (NssStatus::Unavail, libc::ENOENT);
    let (status, errno, _) = getpwnam(c"alice", 1024);
    assert_eq!((status, errno), unavailable);
    // SAFETY: every argument is as glibc would pass it.
    let (status, errno, _) = call_passwd(1024, |r, b, l, e| unsafe { _nss_lanyard_getpwuid_r(0, r, b, l, e) });
    assert_eq!((status, errno), unavailable);
    // SAFETY: every argument is as glibc would pass it.
    let (status, errno, _) = call_group(1024, 0, |r, b, l, e| unsafe { _nss_lanyard_getgrgid_r(0, r, b, l, e) });
    assert_eq!((status, errno), unavailable);
    assert_eq!(_nss_lanyard_setpwent(0), NssStatus::Unavail);
    assert_eq!((getpwent(1024).0, getpwent(1024).1), unavailable);
    assert_eq!(_nss_lanyard_endpwent(), NssStatus::Success);
    assert_eq!(_nss_lanyard_setgrent(0), NssStatus::Unavail);
    assert_eq!((getgrent(1024).0, getgrent(1024).1), unavailable);
    assert_eq!(_nss_lanyard_endgrent(), NssStatus::Success);
    let (status, errno, groups, _) = initgroups(c"alice", 100, &[100], 0);
    assert_eq!(((status, errno), groups), (unavailable, vec![100]));
    assert!(started.elapsed() < Duration::from_millis(500), "{:?}", started.elapsed());
}

#[test]
fn enumeration_walks_every_page_retries_a_short_buffer_and_ends_with_notfound() {
    let _turn = ENUMERATION.lock().unwrap_or_else(PoisonError::into_inner);
    let agent = FakeAgent::start(fake_agent::directory);
    use_agent(agent.path());
    let name = |r: Reply<User>| r.2.map(|u| u.name);

    assert_eq!(_nss_lanyard_setpwent(0), NssStatus::Success);
    assert_eq!(name(getpwent(1024)), Some("alice".into()));
    assert_eq!(getpwent(10), (NssStatus::TryAgain, libc::ERANGE, None));
    assert_eq!(name(getpwent(1024)), Some("bob".into()), "the same entry after ERANGE");
    assert_eq!(name(getpwent(1024)), Some("carol".into()), "the entry with a NUL byte is skipped");
    for _ in 0..2 {
        assert_eq!(getpwent(1024), (NssStatus::NotFound, libc::ENOENT, None));
    }
    assert_eq!(_nss_lanyard_endpwent(), NssStatus::Success);

    // Without setpwent the enumeration starts by itself.
    assert_eq!(name(getpwent(1024)), Some("alice".into()));
    assert_eq!(_nss_lanyard_endpwent(), NssStatus::Success);

    assert_eq!(_nss_lanyard_setgrent(0), NssStatus::Success);
    let staff = ("staff".to_owned(), 50, vec!["alice".to_owned(), "bob".to_owned()]);
    assert_eq!(getgrent(1024), (NssStatus::Success, UNTOUCHED, Some(staff)));
    assert_eq!(getgrent(1024), (NssStatus::Success, UNTOUCHED, Some(("empty".to_owned(), 51, vec![]))));
    assert_eq!(getgrent(1024), (NssStatus::NotFound, libc::ENOENT, None));
    assert_eq!(_nss_lanyard_endgrent(), NssStatus::Success);

    let enumerations = agent.requests().into_iter().filter(|r| *r == lanyard_proto::Request::EnumerateUsers).count();
    assert_eq!(enumerations, 2);
}

#[test]
fn initgroups_dyn_appends_to_the_glibc_array_growing_it_with_realloc() {
    let agent = FakeAgent::start(fake_agent::directory);
    use_agent(agent.path());
    // The agent answers [100, 50, 51, 50, 7]; 100 is the primary group glibc put first.
    let (status, errno, groups, size) = initgroups(c"alice", 100, &[100], 0);
    assert_eq!((status, errno, groups), (NssStatus::Success, UNTOUCHED, vec![100, 50, 51, 7]));
    assert!(size >= 4);

    let (status, _, groups, size) = initgroups(c"alice", 100, &[100], 2);
    assert_eq!((status, groups, size), (NssStatus::Success, vec![100, 50], 2), "never past the limit");

    assert_eq!(initgroups(c"ghost", 100, &[100], 0).0, NssStatus::NotFound);
}

#[test]
fn a_panic_inside_an_entry_point_is_unavail_not_an_abort() {
    let mut errno = UNTOUCHED;
    let status = answer(Some(&mut errno), || -> Result<(), Error> { panic!("a bug") });
    assert_eq!((status, errno), (NssStatus::Unavail, libc::ENOENT));
}

/// Setting the variable in this process would race the other test threads (`set_var` is
/// unsafe for that reason), so the test runs itself again in a child that has it from the start.
#[test]
fn the_bypass_variable_makes_every_entry_point_unavailable_without_a_connection() {
    const NAME: &str = "ffi::tests::the_bypass_variable_makes_every_entry_point_unavailable_without_a_connection";
    if std::env::var_os(lanyard_proto::BYPASS_ENV).is_none() {
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--test-threads=1"])
            .env(lanyard_proto::BYPASS_ENV, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&child.stdout);
        assert!(child.status.success() && stdout.contains("1 passed"), "{stdout}");
        return;
    }
    let agent = FakeAgent::start(fake_agent::directory);
    use_agent(agent.path());
    let unavailable = (NssStatus::Unavail, libc::ENOENT);
    let (status, errno, _) = getpwnam(c"alice", 1024);
    assert_eq!((status, errno), unavailable);
    // SAFETY: every argument is as glibc would pass it.
    let by_gid = call_group(1024, 0, |r, b, l, e| unsafe { _nss_lanyard_getgrgid_r(50, r, b, l, e) });
    assert_eq!((by_gid.0, by_gid.1), unavailable);
    for status in [_nss_lanyard_setpwent(0), _nss_lanyard_endpwent(), _nss_lanyard_setgrent(0), _nss_lanyard_endgrent()]
    {
        assert_eq!(status, NssStatus::Unavail);
    }
    assert_eq!((getpwent(1024).0, getgrent(1024).0), (NssStatus::Unavail, NssStatus::Unavail));
    assert_eq!(initgroups(c"alice", 100, &[100], 0).0, NssStatus::Unavail);
    assert_eq!(agent.connections(), 0);
}
