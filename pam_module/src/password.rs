//! `pam_sm_chauthtok`: change a directory user's password. libpam calls it twice.
//!
//! - `PAM_PRELIM_CHECK`: is this a directory user the agent can answer for? One `UserByName`.
//!   Nothing is asked of the user yet, so a local user's password change goes on to `pam_unix`
//!   without a prompt from this module.
//! - `PAM_UPDATE_AUTHTOK`: the current password (`PAM_OLDAUTHTOK` if an earlier module set it,
//!   else a prompt), the new one (`PAM_AUTHTOK` with `use_authtok`, else asked twice), then one
//!   `ChangePassword`. Prompted passwords are stored as `PAM_OLDAUTHTOK` / `PAM_AUTHTOK` for
//!   the modules after this one, as `pam_unix` does.
//!
//! Root resetting someone else's password (`passwd bob` run by root) sends no current
//! password: the agent's config decides whether that is allowed, and answers `Refused` if not.
//! A password change forced at login (`PAM_CHANGE_EXPIRED_AUTHTOK`) always asks for the current
//! password, even though sshd and login run as root: there, the caller being root says nothing
//! about who is at the keyboard (`pam_unix` and nss-pam-ldapd's `pam_ldap` make the same
//! exception).

use lanyard_proto::{Request, Response, Secret};

use crate::handle::{Call, Flags, Notice, Pam, Token};
use crate::options::Options;
use crate::status::Error;

pub const OLD_PROMPT: &str = "Current password: ";
pub const NEW_PROMPT: &str = "New password: ";
pub const RETYPE_PROMPT: &str = "Retype new password: ";
/// libpam's and `pam_unix`'s wording.
pub const MISMATCH: &str = "Sorry, passwords do not match.";
pub const EMPTY: &str = "No password has been supplied.";
const REJECTED: &str = "The new password was not accepted.";

/// The `pam_sm_chauthtok` logic, for either pass.
pub fn change(pam: &mut impl Pam, options: &Options, flags: Flags) -> Result<(), Error> {
    let mut call = Call::start(pam, options, flags, "password")?;
    if flags.prelim_check {
        let entry = call.lookup()?;
        call.check_uid(&entry)?;
        call.log.debug(format_args!("{} is a directory user; ready to change the password", call.user));
        return Ok(());
    }
    if !flags.update_authtok {
        call.log.error("called with neither PAM_PRELIM_CHECK nor PAM_UPDATE_AUTHTOK");
        return Err(Error::Internal);
    }
    update(&mut call)
}

/// The second pass: both passwords, one request.
fn update(call: &mut Call<'_, impl Pam>) -> Result<(), Error> {
    let caller_is_root = call.pam.caller_uid() == 0 && !call.flags.change_expired_authtok;
    // The target's uid matters only to a root caller (is it root's own password?) and to
    // minimum_uid; everyone else is spared the extra request.
    let resetting = if caller_is_root || call.options.minimum_uid.is_some() {
        let entry = call.lookup()?;
        call.check_uid(&entry)?;
        caller_is_root && entry.uid != 0
    } else {
        false
    };
    let old = if resetting { None } else { Some(old_password(call)?) };
    if old.as_ref().is_some_and(Secret::is_empty) {
        call.log.notice(format_args!("empty current password refused without asking the agent; {}", call.origin()));
        return Err(Error::WrongPassword);
    }
    let new = new_password(call)?;
    let request = Request::ChangePassword { user: call.user.clone(), old, new, context: call.context.clone() };
    match call.ask(&request)? {
        Response::PasswordChanged => {
            let how = if resetting { "reset by root" } else { "changed" };
            call.log.notice(format_args!("password {how}; {}", call.origin()));
            Ok(())
        }
        Response::PasswordRejected(why) => {
            call.log.notice(format_args!("new password rejected: {why}; {}", call.origin()));
            call.tell(Notice::Error, if why.is_empty() { REJECTED } else { &why });
            Err(Error::PasswordRejected)
        }
        Response::WrongPassword => {
            call.log.notice(format_args!("password change with a wrong current password; {}", call.origin()));
            Err(Error::WrongPassword)
        }
        Response::TooManyAttempts { retry_after_secs } => Err(call.too_many_attempts(retry_after_secs)),
        other => Err(call.not_the_answer(other)),
    }
}

/// `PAM_OLDAUTHTOK`, or asked (and then stored).
fn old_password(call: &mut Call<'_, impl Pam>) -> Result<Secret, Error> {
    if let Some(old) = call.pam.token(Token::Old)? {
        return Ok(old);
    }
    let old = call.pam.prompt_hidden(OLD_PROMPT)?;
    call.pam.set_token(Token::Old, &old)?;
    Ok(old)
}

/// `PAM_AUTHTOK` with `use_authtok`; otherwise asked twice (and then stored).
fn new_password(call: &mut Call<'_, impl Pam>) -> Result<Secret, Error> {
    if call.options.use_authtok {
        return match call.pam.token(Token::New)? {
            Some(new) if !new.is_empty() => Ok(new),
            _ => {
                call.log
                    .notice(format_args!("use_authtok, but no earlier module set a new password; {}", call.origin()));
                Err(Error::NoNewPassword)
            }
        };
    }
    let new = call.pam.prompt_hidden(NEW_PROMPT)?;
    let again = call.pam.prompt_hidden(RETYPE_PROMPT)?;
    if new != again {
        call.tell(Notice::Error, MISMATCH);
        return Err(Error::NewPasswordMismatch);
    }
    if new.is_empty() {
        call.tell(Notice::Error, EMPTY);
        return Err(Error::NoNewPassword);
    }
    call.pam.set_token(Token::New, &new)?;
    Ok(new)
}

#[cfg(test)]
mod tests;
