//! The measurements, each run against one subject: NSS calls inside one process (nssbench),
//! enumeration with `getent passwd`, PAM logins with `pamtester` (a new process each, as a
//! login is), lookups and logins while the directory is away, and memory. Each returns
//! [`Measure`]s; the table lines them up by label.

use std::ffi::OsString;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::bulk::{self, Shape};
use crate::subject::{SERVICE, Subject};

/// Which way is better for a row (for reading the ratio).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Lower,
    Higher,
}

/// One figure, or why there is none (`note` also qualifies a figure: "2/5 failed").
#[derive(Debug, Clone, Default)]
pub struct Cell {
    pub value: Option<f64>,
    pub note: Option<String>,
}

impl Cell {
    pub fn value(value: f64) -> Self {
        Cell { value: Some(value), note: None }
    }

    pub fn missing(note: &str) -> Self {
        Cell { value: None, note: Some(note.into()) }
    }

    fn noted(mut self, note: Option<String>) -> Self {
        self.note = note;
        self
    }
}

#[derive(Debug, Clone)]
pub struct Measure {
    pub label: String,
    pub unit: &'static str,
    pub better: Better,
    pub cell: Cell,
}

fn measure(label: impl Into<String>, unit: &'static str, better: Better, cell: Cell) -> Measure {
    Measure { label: label.into(), unit, better, cell }
}

/// Hang guards: a measurement still running after this is killed and reported as such.
const ONLINE_GUARD: Duration = Duration::from_secs(180);
const OUTAGE_GUARD: Duration = Duration::from_secs(60);
/// How long SSSD's background enumeration may take to list every user.
const ENUMERATION_LIMIT: Duration = Duration::from_secs(15 * 60);

/// Runs nssbench in the subject's namespace: its key=value pairs, or `None` if the guard ran out.
fn nssbench(s: &dyn Subject, tool: &Path, args: &[&str], guard: Duration) -> Result<Option<Vec<(String, String)>>> {
    let mut argv: Vec<OsString> = vec![tool.into()];
    argv.extend(args.iter().map(OsString::from));
    let Some(out) = s.run(&argv, guard)? else { return Ok(None) };
    if !out.status.success() {
        bail!("{}: nssbench {args:?} failed:\n{out}", s.name());
    }
    let text = out.stdout();
    let pairs = text.split_whitespace().filter_map(|p| p.split_once('=')).map(|(k, v)| (k.into(), v.into()));
    Ok(Some(pairs.collect()))
}

fn get(figures: &[(String, String)], key: &str) -> Option<f64> {
    figures.iter().find(|(k, _)| k == key).and_then(|(_, v)| v.parse().ok())
}

/// After a first (cold) call, how long each daemon gets to put the answer where its warm path
/// reads it (Lanyard publishes its snapshot 50 ms after a change, SSSD fills its memory cache)
/// before the warm loop starts: otherwise a short loop's first part runs on the cold path.
const WARM_UP_PAUSE: Duration = Duration::from_millis(300);

/// Warm p50 and p99 (µs) of one nssbench loop, after one call and [`WARM_UP_PAUSE`]; the cold
/// call's time is returned too. A loop whose first call found nothing gives no figures, only
/// the note.
fn warm_rows(s: &dyn Subject, tool: &Path, label: &str, args: &[&str]) -> Result<(Vec<Measure>, Option<f64>)> {
    let once: Vec<&str> = args.iter().take(2).copied().chain(["1"]).collect();
    let cold = nssbench(s, tool, &once, ONLINE_GUARD)?
        .and_then(|f| get(&f, "first_us").filter(|_| get(&f, "found") == Some(1.0)));
    std::thread::sleep(WARM_UP_PAUSE);
    let Some(f) = nssbench(s, tool, args, ONLINE_GUARD)? else {
        let killed = Cell::missing(&format!("killed after {}s", ONLINE_GUARD.as_secs()));
        let rows = ["p50", "p99"].map(|q| measure(format!("{label}, warm {q}"), "us", Better::Lower, killed.clone()));
        return Ok((rows.into(), None));
    };
    let found = get(&f, "found") == Some(1.0);
    let misses = get(&f, "misses").unwrap_or(0.0);
    let note = (misses > 0.0).then(|| format!("{misses} misses"));
    let cell = |key| match found {
        true => get(&f, key).map_or_else(|| Cell::missing("?"), Cell::value).noted(note.clone()),
        false => Cell::missing("not found"),
    };
    let rows = vec![
        measure(format!("{label}, warm p50"), "us", Better::Lower, cell("p50_us")),
        measure(format!("{label}, warm p99"), "us", Better::Lower, cell("p99_us")),
    ];
    Ok((rows, cold))
}

