//! The agent's settings: read once at start-up from TOML into typed values, so a bad config
//! fails at start, never at the first login. Every error names the file and the key.

mod raw;
mod servers;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lanyard_proto::Secret;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::duration::parse_duration;
use raw::{RawConfig, RawDirectory, RawGroupMap, RawUserMap};
pub use servers::SrvDiscovery;

pub const DEFAULT_PATH: &str = "/etc/lanyard/lanyard.toml";

/// `directory.failback` when the file does not set it.
pub const DEFAULT_FAILBACK: Duration = Duration::from_secs(30);

/// Everything the agent needs to know, checked.
#[derive(Debug)]
pub struct Config {
    pub path: PathBuf,
    pub socket: PathBuf,
    pub cache_dir: PathBuf,
    pub directory: DirectoryConfig,
    pub cache: CacheConfig,
    pub offline: OfflineConfig,
    pub pam: PamConfig,
    /// The level from `log_level` (default `info`); `RUST_LOG` overrides it.
    pub log_level: String,
    pub metrics: MetricsConfig,
}

/// The optional HTTP listener for scrapers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetricsConfig {
    /// A loopback address; `None`: no listener.
    pub listen: Option<std::net::SocketAddr>,
}

#[derive(Debug)]
pub struct DirectoryConfig {
    /// From `uris`, tried in order; empty when `discovery` is set (exactly one of the two is).
    pub servers: Vec<Server>,
    /// From `domain`: the servers come from DNS SRV records, looked up while the agent runs.
    pub discovery: Option<SrvDiscovery>,
    pub base: String,
    pub trust: Trust,
    /// `None`: anonymous (logged as a warning at start).
    pub service_account: Option<ServiceAccount>,
    /// Budget for one directory operation, connecting included.
    pub timeout: Duration,
    /// How long a server that failed goes behind the others in `servers` before it is
    /// preferred again: short to return to the primary soon after it recovers, long to spare
    /// a flapping one.
    pub failback: Duration,
    pub pool_size: usize,
    pub page_size: u32,
    pub schema: Schema,
    pub users: UserMap,
    pub groups: GroupMap,
}

/// One directory server: from `uris`, or named by an SRV record of `domain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// As written in the config, for logs.
    pub uri: String,
    pub host: String,
    pub port: u16,
    pub transport: Transport,
}

/// How the bytes to one server are protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `ldap://` upgraded with the StartTLS extended operation before anything else is sent.
    StartTls,
    /// `ldaps://`: TLS from the first byte.
    Ldaps,
    /// `ldap://` with `tls = "danger-plaintext"`: everything, the bind password included, in clear.
    DangerPlaintext,
}

/// Which certificate authorities may vouch for the directory.
#[derive(Debug)]
pub enum Trust {
    /// From `ca_file`, read at start-up.
    CaFile { path: PathBuf, certificates: Vec<CertificateDer<'static>> },
    /// The system's roots (no `ca_file`).
    System,
}

/// The account the agent binds as for searches.
pub struct ServiceAccount {
    pub dn: String,
    pub password: Secret,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount").field("dn", &self.dn).field("password", &self.password).finish()
    }
}

/// Where users are found and which attribute carries each `passwd` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserMap {
    pub base: String,
    pub filter: String,
    pub name: String,
    pub uid_number: String,
    pub gid_number: String,
    pub gecos: String,
    pub home: String,
    pub shell: String,
    /// A second attribute a login name may match (`userPrincipalName`): `alice@example.org`
    /// finds alice, who is then known by her `name`.
    pub login_alias: Option<String>,
    pub id_mapping: Option<IdMapping>,
}

/// Where groups are found and which attribute carries each `group` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMap {
    pub base: String,
    pub filter: String,
    pub name: String,
    pub gid_number: String,
    /// Members by login name (RFC 2307 `memberUid`), read with every schema.
    pub member: String,
    /// Members by DN (RFC 2307bis `member` or `uniqueMember`): users, or groups whose members
    /// count too. `None` with `schema = "rfc2307"` unless set.
    pub member_dn: Option<String>,
    /// How many levels of groups within groups are followed through `member_dn`; 0: only a
    /// group's own members.
    pub nesting_depth: u32,
    pub id_mapping: Option<IdMapping>,
}

/// Which directory layout `directory.schema` names: it decides the defaults of the maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// posixAccount, posixGroup with `memberUid`.
    Rfc2307,
    /// posixAccount, posixGroup (auxiliary) with `member` DNs, groups within groups.
    Rfc2307bis,
    /// Active Directory: `sAMAccountName`, RFC 2307 attributes or ids mapped from `objectSid`,
    /// groups by `member` DNs and `tokenGroups`, account state from `userAccountControl`.
    Ad,
}

