//! A throwaway Samba AD domain controller (Debian's Samba 4.17): realm `EXAMPLE.ORG`, NetBIOS
//! domain `EXAMPLE`, base `DC=example,DC=org`, RFC 2307 attributes, loaded with [`data`].
//!
//! Samba's LDAP ports are hard-coded (389, 636, 3268, 3269), so each DC gets a network
//! namespace of its own, where it listens on 127.0.0.1 (the namespace's `lo`) only. Every
//! Samba command (provision, `ldbmodify`, `samba`) runs in private mount and network namespaces
//! where scratch directories are bound over `/etc/samba`, `/var/lib/samba`, `/var/cache/samba`,
//! `/var/log/samba` and `/run/samba`, and a `resolv.conf` naming Samba's own DNS server over
//! `/etc/resolv.conf`; all mounts use `mount -n`. The host's `/etc`, `/run` and `/var/lib` are
//! never written. `samba` itself is PID 1 of a PID namespace too: when it goes, the kernel
//! ends every worker it forked.
//!
//! # What an agent needs to use it
//! - Run inside the DC's namespaces: [`SambaAd::command`] (or [`SambaAd::nsenter_prefix`] in
//!   front of any argv). `getent`/`id` need not: they talk to the agent over its Unix socket,
//!   whose path works across network namespaces.
//! - `directory.uris = [uri_starttls()]` (`ldap://127.0.0.1:389`, StartTLS) or [`SambaAd::uri_ldaps`];
//!   `ca_file = ca_pem()` (the server certificate names `127.0.0.1`, `localhost`,
//!   `dc1.example.org` and `example.org`); `bind_dn = bind_dn()`, `bind_password_file =
//!   bind_secret()` (0600, no newline); `base = base_dn()`; `schema = "ad"`.
//! - Users: `(&(objectClass=user)(uidNumber=*))`, login in `sAMAccountName`, home in
//!   `unixHomeDirectory`, `gecos`, `loginShell`, `uidNumber`, `gidNumber`. Groups:
//!   `(&(objectClass=group)(gidNumber=*))`, members as DNs in `member` (nested groups,
//!   `tokenGroups`), a primary group by `gidNumber` (AD's own is `primaryGroupID` 513).
//! - Searches from the base return continuation references (Configuration, DNS zones); AD has
//!   no anonymous search, no WhoAmI, no Password Modify: a password change is an LDAP modify of
//!   `unicodePwd` ([`data::password_change_ldif`]). Refused binds are rc 49 with a `data NNN`
//!   sub-code ([`data::AdState::bind_refusal`]); a bind without TLS is rc 8.
//! - DNS: SRV `_ldap._tcp.example.org` -> `dc1.example.org:389`, A `dc1.example.org` and
//!   `example.org` -> 127.0.0.1, served by Samba on 127.0.0.1:53; a process that entered with
//!   [`SambaAd::nsenter_prefix`] (`-m`) has a `/etc/resolv.conf` naming it.
//! - Samba 4.17 never splits a multi-valued attribute by itself: `member` and
//!   `member;range=0-*` return all values of `biggroup` at once. Only a client that asks for
//!   `member;range=0-1499` gets that range, then `member;range=1500-*`. (Windows DCs cap at
//!   `MaxValRange`, 1,500.)

pub mod data;
pub mod pki;
mod server;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::TestPki;
use crate::process::{HANG_GUARD, Output, PidFd, Supervised, run_bounded};
use crate::tempdir::{TempDir, random_hex, write_file_mode};
pub use data::{AdState, AdUser, BASE_DN, DISABLED, MUST_CHANGE, READER_DN};

/// How long provision and the data load may take before they count as hung: several DCs
/// provisioning at once on two cores take far longer than the 5 s one takes alone.
const SETUP_GUARD: Duration = Duration::from_secs(180);
/// How long a started DC may take to answer a bind and a DNS query.
const READY_LIMIT: Duration = Duration::from_secs(60);

/// How long each step of [`SambaAd::start`] took.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    /// `samba-tool domain provision`.
    pub provision: Duration,
    /// Both `ldbmodify` runs on `sam.ldb`.
    pub load: Duration,
    /// From spawning `samba` until the reader binds over StartTLS and DNS answers.
    pub ready: Duration,
}

