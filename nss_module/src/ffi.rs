//! The symbols glibc looks up, and every `unsafe` of the crate (with its child module
//! `mapped`: the snapshot's read-only mapping).
//!
//! Each entry point is a shim: `answer` catches panics and applies the bypass rule, the raw
//! pointers become safe types (`c_name`, `Out`, `GlibcGroups`), one safe function does the
//! work, and [`status::status`] decides the `nss_status` and errno. Signatures follow
//! `NSS_DECLARE_MODULE_FUNCTIONS` in glibc's `<nss.h>`. The functions taking pointers are
//! `unsafe extern "C"`: from Rust they can only be called on glibc's promises (clippy's
//! `not_unsafe_ptr_arg_deref` would rightly reject them as safe functions); to glibc, calling
//! them through `dlsym`, the ABI is the same.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::ptr::{self, NonNull};

use libc::{c_char, c_int, c_long, gid_t, group, passwd, size_t, uid_t};

use crate::buffer::{PackedGroup, PackedPasswd};
use crate::enumerate;
use crate::lookup::{self, GidList};
use crate::status::{self, Error, NssStatus, Unavailable};

/// `getpwnam_r` for the `lanyard` source.
///
/// # Safety
/// glibc's contract: `name` is a NUL-terminated string, `result` is writable, `buffer` has
/// `buflen` writable bytes, `errnop` is writable; all for the duration of the call. Null
/// pointers are answered without being dereferenced.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _nss_lanyard_getpwnam_r(
    name: *const c_char,
    result: *mut passwd,
    buffer: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
) -> NssStatus {
    // SAFETY: `errnop` is null or glibc's writable errno (this function's contract).
    answer(unsafe { errnop.as_mut() }, || {
        // SAFETY: `name`, `result`, `buffer` and `buflen` are as this function's contract says.
        let (name, mut out) = unsafe { (c_name(name)?, Out::new(result, buffer, buflen)?) };
        let packed = lookup::user_by_name(&socket(), name, out.bytes())?;
        out.fill(&packed)
    })
}

/// `getpwuid_r`.
///
/// # Safety
/// As for [`_nss_lanyard_getpwnam_r`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _nss_lanyard_getpwuid_r(
    uid: uid_t,
    result: *mut passwd,
    buffer: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
) -> NssStatus {
    // SAFETY: `errnop` is null or glibc's writable errno (this function's contract).
    answer(unsafe { errnop.as_mut() }, || {
        // SAFETY: `result`, `buffer` and `buflen` are as this function's contract says.
        let mut out = unsafe { Out::new(result, buffer, buflen)? };
        let packed = lookup::user_by_uid(&socket(), uid, out.bytes())?;
        out.fill(&packed)
    })
}

/// `getgrnam_r`.
///
/// # Safety
/// As for [`_nss_lanyard_getpwnam_r`], with a `struct group`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _nss_lanyard_getgrnam_r(
    name: *const c_char,
    result: *mut group,
    buffer: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
) -> NssStatus {
    // SAFETY: `errnop` is null or glibc's writable errno (this function's contract).
    answer(unsafe { errnop.as_mut() }, || {
        // SAFETY: `name`, `result`, `buffer` and `buflen` are as this function's contract says.
        let (name, mut out) = unsafe { (c_name(name)?, Out::new(result, buffer, buflen)?) };
        let packed = lookup::group_by_name(&socket(), name, out.bytes())?;
        out.fill(&packed)
    })
}

/// `getgrgid_r`.
///
/// # Safety
/// As for [`_nss_lanyard_getpwnam_r`], with a `struct group`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _nss_lanyard_getgrgid_r(
    gid: gid_t,
    result: *mut group,
    buffer: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
) -> NssStatus {
    // SAFETY: `errnop` is null or glibc's writable errno (this function's contract).
    answer(unsafe { errnop.as_mut() }, || {
        // SAFETY: `result`, `buffer` and `buflen` are as this function's contract says.
        let mut out = unsafe { Out::new(result, buffer, buflen)? };
        let packed = lookup::group_by_gid(&socket(), gid, out.bytes())?;
        out.fill(&packed)
    })
}

