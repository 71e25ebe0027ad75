//! The symbols libpam looks up, and every `unsafe` of the crate.
//!
//! Each `pam_sm_*` function is a shim: `run` catches panics, turns `argv` into [`Options`]
//! and the handle into `LibPam` (the [`Pam`] trait over libpam), calls one phase, and maps
//! its result through that phase's function in [`status`]. Signatures are Linux-PAM's
//! (`<security/pam_modules.h>`; pam-sys leaves the `pam_sm_*` prototypes out). The functions
//! taking pointers are `unsafe extern "C"`: from Rust they may only be called on libpam's
//! promises; to libpam, calling them through `dlsym`, the ABI is the same.
//!
//! Conversation answers are copied into a [`Secret`] and the application's buffer is
//! overwritten with volatile writes before it is freed, as libpam's `_pam_overwrite` does.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::ptr::{self, NonNull};
use std::sync::atomic::{Ordering, compiler_fence};

use lanyard_proto::Secret;
use libc::{c_char, c_int};
use pam_sys::{
    PAM_AUTHTOK, PAM_CONV, PAM_CONV_ERR, PAM_ERROR_MSG, PAM_OLDAUTHTOK, PAM_PROMPT_ECHO_OFF, PAM_RHOST, PAM_RUSER,
    PAM_SERVICE, PAM_SERVICE_ERR, PAM_SUCCESS, PAM_TEXT_INFO, PAM_TTY, pam_conv, pam_handle_t, pam_message,
    pam_response,
};

use crate::handle::{Flags, Notice, Pam, TextItem, Token};
use crate::options::Options;
use crate::status::{self, Error};
use crate::{account, auth, password, session};

/// `auth` in a PAM stack.
///
/// # Safety
/// libpam's contract for every module function: `pamh` is the handle of the transaction
/// making the call, valid throughout it, and `argv` holds `argc` NUL-terminated strings. A
/// null `pamh` or `argv` is answered without being dereferenced.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pam_sm_authenticate(
    pamh: *mut pam_handle_t,
    flags: c_int,
    argc: c_int,
    argv: *mut *const c_char,
) -> c_int {
    // SAFETY: this function's contract is `run`'s.
    unsafe { run(pamh, flags, argc, argv, auth::authenticate, status::auth) }
}

/// `auth`'s second call, after a successful stack: nothing to establish.
///
/// # Safety
/// As for [`pam_sm_authenticate`]; no pointer is used.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pam_sm_setcred(
    _pamh: *mut pam_handle_t,
    _flags: c_int,
    _argc: c_int,
    _argv: *mut *const c_char,
) -> c_int {
    catch_unwind(status::setcred).unwrap_or(PAM_SERVICE_ERR)
}

/// `account` in a PAM stack.
///
/// # Safety
/// As for [`pam_sm_authenticate`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pam_sm_acct_mgmt(
    pamh: *mut pam_handle_t,
    flags: c_int,
    argc: c_int,
    argv: *mut *const c_char,
) -> c_int {
    // SAFETY: this function's contract is `run`'s.
    unsafe { run(pamh, flags, argc, argv, account::check, status::account) }
}

/// `password` in a PAM stack; libpam calls it twice (`PAM_PRELIM_CHECK`, `PAM_UPDATE_AUTHTOK`).
///
/// # Safety
/// As for [`pam_sm_authenticate`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pam_sm_chauthtok(
    pamh: *mut pam_handle_t,
    flags: c_int,
    argc: c_int,
    argv: *mut *const c_char,
) -> c_int {
    // SAFETY: this function's contract is `run`'s.
    unsafe { run(pamh, flags, argc, argv, password::change, status::password) }
}

/// `session` in a PAM stack, at login.
///
/// # Safety
/// As for [`pam_sm_authenticate`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pam_sm_open_session(
    pamh: *mut pam_handle_t,
    flags: c_int,
    argc: c_int,
    argv: *mut *const c_char,
) -> c_int {
    let open =
        |pam: &mut LibPam, options: &Options, flags| session::open(pam, options, flags, Path::new(session::SKEL));
    // SAFETY: this function's contract is `run`'s.
    unsafe { run(pamh, flags, argc, argv, open, status::session) }
}

/// `session` in a PAM stack, at logout: nothing to undo.
///
/// # Safety
/// As for [`pam_sm_authenticate`]; no pointer is used.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pam_sm_close_session(
    _pamh: *mut pam_handle_t,
    _flags: c_int,
    _argc: c_int,
    _argv: *mut *const c_char,
) -> c_int {
    catch_unwind(status::close_session).unwrap_or(PAM_SERVICE_ERR)
}

