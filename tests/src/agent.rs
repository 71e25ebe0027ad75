//! `lanyardd` started with a `lanyard.toml` written for the test, its socket in a scratch
//! directory that [`crate::Namespace`] mounts over `/run/lanyard`.
//!
//! For the offline tests an [`Agent`] can be restarted with the same config, socket and
//! `cache_dir` ([`Agent::restart`]), killed with SIGKILL mid-work ([`Agent::kill`]), and
//! started under a umask or a shifted wall clock ([`Launch`], [`shifted_clock`]), or with a wall
//! clock the test moves while it runs ([`JumpableClock`]).

use std::fs::{self, OpenOptions};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::fixture::{BASE_DN, READER_DN};
use crate::process::{Supervised, poll_until};
use crate::tempdir::TempDir;
use crate::{Slapd, lanyardd_path, require_built};

const READY_LIMIT: Duration = Duration::from_secs(15);
/// How long a refused configuration may take to make the agent exit.
const REFUSAL_LIMIT: Duration = Duration::from_secs(10);
/// The agent's log filter, unless the person running the tests sets their own.
const LOG_ENV: &str = "LANYARD_TEST_AGENT_LOG";

/// What goes into `lanyard.toml`. `socket` and `cache_dir` always point into the agent's own
/// scratch directory.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub uris: Vec<String>,
    /// `[directory] domain`: written instead of `uris` when set (servers from DNS SRV records).
    pub domain: Option<String>,
    pub base: String,
    /// `starttls`, `ldaps` or `danger-plaintext`.
    pub tls: String,
    pub ca_file: Option<PathBuf>,
    pub bind_dn: Option<String>,
    pub bind_password_file: Option<PathBuf>,
    pub timeout: String,
    pub ttl: String,
    pub negative_ttl: String,
    /// `[cache] enumerate`: every user and group kept in memory (a complete snapshot).
    pub enumerate: bool,
    /// Raw lines appended to `[directory]` (for unknown-key tests).
    pub extra_directory_lines: Vec<String>,
    /// The `[offline]` section; absent when `None`.
    pub offline: Option<OfflineConfig>,
    /// The `[pam]` section; absent when `None`.
    pub pam: Option<PamConfig>,
    /// Whole sections (`[metrics]` and its keys) appended after everything else.
    pub extra_sections: Vec<String>,
    /// When set, written instead of everything above; `@SOCKET@` and `@CACHE_DIR@` are
    /// replaced by the scratch paths.
    pub raw: Option<String>,
}

impl AgentConfig {
    /// The agent pointed at `slapd` over StartTLS, bound as the reader, trusting the run's CA.
    pub fn for_slapd(slapd: &Slapd) -> Self {
        AgentConfig::new(vec![slapd.uri_starttls()], slapd.ca_pem(), slapd.bind_secret())
    }

    pub fn new(uris: Vec<String>, ca_file: &Path, bind_password_file: &Path) -> Self {
        AgentConfig {
            uris,
            domain: None,
            base: BASE_DN.into(),
            tls: "starttls".into(),
            ca_file: Some(ca_file.into()),
            bind_dn: Some(READER_DN.into()),
            bind_password_file: Some(bind_password_file.into()),
            timeout: "3s".into(),
            ttl: "5m".into(),
            negative_ttl: "30s".into(),
            enumerate: false,
            extra_directory_lines: Vec::new(),
            offline: None,
            pam: None,
            extra_sections: Vec::new(),
            raw: None,
        }
    }

    /// Writes a `[pam]` section.
    pub fn pam(mut self, pam: PamConfig) -> Self {
        self.pam = Some(pam);
        self
    }

    pub fn uris(mut self, uris: Vec<String>) -> Self {
        self.uris = uris;
        self
    }

    /// `domain = DOMAIN` instead of `uris`: the agent finds its servers in DNS.
    pub fn domain(mut self, domain: &str) -> Self {
        self.domain = Some(domain.into());
        self
    }

    pub fn tls(mut self, tls: &str) -> Self {
        self.tls = tls.into();
        self
    }

    pub fn ca_file(mut self, path: &Path) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    pub fn bind_password_file(mut self, path: &Path) -> Self {
        self.bind_password_file = Some(path.into());
        self
    }

    pub fn ttl(mut self, ttl: &str) -> Self {
        self.ttl = ttl.into();
        self
    }

