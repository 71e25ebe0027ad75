//! Harness for Lanyard's end-to-end tests: real `slapd`, the real `lanyardd`, and the system's
//! `getent` and `id` loading the built NSS module inside a private mount namespace.
//!
//! Nothing here touches the host's `/etc`, `/run` or `/var/lib`: every file lives in a per-test
//! directory under [`std::env::temp_dir`], servers listen on 127.0.0.1 only, and the NSS module is
//! only ever loaded inside `unshare -m --propagation private`. Every process started here is
//! stopped by its PID when its owner is dropped.
//!
//! | module | what it owns |
//! | --- | --- |
//! | [`process`] | [`Supervised`] children (SIGTERM, bounded wait, SIGKILL), [`run_bounded`], [`poll_until`] |
//! | [`tempdir`] | [`TempDir`], removed on drop; per-run random tokens |
//! | [`debroot`] | [`debroot::OverlayRoot`]: an overlay over `/` in private mount and PID namespaces, for `dpkg -i` and the maintainer scripts |
//! | [`ca`] | [`TestPki`]: a per-run CA, a server certificate for 127.0.0.1/localhost, a wrong CA |
//! | [`fixture`] | the directory's users and groups as constants, and the LDIF made from them |
//! | [`slapd`] | [`Slapd`]: a throwaway OpenLDAP server that refuses anything without TLS (or, from `start_plaintext`, one with no TLS at all); stopped and started again on the same ports, or frozen (SIGSTOP) |
//! | [`replica`] | [`Slapd::start_provider`] (syncprov) and [`Slapd::start_consumer`]: a second slapd replicating it with syncrepl, for failover |
//! | [`dns`] | [`dns::PrivateDns`]: network and mount namespaces where dnsmasq serves SRV and host records on 127.0.0.1:53, for slapds and the agent to run in |
//! | [`agent`] | [`AgentConfig`] and [`Agent`]: `lanyardd` with a written `lanyard.toml`; restarted on the same `cache_dir`, killed, or launched under a umask or a shifted clock ([`Launch`]) |
//! | [`namespace`] | [`Namespace`]: run a command with the test `nsswitch.conf` and the module |
//! | [`pam`] | [`Pam`]: `pamtester` with a test service loading `pam_lanyard.so`, as root or a user |
//! | [`sshd`] | [`Sshd`]: a real OpenSSH server in a namespace, and the `ssh` client with sshpass |
//! | [`proxy`] | [`RecordingProxy`]: a TCP proxy to slapd that records every byte both ways |
//!
//! The binaries under test come from the workspace's target directory ([`lanyardd_path`],
//! [`nss_module_path`], [`pam_module_path`]); build them first with `cargo build --workspace`.

pub mod agent;
pub mod ca;
pub mod debroot;
pub mod dns;
pub mod ds389;
pub mod fixture;
pub mod namespace;
pub mod pam;
pub mod process;
pub mod proxy;
pub mod replica;
pub mod samba_ad;
pub mod slapd;
pub mod sshd;
pub mod tempdir;

use std::path::PathBuf;

pub use agent::{Agent, AgentConfig, Launch, OfflineConfig, PamConfig, shifted_clock};
pub use ca::TestPki;
pub use namespace::Namespace;
pub use pam::{Caller, Pam};
pub use process::{HANG_GUARD, Output, Supervised, poll_until, run_bounded};
pub use proxy::RecordingProxy;
pub use slapd::Slapd;
pub use sshd::Sshd;
pub use tempdir::TempDir;

/// The command that builds everything the end-to-end tests run.
pub const BUILD_COMMAND: &str = "cargo build --workspace";

/// The workspace root (the parent of this crate).
pub fn workspace_dir() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// `$CARGO_TARGET_DIR`, or `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() { dir } else { workspace_dir().join(dir) }
        }
        _ => workspace_dir().join("target"),
    }
}

/// Which build the harness runs: `debug` unless `LANYARD_PROFILE` says otherwise (the
/// benchmark sets `release`).
pub fn profile() -> String {
    std::env::var("LANYARD_PROFILE").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| "debug".into())
}

/// The agent binary of the selected build.
pub fn lanyardd_path() -> PathBuf {
    target_dir().join(profile()).join("lanyardd")
}

/// `lanyardctl` of the selected build.
pub fn lanyardctl_path() -> PathBuf {
    target_dir().join(profile()).join("lanyardctl")
}

/// The NSS module of the selected build, as cargo names it (no SONAME, no `.2`).
pub fn nss_module_path() -> PathBuf {
    target_dir().join(profile()).join("libnss_lanyard.so")
}

/// The PAM module of the selected build, as cargo names it (`libpam_lanyard.so`); the harness
/// installs a copy named `pam_lanyard.so`.
pub fn pam_module_path() -> PathBuf {
    target_dir().join(profile()).join("libpam_lanyard.so")
}

/// Fails with the command that builds `path` when it is missing.
pub fn require_built(path: &std::path::Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        path.is_file(),
        "{} does not exist: build the workspace first with `{BUILD_COMMAND}`",
        path.display()
    );
    Ok(())
}
