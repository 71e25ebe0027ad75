//! How the instance is made and run: the namespace holder and its mounts, the files it needs
//! (answer file, patched packaged files), commands inside it through `nsenter`, and ns-slapd
//! started in the foreground and stopped by PID.

use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

use super::INSTANCE;
use crate::TestPki;
use crate::fixture::BASE_DN;
use crate::process::{HANG_GUARD, Output, Supervised, poll_until, run_bounded};
use crate::tempdir::{TempDir, random_hex, write_file_mode};

const CONFIG_DIR: &str = "/etc/dirsrv/slapd-lanyard";
/// Inside the namespace; the same file is `<dir>/run/slapd-lanyard.pid` outside.
const PID_FILE: &str = "/run/dirsrv/slapd-lanyard.pid";
pub(super) const LDAPI_URI: &str = "ldapi://%2Frun%2Fslapd-lanyard.socket";
const DEFAULTS_INF: &str = "/usr/share/dirsrv/inf/defaults.inf";
const TEMPLATE_DSE: &str = "/usr/share/dirsrv/data/template-dse.ldif";
pub(super) const NS_SLAPD: &str = "/usr/sbin/ns-slapd";
/// ns-slapd's default error log level (`SLAPD_DEFAULT_ERRORLOG_LEVEL`), as 389's own container
/// entry point passes it: any `-d` keeps ns-slapd in the foreground, and this one also copies
/// the error log to stderr; `-d 0` would stop it writing the error log at all.
const ERRORLOG_LEVEL: &str = "266354688";

const READY_LIMIT: Duration = Duration::from_secs(30);
/// ns-slapd takes 2-4 s to stop (its database threads wind down); SIGKILL only after this.
const STOP_LIMIT: Duration = Duration::from_secs(20);

/// Runs as `sh -c SCRIPT sh DIR` under `unshare -m --propagation private`. `/run` is covered
/// first and every mount uses `-n`: a plain `mount` writes libmount's utab under `/run`.
const NAMESPACE_SCRIPT: &str = r#"
fail() { echo "ds389 namespace setup failed: $*" >&2; exit 125; }
d="$1"
cp -a /etc/dirsrv/. "$d/etc/" || fail "copying the packaged /etc/dirsrv"
chown -R dirsrv:dirsrv "$d/etc" "$d/lib" "$d/log" "$d/run" || fail "chown to dirsrv"
mount -n -t tmpfs -o mode=0755 lanyard-ds389-run /run || fail "tmpfs on /run"
mkdir -p /run/dirsrv /run/lock/dirsrv && chown dirsrv:dirsrv /run/lock/dirsrv || fail "run dirs"
mount -n --bind "$d/run" /run/dirsrv || fail "bind /run/dirsrv"
mount -n --bind "$d/etc" /etc/dirsrv || fail "bind /etc/dirsrv"
mount -n --bind "$d/lib" /var/lib/dirsrv || fail "bind /var/lib/dirsrv"
mount -n --bind "$d/log" /var/log/dirsrv || fail "bind /var/log/dirsrv"
mount -n -t tmpfs -o mode=1777 lanyard-ds389-shm /dev/shm || fail "tmpfs on /dev/shm"
mount -n --bind "$d/defaults.inf" /usr/share/dirsrv/inf/defaults.inf || fail "bind defaults.inf"
mount -n --bind "$d/template-dse.ldif" /usr/share/dirsrv/data/template-dse.ldif || fail "bind template"
: > "$d/namespace-ready"
exec sleep infinity
"#;

/// The process keeping the instance's mount namespace: `sleep`, exec'd by the set-up script.
#[derive(Debug)]
pub(super) struct Holder {
    process: Supervised,
    /// The pid file ns-slapd writes, as seen from outside the namespace.
    pid_file: PathBuf,
}

impl Holder {
    pub(super) fn start(dir: &TempDir) -> Result<Self> {
        let ready = dir.join("namespace-ready");
        let log = dir.join("namespace.log");
        let log_file = fs::File::create(&log).context("creating namespace.log")?;
        let mut cmd = Command::new("unshare");
        cmd.args(["-m", "--propagation", "private", "sh", "-c", NAMESPACE_SCRIPT, "sh"]).arg(dir.path());
        cmd.stdin(Stdio::null()).stdout(log_file.try_clone()?).stderr(log_file);
        let mut process = Supervised::spawn("unshare (389 namespace)", &mut cmd)?;
        poll_until("the 389 namespace's mounts", READY_LIMIT, Duration::from_millis(10), || {
            if ready.exists() {
                return Ok(Some(()));
            }
            if let Some(status) = process.try_exit_status()? {
                bail!("setting up the namespace failed ({status}):\n{}", fs::read_to_string(&log).unwrap_or_default());
            }
            Ok(None)
        })?;
        Ok(Holder { process, pid_file: dir.join("run/slapd-lanyard.pid") })
    }