    pub fn enumerate(mut self, enumerate: bool) -> Self {
        self.enumerate = enumerate;
        self
    }

    pub fn negative_ttl(mut self, negative_ttl: &str) -> Self {
        self.negative_ttl = negative_ttl.into();
        self
    }

    /// `[directory] timeout`: the budget for one directory operation.
    pub fn timeout(mut self, timeout: &str) -> Self {
        self.timeout = timeout.into();
        self
    }

    /// Writes an `[offline]` section.
    pub fn offline(mut self, offline: OfflineConfig) -> Self {
        self.offline = Some(offline);
        self
    }

    pub fn directory_line(mut self, line: &str) -> Self {
        self.extra_directory_lines.push(line.into());
        self
    }

    /// Appends a whole section, header included (`"[metrics]\nlisten = ..."`).
    pub fn section(mut self, text: &str) -> Self {
        self.extra_sections.push(text.into());
        self
    }

    /// The TOML text, with `socket` and `cache_dir` set to the given paths.
    pub fn render(&self, socket: &Path, cache_dir: &Path) -> String {
        if let Some(raw) = &self.raw {
            return raw.replace("@SOCKET@", &toml_str(socket)).replace("@CACHE_DIR@", &toml_str(cache_dir));
        }
        let mut t =
            format!("socket = \"{}\"\ncache_dir = \"{}\"\n\n[directory]\n", toml_str(socket), toml_str(cache_dir));
        match &self.domain {
            Some(domain) => t += &format!("domain = \"{}\"\n", escape(domain)),
            None => {
                let uris: Vec<String> = self.uris.iter().map(|u| format!("\"{}\"", escape(u))).collect();
                t += &format!("uris = [{}]\n", uris.join(", "));
            }
        }
        t += &format!("base = \"{}\"\ntls = \"{}\"\n", escape(&self.base), escape(&self.tls));
        if let Some(ca) = &self.ca_file {
            t += &format!("ca_file = \"{}\"\n", toml_str(ca));
        }
        if let Some(dn) = &self.bind_dn {
            t += &format!("bind_dn = \"{}\"\n", escape(dn));
        }
        if let Some(file) = &self.bind_password_file {
            t += &format!("bind_password_file = \"{}\"\n", toml_str(file));
        }
        t += &format!("timeout = \"{}\"\n", escape(&self.timeout));
        for line in &self.extra_directory_lines {
            t += line;
            t.push('\n');
        }
        t +=
            &format!("\n[cache]\nttl = \"{}\"\nnegative_ttl = \"{}\"\n", escape(&self.ttl), escape(&self.negative_ttl));
        if self.enumerate {
            t += "enumerate = true\n";
        }
        if let Some(offline) = &self.offline {
            t += &offline.render();
        }
        if let Some(pam) = &self.pam {
            t += &pam.render();
        }
        for section in &self.extra_sections {
            t.push('\n');
            t += section;
            t.push('\n');
        }
        t
    }
}

/// The agent's `[offline]` section. Keys left `None` are not written (the agent's defaults
/// apply: 14d, 5, 5m, 5s).
#[derive(Debug, Clone, Default)]
pub struct OfflineConfig {
    /// How long after the last online login an offline login is still accepted.
    pub max_age: Option<String>,
    /// Wrong offline passwords before offline logins are refused for `lockout`.
    pub max_failures: Option<u32>,
    pub lockout: Option<String>,
    /// While offline, the longest wait between two attempts to reach the directory.
    pub probe_interval: Option<String>,
}

impl OfflineConfig {
    pub fn max_age(mut self, max_age: &str) -> Self {
        self.max_age = Some(max_age.into());
        self
    }

    /// `max_failures = COUNT` with `lockout = LOCKOUT`.
    pub fn lockout_after(mut self, count: u32, lockout: &str) -> Self {
        self.max_failures = Some(count);
        self.lockout = Some(lockout.into());
        self
    }

    pub fn probe_interval(mut self, interval: &str) -> Self {
        self.probe_interval = Some(interval.into());
        self
    }