/// One process of the DC, for memory accounting.
#[derive(Debug, Clone)]
pub struct SambaProcess {
    pub pid: u32,
    /// `/proc/PID/comm` (`samba`, `ldap[master]`, `kdc(0)`, ...).
    pub name: String,
    /// `VmRSS`, kB: counts shared pages in every process.
    pub rss_kb: u64,
    /// `Pss` (shared pages split between their users), kB: these add up.
    pub pss_kb: u64,
}

/// A running DC. Dropping it stops `samba` by its pidfd (its PID namespace goes with it), reaps
/// the `unshare` that started it, then removes the scratch directory.
#[derive(Debug)]
pub struct SambaAd {
    // `Drop` stops the DC before any of these files go away.
    samba: PidFd,
    process: Supervised,
    pki: TestPki,
    bind_secret: PathBuf,
    admin_secret: PathBuf,
    log_dir: PathBuf,
    timings: Timings,
    dir: TempDir,
}

impl SambaAd {
    /// Provisions a new domain, loads [`data`], starts `samba` and waits until the reader can
    /// bind over StartTLS and the DC's name resolves through Samba's DNS.
    pub fn start() -> Result<Self> {
        server::start()
    }

    /// `ldap://127.0.0.1:389`: StartTLS, inside the DC's network namespace.
    pub fn uri_starttls(&self) -> String {
        "ldap://127.0.0.1:389".into()
    }

    /// `ldaps://127.0.0.1:636`.
    pub fn uri_ldaps(&self) -> String {
        "ldaps://127.0.0.1:636".into()
    }

    pub fn pki(&self) -> &TestPki {
        &self.pki
    }

    pub fn ca_pem(&self) -> &Path {
        &self.pki.ca_pem
    }