/// Warm NSS calls; the first getpwnam of a fresh subject is the cold lookup.
pub fn nss_online(s: &dyn Subject, tool: &Path, shape: Shape) -> Result<Vec<Measure>> {
    let uid = bulk::uid_of(4).to_string();
    let many = shape.many_groups_user();
    let (mut rows, first) = warm_rows(s, tool, "getpwnam", &["pwnam", &bulk::user_name(3), "5000"])?;
    let cold = first.map_or_else(|| Cell::missing("not found"), |us| Cell::value(us / 1000.0));
    rows.insert(0, measure("first lookup after start (cold getpwnam)", "ms", Better::Lower, cold));
    rows.extend(warm_rows(s, tool, "getpwuid", &["pwuid", &uid, "5000"])?.0);
    let label = format!("getgrnam {} ({} members)", bulk::BIG_GROUP, shape.big_group_members());
    rows.extend(warm_rows(s, tool, &label, &["grnam", bulk::BIG_GROUP, "500"])?.0);
    let label = format!("getgrouplist ({} groups)", shape.groups_per_user + 1);
    rows.extend(warm_rows(s, tool, &label, &["grouplist", &many, "500"])?.0);
    Ok(rows)
}

/// `getent passwd | wc -l`, timed in the namespace: (entries, ms), `None` if killed.
fn getent_passwd(s: &dyn Subject, guard: Duration) -> Result<Option<(f64, f64)>> {
    let script = "t0=$EPOCHREALTIME; n=$(getent passwd | wc -l); t1=$EPOCHREALTIME; \
                  echo \"$n $(( ${t1/./} - ${t0/./} ))\"";
    let Some(out) = s.bash(script, guard)? else { return Ok(None) };
    let text = out.stdout();
    let mut words = text.split_whitespace().map(|w| w.parse::<f64>().ok());
    match (words.next().flatten(), words.next().flatten()) {
        (Some(n), Some(us)) => Ok(Some((n, us / 1000.0))),
        _ => bail!("{}: getent passwd timing printed {text:?}:\n{out}", s.name()),
    }
}

/// `getent passwd` twice; `expected` is the number of users in the directory. For SSSD with
/// `enumerate = true` the list fills in the background after the start: `since` is then the
/// start, and the first row is the time until a complete list.
pub fn enumeration(s: &dyn Subject, expected: u32, since: Option<Instant>) -> Result<Vec<Measure>> {
    let mut first = None;
    if let Some(start) = since {
        // Bounded by ENUMERATION_LIMIT; a listing every 5 s (each one keeps sssd_nss busy). A
        // listing that fails (a responder restarting) counts as incomplete.
        while start.elapsed() < ENUMERATION_LIMIT {
            let listed = getent_passwd(s, ONLINE_GUARD).ok().flatten().map_or(0.0, |(n, _)| n);
            if listed >= f64::from(expected) {
                first = Some(Cell::value(start.elapsed().as_secs_f64() * 1000.0).noted(Some("background".into())));
                break;
            }
            std::thread::sleep(Duration::from_secs(5));
        }
    } else if let Some((n, ms)) = getent_passwd(s, ONLINE_GUARD)? {
        first = Some(Cell::value(ms).noted((n < f64::from(expected)).then(|| format!("{n} listed"))));
    }
    let first = first.unwrap_or_else(|| Cell::missing(&format!("incomplete after {}s", ENUMERATION_LIMIT.as_secs())));
    let again = match getent_passwd(s, ONLINE_GUARD)? {
        Some((n, ms)) => Cell::value(ms).noted((n < f64::from(expected)).then(|| format!("{n} listed"))),
        None => Cell::missing("killed"),
    };
    Ok(vec![
        measure("getent passwd, all users: first", "ms", Better::Lower, first),
        measure("getent passwd, all users: again", "ms", Better::Lower, again),
    ])
}