    pub(super) fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub(super) fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t").arg(self.process.pid().to_string()).args(["-m", "--", program]);
        cmd
    }

    /// Puts the run's CA and server key and certificate into the instance's NSS database,
    /// while it is stopped; `Server-Cert` (dsctl's default nickname) is what the template's
    /// `cn=RSA,cn=encryption,cn=config` names.
    pub(super) fn import_tls(&self, pki: &TestPki) -> Result<()> {
        let ca = pki.ca_pem.as_os_str();
        self.run_checked(&["dsctl", INSTANCE, "tls", "import-ca"], &[ca, OsStr::new("Lanyard test CA")])?;
        let (cert, key) = (pki.server_cert_pem.as_os_str(), pki.server_key_pem.as_os_str());
        self.run_checked(&["dsctl", INSTANCE, "tls", "import-server-key-cert"], &[cert, key])?;
        Ok(())
    }

    /// Runs `words` then `paths` in the namespace; fails unless it exits 0.
    fn run_checked(&self, words: &[&str], paths: &[&OsStr]) -> Result<Output> {
        let (program, args) = words.split_first().context("empty command")?;
        let mut cmd = self.command(program);
        cmd.args(args).args(paths);
        let out = run_bounded(&mut cmd, &words.join(" "), HANG_GUARD)?;
        ensure!(out.status.success(), "{out}");
        Ok(out)
    }

    /// Stops an ns-slapd that `dscreate` daemonized and could not stop (it failed, or its hang
    /// guard killed it): named by the pid file, and only if it lives in this namespace.
    fn stop_stray_slapd(&self) {
        let Some(pid) = fs::read_to_string(&self.pid_file).ok().and_then(|p| p.trim().parse::<i32>().ok()) else {
            return;
        };
        let mount_ns = |p: String| fs::read_link(format!("/proc/{p}/ns/mnt")).ok();
        let ours = mount_ns(self.process.pid().to_string());
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if ours.is_none() || mount_ns(pid.to_string()) != ours || comm.trim() != "ns-slapd" {
            return;
        }
        let gone = || Ok((!Path::new(&format!("/proc/{pid}")).exists()).then_some(()));
        for signal in [libc::SIGTERM, libc::SIGKILL] {
            // SAFETY: kill(2) takes plain integers. The PID was checked just above to be an
            // ns-slapd in this holder's private mount namespace, which nothing else enters.
            unsafe { libc::kill(pid, signal) };
            if poll_until("a stray ns-slapd to exit", STOP_LIMIT, Duration::from_millis(20), gone).is_ok() {
                return;
            }
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        self.stop_stray_slapd();
    }
}

/// Writes the answer file, the patched copies of the packaged files, and the empty directories
/// the namespace script mounts.
pub(super) fn write_setup_files(dir: &TempDir, port: u16, ldaps_port: u16) -> Result<()> {
    for sub in ["etc", "lib", "log", "run"] {
        fs::create_dir(dir.join(sub)).with_context(|| format!("creating {sub}/"))?;
    }
    let defaults = fs::read_to_string(DEFAULTS_INF).with_context(|| format!("reading {DEFAULTS_INF}"))?;
    ensure!(defaults.lines().filter(|l| *l == "with_systemd = 1").count() == 1, "{DEFAULTS_INF} has changed");
    fs::write(dir.join("defaults.inf"), defaults.replace("with_systemd = 1", "with_systemd = 0"))?;
    let template = fs::read_to_string(TEMPLATE_DSE).with_context(|| format!("reading {TEMPLATE_DSE}"))?;
    let port_line = "nsslapd-port: %ds_port%\n";
    ensure!(template.matches(port_line).count() == 1, "{TEMPLATE_DSE} has changed");
    let listen = "nsslapd-listenhost: 127.0.0.1\nnsslapd-securelistenhost: 127.0.0.1\n";
    fs::write(dir.join("template-dse.ldif"), template.replace(port_line, &format!("{port_line}{listen}")))?;
    // Directory Manager's password is only ever used through ldapi autobind, never typed.
    let inf = format!(
        "[general]
full_machine_name = localhost
# Left stopped: the harness starts ns-slapd itself, in the foreground, as its own child.
start = False
[slapd]
instance_name = {INSTANCE}
port = {port}
secure_port = {ldaps_port}
root_password = {dm}
# The run's CA and server certificate are imported instead.
self_sign_cert = False
[backend-userroot]
suffix = {BASE_DN}
sample_entries = no
# No suffix entry: the harness adds it with its ACIs. (Leave out `create_suffix_entry`:
# lib389 reads the string \"False\" as true and creates the entry anyway.)
",
        dm = random_hex(16)?
    );
    write_file_mode(&dir.join("instance.inf"), inf.as_bytes(), 0o600)
}

