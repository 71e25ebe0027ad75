//! `lanyard-nss-threads THREADS MAX_ITERATIONS STOP_FILE READY_FILE FORKS`: hammers the name
//! service from THREADS threads with glibc's own `getpwnam_r`, `getpwuid_r`, `getgrnam_r`,
//! `getgrgid_r` and `getgrouplist` (so through nsswitch and whatever module it loads), and checks
//! every field of every answer against the fixture (`lanyard_tests::fixture`).
//!
//! Written for the snapshot test: while it runs, the test makes the agent replace its snapshot
//! many times; a reader that ever saw a half-written file, a file unmapped under it, or one
//! record's bytes mixed with another's would print a mismatch here.
//!
//! Each thread runs until STOP_FILE exists or it has done MAX_ITERATIONS lookups (a bound, in
//! case the test never creates the file). READY_FILE is created once every thread has answered
//! at least once, so the test starts replacing files only while lookups are under way. While the
//! threads run, the main thread forks FORKS children one after another (0: none); each does its
//! own lookups with the same checks and reports through its exit status only (after `fork` in a
//! threaded program, printing could block on a lock some other thread held).
//!
//! Prints `lookups=N mismatches=N errors=N forks=N fork_failures=N` and the first few problems;
//! exits 0 only when there were no mismatches, no errors and every child passed. 2 for usage.
//!
//! Every `unsafe` of the program is in [`ffi`].

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lanyard_tests::fixture::{self, ALICE, BOB, JOSE};

/// Problems printed in full; the rest are only counted.
const SHOWN_PROBLEMS: usize = 10;
/// Lookups each forked child does.
const CHILD_LOOKUPS: u64 = 200;
/// How long a forked child may take before it counts as hung (and is killed): a bound, not a
/// measurement; its lookups normally take milliseconds.
const CHILD_LIMIT: Duration = Duration::from_secs(20);
/// Pause between two forks, so the children are spread over the run.
const FORK_SPACING: Duration = Duration::from_millis(20);

/// One lookup and what the directory says it must return.
#[derive(Debug, Clone)]
enum Check {
    UserByName(String, Option<fixture::UserEntry>),
    UserByUid(u32, Option<fixture::UserEntry>),
    GroupByName(String, fixture::GroupEntry),
    GroupByGid(u32, fixture::GroupEntry),
    /// `getgrouplist(name, primary)`: the primary group and every group listing the user.
    GroupList(String, u32, BTreeSet<u32>),
}

/// What the name service answered, copied out of the C structures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    User { name: String, passwd: String, uid: u32, gid: u32, gecos: String, dir: String, shell: String },
    Group { name: String, passwd: String, gid: u32, members: Vec<String> },
    Gids(BTreeSet<u32>),
    NotFound,
}

fn user(entry: &fixture::UserEntry) -> Found {
    Found::User {
        name: entry.name.clone(),
        passwd: "x".into(),
        uid: entry.uid,
        gid: entry.gid,
        gecos: entry.gecos.clone(),
        dir: entry.home.clone(),
        shell: entry.shell.clone(),
    }
}

fn group(entry: &fixture::GroupEntry) -> Found {
    let mut members = entry.members.clone();
    members.sort();
    Found::Group { name: entry.name.clone(), passwd: "x".into(), gid: entry.gid, members }
}

