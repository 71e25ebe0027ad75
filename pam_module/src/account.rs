//! `pam_sm_acct_mgmt`: may this (authenticated) user log in now? One `CheckAccount` request.
//!
//! The agent's texts are for the user: a warning on success is shown as `PAM_TEXT_INFO`, the
//! reason for a refusal as `PAM_ERROR_MSG` (neither with `PAM_SILENT`), as nss-pam-ldapd's
//! `pam_ldap` does with nslcd's messages.

use lanyard_proto::{Request, Response};

use crate::handle::{Call, Flags, Notice, Pam};
use crate::options::Options;
use crate::status::Error;

/// Shown when the agent gives a refusal without a text; `pam_unix`'s wording.
const EXPIRED: &str = "Your account has expired; please contact your system administrator.";
const MUST_CHANGE: &str = "You are required to change your password immediately (administrator enforced).";
const DENIED: &str = "Access denied.";

/// The `pam_sm_acct_mgmt` logic.
pub fn check(pam: &mut impl Pam, options: &Options, flags: Flags) -> Result<(), Error> {
    let mut call = Call::start(pam, options, flags, "account")?;
    call.check_minimum_uid()?;
    let request = Request::CheckAccount { user: call.user.clone(), context: call.context.clone() };
    let (error, what, text, fallback) = match call.ask(&request)? {
        Response::AccountOk { warning } => {
            call.log.debug(format_args!("account ok; {}", call.origin()));
            if let Some(warning) = warning {
                call.tell(Notice::Info, &warning);
            }
            return Ok(());
        }
        Response::AccountExpired(text) => (Error::AccountExpired, "account expired", text, EXPIRED),
        Response::PasswordExpired(text) => (Error::PasswordExpired, "password expired", text, MUST_CHANGE),
        Response::Denied(text) => (Error::Denied, "access denied", text, DENIED),
        other => return Err(call.not_the_answer(other)),
    };
    call.log.notice(format_args!("{what}: {text}; {}", call.origin()));
    call.tell(Notice::Error, if text.is_empty() { fallback } else { &text });
    Err(error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_agent::{self, FakeAgent};
    use crate::fake_pam::FakePam;
    use crate::status::{self, Unavailable};
    use pam_sys::{
        PAM_ACCT_EXPIRED, PAM_AUTHINFO_UNAVAIL, PAM_IGNORE, PAM_NEW_AUTHTOK_REQD, PAM_PERM_DENIED, PAM_SUCCESS,
        PAM_USER_UNKNOWN,
    };

    fn options(agent: &FakeAgent, args: &[&str]) -> Options {
        let mut options = Options::parse(args.iter().map(|a| a.as_bytes()));
        options.socket = Some(agent.path().to_owned());
        options
    }

    /// Runs the phase for `user`: its PAM code and what the user was shown.
    fn run(agent: &FakeAgent, user: &str, args: &[&str], flags: Flags) -> (i32, Vec<(Notice, String)>) {
        let mut pam = FakePam::new(user);
        let options = options(agent, args);
        let outcome = check(&mut pam, &options, flags);
        (status::account(&outcome, &options), pam.shown)
    }

    fn error(text: &str) -> Vec<(Notice, String)> {
        vec![(Notice::Error, text.to_owned())]
    }

    #[test]
    fn an_account_in_good_standing_is_success_and_asks_nothing() {
        let agent = fake_agent::start(fake_agent::directory);
        assert_eq!(run(&agent, "alice", &[], Flags::default()), (PAM_SUCCESS, vec![]));
        assert!(matches!(&agent.requests()[..], [Request::CheckAccount { user, .. }] if user == "alice"));
    }

    #[test]
    fn a_warning_is_shown_as_text_info_then_success() {
        let agent = fake_agent::start(fake_agent::directory);
        let (code, shown) = run(&agent, "warned", &[], Flags::default());
        assert_eq!((code, shown), (PAM_SUCCESS, vec![(Notice::Info, "Your password expires in 3 days.".to_owned())]));
    }

    #[test]
    fn an_expired_account_is_acct_expired_with_the_agents_text() {
        let agent = fake_agent::start(fake_agent::directory);
        let expected = (PAM_ACCT_EXPIRED, error("Your account expired on 2024-01-01."));
        assert_eq!(run(&agent, "expired", &[], Flags::default()), expected);
    }

    #[test]
    fn an_aged_password_is_new_authtok_reqd_with_the_agents_text() {
        let agent = fake_agent::start(fake_agent::directory);
        let expected = (PAM_NEW_AUTHTOK_REQD, error("Your password is older than 90 days."));
        assert_eq!(run(&agent, "aged", &[], Flags::default()), expected);
    }

    #[test]
    fn a_locked_account_is_perm_denied_with_the_agents_text() {
        let agent = fake_agent::start(fake_agent::directory);
        assert_eq!(run(&agent, "locked", &[], Flags::default()), (PAM_PERM_DENIED, error("Your account is locked.")));
    }

    #[test]
    fn pam_silent_shows_nothing_but_keeps_the_code() {
        let agent = fake_agent::start(fake_agent::directory);
        let silent = Flags { silent: true, ..Flags::default() };
        assert_eq!(run(&agent, "warned", &[], silent), (PAM_SUCCESS, vec![]));
        assert_eq!(run(&agent, "expired", &[], silent), (PAM_ACCT_EXPIRED, vec![]));
    }

    #[test]
    fn a_refusal_without_a_text_shows_a_plain_one() {
        let agent = fake_agent::start(|_: &Request| Response::AccountExpired(String::new()));
        assert_eq!(run(&agent, "alice", &[], Flags::default()), (PAM_ACCT_EXPIRED, error(EXPIRED)));
    }

    #[test]
    fn an_unknown_user_is_user_unknown_or_ignored() {
        let agent = fake_agent::start(fake_agent::directory);
        assert_eq!(run(&agent, "ghost", &[], Flags::default()).0, PAM_USER_UNKNOWN);
        assert_eq!(run(&agent, "ghost", &["ignore_unknown_user"], Flags::default()).0, PAM_IGNORE);
    }

    #[test]
    fn an_unavailable_directory_is_authinfo_unavail_or_ignored() {
        let agent = fake_agent::start(fake_agent::directory);
        assert_eq!(run(&agent, "down", &[], Flags::default()).0, PAM_AUTHINFO_UNAVAIL);
        assert_eq!(run(&agent, "down", &["ignore_authinfo_unavail"], Flags::default()).0, PAM_IGNORE);
        let mut pam = FakePam::new("confused");
        let outcome = check(&mut pam, &options(&agent, &[]), Flags::default());
        assert_eq!(outcome, Err(Error::Unavailable(Unavailable::UnexpectedResponse)));
    }

    #[test]
    fn a_user_below_minimum_uid_is_ignored_without_an_account_check() {
        let agent = fake_agent::start(fake_agent::directory);
        assert_eq!(run(&agent, "daemon", &["minimum_uid=1000"], Flags::default()).0, PAM_IGNORE);
        assert_eq!(agent.requests(), [Request::UserByName("daemon".into())]);
    }
}
