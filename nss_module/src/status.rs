//! The crate's one error type and the one place that turns an outcome into what glibc reads:
//! an `enum nss_status` and, unless the call succeeded, an errno.

use libc::c_int;

/// `enum nss_status` from `<nss.h>`, with the same values (`NSS_STATUS_RETURN` is never used).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NssStatus {
    TryAgain = -2,
    Unavail = -1,
    NotFound = 0,
    Success = 1,
}

/// Why a call did not produce an entry. Each variant says what glibc (the caller) does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The agent answered: no such entry (or the name cannot be one, or the entry cannot be
    /// written as C strings). glibc moves on to the next source in nsswitch.conf.
    NotFound,
    /// An enumeration has no more entries. glibc reads this as the end of `getpwent`.
    End,
    /// The caller's buffer cannot hold the entry. glibc retries with a larger buffer (and we
    /// repeat the lookup, or hand out the same enumeration entry again).
    BufferTooSmall,
    /// `realloc` of the initgroups array failed; the old array is intact. glibc may retry.
    NoMemory,
    /// No answer could be had. glibc moves on (or, with `[UNAVAIL=return]`, stops).
    Unavailable(Unavailable),
}

/// Why an answer could not be had. All of them mean the same to glibc; the variants keep tests
/// (and a future `lanyardctl doctor`) precise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// `LANYARD_NSS_BYPASS` is set: this is the agent itself, which must never ask itself.
    Bypassed,
    /// Connecting, sending or receiving failed (no agent, hung agent, garbled frame).
    Unreachable,
    /// The agent answered `Unavailable`: neither the directory nor its cache could answer.
    AgentUnavailable,
    /// The agent refused this caller.
    Refused,
    /// The agent answered with a variant that does not fit the request.
    UnexpectedResponse,
    /// A check in `ffi.rs` caught a bug of this module before it could do harm.
    Internal,
    /// glibc handed us a null or impossible pointer or size.
    BadArguments,
    /// A panic was caught at the FFI boundary.
    Panicked,
}

/// The status and errno for an outcome. `None` leaves the caller's errno alone (on success
/// glibc does not look at it, and a module has no business clearing it).
///
/// errno choices, for every non-success (glibc reads errno only together with the status):
/// - NOTFOUND / end of enumeration: `ENOENT`, as glibc's manual ("NSS Modules Interface")
///   lists for NSS_STATUS_NOTFOUND.
/// - too small a buffer: `ERANGE` with TRYAGAIN: the only combination glibc's `get*_r` wrappers
///   and `getent` treat as "grow the buffer and call again".
/// - out of memory: `ENOMEM` with TRYAGAIN, like glibc's own files module does in initgroups.
/// - UNAVAIL: `ENOENT`, as nss-pam-ldapd does when it cannot reach or read from nslcd
///   (`ERROR_OUT_OPENERROR` / `ERROR_OUT_READERROR` in its nss/common.h), and as glibc's manual
///   lists for UNAVAIL ("a necessary input file cannot be found"). Bad arguments get `EINVAL`,
///   as nss-pam-ldapd's `NSS_BUFCHECK` answers a null buffer.
pub fn status<T>(outcome: &Result<T, Error>) -> (NssStatus, Option<c_int>) {
    match outcome {
        Ok(_) => (NssStatus::Success, None),
        Err(Error::NotFound | Error::End) => (NssStatus::NotFound, Some(libc::ENOENT)),
        Err(Error::BufferTooSmall) => (NssStatus::TryAgain, Some(libc::ERANGE)),
        Err(Error::NoMemory) => (NssStatus::TryAgain, Some(libc::ENOMEM)),
        Err(Error::Unavailable(Unavailable::BadArguments)) => (NssStatus::Unavail, Some(libc::EINVAL)),
        Err(Error::Unavailable(_)) => (NssStatus::Unavail, Some(libc::ENOENT)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(error: Error) -> (NssStatus, Option<c_int>) {
        status::<()>(&Err(error))
    }

    #[test]
    fn a_found_entry_is_success_and_leaves_errno_alone() {
        assert_eq!(status(&Ok::<_, Error>(())), (NssStatus::Success, None));
    }

    #[test]
    fn not_found_and_the_end_of_an_enumeration_are_notfound_with_enoent() {
        assert_eq!(of(Error::NotFound), (NssStatus::NotFound, Some(libc::ENOENT)));
        assert_eq!(of(Error::End), (NssStatus::NotFound, Some(libc::ENOENT)));
    }

    #[test]
    fn a_short_buffer_is_tryagain_with_erange() {
        assert_eq!(of(Error::BufferTooSmall), (NssStatus::TryAgain, Some(libc::ERANGE)));
    }

    #[test]
    fn a_failed_realloc_is_tryagain_with_enomem() {
        assert_eq!(of(Error::NoMemory), (NssStatus::TryAgain, Some(libc::ENOMEM)));
    }

    #[test]
    fn every_kind_of_unavailable_is_unavail_and_never_notfound() {
        for why in [
            Unavailable::Bypassed,
            Unavailable::Unreachable,
            Unavailable::AgentUnavailable,
            Unavailable::Refused,
            Unavailable::UnexpectedResponse,
            Unavailable::Internal,
            Unavailable::Panicked,
        ] {
            assert_eq!(of(Error::Unavailable(why)), (NssStatus::Unavail, Some(libc::ENOENT)), "{why:?}");
        }
        assert_eq!(of(Error::Unavailable(Unavailable::BadArguments)), (NssStatus::Unavail, Some(libc::EINVAL)));
    }

    #[test]
    fn the_status_values_match_glibc_nss_h() {
        assert_eq!(
            [NssStatus::TryAgain, NssStatus::Unavail, NssStatus::NotFound, NssStatus::Success].map(|s| s as i32),
            [-2, -1, 0, 1]
        );
    }
}
