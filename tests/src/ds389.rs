//! A throwaway 389 Directory Server (Debian's `389-ds-base` 2.3) on loopback, holding an
//! rfc2307bis directory ([`USERS`], [`groups`]): users with `memberOf`, `groupOfNames` +
//! `posixGroup` groups with `member` DNs, nested and cyclic groups. TLS from the run's [`TestPki`]: StartTLS
//! on [`Ds389::uri_starttls`], LDAPS on [`Ds389::uri_ldaps`]; a simple bind without TLS gets
//! "Confidentiality required" (13).
//!
//! 389's tools only know `/etc/dirsrv`, `/var/lib/dirsrv`, `/var/log/dirsrv`, `/run/dirsrv` and
//! `/run/lock/dirsrv`, and assume systemd. So a holder process keeps a private mount namespace
//! (`unshare -m`) where a tmpfs covers `/run` (the host has no `/run/dirsrv` to mount on, and
//! nothing may be created in its `/run`) and `/dev/shm`, scratch directories are bind-mounted
//! over the others, and two packaged files are replaced by patched copies: `defaults.inf` with
//! `with_systemd = 0` (`systemd = False` in the answer file is not enough) and
//! `template-dse.ldif` with `nsslapd-listenhost`/`nsslapd-securelistenhost: 127.0.0.1` (no
//! answer-file key; 389 listens on every address otherwise). Every command runs in it through
//! `nsenter -t HOLDER -m`: `dscreate` (stopped at the end), `dsctl tls import-ca` and
//! `import-server-key-cert`, then ns-slapd itself, in the foreground as our child, and the
//! configuration and data through `ldapmodify` over ldapi (root is Directory Manager there by
//! autobind: no password on any command line). TLS and the memberOf plugin take effect at a
//! restart, so the data goes in after one. About 10 s from nothing to ready (dscreate 5.5 s, the
//! restart 3 s), 2-3 s to stop: create one instance per test, not per assertion.
//!
//! What an agent needs: `base` = [`BASE_DN`], `bind_dn` = [`READER_DN`], `bind_password_file` =
//! [`Ds389::bind_secret`], `uris` = [`Ds389::uri_starttls`] (`tls = "starttls"`) or
//! [`Ds389::uri_ldaps`] (`tls = "ldaps"`), `ca_file` = [`Ds389::ca_pem`], `schema =
//! "rfc2307bis"`: users `(objectClass=posixAccount)`, groups `(objectClass=posixGroup)` with
//! members in `member` as DNs (users' `memberOf` lists every group, nesting resolved).
//!
//! Differences from [`crate::Slapd`] worth knowing: `ldapwhoami` prints `dn: DN` (with a space);
//! 389 writes `shadowLastChange` (days since 1970, today) whenever a `shadowAccount`'s password
//! is set or changed, AGED's explicit value included once it changes its password; the locked
//! user is `nsAccountLock: true` and its bind gets 53; anonymous operations in clear are allowed
//! (and see nothing), only simple binds in clear are refused.

mod directory;
mod instance;

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};

pub use self::directory::{
    DsGroup, ENG, EVERYONE, LOOP_A, LOOP_B, NESTED_GROUPS, USERS, account_attributes, group_dn, groups,
    transitive_groups,
};
use self::instance::{
    Holder, LDAPI_URI, NS_SLAPD, free_port_pair, ldapi_modify, log_len, port_taken, read_since, spawn_listening,
    stop_gracefully, write_setup_files,
};
use crate::TestPki;
use crate::fixture::{BASE_DN, READER_DN};
use crate::process::{HANG_GUARD, Output, Supervised, run_bounded};
use crate::tempdir::{self, TempDir, random_hex, write_file_mode};

/// The instance's name: `slapd-lanyard` in every path. One per namespace, so it never clashes.
pub const INSTANCE: &str = "lanyard";

const START_ATTEMPTS: usize = 3;
/// dscreate takes 5-6 s here; a guard against a hang (a misplaced run dir makes it wait 60 s).
const CREATE_GUARD: Duration = Duration::from_secs(120);