/// Named users (ASCII and not), bulk users spread over the range, small and huge groups, group
/// lists, and names and ids that do not exist (which the module must never invent).
fn checks() -> Vec<Check> {
    let users = fixture::users();
    let by_name = |name: &str| users.iter().find(|u| u.name == name).cloned();
    let groups = fixture::groups();
    let group_named = |name: &str| groups.iter().find(|g| g.name == name).cloned().unwrap_or_else(|| panic!("{name}"));
    let mut checks = Vec::new();
    for named in [ALICE, BOB, JOSE] {
        let entry = fixture::UserEntry::from(named);
        checks.push(Check::UserByName(entry.name.clone(), Some(entry.clone())));
        checks.push(Check::UserByUid(entry.uid, Some(entry)));
    }
    for i in [1, 50, 100, 150, 200, 250, 300] {
        let name = fixture::bulk_user_name(i);
        let entry = by_name(&name);
        checks.push(Check::UserByName(name, entry.clone()));
        checks.push(Check::UserByUid(fixture::BULK_FIRST_UID + i - 1, entry));
    }
    for name in ["developers", "admins", "empty"] {
        checks.push(Check::GroupByName(name.into(), group_named(name)));
    }
    for name in ["developers", "ops", "biggroup"] {
        let entry = group_named(name);
        checks.push(Check::GroupByGid(entry.gid, entry));
    }
    for name in ["alice", "bob"] {
        let mut gids: BTreeSet<u32> = fixture::supplementary_groups(name).into_iter().map(|(_, gid)| gid).collect();
        gids.insert(fixture::STAFF.gid);
        checks.push(Check::GroupList(name.into(), fixture::STAFF.gid, gids));
    }
    checks.push(Check::UserByName("nosuchuser".into(), None));
    checks.push(Check::UserByUid(29_999, None));
    checks
}

impl Check {
    fn expected(&self) -> Found {
        match self {
            Check::UserByName(_, Some(entry)) | Check::UserByUid(_, Some(entry)) => user(entry),
            Check::UserByName(_, None) | Check::UserByUid(_, None) => Found::NotFound,
            Check::GroupByName(_, entry) | Check::GroupByGid(_, entry) => group(entry),
            Check::GroupList(_, _, gids) => Found::Gids(gids.clone()),
        }
    }

    fn run(&self) -> Result<Found, String> {
        match self {
            Check::UserByName(name, _) => ffi::getpwnam(name),
            Check::UserByUid(uid, _) => ffi::getpwuid(*uid),
            Check::GroupByName(name, _) => ffi::getgrnam(name),
            Check::GroupByGid(gid, _) => ffi::getgrgid(*gid),
            Check::GroupList(name, primary, _) => ffi::getgrouplist(name, *primary),
        }
    }
}

/// Counts shared by the threads (a child keeps its own copy and reports by exit status).
#[derive(Default)]
struct Tally {
    lookups: AtomicU64,
    mismatches: AtomicU64,
    errors: AtomicU64,
    problems: Mutex<Vec<String>>,
}

impl Tally {
    /// Runs one check and records the outcome; false if it was wrong.
    fn check(&self, check: &Check, record: bool) -> bool {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let (counter, problem) = match check.run() {
            Ok(found) if found == check.expected() => return true,
            Ok(found) => (&self.mismatches, format!("{check:?}: got {found:?}")),
            Err(why) => (&self.errors, format!("{check:?}: {why}")),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if record {
            let mut problems = self.problems.lock().unwrap_or_else(|p| p.into_inner());
            if problems.len() < SHOWN_PROBLEMS {
                problems.push(problem);
            }
        }
        false
    }
}

struct Args {
    threads: usize,
    max_iterations: u64,
    stop: PathBuf,
    ready: PathBuf,
    forks: usize,
}

fn parse_args() -> Option<Args> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [threads, max_iterations, stop, ready, forks] = args.as_slice() else { return None };
    Some(Args {
        threads: threads.parse().ok().filter(|&t| t > 0)?,
        max_iterations: max_iterations.parse().ok()?,
        stop: stop.into(),
        ready: ready.into(),
        forks: forks.parse().ok()?,
    })
}

