//! Command lines of `lanyardd` and `lanyardctl`, in one place: the binaries parse them, and
//! `lanyardctl generate` renders man pages and shell completions from the same definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config;

/// `lanyardd`.
#[derive(Debug, Parser)]
#[command(name = "lanyardd", version, about = "The Lanyard agent: users, groups and logins from an LDAP directory")]
pub struct LanyarddArgs {
    /// The configuration file.
    #[arg(long, default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
}

/// `lanyardctl`.
#[derive(Debug, Parser)]
#[command(
    name = "lanyardctl",
    version,
    about = "Inspect and operate the Lanyard agent",
    long_about = "Inspect and operate the Lanyard agent (lanyardd): its state, where an answer comes from, \
                  the cache, metrics, and a doctor that walks the troubleshooting checklist.\n\n\
                  Exit status: 0 success; 1 a negative answer (offline, not found, a failed check); \
                  2 the agent or the directory could not be asked."
)]
pub struct CtlArgs {
    /// The agent's socket.
    #[arg(long, global = true, default_value = lanyard_proto::DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// The configuration file (for `status`, `doctor` and `config check`).
    #[arg(long, global = true, default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: CtlCommand,
}

#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// Whether the agent is online, its server, TLS and caches.
    ///
    /// Online or offline and since when, the server in use, its TLS version and certificate,
    /// the last contact, and the caches. Exit 0 online, 1 offline, 2 agent unreachable.
    Status,
    /// A user by name or uid, and where the answer came from.
    ///
    /// Exit 0 found, 1 not found, 2 unavailable.
    User {
        /// A user name or a numeric uid.
        key: String,
    },
    /// A group by name or gid, and where the answer came from.
    ///
    /// Exit 0 found, 1 not found, 2 unavailable.
    Group {
        /// A group name or a numeric gid.
        key: String,
    },
    /// Invalidate or wipe cached answers (root only).
    #[command(subcommand)]
    Cache(CacheCommand),
    /// The agent's metrics in the Prometheus text format.
    Metrics,
    /// Configuration checks.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Asks for USER's password and tries a login through the agent (root only).
    AuthTest {
        /// The user to log in.
        user: String,
    },
    /// Walks the troubleshooting checklist, one line per step.
    ///
    /// Config, DNS, TCP, StartTLS, TLS (chain, host name, expiry), the service bind, a base
    /// search, a sample user, whether the server refuses plaintext binds, nsswitch.conf and
    /// the PAM stack. Exit 1 when a step fails.
    Doctor(DoctorArgs),
    /// Writes man pages or shell completions (for packaging).
    #[command(hide = true, subcommand)]
    Generate(GenerateCommand),
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Marks entries stale: kept for offline use, asked again from the directory next time.
    Invalidate {
        #[command(subcommand)]
        what: Option<InvalidateTarget>,
    },
    /// Wipes every cached answer and offline verifier, in memory and on disk.
    Clear,
}

#[derive(Debug, Subcommand)]
pub enum InvalidateTarget {
    /// One user's entry and group list.
    User { name: String },
    /// One group's entry.
    Group { name: String },
    /// Everything (the default).
    All,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Parses the configuration as lanyardd would and prints "ok" or what is wrong.
    Check {
        /// The file to check (default: --config).
        path: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The name service switch configuration to check.
    #[arg(long, default_value = "/etc/nsswitch.conf")]
    pub nsswitch: PathBuf,
    /// The PAM configuration directory to check.
    #[arg(long, default_value = "/etc/pam.d")]
    pub pam_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// lanyardd.8 and lanyardctl.8 into DIR.
    Man { dir: PathBuf },
    /// Completion scripts for SHELL into DIR.
    Completions { shell: Shell, dir: PathBuf },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}