/// `setpwent`. `stayopen` means nothing here: the stream stays open until `endpwent` anyway.
#[unsafe(no_mangle)]
pub extern "C" fn _nss_lanyard_setpwent(_stayopen: c_int) -> NssStatus {
    answer(None, || enumerate::start_users(&socket()))
}

/// `getpwent_r`.
///
/// # Safety
/// As for [`_nss_lanyard_getpwnam_r`], without a name.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _nss_lanyard_getpwent_r(
    result: *mut passwd,
    buffer: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
) -> NssStatus {
    // SAFETY: `errnop` is null or glibc's writable errno (this function's contract).
    answer(unsafe { errnop.as_mut() }, || {
        // SAFETY: `result`, `buffer` and `buflen` are as this function's contract says.
        let mut out = unsafe { Out::new(result, buffer, buflen)? };
        let packed = enumerate::next_user(&socket(), out.bytes())?;
        out.fill(&packed)
    })
}

/// `endpwent`.
#[unsafe(no_mangle)]
pub extern "C" fn _nss_lanyard_endpwent() -> NssStatus {
    answer(None, enumerate::end_users)
}

/// `setgrent`.
#[unsafe(no_mangle)]
pub extern "C" fn _nss_lanyard_setgrent(_stayopen: c_int) -> NssStatus {
    answer(None, || enumerate::start_groups(&socket()))
}

/// `getgrent_r`.
///
/// # Safety
/// As for [`_nss_lanyard_getpwnam_r`], with a `struct group` and without a name.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _nss_lanyard_getgrent_r(
    result: *mut group,
    buffer: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
) -> NssStatus {
    // SAFETY: `errnop` is null or glibc's writable errno (this function's contract).
    answer(unsafe { errnop.as_mut() }, || {
        // SAFETY: `result`, `buffer` and `buflen` are as this function's contract says.
        let mut out = unsafe { Out::new(result, buffer, buflen)? };
        let packed = enumerate::next_group(&socket(), out.bytes())?;
        out.fill(&packed)
    })
}

/// `endgrent`.
#[unsafe(no_mangle)]
pub extern "C" fn _nss_lanyard_endgrent() -> NssStatus {
    answer(None, enumerate::end_groups)
}

/// `initgroups_dyn`: appends `user`'s supplementary groups to glibc's array.
///
/// # Safety
/// glibc's contract: `user` is a NUL-terminated string; `start`, `size`, `groupsp` and `errnop`
/// are writable; `*groupsp` is a `malloc`ed array of `*size` gids whose first `*start` are set.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _nss_lanyard_initgroups_dyn(
    user: *const c_char,
    skipgroup: gid_t,
    start: *mut c_long,
    size: *mut c_long,
    groupsp: *mut *mut gid_t,
    limit: c_long,
    errnop: *mut c_int,
) -> NssStatus {
    // SAFETY: `errnop` is null or glibc's writable errno (this function's contract).
    answer(unsafe { errnop.as_mut() }, || {
        // SAFETY: `user`, `start`, `size` and `groupsp` are as this function's contract says.
        let (user, mut groups) = unsafe { (c_name(user)?, GlibcGroups::new(start, size, groupsp)?) };
        lookup::groups_of_user(&socket(), user, skipgroup, limit, &mut groups)
    })
}

/// Runs one entry point's work: declines at once for the agent itself, turns a panic into
/// UNAVAIL instead of unwinding into C (which would abort the host), sets errno.
fn answer<T>(errno: Option<&mut c_int>, work: impl FnOnce() -> Result<T, Error>) -> NssStatus {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        if bypassed() {
            return Err(Error::Unavailable(Unavailable::Bypassed));
        }
        work()
    }))
    .unwrap_or(Err(Error::Unavailable(Unavailable::Panicked)));
    let (status, code) = status::status(&outcome);
    if let (Some(errno), Some(code)) = (errno, code) {
        *errno = code;
    }
    status
}