/// A running 389 instance. Dropping it stops ns-slapd by PID (SIGTERM, up to 20 s, then
/// SIGKILL), then the namespace holder, then removes every file.
#[derive(Debug)]
pub struct Ds389 {
    // Declared first: ns-slapd stops before its namespace and files go.
    slapd: Supervised,
    holder: Holder,
    pki: TestPki,
    port: u16,
    ldaps_port: u16,
    bind_secret: PathBuf,
    stages: Vec<(&'static str, Duration)>,
    dir: TempDir,
}

/// The outcome of one try at creating an instance on a pair of ports.
enum Attempt {
    Ready(Box<Ds389>),
    /// Something else holds one of the ports; the text says where it showed.
    PortTaken(String),
}

impl Ds389 {
    /// Creates and starts an instance on two free loopback ports (StartTLS and LDAPS), loads
    /// the directory and returns once the reader binds over StartTLS. Tries new ports when one
    /// turns out taken.
    pub fn start() -> Result<Self> {
        for tool in ["/usr/sbin/dscreate", "/usr/sbin/dsctl", NS_SLAPD, "/usr/bin/certutil"] {
            ensure!(Path::new(tool).is_file(), "{tool} is missing: run tests/install-deps.sh (389-ds-base)");
        }
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            match Ds389::create()? {
                Attempt::Ready(ds) => return Ok(*ds),
                Attempt::PortTaken(why) => last = why,
            }
        }
        bail!("389 found a port taken {START_ATTEMPTS} times; the last time:\n{last}")
    }

    fn create() -> Result<Attempt> {
        let begun = Instant::now();
        let mut stages = Vec::new();
        let mut since = Instant::now();
        let mut stage = |name, since: &mut Instant| {
            stages.push((name, since.elapsed()));
            *since = Instant::now();
        };
        let dir = TempDir::new("ds389")?;
        let pki = TestPki::generate(dir.path())?;
        let bind_secret = dir.join("bind.secret");
        let reader_password = random_hex(12)?;
        // No trailing newline: ldap tools' `-y` and the agent read the whole file.
        write_file_mode(&bind_secret, reader_password.as_bytes(), 0o600)?;
        let (port, ldaps_port) = free_port_pair()?;
        write_setup_files(&dir, port, ldaps_port)?;
        let holder = Holder::start(&dir)?;
        stage("namespace", &mut since);

        let mut create = holder.command("dscreate");
        create.arg("from-file").arg(dir.join("instance.inf"));
        let created = run_bounded(&mut create, "dscreate from-file", CREATE_GUARD)?;
        if !created.status.success() {
            if port_taken(&format!("{}{}", created.stdout(), created.stderr())) {
                return Ok(Attempt::PortTaken(created.to_string()));
            }
            bail!("dscreate failed:\n{created}");
        }
        stage("dscreate", &mut since);
        holder.import_tls(&pki)?;
        stage("tls import", &mut since);

        let out = dir.join("ns-slapd.out");
        // TLS is still off: only the LDAP port listens.
        let Some(mut slapd) = spawn_listening(&holder, &out, &[port])? else {
            return exited(&out, 0);
        };
        ldapi_modify(&holder, &dir, directory::CONFIG_LDIF)?;
        stop_gracefully(&mut slapd)?;
        stage("first start, config, stop", &mut since);
        let mark = log_len(&out);
        let Some(slapd) = spawn_listening(&holder, &out, &[port, ldaps_port])? else {
            return exited(&out, mark);
        };
        stage("start with TLS", &mut since);
        ldapi_modify(&holder, &dir, &directory::data_ldif(&reader_password))?;
        stage("data", &mut since);
        let mut ds = Ds389 { slapd, holder, pki, port, ldaps_port, bind_secret, stages, dir };
        ds.ensure_reader_binds("389 is up")?;
        ds.stages.extend([("reader bind", since.elapsed()), ("total", begun.elapsed())]);
        Ok(Attempt::Ready(Box::new(ds)))
    }

    /// `ldap://127.0.0.1:PORT` (StartTLS).
    pub fn uri_starttls(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// The StartTLS listener's address (for [`crate::RecordingProxy`]).
    pub fn starttls_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// `ldaps://127.0.0.1:PORT` (TLS from the first byte).
    pub fn uri_ldaps(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.ldaps_port)
    }

    pub fn pki(&self) -> &TestPki {
        &self.pki
    }

    pub fn ca_pem(&self) -> &Path {
        &self.pki.ca_pem
    }

    pub fn wrong_ca_pem(&self) -> &Path {
        &self.pki.wrong_ca_pem
    }