/// One pamtester login of `user` (fixed generated names and passwords only: nothing from outside
/// reaches the script); prints FAIL when it fails.
fn one_login(user: &str) -> String {
    format!(
        "printf '%s\\n' '{pw}' | pamtester {SERVICE} {user} authenticate >/dev/null 2>&1 || echo FAIL",
        pw = bulk::password(user)
    )
}

/// `count` logins in a row, each timed: (sorted ms of the successful ones, failures), or
/// `None` if the guard ran out.
fn sequential(s: &dyn Subject, user: &str, count: u32, guard: Duration) -> Result<Option<(Vec<f64>, usize)>> {
    let script = format!(
        "for i in $(seq {count}); do t0=$EPOCHREALTIME; r=$({one}); t1=$EPOCHREALTIME; \
         echo \"${{r:-OK}} $(( ${{t1/./}} - ${{t0/./}} ))\"; done",
        one = one_login(user)
    );
    let Some(out) = s.bash(&script, guard)? else { return Ok(None) };
    let lines = out.lines();
    let failures = lines.iter().filter(|l| l.starts_with("FAIL")).count();
    let mut ms: Vec<f64> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("OK "))
        .filter_map(|us| us.trim().parse::<f64>().ok())
        .map(|us| us / 1000.0)
        .collect();
    ms.sort_by(f64::total_cmp);
    Ok(Some((ms, failures)))
}

fn median(sorted: &[f64]) -> Option<f64> {
    sorted.get(sorted.len().checked_sub(1)? / 2).copied()
}

fn login_cell(result: Option<(Vec<f64>, usize)>, count: u32, guard: Duration) -> Cell {
    match result {
        None => Cell::missing(&format!("killed after {}s", guard.as_secs())),
        Some((ms, 0)) => median(&ms).map_or_else(|| Cell::missing("?"), Cell::value),
        Some((ms, failed)) => {
            let note = Some(format!("{failed}/{count} failed"));
            median(&ms).map_or_else(|| Cell::missing("all failed"), Cell::value).noted(note)
        }
    }
}

pub fn logins(s: &dyn Subject, user: &str) -> Result<Vec<Measure>> {
    let p50 = login_cell(sequential(s, user, 30, ONLINE_GUARD)?, 30, ONLINE_GUARD);
    let script = format!(
        "t0=$EPOCHREALTIME; for j in 1 2 3 4; do (for i in $(seq 25); do {one}; done) & done; wait; \
         t1=$EPOCHREALTIME; echo \"TOTAL $(( ${{t1/./}} - ${{t0/./}} ))\"",
        one = one_login(user)
    );
    let rate = match s.bash(&script, ONLINE_GUARD)? {
        None => Cell::missing("killed"),
        Some(out) => {
            let text = out.stdout();
            let failed = text.lines().filter(|l| l.starts_with("FAIL")).count();
            let us = text.lines().find_map(|l| l.strip_prefix("TOTAL ")).and_then(|t| t.trim().parse::<f64>().ok());
            let note = (failed > 0).then(|| format!("{failed}/100 failed"));
            us.map_or_else(|| Cell::missing("?"), |us| Cell::value(100.0 / (us / 1e6))).noted(note)
        }
    };
    Ok(vec![
        measure("PAM login (pamtester), p50", "ms", Better::Lower, p50),
        measure("PAM logins, 4 parallel loops", "/s", Better::Higher, rate),
    ])
}