    fn render(&self) -> String {
        let mut t = String::from("\n[offline]\n");
        if let Some(max_age) = &self.max_age {
            t += &format!("max_age = \"{}\"\n", escape(max_age));
        }
        if let Some(count) = self.max_failures {
            t += &format!("max_failures = {count}\n");
        }
        if let Some(lockout) = &self.lockout {
            t += &format!("lockout = \"{}\"\n", escape(lockout));
        }
        if let Some(interval) = &self.probe_interval {
            t += &format!("probe_interval = \"{}\"\n", escape(interval));
        }
        t
    }
}

/// The agent's `[pam]` section. Keys left `None` are not written (the agent's defaults apply).
#[derive(Debug, Clone, Default)]
pub struct PamConfig {
    /// Only members of these groups may log in (absent: every directory user).
    pub allowed_groups: Option<Vec<String>>,
    /// An LDAP filter the user's entry must match; `{user}`, `{host}`, `{service}` are
    /// placeholders the agent fills in, escaped.
    pub access_filter: Option<String>,
    pub root_may_reset_passwords: Option<bool>,
    pub create_home: Option<bool>,
    /// Octal text, e.g. `"0700"`.
    pub home_mode: Option<String>,
    /// Failed logins per account within `failure_window` before attempts are refused.
    pub max_failures: Option<u32>,
    pub failure_window: Option<String>,
    /// Raw lines appended to the section (for unknown-key tests).
    pub extra_lines: Vec<String>,
}

impl PamConfig {
    pub fn allowed_groups(mut self, groups: &[&str]) -> Self {
        self.allowed_groups = Some(groups.iter().map(|g| g.to_string()).collect());
        self
    }

    pub fn access_filter(mut self, filter: &str) -> Self {
        self.access_filter = Some(filter.into());
        self
    }

    pub fn root_may_reset_passwords(mut self, allowed: bool) -> Self {
        self.root_may_reset_passwords = Some(allowed);
        self
    }

    /// `create_home = true` with `home_mode = MODE`.
    pub fn create_home(mut self, mode: &str) -> Self {
        self.create_home = Some(true);
        self.home_mode = Some(mode.into());
        self
    }

    pub fn max_failures(mut self, count: u32, window: &str) -> Self {
        self.max_failures = Some(count);
        self.failure_window = Some(window.into());
        self
    }

    pub fn line(mut self, line: &str) -> Self {
        self.extra_lines.push(line.into());
        self
    }

    fn render(&self) -> String {
        let mut t = String::from("\n[pam]\n");
        if let Some(groups) = &self.allowed_groups {
            let quoted: Vec<String> = groups.iter().map(|g| format!("\"{}\"", escape(g))).collect();
            t += &format!("allowed_groups = [{}]\n", quoted.join(", "));
        }
        if let Some(filter) = &self.access_filter {
            t += &format!("access_filter = \"{}\"\n", escape(filter));
        }
        if let Some(allowed) = self.root_may_reset_passwords {
            t += &format!("root_may_reset_passwords = {allowed}\n");
        }
        if let Some(create) = self.create_home {
            t += &format!("create_home = {create}\n");
        }
        if let Some(mode) = &self.home_mode {
            t += &format!("home_mode = \"{}\"\n", escape(mode));
        }
        if let Some(count) = self.max_failures {
            t += &format!("max_failures = {count}\n");
        }
        if let Some(window) = &self.failure_window {
            t += &format!("failure_window = \"{}\"\n", escape(window));
        }
        for line in &self.extra_lines {
            t += line;
            t.push('\n');
        }
        t
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn toml_str(p: &Path) -> String {
    escape(&p.to_string_lossy())
}

/// The name of the agent's cache file inside `cache_dir`.
pub const CACHE_FILE: &str = "cache.redb";

/// How the harness starts `lanyardd` beyond its config file; applies to one start or restart.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// Extra environment variables (e.g. [`shifted_clock`]).
    pub env: Vec<(String, String)>,
    /// The umask the agent starts with (set by `sh -c 'umask M && exec lanyardd ...'`, which
    /// keeps the PID); the harness's own when `None`.
    pub umask: Option<u32>,
    /// When set (a tmpfs `size=`, e.g. `"256k"`), the agent runs in a mount namespace of its
    /// own (`unshare -m`, which execs and so keeps the PID) with a tmpfs of that size mounted
    /// over its `cache_dir`: a small disk it can fill. Nothing changes outside that namespace;
    /// the cache file is then only reachable through the agent's namespace (`nsenter`).
    pub cache_tmpfs: Option<String>,
    /// When set, the agent runs in the network namespace of this process (`nsenter -n`, which
    /// execs and so keeps the PID): a directory server that owns fixed ports in a namespace of
    /// its own (Samba's AD DC) is reached on that namespace's loopback. The socket is a file,
    /// so the modules reach the agent from anywhere.
    pub net_namespace_of: Option<u32>,
    /// With `net_namespace_of`: the agent enters that process's mount namespace too (`nsenter
    /// -m`), and so resolves names with the `/etc/resolv.conf` bound there
    /// ([`crate::dns::PrivateDns`]). Paths under the harness's scratch directories look the same
    /// from there.
    pub mount_namespace_too: bool,
}

impl Launch {
    pub fn env(mut self, vars: Vec<(String, String)>) -> Self {
        self.env.extend(vars);
        self
    }

