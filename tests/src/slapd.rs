//! A throwaway OpenLDAP server on loopback, loaded with [`crate::fixture`] and configured to
//! refuse every operation without TLS ("confidentiality required"), so a client that silently
//! falls back to plaintext fails.
//!
//! [`Slapd::start_plaintext`] starts the opposite, for the checks that must recognise a badly
//! configured server: no TLS configured at all (StartTLS refused, no LDAPS listener), simple
//! binds evaluated in clear; same fixture, same ACLs.
//!
//! Outages for the offline tests: [`Slapd::stop`] then [`Slapd::start_again`] (same ports, same
//! database: the agent's URI stays valid), and [`Slapd::freeze`] / [`Slapd::thaw`] (SIGSTOP:
//! TCP connections are still accepted by the kernel, nothing answers). A frozen slapd is thawed
//! on drop before it is stopped.
//!
//! Replication (a syncprov provider and a syncrepl consumer of it) is in [`crate::replica`]; it
//! starts its servers through [`Slapd::launch`] with a [`Layout`] of its own.
//!
//! [`Slapd::start_in`] (and [`Slapd::start_provider_in`]) run slapd inside the network and mount
//! namespaces of a [`crate::dns::PrivateDns`], on that namespace's 127.0.0.1, with a
//! certificate that also names the DNS names the test gives it; the ldap-utils helpers then run
//! there too.

use std::fs::{self, OpenOptions};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

use crate::TestPki;
use crate::dns::NetNamespace;
use crate::fixture::{self, ADMIN_DN, BASE_DN, DEFAULT_POLICY_DN, READER_DN, Schema};
use crate::process::{HANG_GUARD, Output, Supervised, poll_until, run_bounded};
use crate::tempdir::{self, TempDir, random_hex, write_file_mode};

const SCHEMA_DIR: &str = "/etc/ldap/schema";
/// Included in this order; `nis` may be replaced by [`write_nis_schema`]'s copy.
const SCHEMAS: [&str; 4] = ["core", "cosine", "nis", "inetorgperson"];
const START_ATTEMPTS: usize = 5;
const READY_LIMIT: Duration = Duration::from_secs(15);

/// What slapd asks of its clients' transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Security {
    /// TLS configured, StartTLS and LDAPS offered, and `security tls=1`: nothing but the
    /// StartTLS request itself is served in clear.
    TlsRequired,
    /// No TLS directive at all: one ldap:// listener, StartTLS refused, binds taken in clear.
    PlaintextOnly,
}

/// A running slapd. Dropping it thaws it if frozen, stops it by PID, then removes its directory.
#[derive(Debug)]
pub struct Slapd {
    // Declared before `dir`: the process stops before its files go away.
    process: Supervised,
    /// SIGSTOPped by [`Slapd::freeze`] and not yet thawed.
    frozen: bool,
    security: Security,
    pki: TestPki,
    /// Where slapd and the ldap-utils helpers run: `None` for the host's network namespace.
    net: Option<NetNamespace>,
    port: u16,
    /// `None` for a plaintext slapd: it has no LDAPS listener.
    ldaps_port: Option<u16>,
    log: PathBuf,
    bind_secret: PathBuf,
    admin_secret: PathBuf,
    dir: TempDir,
}

impl Slapd {
    /// Generates certificates, loads the fixture with `slapadd`, starts slapd on two free
    /// loopback ports (StartTLS and LDAPS) and waits until the reader can bind over StartTLS.
    pub fn start() -> Result<Self> {
        Slapd::launch(Layout::fixture(Security::TlsRequired, ""))
    }

    /// Like [`Slapd::start`], with the fixture in RFC 2307bis shape ([`Schema::Rfc2307bis`]):
    /// `posixGroup` auxiliary to `groupOfNames`, members as DNs, and the nested groups.
    pub fn start_rfc2307bis() -> Result<Self> {
        let mut layout = Layout::fixture(Security::TlsRequired, "");
        layout.seed = Seed::Fixture(Schema::Rfc2307bis);
        Slapd::launch(layout)
    }

