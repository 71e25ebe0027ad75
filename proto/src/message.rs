//! The protocol: a [`Request`] answered by one [`Response`] (or, for enumeration, a stream of
//! them). A connection may carry several requests in turn.
//!
//! postcard encodes enum variants by position: add new variants at the end only, never reorder
//! or remove one. The frame's version byte changes only for an incompatible layout.

use serde::{Deserialize, Serialize};

use crate::Secret;

/// What a module asks the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// `getpwnam`: answered by [`Response::User`] or [`Response::NotFound`].
    UserByName(String),
    /// `getpwuid`: answered by [`Response::User`] or [`Response::NotFound`].
    UserByUid(u32),
    /// `getgrnam`: answered by [`Response::Group`] or [`Response::NotFound`].
    GroupByName(String),
    /// `getgrgid`: answered by [`Response::Group`] or [`Response::NotFound`].
    GroupByGid(u32),
    /// `initgroups`: the gids of every group that lists the user as a member, answered by
    /// [`Response::GroupIds`] (possibly empty) or [`Response::NotFound`] when the user is unknown.
    GroupsOfUser(String),
    /// `setpwent`: answered by a stream of [`Response::UserPage`]s closed by
    /// [`Response::EndOfPages`] on the same connection.
    EnumerateUsers,
    /// `setgrent`: answered by [`Response::GroupPage`]s closed by [`Response::EndOfPages`].
    EnumerateGroups,
    /// `pam_sm_authenticate`: answered by [`Response::Authenticated`],
    /// [`Response::WrongPassword`], [`Response::NotFound`], [`Response::TooManyAttempts`],
    /// [`Response::Refused`] (this caller may not ask for this user) or
    /// [`Response::Unavailable`].
    Authenticate { user: String, password: Secret, context: PamContext },
    /// `pam_sm_acct_mgmt`: answered by [`Response::AccountOk`], [`Response::AccountExpired`],
    /// [`Response::PasswordExpired`], [`Response::Denied`], [`Response::NotFound`] or
    /// [`Response::Unavailable`].
    CheckAccount { user: String, context: PamContext },
    /// `pam_sm_chauthtok`: `old` is the current password (absent only for root resetting
    /// another user's password where the config allows it). Answered by
    /// [`Response::PasswordChanged`], [`Response::PasswordRejected`],
    /// [`Response::WrongPassword`], [`Response::NotFound`], [`Response::Refused`] or
    /// [`Response::Unavailable`].
    ChangePassword { user: String, old: Option<Secret>, new: Secret, context: PamContext },
    /// `pam_sm_open_session`: answered by [`Response::SessionReady`], [`Response::NotFound`]
    /// or [`Response::Unavailable`].
    OpenSession { user: String, context: PamContext },
    /// Marks cached entries stale (they stay for offline use; the next lookup asks the
    /// directory). Root only: answered by [`Response::Invalidated`] or [`Response::Refused`].
    Invalidate(Invalidation),
    /// `lanyardctl status`: answered by [`Response::Status`].
    Status,
    /// `lanyardctl metrics`: answered by [`Response::Metrics`] (Prometheus text format).
    Metrics,
    /// A lookup answered with where the answer came from: [`Response::Traced`]. For
    /// `lanyardctl user` and `group`. A flat [`Lookup`], never a nested request: a request
    /// that can hold itself can be nested until decoding overflows the agent's stack.
    Trace(Lookup),
    /// Wipes every cached answer, listing and offline verifier, in memory and on disk. Root
    /// only: [`Response::Cleared`] or [`Response::Refused`].
    ClearCache,
}

/// Which cached entries [`Request::Invalidate`] marks stale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Invalidation {
    /// The user's entry (by name and by uid) and its group list.
    User(String),
    /// The group's entry (by name and by gid).
    Group(String),
    All,
}

/// Where a PAM request comes from (the PAM items), for the audit log and access rules.
/// Empty strings where the application did not set an item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PamContext {
    pub service: String,
    pub rhost: String,
    pub tty: String,
    pub ruser: String,
}

/// What the agent answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    User(Passwd),
    Group(Group),
    GroupIds(Vec<u32>),
    UserPage(Vec<Passwd>),
    GroupPage(Vec<Group>),
    EndOfPages,
    /// The directory answered, and there is no such entry. Never used for "could not ask".
    NotFound,
    /// Neither the directory nor a cache could answer. The text says why, for people
    /// (`lanyardctl`, logs); the modules only need the variant.
    Unavailable(String),
    /// The request was understood but is not allowed for this caller.
    Refused(String),
    /// The password is right. `offline`: checked against the offline verifier because the
    /// directory could not be reached.
    Authenticated {
        offline: bool,
    },
    /// The password is wrong (or empty: an empty password never reaches a bind).
    WrongPassword,
    /// Too many failed attempts for this account or from this caller; nothing was tried.
    TooManyAttempts {
        retry_after_secs: u32,
    },
    /// The account may log in. `warning` is shown to the user (e.g. a password about to expire).
    AccountOk {
        warning: Option<String>,
    },
    /// The account has expired (`shadowExpire` passed). The text is for the user.
    AccountExpired(String),
    /// The password is too old and must be changed now. The text is for the user.
    PasswordExpired(String),
    /// The account is locked or an access rule keeps it out. The text is for the user.
    Denied(String),
    PasswordChanged,
    /// The directory refused the new password (quality, history, age). The text is the
    /// directory's reason, for the user.
    PasswordRejected(String),
    /// The session may open; `home` is a home directory to create if it does not exist.
    SessionReady {
        home: Option<HomeDirectory>,
    },
    Invalidated,
    Status(Box<AgentStatus>),
    Metrics(String),
    Traced {
        answer: TracedAnswer,
        source: Source,
    },
    Cleared,
}

