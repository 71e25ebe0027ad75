//! The directory away: first stopped (connections refused), then hung (SIGSTOP: TCP accepts,
//! nothing answers). For each: how long the first lookup that finds it gone waits, then
//! cached and uncached lookups and logins while offline.

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail};
use lanyard_tests::pam::Pam;
use lanyard_tests::{Namespace, Slapd};

use crate::{logins, nss};

pub fn down_then_hung(slapd: &mut Slapd, ns: &Namespace, pam: &Pam, nssbench: &Path) -> Result<()> {
    slapd.stop()?;
    away(ns, pam, nssbench, "down", "user0200")?;
    slapd.start_again()?;
    wait_until_online(ns, "user0250")?;
    slapd.freeze()?;
    let result = away(ns, pam, nssbench, "hung", "user0210");
    slapd.thaw()?;
    result
}

fn away(ns: &Namespace, pam: &Pam, nssbench: &Path, how: &str, uncached: &str) -> Result<()> {
    // A name never asked for: the agent must go to the directory, find it gone, go offline.
    let first = nss::measure(ns, nssbench, &["pwnam", uncached, "1"])?;
    nss::row(&format!("directory {how}: first lookup that finds it gone"), &first, false);
    let rows: [(String, [&str; 3]); 2] = [
        (format!("directory {how}: getpwnam alice (cached)"), ["pwnam", "alice", "20000"]),
        (format!("directory {how}: getpwnam never cached (unavailable)"), ["pwnam", "user0299", "2000"]),
    ];
    for (label, args) in &rows {
        nss::row(label, &nss::measure(ns, nssbench, args)?, false);
    }
    logins::sequential(pam, &format!("directory {how}: offline PAM authenticate, ms (p50, p90)"), 20)
}

/// Bounded: up to 40 tries, 250 ms apart (the bench's probe interval is 1 s).
fn wait_until_online(ns: &Namespace, never_cached: &str) -> Result<()> {
    for _ in 0..40 {
        if ns.getent("passwd", &[never_cached])?.status.success() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    bail!("the agent did not come back online within 10 s of slapd's restart")
}