    pub fn umask(mut self, umask: u32) -> Self {
        self.umask = Some(umask);
        self
    }

    /// See [`Launch::cache_tmpfs`].
    pub fn cache_tmpfs(mut self, size: &str) -> Self {
        self.cache_tmpfs = Some(size.into());
        self
    }

    /// See [`Launch::net_namespace_of`].
    pub fn net_namespace_of(mut self, pid: u32) -> Self {
        self.net_namespace_of = Some(pid);
        self
    }

    /// The network and mount namespaces of `pid`: see [`Launch::mount_namespace_too`].
    pub fn namespaces_of(mut self, pid: u32) -> Self {
        self.net_namespace_of = Some(pid);
        self.mount_namespace_too = true;
        self
    }
}

/// The environment that runs a program under libfaketime (Debian's `libfaketime`) with its
/// wall clock moved by `offset` (`"+15d"`, `"-2h"`): `CLOCK_REALTIME`, which persisted times
/// (verifier ages, lockouts) use, moves; monotonic clocks (timers, in-memory TTLs) do not.
pub fn shifted_clock(offset: &str) -> Result<Vec<(String, String)>> {
    let library = libfaketime()?;
    Ok(vec![
        ("LD_PRELOAD".into(), library.to_string_lossy().into_owned()),
        ("FAKETIME".into(), offset.into()),
        ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
    ])
}

/// A wall clock the test moves while the agent runs, for clock jumps (NTP stepping a laptop's
/// clock after a suspend, an RTC that lost its battery, an admin's `date -s`).
///
/// [`shifted_clock`] fixes the offset at start; a jump at run time needs libfaketime to read its
/// spec from a file instead (`FAKETIME_TIMESTAMP_FILE`) and to read it again on every call
/// (`FAKETIME_NO_CACHE=1`; by default it caches the spec for 10 s, which would make a jump land
/// "some time later" and tests wait for it). `FAKETIME_DONT_FAKE_MONOTONIC=1` keeps
/// `CLOCK_MONOTONIC` real, so only what the agent reads from `CLOCK_REALTIME` jumps: that split is
/// exactly what the tests are about. `FAKETIME` must not be set as well: it would win over the
/// file. The spec file lives in a scratch directory of its own and is replaced by rename, so
/// the agent never reads a half-written spec (which libfaketime could take for an absolute date).
#[derive(Debug)]
pub struct JumpableClock {
    dir: TempDir,
    spec: PathBuf,
}

impl JumpableClock {
    /// A clock that starts at the real time (offset `+0`).
    pub fn new() -> Result<Self> {
        let dir = TempDir::new("clock")?;
        let spec = dir.join("faketimerc");
        let clock = JumpableClock { dir, spec };
        clock.jump("+0")?;
        Ok(clock)
    }

    /// The environment for [`Launch::env`]: every start or restart given it follows this clock.
    pub fn env(&self) -> Result<Vec<(String, String)>> {
        let library = libfaketime()?;
        Ok(vec![
            ("LD_PRELOAD".into(), library.to_string_lossy().into_owned()),
            ("FAKETIME_TIMESTAMP_FILE".into(), self.spec.to_string_lossy().into_owned()),
            ("FAKETIME_NO_CACHE".into(), "1".into()),
            ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
        ])
    }

    /// `Launch::default()` with [`JumpableClock::env`].
    pub fn launch(&self) -> Result<Launch> {
        Ok(Launch::default().env(self.env()?))
    }