    /// Like [`Slapd::start`], with `global_lines` (slapd.conf directives such as
    /// `sizelimit size.soft=5 size.hard=5`) written after the harness's own global directives,
    /// before the database section, so they override them (a server answering errors).
    pub fn start_with_global_lines(global_lines: &[&str]) -> Result<Self> {
        let mut extra: String = global_lines.iter().map(|l| format!("{l}\n")).collect();
        if !extra.is_empty() {
            extra.insert_str(0, "# Added by the test.\n");
        }
        Slapd::launch(Layout::fixture(Security::TlsRequired, &extra))
    }

    /// A slapd with no TLS configured at all and without `security tls=1`: one loopback port,
    /// ldap:// only ([`Slapd::uri_ldap`]); StartTLS is refused and a simple bind in clear is
    /// evaluated. Same fixture, ACLs and password policy as [`Slapd::start`]; the run's CA is
    /// still generated (an agent config needs a `ca_file`) but slapd never uses it. Waits
    /// until the reader can bind in clear. The `-ZZ` helpers ([`Slapd::search_as_reader`],
    /// [`Slapd::whoami_as`], the admin changes) cannot work against it.
    pub fn start_plaintext() -> Result<Self> {
        Slapd::launch(Layout::fixture(Security::PlaintextOnly, ""))
    }

    /// Like [`Slapd::start`], inside `net` (a [`crate::dns::PrivateDns`]'s namespaces) on its
    /// 127.0.0.1, with `dns_names` in the server certificate too (names the namespace's DNS
    /// resolves to 127.0.0.1). The ldap-utils helpers run inside `net` as well.
    pub fn start_in(net: NetNamespace, dns_names: &[&str]) -> Result<Self> {
        let mut layout = Layout::fixture(Security::TlsRequired, "");
        layout.net = Some(net);
        layout.dns_names = dns_names.iter().map(|n| (*n).to_owned()).collect();
        Slapd::launch(layout)
    }

    /// Like [`Slapd::start`], with the entries of `extra_ldif` (under the fixture's base, none of
    /// its names) added by `slapadd -q` while slapd is stopped between its first start and a
    /// restart on the same ports: the bulk directories of `tests/compare.sh` (100,000 users
    /// load in seconds this way, minutes through ldapadd).
    pub fn start_with_extra_ldif(extra_ldif: &str) -> Result<Self> {
        let mut slapd = Slapd::start()?;
        slapd.stop()?;
        let file = slapd.dir.join("extra.ldif");
        fs::write(&file, extra_ldif).context("writing extra.ldif")?;
        let conf = slapd.dir.join("slapd.conf");
        // A hang guard sized for a large load, not a latency budget.
        let guard = Duration::from_secs(900);
        let load = run_bounded(
            Command::new("slapadd").arg("-q").arg("-f").arg(&conf).arg("-l").arg(&file),
            "slapadd extra.ldif",
            guard,
        )?;
        ensure!(load.status.success(), "loading the extra LDIF failed:\n{load}");
        slapd.start_again()?;
        Ok(slapd)
    }

