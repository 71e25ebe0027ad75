//! `lanyard-bench NSSBENCH`: times NSS calls through Lanyard inside one process, with the
//! `nssbench` tool from `../shared/tools` (run by `tests/bench.sh`, which builds it and a
//! release build of the workspace). Starts the fixture slapd and lanyardd, runs each
//! measurement in the test namespace, prints one table and stops everything.
//!
//! Not part of the test run: it prints figures and asserts nothing about them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use lanyard_tests::pam::Pam;
use lanyard_tests::{
    Agent, AgentConfig, Namespace, Slapd, fixture, lanyardd_path, nss_module_path, pam_module_path, require_built,
};

/// (label, nssbench arguments). The first call of each loop is the cold one where noted.
const RUNS: [(&str, &[&str]); 7] = [
    ("getpwnam alice (first call: cold, agent asks slapd)", &["pwnam", "alice", "20000"]),
    ("getpwuid 10001", &["pwuid", "10001", "20000"]),
    ("getpwnam of an unknown name (negative answer)", &["pwnam", "nosuchuser", "20000"]),
    ("getgrnam biggroup (5001 members)", &["grnam", "biggroup", "2000"]),
    ("getgrouplist alice (5 groups)", &["grouplist", "alice", "5000"]),
    ("getpwent: whole enumeration, cold", &["enum-pw"]),
    ("getpwent: whole enumeration, warm", &["enum-pw"]),
];

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
    let slapd = Slapd::start()?;
    let agent = Agent::start(&AgentConfig::for_slapd(&slapd))?;
    let ns = Namespace::for_agent(&agent)?;
    println!(
        "Lanyard {} build; slapd on loopback over StartTLS; {} users, {} groups",
        lanyard_tests::profile(),
        fixture::USER_COUNT,
        fixture::GROUP_COUNT
    );
    println!("{:<52} {:>9} {:>9} {:>9} {:>10} {:>8}", "call", "p50 us", "p99 us", "first us", "total ms", "found");
    for (label, args) in RUNS {
        let figures = measure(&ns, &nssbench, args)?;
        let get = |key: &str| figures.iter().find(|(k, _)| k == key).map_or("-", |(_, v)| v.as_str()).to_owned();
        let total_ms = get("total_us").parse::<f64>().map_or("-".into(), |us| format!("{:.1}", us / 1000.0));
        let found = if args[0].starts_with("enum") { get("count") } else { get("found") };
        println!(
            "{label:<52} {:>9} {:>9} {:>9} {total_ms:>10} {found:>8}",
            get("p50_us"),
            get("p99_us"),
            get("first_us")
        );
    }
    pam_logins(&agent)?;
    if std::env::var_os("LANYARD_BENCH_AGENT_LOG").is_some() {
        println!("\nlanyardd log:\n{}", agent.log());
    }
    drop(agent);
    drop(slapd);
    Ok(())
}

/// 50 sequential `pamtester authenticate` runs (each a new process: what a login costs), then
/// four such loops in parallel for a rate. bash's `$EPOCHREALTIME` times each run without
/// starting another process.
fn pam_logins(agent: &Agent) -> Result<()> {
    // Fixed fixture values only: nothing from outside reaches this script.
    let one = format!(
        "printf '%s\\n' '{password}' | pamtester {service} alice authenticate >/dev/null 2>&1 || echo FAIL",
        password = fixture::ALICE.password,
        service = lanyard_tests::pam::SERVICE,
    );
    let sequential = format!(
        "for i in $(seq 50); do t0=$EPOCHREALTIME; {one}; t1=$EPOCHREALTIME; \
         echo $(( (${{t1/./}} - ${{t0/./}}) )); done"
    );
    let pam = Pam::for_agent(agent)?;
    let out = pam.bash(&sequential)?;
    let text = out.stdout();
    if text.contains("FAIL") {
        bail!("a pamtester login failed:\n{text}\n{}", out.stderr());
    }
    let mut micros: Vec<f64> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
    micros.sort_by(f64::total_cmp);
    let pick =
        |q: f64| micros.get(((micros.len() as f64 - 1.0) * q).round() as usize).map_or(f64::NAN, |us| us / 1000.0);
    println!(
        "{:<52} {:>9.2} {:>9.2} (p90, ms)   {} runs",
        "PAM authenticate via pamtester, ms (p50, p90)",
        pick(0.5),
        pick(0.9),
        micros.len()
    );
    let parallel = format!(
        "t0=$EPOCHREALTIME; for j in 1 2 3 4; do (for i in $(seq 50); do {one}; done) & done; wait; \
         t1=$EPOCHREALTIME; echo $(( (${{t1/./}} - ${{t0/./}}) ))"
    );
    let out = pam.bash(&parallel)?;
    let text = out.stdout();
    if text.contains("FAIL") {
        bail!("a parallel pamtester login failed:\n{text}");
    }
    let total_us: f64 = text.lines().last().and_then(|l| l.trim().parse().ok()).unwrap_or(f64::NAN);
    println!(
        "{:<52} {:>9.1} logins/s (200 logins, 4 loops)",
        "PAM authenticate, 4 parallel loops",
        200.0 / (total_us / 1e6)
    );
    Ok(())
}

/// Runs nssbench in the namespace and returns its key=value pairs.
fn measure(ns: &Namespace, nssbench: &Path, args: &[&str]) -> Result<Vec<(String, String)>> {
    let mut argv = vec![nssbench.as_os_str().to_owned()];
    argv.extend(args.iter().map(Into::into));
    let out = ns.run(&argv)?;
    if !out.status.success() {
        bail!("nssbench {args:?}: {}: {}", out.status, out.stderr());
    }
    let line = out.stdout();
    let pairs = line
        .split_whitespace()
        .filter_map(|pair| pair.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect::<Vec<_>>();
    if pairs.is_empty() {
        return Err(anyhow::anyhow!("nssbench printed nothing")).context(format!("{args:?}"));
    }
    Ok(pairs)
}
