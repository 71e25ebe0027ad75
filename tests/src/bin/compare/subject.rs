//! One system under comparison: how to run a client program next to it, which PAM service
//! logs in through it, and which processes hold its memory. Lanyard runs through the harness
//! ([`Agent`], [`Namespace`], [`PamDir`]); SSSD and nslcd run in a mount namespace of their own
//! ([`DaemonNs`]) that their clients join with `nsenter`.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use lanyard_tests::pam::{PamDir, lanyard_service};
use lanyard_tests::process::describe;
use lanyard_tests::{Agent, AgentConfig, Namespace, OfflineConfig, Output, Slapd, Supervised, run_bounded};

/// The PAM service name every subject's scratch `pam.d` defines.
pub const SERVICE: &str = "compare";

pub trait Subject {
    fn name(&self) -> &'static str;
    /// Runs `argv` as a client of this subject; `None` when `guard` ran out and it was killed.
    fn run(&self, argv: &[OsString], guard: Duration) -> Result<Option<Output>>;
    /// The processes whose resident memory is the subject's (the daemon and its children).
    fn pid(&self) -> u32;
    /// The disk space its cache files take, if it keeps any.
    fn cache_bytes(&self) -> Option<u64>;
    /// Called once the directory is back, before waiting for the subject to notice.
    fn directory_back(&mut self) -> Result<()> {
        Ok(())
    }

    fn bash(&self, script: &str, guard: Duration) -> Result<Option<Output>> {
        self.run(&["bash".into(), "-c".into(), script.into()], guard)
    }
}

/// `run_bounded`, with the hang guard turned into `None` instead of an error.
pub fn run_guarded(cmd: &mut Command, description: &str, guard: Duration) -> Result<Option<Output>> {
    match run_bounded(cmd, description, guard) {
        Ok(out) => Ok(Some(out)),
        Err(e) if e.to_string().contains("(hang guard)") => Ok(None),
        Err(e) => Err(e),
    }
}

fn description(argv: &[OsString]) -> String {
    match argv.split_first() {
        Some((program, args)) => describe(&program.to_string_lossy(), args),
        None => String::new(),
    }
}

/// Lanyard as shipped, except a 1 s offline probe interval (as in `tests/bench.sh`) so the
/// outage part does not wait for the default.
pub struct Lanyard {
    // Declared first: the namespace's mounts name files in `pam`, and the agent stops last.
    ns: Namespace,
    _pam: PamDir,
    agent: Agent,
}

impl Lanyard {
    pub fn start(slapd: &Slapd) -> Result<Self> {
        let config = AgentConfig::for_slapd(slapd).offline(OfflineConfig::default().probe_interval("1s"));
        let agent = Agent::start(&config)?;
        let pam = PamDir::new()?;
        pam.service(SERVICE, &lanyard_service(pam.module(), &[]))?;
        let ns = Namespace::for_agent(&agent)?.with_pam_d(pam.pam_d());
        Ok(Lanyard { ns, _pam: pam, agent })
    }
}

impl Subject for Lanyard {
    fn name(&self) -> &'static str {
        "Lanyard"
    }

    fn run(&self, argv: &[OsString], guard: Duration) -> Result<Option<Output>> {
        run_guarded(&mut self.ns.command(&[], argv), &description(argv), guard)
    }

    fn pid(&self) -> u32 {
        self.agent.pid()
    }

    fn cache_bytes(&self) -> Option<u64> {
        fs::metadata(self.agent.cache_file()).ok().map(|m| allocated(&m))
    }
}

/// Bytes allocated on disk: SSSD's memory-cache files are created at full size, sparse.
pub fn allocated(meta: &fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.blocks() * 512
}

/// Mounts for a daemon of the comparison, then `exec "$@"` (the daemon keeps unshare's PID).
/// `-n` everywhere: libmount would otherwise write its utab into the host's /run before the
/// tmpfs covers it. Arguments: "$1" nsswitch.conf, "$2" pam.d, "$3" which daemon, "$4" its
/// data (SSSD: the directory for /var/lib/sss; nslcd: its nslcd.conf), then the daemon's argv.
const SCRIPT: &str = r#"
fail() { echo "compare namespace setup failed: $*" >&2; exit 125; }
mount -n -t tmpfs -o mode=0755 compare-run /run || fail "tmpfs on /run"
mount -n --bind "$1" /etc/nsswitch.conf || fail "bind nsswitch.conf"
mount -n --bind "$2" /etc/pam.d || fail "bind pam.d"
case "$3" in
sssd)
  mount -n --bind "$4" /var/lib/sss || fail "bind /var/lib/sss"
  mount -n -t tmpfs -o mode=0750 compare-sssd-log /var/log/sssd || fail "tmpfs on /var/log/sssd" ;;
nslcd)
  mount -n --bind "$4" /etc/nslcd.conf || fail "bind nslcd.conf"
  mkdir -m 0755 /run/nslcd && chown nslcd:nslcd /run/nslcd || fail "/run/nslcd" ;;
*) fail "unknown daemon $3" ;;
esac
shift 4
exec "$@"
"#;

/// A daemon started by PID in its own private mount namespace; clients join it with
/// `nsenter -t PID -m`. Stopped by PID (SIGTERM, then SIGKILL) on drop.
pub struct DaemonNs {
    pub process: Supervised,
    pub log: PathBuf,
}

impl DaemonNs {
    /// `nsswitch`: the text of its nsswitch.conf; `pam_service`: the text of pam.d/compare.
    pub fn spawn(
        dir: &Path,
        kind: &str,
        nsswitch: &str,
        pam_service: &str,
        data: &Path,
        argv: &[&OsStr],
    ) -> Result<Self> {
        let nsswitch_file = dir.join("nsswitch.conf");
        fs::write(&nsswitch_file, nsswitch).context("writing nsswitch.conf")?;
        let pam_d = dir.join("pam.d");
        fs::create_dir_all(&pam_d).context("creating pam.d")?;
        fs::write(pam_d.join(SERVICE), pam_service).context("writing the PAM service")?;
        let log = dir.join(format!("{kind}.log"));
        let log_file = fs::File::create(&log).context("creating the daemon log")?;
        let mut cmd = Command::new("unshare");
        cmd.args(["-m", "--propagation", "private", "sh", "-c", SCRIPT, "sh"])
            .arg(&nsswitch_file)
            .arg(&pam_d)
            .arg(kind)
            .arg(data)
            .args(argv)
            .stdin(std::process::Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        let process = Supervised::spawn(kind, &mut cmd)?;
        Ok(DaemonNs { process, log })
    }

    pub fn run(&self, argv: &[OsString], guard: Duration) -> Result<Option<Output>> {
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t").arg(self.process.pid().to_string()).args(["-m", "--"]).args(argv);
        run_guarded(&mut cmd, &description(argv), guard)
    }

    /// `path` as the daemon sees it (through `/proc/PID/root`, so inside its mounts).
    pub fn inside(&self, path: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{path}", self.process.pid()))
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// nsswitch.conf for a client module named `word` (`sss`, `ldap`).
pub fn nsswitch(word: &str) -> String {
    format!("passwd: files {word}\ngroup: files {word}\nshadow: files\nhosts: files\n")
}