    /// Starts a slapd as `layout` says. Waits until the reader can bind, after `layout.ready`
    /// (for a consumer: until it holds the provider's data, the reader's entry included).
    pub(crate) fn launch(layout: Layout<'_>) -> Result<Self> {
        let Layout { security, utf8_gecos, extra_global, database_lines, seed, net, dns_names } = layout;
        let dir = TempDir::new("slapd")?;
        let bind_secret = dir.join("bind.secret");
        let admin_secret = dir.join("admin.secret");
        // `ready`: None when the fixture is loaded here, before the start.
        let schema = match seed {
            Seed::Fixture(schema) => schema,
            Seed::Empty { .. } => Schema::Rfc2307,
        };
        let (pki, reader_password, admin_password, ready) = match seed {
            Seed::Fixture(_) => {
                let names: Vec<&str> = dns_names.iter().map(String::as_str).collect();
                (TestPki::generate_for(dir.path(), &names)?, random_hex(12)?, random_hex(12)?, None)
            }
            Seed::Empty { pki, reader_password, admin_password, ready } => {
                (pki(dir.path())?, reader_password, admin_password, Some(ready))
            }
        };
        // No trailing newline: ldap tools' `-y` and the agent read the file as the password.
        write_file_mode(&bind_secret, reader_password.as_bytes(), 0o600)?;
        write_file_mode(&admin_secret, admin_password.as_bytes(), 0o600)?;

        let conf = dir.join("slapd.conf");
        fs::create_dir(dir.join("db")).context("creating the database directory")?;
        let database_lines = database_lines.replace("@DIR@", &dir.path().to_string_lossy());
        let auxiliary_posix_group = schema == Schema::Rfc2307bis;
        let nis = if utf8_gecos || auxiliary_posix_group {
            write_nis_schema(dir.path(), utf8_gecos, auxiliary_posix_group)?
        } else {
            system_schema("nis")
        };
        let text = slapd_conf(dir.path(), &pki, &admin_password, security, &nis, &extra_global, &database_lines);
        fs::write(&conf, text).context("writing slapd.conf")?;
        if ready.is_none() {
            let ldif = dir.join("fixture.ldif");
            fs::write(&ldif, fixture::ldif_in(schema, &reader_password)).context("writing fixture.ldif")?;
            // -q: no consistency checks, much faster; the LDIF is generated and known good.
            let load = run_bounded(
                Command::new("slapadd").arg("-q").arg("-f").arg(&conf).arg("-l").arg(&ldif),
                "slapadd",
                HANG_GUARD,
            )?;
            ensure!(load.status.success(), "loading the fixture failed:\n{load}");
        }

        let log = dir.join("slapd.log");
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            let (port, ldaps_port) = free_port_pair()?;
            let ldaps_port = (security == Security::TlsRequired).then_some(ldaps_port);
            // A fresh log per attempt: only this attempt's failure decides whether to retry.
            fs::File::create(&log).context("creating slapd.log")?;
            if let Some(process) = spawn_listening(net, &conf, &log, port, ldaps_port)? {
                let slapd = Slapd {
                    process,
                    frozen: false,
                    security,
                    pki,
                    net,
                    port,
                    ldaps_port,
                    log,
                    bind_secret,
                    admin_secret,
                    dir,
                };
                if let Some(ready) = ready {
                    ready(&slapd)?;
                }
                slapd.ensure_reader_binds("slapd is up")?;
                return Ok(slapd);
            }
            last_log = fs::read_to_string(&log).unwrap_or_default();
            // Another process may have taken a port between our probe and slapd's bind.
            if !last_log.contains("bind(") && !last_log.contains("Address already in use") {
                break;
            }
        }
        bail!("slapd did not start; its log:\n{last_log}")
    }

    /// `ldap://127.0.0.1:PORT` (StartTLS).
    pub fn uri_starttls(&self) -> String {
        self.uri_ldap()
    }

    /// `ldap://127.0.0.1:PORT`: the same URI as [`Slapd::uri_starttls`], named for a plaintext
    /// slapd, where StartTLS is refused.
    pub fn uri_ldap(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// The StartTLS listener's address (for [`crate::RecordingProxy`]).
    pub fn starttls_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// `ldaps://127.0.0.1:PORT` (TLS from the first byte). Panics for a plaintext slapd,
    /// which has no LDAPS listener: a URI nothing listens on would fail for the wrong reason.
    pub fn uri_ldaps(&self) -> String {
        let port = self.ldaps_port.expect("a plaintext slapd (Slapd::start_plaintext) has no LDAPS listener");
        format!("ldaps://127.0.0.1:{port}")
    }

    pub fn pki(&self) -> &TestPki {
        &self.pki
    }

    /// The namespaces slapd runs in ([`Slapd::start_in`]); `None`: the host's.
    pub fn net(&self) -> Option<NetNamespace> {
        self.net
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

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Everything slapd logged so far (`-d stats`: connections, binds, `SRCH ... filter="..."`).
    pub fn log(&self) -> String {
        tempdir::log_since(&self.log, 0)
    }

    /// The log's current length, to read only what comes after with [`Slapd::log_since`].
    pub fn log_mark(&self) -> usize {
        tempdir::log_mark(&self.log)
    }

    pub fn log_since(&self, mark: usize) -> String {
        tempdir::log_since(&self.log, mark)
    }

    /// The filters of every search slapd logged, in order.
    pub fn search_filters(log: &str) -> Vec<String> {
        log.lines()
            .filter(|l| l.contains(" SRCH base="))
            .filter_map(|l| l.split_once(" filter=\"").map(|(_, rest)| rest.trim_end_matches('"').to_owned()))
            .collect()
    }

    /// Stops slapd by its PID (SIGTERM, bounded wait, SIGKILL). The directory stays until drop.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        self.frozen = false;
        self.process.stop()
    }

    /// Kills slapd with SIGKILL (a crash: no shutdown, connections reset by the kernel) and
    /// reaps it. [`Slapd::start_again`] brings it back. Fails if it had already exited.
    pub fn kill(&mut self) -> Result<ExitStatus> {
        self.frozen = false;
        self.process.kill()
    }

    /// Starts slapd again after [`Slapd::stop`] or [`Slapd::kill`]: the same config, database (back-mdb keeps it in
    /// the scratch directory), certificates and both ports, so URIs handed out before stay
    /// valid. Its log goes on in the same file, so marks taken before stay valid too. Waits
    /// until the reader can bind again (over StartTLS unless plaintext).
    pub fn start_again(&mut self) -> Result<()> {
        if self.process.try_exit_status()?.is_none() {
            bail!("slapd (pid {}) is still running: stop it first", self.process.pid());
        }
        let conf = self.dir.join("slapd.conf");
        let mut last_log = String::new();
        for attempt in 0..START_ATTEMPTS {
            let mark = self.log_mark();
            if let Some(process) = spawn_listening(self.net, &conf, &self.log, self.port, self.ldaps_port)? {
                self.process = process;
                self.frozen = false;
                self.ensure_reader_binds("slapd is back")?;
                return Ok(());
            }
            last_log = self.log_since(mark);
            // Our own ports: nothing else should hold them, but a client's connection to the old
            // process may still be closing. Try again shortly, a bounded number of times.
            if !last_log.contains("Address already in use") || attempt + 1 == START_ATTEMPTS {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        bail!("slapd did not start again on port {} (LDAPS {:?}); its log:\n{last_log}", self.port, self.ldaps_port)
    }

    /// The rootdn's password file (mode 0600, no trailing newline).
    pub fn admin_secret(&self) -> &Path {
        &self.admin_secret
    }

    /// Fails unless the reader can bind: over StartTLS, or in clear on a plaintext slapd.
    fn ensure_reader_binds(&self, state: &str) -> Result<()> {
        let starttls = self.security == Security::TlsRequired;
        let who = self.whoami_as_reader(&self.uri_ldap(), starttls)?;
        let how = if starttls { "over StartTLS" } else { "in clear" };
        ensure!(who.status.success(), "{state} but the reader cannot bind {how}:\n{who}\n{}", self.log());
        Ok(())
    }

    /// Freezes slapd (SIGSTOP) and returns once every one of its threads is stopped: the kernel
    /// still completes TCP handshakes on its ports, but nothing answers, StartTLS included: a
    /// hung directory. Undone by [`Slapd::thaw`], and on drop.
    pub fn freeze(&mut self) -> Result<()> {
        self.frozen = true;
        self.process.signal(libc::SIGSTOP)?;
        let pid = self.process.pid();
        // Signals are delivered asynchronously: wait (bounded) until the stop has taken effect.
        poll_until("slapd to stop on SIGSTOP", READY_LIMIT, Duration::from_millis(1), || {
            Ok(thread_states(pid).is_some_and(|s| !s.is_empty() && s.iter().all(|&c| c == 'T')).then_some(()))
        })
    }

    /// Lets a frozen slapd run again (SIGCONT) and returns once it is no longer stopped; it
    /// then answers whatever queued up meanwhile.
    pub fn thaw(&mut self) -> Result<()> {
        self.process.signal(libc::SIGCONT)?;
        let pid = self.process.pid();
        poll_until("slapd to run on SIGCONT", READY_LIMIT, Duration::from_millis(1), || {
            Ok(thread_states(pid).is_some_and(|s| !s.is_empty() && s.iter().all(|&c| c != 'T')).then_some(()))
        })?;
        self.frozen = false;
        Ok(())
    }

    pub fn is_frozen(&self) -> bool {
        self.frozen
    }

    /// Applies `ldif` (changetype records) to the database of a STOPPED slapd with
    /// `slapmodify`: a change made in the directory while no client can reach it, which the
    /// next [`Slapd::start_again`] serves.
    pub fn modify_while_stopped(&mut self, ldif: &str) -> Result<Output> {
        if self.process.try_exit_status()?.is_none() {
            bail!("slapd (pid {}) is running: stop it before changing its database offline", self.process.pid());
        }
        let file = self.dir.join(format!("offline-change-{}.ldif", random_hex(4)?));
        fs::write(&file, ldif).context("writing the change LDIF")?;
        let conf = self.dir.join("slapd.conf");
        let out = run_bounded(
            Command::new("slapmodify").arg("-f").arg(&conf).arg("-l").arg(&file),
            "slapmodify",
            HANG_GUARD,
        )?;
        ensure!(out.status.success(), "{out}");
        Ok(out)
    }

    /// An ldap-utils command that trusts this run's CA and demands a valid certificate (run in
    /// slapd's namespaces, if it has its own).
    pub fn ldap_tool(&self, program: &str) -> Command {
        let mut cmd = command_in(self.net, program);
        cmd.env("LDAPTLS_CACERT", &self.pki.ca_pem).env("LDAPTLS_REQCERT", "demand");
        cmd
    }

    /// `ldapwhoami` as the reader against `uri`, with `-ZZ` (StartTLS required) when `starttls`.
    pub fn whoami_as_reader(&self, uri: &str, starttls: bool) -> Result<Output> {
        let mut cmd = self.ldap_tool("ldapwhoami");
        cmd.args(["-x", "-H", uri, "-D", READER_DN, "-y"]).arg(&self.bind_secret);
        if starttls {
            cmd.arg("-ZZ");
        }
        run_bounded(&mut cmd, &format!("ldapwhoami {uri}{}", if starttls { " -ZZ" } else { "" }), HANG_GUARD)
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

    /// `ldapwhoami -ZZ` bound as `dn` with `password` (passed in a 0600 file, not on the
    /// command line). Exits 0 and prints `dn:DN` when the bind succeeds; 49 for bad credentials.
    pub fn whoami_as(&self, dn: &str, password: &str) -> Result<Output> {
        let secret = self.secret_file(password)?;
        let mut cmd = self.ldap_tool("ldapwhoami");
        cmd.args(["-x", "-ZZ", "-H", &self.uri_starttls(), "-D", dn, "-y"]).arg(&secret);
        let out = run_bounded(&mut cmd, &format!("ldapwhoami -ZZ -D {dn}"), HANG_GUARD);
        let _ = fs::remove_file(&secret);
        out
    }

    /// `ldappasswd -ZZ` (Password Modify, RFC 3062) bound as `dn` with `old`, setting `new`;
    /// both passwords travel in 0600 files. slapd's refusal ("Constraint violation",
    /// "Password fails quality checking policy") is in the output.
    pub fn passwd_as(&self, dn: &str, old: &str, new: &str) -> Result<Output> {
        let (old_file, new_file) = (self.secret_file(old)?, self.secret_file(new)?);
        let mut cmd = self.ldap_tool("ldappasswd");
        cmd.args(["-x", "-ZZ", "-H", &self.uri_starttls(), "-D", dn, "-y"])
            .arg(&old_file)
            .arg("-t")
            .arg(&old_file)
            .arg("-T")
            .arg(&new_file);
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

    /// How many simple binds as `dn` slapd logged in `log` (successful or not): slapd logs
    /// `BIND dn="DN" method=128` for every attempt, before checking anything.
    pub fn bind_attempts(log: &str, dn: &str) -> usize {
        let needle = format!(" BIND dn=\"{dn}\" method=128");
        log.lines().filter(|l| l.contains(&needle)).count()
    }

    /// `ldapsearch` as the rootdn over StartTLS (sees `userPassword`), LDIF without wrapping.
    pub fn search_as_admin(&self, filter: &str, attrs: &[&str]) -> Result<Output> {
        let mut cmd = self.ldap_tool("ldapsearch");
        cmd.args(["-x", "-ZZ", "-LLL", "-o", "ldif-wrap=no", "-H", &self.uri_starttls(), "-D", ADMIN_DN, "-y"])
            .arg(&self.admin_secret)
            .args(["-b", BASE_DN, filter])
            .args(attrs);
        run_bounded(&mut cmd, &format!("ldapsearch (admin) {filter}"), HANG_GUARD)
    }

    /// Applies `ldif` with `ldapmodify` as the rootdn over StartTLS; fails unless it succeeds.
    pub fn modify_as_admin(&self, ldif: &str) -> Result<Output> {
        self.admin_change("ldapmodify", ldif)
    }

    /// Adds the entries in `ldif` with `ldapadd` as the rootdn over StartTLS.
    pub fn add_as_admin(&self, ldif: &str) -> Result<Output> {
        self.admin_change("ldapadd", ldif)
    }

    fn admin_change(&self, program: &str, ldif: &str) -> Result<Output> {
        let file = self.dir.join(format!("change-{}.ldif", random_hex(4)?));
        fs::write(&file, ldif).context("writing the change LDIF")?;
        let mut cmd = self.ldap_tool(program);
        cmd.args(["-x", "-ZZ", "-H", &self.uri_starttls(), "-D", ADMIN_DN, "-y"])
            .arg(&self.admin_secret)
            .arg("-f")
            .arg(&file);
        let out = run_bounded(&mut cmd, program, HANG_GUARD)?;
        ensure!(out.status.success(), "{out}");
        Ok(out)
    }
}

/// What [`Slapd::launch`] starts: the transport it demands, extra directives, and how its
/// database is filled.
pub(crate) struct Layout<'a> {
    pub security: Security,
    /// Serve `gecos` as a UTF-8 Directory String rather than nis.schema's IA5 (ASCII) string:
    /// see [`write_nis_schema`].
    pub utf8_gecos: bool,
    /// Global directives, after the harness's own (`moduleload syncprov`, limits).
    pub extra_global: String,
    /// Database directives, after `index` and before the ppolicy overlay and the ACLs
    /// (`overlay syncprov`, `syncrepl ...`); `@DIR@` stands for the slapd's scratch directory,
    /// which exists only once the launch has begun.
    pub database_lines: String,
    pub seed: Seed<'a>,
    /// The namespaces slapd runs in; `None`: the host's.
    pub net: Option<NetNamespace>,
    /// DNS names the server certificate names besides 127.0.0.1 and localhost (fixture seeds).
    pub dns_names: Vec<String>,
}

impl Layout<'_> {
    /// The fixture loaded with `slapadd`, nothing else.
    fn fixture(security: Security, extra_global: &str) -> Layout<'static> {
        Layout {
            security,
            utf8_gecos: false,
            extra_global: extra_global.into(),
            database_lines: String::new(),
            seed: Seed::Fixture(Schema::Rfc2307),
            net: None,
            dns_names: Vec::new(),
        }
    }
}

/// Makes a slapd's certificates in its scratch directory.
pub(crate) type MakePki<'a> = &'a dyn Fn(&Path) -> Result<TestPki>;
/// Waits until a just-started slapd is ready for the reader's bind check.
pub(crate) type Ready<'a> = &'a dyn Fn(&Slapd) -> Result<()>;

/// How a new slapd's database gets its entries.
pub(crate) enum Seed<'a> {
    /// Fresh passwords and certificates, the fixture in this shape loaded with `slapadd`
    /// before the start.
    Fixture(Schema),
    /// Started empty (something else fills it: syncrepl) with these certificates and passwords;
    /// `ready` decides when it is filled.
    Empty { pki: MakePki<'a>, reader_password: String, admin_password: String, ready: Ready<'a> },
}