/// With the directory `how` (down or hung): a lookup nobody made before, a cached lookup
/// (`cached`, looked up while online), and logins of `user`, who logged in while online.
pub fn outage(s: &dyn Subject, tool: &Path, how: &str, never: &str, cached: &str, user: &str) -> Result<Vec<Measure>> {
    let first = match nssbench(s, tool, &["pwnam", never, "1"], OUTAGE_GUARD)? {
        None => Cell::missing("killed"),
        Some(f) => {
            let note = (get(&f, "found") == Some(1.0)).then(|| "found".into()).or(Some("not found".into()));
            get(&f, "first_us").map_or_else(|| Cell::missing("?"), |us| Cell::value(us / 1000.0)).noted(note)
        }
    };
    let cached_cell = match nssbench(s, tool, &["pwnam", cached, "50"], OUTAGE_GUARD)? {
        None => Cell::missing(&format!("50 calls >{}s", OUTAGE_GUARD.as_secs())),
        Some(f) if get(&f, "found") == Some(1.0) && get(&f, "misses") == Some(0.0) => {
            get(&f, "p50_us").map_or_else(|| Cell::missing("?"), Cell::value)
        }
        Some(f) => Cell::missing(&format!("{} misses", get(&f, "misses").unwrap_or(0.0) + 1.0)),
    };
    let login = login_cell(sequential(s, user, 5, OUTAGE_GUARD)?, 5, OUTAGE_GUARD);
    Ok(vec![
        measure(format!("directory {how}: lookup never made before"), "ms", Better::Lower, first),
        measure(format!("directory {how}: cached getpwnam p50"), "us", Better::Lower, cached_cell),
        measure(format!("directory {how}: PAM login p50"), "ms", Better::Lower, login),
    ])
}

/// After the directory is back: how long until a lookup nobody made before succeeds (bounded
/// to 90 s, a try every 100 ms).
pub fn back_online(s: &dyn Subject, after: &str, never: &str) -> Result<Measure> {
    let start = Instant::now();
    let argv: Vec<OsString> = ["getent", "passwd", never].map(OsString::from).into();
    let mut cell = Cell::missing("not within 90s");
    while start.elapsed() < Duration::from_secs(90) {
        if s.run(&argv, OUTAGE_GUARD)?.is_some_and(|out| out.status.success()) {
            cell = Cell::value(start.elapsed().as_secs_f64());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(measure(format!("directory back after {after}: new lookup ok after"), "s", Better::Lower, cell))
}

/// Resident memory (VmRSS) and its peak (VmHWM) of the daemon and every process under it
/// (SSSD's monitor starts sssd_be, sssd_nss and sssd_pam), and the cache on disk.
pub fn memory(s: &dyn Subject) -> Vec<Measure> {
    let pids = process_tree(s.pid());
    let sum = |key: &str| pids.iter().filter_map(|&pid| status_kb(pid, key)).sum::<u64>() as f64 / 1024.0;
    let processes = Some(format!("{} processes", pids.len())).filter(|_| pids.len() > 1);
    let cache = s.cache_bytes().map_or_else(|| Cell::missing("no cache"), |b| Cell::value(b as f64 / 1_048_576.0));
    vec![
        measure("daemon memory, VmRSS", "MB", Better::Lower, Cell::value(sum("VmRSS:")).noted(processes)),
        measure("daemon memory, peak (VmHWM)", "MB", Better::Lower, Cell::value(sum("VmHWM:"))),
        measure("cache on disk (allocated)", "MB", Better::Lower, cache),
    ]
}

fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `pid` and its descendants, from the parent field of /proc/*/stat.
fn process_tree(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| {
            let stat = fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
            Some((p, ppid))
        })
        .collect();
    let mut tree = vec![pid];
    let mut i = 0;
    while let Some(&parent) = tree.get(i) {
        tree.extend(parents.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    tree
}
