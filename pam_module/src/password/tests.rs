//! Both chauthtok passes against a fake PAM handle and a fake agent.

use super::*;
use crate::fake_agent::{self, FakeAgent};
use crate::fake_pam::FakePam;
use crate::handle::captured;
use crate::status;
use pam_sys::{
    PAM_AUTH_ERR, PAM_AUTHINFO_UNAVAIL, PAM_AUTHTOK_ERR, PAM_IGNORE, PAM_PERM_DENIED, PAM_SERVICE_ERR, PAM_SUCCESS,
    PAM_USER_UNKNOWN,
};

const ALICE: u32 = 10001;

fn options(agent: &FakeAgent, args: &[&str]) -> Options {
    let mut options = Options::parse(args.iter().map(|a| a.as_bytes()));
    options.socket = Some(agent.path().to_owned());
    options
}

fn prelim() -> Flags {
    Flags { prelim_check: true, ..Flags::default() }
}

fn update() -> Flags {
    Flags { update_authtok: true, ..Flags::default() }
}

fn secret(text: &str) -> Secret {
    Secret::new(text.as_bytes().to_vec())
}

/// The (old, new) passwords of the ChangePassword requests the agent received.
fn changes(agent: &FakeAgent) -> Vec<(Option<Secret>, Secret)> {
    let changes = agent.requests().into_iter().filter_map(|request| match request {
        Request::ChangePassword { old, new, .. } => Some((old, new)),
        _ => None,
    });
    changes.collect()
}

#[test]
fn the_first_pass_for_a_directory_user_is_success_and_asks_nothing() {
    let agent = fake_agent::start(fake_agent::directory);
    let mut pam = FakePam::new("alice").called_by(ALICE);
    assert_eq!(change(&mut pam, &options(&agent, &[]), prelim()), Ok(()));
    assert!(pam.prompts.is_empty());
    assert_eq!(agent.requests(), [Request::UserByName("alice".into())]);
}

#[test]
fn the_first_pass_for_a_user_the_directory_does_not_know_is_user_unknown_or_ignored() {
    let agent = fake_agent::start(fake_agent::directory);
    let outcome = change(&mut FakePam::new("ghost"), &options(&agent, &[]), prelim());
    assert_eq!(status::password(&outcome, &options(&agent, &[])), PAM_USER_UNKNOWN);
    assert_eq!(status::password(&outcome, &options(&agent, &["ignore_unknown_user"])), PAM_IGNORE);
}

#[test]
fn the_first_pass_without_an_answer_is_authinfo_unavail_or_ignored() {
    let agent = fake_agent::start(fake_agent::directory);
    let outcome = change(&mut FakePam::new("down"), &options(&agent, &[]), prelim());
    assert_eq!(status::password(&outcome, &options(&agent, &[])), PAM_AUTHINFO_UNAVAIL);
    assert_eq!(status::password(&outcome, &options(&agent, &["ignore_authinfo_unavail"])), PAM_IGNORE);
}

#[test]
fn the_first_pass_for_a_user_below_minimum_uid_is_ignored() {
    let agent = fake_agent::start(fake_agent::directory);
    let options = options(&agent, &["minimum_uid=1000"]);
    let outcome = change(&mut FakePam::new("daemon"), &options, prelim());
    assert_eq!(status::password(&outcome, &options), PAM_IGNORE);
}

#[test]
fn a_user_changes_her_own_password_by_giving_the_current_one_and_the_new_one_twice() {
    let agent = fake_agent::start(fake_agent::directory);
    let mut pam = FakePam::new("alice").called_by(ALICE).answering(&["right", "n3w-Pass", "n3w-Pass"]);
    let options = options(&agent, &[]);
    let outcome = change(&mut pam, &options, update());
    assert_eq!(status::password(&outcome, &options), PAM_SUCCESS);
    assert_eq!(pam.prompts, [OLD_PROMPT, NEW_PROMPT, RETYPE_PROMPT]);
    assert_eq!(changes(&agent), [(Some(secret("right")), secret("n3w-Pass"))]);
    assert_eq!(agent.requests().len(), 1, "no lookup for a caller who is not root");
    assert_eq!(pam.token_text(Token::Old).as_deref(), Some("right"));
    assert_eq!(pam.token_text(Token::New).as_deref(), Some("n3w-Pass"));
}

