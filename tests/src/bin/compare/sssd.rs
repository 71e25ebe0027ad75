//! SSSD 2.8 (Debian's sssd-ldap) with the `nss` and `pam` responders, run as `sssd -i`
//! (foreground, logs on stderr) in its own namespace. /var/lib/sss is a scratch directory
//! bind-mounted there: on the same filesystem as Lanyard's cache, and its size readable from
//! outside. Settings follow sssd.conf(5) and sssd-ldap(5); beyond the connection only what the
//! comparison needs: `cache_credentials` (offline logins), the same 3 s directory timeout as
//! Lanyard's, and `enumerate` when asked (SSSD lists nothing on `getent passwd` without it).

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use lanyard_tests::fixture::{BASE_DN, READER_DN};
use lanyard_tests::tempdir::write_file_mode;
use lanyard_tests::{Output, Slapd, TempDir, poll_until};

use crate::subject::{DaemonNs, Subject, allocated, nsswitch};

pub struct Sssd {
    ns: DaemonNs,
    dir: TempDir,
    enumerate: bool,
}

impl Sssd {
    pub fn start(slapd: &Slapd, enumerate: bool) -> Result<Self> {
        let dir = TempDir::new("sssd")?;
        let password = fs::read_to_string(slapd.bind_secret()).context("reading bind.secret")?;
        let conf = dir.join("sssd.conf");
        // sssd refuses a config file that is not root's and 0600.
        write_file_mode(&conf, config(slapd, &password, enumerate).as_bytes(), 0o600)?;
        let lib = dir.join("lib-sss");
        // The layout Debian's sssd-common creates under /var/lib/sss, with its modes.
        for (sub, mode) in
            [("", 0o755), ("db", 0o700), ("pipes", 0o755), ("pipes/private", 0o700), ("mc", 0o775), ("pubconf", 0o755)]
        {
            let path = lib.join(sub);
            fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
            fs::set_permissions(&path, fs::Permissions::from_mode(mode))?;
        }
        let argv: [&OsStr; 4] = ["sssd".as_ref(), "-i".as_ref(), "-c".as_ref(), conf.as_os_str()];
        let pam = "auth     required pam_sss.so\naccount  required pam_sss.so\n";
        let ns = DaemonNs::spawn(dir.path(), "sssd", &nsswitch("sss"), pam, &lib, &argv)?;
        let sssd = Sssd { ns, dir, enumerate };
        sssd.wait_ready()?;
        Ok(sssd)
    }

    /// Until both responders' sockets exist (the monitor creates them once its children run).
    fn wait_ready(&self) -> Result<()> {
        let pipes = self.dir.join("lib-sss/pipes");
        let waited =
            poll_until("sssd's nss and pam sockets", Duration::from_secs(30), Duration::from_millis(20), || {
                Ok((pipes.join("nss").exists() && pipes.join("pam").exists()).then_some(()))
            });
        waited.with_context(|| format!("sssd's log:\n{}", self.ns.log_text()))
    }
}

fn config(slapd: &Slapd, password: &str, enumerate: bool) -> String {
    // Enumerating 10,000 users keeps sssd_be (and sssd_nss answering getent) busy for longer
    // than three 10 s heartbeats on a loaded two-core machine: the watchdog kills the process,
    // which starts the enumeration over, for ever (measured). sssd.conf(5) `timeout` raises the
    // heartbeat interval, as a site enumerating a large directory would.
    let heartbeat = if enumerate { "timeout = 120\n" } else { "" };
    format!(
        "[sssd]
config_file_version = 2
services = nss, pam
domains = bench

[nss]
{heartbeat}
[domain/bench]
{heartbeat}
id_provider = ldap
auth_provider = ldap
ldap_schema = rfc2307
ldap_uri = {uri}
ldap_search_base = {BASE_DN}
ldap_default_bind_dn = {READER_DN}
ldap_default_authtok_type = password
ldap_default_authtok = {password}
ldap_id_use_start_tls = true
ldap_tls_reqcert = demand
ldap_tls_cacert = {ca}
cache_credentials = true
enumerate = {enumerate}
ldap_search_timeout = 3
ldap_network_timeout = 3
ldap_opt_timeout = 3
",
        uri = slapd.uri_starttls(),
        ca = slapd.ca_pem().display(),
    )
}

impl Subject for Sssd {
    fn name(&self) -> &'static str {
        if self.enumerate { "SSSD (enumerate)" } else { "SSSD" }
    }

    fn run(&self, argv: &[OsString], guard: Duration) -> Result<Option<Output>> {
        self.ns.run(argv, guard)
    }

    fn pid(&self) -> u32 {
        self.ns.process.pid()
    }

    /// The domain's ldb cache plus the memory-mapped caches the NSS client reads.
    fn cache_bytes(&self) -> Option<u64> {
        let lib = self.dir.join("lib-sss");
        let size = |p: &Path| fs::metadata(p).map(|m| allocated(&m)).unwrap_or(0);
        let files = ["db/cache_bench.ldb", "mc/passwd", "mc/group", "mc/initgroups"];
        Some(files.iter().map(|f| size(&lib.join(f))).sum())
    }

    /// sssd(8): SIGUSR2 makes SSSD go online at once rather than at its next retry (60 s and
    /// more after an outage); without it the outage part would wait a minute or two.
    fn directory_back(&mut self) -> Result<()> {
        self.ns.process.signal(libc::SIGUSR2)
    }
}