/// `/etc/ldap/schema/NAME.schema`.
fn system_schema(name: &str) -> PathBuf {
    Path::new(SCHEMA_DIR).join(format!("{name}.schema"))
}

/// nis.schema's `gecos`, and the UTF-8 Directory String syntax that replaces its IA5 one.
const IA5_GECOS: &str = "EQUALITY caseIgnoreIA5Match\n\tSUBSTR caseIgnoreIA5SubstringsMatch\n\tSYNTAX 1.3.6.1.4.1.1466.115.121.1.26 SINGLE-VALUE )";
const UTF8_GECOS: &str = "EQUALITY caseIgnoreMatch\n\tSUBSTR caseIgnoreSubstringsMatch\n\tSYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )";
/// nis.schema's `posixGroup`, structural, and RFC 2307bis's, auxiliary (to `groupOfNames`).
const STRUCTURAL_POSIX_GROUP: &str =
    "NAME 'posixGroup'\n\tDESC 'Abstraction of a group of accounts'\n\tSUP top STRUCTURAL";
const AUXILIARY_POSIX_GROUP: &str =
    "NAME 'posixGroup'\n\tDESC 'Abstraction of a group of accounts'\n\tSUP top AUXILIARY";

/// Writes `dir/nis.schema`: Debian's, changed as asked.
///
/// - `utf8_gecos`: `gecos` a UTF-8 Directory String. The fixture's [`fixture::JOSE`] has a
///   non-ASCII gecos, which `slapadd -q` loads unchecked into the provider; a syncrepl
///   consumer checks every replicated entry against its schema and, with nis.schema's IA5
///   `gecos`, refuses that one ("mods check (gecos: value #0 invalid per syntax)") and
///   retries the whole refresh for ever. Many sites widen `gecos` the same way.
/// - `auxiliary_posix_group`: `posixGroup` auxiliary, as RFC 2307bis defines it, so a group
///   is a `groupOfNames` (members by DN) with a gid. Debian ships no rfc2307bis.schema; this
///   is the one change to nis.schema that matters to groups.
fn write_nis_schema(dir: &Path, utf8_gecos: bool, auxiliary_posix_group: bool) -> Result<PathBuf> {
    let system = system_schema("nis");
    let mut text = fs::read_to_string(&system).with_context(|| format!("reading {}", system.display()))?;
    for (wanted, from, to) in
        [(utf8_gecos, IA5_GECOS, UTF8_GECOS), (auxiliary_posix_group, STRUCTURAL_POSIX_GROUP, AUXILIARY_POSIX_GROUP)]
    {
        if wanted {
            ensure!(text.matches(from).count() == 1, "{} does not define {from:?} as expected", system.display());
            text = text.replace(from, to);
        }
    }
    let path = dir.join("nis.schema");
    fs::write(&path, text).context("writing nis.schema")?;
    Ok(path)
}