/// Runs one phase: a panic becomes [`Error::Panicked`] instead of unwinding into C (which
/// would abort sshd), and `status` decides the code, outside the catch.
///
/// # Safety
/// `pamh` is null or a live PAM handle for the duration of the call; `argv` is null or holds
/// `argc` pointers, each null or a NUL-terminated string, alive for the call.
unsafe fn run<T>(
    pamh: *mut pam_handle_t,
    flags: c_int,
    argc: c_int,
    argv: *mut *const c_char,
    phase: impl FnOnce(&mut LibPam, &Options, Flags) -> Result<T, Error>,
    status: fn(&Result<T, Error>, &Options) -> c_int,
) -> c_int {
    let mut options = Options::default();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `argv` and `argc` are as this function's contract says.
        options = Options::parse(unsafe { arguments(argc, argv) });
        // SAFETY: `pamh` is as this function's contract says.
        let mut pam = unsafe { LibPam::new(pamh) }.ok_or(Error::Internal)?;
        phase(&mut pam, &options, Flags::from_bits(flags))
    }))
    .unwrap_or(Err(Error::Panicked));
    status(&outcome, &options)
}

/// The module arguments as byte strings.
///
/// # Safety
/// As for [`run`]'s `argc` and `argv`; the strings outlive `'a`.
unsafe fn arguments<'a>(argc: c_int, argv: *mut *const c_char) -> Vec<&'a [u8]> {
    let Ok(count) = usize::try_from(argc) else { return Vec::new() };
    if argv.is_null() || count == 0 {
        return Vec::new();
    }
    // SAFETY: `argv` is non-null and holds `argc` pointers (the contract).
    let pointers = unsafe { std::slice::from_raw_parts(argv.cast_const(), count) };
    let strings = pointers.iter().filter(|p| !p.is_null());
    // SAFETY: each non-null pointer is a NUL-terminated string alive for 'a (the contract).
    strings.map(|&p| unsafe { CStr::from_ptr(p) }.to_bytes()).collect()
}

/// [`Pam`] over libpam: one transaction's handle, for one call.
struct LibPam {
    pamh: NonNull<pam_handle_t>,
}

impl LibPam {
    /// # Safety
    /// `pamh` is null or a live PAM handle that outlives the returned value.
    unsafe fn new(pamh: *mut pam_handle_t) -> Option<LibPam> {
        NonNull::new(pamh).map(|pamh| LibPam { pamh })
    }

    /// `pam_get_item`: libpam's own pointer, null when the item is unset.
    fn item(&self, item: c_int) -> Result<*const c_void, Error> {
        let mut value: *const c_void = ptr::null();
        // SAFETY: `pamh` is live (the contract of `new`); `value` is a valid out-pointer.
        let rc = unsafe { pam_sys::pam_get_item(self.pamh.as_ptr(), item, &mut value) };
        if rc == PAM_SUCCESS { Ok(value) } else { Err(Error::Pam(rc)) }
    }

    /// A string item's bytes, copied (libpam may free its copy when the item changes).
    fn bytes(&self, item: c_int) -> Result<Option<&[u8]>, Error> {
        let value = self.item(item)?.cast::<c_char>();
        if value.is_null() {
            return Ok(None);
        }
        // SAFETY: string items are NUL-terminated and stay valid until the item is set again,
        // which needs `&mut self`: not while the returned borrow of `self` lives.
        Ok(Some(unsafe { CStr::from_ptr(value) }.to_bytes()))
    }

    /// One message through the application's conversation; its answer, if any.
    fn converse(&mut self, style: c_int, text: &str) -> Result<Option<Secret>, Error> {
        let conv = self.item(PAM_CONV)?.cast::<pam_conv>();
        // SAFETY: the PAM_CONV item is null or the application's pam_conv, alive for the
        // whole transaction.
        let Some(conv) = (unsafe { conv.as_ref() }) else { return Err(Error::Pam(PAM_CONV_ERR)) };
        let Some(function) = conv.conv else { return Err(Error::Pam(PAM_CONV_ERR)) };
        let text = CString::new(text.replace('\0', " ")).map_err(|_| Error::Internal)?;
        let message = pam_message { msg_style: style, msg: text.as_ptr() };
        let mut messages = [&raw const message];
        let mut responses: *mut pam_response = ptr::null_mut();
        // SAFETY: one message, in an array that outlives the call; `responses` is a valid
        // out-pointer; `appdata_ptr` goes back to the application unchanged.
        let rc = unsafe { function(1, messages.as_mut_ptr(), &mut responses, conv.appdata_ptr) };
        // SAFETY: per the conversation contract `responses` is null or a malloc'ed array for
        // our one message, now ours. Taken whatever the code, as libpam's pam_vprompt does.
        let answer = unsafe { take_response(responses) };
        if rc != PAM_SUCCESS {
            return Err(Error::Pam(rc));
        }
        Ok(answer)
    }
}

impl Pam for LibPam {
    fn user(&mut self) -> Result<Vec<u8>, Error> {
        let mut user: *const c_char = ptr::null();
        // SAFETY: `pamh` is live; `user` is a valid out-pointer; a null prompt means libpam's.
        let rc = unsafe { pam_sys::pam_get_user(self.pamh.as_ptr(), &mut user, ptr::null()) };
        if rc != PAM_SUCCESS {
            return Err(Error::Pam(rc));
        }
        if user.is_null() {
            return Ok(Vec::new()); // an empty name: not a login name
        }
        // SAFETY: libpam's PAM_USER string, NUL-terminated, valid until the item changes;
        // copied at once.
        Ok(unsafe { CStr::from_ptr(user) }.to_bytes().to_vec())
    }

