//! `lanyard-compare --nssbench PATH [--users N] [--groups-per-user M] [--chart PATH]`:
//! Lanyard, SSSD and nss-pam-ldapd side by side against one slapd (run by `tests/compare.sh`,
//! which installs the Debian packages, builds nssbench and a release build of the workspace).
//!
//! - [`bulk`]: the directory at scale, added to the harness fixture with slapadd.
//! - [`subject`], [`sssd`], [`nslcd`]: each system, in its own private mount namespace.
//! - [`measure`]: the measurements; [`report`]: the table and the SVG chart.
//!
//! The subjects run one at a time (the others idle) against the same slapd; the outages
//! (slapd stopped, then SIGSTOPped) are applied once and measured on all three. Prints figures
//! and asserts nothing about them.

mod bulk;
mod measure;
mod nslcd;
mod report;
mod sssd;
mod subject;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use lanyard_tests::{Slapd, fixture, lanyardd_path, nss_module_path, pam_module_path, require_built, target_dir};

use crate::bulk::Shape;
use crate::report::Table;
use crate::subject::Subject;

struct Args {
    nssbench: PathBuf,
    shape: Shape,
    chart: Option<PathBuf>,
    /// Skip the second SSSD (with `enumerate = true`): at 100,000 users its background
    /// enumeration alone takes longer than everything else.
    sssd_enumeration: bool,
}

fn parse_args() -> Result<Args> {
    let usage = "usage: lanyard-compare --nssbench PATH [--users N] [--groups-per-user M] [--chart PATH] \
                 [--skip-sssd-enumeration]";
    let (mut nssbench, mut chart, mut sssd_enumeration) = (None, None, true);
    let mut shape = Shape { users: 10_000, groups_per_user: 50 };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value; {usage}"));
        match arg.as_str() {
            "--nssbench" => nssbench = Some(PathBuf::from(value()?)),
            "--chart" => chart = Some(PathBuf::from(value()?)),
            "--users" => shape.users = value()?.parse().context("--users")?,
            "--groups-per-user" => shape.groups_per_user = value()?.parse().context("--groups-per-user")?,
            "--skip-sssd-enumeration" => sssd_enumeration = false,
            _ => bail!("unknown argument {arg}; {usage}"),
        }
    }
    // The named rows use users 3, 4 and 100-104; the many-groups user is the last one.
    if shape.users < 200 || shape.groups_per_user == 0 {
        bail!("--users must be at least 200 and --groups-per-user at least 1");
    }
    Ok(Args { nssbench: nssbench.context(usage)?, shape, chart, sssd_enumeration })
}