fn slapd_conf(
    dir: &Path,
    pki: &TestPki,
    admin_password: &str,
    security: Security,
    nis_schema: &Path,
    extra_global: &str,
    database_lines: &str,
) -> String {
    let q = |p: &Path| format!("\"{}\"", p.display());
    let tls = match security {
        Security::TlsRequired => format!(
            "TLSCACertificateFile {ca}
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}
# Any operation (the StartTLS request aside) without TLS gets \"confidentiality required\".
security tls=1
",
            ca = q(&pki.ca_pem),
            cert = q(&pki.server_cert_pem),
            key = q(&pki.server_key_pem),
        ),
        Security::PlaintextOnly => {
            "# No TLS* directive and no `security`: StartTLS refused, binds taken in clear.\n".into()
        }
    };
    let includes: String = SCHEMAS
        .iter()
        .map(|&s| if s == "nis" { nis_schema.to_path_buf() } else { system_schema(s) })
        .map(|path| format!("include {}\n", q(&path)))
        .collect();
    format!(
        "{includes}\
pidfile {pid}
argsfile {args}
modulepath /usr/lib/ldap
moduleload back_mdb
# Password policy (lockout, quality); in OpenLDAP 2.5 the overlay carries its own schema.
moduleload ppolicy
{tls}sizelimit unlimited
{extra_global}
database mdb
suffix \"{BASE_DN}\"
rootdn \"{ADMIN_DN}\"
rootpw {admin_password}
directory {db}
maxsize 268435456
dbnosync
index objectClass,uid,uidNumber,gidNumber,memberUid,member,cn eq
{database_lines}overlay ppolicy
ppolicy_default \"{DEFAULT_POLICY_DN}\"
# A password set in clear (an LDAP modify) is stored hashed, as Password Modify stores it.
ppolicy_hash_cleartext
# Users bind with their password and change it themselves (Password Modify, RFC 3062);
# nobody reads it.
access to attrs=userPassword
    by anonymous auth
    by self write
    by * none
# Everything else, shadow* and the policy's operational attributes (pwdAccountLockedTime)
# included, is readable by any bound identity: the reader's searches need them.
access to *
    by users read
    by * none
",
        pid = q(&dir.join("slapd.pid")),
        args = q(&dir.join("slapd.args")),
        db = q(&dir.join("db")),
    )
}

