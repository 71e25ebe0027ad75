//! What most tests start with, and assertions shared between areas.

use std::ffi::OsStr;

use lanyard_tests::fixture::user_dn;
use lanyard_tests::pam::{PamCode, pam_error};
use lanyard_tests::{Agent, AgentConfig, Namespace, Output, Pam, Slapd, nss_module_path};

/// A slapd, an agent pointed at it and a namespace using that agent. Fields drop in order:
/// the namespace files, then the agent, then slapd.
pub struct Setup {
    pub ns: Namespace,
    pub agent: Agent,
    pub slapd: Slapd,
}

/// slapd with the fixture and an agent over StartTLS with the default config.
pub fn setup() -> Setup {
    setup_with(|config| config)
}

/// Like [`setup`], with the agent's config adjusted by `adjust`.
pub fn setup_with(adjust: impl FnOnce(AgentConfig) -> AgentConfig) -> Setup {
    let slapd = Slapd::start().expect("starting slapd");
    let agent = Agent::start(&adjust(AgentConfig::for_slapd(&slapd))).expect("starting lanyardd");
    let ns = Namespace::for_agent(&agent).expect("preparing the namespace");
    Setup { ns, agent, slapd }
}

/// getent's "key not found in database" (glibc uses it for NOTFOUND and UNAVAIL alike).
pub const GETENT_NOT_FOUND: i32 = 2;

/// Asserts `out` succeeded, showing the agent's log if not.
#[track_caller]
pub fn assert_success(out: &Output, agent: &Agent) {
    assert_eq!(out.code(), Some(0), "{out}\n--- lanyardd log ---\n{}", agent.log());
}

/// Asserts getent exited 2 with no output.
#[track_caller]
pub fn assert_not_found(out: &Output, agent: &Agent) {
    assert_eq!(out.code(), Some(GETENT_NOT_FOUND), "{out}\n--- lanyardd log ---\n{}", agent.log());
    assert_eq!(out.stdout(), "", "{out}");
}

/// A slapd, an agent pointed at it and the pamtester stack using that agent. Fields drop in
/// order: the stack's files, then the agent, then slapd.
pub struct PamSetup {
    pub pam: Pam,
    pub agent: Agent,
    pub slapd: Slapd,
}

/// slapd, an agent with the default config, and the test service with no module arguments.
pub fn pam_setup() -> PamSetup {
    pam_setup_with(|config| config, &[])
}

/// Like [`pam_setup`], with the agent's config adjusted by `adjust` and the module given
/// `module_args`.
pub fn pam_setup_with(adjust: impl FnOnce(AgentConfig) -> AgentConfig, module_args: &[&str]) -> PamSetup {
    let slapd = Slapd::start().expect("starting slapd");
    let agent = Agent::start(&adjust(AgentConfig::for_slapd(&slapd))).expect("starting lanyardd");
    let pam = Pam::new(&agent.run_dir(), module_args).expect("preparing the PAM stack");
    PamSetup { pam, agent, slapd }
}

/// Asserts pamtester succeeded, showing the agent's log if not.
#[track_caller]
pub fn assert_pam_success(out: &Output, agent: &Agent) {
    assert_eq!(out.code(), Some(0), "{out}\n--- lanyardd log ---\n{}", agent.log());
    assert_eq!(pam_error(out), None, "{out}");
}

/// Asserts pamtester failed with `code` (pamtester exits 1 and prints pam_strerror's text).
#[track_caller]
pub fn assert_pam_error(out: &Output, code: PamCode, agent: &Agent) {
    assert_eq!(
        (out.code(), pam_error(out).as_deref()),
        (Some(1), Some(code.text())),
        "{out}\n--- lanyardd log ---\n{}",
        agent.log()
    );
}

/// How many times slapd logged a simple bind as `user` (any result) since `mark`.
pub fn binds_since(slapd: &Slapd, mark: usize, user: &str) -> usize {
    Slapd::bind_attempts(&slapd.log_since(mark), &user_dn(user))
}

/// Thaws a frozen agent even when an assertion fails, so it can act on SIGTERM at drop.
pub struct Thaw<'a>(pub &'a mut Agent);

impl Drop for Thaw<'_> {
    fn drop(&mut self) {
        let _ = self.0.thaw();
    }
}

/// `enum nss_status` from glibc's `<nss.h>`.
pub const NSS_STATUS_UNAVAIL: i32 = -1;
pub const NSS_STATUS_NOTFOUND: i32 = 0;
pub const NSS_STATUS_SUCCESS: i32 = 1;

/// What `_nss_lanyard_getpwnam_r` returned, as `lanyard-nss-probe` printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NssAnswer {
    pub status: i32,
    pub errno: i32,
    /// `pw_name` and `pw_uid` on SUCCESS.
    pub found: Option<(String, u32)>,
}

/// Calls the built module's `_nss_lanyard_getpwnam_r` for `name` inside `ns` (so
/// `/run/lanyard/socket` is the agent's), through `lanyard-nss-probe`: unlike getent, this
/// tells NOTFOUND from UNAVAIL. Cargo builds the probe (a binary of this crate) before it runs
/// this suite; the module comes from `cargo build --workspace` ([`nss_module_path`]).
pub fn getpwnam_status(ns: &Namespace, name: &str) -> NssAnswer {
    let probe = OsStr::new(env!("CARGO_BIN_EXE_lanyard-nss-probe"));
    let module = nss_module_path();
    let out = ns.run(&[probe, module.as_os_str(), OsStr::new(name)]).expect("running lanyard-nss-probe");
    assert_eq!(out.code(), Some(0), "{out}");
    parse_probe_line(out.stdout().trim_end()).unwrap_or_else(|| panic!("unexpected probe output:\n{out}"))
}

/// `status=N errno=N[ name=NAME uid=N]`.
fn parse_probe_line(line: &str) -> Option<NssAnswer> {
    let rest = line.strip_prefix("status=")?;
    let (status, rest) = rest.split_once(" errno=")?;
    let (errno, found) = match rest.split_once(" name=") {
        None => (rest, None),
        Some((errno, entry)) => {
            let (name, uid) = entry.rsplit_once(" uid=")?;
            (errno, Some((name.to_owned(), uid.parse().ok()?)))
        }
    };
    Some(NssAnswer { status: status.parse().ok()?, errno: errno.parse().ok()?, found })
}

/// Asserts the module answered `status` (and, unless it succeeded, errno `ENOENT`), showing
/// the agent's log if not.
#[track_caller]
pub fn assert_nss_status(answer: &NssAnswer, status: i32, agent: &Agent) {
    let errno = if status == NSS_STATUS_SUCCESS { 0 } else { libc::ENOENT };
    assert_eq!((answer.status, answer.errno), (status, errno), "{answer:?}\n--- lanyardd log ---\n{}", agent.log());
}

#[test]
fn probe_lines_parse_and_anything_else_does_not() {
    assert_eq!(
        parse_probe_line("status=1 errno=0 name=alice uid=10001"),
        Some(NssAnswer { status: 1, errno: 0, found: Some(("alice".into(), 10001)) })
    );
    assert_eq!(parse_probe_line("status=-1 errno=2"), Some(NssAnswer { status: -1, errno: 2, found: None }));
    for bad in ["", "status=1", "status=x errno=0", "status=1 errno=0 name=alice", "lanyard-nss-probe: dlopen"] {
        assert_eq!(parse_probe_line(bad), None, "{bad:?}");
    }
}
