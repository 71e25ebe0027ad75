//! A private DNS for the discovery tests: network and mount namespaces of their own, where
//! Debian's dnsmasq answers on 127.0.0.1:53 with the records a test asks for, and a
//! `resolv.conf` naming it is bound over `/etc/resolv.conf`.
//!
//! A holder process (`unshare -n -m --propagation private`, then `sleep`) keeps the namespaces
//! for the life of a [`PrivateDns`]; dnsmasq, slapds ([`crate::Slapd::start_in`]) and the
//! agent ([`crate::Launch::namespaces_of`]) enter them with `nsenter -t HOLDER -n -m`, which
//! execs and so keeps each one's PID for [`Supervised`]. dnsmasq can be restarted with other
//! records while the others run ([`PrivateDns::serve`]). `getent`, `id` and pamtester need not
//! enter: they reach the agent through its Unix socket, a file.
//!
//! Nothing touches the host: the only mount is that bind, with `mount -n`, in the private mount
//! namespace; dnsmasq reads no config file, no `/etc/hosts` and no `resolv.conf`, writes its
//! PID file and log into the scratch directory, and listens on the namespace's loopback only.

use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

use crate::process::{HANG_GUARD, Supervised, poll_until, run_bounded};
use crate::tempdir::TempDir;

/// The domain the records are served for; dnsmasq answers NXDOMAIN for any other name in it.
pub const DOMAIN: &str = "example.org";
/// A name always served (127.0.0.1): a query for it answered means dnsmasq is up.
const READY_NAME: &str = "ns.example.org";
const READY_LIMIT: Duration = Duration::from_secs(15);
const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Timeouts short enough that a query to a stopped dnsmasq fails within a poll's bound.
const RESOLV_CONF: &str = "nameserver 127.0.0.1\noptions timeout:1 attempts:2\n";

/// Runs in `unshare -n -m --propagation private`: "$1" is the scratch directory, the rest the
/// command (the holder's `sleep`).
const SETUP: &str = r#"
fail() { echo "dns namespace setup failed: $*" >&2; exit 125; }
dir=$1; shift
mount -n --bind "$dir/resolv.conf" /etc/resolv.conf || fail "bind over /etc/resolv.conf"
ip link set lo up || fail "ip link set lo up"
exec "$@"
"#;

/// Network and mount namespaces kept open by a process: entered with `nsenter -t PID -n -m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetNamespace {
    holder: u32,
}

impl NetNamespace {
    /// The process holding the namespaces (for [`crate::Launch::namespaces_of`]).
    pub fn pid(self) -> u32 {
        self.holder
    }

    /// `nsenter -t PID -n -m -- program`: arguments added go to `program`. Paths must be
    /// absolute (entering a mount namespace moves the working directory to its root).
    pub fn command(self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.holder.to_string(), "-n", "-m", "--"]).arg(program);
        cmd
    }

    /// Whether something accepts TCP connections on the namespace's 127.0.0.1:`port`: asked
    /// from a thread that joins the network namespace (per thread, unlike a mount namespace)
    /// and ends right after.
    pub fn tcp_connects(self, port: u16) -> Result<bool> {
        let path = format!("/proc/{}/ns/net", self.holder);
        let probe = std::thread::spawn(move || -> Result<bool> {
            let ns = fs::File::open(&path).with_context(|| format!("opening {path}"))?;
            // SAFETY: `ns` is an open namespace file for the call's duration; setns changes
            // only this thread's network namespace, and the thread ends when the probe returns.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            ensure!(rc == 0, "setns {path}: {}", std::io::Error::last_os_error());
            let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            Ok(TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok())
        });
        probe.join().map_err(|_| anyhow::anyhow!("the namespace probe thread panicked"))?
    }
}

/// One SRV record of `_ldap._tcp.example.org`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    pub target: String,
    pub port: u16,
    pub priority: u16,
    pub weight: u16,
}

impl Srv {
    pub fn new(target: &str, port: u16, priority: u16, weight: u16) -> Srv {
        Srv { target: target.into(), port, priority, weight }
    }
}

/// What dnsmasq serves: SRV records in this order, host names for 127.0.0.1, and the TTL of
/// every answer.
#[derive(Debug, Clone, Default)]
pub struct Zone {
    pub srv: Vec<Srv>,
    pub hosts: Vec<String>,
    pub ttl: u32,
}

impl Zone {
    /// The arguments that make dnsmasq serve this zone.
    fn dnsmasq_args(&self) -> Vec<String> {
        let mut args = vec![format!("--local-ttl={}", self.ttl)];
        for srv in &self.srv {
            let Srv { target, port, priority, weight } = srv;
            args.push(format!("--srv-host=_ldap._tcp.{DOMAIN},{target},{port},{priority},{weight}"));
        }
        for host in self.hosts.iter().map(String::as_str).chain([READY_NAME]) {
            args.push(format!("--host-record={host},127.0.0.1"));
        }
        args
    }
}