impl Drop for Slapd {
    fn drop(&mut self) {
        // Never leave a stopped process behind; `Supervised`'s drop then stops it by PID.
        if self.frozen {
            let _ = self.process.signal(libc::SIGCONT);
        }
    }
}

/// The state letter (`R`, `S`, `T` for stopped, ...) of each thread of `pid`, from
/// `/proc/PID/task/*/stat`; `None` if the process is gone.
fn thread_states(pid: u32) -> Option<Vec<char>> {
    let tasks = fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let states = tasks
        .filter_map(|task| fs::read_to_string(task.ok()?.path().join("stat")).ok())
        .filter_map(|stat| stat.rsplit_once(')')?.1.trim_start().chars().next())
        .collect();
    Some(states)
}

/// `program`, run inside `net` if given.
fn command_in(net: Option<NetNamespace>, program: &str) -> Command {
    match net {
        None => Command::new(program),
        Some(net) => net.command(program),
    }
}

/// Starts slapd on `port` (ldap://) and `ldaps_port` if any, inside `net` if given, its output
/// appended to `log`, and waits until it serves on each. `None` if it exited first (a port
/// taken, say: see its log).
fn spawn_listening(
    net: Option<NetNamespace>,
    conf: &Path,
    log: &Path,
    port: u16,
    ldaps_port: Option<u16>,
) -> Result<Option<Supervised>> {
    let mut urls = format!("ldap://127.0.0.1:{port}/");
    let mut ports = vec![port];
    if let Some(ldaps_port) = ldaps_port {
        urls += &format!(" ldaps://127.0.0.1:{ldaps_port}/");
        ports.push(ldaps_port);
    }
    let mark = fs::metadata(log).map(|m| m.len()).unwrap_or(0);
    let log_file = OpenOptions::new().append(true).create(true).open(log).context("opening slapd.log")?;
    let mut cmd = command_in(net, "slapd");
    cmd.arg("-f").arg(conf).arg("-h").arg(&urls).args(["-d", "stats"]);
    cmd.stdin(Stdio::null()).stdout(log_file.try_clone()?).stderr(log_file);
    let mut process = Supervised::spawn("slapd", &mut cmd)?;
    let listening = wait_listening(net, &mut process, log, mark, &ports)
        .with_context(|| format!("slapd's log:\n{}", fs::read_to_string(log).unwrap_or_default()))?;
    Ok(listening.then_some(process))
}

