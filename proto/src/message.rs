//! The protocol: one [`Request`] per connection (or one enumeration stream), answered by
//! [`Response`]s.
//!
//! postcard encodes enum variants by position: add new variants at the end only, never reorder
//! or remove one. The frame's version byte changes only for an incompatible layout.

use serde::{Deserialize, Serialize};

/// What a module asks the agent. `Hash` because the agent keys its answers by request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
        }
    }
}
