//! The directory: what the agent asks of it ([`Directory`]), and the LDAP implementation.
//!
//! - [`ldap`]: [`LdapDirectory`], searches through the pool with deadlines and one retry.
//! - `login`: binds as end users, account state, password changes (RFC 3062).
//! - [`pool`]: persistent connections bound as the service account, servers tried in order.
//! - `servers`: the servers and which to try first (one that just failed waits behind the others).
//! - [`discovery`]: the servers from DNS SRV records (`directory.domain`), kept up to date.
//! - [`tls`]: the rustls configuration (ring, the configured CA or the system's roots).
//! - [`filter`]: filters built from escaped values.
//! - [`mapping`]: LDAP entries to `passwd` and `group` records.
//! - `ad`: Active Directory's encodings (SIDs, FILETIME, `userAccountControl`, `unicodePwd`).
//! - `members`, `membership`, `dn`: members given by DN (RFC 2307bis), nested groups.

mod ad;
mod ad_search;
pub mod discovery;
pub mod dn;
mod facts;
pub mod filter;
pub mod inspect;
pub mod ldap;
mod login;
pub mod mapping;
mod members;
mod membership;
pub mod pool;
mod servers;
pub mod tls;

use std::future::Future;

use lanyard_proto::{Group, Passwd, Secret};

pub use ldap::LdapDirectory;

/// Why the directory could not answer. Each one means "unavailable" to a caller, never "not
/// found"; the text is for the administrator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryError {
    /// No server could be connected to and bound; the text names each server and its failure.
    Unreachable(String),
    /// A server answered with an error result (a missing base DN, a size limit, ...).
    Server(String),
    /// The operation did not finish within `directory.timeout`.
    Timeout,
}

impl std::fmt::Display for DirectoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DirectoryError::Unreachable(why) => write!(f, "no directory server reachable: {why}"),
            DirectoryError::Server(why) => write!(f, "the directory refused the search: {why}"),
            DirectoryError::Timeout => f.write_str("the directory did not answer in time"),
        }
    }
}

impl std::error::Error for DirectoryError {}

impl DirectoryError {
    /// Whether this means the directory could not be reached (go offline), rather than that
    /// a server answered with an error.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, DirectoryError::Unreachable(_) | DirectoryError::Timeout)
    }

    /// What a client on the socket is told: the kind of failure, without server names, DNs or
    /// the directory's own messages, which go to the agent's log.
    pub fn public_reason(&self) -> &'static str {
        match self {
            DirectoryError::Unreachable(_) => "no directory server reachable",
            DirectoryError::Server(_) => "the directory refused the request",
            DirectoryError::Timeout => "the directory did not answer in time",
        }
    }
}

/// Everything the agent asks of a directory. `Ok(None)` and empty lists are answers ("no such
/// entry"); `Err` means the directory could not be asked. Names and ids reaching these methods
/// have already been checked by the service.
pub trait Directory: Send + Sync + 'static {
    fn user_by_name(&self, name: &str) -> impl Future<Output = Result<Option<Passwd>, DirectoryError>> + Send;
    fn user_by_uid(&self, uid: u32) -> impl Future<Output = Result<Option<Passwd>, DirectoryError>> + Send;
    fn group_by_name(&self, name: &str) -> impl Future<Output = Result<Option<Group>, DirectoryError>> + Send;
    fn group_by_gid(&self, gid: u32) -> impl Future<Output = Result<Option<Group>, DirectoryError>> + Send;
    /// The gids of the groups that name `user` as a member.
    fn groups_of_user(&self, user: &str) -> impl Future<Output = Result<Vec<u32>, DirectoryError>> + Send;
    fn all_users(&self) -> impl Future<Output = Result<Vec<Passwd>, DirectoryError>> + Send;
    fn all_groups(&self) -> impl Future<Output = Result<Vec<Group>, DirectoryError>> + Send;
    /// The server of the last successful connection, as configured, for `lanyardctl status`.
    fn server_in_use(&self) -> Option<String>;
    /// A cheap operation that succeeds only when a server answers (the offline prober).
    fn probe(&self) -> impl Future<Output = Result<(), DirectoryError>> + Send;
    /// Binds as the user with `password` (never empty: the service refuses that first).
    fn check_password(
        &self,
        user: &str,
        password: &Secret,
    ) -> impl Future<Output = Result<PasswordCheck, DirectoryError>> + Send;
    /// What the account phase needs; `None` for a user the directory does not know.
    fn account(&self, user: &str) -> impl Future<Output = Result<Option<AccountState>, DirectoryError>> + Send;
    /// Whether the user's entry matches `filter` (a complete filter, values already escaped).
    fn user_matches(&self, user: &str, filter: &str) -> impl Future<Output = Result<bool, DirectoryError>> + Send;
    /// Changes the password: as the user with `old` (RFC 3062 Password Modify after a bind), or,
    /// without `old`, as the service account.
    fn change_password(
        &self,
        user: &str,
        old: Option<&Secret>,
        new: &Secret,
    ) -> impl Future<Output = Result<PasswordChange, DirectoryError>> + Send;
}

/// What a bind as the user said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCheck {
    Accepted,
    /// invalidCredentials (49): wrong password, or a locked account.
    Rejected,
    /// AD: the password is right but has expired or must be changed before use (the bind was
    /// refused with `data 532` or `773`). The account phase then asks for a new one.
    MustChange,
    NoSuchUser,
}

/// The directory's view of an account, for the account phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountState {
    pub user: Passwd,
    /// RFC 2307 `shadow*` values, in days since 1970-01-01 (`shadowExpire`, `shadowLastChange`)
    /// or days (`shadowMax`, `shadowWarning`).
    pub shadow_expire: Option<i64>,
    pub shadow_last_change: Option<i64>,
    pub shadow_max: Option<i64>,
    pub shadow_warning: Option<i64>,
    /// `pwdAccountLockedTime` is set: the password policy locked the account.
    pub locked: bool,
    /// AD: `userAccountControl` says disabled.
    pub disabled: bool,
    /// AD: `accountExpires`, in Unix seconds.
    pub expires_at: Option<i64>,
    /// AD: when the password expires (`pwdLastSet` plus the domain's `maxPwdAge`), in Unix
    /// seconds; `i64::MIN`: it must be changed now.
    pub password_expires_at: Option<i64>,
}

/// What became of a password change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordChange {
    Changed,
    WrongOldPassword,
    /// The directory refused the new password; its reason, for the user.
    Rejected(String),
    NoSuchUser,
}
