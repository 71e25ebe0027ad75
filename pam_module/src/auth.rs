//! `pam_sm_authenticate`: who the user is, the password, one `Authenticate` request.
//!
//! The password comes from `PAM_AUTHTOK` (with `use_first_pass`, or `try_first_pass` when an
//! earlier module set it) or from a "Password: " prompt, after which it is stored as
//! `PAM_AUTHTOK` for the modules after this one. An empty password is refused here: the agent
//! would refuse it too, and it must never get near an LDAP bind (an unauthenticated bind can
//! succeed, RFC 4513 5.1.2).

use lanyard_proto::{Request, Response, Secret};

use crate::handle::{Call, Flags, Pam, Token};
use crate::options::{FirstPass, Options};
use crate::status::Error;

/// The prompt when this module asks for the password.
pub const PROMPT: &str = "Password: ";

/// The password is right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authenticated {
    /// Checked against the agent's offline verifier: the directory could not be reached.
    pub offline: bool,
}

/// The `pam_sm_authenticate` logic.
pub fn authenticate(pam: &mut impl Pam, options: &Options, flags: Flags) -> Result<Authenticated, Error> {
    let mut call = Call::start(pam, options, flags, "auth")?;
    call.check_minimum_uid()?;
    let password = password(&mut call)?;
    if password.is_empty() {
        call.log.notice(format_args!("empty password refused without asking the agent; {}", call.origin()));
        return Err(Error::WrongPassword);
    }
    let request = Request::Authenticate { user: call.user.clone(), password, context: call.context.clone() };
    match call.ask(&request)? {
        Response::Authenticated { offline } => {
            let how = if offline { " offline" } else { "" };
            call.log.debug(format_args!("authenticated{how}; {}", call.origin()));
            Ok(Authenticated { offline })
        }
        Response::WrongPassword => {
            call.log.notice(format_args!("authentication failure; {}", call.origin()));
            Err(Error::WrongPassword)
        }
        Response::TooManyAttempts { retry_after_secs } => Err(call.too_many_attempts(retry_after_secs)),
        other => Err(call.not_the_answer(other)),
    }
}

/// The password to check, by the `*_first_pass` rules.
fn password(call: &mut Call<'_, impl Pam>) -> Result<Secret, Error> {
    let stored = match call.options.first_pass {
        FirstPass::Prompt => None,
        FirstPass::Try | FirstPass::Use => call.pam.token(Token::New)?,
    };
    match (stored, call.options.first_pass) {
        (Some(password), _) => Ok(password),
        // PAM_AUTH_ERR, as libpam's pam_get_authtok answers (libpam/pam_get_authtok.c) and so
        // Debian 12's pam_unix (measured: `use_first_pass` first in a stack, pamtester).
        (None, FirstPass::Use) => {
            call.log.notice(format_args!("use_first_pass, but no earlier module set a password; {}", call.origin()));
            Err(Error::WrongPassword)
        }
        (None, FirstPass::Try | FirstPass::Prompt) => {
            let password = call.pam.prompt_hidden(PROMPT)?;
            call.pam.set_token(Token::New, &password)?;
            Ok(password)
        }
    }
}

#[cfg(test)]
mod tests;
