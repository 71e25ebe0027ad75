//! A real OpenSSH server (Debian's `/usr/sbin/sshd`) on a free loopback port, in a private
//! mount namespace ([`crate::Namespace`]: the test `nsswitch.conf` and NSS module, a scratch
//! `pam.d` over `/etc/pam.d`, a tmpfs `/run` with `/run/sshd`, a tmpfs over `/var/log` so its
//! wtmp and lastlog writes stay in the namespace, and a tmpfs `/home`) and its own PID
//! namespace, where sshd is PID 1: when it exits, the kernel ends every session process it
//! left. Its host key is made per run. The client is the real `ssh`, fed the password by
//! `sshpass`, with no user configuration and no known-hosts file.

use std::fs;
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

use crate::pam::{MODULE_PLACEHOLDER, PamDir, lanyard_service};
use crate::process::{HANG_GUARD, Output, PidFd, STOP_GRACE, Supervised, poll_until, run_bounded};
use crate::slapd::closed_port;
use crate::tempdir::TempDir;
use crate::{Agent, Namespace};

const SSHD: &str = "/usr/sbin/sshd";
const START_ATTEMPTS: usize = 5;
const READY_LIMIT: Duration = Duration::from_secs(15);

/// How sshd is set up.
#[derive(Debug, Clone)]
pub struct SshdOptions {
    /// The run directory mounted on `/run/lanyard` (the agent's).
    pub run_dir: PathBuf,
    /// `pam.d/sshd`; `@MODULE@` is replaced by the path of the copied `pam_lanyard.so`.
    pub pam_service: String,
    /// Lines appended to `sshd_config` (`AllowUsers ...`).
    pub extra_config: Vec<String>,
}

impl SshdOptions {
    /// sshd authenticating, checking accounts and opening sessions with `pam_lanyard.so` only.
    pub fn lanyard(agent: &Agent, module_args: &[&str]) -> Self {
        SshdOptions {
            run_dir: agent.run_dir(),
            pam_service: lanyard_service(Path::new(MODULE_PLACEHOLDER), module_args),
            extra_config: Vec::new(),
        }
    }

    /// A stack of `pam_permit.so` only: for checking the server itself. Always restrict it with
    /// `AllowUsers` in `extra_config`: it lets anyone allowed in without a password.
    pub fn permit_only(run_dir: &Path, allow_users: &str) -> Self {
        let pam_service = ["auth", "account", "password", "session"]
            .iter()
            .map(|group| format!("{group:<8} required pam_permit.so\n"))
            .collect();
        SshdOptions { run_dir: run_dir.into(), pam_service, extra_config: vec![format!("AllowUsers {allow_users}")] }
    }
}

/// A running sshd. Dropping it stops sshd (and so its whole PID namespace) by its pidfd, reaps
/// the `unshare` that started it, then removes its files.
#[derive(Debug)]
pub struct Sshd {
    // `Drop` stops sshd before any of these files go away.
    sshd: Option<PidFd>,
    process: Supervised,
    port: u16,
    log: PathBuf,
    dir: TempDir,
    ns: Namespace,
    _pam: PamDir,
}