    fn text(&self, item: TextItem) -> Option<String> {
        let item = match item {
            TextItem::Service => PAM_SERVICE,
            TextItem::Rhost => PAM_RHOST,
            TextItem::Tty => PAM_TTY,
            TextItem::Ruser => PAM_RUSER,
        };
        let bytes = self.bytes(item).ok().flatten()?;
        Some(String::from_utf8_lossy(bytes).into_owned())
    }

    fn token(&self, token: Token) -> Result<Option<Secret>, Error> {
        Ok(self.bytes(token_item(token))?.map(|bytes| Secret::new(bytes.to_vec())))
    }

    fn set_token(&mut self, token: Token, value: &Secret) -> Result<(), Error> {
        // Conversation answers cannot hold a NUL; a C string could not carry one anyway.
        if value.expose().contains(&0) {
            return Err(Error::Internal);
        }
        let mut bytes = Vec::with_capacity(value.expose().len() + 1);
        bytes.extend_from_slice(value.expose());
        bytes.push(0);
        let c_string = Secret::new(bytes); // wiped when dropped
        let item = c_string.expose().as_ptr().cast::<c_void>();
        // SAFETY: `pamh` is live; `item` is a NUL-terminated string that outlives the call,
        // which copies it (and wipes the old value).
        let rc = unsafe { pam_sys::pam_set_item(self.pamh.as_ptr(), token_item(token), item) };
        if rc == PAM_SUCCESS { Ok(()) } else { Err(Error::Pam(rc)) }
    }

    fn prompt_hidden(&mut self, prompt: &str) -> Result<Secret, Error> {
        self.converse(PAM_PROMPT_ECHO_OFF, prompt)?.ok_or(Error::Pam(PAM_CONV_ERR))
    }

    fn show(&mut self, notice: Notice, text: &str) -> Result<(), Error> {
        let style = match notice {
            Notice::Error => PAM_ERROR_MSG,
            Notice::Info => PAM_TEXT_INFO,
        };
        self.converse(style, text).map(drop)
    }

    fn caller_uid(&self) -> u32 {
        // SAFETY: getuid has no preconditions and cannot fail.
        unsafe { libc::getuid() }
    }
}

fn token_item(token: Token) -> c_int {
    match token {
        Token::New => PAM_AUTHTOK,
        Token::Old => PAM_OLDAUTHTOK,
    }
}

/// Copies the answer out of a conversation's response array, then wipes and frees it all.
///
/// # Safety
/// `responses` is null or a malloc'ed array of at least one `pam_response` whose `resp` is
/// null or a malloc'ed NUL-terminated string; nobody else uses or frees them afterwards.
unsafe fn take_response(responses: *mut pam_response) -> Option<Secret> {
    if responses.is_null() {
        return None;
    }
    // SAFETY: a non-null array of at least one element (the contract).
    let text = unsafe { (*responses).resp };
    let answer = (!text.is_null()).then(|| {
        // SAFETY: `text` is a NUL-terminated string (the contract); copied straight into the
        // Secret's own buffer.
        let secret = Secret::new(unsafe { CStr::from_ptr(text) }.to_bytes().to_vec());
        // SAFETY: `text` is malloc'ed and ours (the contract), and not used after this.
        unsafe { wipe_and_free(text) };
        secret
    });
    // SAFETY: the array is malloc'ed and ours (the contract); its one string is freed above.
    unsafe { libc::free(responses.cast()) };
    answer
}

/// # Safety
/// `text` is a malloc'ed NUL-terminated string that nobody else uses or frees.
unsafe fn wipe_and_free(text: *mut c_char) {
    // SAFETY: as this function's contract says.
    unsafe {
        wipe(text);
        libc::free(text.cast());
    }
}

/// Overwrites a C string's bytes with zeros (the terminator stays).
///
/// # Safety
/// `text` is a writable NUL-terminated string.
unsafe fn wipe(text: *mut c_char) {
    // SAFETY: NUL-terminated (the contract).
    let len = unsafe { libc::strlen(text) };
    for i in 0..len {
        // SAFETY: i < len, inside the string. Volatile, so the compiler cannot drop stores to
        // memory that is about to be freed.
        unsafe { ptr::write_volatile(text.add(i), 0) };
    }
    compiler_fence(Ordering::SeqCst);
}

/// One line to syslog, facility LOG_AUTHPRIV. `openlog` is never called: it would change the
/// host program's ident and options.
pub fn syslog(level: c_int, line: &str) {
    let Ok(line) = CString::new(line.replace('\0', "\\0")) else { return };
    // SAFETY: a constant "%s" format and one NUL-terminated argument that outlives the call.
    unsafe { libc::syslog(libc::LOG_AUTHPRIV | level, c"%s".as_ptr(), line.as_ptr()) };
}

#[cfg(test)]
mod tests;
