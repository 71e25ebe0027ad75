//! Lanyard's wire protocol, shared by the agent and the modules.
//!
//! The NSS and PAM modules run inside other people's processes (sshd, login, sudo, every program
//! that calls `getpwnam`), so this crate stays small: std, libc, serde and postcard, nothing
//! asynchronous, no TLS, no LDAP, no database.
//!
//! - [`message`]: the two enums that make up the protocol, [`Request`] and [`Response`].
//! - [`frame`]: a version byte, a length prefix checked before any allocation, a postcard body.
//! - [`secret`]: [`Secret`], how credentials travel (redacted `Debug`, zeroized on drop).
//! - [`name`]: which strings can be user or group names; everything else is refused before any
//!   traffic.
//! - [`client`]: a blocking client with connect, read and write deadlines.
//! - [`snapshot`]: the memory-mappable file of users and groups the agent publishes and the NSS
//!   module answers from without the socket (std only).
//! - `testing` (feature `testing`, for the modules' tests only): a fake agent on a scratch socket.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod client;
pub mod frame;
pub mod message;
pub mod name;
pub mod secret;
pub mod snapshot;
mod sys;
#[cfg(feature = "testing")]
pub mod testing;

pub use client::{Client, ClientError, Deadlines};
pub use frame::FrameError;
pub use message::{
    AgentStatus, Group, HomeDirectory, Invalidation, Lookup, PamContext, Passwd, Request, Response, Source,
    TracedAnswer,
};
pub use secret::Secret;
pub use snapshot::{Answer, GidList, GroupRecord, Snapshot, SnapshotBuilder, SnapshotError, UserRecord};
pub use sys::boottime_ms;

/// Where the agent listens unless its configuration says otherwise. The NSS module cannot take
/// arguments, so it always uses this path.
pub const DEFAULT_SOCKET: &str = "/run/lanyard/socket";

/// Set in the agent's own environment: the NSS module then declines every lookup, so the agent
/// never asks itself through nsswitch (a loop that would deadlock it).
pub const BYPASS_ENV: &str = "LANYARD_NSS_BYPASS";