/// The namespaces and their DNS server. Dropping it stops dnsmasq, then the holder, by PID.
#[derive(Debug)]
pub struct PrivateDns {
    // Declared before `holder` and `dir`: stopped first.
    dnsmasq: Option<Supervised>,
    holder: Supervised,
    net: NetNamespace,
    log: PathBuf,
    dir: TempDir,
}

impl PrivateDns {
    /// Creates the namespaces; nothing answers DNS until [`PrivateDns::serve`].
    pub fn start() -> Result<PrivateDns> {
        for tool in ["dnsmasq", "ip", "nsenter", "unshare"] {
            let found = std::env::split_paths(SYSTEM_PATH).any(|d| d.join(tool).is_file());
            ensure!(found, "{tool} is missing: run tests/install-deps.sh (dnsmasq-base, iproute2, util-linux)");
        }
        let dir = TempDir::new("dns")?;
        fs::write(dir.join("resolv.conf"), RESOLV_CONF).context("writing resolv.conf")?;
        let setup_log = dir.join("setup.log");
        let errors = fs::File::create(&setup_log).context("creating setup.log")?;
        let mut cmd = Command::new("unshare");
        // `ip` lives in sbin, which a test runner's PATH may lack.
        cmd.env("PATH", SYSTEM_PATH)
            .args(["-n", "-m", "--propagation", "private", "sh", "-c", SETUP, "sh"])
            .arg(dir.path())
            .args(["sleep", "infinity"]);
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(errors);
        // unshare (no --fork) and sh exec: the holder's PID is sleep's once the setup is done.
        let mut holder = Supervised::spawn("unshare (dns namespaces)", &mut cmd)?;
        let pid = holder.pid();
        let ready = poll_until("the dns namespaces", READY_LIMIT, Duration::from_millis(5), || {
            if let Some(status) = holder.try_exit_status()? {
                bail!("the namespace setup exited with {status}: {}", fs::read_to_string(&setup_log)?);
            }
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            Ok((comm.trim() == "sleep").then_some(()))
        });
        ready?;
        let log = dir.join("dnsmasq.log");
        Ok(PrivateDns { dnsmasq: None, holder, net: NetNamespace { holder: pid }, log, dir })
    }

    /// (Re)starts dnsmasq serving `zone` and waits until it answers. The previous dnsmasq, if
    /// any, is stopped first; its log goes on in the same file.
    pub fn serve(&mut self, zone: &Zone) -> Result<()> {
        if let Some(mut old) = self.dnsmasq.take() {
            old.stop()?;
        }
        let pid_file = self.dir.join("dnsmasq.pid");
        let log = OpenOptions::new().append(true).create(true).open(&self.log).context("opening dnsmasq.log")?;
        let mut cmd = self.net.command("dnsmasq");
        // dnsmasq lives in sbin, which a test runner's PATH may lack.
        cmd.env("PATH", SYSTEM_PATH);
        cmd.args(["--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts"])
            .args(["--listen-address=127.0.0.1", "--bind-interfaces", "--port=53", "--user=root"])
            .arg(format!("--pid-file={}", pid_file.display()))
            .arg(format!("--local=/{DOMAIN}/"))
            .args(["--log-queries", "--log-facility=-"])
            .args(zone.dnsmasq_args());
        cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        let mut dnsmasq = Supervised::spawn("dnsmasq", &mut cmd)?;
        let net = self.net;
        let answered = poll_until("dnsmasq to answer", READY_LIMIT, Duration::from_millis(20), || {
            if let Some(status) = dnsmasq.try_exit_status()? {
                bail!("dnsmasq exited with {status}");
            }
            let mut getent = net.command("getent");
            getent.args(["hosts", READY_NAME]);
            let out = run_bounded(&mut getent, &format!("getent hosts {READY_NAME}"), HANG_GUARD)?;
            Ok(out.stdout().starts_with("127.0.0.1 ").then_some(()))
        });
        self.dnsmasq = Some(dnsmasq);
        answered.with_context(|| format!("dnsmasq's log:\n{}", self.log()))
    }

    /// The namespaces, to start servers and the agent in.
    pub fn net(&self) -> NetNamespace {
        self.net
    }

    /// Everything dnsmasq logged (every query, with `--log-queries`), over all its runs.
    pub fn log(&self) -> String {
        fs::read(&self.log).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    }

    /// The holder's PID (the namespaces live while it does).
    pub fn pid(&self) -> u32 {
        self.holder.pid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zone_becomes_srv_and_host_records_with_its_ttl() {
        let zone = Zone {
            srv: vec![Srv::new("ldap2.example.org", 3891, 20, 5), Srv::new("ldap1.example.org", 3890, 10, 0)],
            hosts: vec!["ldap1.example.org".into()],
            ttl: 7,
        };
        assert_eq!(
            zone.dnsmasq_args(),
            [
                "--local-ttl=7",
                "--srv-host=_ldap._tcp.example.org,ldap2.example.org,3891,20,5",
                "--srv-host=_ldap._tcp.example.org,ldap1.example.org,3890,10,0",
                "--host-record=ldap1.example.org,127.0.0.1",
                "--host-record=ns.example.org,127.0.0.1",
            ]
        );
    }
}
