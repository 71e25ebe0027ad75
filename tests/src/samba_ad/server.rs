//! Provisioning, loading and running the DC inside its namespaces.

use std::ffi::OsStr;
use std::fs;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use super::data::{self, DC_FQDN, DC_HOST_NAME, NETBIOS_DOMAIN, READER_DN, REALM};
use super::{READY_LIMIT, SETUP_GUARD, SambaAd, Timings, pki};
use crate::TestPki;
use crate::process::{HANG_GUARD, Output, PidFd, STOP_GRACE, Supervised, poll_until, run_bounded};
use crate::tempdir::{TempDir, random_hex, write_file_mode};

/// Exit code of [`SETUP`] when the namespace itself could not be prepared.
const SETUP_FAILED: i32 = 125;

/// Scratch directories (under `mnt/` in the DC's directory) bound over Samba's system paths, so
/// nothing Samba or its tools write by default lands on the host.
const SYSTEM_DIRS: [(&str, &str); 5] = [
    ("etc-samba", "/etc/samba"),
    ("var-lib-samba", "/var/lib/samba"),
    ("var-cache-samba", "/var/cache/samba"),
    ("var-log-samba", "/var/log/samba"),
    ("run-samba", "/run/samba"),
];

/// Runs in `unshare -m -n --propagation private`: "$1" is the DC's directory, the rest the
/// command. `/run/samba` exists once a Samba package's postinst ran, but not on a machine
/// since rebooted without systemd's tmpfiles; a tmpfs over `/run` then makes room for it without
/// writing to the host's `/run`. `mount -n`: libmount would otherwise record the mounts in the
/// host's `/run/mount/utab`.
const SETUP: &str = r#"
fail() { echo "samba namespace setup failed: $*" >&2; exit 125; }
dir=$1; shift
if [ ! -d /run/samba ]; then
  mount -n -t tmpfs -o mode=0755 lanyard-samba-run /run || fail "tmpfs on /run"
  mkdir /run/samba || fail "mkdir /run/samba"
fi
for pair in etc-samba:/etc/samba var-lib-samba:/var/lib/samba var-cache-samba:/var/cache/samba \
    var-log-samba:/var/log/samba run-samba:/run/samba; do
  mount -n --bind "$dir/mnt/${pair%%:*}" "${pair#*:}" || fail "bind over ${pair#*:}"
done
mount -n --bind "$dir/resolv.conf" /etc/resolv.conf || fail "bind over /etc/resolv.conf"
# libfaketime (the aged user's load) leaves a file per process in /dev/shm: keep them in here.
mount -n -t tmpfs -o mode=1777 lanyard-samba-shm /dev/shm || fail "tmpfs on /dev/shm"
ip link set lo up || fail "ip link set lo up"
exec "$@"
"#;

const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What resolvers inside the namespaces ask: Samba's own DNS server.
const RESOLV_CONF: &str = "nameserver 127.0.0.1\nsearch example.org\n";

/// smb.conf keys the harness sets itself, replacing whatever provision wrote for them.
/// `dns forwarder` is dropped: provision copies the first `nameserver` of `/etc/resolv.conf`,
/// which in these namespaces is Samba itself (a forwarding loop) and on the host an address off
/// this machine, never to be asked. Without one, names outside the domain get SERVFAIL.
const OWN_KEYS: [&str; 12] = [
    "dns forwarder",
    "server services",
    "disable netbios",
    "interfaces",
    "bind interfaces only",
    "tls enabled",
    "tls keyfile",
    "tls certfile",
    "tls cafile",
    "ldap server require strong auth",
    "log level",
    "prefork children",
];

