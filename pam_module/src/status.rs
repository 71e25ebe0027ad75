//! The crate's one error type and, for each PAM phase, the one function that turns an outcome
//! into the code libpam reads. The table follows DESIGN.md ("Status mapping"); where it is
//! silent, the choice and its source are written beside the row.
//!
//! Shared rows, in every phase:
//! - unknown user: PAM_USER_UNKNOWN, or PAM_IGNORE with `ignore_unknown_user`;
//! - no answer (agent down, agent says unavailable, an answer that does not fit the request):
//!   PAM_AUTHINFO_UNAVAIL, or PAM_IGNORE with `ignore_authinfo_unavail`. An unexpected answer
//!   is counted as "no answer" rather than PAM_SERVICE_ERR because it is the same situation as
//!   an undecodable frame (a module and an agent of different versions), which the proto
//!   client already reports as a receive error, and because the NSS module maps it to UNAVAIL
//!   too: the host then behaves the same whichever way the mismatch shows. It never grants
//!   anything, and the phase logs it at LOG_ERR with the answer's summary;
//! - a uid below `minimum_uid`: PAM_IGNORE;
//! - a failed libpam call (pam_get_user, the conversation): its own code, except that
//!   PAM_CONV_AGAIN becomes PAM_INCOMPLETE, as `pam_unix` does for applications with an
//!   event loop (libpam calls the module again later);
//! - a panic or an impossible call: PAM_SERVICE_ERR.

use libc::c_int;
use pam_sys::{
    PAM_ACCT_EXPIRED, PAM_AUTH_ERR, PAM_AUTHINFO_UNAVAIL, PAM_AUTHTOK_ERR, PAM_CONV_AGAIN, PAM_IGNORE, PAM_INCOMPLETE,
    PAM_MAXTRIES, PAM_NEW_AUTHTOK_REQD, PAM_PERM_DENIED, PAM_SERVICE_ERR, PAM_SUCCESS, PAM_USER_UNKNOWN,
};

use crate::options::Options;

/// Why a phase did not succeed. Each variant says what the PAM stack makes of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The user's uid is below `minimum_uid`: not this module's account. PAM_IGNORE; the stack
    /// decides without this module.
    BelowMinimumUid,
    /// The directory has no such user, or the name cannot be one. The stack moves on to the
    /// next module (`pam_unix` for local users).
    UnknownUser,
    /// No answer could be had; see [`Unavailable`].
    Unavailable(Unavailable),
    /// The password (or, changing it, the current password) is wrong, empty, or missing where
    /// `use_first_pass` forbids asking.
    WrongPassword,
    /// The agent did not try: too many failed attempts for this account or from this caller.
    TooManyAttempts,
    /// The agent does not let this caller ask this (a non-root caller asking about another
    /// account; root resetting a password where the agent's config does not allow it).
    Refused,
    /// The account has expired.
    AccountExpired,
    /// The password is too old and must be changed now.
    PasswordExpired,
    /// The account is locked, or an access rule keeps it out.
    Denied,
    /// Changing a password: no new password could be had (missing with `use_authtok`, empty,
    /// or the user stopped answering).
    NoNewPassword,
    /// Changing a password: the retyped new password differs.
    NewPasswordMismatch,
    /// Changing a password: the directory refused the new one (quality, history, age).
    PasswordRejected,
    /// The session's home directory could not be created (the reason is in the log).
    HomeNotCreated,
    /// A libpam call failed with this code: pam_get_user, the conversation, pam_set_item.
    Pam(c_int),
    /// Something that cannot happen did: a null handle, flags libpam never sends.
    Internal,
    /// A panic was caught at the FFI boundary.
    Panicked,
}

/// Why no answer could be had. The same to libpam; the variants keep the log and tests precise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// Connecting, sending or receiving failed: no agent, a hung agent, a garbled frame.
    Unreachable,
    /// The agent answered "unavailable": neither the directory nor its cache could answer.
    AgentUnavailable,
    /// The agent answered something that does not fit the request.
    UnexpectedResponse,
}