    /// The reader's password, mode 0600, without a trailing newline.
    pub fn bind_secret(&self) -> &Path {
        &self.bind_secret
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// ns-slapd's PID (it runs as the `dirsrv` user).
    pub fn pid(&self) -> u32 {
        self.slapd.pid()
    }

    /// The namespace holder's PID, for `nsenter -t PID -m` (see [`Ds389::command`]).
    pub fn namespace_pid(&self) -> u32 {
        self.holder.pid()
    }

    /// How long each step of [`Ds389::start`] took, and `total`.
    pub fn startup_stages(&self) -> &[(&'static str, Duration)] {
        &self.stages
    }

    /// ns-slapd's resident memory (`VmRSS`) in KiB, if it is running.
    pub fn vm_rss_kib(&self) -> Option<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    fn access_log_path(&self) -> PathBuf {
        self.dir.join("log/slapd-lanyard/access")
    }

    /// The access log so far: `conn=N op=M BIND dn="..." method=128`, `SRCH base="..." scope=2
    /// filter="..." attrs="..."`, `RESULT err=N`, `EXT oid=...` (StartTLS), `TLS1.3 ...`.
    pub fn log(&self) -> String {
        tempdir::log_since(&self.access_log_path(), 0)
    }

    /// The access log's current length, to read only what comes after with [`Ds389::log_since`].
    pub fn log_mark(&self) -> usize {
        tempdir::log_mark(&self.access_log_path())
    }

    pub fn log_since(&self, mark: usize) -> String {
        tempdir::log_since(&self.access_log_path(), mark)
    }

    /// The error log so far (start-up, TLS set-up, plugin messages).
    pub fn errors_log(&self) -> String {
        tempdir::log_since(&self.dir.join("log/slapd-lanyard/errors"), 0)
    }

    /// The filters of every search in an access log text, in order.
    pub fn search_filters(log: &str) -> Vec<String> {
        log.lines()
            .filter(|l| l.contains(" SRCH base="))
            .filter_map(|l| l.split_once(" filter=\"").and_then(|(_, rest)| rest.split_once("\" attrs=")))
            .map(|(filter, _)| filter.to_owned())
            .collect()
    }

    /// Stops ns-slapd by its PID (SIGTERM, up to 20 s, then SIGKILL). Files and namespace stay.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        stop_gracefully(&mut self.slapd)
    }

    /// Starts ns-slapd again after [`Ds389::stop`]: same ports, database, certificates and
    /// logs. Waits until the reader binds over StartTLS.
    pub fn start_again(&mut self) -> Result<()> {
        if self.slapd.try_exit_status()?.is_none() {
            bail!("ns-slapd (pid {}) is still running: stop it first", self.slapd.pid());
        }
        let out = self.dir.join("ns-slapd.out");
        let mut last = String::new();
        for attempt in 0..START_ATTEMPTS {
            let mark = log_len(&out);
            if let Some(slapd) = spawn_listening(&self.holder, &out, &[self.port, self.ldaps_port])? {
                self.slapd = slapd;
                return self.ensure_reader_binds("389 is back");
            }
            last = read_since(&out, mark);
            // Our own ports: a connection to the old process may still be closing.
            if !port_taken(&last) || attempt + 1 == START_ATTEMPTS {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        bail!("ns-slapd did not start again on ports {} and {}:\n{last}", self.port, self.ldaps_port)
    }

    /// `nsenter -t HOLDER -m -- PROGRAM`: a command inside the instance's namespace (`dsconf
    /// lanyard ...`, `dsctl lanyard ...`), where it sees the instance's `/etc/dirsrv`.
    pub fn command(&self, program: &str) -> Command {
        self.holder.command(program)
    }

    /// Applies `ldif` (change records) as Directory Manager over ldapi; fails unless it succeeds.
    pub fn modify_as_admin(&self, ldif: &str) -> Result<Output> {
        ldapi_modify(&self.holder, &self.dir, ldif)
    }

    /// `ldapsearch` as Directory Manager over ldapi (sees everything, ACIs aside).
    pub fn search_as_admin(&self, filter: &str, attrs: &[&str]) -> Result<Output> {
        let mut cmd = self.holder.command("ldapsearch");
        cmd.args(["-Q", "-Y", "EXTERNAL", "-LLL", "-o", "ldif-wrap=no", "-H", LDAPI_URI, "-b", BASE_DN, filter]);
        run_bounded(cmd.args(attrs), &format!("ldapsearch (admin) {filter}"), HANG_GUARD)
    }

    /// An ldap-utils command that trusts this run's CA and demands a valid certificate.
    pub fn ldap_tool(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("LDAPTLS_CACERT", &self.pki.ca_pem).env("LDAPTLS_REQCERT", "demand");
        cmd
    }

    /// `ldapsearch` as the reader over StartTLS, LDIF output without wrapping.
    pub fn search_as_reader(&self, filter: &str, attrs: &[&str]) -> Result<Output> {
        let mut cmd = self.ldap_tool("ldapsearch");
        cmd.args(["-x", "-ZZ", "-LLL", "-o", "ldif-wrap=no", "-H", &self.uri_starttls(), "-D", READER_DN, "-y"])
            .arg(&self.bind_secret)
            .args(["-b", BASE_DN, filter])
            .args(attrs);
        run_bounded(&mut cmd, &format!("ldapsearch {filter}"), HANG_GUARD)
    }

    /// `ldapwhoami -ZZ` bound as `dn` with `password` (in a 0600 file). Exits 0 and prints
    /// `dn: DN` on success; 49 for bad credentials, 53 for a locked account.
    pub fn whoami_as(&self, dn: &str, password: &str) -> Result<Output> {
        self.whoami(dn, password, true)
    }

    /// Like [`Ds389::whoami_as`] without StartTLS: the password goes in clear, and 389 refuses
    /// the bind with 13, "Confidentiality required".
    pub fn whoami_without_tls(&self, dn: &str, password: &str) -> Result<Output> {
        self.whoami(dn, password, false)
    }

    fn whoami(&self, dn: &str, password: &str, starttls: bool) -> Result<Output> {
        let secret = self.secret_file(password)?;
        let mut cmd = self.ldap_tool("ldapwhoami");
        cmd.args(["-x", "-H", &self.uri_starttls(), "-D", dn, "-y"]).arg(&secret);
        if starttls {
            cmd.arg("-ZZ");
        }
        let tls = if starttls { " -ZZ" } else { "" };
        let out = run_bounded(&mut cmd, &format!("ldapwhoami{tls} -D {dn}"), HANG_GUARD);
        let _ = fs::remove_file(&secret);
        out
    }

    /// `ldappasswd -ZZ` (Password Modify, RFC 3062) bound as `dn` with `old`, setting `new`;
    /// both passwords travel in 0600 files.
    pub fn passwd_as(&self, dn: &str, old: &str, new: &str) -> Result<Output> {
        let (old_file, new_file) = (self.secret_file(old)?, self.secret_file(new)?);
        let mut cmd = self.ldap_tool("ldappasswd");
        cmd.args(["-x", "-ZZ", "-H", &self.uri_starttls(), "-D", dn, "-y"]).arg(&old_file);
        cmd.arg("-t").arg(&old_file).arg("-T").arg(&new_file);
        let out = run_bounded(&mut cmd, &format!("ldappasswd -ZZ -D {dn}"), HANG_GUARD);
        let _ = fs::remove_file(&old_file);
        let _ = fs::remove_file(&new_file);
        out
    }

    fn secret_file(&self, password: &str) -> Result<PathBuf> {
        let file = self.dir.join(format!("pw-{}", random_hex(4)?));
        write_file_mode(&file, password.as_bytes(), 0o600)?;
        Ok(file)
    }

    fn ensure_reader_binds(&self, state: &str) -> Result<()> {
        let mut cmd = self.ldap_tool("ldapwhoami");
        cmd.args(["-x", "-ZZ", "-H", &self.uri_starttls(), "-D", READER_DN, "-y"]).arg(&self.bind_secret);
        let who = run_bounded(&mut cmd, "ldapwhoami -ZZ (reader)", HANG_GUARD)?;
        ensure!(
            who.status.success(),
            "{state} but the reader cannot bind over StartTLS:\n{who}\n{}",
            self.errors_log()
        );
        Ok(())
    }
}

impl Drop for Ds389 {
    fn drop(&mut self) {
        // A longer grace than `Supervised`'s own drop, which then only reaps.
        if let Err(e) = stop_gracefully(&mut self.slapd) {
            eprintln!("stopping ns-slapd: {e:#}");
        }
    }
}

/// The attempt's outcome once ns-slapd exited during a start: a port taken, or a failure.
fn exited(out: &Path, mark: usize) -> Result<Attempt> {
    let text = read_since(out, mark);
    ensure!(port_taken(&text), "ns-slapd exited while starting:\n{text}");
    Ok(Attempt::PortTaken(text))
}