impl Sshd {
    /// sshd on a free port of 127.0.0.1, ready when it logs that it listens and the port
    /// accepts a connection.
    pub fn start(options: &SshdOptions) -> Result<Self> {
        ensure!(Path::new(SSHD).is_file(), "{SSHD} is missing: run tests/install-deps.sh (openssh-server)");
        let dir = TempDir::new("sshd")?;
        let host_key = dir.join("host_ed25519_key");
        let keygen = run_bounded(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "lanyard-test", "-f"])
                .arg(&host_key),
            "ssh-keygen",
            HANG_GUARD,
        )?;
        ensure!(keygen.status.success(), "{keygen}");

        let pam = PamDir::new()?;
        pam.service("sshd", &options.pam_service.replace(MODULE_PLACEHOLDER, &pam.module().to_string_lossy()))?;
        let ns = Namespace::new(&options.run_dir)?.with_pam_d(pam.pam_d()).with_home_tmpfs().with_sshd_dirs();

        let config = dir.join("sshd_config");
        let log = dir.join("sshd.log");
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = closed_port()?;
            fs::write(&config, sshd_config(port, &host_key, dir.path(), &ns, &options.extra_config))
                .context("writing sshd_config")?;
            let log_file = fs::File::create(&log).context("creating sshd.log")?;
            // -D: foreground; -e: log to stderr. --kill-child: should unshare die, sshd gets
            // SIGKILL, and with it the PID namespace.
            let mut cmd =
                ns.command(&["--pid", "--fork", "--kill-child"], &[SSHD, "-D", "-e", "-f", &config.to_string_lossy()]);
            cmd.stdin(Stdio::null()).stdout(log_file.try_clone()?).stderr(log_file);
            let mut process = Supervised::spawn("unshare (sshd)", &mut cmd)?;
            let sshd = PidFd::only_child_of(&mut process, READY_LIMIT).ok();
            let listening = wait_listening(&mut process, &log, port);
            if matches!(listening, Ok(true)) && sshd.is_some() {
                return Ok(Sshd { sshd, process, port, log, dir, ns, _pam: pam });
            }
            let _ = stop(sshd.as_ref(), &mut process);
            if let Err(e) = listening {
                return Err(e.context(format!("sshd's log:\n{}", fs::read_to_string(&log).unwrap_or_default())));
            }
            last_log = fs::read_to_string(&log).unwrap_or_default();
            // Another process may have taken the port between our probe and sshd's bind.
            if !last_log.contains("Address already in use") {
                break;
            }
        }
        bail!("sshd did not start; its log:\n{last_log}")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// sshd's PID (in the host's PID namespace).
    pub fn pid(&self) -> Option<u32> {
        self.sshd.as_ref().map(PidFd::pid)
    }

    /// Everything sshd logged so far (`LogLevel VERBOSE`).
    pub fn log(&self) -> String {
        fs::read(&self.log).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The namespace sshd runs in (its `lib_dir` is in the sessions' `LD_LIBRARY_PATH`).
    pub fn namespace(&self) -> &Namespace {
        &self.ns
    }

    /// `ssh USER@127.0.0.1 COMMAND` with `password` typed by sshpass at the password prompt
    /// (the `password` method, which sshd hands to PAM). The exit code is the remote command's,
    /// or 255 with `Permission denied` on stderr when the login is refused (one prompt only).
    pub fn ssh(&self, user: &str, password: &str, command: &str) -> Result<Output> {
        let home = self.dir.join("client-home");
        fs::create_dir_all(&home).context("creating the client's HOME")?;
        let mut cmd = Command::new("sshpass");
        // -e: the password comes from $SSHPASS, not the command line.
        cmd.arg("-e").env("SSHPASS", password).env("HOME", &home);
        cmd.args(["ssh", "-F", "/dev/null", "-p", &self.port.to_string()]).args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "PreferredAuthentications=password",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "NumberOfPasswordPrompts=1",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "LogLevel=ERROR",
            "-l",
            user,
            "127.0.0.1",
            command,
        ]);
        run_bounded(&mut cmd, &format!("ssh {user}@127.0.0.1 {command}"), HANG_GUARD)
    }

    /// Stops sshd: SIGTERM through its pidfd, then SIGKILL if it lingers; its PID namespace
    /// goes with it. Returns the exit status of the `unshare` that ran it.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        stop(self.sshd.as_ref(), &mut self.process)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("stopping sshd: {e:#}");
        }
    }
}

fn stop(sshd: Option<&PidFd>, unshare: &mut Supervised) -> Result<ExitStatus> {
    if let Some(status) = unshare.try_exit_status()? {
        return Ok(status);
    }
    if let Some(sshd) = sshd {
        sshd.signal(libc::SIGTERM)?;
        if let Some(status) = unshare.wait_exit(STOP_GRACE)? {
            return Ok(status);
        }
        eprintln!("sshd (pid {}) ignored SIGTERM for {STOP_GRACE:?}; sending SIGKILL", sshd.pid());
        sshd.signal(libc::SIGKILL)?;
        if let Some(status) = unshare.wait_exit(STOP_GRACE)? {
            return Ok(status);
        }
    }
    // unshare itself blocks SIGTERM; Supervised::stop ends with SIGKILL, and --kill-child
    // takes sshd along.
    unshare.stop()
}

fn sshd_config(port: u16, host_key: &Path, dir: &Path, ns: &Namespace, extra: &[String]) -> String {
    let mut text = format!(
        "\
Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {pid}
UsePAM yes
KbdInteractiveAuthentication yes
PasswordAuthentication yes
PubkeyAuthentication no
AuthorizedKeysFile none
PermitRootLogin no
PrintMotd no
PrintLastLog no
UseDNS no
MaxAuthTries 3
LoginGraceTime 30
LogLevel VERBOSE
# Sessions resolve names through the module too (e.g. `id` naming alice's groups).
SetEnv LD_LIBRARY_PATH={lib}
",
        host_key = host_key.display(),
        pid = dir.join("sshd.pid").display(),
        lib = ns.lib_dir().display(),
    );
    for line in extra {
        text += line;
        text.push('\n');
    }
    text
}

/// Waits until sshd logs that it listens and the port accepts a connection (true), or the
/// process exits (false).
fn wait_listening(process: &mut Supervised, log: &Path, port: u16) -> Result<bool> {
    let line = format!("Server listening on 127.0.0.1 port {port}.");
    poll_until("sshd to listen", READY_LIMIT, Duration::from_millis(10), || {
        if process.try_exit_status()?.is_some() {
            return Ok(Some(false));
        }
        let logged = fs::read_to_string(log).is_ok_and(|l| l.contains(&line));
        Ok((logged && TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok()).then_some(true))
    })
}