#[test]
fn a_current_password_from_an_earlier_module_is_used_without_asking() {
    let agent = fake_agent::start(fake_agent::directory);
    let mut pam =
        FakePam::new("alice").called_by(ALICE).with_token(Token::Old, "right").answering(&["n3w-Pass", "n3w-Pass"]);
    assert_eq!(change(&mut pam, &options(&agent, &[]), update()), Ok(()));
    assert_eq!(pam.prompts, [NEW_PROMPT, RETYPE_PROMPT]);
}

#[test]
fn a_wrong_current_password_is_auth_err_as_pam_unix_answers() {
    let agent = fake_agent::start(fake_agent::directory);
    let mut pam = FakePam::new("alice").called_by(ALICE).answering(&["wrong", "n3w-Pass", "n3w-Pass"]);
    let options = options(&agent, &[]);
    let outcome = change(&mut pam, &options, update());
    assert_eq!(outcome, Err(Error::WrongPassword));
    assert_eq!(status::password(&outcome, &options), PAM_AUTH_ERR);
}

#[test]
fn an_empty_current_password_is_refused_without_asking_the_agent() {
    let agent = fake_agent::start(fake_agent::directory);
    let mut pam = FakePam::new("alice").called_by(ALICE).answering(&["", "n3w-Pass", "n3w-Pass"]);
    assert_eq!(change(&mut pam, &options(&agent, &[]), update()), Err(Error::WrongPassword));
    assert_eq!(pam.prompts, [OLD_PROMPT], "no new password is asked for");
    assert_eq!(agent.requests(), []);
}

#[test]
fn retyped_password_mismatch_is_authtok_err() {
    let agent = fake_agent::start(fake_agent::directory);
    let mut pam = FakePam::new("alice").called_by(ALICE).answering(&["right", "n3w-Pass", "n3w-Typo"]);
    let options = options(&agent, &[]);
    let outcome = change(&mut pam, &options, update());
    assert_eq!(outcome, Err(Error::NewPasswordMismatch));
    assert_eq!(status::password(&outcome, &options), PAM_AUTHTOK_ERR);
    assert_eq!(pam.shown, [(Notice::Error, "Sorry, passwords do not match.".to_owned())]);
    assert_eq!(pam.token_text(Token::New), None, "a mismatched password is not stored");
    assert_eq!(agent.requests(), []);
}

#[test]
fn an_empty_new_password_is_authtok_err_without_asking_the_agent() {
    let agent = fake_agent::start(fake_agent::directory);
    let mut pam = FakePam::new("alice").called_by(ALICE).answering(&["right", "", ""]);
    let options = options(&agent, &[]);
    let outcome = change(&mut pam, &options, update());
    assert_eq!(status::password(&outcome, &options), PAM_AUTHTOK_ERR);
    assert_eq!(pam.shown, [(Notice::Error, EMPTY.to_owned())]);
    assert_eq!(agent.requests(), []);
}

#[test]
fn use_authtok_takes_the_new_password_an_earlier_module_set() {
    let agent = fake_agent::start(fake_agent::directory);
    let mut pam = FakePam::new("alice").called_by(ALICE).with_token(Token::New, "n3w-Pass").answering(&["right"]);
    assert_eq!(change(&mut pam, &options(&agent, &["use_authtok"]), update()), Ok(()));
    assert_eq!(pam.prompts, [OLD_PROMPT]);
    assert_eq!(changes(&agent), [(Some(secret("right")), secret("n3w-Pass"))]);
}

#[test]
fn use_authtok_without_a_stored_new_password_is_authtok_err() {
    let agent = fake_agent::start(fake_agent::directory);
    let mut pam = FakePam::new("alice").called_by(ALICE).answering(&["right", "n3w-Pass", "n3w-Pass"]);
    let options = options(&agent, &["use_authtok"]);
    let outcome = change(&mut pam, &options, update());
    assert_eq!(status::password(&outcome, &options), PAM_AUTHTOK_ERR);
    assert_eq!(pam.prompts, [OLD_PROMPT], "use_authtok never asks for the new password");
    assert_eq!(agent.requests(), []);
}