/// uids and gids derived from `objectSid` for a domain without RFC 2307 attributes: the same
/// on every host, since they depend on nothing but the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMapping {
    /// uid = offset + the RID of the user's SID; gid = offset + the group's RID (the primary
    /// group's from `primaryGroupID`).
    pub offset: u32,
    /// `{user}` is replaced by the login name; used when the entry has no home attribute.
    pub home: String,
    /// Used when the entry has no shell attribute.
    pub shell: String,
}

/// `directory.id_mapping.offset` when the file does not set it (SSSD's default range also
/// starts at 200000): above the ids a host gives its local users.
pub const DEFAULT_ID_OFFSET: u32 = 200_000;
/// RIDs are 30 bits (MS-SAMR 3.1.1.1.7, `rIDAvailablePool`): the offset must leave room.
pub const MAX_RID: u32 = (1 << 30) - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    pub ttl: Duration,
    pub negative_ttl: Duration,
    /// Keep every user and group in memory, fetched at start and refreshed within `ttl`: the
    /// NSS module's snapshot then holds the whole directory, so it answers unknown names and
    /// initgroups in-process too.
    pub enumerate: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfflineConfig {
    pub max_age: Duration,
    pub max_failures: u32,
    pub lockout: Duration,
    /// While offline, the longest wait between two attempts to reach the directory.
    pub probe_interval: Duration,
}

/// Who may log in and what a login may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PamConfig {
    /// Empty: no group restriction.
    pub allowed_groups: Vec<String>,
    /// An extra filter the user's entry must match; `{user}`, `{host}` and `{service}` are
    /// replaced by escaped values when it is used.
    pub access_filter: Option<String>,
    pub root_may_reset_passwords: bool,
    pub create_home: bool,
    pub home_mode: u32,
    /// Failed logins per account within `failure_window` before attempts are refused.
    pub max_failures: u32,
    pub failure_window: Duration,
}

/// A config that cannot be used: which file, which key, and why.
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    /// Dotted key (`directory.uris`), or empty when the file as a whole is at fault.
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}: {}: {}", self.file.display(), self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and checks the config at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_owned(),
            key: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        Config::parse(path, &text)
    }

    /// Checks config `text`; `path` is used for messages and nothing else.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let error = |key: &str, message: String| ConfigError { file: path.to_owned(), key: key.to_owned(), message };
        // toml's message quotes the offending line and, for an unknown key, names it.
        let raw: RawConfig = toml::from_str(text).map_err(|e| error("", e.to_string().trim_end().to_owned()))?;
        let duration = |key: &str, value: Option<&String>, default: Duration| match value {
            None => Ok(default),
            Some(text) => parse_duration(text).map_err(|m| error(key, m)),
        };
        let directory = directory_config(&raw.directory, &error, &duration)?;
        let cache = CacheConfig {
            ttl: duration("cache.ttl", raw.cache.ttl.as_ref(), Duration::from_secs(300))?,
            negative_ttl: duration("cache.negative_ttl", raw.cache.negative_ttl.as_ref(), Duration::from_secs(30))?,
            enumerate: raw.cache.enumerate.unwrap_or(false),
        };
        let offline = OfflineConfig {
            max_age: duration("offline.max_age", raw.offline.max_age.as_ref(), Duration::from_secs(14 * 86_400))?,
            max_failures: raw.offline.max_failures.unwrap_or(5),
            lockout: duration("offline.lockout", raw.offline.lockout.as_ref(), Duration::from_secs(300))?,
            probe_interval: duration(
                "offline.probe_interval",
                raw.offline.probe_interval.as_ref(),
                Duration::from_secs(5),
            )?,
        };
        if offline.probe_interval < Duration::from_millis(100) {
            return Err(error("offline.probe_interval", "must be at least 100ms".into()));
        }
        let pam = pam_config(&raw.pam, &error, &duration)?;
        let log_level = raw.log_level.as_deref().map_or("info", str::trim).to_ascii_lowercase();
        // Only levels: a typo must not read as a filter for a target named like it. Finer
        // filters (per target) go in RUST_LOG.
        if !["off", "error", "warn", "info", "debug", "trace"].contains(&log_level.as_str()) {
            return Err(error(
                "log_level",
                format!("{log_level:?} is not one of error, warn, info, debug, trace, off (RUST_LOG takes filters)"),
            ));
        }
        let listen = raw.metrics.listen.as_deref().map(metrics_listen).transpose();
        let metrics = MetricsConfig { listen: listen.map_err(|m| error("metrics.listen", m))? };
        Ok(Config {
            path: path.to_owned(),
            socket: raw.socket.unwrap_or_else(|| lanyard_proto::DEFAULT_SOCKET.into()),
            cache_dir: raw.cache_dir.unwrap_or_else(|| "/var/lib/lanyard".into()),
            directory,
            cache,
            offline,
            pam,
            log_level,
            metrics,
        })
    }
}