/// `pam_sm_authenticate`.
pub fn auth<T>(outcome: &Result<T, Error>, options: &Options) -> c_int {
    let Err(error) = outcome else { return PAM_SUCCESS };
    match *error {
        Error::WrongPassword => PAM_AUTH_ERR,
        Error::TooManyAttempts => PAM_MAXTRIES,
        Error::Refused => PAM_PERM_DENIED,
        Error::UnknownUser => unknown(options),
        Error::Unavailable(_) => unavailable(options),
        Error::BelowMinimumUid => PAM_IGNORE,
        Error::Pam(code) => library(code),
        Error::AccountExpired
        | Error::PasswordExpired
        | Error::Denied
        | Error::NoNewPassword
        | Error::NewPasswordMismatch
        | Error::PasswordRejected
        | Error::HomeNotCreated
        | Error::Internal
        | Error::Panicked => PAM_SERVICE_ERR,
    }
}

/// `pam_sm_setcred`: there are no credentials to establish (no tickets, no tokens), so it always
/// succeeds, as nss-pam-ldapd's `pam_ldap` does ("we don't need to do anything here",
/// `pam_sm_setcred` in its `pam/pam.c`). Never PAM_IGNORE: with `auth [success=..]` stacks
/// libpam calls setcred on the modules that authenticated, and an ignore there is pointless.
pub fn setcred() -> c_int {
    PAM_SUCCESS
}

/// `pam_sm_acct_mgmt`.
pub fn account<T>(outcome: &Result<T, Error>, options: &Options) -> c_int {
    let Err(error) = outcome else { return PAM_SUCCESS };
    match *error {
        Error::AccountExpired => PAM_ACCT_EXPIRED,
        Error::PasswordExpired => PAM_NEW_AUTHTOK_REQD,
        Error::Denied | Error::Refused => PAM_PERM_DENIED,
        Error::UnknownUser => unknown(options),
        Error::Unavailable(_) => unavailable(options),
        Error::BelowMinimumUid => PAM_IGNORE,
        Error::Pam(code) => library(code),
        Error::WrongPassword
        | Error::TooManyAttempts
        | Error::NoNewPassword
        | Error::NewPasswordMismatch
        | Error::PasswordRejected
        | Error::HomeNotCreated
        | Error::Internal
        | Error::Panicked => PAM_SERVICE_ERR,
    }
}

/// `pam_sm_chauthtok`, both passes.
///
/// A wrong current password is PAM_AUTH_ERR, not PAM_AUTHTOK_ERR: that is what `pam_unix`
/// returns. Its chauthtok returns `_unix_verify_password`'s code unchanged (linux-pam
/// `modules/pam_unix/pam_unix_passwd.c`, the "verify that this is the password for this user"
/// step, and again before writing), which is PAM_AUTH_ERR for a mismatch; measured on Debian 12
/// (Linux-PAM 1.5.2): `pamtester` running as the user, `chauthtok` with a wrong current
/// password prints "Authentication failure". nss-pam-ldapd's `pam_ldap` passes nslcd's
/// PAM_AUTH_ERR through the same way. (`passwd` on Debian shows "Authentication token
/// manipulation error" only because `common-password` lets `pam_deny` decide after a failure.)
///
/// A mismatched retype is PAM_AUTHTOK_ERR as specified for Lanyard; libpam's own
/// `pam_get_authtok` answers PAM_TRY_AGAIN there. A missing `PAM_AUTHTOK` with `use_authtok`
/// is PAM_AUTHTOK_ERR, as `pam_get_authtok` answers (`libpam/pam_get_authtok.c`).
pub fn password<T>(outcome: &Result<T, Error>, options: &Options) -> c_int {
    let Err(error) = outcome else { return PAM_SUCCESS };
    match *error {
        Error::WrongPassword => PAM_AUTH_ERR,
        Error::NoNewPassword | Error::NewPasswordMismatch | Error::PasswordRejected => PAM_AUTHTOK_ERR,
        Error::TooManyAttempts => PAM_MAXTRIES,
        Error::Refused => PAM_PERM_DENIED,
        Error::UnknownUser => unknown(options),
        Error::Unavailable(_) => unavailable(options),
        Error::BelowMinimumUid => PAM_IGNORE,
        Error::Pam(code) => library(code),
        Error::AccountExpired
        | Error::PasswordExpired
        | Error::Denied
        | Error::HomeNotCreated
        | Error::Internal
        | Error::Panicked => PAM_SERVICE_ERR,
    }
}