/// Whether this process is the agent (or runs on its behalf) and must not ask the agent.
/// As with `secure_getenv`, the variable is ignored in a setuid or otherwise privileged program
/// (AT_SECURE: sudo, su), so a user cannot hide their own directory groups from it.
fn bypassed() -> bool {
    // SAFETY: getauxval reads the process's auxiliary vector; AT_SECURE is a valid key.
    let privileged = unsafe { libc::getauxval(libc::AT_SECURE) } != 0;
    !privileged && std::env::var_os(lanyard_proto::BYPASS_ENV).is_some()
}

/// The agent's socket. Always the fixed path in the shipped module: an override from the
/// environment would let any user feed made-up entries to setuid programs.
#[cfg(not(test))]
fn socket() -> PathBuf {
    PathBuf::from(lanyard_proto::DEFAULT_SOCKET)
}

/// In this crate's own tests, each test thread may point the entry points at a fake agent.
#[cfg(test)]
fn socket() -> PathBuf {
    tests::SOCKET.with(|socket| socket.borrow().clone())
}

/// The bytes of a C string; null is a name nobody has.
///
/// # Safety
/// `name` is null or points to a NUL-terminated string that stays valid and unchanged for `'a`.
unsafe fn c_name<'a>(name: *const c_char) -> Result<&'a [u8], Error> {
    if name.is_null() {
        return Err(Error::NotFound);
    }
    // SAFETY: not null, and the caller promises a NUL-terminated string living for 'a.
    Ok(unsafe { CStr::from_ptr(name) }.to_bytes())
}

/// glibc's result struct (`T` is `passwd` or `group`) and the buffer its strings go into,
/// checked once so the rest is safe.
struct Out<T> {
    result: NonNull<T>,
    buffer: NonNull<c_char>,
    len: usize,
}

impl<T> Out<T> {
    /// # Safety
    /// `result` is null or writable for one `T`; `buffer` is null or has `buflen` writable
    /// bytes; nothing else touches either while the returned `Out` lives.
    unsafe fn new(result: *mut T, buffer: *mut c_char, buflen: size_t) -> Result<Out<T>, Error> {
        let (Some(result), Some(buffer)) = (NonNull::new(result), NonNull::new(buffer)) else {
            return Err(Error::Unavailable(Unavailable::BadArguments));
        };
        if isize::try_from(buflen).is_err() {
            return Err(Error::Unavailable(Unavailable::BadArguments));
        }
        // SAFETY: the caller promises `buflen` writable bytes at `buffer`. glibc's buffer is
        // uninitialized memory; zeroing it lets `bytes` hand it out as a `&mut [u8]`.
        unsafe { buffer.as_ptr().write_bytes(0, buflen) };
        Ok(Out { result, buffer, len: buflen })
    }

    /// The whole buffer, for `buffer.rs` to pack into.
    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: `new` checked the pointer, the length (at most isize::MAX) and initialized
        // all `len` bytes; `&mut self` makes this the only view of them while it lives.
        unsafe { std::slice::from_raw_parts_mut(self.buffer.as_ptr().cast::<u8>(), self.len) }
    }

    /// The address of the byte at `offset` (an offset `buffer.rs` returned for this buffer).
    fn at(&self, offset: usize) -> *mut c_char {
        self.buffer.as_ptr().wrapping_add(offset)
    }
}

impl Out<passwd> {
    fn fill(self, p: &PackedPasswd) -> Result<(), Error> {
        let entry = passwd {
            pw_name: self.at(p.name),
            pw_passwd: self.at(p.passwd),
            pw_uid: p.uid,
            pw_gid: p.gid,
            pw_gecos: self.at(p.gecos),
            pw_dir: self.at(p.dir),
            pw_shell: self.at(p.shell),
        };
        // SAFETY: `result` is non-null (checked in `new`) and writable (its contract). `write`
        // does not read the old, possibly uninitialized, struct.
        unsafe { self.result.as_ptr().write(entry) };
        Ok(())
    }
}

