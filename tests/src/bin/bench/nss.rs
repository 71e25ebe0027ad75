//! NSS calls timed by nssbench inside one process.

use std::path::Path;

use anyhow::{Context, Result, bail};
use lanyard_tests::Namespace;

/// (label, nssbench arguments). The first call of each loop is the cold one where noted.
const ONLINE: [(&str, &[&str]); 7] = [
    ("getpwnam alice (first call: cold, agent asks slapd)", &["pwnam", "alice", "20000"]),
    ("getpwuid 10001", &["pwuid", "10001", "20000"]),
    ("getpwnam of an unknown name (negative answer)", &["pwnam", "nosuchuser", "20000"]),
    ("getgrnam biggroup (5001 members)", &["grnam", "biggroup", "2000"]),
    ("getgrouplist alice (5 groups)", &["grouplist", "alice", "5000"]),
    ("getpwent: whole enumeration, cold", &["enum-pw"]),
    ("getpwent: whole enumeration, warm", &["enum-pw"]),
];

pub fn table_header() {
    println!("{:<58} {:>9} {:>9} {:>10} {:>10} {:>6}", "call", "p50 us", "p99 us", "first us", "total ms", "found");
}

pub fn online(ns: &Namespace, nssbench: &Path) -> Result<()> {
    for (label, args) in ONLINE {
        row(label, &measure(ns, nssbench, args)?, args[0].starts_with("enum"));
    }
    Ok(())
}

/// One table row from nssbench's key=value figures.
pub fn row(label: &str, figures: &[(String, String)], enumeration: bool) {
    let get = |key: &str| figures.iter().find(|(k, _)| k == key).map_or("-", |(_, v)| v.as_str()).to_owned();
    let total_ms = get("total_us").parse::<f64>().map_or("-".into(), |us| format!("{:.1}", us / 1000.0));
    let found = if enumeration { get("count") } else { get("found") };
    println!("{label:<58} {:>9} {:>9} {:>10} {total_ms:>10} {found:>6}", get("p50_us"), get("p99_us"), get("first_us"));
}

/// Runs nssbench in the namespace and returns its key=value pairs.
pub fn measure(ns: &Namespace, nssbench: &Path, args: &[&str]) -> Result<Vec<(String, String)>> {
    let mut argv = vec![nssbench.as_os_str().to_owned()];
    argv.extend(args.iter().map(Into::into));
    let out = ns.run(&argv)?;
    if !out.status.success() {
        bail!("nssbench {args:?}: {}: {}", out.status, out.stderr());
    }
    let pairs = out
        .stdout()
        .split_whitespace()
        .filter_map(|pair| pair.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect::<Vec<_>>();
    if pairs.is_empty() {
        return Err(anyhow::anyhow!("nssbench printed nothing")).context(format!("{args:?}"));
    }
    Ok(pairs)
}