#[test]
fn a_password_the_directory_rejects_shows_its_reason_and_is_authtok_err() {
    let agent = fake_agent::start(fake_agent::directory);
    let mut pam = FakePam::new("alice").called_by(ALICE).answering(&["right", "weak", "weak"]);
    let options = options(&agent, &[]);
    let outcome = change(&mut pam, &options, update());
    assert_eq!(status::password(&outcome, &options), PAM_AUTHTOK_ERR);
    assert_eq!(pam.shown, [(Notice::Error, "Password is too short.".to_owned())]);
}

#[test]
fn root_resetting_another_users_password_sends_no_current_password() {
    let agent = fake_agent::start(fake_agent::directory);
    let mut pam = FakePam::new("bob").called_by(0).answering(&["n3w-Pass", "n3w-Pass"]);
    assert_eq!(change(&mut pam, &options(&agent, &[]), update()), Ok(()));
    assert_eq!(pam.prompts, [NEW_PROMPT, RETYPE_PROMPT]);
    assert_eq!(changes(&agent), [(None, secret("n3w-Pass"))]);
    assert_eq!(agent.requests()[0], Request::UserByName("bob".into()), "root's own password would need the old one");
}

#[test]
fn root_resetting_a_password_the_agent_does_not_allow_is_perm_denied() {
    let agent = fake_agent::start(fake_agent::directory);
    let mut pam = FakePam::new("alice").called_by(0).answering(&["n3w-Pass", "n3w-Pass"]);
    let options = options(&agent, &[]);
    let outcome = change(&mut pam, &options, update());
    assert_eq!(status::password(&outcome, &options), PAM_PERM_DENIED);
}

#[test]
fn a_change_forced_at_login_asks_for_the_current_password_although_sshd_runs_as_root() {
    let agent = fake_agent::start(fake_agent::directory);
    let mut pam = FakePam::new("alice").called_by(0).answering(&["right", "n3w-Pass", "n3w-Pass"]);
    let forced = Flags { change_expired_authtok: true, ..update() };
    assert_eq!(change(&mut pam, &options(&agent, &[]), forced), Ok(()));
    assert_eq!(pam.prompts, [OLD_PROMPT, NEW_PROMPT, RETYPE_PROMPT]);
    assert_eq!(changes(&agent), [(Some(secret("right")), secret("n3w-Pass"))]);
}

#[test]
fn the_second_pass_for_a_user_below_minimum_uid_is_ignored_before_any_prompt() {
    let agent = fake_agent::start(fake_agent::directory);
    let mut pam = FakePam::new("daemon").called_by(1).answering(&["right"]);
    let options = options(&agent, &["minimum_uid=1000"]);
    let outcome = change(&mut pam, &options, update());
    assert_eq!(status::password(&outcome, &options), PAM_IGNORE);
    assert!(pam.prompts.is_empty());
}

#[test]
fn a_call_with_neither_pass_flag_is_a_service_error() {
    let agent = fake_agent::start(fake_agent::directory);
    let options = options(&agent, &[]);
    let outcome = change(&mut FakePam::new("alice"), &options, Flags::default());
    assert_eq!(status::password(&outcome, &options), PAM_SERVICE_ERR);
    assert_eq!(agent.requests(), []);
}

#[test]
fn no_log_line_ever_contains_a_password() {
    let agent = fake_agent::start(fake_agent::directory);
    captured::take();
    for answers in
        [["right", "S3cr3t-1", "S3cr3t-1"], ["S3cr3t-old", "S3cr3t-2", "S3cr3t-2"], ["right", "weak", "weak"]]
    {
        let mut pam = FakePam::new("alice").called_by(ALICE).answering(&answers);
        let _ = change(&mut pam, &options(&agent, &["debug"]), update());
    }
    let lines = captured::take();
    assert!(lines.len() >= 3, "{lines:?}");
    assert!(lines.iter().all(|(_, line)| !line.contains("S3cr3t") && !line.contains("right")), "{lines:?}");
}
