//! The directory: what the agent asks of it ([`Directory`]), and the LDAP implementation.
//!
//! - [`ldap`]: [`LdapDirectory`], searches through the pool with deadlines and one retry.
//! - [`pool`]: persistent connections bound as the service account, servers tried in order.
//! - [`tls`]: the rustls configuration (ring, the configured CA or the system's roots).
//! - [`filter`]: filters built from escaped values.
//! - [`mapping`]: LDAP entries to `passwd` and `group` records.

pub mod filter;
pub mod ldap;
pub mod mapping;
pub mod pool;
pub mod tls;

use std::future::Future;

use lanyard_proto::{Group, Passwd};

pub use ldap::LdapDirectory;

/// Why the directory could not answer. Each one means "unavailable" to a caller, never "not
/// found"; the text is for the administrator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryError {
    /// No server could be connected to and bound; the text names each server and its failure.
    Unreachable(String),
    /// A server answered with an error result (a missing base DN, a size limit, ...).
    Server(String),
    /// The operation did not finish within `directory.timeout`, twice.
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
}