/// `pam_sm_open_session`. Creating the home directory is the only work, and it is best effort
/// with respect to the directory: a session never fails because the agent or the directory is
/// away, or because the user is not a directory user (PAM_IGNORE either way, whatever the
/// `ignore_*` arguments say). A home that should be created but cannot be is PAM_PERM_DENIED,
/// as `pam_mkhomedir` answers ("Not enough permissions to create the new directory or read
/// the skel directory", pam_mkhomedir(8)).
pub fn session<T>(outcome: &Result<T, Error>, _options: &Options) -> c_int {
    let Err(error) = outcome else { return PAM_SUCCESS };
    match *error {
        Error::UnknownUser | Error::Unavailable(_) | Error::BelowMinimumUid => PAM_IGNORE,
        Error::HomeNotCreated | Error::Refused => PAM_PERM_DENIED,
        Error::Pam(code) => library(code),
        Error::WrongPassword
        | Error::TooManyAttempts
        | Error::AccountExpired
        | Error::PasswordExpired
        | Error::Denied
        | Error::NoNewPassword
        | Error::NewPasswordMismatch
        | Error::PasswordRejected
        | Error::Internal
        | Error::Panicked => PAM_SERVICE_ERR,
    }
}

/// `pam_sm_close_session`: nothing was opened that needs closing.
pub fn close_session() -> c_int {
    PAM_SUCCESS
}

fn unknown(options: &Options) -> c_int {
    if options.ignore_unknown_user { PAM_IGNORE } else { PAM_USER_UNKNOWN }
}

fn unavailable(options: &Options) -> c_int {
    if options.ignore_authinfo_unavail { PAM_IGNORE } else { PAM_AUTHINFO_UNAVAIL }
}