/// Applies change records over ldapi as Directory Manager (root's autobind).
pub(super) fn ldapi_modify(holder: &Holder, dir: &TempDir, ldif: &str) -> Result<Output> {
    let file = dir.join(format!("change-{}.ldif", random_hex(4)?));
    write_file_mode(&file, ldif.as_bytes(), 0o600)?;
    let mut cmd = holder.command("ldapmodify");
    cmd.args(["-Q", "-Y", "EXTERNAL", "-H", LDAPI_URI, "-f"]).arg(&file);
    let out = run_bounded(&mut cmd, "ldapmodify (ldapi)", HANG_GUARD)?;
    ensure!(out.status.success(), "{out}");
    Ok(out)
}

/// Starts ns-slapd in the namespace, in the foreground, its output appended to `out`, and waits
/// until it logs "slapd started" and each of `ports` accepts a connection. `None` if it exited
/// first (its output says why).
pub(super) fn spawn_listening(holder: &Holder, out: &Path, ports: &[u16]) -> Result<Option<Supervised>> {
    let mark = log_len(out);
    let file = OpenOptions::new().append(true).create(true).open(out).context("opening ns-slapd.out")?;
    // nsenter joins the namespace and execs: the child's PID is ns-slapd's.
    let mut cmd = holder.command(NS_SLAPD);
    cmd.args(["-D", CONFIG_DIR, "-i", PID_FILE, "-d", ERRORLOG_LEVEL]);
    cmd.stdin(Stdio::null()).stdout(file.try_clone()?).stderr(file);
    let mut process = Supervised::spawn("ns-slapd", &mut cmd)?;
    let listening = poll_until("ns-slapd to listen", READY_LIMIT, Duration::from_millis(10), || {
        if process.try_exit_status()?.is_some() {
            return Ok(Some(false));
        }
        let started = read_since(out, mark).contains("slapd started");
        Ok((started && ports.iter().all(|&p| TcpStream::connect((Ipv4Addr::LOCALHOST, p)).is_ok())).then_some(true))
    })
    .with_context(|| format!("ns-slapd's output:\n{}", read_since(out, mark)))?;
    Ok(listening.then_some(process))
}

/// ns-slapd: "PR_Bind() on Loopback port N failed: ... (Local Network address is in use.)";
/// dscreate: "Port number N is already in use".
pub(super) fn port_taken(text: &str) -> bool {
    text.contains("address is in use") || text.contains("already in use")
}

pub(super) fn stop_gracefully(slapd: &mut Supervised) -> Result<ExitStatus> {
    if let Some(status) = slapd.try_exit_status()? {
        return Ok(status);
    }
    slapd.signal(libc::SIGTERM)?;
    match slapd.wait_exit(STOP_LIMIT)? {
        Some(status) => Ok(status),
        None => slapd.stop(),
    }
}

pub(super) fn log_len(path: &Path) -> usize {
    fs::metadata(path).map(|m| m.len() as usize).unwrap_or(0)
}

pub(super) fn read_since(path: &Path, mark: usize) -> String {
    let bytes = fs::read(path).unwrap_or_default();
    String::from_utf8_lossy(bytes.get(mark..).unwrap_or_default()).into_owned()
}

/// Two distinct ports the kernel just had free on 127.0.0.1.
pub(super) fn free_port_pair() -> Result<(u16, u16)> {
    let a = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("probing for a free port")?;
    let b = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("probing for a free port")?;
    Ok((a.local_addr()?.port(), b.local_addr()?.port()))
}
