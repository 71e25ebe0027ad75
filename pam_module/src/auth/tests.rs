//! The authenticate phase against a fake PAM handle and a fake agent.

use super::*;
use crate::fake_agent::{self, FakeAgent};
use crate::fake_pam::FakePam;
use crate::handle::{Notice, captured};
use crate::status::{self, Unavailable};
use lanyard_proto::PamContext;
use pam_sys::{PAM_AUTH_ERR, PAM_CONV_ERR, PAM_IGNORE, PAM_MAXTRIES, PAM_SUCCESS, PAM_USER_UNKNOWN};
use std::time::{Duration, Instant};

fn options(agent: &FakeAgent, args: &[&str]) -> Options {
    let mut options = Options::parse(args.iter().map(|a| a.as_bytes()));
    options.socket = Some(agent.path().to_owned());
    options
}

fn sent_password(agent: &FakeAgent) -> Vec<Vec<u8>> {
    let passwords = agent.requests().into_iter().filter_map(|r| match r {
        Request::Authenticate { password, .. } => Some(password.expose().to_vec()),
        _ => None,
    });
    passwords.collect()
}

#[test]
fn the_right_password_authenticates_and_the_agent_gets_the_pam_context() {
    let agent = fake_agent::start(fake_agent::directory);
    let mut pam = FakePam::new("alice").answering(&["right"]);
    let options = options(&agent, &[]);
    let outcome = authenticate(&mut pam, &options, Flags::default());
    assert_eq!(outcome, Ok(Authenticated { offline: false }));
    assert_eq!(status::auth(&outcome, &options), PAM_SUCCESS);
    assert_eq!(pam.prompts, ["Password: "]);
    let context =
        PamContext { service: "sshd".into(), rhost: "192.0.2.7".into(), tty: "ssh".into(), ruser: String::new() };
    assert_eq!(
        agent.requests(),
        [Request::Authenticate { user: "alice".into(), password: Secret::new(b"right".to_vec()), context }]
    );
}

#[test]
fn a_wrong_password_is_auth_err_and_logged_as_a_failure() {
    let agent = fake_agent::start(fake_agent::directory);
    let mut pam = FakePam::new("alice").answering(&["wrong"]);
    let options = options(&agent, &[]);
    let outcome = authenticate(&mut pam, &options, Flags::default());
    assert_eq!(outcome, Err(Error::WrongPassword));
    assert_eq!(status::auth(&outcome, &options), PAM_AUTH_ERR);
    let lines = captured::take();
    assert!(
        lines.iter().any(|(level, line)| *level == libc::LOG_NOTICE
            && line == "pam_lanyard(sshd:auth): authentication failure; user=alice rhost=192.0.2.7 tty=ssh ruser="),
        "{lines:?}"
    );
}

#[test]
fn an_empty_password_is_refused_without_asking_the_agent() {
    let agent = fake_agent::start(fake_agent::directory);
    let mut pam = FakePam::new("alice").answering(&[""]);
    let options = options(&agent, &[]);
    let outcome = authenticate(&mut pam, &options, Flags::default());
    assert_eq!(status::auth(&outcome, &options), PAM_AUTH_ERR);
    assert_eq!(agent.requests(), []);
}

#[test]
fn use_first_pass_without_a_stored_password_fails() {
    let agent = fake_agent::start(fake_agent::directory);
    let mut pam = FakePam::new("alice").answering(&["right"]);
    let options = options(&agent, &["use_first_pass"]);
    let outcome = authenticate(&mut pam, &options, Flags::default());
    assert_eq!(status::auth(&outcome, &options), PAM_AUTH_ERR, "as pam_unix answers");
    assert!(pam.prompts.is_empty(), "use_first_pass never asks");
    assert_eq!(agent.requests(), []);
}

#[test]
fn use_first_pass_takes_the_stored_password_without_asking() {
    let agent = fake_agent::start(fake_agent::directory);
    let mut pam = FakePam::new("alice").with_token(Token::New, "right");
    let outcome = authenticate(&mut pam, &options(&agent, &["use_first_pass"]), Flags::default());
    assert_eq!(outcome, Ok(Authenticated { offline: false }));
    assert!(pam.prompts.is_empty());
    assert_eq!(sent_password(&agent), [b"right"]);
}

#[test]
fn try_first_pass_asks_only_when_no_password_is_stored() {
    let agent = fake_agent::start(fake_agent::directory);
    let mut stored = FakePam::new("alice").with_token(Token::New, "right");
    assert!(authenticate(&mut stored, &options(&agent, &["try_first_pass"]), Flags::default()).is_ok());
    assert!(stored.prompts.is_empty());

    let mut asked = FakePam::new("alice").answering(&["right"]);
    assert!(authenticate(&mut asked, &options(&agent, &["try_first_pass"]), Flags::default()).is_ok());
    assert_eq!(asked.prompts, ["Password: "]);
}