    /// Sets the wall clock to the real time moved by `offset` (`"+2d"`, `"-22h"`, `"+0"`), from
    /// the next clock read on. Not cumulative: `jump("+1d")` twice is one day ahead, and
    /// `jump("+0")` puts the clock right. Only a sign, digits and one of libfaketime's units
    /// (`s`, `m`, `h`, `d`, `y`, or none for seconds) are accepted, so a typo cannot turn into
    /// an absolute date.
    pub fn jump(&self, offset: &str) -> Result<()> {
        let rest = offset.strip_prefix(['+', '-']).unwrap_or_default();
        let digits = rest.strip_suffix(['s', 'm', 'h', 'd', 'y']).unwrap_or(rest);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            bail!("not a relative libfaketime offset: {offset:?} (e.g. \"+2d\", \"-22h\")");
        }
        let staged = self.dir.join("faketimerc.new");
        fs::write(&staged, format!("{offset}\n")).with_context(|| format!("writing {}", staged.display()))?;
        fs::rename(&staged, &self.spec).with_context(|| format!("replacing {}", self.spec.display()))
    }
}

/// `/usr/lib/<multiarch>/faketime/libfaketime.so.1`.
fn libfaketime() -> Result<PathBuf> {
    let entries = fs::read_dir("/usr/lib").context("listing /usr/lib")?;
    for entry in entries.flatten() {
        let candidate = entry.path().join("faketime/libfaketime.so.1");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!("libfaketime.so.1 not found under /usr/lib/*/faketime: install Debian's libfaketime (tests/install-deps.sh)")
}

/// `sh -c 'umask MASK && exec PROGRAM "$@"'`; arguments added to the command go to PROGRAM.
/// `exec` keeps the PID, so the child the harness supervises is PROGRAM itself.
fn under_umask(mask: u32, program: &Path) -> Command {
    let mut sh = Command::new("sh");
    sh.args(["-c", "umask \"$0\" && exec \"$@\"", &format!("{mask:04o}")]).arg(program);
    sh
}

/// `unshare -m --propagation private sh -c 'mount -n -t tmpfs ... CACHE_DIR && exec PROGRAM "$@"'`.
/// unshare(1) without `--fork` execs its command, and sh execs PROGRAM: one PID throughout.
/// `-n`: no libmount utab write into the host's /run.
fn on_cache_tmpfs(size: &str, cache_dir: &Path, program: &Path) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg("mount -n -t tmpfs -o \"size=$0,mode=0700\" lanyard-test-cache \"$1\" || exit 125; shift; exec \"$@\"")
        .arg(size)
        .arg(cache_dir)
        .arg(program);
    cmd
}

/// A running `lanyardd`. Dropping it stops it by PID, then removes its directory.
#[derive(Debug)]
pub struct Agent {
    // Declared before `paths`: the process stops before its files go away.
    process: Supervised,
    paths: Paths,
}

/// The scratch layout one agent uses, across restarts.
#[derive(Debug)]
struct Paths {
    dir: TempDir,
    config: PathBuf,
    log: PathBuf,
}

impl Paths {
    fn prepare(config: &AgentConfig) -> Result<Self> {
        require_built(&lanyardd_path())?;
        let dir = TempDir::new("agent")?;
        fs::create_dir(dir.join("run")).context("creating run/")?;
        fs::create_dir(dir.join("cache")).context("creating cache/")?;
        let path = dir.join("lanyard.toml");
        fs::write(&path, config.render(&dir.join("run/socket"), &dir.join("cache"))).context("writing lanyard.toml")?;
        Ok(Paths { config: path, log: dir.join("lanyardd.log"), dir })
    }