/// The metrics listener's address: loopback only, since the metrics say who is offline and how
/// often logins fail, and the listener has no authentication.
fn metrics_listen(text: &str) -> Result<std::net::SocketAddr, String> {
    let address: std::net::SocketAddr =
        text.parse().map_err(|_| format!("{text:?} is not an address like \"127.0.0.1:9775\" or \"[::1]:9775\""))?;
    if !address.ip().is_loopback() {
        return Err(format!(
            "{text:?} is not a loopback address; the metrics listener has no authentication and only listens on \
             127.0.0.1 or ::1 (put a proxy in front of it to serve other hosts)"
        ));
    }
    Ok(address)
}

fn pam_config(raw: &raw::RawPam, error: &ErrorFn, duration: &DurationFn) -> Result<PamConfig, ConfigError> {
    let allowed_groups = raw.allowed_groups.clone().unwrap_or_default();
    if let Some(bad) = allowed_groups.iter().find(|g| !lanyard_proto::name::is_valid_name(g)) {
        return Err(error("pam.allowed_groups", format!("{bad:?} is not a valid group name")));
    }
    let access_filter = match &raw.access_filter {
        None => None,
        Some(filter) => {
            // Check it with harmless stand-ins for the placeholders.
            let sample = filter.replace("{user}", "u").replace("{host}", "h").replace("{service}", "s");
            search_filter(Some(&sample), "").map_err(|m| error("pam.access_filter", m))?;
            Some(filter.trim().to_owned())
        }
    };
    let home_mode = match &raw.home_mode {
        None => 0o700,
        Some(text) => match u32::from_str_radix(text.trim_start_matches("0o"), 8) {
            Ok(mode) if mode <= 0o777 => mode,
            _ => return Err(error("pam.home_mode", format!("{text:?} is not an octal mode like \"0700\""))),
        },
    };
    let max_failures = raw.max_failures.unwrap_or(5);
    if max_failures == 0 {
        return Err(error("pam.max_failures", "must be at least 1".into()));
    }
    Ok(PamConfig {
        allowed_groups,
        access_filter,
        root_may_reset_passwords: raw.root_may_reset_passwords.unwrap_or(false),
        create_home: raw.create_home.unwrap_or(false),
        home_mode,
        max_failures,
        failure_window: duration("pam.failure_window", raw.failure_window.as_ref(), Duration::from_secs(300))?,
    })
}

type ErrorFn<'a> = dyn Fn(&str, String) -> ConfigError + 'a;
type DurationFn<'a> = dyn Fn(&str, Option<&String>, Duration) -> Result<Duration, ConfigError> + 'a;