#[test]
fn without_first_pass_arguments_a_stored_password_is_not_used() {
    let agent = fake_agent::start(fake_agent::directory);
    let mut pam = FakePam::new("alice").with_token(Token::New, "wrong").answering(&["right"]);
    assert!(authenticate(&mut pam, &options(&agent, &[]), Flags::default()).is_ok());
    assert_eq!(sent_password(&agent), [b"right"]);
}

#[test]
fn a_prompted_password_is_stored_as_authtok_for_the_modules_after_this_one() {
    let agent = fake_agent::start(fake_agent::directory);
    let mut pam = FakePam::new("alice").answering(&["wrong"]);
    let _ = authenticate(&mut pam, &options(&agent, &[]), Flags::default());
    assert_eq!(pam.token_text(Token::New).as_deref(), Some("wrong"));
}

#[test]
fn a_name_that_cannot_be_a_login_name_is_unknown_without_asking_anything() {
    let agent = fake_agent::start(fake_agent::directory);
    for name in [&b""[..], b"*", b"al ice", b"hunter2 \x01", b"\xff"] {
        let mut pam = FakePam::new("alice").answering(&["right"]);
        pam.user = Ok(name.to_vec());
        let plain = options(&agent, &[]);
        let outcome = authenticate(&mut pam, &plain, Flags::default());
        assert_eq!(status::auth(&outcome, &plain), PAM_USER_UNKNOWN, "{name:?}");
        assert_eq!(status::auth(&outcome, &options(&agent, &["ignore_unknown_user"])), PAM_IGNORE);
        assert!(pam.prompts.is_empty());
    }
    assert_eq!(agent.requests(), []);
    let lines = captured::take();
    assert!(lines.iter().all(|(_, line)| !line.contains("hunter2")), "the name is not logged: {lines:?}");
}

#[test]
fn a_user_the_directory_does_not_know_is_user_unknown_or_ignored() {
    let agent = fake_agent::start(fake_agent::directory);
    let mut pam = FakePam::new("ghost").answering(&["whatever"]);
    let outcome = authenticate(&mut pam, &options(&agent, &[]), Flags::default());
    assert_eq!(outcome, Err(Error::UnknownUser));
    assert_eq!(status::auth(&outcome, &options(&agent, &[])), PAM_USER_UNKNOWN);
    assert_eq!(status::auth(&outcome, &options(&agent, &["ignore_unknown_user"])), PAM_IGNORE);
}

#[test]
fn a_user_below_minimum_uid_is_ignored_before_any_prompt() {
    let agent = fake_agent::start(fake_agent::directory);
    let mut pam = FakePam::new("daemon").answering(&["right"]);
    let options = options(&agent, &["minimum_uid=1000"]);
    let outcome = authenticate(&mut pam, &options, Flags::default());
    assert_eq!(status::auth(&outcome, &options), PAM_IGNORE);
    assert!(pam.prompts.is_empty());
    assert_eq!(agent.requests(), [Request::UserByName("daemon".into())]);
}

#[test]
fn a_user_at_or_above_minimum_uid_is_authenticated() {
    let agent = fake_agent::start(fake_agent::directory);
    let mut pam = FakePam::new("alice").answering(&["right"]);
    assert!(authenticate(&mut pam, &options(&agent, &["minimum_uid=10001"]), Flags::default()).is_ok());
}

#[test]
fn an_agent_that_is_not_running_is_authinfo_unavail_at_once() {
    let socket = fake_agent::scratch_dir().join("nobody-listens.sock");
    let options = Options { socket: Some(socket), ..Options::default() };
    let mut pam = FakePam::new("alice").answering(&["right"]);
    let started = Instant::now();
    let outcome = authenticate(&mut pam, &options, Flags::default());
    assert!(started.elapsed() < Duration::from_millis(500), "{:?}", started.elapsed());
    assert_eq!(outcome, Err(Error::Unavailable(Unavailable::Unreachable)));
    assert_eq!(status::auth(&outcome, &options), pam_sys::PAM_AUTHINFO_UNAVAIL);
    let ignoring = Options { ignore_authinfo_unavail: true, ..options };
    assert_eq!(status::auth(&outcome, &ignoring), PAM_IGNORE);
}