/// Two distinct ports the kernel just had free on 127.0.0.1.
fn free_port_pair() -> Result<(u16, u16)> {
    let a = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("probing for a free port")?;
    let b = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("probing for a free port")?;
    Ok((a.local_addr()?.port(), b.local_addr()?.port()))
}

/// A port on 127.0.0.1 that nothing listens on (just freed by the kernel).
pub fn closed_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("probing for a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Waits until slapd says it is serving and every port accepts a TCP connection (true), or
/// slapd exits (false). "slapd starting" is logged only after all listeners are bound, so a
/// port some other process took cannot pass for ours; only the log after byte `mark` counts
/// (an earlier run of slapd said it too).
fn wait_listening(
    net: Option<NetNamespace>,
    process: &mut Supervised,
    log: &Path,
    mark: u64,
    ports: &[u16],
) -> Result<bool> {
    poll_until("slapd to listen", READY_LIMIT, Duration::from_millis(10), || {
        if process.try_exit_status()?.is_some() {
            return Ok(Some(false));
        }
        let text = fs::read(log).unwrap_or_default();
        let since = usize::try_from(mark).ok().and_then(|m| text.get(m..)).unwrap_or_default();
        let started = String::from_utf8_lossy(since).contains("slapd starting");
        if !started {
            return Ok(None);
        }
        for &port in ports {
            let connects = match net {
                None => TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok(),
                Some(net) => net.tcp_connects(port)?,
            };
            if !connects {
                return Ok(None);
            }
        }
        Ok(Some(true))
    })
}