impl Out<group> {
    fn fill(self, g: &PackedGroup) -> Result<(), Error> {
        let slots = g.members.len() + 1;
        let array = self.at(g.member_array).cast::<*mut c_char>();
        // buffer.rs aligned and sized the array; this check turns a bug there into UNAVAIL
        // instead of a misaligned write.
        let fits = slots
            .checked_mul(size_of::<*mut c_char>())
            .and_then(|len| g.member_array.checked_add(len))
            .is_some_and(|end| end <= self.len);
        if !array.is_aligned() || !fits {
            return Err(Error::Unavailable(Unavailable::Internal));
        }
        let members = g.members.iter().map(|&m| self.at(m)).chain([ptr::null_mut()]);
        for (i, member) in members.enumerate() {
            // SAFETY: `array` is aligned and has `slots` pointer slots inside the buffer (checked
            // above); i < slots. The `&mut [u8]` view from `bytes` is no longer alive.
            unsafe { array.add(i).write(member) };
        }
        let entry = group { gr_name: self.at(g.name), gr_passwd: self.at(g.passwd), gr_gid: g.gid, gr_mem: array };
        // SAFETY: `result` is non-null (checked in `new`) and writable (its contract).
        unsafe { self.result.as_ptr().write(entry) };
        Ok(())
    }
}

/// glibc's `(*start, *size, *groupsp)` gid array, as a [`GidList`].
struct GlibcGroups<'a> {
    start: &'a mut c_long,
    size: &'a mut c_long,
    groups: &'a mut *mut gid_t,
}

impl<'a> GlibcGroups<'a> {
    /// # Safety
    /// Each pointer is null or writable for `'a`; `*groupsp` is null or a `malloc`ed array of
    /// `*size` gids whose first `*start` are initialized.
    unsafe fn new(start: *mut c_long, size: *mut c_long, groupsp: *mut *mut gid_t) -> Result<Self, Error> {
        // SAFETY: null or writable and properly aligned (the caller's promise).
        let (start, size, groups) = unsafe { (start.as_mut(), size.as_mut(), groupsp.as_mut()) };
        let (Some(start), Some(size), Some(groups)) = (start, size, groups) else {
            return Err(Error::Unavailable(Unavailable::BadArguments));
        };
        // Refuse what cannot be glibc's array rather than write outside it.
        if *start < 0 || *start > *size || (groups.is_null() && *start > 0) {
            return Err(Error::Unavailable(Unavailable::BadArguments));
        }
        Ok(GlibcGroups { start, size, groups })
    }

    fn len(&self) -> usize {
        usize::try_from(*self.start).unwrap_or(0)
    }
}

impl GidList for GlibcGroups<'_> {
    fn as_slice(&self) -> &[gid_t] {
        if self.groups.is_null() {
            return &[];
        }
        // SAFETY: glibc's array holds `*size` gids, the first `*start` initialized, and
        // 0 <= *start <= *size (checked in `new`, kept by `push`).
        unsafe { std::slice::from_raw_parts(*self.groups, self.len()) }
    }

    fn capacity(&self) -> usize {
        if self.groups.is_null() { 0 } else { usize::try_from(*self.size).unwrap_or(0) }
    }

    fn grow(&mut self, capacity: usize) -> Result<(), Error> {
        let bytes = capacity.checked_mul(size_of::<gid_t>()).filter(|&b| b > 0).ok_or(Error::NoMemory)?;
        let new_size = c_long::try_from(capacity).map_err(|_| Error::NoMemory)?;
        // SAFETY: `*groups` is null or glibc's `malloc`ed array (the contract of `new`); glibc
        // takes back whatever `*groupsp` points to after the call. On failure realloc leaves
        // the old array alone, and so do we.
        let grown = unsafe { libc::realloc((*self.groups).cast(), bytes) };
        if grown.is_null() {
            return Err(Error::NoMemory);
        }
        *self.groups = grown.cast();
        *self.size = new_size;
        Ok(())
    }

    fn push(&mut self, gid: gid_t) {
        let len = self.len();
        if len >= self.capacity() {
            return; // `append_gids` grows first; never write past the array regardless
        }
        // SAFETY: len < capacity, so the slot is inside glibc's array (non-null, as capacity > 0).
        unsafe { self.groups.add(len).write(gid) };
        *self.start += 1;
    }
}

mod mapped;
pub use mapped::MappedFile;

#[cfg(test)]
mod tests;
