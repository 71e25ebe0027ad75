//! `lanyardctl doctor`: the troubleshooting checklist, one line per step.
//!
//! - `directory`: with `directory.domain`, the SRV lookup first; then per server (configured or
//!   found), DNS, TCP, TLS, the service bind, a base search, a sample user, and whether the
//!   server would take a simple bind in clear.
//! - `host`: `nsswitch.conf` and the PAM stack.
//!
//! Steps of one server stop at its first failure (later ones could only fail the same way).
//! The first failing step of the run carries a hint; the exit status is 1 when any step fails.

mod directory;
mod host;

use std::path::Path;

use crate::cli::DoctorArgs;
use crate::config::Config;
use crate::ctl::Exit;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Warn,
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What was checked: `config`, `dns ldap://host`, `tls ldap://host`, `nsswitch`, ...
    pub name: String,
    pub outcome: Outcome,
    pub detail: String,
    /// What to do about a failure (shown for the first failure only) or a warning.
    pub hint: Option<&'static str>,
}

impl Step {
    pub fn ok(name: impl Into<String>, detail: impl Into<String>) -> Step {
        Step { name: name.into(), outcome: Outcome::Ok, detail: detail.into(), hint: None }
    }

    pub fn warn(name: impl Into<String>, detail: impl Into<String>, hint: &'static str) -> Step {
        Step { name: name.into(), outcome: Outcome::Warn, detail: detail.into(), hint: Some(hint) }
    }

    pub fn fail(name: impl Into<String>, detail: impl Into<String>, hint: &'static str) -> Step {
        Step { name: name.into(), outcome: Outcome::Fail, detail: detail.into(), hint: Some(hint) }
    }
}

/// Runs every step and prints the report; [`Exit::Negative`] when a step failed.
pub fn run(config_path: &Path, args: &DoctorArgs) -> Exit {
    let mut steps = Vec::new();
    match Config::load(config_path) {
        Ok(config) => {
            steps.push(Step::ok("config", format!("{} parses and is safe", config_path.display())));
            steps.extend(directory::check(&config));
        }
        Err(e) => steps.push(Step::fail(
            "config",
            e.to_string(),
            "fix the key named above (`lanyardctl config check` shows the same message); \
             the bind password file must be owned by root and not readable by group or others",
        )),
    }
    steps.push(host::nsswitch(&args.nsswitch));
    steps.push(host::pam(&args.pam_dir));
    print!("{}", render(&steps));
    if steps.iter().any(|s| s.outcome == Outcome::Fail) { Exit::Negative } else { Exit::Success }
}

/// The report: `ok  `/`warn`/`FAIL`, the step, its detail; hints under warnings and under the
/// first failure.
pub fn render(steps: &[Step]) -> String {
    let mut out = String::new();
    let mut failed = false;
    for step in steps {
        let word = match step.outcome {
            Outcome::Ok => "ok  ",
            Outcome::Warn => "warn",
            Outcome::Fail => "FAIL",
        };
        out += &format!("{word}  {}: {}\n", step.name, step.detail);
        let show_hint = match step.outcome {
            Outcome::Ok => false,
            Outcome::Warn => true,
            Outcome::Fail => !std::mem::replace(&mut failed, true),
        };
        if let (true, Some(hint)) = (show_hint, step.hint) {
            out += &format!("      hint: {hint}\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_failure_carries_its_hint() {
        let steps = [
            Step::ok("config", "fine"),
            Step::fail("tcp a", "refused", "start it"),
            Step::warn("pam", "no module", "add it"),
            Step::fail("tcp b", "refused", "start it too"),
        ];
        assert_eq!(
            render(&steps),
            "ok    config: fine\nFAIL  tcp a: refused\n      hint: start it\nwarn  pam: no module\n      hint: add it\n\
             FAIL  tcp b: refused\n"
        );
    }
}