    /// Starts the agent; its output goes to the log, appended after what earlier runs wrote
    /// when `append`.
    fn spawn(&self, launch: &Launch, append: bool) -> Result<Supervised> {
        let log = if append {
            OpenOptions::new().append(true).create(true).open(&self.log)
        } else {
            fs::File::create(&self.log)
        }
        .context("opening lanyardd.log")?;
        let filter = std::env::var(LOG_ENV).unwrap_or_else(|_| "info".into());
        if launch.mount_namespace_too && launch.net_namespace_of.is_none() {
            bail!("Launch: mount_namespace_too needs net_namespace_of");
        }
        let mut cmd = match (launch.umask, &launch.cache_tmpfs, launch.net_namespace_of) {
            (None, None, None) => Command::new(lanyardd_path()),
            (Some(mask), None, None) => under_umask(mask, &lanyardd_path()),
            (None, Some(size), None) => on_cache_tmpfs(size, &self.dir.join("cache"), &lanyardd_path()),
            (None, None, Some(pid)) => {
                let mut cmd = Command::new("nsenter");
                cmd.args(["-t", &pid.to_string(), "-n"]);
                if launch.mount_namespace_too {
                    cmd.arg("-m");
                }
                cmd.arg("--").arg(lanyardd_path());
                cmd
            }
            _ => bail!("Launch: umask, cache_tmpfs and net_namespace_of are not supported together"),
        };
        cmd.arg("--config").arg(&self.config).env("RUST_LOG", filter);
        cmd.envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        Supervised::spawn("lanyardd", &mut cmd)
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("run/socket")
    }

    /// Waits until `process` accepts connections on the socket; fails with its log if it exits
    /// first or is not ready in time.
    fn wait_ready(&self, process: &mut Supervised) -> Result<()> {
        let socket = self.socket();
        let ready = poll_until("lanyardd's socket", READY_LIMIT, Duration::from_millis(10), || {
            if let Some(status) = process.try_exit_status()? {
                bail!("lanyardd exited with {status} before it was ready");
            }
            Ok(UnixStream::connect(&socket).is_ok().then_some(()))
        });
        if let Err(e) = ready {
            let log = fs::read_to_string(&self.log).unwrap_or_default();
            bail!(
                "{e:#}\nconfig {}:\n{}\nlanyardd log:\n{log}",
                self.config.display(),
                fs::read_to_string(&self.config)?
            );
        }
        Ok(())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Err(e) = self.process.stop() {
            eprintln!("stopping lanyardd: {e:#}");
        }
        remove_faketime_leftovers(self.process.pid());
    }
}

/// libfaketime (see [`shifted_clock`], [`JumpableClock`]) keeps a shared-memory segment and a
/// semaphore named after the process's PID in /dev/shm and removes them only on a clean exit;
/// left behind, they make a later process with the same PID fail to start under libfaketime.
/// Removes this PID's pair once the process is gone (a no-op for an agent without libfaketime).
fn remove_faketime_leftovers(pid: u32) {
    for name in [format!("faketime_shm_{pid}"), format!("sem.faketime_sem_{pid}")] {
        let _ = fs::remove_file(Path::new("/dev/shm").join(name));
    }
}

impl Agent {
    /// Starts the agent and waits until its socket accepts connections. Fails with the agent's
    /// log if it exits first.
    pub fn start(config: &AgentConfig) -> Result<Self> {
        Agent::start_with(config, &Launch::default())
    }

    /// Like [`Agent::start`], launched as `launch` says.
    pub fn start_with(config: &AgentConfig, launch: &Launch) -> Result<Self> {
        let paths = Paths::prepare(config)?;
        let mut process = paths.spawn(launch, false)?;
        paths.wait_ready(&mut process)?;
        Ok(Agent { process, paths })
    }

    /// Starts the agent with a configuration it must refuse; returns its exit status, its log
    /// (stdout and stderr) and the config file's path. Fails if it is still running after a
    /// bounded wait (it is then stopped).
    pub fn run_expect_failure(config: &AgentConfig) -> Result<(ExitStatus, String, PathBuf)> {
        let paths = Paths::prepare(config)?;
        let mut process = paths.spawn(&Launch::default(), false)?;
        let status = process.wait_exit(REFUSAL_LIMIT)?;
        let log = fs::read_to_string(&paths.log).unwrap_or_default();
        match status {
            Some(status) => Ok((status, log, paths.config.clone())),
            None => {
                process.stop()?;
                bail!("lanyardd accepted a config it should refuse and kept running; its log:\n{log}")
            }
        }
    }

    /// Stops the agent by PID if it still runs (SIGTERM: a clean shutdown), then starts it
    /// again with the same config file, socket and `cache_dir`, and waits until it is ready.
    /// The log goes on in the same file ([`Agent::log_mark`] marks stay valid).
    pub fn restart(&mut self) -> Result<()> {
        self.restart_with(&Launch::default())
    }