fn directory_config(
    raw: &RawDirectory,
    error: &ErrorFn,
    duration: &DurationFn,
) -> Result<DirectoryConfig, ConfigError> {
    let (servers, discovery) = servers::servers(raw, error)?;
    let base = check_dn(&raw.base).map_err(|m| error("directory.base", m))?;
    let schema = match raw.schema.as_deref() {
        None | Some("rfc2307") => Schema::Rfc2307,
        Some("rfc2307bis") => Schema::Rfc2307bis,
        Some("ad") => Schema::Ad,
        Some(other) => {
            let message = format!("unknown schema \"{other}\"; expected \"rfc2307\", \"rfc2307bis\" or \"ad\"");
            return Err(error("directory.schema", message));
        }
    };
    let trust = match &raw.ca_file {
        None => Trust::System,
        Some(path) => Trust::CaFile {
            certificates: read_certificates(path).map_err(|m| error("directory.ca_file", m))?,
            path: path.clone(),
        },
    };
    let service_account = match (&raw.bind_dn, &raw.bind_password_file) {
        (None, None) => None,
        (Some(dn), Some(file)) => Some(ServiceAccount {
            dn: check_dn(dn).map_err(|m| error("directory.bind_dn", m))?,
            password: read_bind_password(file).map_err(|m| error("directory.bind_password_file", m))?,
        }),
        (Some(_), None) => return Err(error("directory.bind_password_file", "is required with bind_dn".into())),
        (None, Some(_)) => return Err(error("directory.bind_dn", "is required with bind_password_file".into())),
    };
    let timeout = duration("directory.timeout", raw.timeout.as_ref(), Duration::from_secs(3))?;
    if timeout.is_zero() {
        return Err(error("directory.timeout", "must be more than zero".into()));
    }
    let failback = duration("directory.failback", raw.failback.as_ref(), DEFAULT_FAILBACK)?;
    let pool_size = raw.pool_size.unwrap_or(2);
    if !(1..=64).contains(&pool_size) {
        return Err(error("directory.pool_size", format!("{pool_size} is outside 1..=64")));
    }
    let page_size = raw.page_size.unwrap_or(500);
    if !(1..=100_000).contains(&page_size) {
        return Err(error("directory.page_size", format!("{page_size} is outside 1..=100000")));
    }
    let id_mapping = raw.id_mapping.as_ref().map(|raw| id_mapping(raw, error)).transpose()?;
    if id_mapping.is_some() && schema != Schema::Ad {
        return Err(error(
            "directory.id_mapping",
            "maps ids from Active Directory SIDs: it needs schema = \"ad\"".into(),
        ));
    }
    Ok(DirectoryConfig {
        users: user_map(&raw.users, &base, schema, id_mapping.clone(), error)?,
        groups: group_map(&raw.groups, &base, schema, id_mapping, error)?,
        schema,
        servers,
        discovery,
        base,
        trust,
        service_account,
        timeout,
        failback,
        pool_size,
        page_size,
    })
}

fn check_dn(dn: &str) -> Result<String, String> {
    let dn = dn.trim();
    if dn.is_empty() || !dn.contains('=') || dn.contains('\0') {
        return Err(format!("{dn:?} is not a DN (e.g. \"dc=example,dc=org\")"));
    }
    Ok(dn.to_owned())
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let iter = CertificateDer::pem_file_iter(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certificates =
        iter.collect::<Result<Vec<_>, _>>().map_err(|e| format!("{} is not PEM certificates: {e}", path.display()))?;
    if certificates.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certificates)
}

/// The bind password: one line, in a file only its owner can read or change.
fn read_bind_password(path: &Path) -> Result<Secret, String> {
    let metadata = std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mode = metadata.permissions().mode();
    if mode & 0o066 != 0 {
        return Err(format!(
            "{} has mode {:04o}: group or others may read or write it; run chmod 600 on it",
            path.display(),
            mode & 0o7777
        ));
    }
    let mut bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    for trailing in [b'\n', b'\r'] {
        if bytes.last() == Some(&trailing) {
            bytes.pop();
        }
    }
    let password = Secret::new(bytes);
    if password.is_empty() {
        // An empty password turns a simple bind into an unauthenticated one (RFC 4513 5.1.2).
        return Err(format!("{} is empty", path.display()));
    }
    if std::str::from_utf8(password.expose()).is_err() {
        return Err(format!("{} is not UTF-8", path.display()));
    }
    Ok(password)
}

fn id_mapping(raw: &raw::RawIdMapping, error: &ErrorFn) -> Result<IdMapping, ConfigError> {
    let offset = raw.offset.unwrap_or(DEFAULT_ID_OFFSET);
    if !(1000..=u32::MAX - MAX_RID - 1).contains(&offset) {
        let message = format!("{offset} is outside 1000..={} (RIDs reach {MAX_RID})", u32::MAX - MAX_RID - 1);
        return Err(error("directory.id_mapping.offset", message));
    }
    let home = raw.home.clone().unwrap_or_else(|| "/home/{user}".into());
    if !home.starts_with('/') || home.contains(['\0', '\n']) {
        return Err(error("directory.id_mapping.home", format!("{home:?} is not an absolute path")));
    }
    let shell = raw.shell.clone().unwrap_or_else(|| "/bin/sh".into());
    if !shell.starts_with('/') || shell.contains(['\0', '\n']) {
        return Err(error("directory.id_mapping.shell", format!("{shell:?} is not an absolute path")));
    }
    Ok(IdMapping { offset, home, shell })
}