/// The lookups [`Request::Trace`] can ask about (the first five [`Request`] variants). The
/// agent also keys its caches by it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Lookup {
    UserByName(String),
    UserByUid(u32),
    GroupByName(String),
    GroupByGid(u32),
    GroupsOfUser(String),
}

/// The answer inside [`Response::Traced`]: the lookup answers, flat (not a nested
/// [`Response`], for the same reason as [`Lookup`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TracedAnswer {
    User(Passwd),
    Group(Group),
    GroupIds(Vec<u32>),
    NotFound,
    Unavailable(String),
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// Memory, fetched this many seconds ago.
    Memory { age_secs: u64 },
    /// The disk cache, fetched at this wall-clock time (Unix seconds); `stale` if older than
    /// the ttl or invalidated (a refresh was queued).
    Disk { fetched_at: u64, stale: bool },
    /// The directory, just now.
    Directory,
    /// Nobody: refused before any lookup (a name that cannot exist, id 0), or offline with
    /// nothing cached.
    Nowhere,
}

/// What `lanyardctl status` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub online: bool,
    /// Seconds in the current state (online or offline).
    pub state_secs: u64,
    /// The server of the last successful connection, as configured (`ldap://...`).
    pub server: Option<String>,
    /// Its TLS protocol version, e.g. `TLSv1_3` (none for `danger-plaintext`).
    pub tls_version: Option<String>,
    /// When that server's certificate stops being valid (Unix seconds).
    pub certificate_not_after: Option<u64>,
    /// The last time the directory answered (Unix seconds).
    pub last_contact: Option<u64>,
    /// Entries in the disk cache.
    pub disk_answers: u64,
    pub disk_users: u64,
    pub disk_groups: u64,
    pub offline_verifiers: u64,
    /// The oldest and newest `fetched_at` among disk answers (Unix seconds).
    pub oldest_answer: Option<u64>,
    pub newest_answer: Option<u64>,
    /// Entries in memory.
    pub memory_answers: u64,
}

/// A home directory the PAM module creates at session start, from `/etc/skel`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HomeDirectory {
    pub path: String,
    pub uid: u32,
    pub gid: u32,
    /// Permission bits of the new directory, e.g. 0o700.
    pub mode: u32,
}

/// A user as `struct passwd` carries it. The password field is always `x`: no hash ever leaves
/// the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passwd {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
    pub home: String,
    pub shell: String,
}

/// A group as `struct group` carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

impl Response {
    /// A short description for logs: the variant and its size, never a whole entry list.
    pub fn summary(&self) -> String {
        match self {
            Response::User(p) => format!("user {} ({})", p.name, p.uid),
            Response::Group(g) => format!("group {} ({}, {} members)", g.name, g.gid, g.members.len()),
            Response::GroupIds(ids) => format!("{} group ids", ids.len()),
            Response::UserPage(page) => format!("page of {} users", page.len()),
            Response::GroupPage(page) => format!("page of {} groups", page.len()),
            Response::EndOfPages => "end of pages".to_owned(),
            Response::NotFound => "not found".to_owned(),
            Response::Unavailable(why) => format!("unavailable: {why}"),
            Response::Refused(why) => format!("refused: {why}"),
            Response::Authenticated { offline: false } => "authenticated".to_owned(),
            Response::Authenticated { offline: true } => "authenticated offline".to_owned(),
            Response::WrongPassword => "wrong password".to_owned(),
            Response::TooManyAttempts { retry_after_secs } => {
                format!("too many attempts; retry in {retry_after_secs} s")
            }
            Response::AccountOk { .. } => "account ok".to_owned(),
            Response::AccountExpired(why) => format!("account expired: {why}"),
            Response::PasswordExpired(why) => format!("password expired: {why}"),
            Response::Denied(why) => format!("denied: {why}"),
            Response::PasswordChanged => "password changed".to_owned(),
            Response::PasswordRejected(why) => format!("password rejected: {why}"),
            Response::SessionReady { home } => match home {
                Some(home) => format!("session ready, home {}", home.path),
                None => "session ready".to_owned(),
            },
            Response::Invalidated => "invalidated".to_owned(),
            Response::Status(status) => format!("status ({})", if status.online { "online" } else { "offline" }),
            Response::Metrics(text) => format!("{} bytes of metrics", text.len()),
            Response::Traced { answer, source } => format!("{answer:?} from {source:?}"),
            Response::Cleared => "cleared".to_owned(),
        }
    }
}