    /// Like [`Agent::restart`], launched as `launch` says (for this run only).
    pub fn restart_with(&mut self, launch: &Launch) -> Result<()> {
        self.process.stop()?;
        remove_faketime_leftovers(self.process.pid());
        let mut process = self.paths.spawn(launch, true)?;
        self.paths.wait_ready(&mut process)?;
        self.process = process;
        Ok(())
    }

    /// Kills the agent with SIGKILL (no shutdown, no flush: a crash) and reaps it. Its socket
    /// file stays behind, stale, as after a real crash.
    pub fn kill(&mut self) -> Result<ExitStatus> {
        let status = self.process.kill();
        remove_faketime_leftovers(self.process.pid());
        status
    }

    /// The directory `socket` lives in (mounted over `/run/lanyard` by [`crate::Namespace`]).
    pub fn run_dir(&self) -> PathBuf {
        self.paths.dir.join("run")
    }

    pub fn socket(&self) -> PathBuf {
        self.paths.socket()
    }

    /// `cache_dir` as the config file names it (the same across restarts).
    pub fn cache_dir(&self) -> PathBuf {
        self.paths.dir.join("cache")
    }

    /// `<cache_dir>/cache.redb`.
    pub fn cache_file(&self) -> PathBuf {
        self.cache_dir().join(CACHE_FILE)
    }

    pub fn config_path(&self) -> &Path {
        &self.paths.config
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Everything the agent wrote to stdout and stderr so far, over all its runs.
    pub fn log(&self) -> String {
        fs::read(&self.paths.log).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    }

    /// The log's current length, to read only what comes after with [`Agent::log_since`].
    pub fn log_mark(&self) -> usize {
        fs::metadata(&self.paths.log).map(|m| m.len() as usize).unwrap_or(0)
    }

    pub fn log_since(&self, mark: usize) -> String {
        let bytes = fs::read(&self.paths.log).unwrap_or_default();
        String::from_utf8_lossy(bytes.get(mark..).unwrap_or_default()).into_owned()
    }

    /// Stops the agent by PID; its directory (and so `run_dir`) stays until drop.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        self.process.stop()
    }

    /// Freezes the agent (SIGSTOP): its socket still accepts connections, but nothing answers.
    pub fn freeze(&mut self) -> Result<()> {
        self.process.signal(libc::SIGSTOP)
    }

    /// Undoes [`Agent::freeze`].
    pub fn thaw(&mut self) -> Result<()> {
        self.process.signal(libc::SIGCONT)
    }