fn main() -> ExitCode {
    let Some(args) = parse_args() else {
        eprintln!("usage: lanyard-nss-threads THREADS MAX_ITERATIONS STOP_FILE READY_FILE FORKS");
        return ExitCode::from(2);
    };
    let checks = checks();
    let tally = Tally::default();
    let started = AtomicUsize::new(0);
    let mut forks_run = 0usize;
    let mut fork_failures = 0usize;
    std::thread::scope(|scope| {
        for thread in 0..args.threads {
            let (checks, tally, started, stop) = (&checks, &tally, &started, &args.stop);
            scope.spawn(move || {
                for i in 0..args.max_iterations {
                    // Each thread walks the list from its own place, so different lookups race.
                    let check = &checks[(thread * 7 + i as usize) % checks.len()];
                    tally.check(check, true);
                    if i == 0 {
                        started.fetch_add(1, Ordering::SeqCst);
                    }
                    // One stat every 64 lookups: cheap next to the lookups themselves.
                    if i % 64 == 63 && stop.exists() {
                        break;
                    }
                }
            });
        }
        // The main thread waits (bounded) for every thread's first answer, then announces that
        // lookups are under way, then forks.
        let wait_start = Instant::now();
        while started.load(Ordering::SeqCst) < args.threads && wait_start.elapsed() < CHILD_LIMIT {
            std::thread::sleep(Duration::from_millis(1));
        }
        if let Err(e) = std::fs::write(&args.ready, b"ready\n") {
            eprintln!("lanyard-nss-threads: writing {}: {e}", args.ready.display());
        }
        for _ in 0..args.forks {
            if args.stop.exists() {
                break;
            }
            forks_run += 1;
            if !run_child(&checks) {
                fork_failures += 1;
            }
            std::thread::sleep(FORK_SPACING);
        }
    });
    let problems = tally.problems.lock().unwrap_or_else(|p| p.into_inner());
    for problem in problems.iter() {
        eprintln!("{problem}");
    }
    let (lookups, mismatches, errors) = (
        tally.lookups.load(Ordering::Relaxed),
        tally.mismatches.load(Ordering::Relaxed),
        tally.errors.load(Ordering::Relaxed),
    );
    println!(
        "lookups={lookups} mismatches={mismatches} errors={errors} forks={forks_run} fork_failures={fork_failures}"
    );
    if mismatches == 0 && errors == 0 && fork_failures == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// Forks a child that does [`CHILD_LOOKUPS`] checked lookups while this process's threads keep
/// going, and waits for it (bounded). True if it passed.
fn run_child(checks: &[Check]) -> bool {
    let child = ffi::fork_with(|| {
        let tally = Tally::default();
        let mut ok = true;
        for i in 0..CHILD_LOOKUPS {
            // No recording: that takes a lock another thread may have held at the fork.
            ok &= tally.check(&checks[i as usize % checks.len()], false);
        }
        if ok { 0 } else { 1 }
    });
    let Ok(child) = child else { return false };
    let start = Instant::now();
    loop {
        match ffi::try_wait(child) {
            Ok(Some(status)) => return status == 0,
            Ok(None) if start.elapsed() < CHILD_LIMIT => std::thread::sleep(Duration::from_millis(2)),
            // Hung (a lock inherited from another thread, say) or lost: a failure; kill it.
            _ => {
                ffi::kill_and_reap(child);
                eprintln!("lanyard-nss-threads: forked child {child} did not finish within {CHILD_LIMIT:?}");
                return false;
            }
        }
    }
}

/// The C calls: glibc's reentrant lookups with a buffer grown on ERANGE, `getgrouplist`, and
/// `fork`/`waitpid`.
mod ffi {
    use std::ffi::{CStr, CString, c_char, c_int};

    use super::Found;

    const FIRST_BUFFER: usize = 1024;
    /// biggroup's 5001 members fit in well under this.
    const MAX_BUFFER: usize = 16 << 20;
    const MAX_GROUPS: usize = 1 << 16;

    /// Copies a C string the module put in the caller's buffer.
    ///
    /// # Safety
    /// `ptr` is null or points to a NUL-terminated string that lives for the call.
    unsafe fn text(ptr: *const c_char) -> Result<String, String> {
        if ptr.is_null() {
            return Err("a null string in a found entry".into());
        }
        // SAFETY: not null, and NUL-terminated by the caller's contract.
        let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("not UTF-8: {bytes:?}"))
    }

    /// Calls `call(buffer, len, &mut result)` (a `get*_r`) with a growing buffer until it stops
    /// saying ERANGE; Ok(true) when it found an entry, Ok(false) when it said "not found".
    fn with_buffer(mut call: impl FnMut(*mut c_char, usize) -> (c_int, bool)) -> Result<bool, String> {
        let mut len = FIRST_BUFFER;
        loop {
            let mut buffer = vec![0 as c_char; len];
            let (rc, found) = call(buffer.as_mut_ptr(), len);
            match rc {
                0 => return Ok(found),
                libc::ERANGE if len < MAX_BUFFER => len *= 2,
                rc => return Err(format!("returned {rc} ({})", std::io::Error::from_raw_os_error(rc))),
            }
        }
    }

    fn c_name(name: &str) -> Result<CString, String> {
        CString::new(name).map_err(|_| format!("{name:?} holds a NUL"))
    }

    /// # Safety
    /// `pw` was filled by a successful `getpw*_r` whose buffer is still alive.
    unsafe fn passwd(pw: &libc::passwd) -> Result<Found, String> {
        // SAFETY: the fields point into the live buffer (caller's contract).
        unsafe {
            Ok(Found::User {
                name: text(pw.pw_name)?,
                passwd: text(pw.pw_passwd)?,
                uid: pw.pw_uid,
                gid: pw.pw_gid,
                gecos: text(pw.pw_gecos)?,
                dir: text(pw.pw_dir)?,
                shell: text(pw.pw_shell)?,
            })
        }
    }

    /// # Safety
    /// `gr` was filled by a successful `getgr*_r` whose buffer is still alive.
    unsafe fn group(gr: &libc::group) -> Result<Found, String> {
        if gr.gr_mem.is_null() {
            return Err("gr_mem is null".into());
        }
        let mut members = Vec::new();
        for i in 0.. {
            // SAFETY: gr_mem is a null-terminated array inside the live buffer; `i` never passes
            // its terminator (the loop ends there).
            let member = unsafe { *gr.gr_mem.add(i) };
            if member.is_null() {
                break;
            }
            // SAFETY: a member string inside the live buffer.
            members.push(unsafe { text(member) }?);
        }
        members.sort();
        // SAFETY: the fields point into the live buffer (caller's contract).
        unsafe { Ok(Found::Group { name: text(gr.gr_name)?, passwd: text(gr.gr_passwd)?, gid: gr.gr_gid, members }) }
    }

    pub fn getpwnam(name: &str) -> Result<Found, String> {
        let name = c_name(name)?;
        // SAFETY: an all-zero passwd is valid (null pointers, zero ids).
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut copied = Err(String::new());
        let found = with_buffer(|buf, len| {
            let mut result = std::ptr::null_mut();
            // SAFETY: name is NUL-terminated, pw and result writable, buf has len bytes; all
            // live across the call.
            let rc = unsafe { libc::getpwnam_r(name.as_ptr(), &mut pw, buf, len, &mut result) };
            if rc == 0 && !result.is_null() {
                // SAFETY: a successful call filled pw with pointers into buf, still alive here.
                copied = unsafe { passwd(&pw) };
            }
            (rc, !result.is_null())
        })?;
        if found { copied } else { Ok(Found::NotFound) }
    }

    pub fn getpwuid(uid: u32) -> Result<Found, String> {
        // SAFETY: as in getpwnam.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut copied = Err(String::new());
        let found = with_buffer(|buf, len| {
            let mut result = std::ptr::null_mut();
            // SAFETY: pw and result writable, buf has len bytes; all live across the call.
            let rc = unsafe { libc::getpwuid_r(uid, &mut pw, buf, len, &mut result) };
            if rc == 0 && !result.is_null() {
                // SAFETY: as in getpwnam.
                copied = unsafe { passwd(&pw) };
            }
            (rc, !result.is_null())
        })?;
        if found { copied } else { Ok(Found::NotFound) }
    }

    pub fn getgrnam(name: &str) -> Result<Found, String> {
        let name = c_name(name)?;
        // SAFETY: an all-zero group is valid (null pointers, zero gid).
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut copied = Err(String::new());
        let found = with_buffer(|buf, len| {
            let mut result = std::ptr::null_mut();
            // SAFETY: name is NUL-terminated, gr and result writable, buf has len bytes.
            let rc = unsafe { libc::getgrnam_r(name.as_ptr(), &mut gr, buf, len, &mut result) };
            if rc == 0 && !result.is_null() {
                // SAFETY: a successful call filled gr with pointers into buf, still alive here.
                copied = unsafe { group(&gr) };
            }
            (rc, !result.is_null())
        })?;
        if found { copied } else { Ok(Found::NotFound) }
    }

    pub fn getgrgid(gid: u32) -> Result<Found, String> {
        // SAFETY: as in getgrnam.
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut copied = Err(String::new());
        let found = with_buffer(|buf, len| {
            let mut result = std::ptr::null_mut();
            // SAFETY: gr and result writable, buf has len bytes; all live across the call.
            let rc = unsafe { libc::getgrgid_r(gid, &mut gr, buf, len, &mut result) };
            if rc == 0 && !result.is_null() {
                // SAFETY: as in getgrnam.
                copied = unsafe { group(&gr) };
            }
            (rc, !result.is_null())
        })?;
        if found { copied } else { Ok(Found::NotFound) }
    }

    /// `getgrouplist`, growing the array as it asks.
    pub fn getgrouplist(name: &str, primary: u32) -> Result<Found, String> {
        let name = c_name(name)?;
        let mut groups: Vec<libc::gid_t> = vec![0; 16];
        loop {
            let mut count = c_int::try_from(groups.len()).map_err(|_| "too many groups")?;
            // SAFETY: name is NUL-terminated; groups has `count` writable gids; count writable.
            let rc = unsafe { libc::getgrouplist(name.as_ptr(), primary, groups.as_mut_ptr(), &mut count) };
            let count = usize::try_from(count).map_err(|_| format!("negative count {count}"))?;
            if rc >= 0 {
                return Ok(Found::Gids(groups[..count.min(groups.len())].iter().copied().collect()));
            }
            if count <= groups.len() || count > MAX_GROUPS {
                return Err(format!("getgrouplist returned {rc} with count {count}"));
            }
            groups.resize(count, 0);
        }
    }

    /// Forks; the child runs `body` and `_exit`s with its value (never returning into the
    /// parent's code, never running destructors or atexit handlers that belong to the parent).
    pub fn fork_with(body: impl FnOnce() -> c_int) -> Result<libc::pid_t, String> {
        // SAFETY: fork has no preconditions. In the child only this thread exists; `body`
        // uses what stays usable after fork in a threaded program with glibc (malloc and NSS
        // have fork handlers; the module is designed for it) and writes nothing to stdout.
        match unsafe { libc::fork() } {
            -1 => Err(format!("fork: {}", std::io::Error::last_os_error())),
            0 => {
                let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or(3);
                // SAFETY: _exit ends the child at once, which is what a forked child must do.
                unsafe { libc::_exit(code) }
            }
            pid => Ok(pid),
        }
    }

    /// The child's exit code once it has exited (128 + signal if a signal ended it).
    pub fn try_wait(pid: libc::pid_t) -> Result<Option<c_int>, String> {
        let mut status: c_int = 0;
        // SAFETY: waitpid on our own child with a writable status.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        match rc {
            0 => Ok(None),
            rc if rc == pid => {
                Ok(Some(if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) }))
            }
            _ => Err(format!("waitpid({pid}): {}", std::io::Error::last_os_error())),
        }
    }

    /// SIGKILL to our own unreaped child, then reaps it.
    pub fn kill_and_reap(pid: libc::pid_t) {
        // SAFETY: `pid` is our child and not reaped yet, so it names no other process.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let mut status: c_int = 0;
        // SAFETY: waitpid on our own child with a writable status.
        unsafe { libc::waitpid(pid, &mut status, 0) };
    }
}
