//! nss-pam-ldapd 0.9 (Debian's nslcd, libnss-ldapd, libpam-ldapd): `nslcd -n` (no fork) in its
//! own namespace, with its nslcd.conf bind-mounted over /etc/nslcd.conf and /run/nslcd on the
//! namespace's /run. Settings follow nslcd.conf(5): the connection, and `timelimit` and
//! `bind_timelimit` at Lanyard's 3 s (the default timelimit waits forever on a hung server).
//! nslcd keeps no cache, so it has nothing to answer from while the directory is away.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::fs::chown;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use lanyard_tests::fixture::{BASE_DN, READER_DN};
use lanyard_tests::tempdir::write_file_mode;
use lanyard_tests::{Output, Slapd, TempDir, poll_until};

use crate::subject::{DaemonNs, Subject, nsswitch};

pub struct Nslcd {
    ns: DaemonNs,
    _dir: TempDir,
}

impl Nslcd {
    pub fn start(slapd: &Slapd) -> Result<Self> {
        let dir = TempDir::new("nslcd")?;
        let password = fs::read_to_string(slapd.bind_secret()).context("reading bind.secret")?;
        let conf = dir.join("nslcd.conf");
        // As Debian installs it: root:nslcd 0640 (it holds the bind password).
        write_file_mode(&conf, config(slapd, &password).as_bytes(), 0o640)?;
        chown(&conf, Some(0), Some(nslcd_gid()?)).context("chown nslcd.conf")?;
        let argv: [&OsStr; 2] = ["nslcd".as_ref(), "-n".as_ref()];
        let pam = "auth     required pam_ldap.so\naccount  required pam_ldap.so\n";
        let ns = DaemonNs::spawn(dir.path(), "nslcd", &nsswitch("ldap"), pam, &conf, &argv)?;
        let socket = ns.inside("/run/nslcd/socket");
        let waited = poll_until("nslcd's socket", Duration::from_secs(30), Duration::from_millis(20), || {
            Ok(socket.exists().then_some(()))
        });
        waited.with_context(|| format!("nslcd's log:\n{}", ns.log_text()))?;
        Ok(Nslcd { ns, _dir: dir })
    }
}

fn config(slapd: &Slapd, password: &str) -> String {
    format!(
        "uid nslcd
gid nslcd
uri {uri}/
base {BASE_DN}
binddn {READER_DN}
bindpw {password}
ssl start_tls
tls_reqcert demand
tls_cacertfile {ca}
timelimit 3
bind_timelimit 3
",
        uri = slapd.uri_starttls(),
        ca = slapd.ca_pem().display(),
    )
}

/// The `nslcd` group Debian's package creates (read from /etc/group: no NSS call, no module).
fn nslcd_gid() -> Result<u32> {
    let groups = fs::read_to_string("/etc/group").context("reading /etc/group")?;
    for line in groups.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.first() == Some(&"nslcd") {
            return fields.get(2).and_then(|g| g.parse().ok()).context("the nslcd group's gid");
        }
    }
    bail!("no nslcd group in /etc/group: is Debian's nslcd installed (tests/compare.sh installs it)?")
}

impl Subject for Nslcd {
    fn name(&self) -> &'static str {
        "nslcd"
    }

    fn run(&self, argv: &[OsString], guard: Duration) -> Result<Option<Output>> {
        self.ns.run(argv, guard)
    }

    fn pid(&self) -> u32 {
        self.ns.process.pid()
    }

    fn cache_bytes(&self) -> Option<u64> {
        None
    }
}