pub(super) fn start() -> Result<SambaAd> {
    for tool in ["samba", "samba-tool", "ldbmodify", "nsenter", "ip"] {
        ensure!(
            on_path(tool),
            "{tool} is missing: run tests/install-deps.sh (samba, samba-ad-dc, ldb-tools, iproute2)"
        );
    }
    let dir = TempDir::new("samba")?;
    for (name, _) in SYSTEM_DIRS {
        fs::create_dir_all(dir.join("mnt").join(name)).with_context(|| format!("creating mnt/{name}"))?;
    }
    fs::write(dir.join("resolv.conf"), RESOLV_CONF).context("writing resolv.conf")?;
    fs::create_dir(dir.join("pki")).context("creating pki/")?;
    let pki = pki::generate(&dir.join("pki"))?;
    let target = dir.join("target");
    let log_dir = dir.join("log");
    fs::create_dir(&log_dir).context("creating log/")?;

    // Provision checks the administrator's password for complexity before the load relaxes it.
    let admin_password = format!("Admin-{}-7", random_hex(8)?);
    let reader_password = random_hex(12)?;
    let (bind_secret, admin_secret) = (dir.join("bind.secret"), dir.join("admin.secret"));
    // No trailing newline: ldap tools' `-y` and the agent read the file as the password.
    write_file_mode(&bind_secret, reader_password.as_bytes(), 0o600)?;
    write_file_mode(&admin_secret, admin_password.as_bytes(), 0o600)?;

    let started = Instant::now();
    provision(dir.path(), &target, &admin_password)?;
    let provision_time = started.elapsed();
    let conf = target.join("etc/smb.conf");
    let provisioned = fs::read_to_string(&conf).context("reading the provisioned smb.conf")?;
    fs::write(&conf, finish_smb_conf(&provisioned, &pki)?).context("writing smb.conf")?;

    let started = Instant::now();
    load(dir.path(), &target, &reader_password)?;
    let load_time = started.elapsed();

    let started = Instant::now();
    let out = fs::File::create(dir.join("samba.out")).context("creating samba.out")?;
    let mut cmd = in_namespaces(dir.path(), &["--pid", "--fork", "--kill-child"], "samba");
    cmd.args(["--foreground", "--no-process-group", "--configfile"]).arg(&conf).arg("--log-basename").arg(&log_dir);
    cmd.stdin(Stdio::null()).stdout(out.try_clone()?).stderr(out);
    // --kill-child: should unshare die, samba gets SIGKILL, and with it its PID namespace.
    let mut process = Supervised::spawn("unshare (samba)", &mut cmd)?;
    let samba = match PidFd::only_child_of(&mut process, READY_LIMIT) {
        Ok(samba) => samba,
        Err(e) => {
            let _ = process.stop();
            return Err(e.context(fs::read_to_string(dir.join("samba.out")).unwrap_or_default()));
        }
    };
    let timings = Timings { provision: provision_time, load: load_time, ready: Duration::ZERO };
    let mut ad = SambaAd { samba, process, pki, bind_secret, admin_secret, log_dir, timings, dir };
    wait_ready(&mut ad)?;
    ad.timings.ready = started.elapsed();
    Ok(ad)
}

/// `unshare [prefix] -m -n --propagation private sh -c SETUP sh DIR program`.
fn in_namespaces(dir: &Path, prefix: &[&str], program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new("unshare");
    // `ip` and `samba` live in sbin, which a test runner's PATH may lack.
    cmd.env("PATH", SYSTEM_PATH)
        .args(prefix)
        .args(["-m", "-n", "--propagation", "private", "sh", "-c", SETUP, "sh"])
        .arg(dir)
        .arg(program);
    cmd
}

/// Runs a one-shot Samba tool in fresh namespaces; fails unless it succeeds.
fn run_in_namespaces(mut cmd: Command, what: &str) -> Result<Output> {
    let out = run_bounded(&mut cmd, what, SETUP_GUARD)?;
    if out.code() == Some(SETUP_FAILED) && out.stderr().contains("samba namespace setup failed") {
        bail!("could not set up the namespaces for {what}:\n{out}");
    }
    ensure!(out.status.success(), "{what} failed:\n{out}");
    Ok(out)
}

