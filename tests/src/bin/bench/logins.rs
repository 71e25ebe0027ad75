//! PAM logins through pamtester: each run is a new process, as a login is. bash's
//! `$EPOCHREALTIME` times each run without starting another process.

use anyhow::{Result, bail};
use lanyard_tests::fixture;
use lanyard_tests::pam::Pam;

/// One `pamtester authenticate` for alice with her password; prints FAIL if it fails.
fn one_login() -> String {
    // Fixed fixture values only: nothing from outside reaches this script.
    format!(
        "printf '%s\\n' '{password}' | pamtester {service} alice authenticate >/dev/null 2>&1 || echo FAIL",
        password = fixture::ALICE.password,
        service = lanyard_tests::pam::SERVICE,
    )
}

pub fn online(pam: &Pam) -> Result<()> {
    sequential(pam, "PAM authenticate via pamtester, ms (p50, p90)", 50)?;
    let one = one_login();
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
        "{:<58} {:>9.1} logins/s (200 logins, 4 loops)",
        "PAM authenticate, 4 parallel loops",
        200.0 / (total_us / 1e6)
    );
    Ok(())
}

/// `count` logins in a row; prints p50 and p90 in milliseconds.
pub fn sequential(pam: &Pam, label: &str, count: u32) -> Result<()> {
    let one = one_login();
    let script = format!(
        "for i in $(seq {count}); do t0=$EPOCHREALTIME; {one}; t1=$EPOCHREALTIME; \
         echo $(( (${{t1/./}} - ${{t0/./}}) )); done"
    );
    let out = pam.bash(&script)?;
    let text = out.stdout();
    if text.contains("FAIL") {
        bail!("a pamtester login failed ({label}):\n{text}\n{}", out.stderr());
    }
    let mut micros: Vec<f64> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
    micros.sort_by(f64::total_cmp);
    let pick =
        |q: f64| micros.get(((micros.len() as f64 - 1.0) * q).round() as usize).map_or(f64::NAN, |us| us / 1000.0);
    println!("{label:<58} {:>9.2} {:>9.2} (p90)   {} runs", pick(0.5), pick(0.9), micros.len());
    Ok(())
}
