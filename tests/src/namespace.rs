//! Runs the system's `getent`, `id` (any command) with the NSS module loaded, inside a private
//! mount namespace so the host's `/etc` and `/run` are never changed:
//! - a test `nsswitch.conf` (`passwd: files lanyard`, `group: files lanyard`) is bind-mounted
//!   over `/etc/nsswitch.conf`;
//! - a tmpfs goes over `/run` (hiding the host's, nscd's socket included), and the agent's run
//!   directory is bind-mounted on `/run/lanyard`, where the module always looks for its socket;
//! - `LD_LIBRARY_PATH` points at a copy of the built module named `libnss_lanyard.so.2`.
//!
//! Optionally ([`Namespace::with_pam_d`], [`Namespace::with_home_tmpfs`],
//! [`Namespace::with_sshd_dirs`]): a test `pam.d` directory is bind-mounted over `/etc/pam.d`,
//! a tmpfs over `/home` (for home directory creation), and for sshd a `/run/sshd`
//! (privilege separation) and a tmpfs over `/var/log` (so its wtmp/lastlog writes never reach
//! the host's files).

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::process::{HANG_GUARD, Output, describe, run_bounded, run_bounded_with_input};
use crate::tempdir::TempDir;
use crate::{Agent, nss_module_path, require_built};

pub const NSSWITCH_CONF: &str = "\
passwd: files lanyard
group: files lanyard
shadow: files
gshadow: files
hosts: files
networks: files
protocols: files
services: files
ethers: files
rpc: files
netgroup: files
";

/// Exit code of the script when setting up the namespace itself failed.
const SETUP_FAILED: i32 = 125;

/// The tmpfs goes over /run first and every mount uses `-n`: a plain `mount` creates
/// `/run/mount` (libmount's utab) on whatever /run it sees, which would be the host's.
///
/// Arguments arrive as "$1" (nsswitch.conf), "$2" (run dir), "$3" (library dir), "$4" (pam.d
/// dir, or empty), "$5" (extras: a comma-separated list of `home` and `sshd`) and the command
/// after them; nothing is ever interpolated into this text.
const SCRIPT: &str = r#"
fail() { echo "lanyard namespace setup failed: $*" >&2; exit 125; }
mount -n -t tmpfs -o mode=0755 lanyard-test-run /run || fail "tmpfs on /run"
mount -n --bind "$1" /etc/nsswitch.conf || fail "bind nsswitch.conf"
mkdir -m 0755 /run/lanyard || fail "mkdir /run/lanyard"
mount -n --bind "$2" /run/lanyard || fail "bind the agent's run dir"
if [ -n "$4" ]; then
  mount -n --bind "$4" /etc/pam.d || fail "bind pam.d"
fi
case ",$5," in *,home,*)
  mount -n -t tmpfs -o mode=0755 lanyard-test-home /home || fail "tmpfs on /home"
esac
case ",$5," in *,sshd,*)
  mkdir -m 0755 /run/sshd || fail "mkdir /run/sshd"
  mount -n -t tmpfs -o mode=0755 lanyard-test-log /var/log || fail "tmpfs on /var/log"
esac
LD_LIBRARY_PATH="$3"
export LD_LIBRARY_PATH
shift 5
exec "$@"
"#;

/// The files one namespace run needs; reusable for any number of commands.
#[derive(Debug)]
pub struct Namespace {
    nsswitch: PathBuf,
    lib_dir: PathBuf,
    run_dir: PathBuf,
    pam_d: Option<PathBuf>,
    home_tmpfs: bool,
    sshd_dirs: bool,
    /// How long one command may run before it counts as hung ([`HANG_GUARD`] unless set).
    guard: Duration,
    _dir: TempDir,
}

impl Namespace {
    /// For commands that talk to `agent` (also after it is stopped: its run dir stays).
    pub fn for_agent(agent: &Agent) -> Result<Self> {
        Namespace::new(&agent.run_dir())
    }

    /// For commands whose `/run/lanyard` is `run_dir`.
    pub fn new(run_dir: &Path) -> Result<Self> {
        let module = nss_module_path();
        require_built(&module)?;
        let dir = TempDir::new("ns")?;
        let nsswitch = dir.join("nsswitch.conf");
        fs::write(&nsswitch, NSSWITCH_CONF).context("writing nsswitch.conf")?;
        let lib_dir = dir.join("lib");
        fs::create_dir(&lib_dir).context("creating lib/")?;
        fs::copy(&module, lib_dir.join("libnss_lanyard.so.2"))
            .with_context(|| format!("copying {}", module.display()))?;
        Ok(Namespace {
            nsswitch,
            lib_dir,
            run_dir: run_dir.into(),
            pam_d: None,
            home_tmpfs: false,
            sshd_dirs: false,
            guard: HANG_GUARD,
            _dir: dir,
        })
    }

