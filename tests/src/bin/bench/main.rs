//! `lanyard-bench NSSBENCH`: times Lanyard with the `nssbench` tool from `../shared/tools`
//! (run by `tests/bench.sh`, which builds it and a release build of the workspace). Starts the
//! fixture slapd and lanyardd, runs each measurement in the test namespace, prints one table
//! and stops everything.
//!
//! - [`nss`]: NSS calls inside one process (no process start in the figures).
//! - [`logins`]: PAM logins through `pamtester` (a new process each, as a login is).
//! - [`offline`]: the same with slapd stopped and with slapd hung, and the wait on the first
//!   failure.
//!
//! Not part of the test run: it prints figures and asserts nothing about them.

mod logins;
mod nss;
mod offline;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use lanyard_tests::pam::Pam;
use lanyard_tests::{
    Agent, AgentConfig, Namespace, OfflineConfig, Slapd, fixture, lanyardd_path, nss_module_path, pam_module_path,
    require_built,
};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lanyard-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let Some(nssbench) = std::env::args_os().nth(1).map(PathBuf::from) else {
        bail!("usage: lanyard-bench PATH-TO-NSSBENCH (tests/bench.sh builds it)");
    };
    for path in [lanyardd_path(), nss_module_path(), pam_module_path(), nssbench.clone()] {
        require_built(&path)?;
    }
    let mut slapd = Slapd::start()?;
    // The shipped defaults, except a shorter probe interval so the offline part is quick.
    let config = AgentConfig::for_slapd(&slapd).offline(OfflineConfig::default().probe_interval("1s"));
    let agent = Agent::start(&config)?;
    let ns = Namespace::for_agent(&agent)?;
    let pam = Pam::for_agent(&agent)?;
    println!(
        "Lanyard {} build; slapd on loopback over StartTLS; {} users, {} groups; directory.timeout 3s",
        lanyard_tests::profile(),
        fixture::USER_COUNT,
        fixture::GROUP_COUNT
    );
    nss::table_header();
    nss::online(&ns, &nssbench)?;
    nss::complete(&slapd, &nssbench)?;
    logins::online(&pam)?;
    offline::down_then_hung(&mut slapd, &ns, &pam, &nssbench)?;
    if std::env::var_os("LANYARD_BENCH_AGENT_LOG").is_some() {
        println!("\nlanyardd log:\n{}", agent.log());
    }
    drop((pam, ns, agent, slapd));
    Ok(())
}
