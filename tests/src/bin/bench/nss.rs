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
    for (i, (label, args)) in ONLINE.iter().enumerate() {
        // Warm: one call first and a pause, so the loop does not start before the agent has
        // published the answer to its snapshot (50 ms after a change). The first row keeps its
        // cold first call; enumeration has no loop.
        if i > 0 && !args[0].starts_with("enum") {
            measure(ns, nssbench, &[args[0], args[1], "1"])?;
            std::thread::sleep(WARM_UP_PAUSE);
        }
        row(label, &measure(ns, nssbench, args)?, args[0].starts_with("enum"));
    }
    module_only(ns, nssbench)
}

const WARM_UP_PAUSE: std::time::Duration = std::time::Duration::from_millis(300);

/// The same warm calls with `lanyard` alone in nsswitch.conf: without glibc's `files` module
/// scanning /etc/passwd first (about 3.5 us here), what is left is Lanyard's own share.
const MODULE_ONLY: [(&str, &[&str]); 4] = [
    ("  lanyard alone in nsswitch.conf: getpwnam alice", &["pwnam", "alice", "20000"]),
    ("  lanyard alone: getpwnam of an unknown name", &["pwnam", "nosuchuser", "20000"]),
    ("  lanyard alone: getgrnam biggroup (5001 members)", &["grnam", "biggroup", "2000"]),
    ("  lanyard alone: getgrouplist alice (5 groups)", &["grouplist", "alice", "5000"]),
];

/// With `cache.enumerate`: the snapshot holds the whole directory, so an unknown name is
/// answered in-process too. A second agent, on the same slapd.
pub fn complete(slapd: &lanyard_tests::Slapd, nssbench: &Path) -> Result<()> {
    let agent = lanyard_tests::Agent::start(&lanyard_tests::AgentConfig::for_slapd(slapd).enumerate(true))?;
    let ns = Namespace::for_agent(&agent)?;
    // The listings are fetched in the background at start: wait until an unknown name no
    // longer reaches the agent (its lookup counter stands still), bounded.
    lanyard_tests::poll_until(
        "a complete snapshot",
        std::time::Duration::from_secs(30),
        std::time::Duration::from_millis(100),
        || {
            let before = lookups(&agent)?;
            measure(&ns, nssbench, &["pwnam", "nosuchuser", "10"])?;
            Ok((lookups(&agent)? == before).then_some(()))
        },
    )?;
    for (label, args) in COMPLETE {
        row(label, &measure(&ns, nssbench, args)?, false);
    }
    drop((ns, agent));
    Ok(())
}

/// Requests that reached the agent (`lanyard_lookups_total`).
fn lookups(agent: &lanyard_tests::Agent) -> Result<String> {
    use lanyard_proto::{Client, Deadlines, Request, Response};
    match Client::call(&agent.socket(), &Request::Metrics, Deadlines::default())? {
        Response::Metrics(text) => {
            Ok(text.lines().find(|l| l.starts_with("lanyard_lookups_total ")).unwrap_or("").into())
        }
        other => bail!("metrics: {other:?}"),
    }
}

const COMPLETE: [(&str, &[&str]); 2] = [
    ("cache.enumerate: getpwnam of an unknown name", &["pwnam", "nosuchuser", "20000"]),
    ("cache.enumerate: getgrouplist alice (5 groups)", &["grouplist", "alice", "5000"]),
];

fn module_only(ns: &Namespace, nssbench: &Path) -> Result<()> {
    let dir = lanyard_tests::TempDir::new("bench-nsswitch")?;
    let conf = dir.join("nsswitch.conf");
    std::fs::write(&conf, "passwd: lanyard\ngroup: lanyard\n").context("writing nsswitch.conf")?;
    for (label, args) in MODULE_ONLY {
        // Inside the namespace, over the test nsswitch.conf: the host's is never touched.
        let mut argv: Vec<std::ffi::OsString> = vec![
            "sh".into(),
            "-c".into(),
            "mount -n --bind \"$0\" /etc/nsswitch.conf && exec \"$@\"".into(),
            conf.as_os_str().to_owned(),
            nssbench.as_os_str().to_owned(),
        ];
        argv.extend(args.iter().map(Into::into));
        row(label, &parse(ns.run(&argv)?, args)?, false);
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
    parse(ns.run(&argv)?, args)
}

fn parse(out: lanyard_tests::Output, args: &[&str]) -> Result<Vec<(String, String)>> {
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