fn provision(dir: &Path, target: &Path, admin_password: &str) -> Result<()> {
    let mut cmd = in_namespaces(dir, &[], "samba-tool");
    cmd.args(["domain", "provision", "--server-role=dc", "--use-rfc2307", "--dns-backend=SAMBA_INTERNAL"])
        .arg(format!("--realm={REALM}"))
        .arg(format!("--domain={NETBIOS_DOMAIN}"))
        .arg(format!("--host-name={DC_HOST_NAME}"))
        .arg(format!("--adminpass={admin_password}"))
        .arg(format!("--targetdir={}", target.display()));
    run_in_namespaces(cmd, "samba-tool domain provision")?;
    Ok(())
}

/// Writes the data LDIF and applies it with `ldbmodify` to the stopped DC's `sam.ldb`; then
/// AGED, under a clock moved back so that its `pwdLastSet` is old.
fn load(dir: &Path, target: &Path, reader_password: &str) -> Result<()> {
    let ldbmodify = |file: &Path, env: &[(String, String)]| {
        // The environment (libfaketime's) reaches ldbmodify alone, through env(1) inside the
        // namespaces: given to unshare, its /dev/shm files would land in the host's /dev/shm
        // before the namespace's tmpfs covers it.
        let mut cmd = in_namespaces(dir, &[], "env");
        cmd.args(env.iter().map(|(key, value)| format!("{key}={value}"))).arg("ldbmodify");
        cmd.arg("-H").arg(target.join("private/sam.ldb"));
        cmd.arg(format!("--configfile={}", target.join("etc/smb.conf").display())).arg(file);
        run_in_namespaces(cmd, &format!("ldbmodify {}", file.display()))
    };
    // The LDIF holds the passwords (base64): 0600.
    let main = dir.join("data.ldif");
    write_file_mode(&main, data::ldif(reader_password).as_bytes(), 0o600)?;
    ldbmodify(&main, &[])?;
    let aged = dir.join("aged.ldif");
    write_file_mode(&aged, data::aged_ldif().as_bytes(), 0o600)?;
    let mut shifted = crate::shifted_clock(&format!("-{}d", data::AGED_PASSWORD_SET_DAYS_AGO))?;
    // ldb loads Samba's modules with RTLD_DEEPBIND, which makes them call libc's clock
    // directly, past libfaketime; this variable turns that off.
    shifted.push(("LDB_MODULES_DISABLE_DEEPBIND".into(), "1".into()));
    ldbmodify(&aged, &shifted)?;
    Ok(())
}

/// Provision's smb.conf with the harness's own global settings in place of any it wrote for
/// the same keys. `prefork children = 2` (default 4): two workers per service are plenty for
/// tests and halve the process count.
pub(super) fn finish_smb_conf(provisioned: &str, pki: &TestPki) -> Result<String> {
    let ours = format!(
        "\
\tserver services = ldap cldap kdc dns
\tdisable netbios = yes
\tinterfaces = 127.0.0.1
\tbind interfaces only = yes
\ttls enabled = yes
\ttls keyfile = {key}
\ttls certfile = {cert}
\ttls cafile = {ca}
\tldap server require strong auth = yes
\tlog level = 1 auth_audit:3
\tprefork children = 2
",
        key = pki.server_key_pem.display(),
        cert = pki.server_cert_pem.display(),
        ca = pki.ca_pem.display(),
    );
    let mut out = String::new();
    let mut in_global = false;
    let mut saw_global = false;
    for line in provisioned.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            in_global = trimmed.eq_ignore_ascii_case("[global]");
            out.push_str(line);
            out.push('\n');
            if in_global {
                saw_global = true;
                out.push_str(&ours);
            }
            continue;
        }
        let key = trimmed.split_once('=').map(|(k, _)| k.trim().to_ascii_lowercase());
        if in_global && key.is_some_and(|k| OWN_KEYS.contains(&k.as_str())) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    ensure!(saw_global, "the provisioned smb.conf has no [global] section:\n{provisioned}");
    Ok(out)
}