#[test]
fn an_agent_that_cannot_reach_the_directory_is_unavailable_not_unknown() {
    let agent = fake_agent::start(fake_agent::directory);
    let mut pam = FakePam::new("down").answering(&["right"]);
    let outcome = authenticate(&mut pam, &options(&agent, &[]), Flags::default());
    assert_eq!(outcome, Err(Error::Unavailable(Unavailable::AgentUnavailable)));
}

#[test]
fn a_refusal_and_an_answer_of_the_wrong_kind_stay_apart() {
    let agent = fake_agent::start(fake_agent::directory);
    let mut pam = FakePam::new("secret").answering(&["right"]);
    assert_eq!(authenticate(&mut pam, &options(&agent, &[]), Flags::default()), Err(Error::Refused));
    let mut pam = FakePam::new("confused").answering(&["right"]);
    let outcome = authenticate(&mut pam, &options(&agent, &[]), Flags::default());
    assert_eq!(outcome, Err(Error::Unavailable(Unavailable::UnexpectedResponse)));
    let lines = captured::take();
    assert!(lines.iter().any(|(level, line)| *level == libc::LOG_ERR && line.contains("end of pages")), "{lines:?}");
}

#[test]
fn too_many_attempts_is_maxtries_and_tells_the_user_unless_silent() {
    let agent = fake_agent::start(fake_agent::directory);
    let mut pam = FakePam::new("mallory").answering(&["guess"]);
    let options = options(&agent, &[]);
    let outcome = authenticate(&mut pam, &options, Flags::default());
    assert_eq!(status::auth(&outcome, &options), PAM_MAXTRIES);
    assert_eq!(pam.shown, [(Notice::Error, "Too many failed attempts; try again in 30 seconds.".to_owned())]);

    let mut quiet = FakePam::new("mallory").answering(&["guess"]);
    let silent = Flags { silent: true, ..Flags::default() };
    assert_eq!(authenticate(&mut quiet, &options, silent), Err(Error::TooManyAttempts));
    assert!(quiet.shown.is_empty());
}

#[test]
fn an_offline_check_is_a_success() {
    let agent = fake_agent::start(fake_agent::directory);
    let mut pam = FakePam::new("carol").answering(&["right"]);
    assert_eq!(authenticate(&mut pam, &options(&agent, &[]), Flags::default()), Ok(Authenticated { offline: true }));
}

#[test]
fn a_failed_conversation_passes_its_code_on_and_sends_nothing() {
    let agent = fake_agent::start(fake_agent::directory);
    let mut pam = FakePam::new("alice"); // no answers: the conversation fails
    let options = options(&agent, &[]);
    let outcome = authenticate(&mut pam, &options, Flags::default());
    assert_eq!(status::auth(&outcome, &options), PAM_CONV_ERR);
    assert_eq!(agent.requests(), []);
}

#[test]
fn routine_successes_are_logged_only_with_debug() {
    let agent = fake_agent::start(fake_agent::directory);
    captured::take();
    let mut pam = FakePam::new("alice").answering(&["right"]);
    authenticate(&mut pam, &options(&agent, &[]), Flags::default()).unwrap();
    assert_eq!(captured::take(), []);

    let mut pam = FakePam::new("alice").answering(&["right"]);
    authenticate(&mut pam, &options(&agent, &["debug"]), Flags::default()).unwrap();
    let lines = captured::take();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0].0, libc::LOG_DEBUG);
    assert_eq!(lines[0].1, "pam_lanyard(sshd:auth): authenticated; user=alice rhost=192.0.2.7 tty=ssh ruser=");
}

#[test]
fn unknown_arguments_are_logged_as_errors_and_ignored() {
    let agent = fake_agent::start(fake_agent::directory);
    captured::take();
    let mut pam = FakePam::new("alice").answering(&["right"]);
    assert!(authenticate(&mut pam, &options(&agent, &["nullok"]), Flags::default()).is_ok());
    assert_eq!(
        captured::take(),
        [(libc::LOG_ERR, "pam_lanyard(sshd:auth): unknown argument or bad value ignored: nullok".to_owned())]
    );
}

#[test]
fn no_log_line_ever_contains_a_password() {
    let agent = fake_agent::start(fake_agent::directory);
    captured::take();
    for (user, password) in
        [("alice", "right"), ("alice", "S3cr3t-wrong"), ("mallory", "S3cr3t-guess"), ("down", "S3cr3t-down")]
    {
        let mut pam = FakePam::new(user).answering(&[password]);
        let _ = authenticate(&mut pam, &options(&agent, &["debug"]), Flags::default());
    }
    let lines = captured::take();
    assert!(lines.len() >= 4, "{lines:?}");
    assert!(lines.iter().all(|(_, line)| !line.contains("S3cr3t") && !line.contains("right")), "{lines:?}");
}