/// A libpam call's failure, passed on.
fn library(code: c_int) -> c_int {
    match code {
        PAM_CONV_AGAIN => PAM_INCOMPLETE,
        // A "failure" that says success would grant something nobody checked.
        PAM_SUCCESS | PAM_IGNORE => PAM_SERVICE_ERR,
        code => code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pam_sys::{PAM_CONV_ERR, PAM_SUCCESS};

    type Phase = fn(&Result<(), Error>, &Options) -> c_int;
    const PHASES: [(&str, Phase); 4] =
        [("auth", auth), ("account", account), ("password", password), ("session", session)];

    fn plain() -> Options {
        Options::default()
    }

    fn ignoring() -> Options {
        Options { ignore_unknown_user: true, ignore_authinfo_unavail: true, ..Options::default() }
    }

    #[test]
    fn success_is_success_in_every_phase() {
        for (name, phase) in PHASES {
            assert_eq!(phase(&Ok(()), &plain()), PAM_SUCCESS, "{name}");
        }
        assert_eq!(setcred(), PAM_SUCCESS);
        assert_eq!(close_session(), PAM_SUCCESS);
    }

    #[test]
    fn a_wrong_password_is_auth_err_in_auth_and_in_chauthtok() {
        assert_eq!(auth(&Err::<(), _>(Error::WrongPassword), &ignoring()), PAM_AUTH_ERR);
        assert_eq!(password(&Err::<(), _>(Error::WrongPassword), &ignoring()), PAM_AUTH_ERR);
    }

    #[test]
    fn unknown_users_are_user_unknown_or_ignored_on_request_but_always_ignored_by_the_session() {
        for (name, phase) in &PHASES[..3] {
            assert_eq!(phase(&Err(Error::UnknownUser), &plain()), PAM_USER_UNKNOWN, "{name}");
            assert_eq!(phase(&Err(Error::UnknownUser), &ignoring()), PAM_IGNORE, "{name}");
        }
        assert_eq!(session(&Err::<(), _>(Error::UnknownUser), &plain()), PAM_IGNORE);
    }

    #[test]
    fn no_answer_of_any_kind_is_authinfo_unavail_or_ignored_on_request_but_always_ignored_by_the_session() {
        for why in [Unavailable::Unreachable, Unavailable::AgentUnavailable, Unavailable::UnexpectedResponse] {
            for (name, phase) in &PHASES[..3] {
                assert_eq!(phase(&Err(Error::Unavailable(why)), &plain()), PAM_AUTHINFO_UNAVAIL, "{name} {why:?}");
                assert_eq!(phase(&Err(Error::Unavailable(why)), &ignoring()), PAM_IGNORE, "{name} {why:?}");
            }
            assert_eq!(session(&Err::<(), _>(Error::Unavailable(why)), &plain()), PAM_IGNORE);
        }
    }

    #[test]
    fn the_account_answers_follow_the_design_table() {
        let of = |e| account(&Err::<(), _>(e), &ignoring());
        assert_eq!(of(Error::AccountExpired), PAM_ACCT_EXPIRED);
        assert_eq!(of(Error::PasswordExpired), PAM_NEW_AUTHTOK_REQD);
        assert_eq!(of(Error::Denied), PAM_PERM_DENIED);
        assert_eq!(of(Error::Refused), PAM_PERM_DENIED);
    }

    #[test]
    fn too_many_attempts_is_maxtries_and_a_refusal_is_perm_denied() {
        assert_eq!(auth(&Err::<(), _>(Error::TooManyAttempts), &plain()), PAM_MAXTRIES);
        assert_eq!(password(&Err::<(), _>(Error::TooManyAttempts), &plain()), PAM_MAXTRIES);
        assert_eq!(auth(&Err::<(), _>(Error::Refused), &plain()), PAM_PERM_DENIED);
        assert_eq!(password(&Err::<(), _>(Error::Refused), &plain()), PAM_PERM_DENIED);
        assert_eq!(session(&Err::<(), _>(Error::Refused), &plain()), PAM_PERM_DENIED);
    }

    #[test]
    fn every_unusable_new_password_is_authtok_err() {
        for e in [Error::NoNewPassword, Error::NewPasswordMismatch, Error::PasswordRejected] {
            assert_eq!(password(&Err::<(), _>(e), &plain()), PAM_AUTHTOK_ERR, "{e:?}");
        }
    }

    #[test]
    fn a_uid_below_the_minimum_is_ignored_everywhere() {
        for (name, phase) in PHASES {
            assert_eq!(phase(&Err(Error::BelowMinimumUid), &plain()), PAM_IGNORE, "{name}");
        }
    }

    #[test]
    fn a_home_that_cannot_be_created_is_perm_denied_like_pam_mkhomedir() {
        assert_eq!(session(&Err::<(), _>(Error::HomeNotCreated), &ignoring()), PAM_PERM_DENIED);
    }

    #[test]
    fn library_failures_pass_through_and_conv_again_becomes_incomplete() {
        for (name, phase) in PHASES {
            assert_eq!(phase(&Err(Error::Pam(PAM_CONV_ERR)), &plain()), PAM_CONV_ERR, "{name}");
            assert_eq!(phase(&Err(Error::Pam(PAM_CONV_AGAIN)), &plain()), PAM_INCOMPLETE, "{name}");
            assert_eq!(phase(&Err(Error::Pam(PAM_SUCCESS)), &plain()), PAM_SERVICE_ERR, "{name}");
        }
    }

    #[test]
    fn panics_and_impossible_calls_are_service_err_even_when_ignoring() {
        for (name, phase) in PHASES {
            assert_eq!(phase(&Err(Error::Panicked), &ignoring()), PAM_SERVICE_ERR, "{name}");
            assert_eq!(phase(&Err(Error::Internal), &ignoring()), PAM_SERVICE_ERR, "{name}");
        }
    }
}
