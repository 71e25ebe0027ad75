//! The built `libpam_lanyard.so`, loaded by the system's libpam from a scratch configuration
//! directory (`pam_start_confdir`) by absolute path, against the crate's fake agent: proof
//! that the exported symbols, the conversation and the items work for real, without touching
//! `/etc/pam.d`. Every `unsafe` here is the application side of the PAM API.

use std::collections::VecDeque;
use std::ffi::{CStr, CString, c_void};
use std::path::{Path, PathBuf};
use std::ptr;

use lanyard_proto::{HomeDirectory, Request, Response};
use libc::c_int;
use pam_sys::{
    PAM_AUTH_ERR, PAM_CHANGE_EXPIRED_AUTHTOK, PAM_PERM_DENIED, PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON, PAM_RHOST,
    PAM_SUCCESS, PAM_TTY, PAM_USER_UNKNOWN, pam_conv, pam_handle_t, pam_message, pam_response,
};

#[path = "../src/fake_agent.rs"]
#[allow(dead_code)]
mod fake_agent;

use fake_agent::{FakeAgent, scratch_dir};

/// The cdylib cargo built for this test run: in `deps`, beside this test binary (`cargo build`
/// also copies it one level up, but `cargo test` does not).
fn module() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let module = exe.parent().unwrap().join("libpam_lanyard.so");
    assert!(module.exists(), "{} was not built", module.display());
    module
}

/// The application's side of the conversation: scripted answers, and a record of the rest.
#[derive(Default)]
struct Conversation {
    answers: VecDeque<CString>,
    prompts: Vec<String>,
    shown: Vec<String>,
}

/// # Safety
/// libpam's contract for a conversation function; `appdata` is our `Conversation`.
unsafe extern "C" fn converse(
    count: c_int,
    messages: *mut *const pam_message,
    responses: *mut *mut pam_response,
    appdata: *mut c_void,
) -> c_int {
    let count = usize::try_from(count).unwrap_or(0);
    // SAFETY: `appdata` is the `Conversation` that `transaction` passed to pam_start_confdir.
    let conversation = unsafe { &mut *appdata.cast::<Conversation>() };
    // SAFETY: calloc for `count` responses; libpam's module side frees them.
    let answers = unsafe { libc::calloc(count.max(1), size_of::<pam_response>()) }.cast::<pam_response>();
    for i in 0..count {
        // SAFETY: `messages` holds `count` valid message pointers (Linux-PAM's layout).
        let message = unsafe { &**messages.add(i) };
        // SAFETY: every message text is a NUL-terminated string.
        let text = unsafe { CStr::from_ptr(message.msg) }.to_string_lossy().into_owned();
        if matches!(message.msg_style, PAM_PROMPT_ECHO_OFF | PAM_PROMPT_ECHO_ON) {
            conversation.prompts.push(text);
            // Out of answers: a null answer, which the module must take as a failed conversation.
            if let Some(answer) = conversation.answers.pop_front() {
                // SAFETY: `answers` has `count` slots; strdup gives the module a string to free.
                unsafe { (*answers.add(i)).resp = libc::strdup(answer.as_ptr()) };
            }
        } else {
            conversation.shown.push(text);
        }
    }
    // SAFETY: `responses` is libpam's out-pointer.
    unsafe { *responses = answers };
    PAM_SUCCESS
}

/// One PAM transaction on a scratch service whose file is `stack` (`@MODULE@` standing for
/// the module's path): `run` gets the handle and returns the code of the call under test.
fn transaction(
    stack: &str,
    user: &str,
    answers: &[&str],
    run: impl FnOnce(*mut pam_handle_t) -> c_int,
) -> (c_int, Conversation) {
    let confdir = scratch_dir();
    std::fs::write(confdir.join("lanyard-test"), stack.replace("@MODULE@", module().to_str().unwrap())).unwrap();
    let mut conversation = Conversation {
        answers: answers.iter().map(|a| CString::new(*a).unwrap()).collect(),
        ..Conversation::default()
    };
    let conv = pam_conv { conv: Some(converse), appdata_ptr: (&raw mut conversation).cast() };
    let (service, user, confdir) = (c"lanyard-test", CString::new(user).unwrap(), c_path(&confdir));
    let mut pamh: *mut pam_handle_t = ptr::null_mut();
    // SAFETY: NUL-terminated strings and a pam_conv that outlive the transaction (pam_end
    // below); `pamh` is a valid out-pointer.
    let rc = unsafe { pam_sys::pam_start_confdir(service.as_ptr(), user.as_ptr(), &conv, confdir.as_ptr(), &mut pamh) };
    assert_eq!(rc, PAM_SUCCESS);
    let code = run(pamh);
    // SAFETY: the handle pam_start_confdir made, ended once.
    unsafe { pam_sys::pam_end(pamh, code) };
    (code, conversation)
}

fn c_path(path: &Path) -> CString {
    CString::new(path.to_str().unwrap()).unwrap()
}

fn stack(agent: &FakeAgent, lines: &[&str]) -> String {
    let socket = agent.path().display();
    lines.iter().map(|line| format!("{line} @MODULE@ socket={socket}\n")).collect()
}

fn authenticate(pamh: *mut pam_handle_t) -> c_int {
    // SAFETY: a live handle from pam_start_confdir.
    unsafe { pam_sys::pam_authenticate(pamh, 0) }
}