    /// The service account, `CN=reader,CN=Users,DC=example,DC=org`.
    pub fn bind_dn(&self) -> &'static str {
        READER_DN
    }

    /// The reader's password, mode 0600, without a trailing newline.
    pub fn bind_secret(&self) -> &Path {
        &self.bind_secret
    }

    /// `CN=Administrator,CN=Users,DC=example,DC=org`'s password (0600, no newline).
    pub fn admin_secret(&self) -> &Path {
        &self.admin_secret
    }

    pub fn base_dn(&self) -> &'static str {
        BASE_DN
    }

    /// `samba`'s PID in the host's PID namespace (PID 1 of its own).
    pub fn pid(&self) -> u32 {
        self.samba.pid()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn timings(&self) -> Timings {
        self.timings
    }

    /// `log.samba` (level 1, `auth_audit:3`: one line per authentication, with its transport
    /// and status), then what `samba` wrote to stdout and stderr.
    pub fn log(&self) -> String {
        let read = |p: PathBuf| std::fs::read(p).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
        read(self.log_dir.join("log.samba")) + &read(self.dir.join("samba.out"))
    }

    /// `nsenter -t PID -n -m`: the DC's network namespace (127.0.0.1:389 is the DC) and its
    /// mount namespace (`/etc/resolv.conf` names Samba's DNS; otherwise the host's files, with
    /// scratch directories over Samba's own). Not its PID namespace: `/proc` stays the host's.
    pub fn nsenter_prefix(&self) -> Vec<String> {
        ["nsenter", "-t", &self.pid().to_string(), "-n", "-m"].map(String::from).to_vec()
    }

    /// `program` run inside the DC's namespaces. nsenter execs it: the child's PID is the
    /// program's, ready for [`Supervised::spawn`].
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let prefix = self.nsenter_prefix();
        let mut cmd = Command::new(&prefix[0]);
        cmd.args(&prefix[1..]).arg(program);
        cmd
    }

    /// An ldap-utils command inside the namespaces that trusts this run's CA only and demands a
    /// valid certificate.
    pub fn ldap_tool(&self, program: &str) -> Command {
        let mut cmd = self.command(program);
        cmd.env("LDAPTLS_CACERT", &self.pki.ca_pem).env("LDAPTLS_REQCERT", "demand");
        cmd
    }

    /// `ldapsearch -ZZ` as the reader from the base, LDIF without wrapping.
    pub fn search_as_reader(&self, filter: &str, attrs: &[&str]) -> Result<Output> {
        self.search(READER_DN, &self.bind_secret, filter, attrs)
    }

    /// `ldapsearch -ZZ` bound as `who` (a DN, `name@example.org` or `EXAMPLE\name`) with
    /// `password` (passed in a 0600 file). rc 49 when the bind is refused.
    pub fn search_as(&self, who: &str, password: &str, filter: &str, attrs: &[&str]) -> Result<Output> {
        let secret = self.secret_file(password)?;
        let out = self.search(who, &secret, filter, attrs);
        let _ = std::fs::remove_file(&secret);
        out
    }

    /// A simple bind as `who` and a read of the rootDSE over plain `ldap://`, no StartTLS.
    pub fn bind_in_clear(&self, who: &str, password: &str) -> Result<Output> {
        let secret = self.secret_file(password)?;
        let mut cmd = self.ldap_tool("ldapsearch");
        cmd.args(["-x", "-LLL", "-H", &self.uri_starttls(), "-D", who, "-y"]).arg(&secret).args([
            "-s",
            "base",
            "-b",
            "",
            "(objectClass=*)",
            "dnsHostName",
        ]);
        let out = run_bounded(&mut cmd, &format!("ldapsearch in clear -D {who}"), HANG_GUARD);
        let _ = std::fs::remove_file(&secret);
        out
    }

    /// `ldapmodify -ZZ` bound as `who` with `old`: `dn`'s own password change from `old` to
    /// `new` (delete and add `unicodePwd`). The LDIF holds both passwords: 0600, removed after.
    pub fn change_password_as(&self, who: &str, dn: &str, old: &str, new: &str) -> Result<Output> {
        let (secret, ldif) = (self.secret_file(old)?, self.secret_file(&data::password_change_ldif(dn, old, new))?);
        let mut cmd = self.ldap_tool("ldapmodify");
        cmd.args(["-x", "-ZZ", "-H", &self.uri_starttls(), "-D", who, "-y"]).arg(&secret).arg("-f").arg(&ldif);
        let out = run_bounded(&mut cmd, &format!("ldapmodify -ZZ -D {who} (unicodePwd)"), HANG_GUARD);
        let _ = std::fs::remove_file(&secret);
        let _ = std::fs::remove_file(&ldif);
        out
    }

    fn search(&self, who: &str, secret: &Path, filter: &str, attrs: &[&str]) -> Result<Output> {
        let mut cmd = self.ldap_tool("ldapsearch");
        cmd.args(["-x", "-ZZ", "-LLL", "-o", "ldif-wrap=no", "-H", &self.uri_starttls(), "-D", who, "-y"])
            .arg(secret)
            .args(["-b", BASE_DN, filter])
            .args(attrs);
        run_bounded(&mut cmd, &format!("ldapsearch -ZZ -D {who} {filter}"), HANG_GUARD)
    }

    fn secret_file(&self, contents: &str) -> Result<PathBuf> {
        let file = self.dir.join(format!("secret-{}", random_hex(4)?));
        write_file_mode(&file, contents.as_bytes(), 0o600)?;
        Ok(file)
    }

    /// Every process in the DC's PID namespace, with its memory.
    pub fn processes(&self) -> Result<Vec<SambaProcess>> {
        let ns = std::fs::read_link(format!("/proc/{}/ns/pid", self.pid())).context("samba's PID namespace")?;
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").context("listing /proc")?.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            // A process may exit between the listing and these reads: skip it then.
            if std::fs::read_link(entry.path().join("ns/pid")).ok().as_ref() != Some(&ns) {
                continue;
            }
            let read = |f: &str| std::fs::read_to_string(entry.path().join(f)).unwrap_or_default();
            let kb = |text: &str, key: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(key))
                    .and_then(|v| v.split_whitespace().next()?.parse().ok())
                    .unwrap_or(0)
            };
            let name = read("comm").trim().to_owned();
            found.push(SambaProcess {
                pid,
                name,
                rss_kb: kb(&read("status"), "VmRSS:"),
                pss_kb: kb(&read("smaps_rollup"), "Pss:"),
            });
        }
        found.sort_by_key(|p| p.pid);
        Ok(found)
    }

    /// Stops the DC: SIGTERM to `samba`, SIGKILL if it lingers; every worker dies with its PID
    /// namespace. Returns the status of the `unshare` that ran it. Idempotent.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        server::stop(&self.samba, &mut self.process)
    }
}

impl Drop for SambaAd {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("stopping samba: {e:#}");
        }
    }
}
