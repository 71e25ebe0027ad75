//! What most tests start with, and assertions shared between areas.

use lanyard_tests::fixture::user_dn;
use lanyard_tests::pam::{PamCode, pam_error};
use lanyard_tests::{Agent, AgentConfig, Namespace, Output, Pam, Slapd};

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
