//! The benchmark's directory at scale, added to the harness fixture as LDIF for `slapadd`:
//! `users` users `u00001`.. (uidNumber 100001..), `groups` groups `g0001`.. of about ten
//! members each, `big5000` with the first 5,000 users, and the last user in `groups_per_user`
//! groups (nobody else is). Every value is ASCII and safe in plain LDIF.

use std::fmt::Write as _;

use lanyard_tests::fixture::{GROUPS_DN, PEOPLE_DN};

const FIRST_UID: u32 = 100_000;
/// The primary group of every bulk user (a group with no `memberUid`).
const PRIMARY_GID: u32 = 100_000;
const FIRST_GID: u32 = 200_000;
const BIG_GID: u32 = 300_000;
pub const BIG_GROUP: &str = "big5000";
const BIG_GROUP_SIZE: u32 = 5_000;
/// Groups in a directory of the default size; more when one user needs more.
const MIN_GROUPS: u32 = 1_000;

#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub users: u32,
    pub groups_per_user: u32,
}

impl Shape {
    pub fn groups(&self) -> u32 {
        MIN_GROUPS.max(self.groups_per_user)
    }

    pub fn big_group_members(&self) -> u32 {
        BIG_GROUP_SIZE.min(self.users)
    }

    /// The user in `groups_per_user` groups: the last one, outside the round-robin.
    pub fn many_groups_user(&self) -> String {
        user_name(self.users)
    }
}

pub fn user_name(i: u32) -> String {
    format!("u{i:05}")
}

pub fn uid_of(i: u32) -> u32 {
    FIRST_UID + i
}

/// Every bulk user's password (cleartext in the LDIF, as the harness fixture stores its own;
/// slapd compares it on bind the same way for all three clients).
pub fn password(name: &str) -> String {
    format!("Bench-{name}-pw")
}

fn group_name(j: u32) -> String {
    format!("g{j:04}")
}

/// The LDIF of `shape`, entries only (the fixture already has the base and both OUs).
pub fn ldif(shape: Shape) -> String {
    let mut out = String::with_capacity(shape.users as usize * 330);
    for i in 1..=shape.users {
        let name = user_name(i);
        let _ = write!(
            out,
            "dn: uid={name},{PEOPLE_DN}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n\
             objectClass: shadowAccount\nuid: {name}\ncn: Bench User {i}\nsn: {name}\nuidNumber: {uid}\n\
             gidNumber: {PRIMARY_GID}\ngecos: Bench User {i}\nhomeDirectory: /home/{name}\n\
             loginShell: /bin/bash\nuserPassword: {pw}\n\n",
            uid = uid_of(i),
            pw = password(&name),
        );
    }
    group(&mut out, "benchusers", PRIMARY_GID, std::iter::empty());
    let groups = shape.groups();
    // Round-robin: user i (all but the many-groups user) is in group (i mod groups) + 1.
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); groups as usize];
    for i in 1..shape.users {
        members[(i % groups) as usize].push(i);
    }
    for (index, list) in members.iter_mut().enumerate() {
        let j = index as u32 + 1;
        if j <= shape.groups_per_user {
            list.push(shape.users);
        }
        group(&mut out, &group_name(j), FIRST_GID + j, list.iter().map(|&i| user_name(i)));
    }
    group(&mut out, BIG_GROUP, BIG_GID, (1..=shape.big_group_members()).map(user_name));
    out
}

fn group(out: &mut String, name: &str, gid: u32, members: impl Iterator<Item = String>) {
    let _ = write!(out, "dn: cn={name},{GROUPS_DN}\nobjectClass: posixGroup\ncn: {name}\ngidNumber: {gid}\n");
    for member in members {
        let _ = writeln!(out, "memberUid: {member}");
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_memberships() {
        let shape = Shape { users: 20, groups_per_user: 3 };
        let text = ldif(shape);
        assert_eq!(text.matches("objectClass: posixAccount").count(), 20);
        // benchusers, 1,000 groups, big5000.
        assert_eq!(text.matches("objectClass: posixGroup").count(), 1002);
        // Three groups, and big5000, which holds all of 20 users.
        assert_eq!(text.matches("memberUid: u00020\n").count(), 4);
        assert_eq!(text.matches("memberUid: u00001\n").count(), 2);
        assert!(text.contains("uidNumber: 100020\n"));
    }
}