#[test]
fn libpam_loads_the_module_and_the_password_decides() {
    let agent = fake_agent::start(fake_agent::directory);
    let auth = stack(&agent, &["auth required"]);
    let (code, conversation) = transaction(&auth, "alice", &["right"], authenticate);
    assert_eq!(code, PAM_SUCCESS);
    assert_eq!(conversation.prompts, ["Password: "]);
    assert_eq!(transaction(&auth, "alice", &["wrong"], authenticate).0, PAM_AUTH_ERR);
    assert_eq!(transaction(&auth, "ghost", &["right"], authenticate).0, PAM_USER_UNKNOWN);
}

#[test]
fn the_agent_gets_the_items_the_application_set() {
    let agent = fake_agent::start(fake_agent::directory);
    let set_items_and_authenticate = |pamh| {
        for (item, value) in [(PAM_RHOST, c"198.51.100.4"), (PAM_TTY, c"pts/3")] {
            // SAFETY: a live handle; libpam copies the string.
            assert_eq!(unsafe { pam_sys::pam_set_item(pamh, item, value.as_ptr().cast()) }, PAM_SUCCESS);
        }
        authenticate(pamh)
    };
    transaction(&stack(&agent, &["auth required"]), "alice", &["right"], set_items_and_authenticate);
    let Request::Authenticate { context, .. } = &agent.requests()[0] else { panic!("{:?}", agent.requests()) };
    assert_eq!(
        (context.service.as_str(), context.rhost.as_str(), context.tty.as_str(), context.ruser.as_str()),
        ("lanyard-test", "198.51.100.4", "pts/3", "")
    );
}

#[test]
fn a_module_stacked_with_use_first_pass_gets_the_prompted_password_through_pam_authtok() {
    let agent = fake_agent::start(fake_agent::directory);
    let auth =
        stack(&agent, &["auth required"]) + &stack(&agent, &["auth required"]).replace('\n', " use_first_pass\n");
    let (code, conversation) = transaction(&auth, "alice", &["right"], authenticate);
    assert_eq!(code, PAM_SUCCESS);
    assert_eq!(conversation.prompts, ["Password: "], "asked once");
    assert_eq!(agent.requests().len(), 2, "both lines asked the agent");
    assert_eq!(agent.requests()[0], agent.requests()[1]);
}

#[test]
fn account_checks_show_the_agents_text_through_the_conversation() {
    let agent = fake_agent::start(fake_agent::directory);
    // SAFETY: a live handle from pam_start_confdir.
    let acct_mgmt = |pamh| unsafe { pam_sys::pam_acct_mgmt(pamh, 0) };
    let account = stack(&agent, &["account required"]);
    assert_eq!(transaction(&account, "alice", &[], acct_mgmt).0, PAM_SUCCESS);
    let (code, conversation) = transaction(&account, "locked", &[], acct_mgmt);
    assert_eq!(code, PAM_PERM_DENIED);
    assert_eq!(conversation.shown, ["Your account is locked."]);
}

#[test]
fn chauthtok_runs_both_passes_and_a_forced_change_asks_for_the_current_password() {
    let agent = fake_agent::start(fake_agent::directory);
    let password = stack(&agent, &["password required"]);
    // SAFETY: a live handle from pam_start_confdir.
    let forced = |pamh| unsafe { pam_sys::pam_chauthtok(pamh, PAM_CHANGE_EXPIRED_AUTHTOK) };
    let (code, conversation) = transaction(&password, "alice", &["right", "n3w-Pass", "n3w-Pass"], forced);
    assert_eq!(code, PAM_SUCCESS);
    assert_eq!(conversation.prompts, ["Current password: ", "New password: ", "Retype new password: "]);
    let (code, conversation) = transaction(&password, "alice", &["right", "n3w-Pass", "typo"], forced);
    assert_eq!((code, conversation.shown), (pam_sys::PAM_AUTHTOK_ERR, vec!["Sorry, passwords do not match.".into()]));
}

#[test]
fn setcred_and_close_session_succeed_and_open_session_creates_the_home() {
    let home = scratch_dir().join("alice");
    let path = home.to_str().unwrap().to_owned();
    let agent = fake_agent::start(move |request: &Request| match request {
        Request::OpenSession { .. } => Response::SessionReady {
            home: Some(HomeDirectory { path: path.clone(), uid: 10001, gid: 100, mode: 0o700 }),
        },
        other => fake_agent::directory(other),
    });
    let lines = stack(&agent, &["auth required", "session required"]);
    let (code, conversation) = transaction(&lines, "alice", &["right"], |pamh| {
        // SAFETY: a live handle from pam_start_confdir, for the calls a login makes in order.
        unsafe {
            assert_eq!(pam_sys::pam_authenticate(pamh, 0), PAM_SUCCESS);
            assert_eq!(pam_sys::pam_setcred(pamh, pam_sys::PAM_ESTABLISH_CRED), PAM_SUCCESS);
            assert_eq!(pam_sys::pam_open_session(pamh, 0), PAM_SUCCESS);
            pam_sys::pam_close_session(pamh, 0)
        }
    });
    assert_eq!(code, PAM_SUCCESS);
    assert!(home.is_dir());
    assert_eq!(conversation.shown, [format!("Creating directory '{}'.", home.display())]);
}