/// Waits until the reader binds over StartTLS and `dc1.example.org` resolves through Samba's
/// DNS (services start in parallel: LDAP may answer before DNS does).
fn wait_ready(ad: &mut SambaAd) -> Result<()> {
    let mut ldap_ok = false;
    let mut last = String::new();
    let waited = poll_until("samba to answer LDAP and DNS", READY_LIMIT, Duration::from_millis(50), || {
        if let Some(status) = ad.process.try_exit_status()? {
            bail!("samba exited with {status}");
        }
        if !ldap_ok {
            let out = ad.search_as_reader(&format!("(distinguishedName={READER_DN})"), &["dn"])?;
            ldap_ok = out.status.success();
            last = out.to_string();
            if !ldap_ok {
                return Ok(None);
            }
        }
        let mut cmd = ad.command("getent");
        cmd.args(["hosts", DC_FQDN]);
        let out = run_bounded(&mut cmd, &format!("getent hosts {DC_FQDN}"), HANG_GUARD)?;
        last = out.to_string();
        Ok(out.stdout().starts_with("127.0.0.1 ").then_some(()))
    });
    waited.map_err(|e| e.context(format!("last probe: {last}\n--- samba's log ---\n{}", ad.log())))
}

/// SIGTERM through samba's pidfd, then SIGKILL; unshare exits once its child has.
pub(super) fn stop(samba: &PidFd, unshare: &mut Supervised) -> Result<ExitStatus> {
    if let Some(status) = unshare.try_exit_status()? {
        return Ok(status);
    }
    samba.signal(libc::SIGTERM)?;
    if let Some(status) = unshare.wait_exit(STOP_GRACE)? {
        return Ok(status);
    }
    eprintln!("samba (pid {}) ignored SIGTERM for {STOP_GRACE:?}; sending SIGKILL", samba.pid());
    samba.signal(libc::SIGKILL)?;
    if let Some(status) = unshare.wait_exit(STOP_GRACE)? {
        return Ok(status);
    }
    // unshare itself blocks SIGTERM; Supervised::stop ends with SIGKILL, and --kill-child
    // takes samba along.
    unshare.stop()
}

fn on_path(tool: &str) -> bool {
    std::env::split_paths(SYSTEM_PATH).any(|d| d.join(tool).is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smb_conf_keeps_provision_paths_and_replaces_our_keys() {
        let provisioned = "# Global parameters\n[global]\n\tdns forwarder = 10.0.0.53\n\tinterfaces = 10.1.1.1\n\
\tnetbios name = DC1\n\tprivate dir = /x/private\n\n[sysvol]\n\tpath = /x/sysvol\n\tinterfaces = kept\n";
        let pki = TestPki {
            ca_pem: "/p/ca.pem".into(),
            server_cert_pem: "/p/server.pem".into(),
            server_key_pem: "/p/server.key".into(),
            wrong_ca_pem: "/p/wrong-ca.pem".into(),
        };
        let conf = finish_smb_conf(provisioned, &pki).unwrap();
        assert!(!conf.contains("dns forwarder") && !conf.contains("10.1.1.1"), "{conf}");
        for want in [
            "\tnetbios name = DC1\n",
            "\tprivate dir = /x/private\n",
            "\tinterfaces = 127.0.0.1\n",
            "\tserver services = ldap cldap kdc dns\n",
            "\ttls keyfile = /p/server.key\n",
            "\tldap server require strong auth = yes\n",
            // A share's own lines are left alone.
            "[sysvol]\n\tpath = /x/sysvol\n\tinterfaces = kept\n",
        ] {
            assert!(conf.contains(want), "{want:?} missing:\n{conf}");
        }
        assert!(finish_smb_conf("[sysvol]\n", &pki).is_err());
    }
}