    /// Also bind-mounts `pam_d` over `/etc/pam.d`.
    pub fn with_pam_d(mut self, pam_d: &Path) -> Self {
        self.pam_d = Some(pam_d.into());
        self
    }

    /// Also mounts an empty tmpfs (mode 0755) over `/home`.
    pub fn with_home_tmpfs(mut self) -> Self {
        self.home_tmpfs = true;
        self
    }

    /// Also creates `/run/sshd` and mounts a tmpfs over `/var/log`.
    pub fn with_sshd_dirs(mut self) -> Self {
        self.sshd_dirs = true;
        self
    }

    /// Runs every later command under `guard` instead of [`HANG_GUARD`]: a command still running
    /// after it is killed and reported as hung. A hang guard, never a latency measurement; a
    /// test that wants "this returns within the budget" sets budget plus a generous margin.
    pub fn set_guard(&mut self, guard: Duration) {
        self.guard = guard;
    }

    /// The hang guard commands run under now.
    pub fn guard(&self) -> Duration {
        self.guard
    }

    /// The directory `LD_LIBRARY_PATH` names inside the namespace (it holds
    /// `libnss_lanyard.so.2`); readable by every user.
    pub fn lib_dir(&self) -> &Path {
        &self.lib_dir
    }

    /// `unshare ... sh -c SCRIPT ... argv` with every mount prepared, ready to spawn; `prefix`
    /// goes before `-m` (e.g. `--pid --fork`). Use [`Namespace::run`] for one-shot commands.
    pub fn command<S: AsRef<OsStr>>(&self, prefix: &[&str], argv: &[S]) -> Command {
        let mut extras = Vec::new();
        if self.home_tmpfs {
            extras.push("home");
        }
        if self.sshd_dirs {
            extras.push("sshd");
        }
        let mut cmd = Command::new("unshare");
        cmd.args(prefix)
            .args(["-m", "--propagation", "private", "sh", "-c", SCRIPT, "sh"])
            .arg(&self.nsswitch)
            .arg(&self.run_dir)
            .arg(&self.lib_dir)
            .arg(self.pam_d.as_deref().unwrap_or(Path::new("")))
            .arg(extras.join(","))
            .args(argv);
        cmd
    }

    /// Runs `argv` in a fresh namespace and returns what it did. A command still running after
    /// the guard ([`HANG_GUARD`] unless [`Namespace::set_guard`] said otherwise) is killed and
    /// reported as an error naming it.
    pub fn run<S: AsRef<OsStr>>(&self, argv: &[S]) -> Result<Output> {
        let argv: Vec<OsString> = argv.iter().map(|a| a.as_ref().to_owned()).collect();
        let Some((program, _)) = argv.split_first() else { bail!("empty command") };
        let description = describe(&program.to_string_lossy(), &argv[1..]);
        let out = run_bounded(&mut self.command(&[], &argv), &description, self.guard)?;
        check_setup(out)
    }

    /// Like [`Namespace::run`], with `input` on the command's stdin (then end of file).
    pub fn run_with_input<S: AsRef<OsStr>>(&self, argv: &[S], input: &[u8]) -> Result<Output> {
        let argv: Vec<OsString> = argv.iter().map(|a| a.as_ref().to_owned()).collect();
        let Some((program, _)) = argv.split_first() else { bail!("empty command") };
        let description = describe(&program.to_string_lossy(), &argv[1..]);
        let out = run_bounded_with_input(&mut self.command(&[], &argv), input, &description, self.guard)?;
        check_setup(out)
    }

    /// `getent DATABASE KEY...`.
    pub fn getent<S: AsRef<OsStr>>(&self, database: &str, keys: &[S]) -> Result<Output> {
        let mut argv: Vec<OsString> = vec!["getent".into(), database.into()];
        argv.extend(keys.iter().map(|k| k.as_ref().to_owned()));
        self.run(&argv)
    }

    /// `sh -c SCRIPT` inside the namespace (for pipelines such as `getent passwd | tail`).
    pub fn shell(&self, script: &str) -> Result<Output> {
        self.run(&["sh", "-c", script])
    }
}

/// Turns a failure of the namespace's own setup into an error (it is not the command's answer).
pub(crate) fn check_setup(out: Output) -> Result<Output> {
    if out.code() == Some(SETUP_FAILED) && out.stderr().contains("lanyard namespace setup failed") {
        bail!("could not set up the namespace for `{}`:\n{out}", out.command);
    }
    Ok(out)
}