/// How long the daemons are left idle before their memory is read.
const SETTLE_BEFORE_MEMORY: std::time::Duration = std::time::Duration::from_secs(3);

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lanyard-compare: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let args = parse_args()?;
    for path in [lanyardd_path(), nss_module_path(), pam_module_path(), args.nssbench.clone()] {
        require_built(&path)?;
    }
    let shape = args.shape;
    let nssbench = args.nssbench.as_path();
    let started = Instant::now();
    let ldif = bulk::ldif(shape);
    let generated = started.elapsed();
    let mut slapd = Slapd::start_with_extra_ldif(&ldif)?;
    drop(ldif);
    let all_users = shape.users + fixture::USER_COUNT as u32;
    eprintln!(
        "setup: {} users, {} groups generated in {:.1}s; slapd loaded (slapadd -q) and up after {:.1}s",
        all_users,
        shape.groups() + 2 + fixture::GROUP_COUNT as u32,
        generated.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );

    let mut subjects: Vec<Box<dyn Subject>> = Vec::new();
    let t = Instant::now();
    subjects.push(Box::new(subject::Lanyard::start(&slapd)?));
    let lanyard_start = t.elapsed();
    let t = Instant::now();
    subjects.push(Box::new(sssd::Sssd::start(&slapd, false)?));
    let sssd_start = t.elapsed();
    let t = Instant::now();
    subjects.push(Box::new(nslcd::Nslcd::start(&slapd)?));
    eprintln!(
        "setup: daemons ready after Lanyard {:.2}s, SSSD {:.2}s, nslcd {:.2}s",
        lanyard_start.as_secs_f64(),
        sssd_start.as_secs_f64(),
        t.elapsed().as_secs_f64()
    );

    let mut table = Table::new(subjects.iter().map(|s| s.name()).collect());
    let login_user = bulk::user_name(2);
    for (column, s) in subjects.iter().enumerate() {
        eprintln!("measuring {} online", s.name());
        table.add(column, measure::nss_online(s.as_ref(), nssbench, shape)?);
        table.add(column, measure::logins(s.as_ref(), &login_user)?);
    }
    outages(&mut slapd, &mut subjects, &mut table, nssbench)?;

    // Enumeration last: it loads every user into the caches, which the outage rows must not
    // find there. SSSD lists nothing without `enumerate = true`, which also makes it load the
    // whole directory in the background after its start: a second SSSD, timed from its start.
    for (column, s) in subjects.iter().enumerate() {
        if s.name() == "SSSD" {
            continue;
        }
        eprintln!("measuring {}: enumeration", s.name());
        table.add(column, measure::enumeration(s.as_ref(), all_users, None)?);
    }
    // Memory once every daemon has been idle a moment, not in the middle of freeing what the
    // enumeration used (lanyardd returns freed heap to the kernel a second after a burst).
    std::thread::sleep(SETTLE_BEFORE_MEMORY);
    for (column, s) in subjects.iter().enumerate() {
        table.add(column, measure::memory(s.as_ref()));
    }
    let sssd_column = subjects.iter().position(|s| s.name() == "SSSD").context("no SSSD column")?;
    drop(subjects);
    if args.sssd_enumeration {
        eprintln!("measuring SSSD with enumerate = true");
        let start = Instant::now();
        // A failure here loses one row, not the table.
        let measured = sssd::Sssd::start(&slapd, true).and_then(|enumerating| {
            let mut rows = measure::enumeration(&enumerating, all_users, Some(start))?;
            for m in measure::memory(&enumerating).into_iter().filter(|m| m.label.contains("VmRSS")) {
                rows.push(measure::Measure { label: "SSSD with enumerate = true: VmRSS".into(), ..m });
            }
            Ok(rows)
        });
        match measured {
            Ok(rows) => table.add(sssd_column, rows),
            Err(e) => eprintln!("SSSD with enumerate = true: {e:#}"),
        }
    }
    drop(slapd);

    println!(
        "\nLanyard ({} build) vs SSSD 2.8 vs nss-pam-ldapd 0.9; one slapd on loopback over StartTLS; \
         {all_users} users, {} groups; one user in {} groups; 3 s directory timeout everywhere",
        lanyard_tests::profile(),
        shape.groups() + 2 + fixture::GROUP_COUNT as u32,
        shape.groups_per_user,
    );
    println!("L/X = Lanyard's figure divided by X's (below 1 is better where `best` is low)\n");
    print!("{}", table.render());
    if args.sssd_enumeration {
        println!(
            "\nSSSD's getent passwd rows come from a second SSSD with enumerate = true (`first`: from its \
             start until the list is complete); the other SSSD rows from one without it."
        );
    } else {
        println!("\nSSSD's getent passwd rows skipped (--skip-sssd-enumeration).");
    }
    let chart = args.chart.unwrap_or_else(|| {
        target_dir().join(format!("lanyard-compare-{}u-{}g.svg", shape.users, shape.groups_per_user))
    });
    let title = format!("Lanyard vs SSSD vs nslcd: {all_users} users, a user in {} groups", shape.groups_per_user);
    std::fs::write(&chart, table.svg(&title)).with_context(|| format!("writing {}", chart.display()))?;
    println!("chart: {}", chart.display());
    Ok(())
}

/// slapd stopped (connections refused), then back, then hung (SIGSTOP: TCP accepted, nothing
/// answers), each measured on every subject; thawed even when a measurement fails.
fn outages(
    slapd: &mut Slapd,
    subjects: &mut [Box<dyn Subject>],
    table: &mut Table,
    tool: &std::path::Path,
) -> Result<()> {
    let (cached, login) = (bulk::user_name(3), bulk::user_name(2));
    slapd.stop()?;
    for (column, s) in subjects.iter().enumerate() {
        eprintln!("measuring {} with the directory down", s.name());
        table.add(column, measure::outage(s.as_ref(), tool, "down", &bulk::user_name(100), &cached, &login)?);
    }
    slapd.start_again()?;
    back(subjects, table, "down", &bulk::user_name(101))?;
    slapd.freeze()?;
    let result = subjects.iter().enumerate().try_for_each(|(column, s)| {
        eprintln!("measuring {} with the directory hung", s.name());
        table.add(column, measure::outage(s.as_ref(), tool, "hung", &bulk::user_name(102), &cached, &login)?);
        Ok::<_, anyhow::Error>(())
    });
    slapd.thaw()?;
    result?;
    back(subjects, table, "hang", &bulk::user_name(103))
}

/// Once the directory answers again: how long until each subject serves a new lookup.
fn back(subjects: &mut [Box<dyn Subject>], table: &mut Table, after: &str, never: &str) -> Result<()> {
    for (column, s) in subjects.iter_mut().enumerate() {
        s.directory_back()?;
        table.add(column, vec![measure::back_online(s.as_ref(), after, never)?]);
    }
    Ok(())
}
