//! What most tests start with, and assertions shared between areas.

use lanyard_tests::{Agent, AgentConfig, Namespace, Output, Slapd};

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