fn user_map(
    raw: &RawUserMap,
    base: &str,
    schema: Schema,
    id_mapping: Option<IdMapping>,
    error: &ErrorFn,
) -> Result<UserMap, ConfigError> {
    let attr = |key: &str, value: &Option<String>, default: &str| {
        attribute(&format!("directory.users.{key}"), value, default, error)
    };
    let ad = schema == Schema::Ad;
    // Computers are users in AD; `objectCategory=person` leaves them (and contacts) out.
    // Without id mapping only accounts given a uidNumber are Unix users: the others (built-in
    // ones, most of a domain) are not errors to skip one by one.
    let default_filter = match (ad, id_mapping.is_some()) {
        (false, _) => "(objectClass=posixAccount)",
        (true, true) => "(&(objectClass=user)(objectCategory=person))",
        (true, false) => "(&(objectClass=user)(objectCategory=person)(uidNumber=*))",
    };
    Ok(UserMap {
        base: search_base(raw.base.as_ref(), base).map_err(|m| error("directory.users.base", m))?,
        filter: search_filter(raw.filter.as_ref(), default_filter).map_err(|m| error("directory.users.filter", m))?,
        name: attr("name", &raw.name, if ad { "sAMAccountName" } else { "uid" })?,
        uid_number: attr("uid_number", &raw.uid_number, "uidNumber")?,
        gid_number: attr("gid_number", &raw.gid_number, "gidNumber")?,
        gecos: attr("gecos", &raw.gecos, "gecos")?,
        home: attr("home", &raw.home, if ad { "unixHomeDirectory" } else { "homeDirectory" })?,
        shell: attr("shell", &raw.shell, "loginShell")?,
        login_alias: raw.login_alias.as_ref().map(|a| attr("login_alias", &Some(a.clone()), "")).transpose()?,
        id_mapping,
    })
}

/// `directory.groups.nesting_depth` when the file does not set it, and its upper bound: deep
/// enough for the layered groups sites build (team, department, everyone), and a bound on the
/// searches one lookup can cost.
pub const DEFAULT_NESTING_DEPTH: u32 = 4;
const MAX_NESTING_DEPTH: u32 = 16;

fn group_map(
    raw: &RawGroupMap,
    base: &str,
    schema: Schema,
    id_mapping: Option<IdMapping>,
    error: &ErrorFn,
) -> Result<GroupMap, ConfigError> {
    let attr = |key: &str, value: &Option<String>, default: &str| {
        attribute(&format!("directory.groups.{key}"), value, default, error)
    };
    let member_dn = match (&raw.member_dn, schema) {
        (None, Schema::Rfc2307) => None,
        (value, _) => Some(attr("member_dn", value, "member")?),
    };
    let nesting_depth = raw.nesting_depth.unwrap_or(DEFAULT_NESTING_DEPTH);
    if nesting_depth > MAX_NESTING_DEPTH {
        let message = format!("{nesting_depth} is more than {MAX_NESTING_DEPTH}");
        return Err(error("directory.groups.nesting_depth", message));
    }
    let ad = schema == Schema::Ad;
    let default_filter = match (ad, id_mapping.is_some()) {
        (false, _) => "(objectClass=posixGroup)",
        (true, true) => "(objectClass=group)",
        (true, false) => "(&(objectClass=group)(gidNumber=*))",
    };
    Ok(GroupMap {
        member_dn,
        nesting_depth,
        id_mapping,
        base: search_base(raw.base.as_ref(), base).map_err(|m| error("directory.groups.base", m))?,
        filter: search_filter(raw.filter.as_ref(), default_filter).map_err(|m| error("directory.groups.filter", m))?,
        name: attr("name", &raw.name, if ad { "sAMAccountName" } else { "cn" })?,
        gid_number: attr("gid_number", &raw.gid_number, "gidNumber")?,
        member: attr("member", &raw.member, "memberUid")?,
    })
}

fn search_base(value: Option<&String>, base: &str) -> Result<String, String> {
    value.map_or_else(|| Ok(base.to_owned()), |dn| check_dn(dn))
}

fn search_filter(value: Option<&String>, default: &str) -> Result<String, String> {
    let filter = value.map_or(default, |f| f.trim());
    if !filter.starts_with('(') || ldap3::parse_filter(filter).is_err() {
        return Err(format!("{filter:?} is not an LDAP filter (RFC 4515), e.g. \"(objectClass=posixAccount)\""));
    }
    Ok(filter.to_owned())
}

/// An attribute description: a name (`uidNumber`) or a numeric OID.
fn attribute(key: &str, value: &Option<String>, default: &str, error: &ErrorFn) -> Result<String, ConfigError> {
    let Some(name) = value else { return Ok(default.to_owned()) };
    let is_name = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let is_oid =
        !name.is_empty() && name.split('.').all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()));
    if !(is_name || is_oid) {
        return Err(error(key, format!("{name:?} is not an attribute name")));
    }
    Ok(name.clone())
}

#[cfg(test)]
mod tests;
