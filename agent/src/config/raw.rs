//! The config file exactly as written: serde types that refuse unknown keys. [`super::Config`]
//! is built from these once, at start-up.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub socket: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub log_level: Option<String>,
    pub directory: RawDirectory,
    #[serde(default)]
    pub cache: RawCache,
    #[serde(default)]
    pub offline: RawOffline,
    #[serde(default)]
    pub pam: RawPam,
    #[serde(default)]
    pub metrics: RawMetrics,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDirectory {
    /// Servers in order; or, instead, `domain`.
    pub uris: Option<Vec<String>>,
    /// The servers are the targets of this domain's `_ldap._tcp` (`_ldaps._tcp`) SRV records.
    pub domain: Option<String>,
    pub base: String,
    #[serde(default)]
    pub tls: RawTls,
    pub ca_file: Option<PathBuf>,
    pub bind_dn: Option<String>,
    pub bind_password_file: Option<PathBuf>,
    pub schema: Option<String>,
    pub timeout: Option<String>,
    /// How long a server that failed is tried only after the others.
    pub failback: Option<String>,
    /// Persistent connections bound as the service account.
    pub pool_size: Option<usize>,
    /// Entries per page for enumeration (RFC 2696).
    pub page_size: Option<u32>,
    #[serde(default)]
    pub users: RawUserMap,
    #[serde(default)]
    pub groups: RawGroupMap,
    /// Present: uids and gids derived from `objectSid` (AD without RFC 2307 attributes).
    pub id_mapping: Option<RawIdMapping>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIdMapping {
    pub offset: Option<u32>,
    pub home: Option<String>,
    pub shell: Option<String>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RawTls {
    #[default]
    Starttls,
    Ldaps,
    DangerPlaintext,
}

/// Where users live and which attributes carry each `passwd` field (RFC 2307 by default).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUserMap {
    pub base: Option<String>,
    pub filter: Option<String>,
    pub name: Option<String>,
    pub uid_number: Option<String>,
    pub gid_number: Option<String>,
    pub gecos: Option<String>,
    pub home: Option<String>,
    pub shell: Option<String>,
    /// A second attribute a login name may match (AD: `userPrincipalName`).
    pub login_alias: Option<String>,
}

/// Where groups live and which attributes carry each `group` field (RFC 2307 by default).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroupMap {
    pub base: Option<String>,
    pub filter: Option<String>,
    pub name: Option<String>,
    pub gid_number: Option<String>,
    pub member: Option<String>,
    pub member_dn: Option<String>,
    pub nesting_depth: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCache {
    pub ttl: Option<String>,
    pub negative_ttl: Option<String>,
    pub enumerate: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOffline {
    pub max_age: Option<String>,
    pub max_failures: Option<u32>,
    pub lockout: Option<String>,
    pub probe_interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPam {
    pub allowed_groups: Option<Vec<String>>,
    pub access_filter: Option<String>,
    pub root_may_reset_passwords: Option<bool>,
    pub create_home: Option<bool>,
    pub home_mode: Option<String>,
    pub max_failures: Option<u32>,
    pub failure_window: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// `host:port` of the HTTP listener for scrapers, loopback only; absent: no listener.
    pub listen: Option<String>,
}