    /// The exit status if the agent has exited on its own.
    pub fn exited(&mut self) -> Result<Option<ExitStatus>> {
        self.process.try_exit_status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_documented_layout() {
        let config =
            AgentConfig::new(vec!["ldap://127.0.0.1:389".into()], Path::new("/t/ca.pem"), Path::new("/t/bind.secret"));
        let text = config.render(Path::new("/t/run/socket"), Path::new("/t/cache"));
        assert_eq!(
            text,
            r#"socket = "/t/run/socket"
cache_dir = "/t/cache"

[directory]
uris = ["ldap://127.0.0.1:389"]
base = "dc=example,dc=org"
tls = "starttls"
ca_file = "/t/ca.pem"
bind_dn = "cn=reader,dc=example,dc=org"
bind_password_file = "/t/bind.secret"
timeout = "3s"

[cache]
ttl = "5m"
negative_ttl = "30s"
"#
        );
    }

    #[test]
    fn a_domain_is_written_instead_of_uris() {
        let config = AgentConfig::new(vec!["ldap://ignored".into()], Path::new("/ca"), Path::new("/pw"))
            .domain("example.org")
            .tls("ldaps");
        let text = config.render(Path::new("/s"), Path::new("/c"));
        assert!(text.contains("\n[directory]\ndomain = \"example.org\"\nbase = ") && !text.contains("uris"), "{text}");
        assert!(text.contains("\ntls = \"ldaps\"\n"), "{text}");
    }

    #[test]
    fn pam_section_comes_last_with_only_the_keys_set() {
        let config = AgentConfig::new(vec![], Path::new("/ca"), Path::new("/pw"));
        assert!(!config.render(Path::new("/s"), Path::new("/c")).contains("[pam]"));
        let pam = PamConfig::default()
            .allowed_groups(&["developers", "o\"ps"])
            .access_filter("(&(objectClass=posixAccount)(host={host}))")
            .root_may_reset_passwords(false)
            .create_home("0700")
            .max_failures(3, "5m");
        let text = config.clone().pam(pam).render(Path::new("/s"), Path::new("/c"));
        let (_, section) = text.split_once("\n[cache]\n").unwrap().1.split_once("\n[pam]\n").unwrap();
        assert_eq!(
            section,
            r#"allowed_groups = ["developers", "o\"ps"]
access_filter = "(&(objectClass=posixAccount)(host={host}))"
root_may_reset_passwords = false
create_home = true
home_mode = "0700"
max_failures = 3
failure_window = "5m"
"#
        );
        let empty = config.pam(PamConfig::default()).render(Path::new("/s"), Path::new("/c"));
        assert!(empty.ends_with("\n[pam]\n"), "{empty}");
    }

    #[test]
    fn offline_section_comes_after_cache_with_only_the_keys_set() {
        let config = AgentConfig::new(vec![], Path::new("/ca"), Path::new("/pw")).timeout("1s").negative_ttl("2s");
        let plain = config.render(Path::new("/s"), Path::new("/c"));
        assert!(!plain.contains("[offline]"), "{plain}");
        assert!(plain.contains("\ntimeout = \"1s\"\n") && plain.contains("\nnegative_ttl = \"2s\"\n"), "{plain}");

        let offline = OfflineConfig::default().max_age("14d").lockout_after(2, "1h").probe_interval("1s");
        let text = config.clone().offline(offline).pam(PamConfig::default()).render(Path::new("/s"), Path::new("/c"));
        let (_, after_cache) = text.split_once("\n[cache]\n").unwrap();
        let (_, section) = after_cache.split_once("\n[offline]\n").unwrap();
        assert_eq!(
            section,
            "max_age = \"14d\"\nmax_failures = 2\nlockout = \"1h\"\nprobe_interval = \"1s\"\n\n[pam]\n"
        );
        let only_probe =
            config.offline(OfflineConfig::default().probe_interval("1s")).render(Path::new("/s"), Path::new("/c"));
        assert!(only_probe.ends_with("\n[offline]\nprobe_interval = \"1s\"\n"), "{only_probe}");
    }

    #[test]
    fn a_umask_launch_keeps_the_agent_as_the_supervised_pid() {
        let mut child = Supervised::spawn("sleep", under_umask(0o027, Path::new("sleep")).arg("30")).unwrap();
        let pid = child.pid();
        // Until sh has exec'd, /proc shows sh.
        let status = poll_until("sh to exec sleep", Duration::from_secs(5), Duration::from_millis(5), || {
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            Ok((comm.trim() == "sleep").then(|| fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default()))
        });
        child.stop().unwrap();
        let status = status.unwrap();
        assert!(status.lines().any(|l| l == "Umask:\t0027"), "{status}");
    }

    #[test]
    fn a_jumpable_clock_takes_only_relative_offsets_and_replaces_its_spec() {
        let clock = JumpableClock::new().unwrap();
        assert_eq!(fs::read_to_string(&clock.spec).unwrap(), "+0\n");
        for good in ["+2d", "-22h", "+90", "-1y", "+0"] {
            clock.jump(good).unwrap();
            assert_eq!(fs::read_to_string(&clock.spec).unwrap(), format!("{good}\n"));
        }
        for bad in ["", "+", "2d", "+2dd", "+d", "é", "+-2d", "@2024-01-01 00:00:00", "2024-01-01 00:00:00", "+2d x10"]
        {
            assert!(clock.jump(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(fs::read_to_string(&clock.spec).unwrap(), "+0\n", "a refused offset changed the spec");
    }

    #[test]
    fn extra_lines_go_into_directory_and_raw_text_gets_the_scratch_paths() {
        let config = AgentConfig::new(vec![], Path::new("/ca"), Path::new("/pw")).directory_line("colour = \"red\"");
        let text = config.render(Path::new("/s"), Path::new("/c"));
        let directory = text.split("[cache]").next().unwrap();
        assert!(directory.contains("[directory]") && directory.contains("\ncolour = \"red\"\n"), "{text}");

        let raw = AgentConfig { raw: Some("socket = \"@SOCKET@\"\ncache_dir = \"@CACHE_DIR@\"\n".into()), ..config };
        assert_eq!(raw.render(Path::new("/s"), Path::new("/c")), "socket = \"/s\"\ncache_dir = \"/c\"\n");
    }
}
