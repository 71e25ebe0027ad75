//! The directory's contents: constants that tests assert against, and the LDIF generated from
//! the same constants. Tests also assert literal well-known values (alice is uid 10001), so a
//! bug here cannot hide behind a shared source of truth.

use std::fmt::Write as _;

pub const BASE_DN: &str = "dc=example,dc=org";
pub const PEOPLE_DN: &str = "ou=people,dc=example,dc=org";
pub const GROUPS_DN: &str = "ou=groups,dc=example,dc=org";
/// The service account the agent binds as (password per run, in `bind.secret`).
pub const READER_DN: &str = "cn=reader,dc=example,dc=org";
/// slapd's rootdn (password per run, in slapd.conf only).
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=org";

/// A user written out by hand below.
#[derive(Debug, Clone, Copy)]
pub struct User {
    pub name: &'static str,
    pub uid: u32,
    pub gid: u32,
    pub gecos: &'static str,
    pub home: &'static str,
    pub shell: &'static str,
    pub password: &'static str,
}

pub const ALICE: User = User {
    name: "alice",
    uid: 10001,
    gid: 10000,
    gecos: "Alice Liddell",
    home: "/home/alice",
    shell: "/bin/bash",
    password: "alice-Wonderland-7",
};
pub const BOB: User = User {
    name: "bob",
    uid: 10002,
    gid: 10000,
    gecos: "Bob Builder",
    home: "/home/bob",
    shell: "/bin/bash",
    password: "bob-CanWeFixIt-3",
};
/// Non-ASCII gecos: travels as base64 in LDIF, UTF-8 everywhere else.
pub const JOSE: User = User {
    name: "jose",
    uid: 10003,
    gid: 10000,
    gecos: "José Müller-Ærø",
    home: "/home/jose",
    shell: "/bin/bash",
    password: "jose-Ærø-Pass-5",
};
pub const NAMED_USERS: [User; 3] = [ALICE, BOB, JOSE];

/// `user0001` .. `user0300`, uids 20001 .. 20300, for enumeration.
pub const BULK_USERS: u32 = 300;
pub const BULK_FIRST_UID: u32 = 20001;
pub const USER_COUNT: usize = NAMED_USERS.len() + BULK_USERS as usize;

/// A group written out by hand below (`biggroup` is generated: see [`BIG_GROUP`]).
#[derive(Debug, Clone, Copy)]
pub struct Group {
    pub name: &'static str,
    pub gid: u32,
    pub members: &'static [&'static str],
}

/// Everyone's primary group; no memberUid (membership through gidNumber). Note that Debian's
/// `/etc/group` has its own `staff` (gid 50), which wins a lookup *by name* under `files lanyard`.
pub const STAFF: Group = Group { name: "staff", gid: 10000, members: &[] };
pub const DEVELOPERS: Group = Group { name: "developers", gid: 10010, members: &["alice", "bob"] };
pub const OPS: Group = Group { name: "ops", gid: 10011, members: &["alice"] };
pub const ADMINS: Group = Group { name: "admins", gid: 10012, members: &["alice"] };
pub const EMPTY: Group = Group { name: "empty", gid: 10013, members: &[] };
pub const SMALL_GROUPS: [Group; 5] = [STAFF, DEVELOPERS, OPS, ADMINS, EMPTY];

/// `biggroup`: `member0001` .. `member5000`, then alice.
pub const BIG_GROUP: Group = Group { name: "biggroup", gid: 10100, members: &["alice"] };
pub const BIG_GROUP_GENERATED_MEMBERS: u32 = 5000;
pub const BIG_GROUP_MEMBER_COUNT: usize = BIG_GROUP_GENERATED_MEMBERS as usize + BIG_GROUP.members.len();
pub const GROUP_COUNT: usize = SMALL_GROUPS.len() + 1;

pub fn bulk_user_name(i: u32) -> String {
    format!("user{i:04}")
}

pub fn big_group_member(i: u32) -> String {
    format!("member{i:04}")
}

/// A user as the directory holds it, named or generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
    pub home: String,
    pub shell: String,
    pub password: String,
}

impl UserEntry {
    /// The line `getent passwd` prints for this user.
    pub fn passwd_line(&self) -> String {
        format!("{}:x:{}:{}:{}:{}:{}", self.name, self.uid, self.gid, self.gecos, self.home, self.shell)
    }
}

impl From<User> for UserEntry {
    fn from(u: User) -> Self {
        UserEntry {
            name: u.name.into(),
            uid: u.uid,
            gid: u.gid,
            gecos: u.gecos.into(),
            home: u.home.into(),
            shell: u.shell.into(),
            password: u.password.into(),
        }
    }
}

/// A group as the directory holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

impl From<Group> for GroupEntry {
    fn from(g: Group) -> Self {
        GroupEntry { name: g.name.into(), gid: g.gid, members: g.members.iter().map(|m| m.to_string()).collect() }
    }
}

/// Every user in the directory: the named ones, then the bulk ones.
pub fn users() -> Vec<UserEntry> {
    let bulk = (1..=BULK_USERS).map(|i| UserEntry {
        name: bulk_user_name(i),
        uid: BULK_FIRST_UID + i - 1,
        gid: STAFF.gid,
        gecos: format!("Bulk User {i}"),
        home: format!("/home/{}", bulk_user_name(i)),
        shell: "/bin/sh".into(),
        password: format!("bulk-{i}-Pass"),
    });
    NAMED_USERS.into_iter().map(UserEntry::from).chain(bulk).collect()
}

/// Every group in the directory.
pub fn groups() -> Vec<GroupEntry> {
    let mut big = GroupEntry::from(BIG_GROUP);
    big.members = (1..=BIG_GROUP_GENERATED_MEMBERS).map(big_group_member).chain(big.members).collect();
    SMALL_GROUPS.into_iter().map(GroupEntry::from).chain([big]).collect()
}

/// The groups that list `user` in memberUid (not its primary group), as (name, gid).
pub fn supplementary_groups(user: &str) -> Vec<(String, u32)> {
    groups().into_iter().filter(|g| g.members.iter().any(|m| m == user)).map(|g| (g.name, g.gid)).collect()
}

/// The whole directory as LDIF for `slapadd`. `reader_password` is the service account's.
pub fn ldif(reader_password: &str) -> String {
    let mut out = String::new();
    entry(
        &mut out,
        BASE_DN,
        &[("objectClass", "dcObject"), ("objectClass", "organization"), ("dc", "example"), ("o", "Example")],
    );
    entry(&mut out, PEOPLE_DN, &[("objectClass", "organizationalUnit"), ("ou", "people")]);
    entry(&mut out, GROUPS_DN, &[("objectClass", "organizationalUnit"), ("ou", "groups")]);
    entry(
        &mut out,
        READER_DN,
        &[
            ("objectClass", "organizationalRole"),
            ("objectClass", "simpleSecurityObject"),
            ("cn", "reader"),
            ("userPassword", reader_password),
        ],
    );
    for u in users() {
        let (uid, gid) = (u.uid.to_string(), u.gid.to_string());
        entry(
            &mut out,
            &format!("uid={},{PEOPLE_DN}", u.name),
            &[
                ("objectClass", "inetOrgPerson"),
                ("objectClass", "posixAccount"),
                ("objectClass", "shadowAccount"),
                ("uid", &u.name),
                ("cn", &u.gecos),
                ("sn", &u.name),
                ("uidNumber", &uid),
                ("gidNumber", &gid),
                ("gecos", &u.gecos),
                ("homeDirectory", &u.home),
                ("loginShell", &u.shell),
                ("userPassword", &u.password),
            ],
        );
    }
    for g in groups() {
        let gid = g.gid.to_string();
        let mut attrs = vec![("objectClass", "posixGroup"), ("cn", g.name.as_str()), ("gidNumber", gid.as_str())];
        attrs.extend(g.members.iter().map(|m| ("memberUid", m.as_str())));
        entry(&mut out, &format!("cn={},{GROUPS_DN}", g.name), &attrs);
    }
    out
}

fn entry(out: &mut String, dn: &str, attrs: &[(&str, &str)]) {
    line(out, "dn", dn);
    for (name, value) in attrs {
        line(out, name, value);
    }
    out.push('\n');
}

/// `name: value`, or `name:: base64` when the value is not an LDIF SAFE-STRING (RFC 2849).
fn line(out: &mut String, name: &str, value: &str) {
    let safe_start = !value.starts_with([' ', ':', '<']);
    let safe_chars = value.bytes().all(|b| (1..0x80).contains(&b) && b != b'\n' && b != b'\r');
    if safe_start && safe_chars && !value.ends_with(' ') {
        let _ = writeln!(out, "{name}: {value}");
    } else {
        let _ = writeln!(out, "{name}:: {}", base64(value.as_bytes()));
    }
}

/// Standard base64 with padding.
pub fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> shift) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn non_ascii_and_unsafe_values_are_base64() {
        let text = ldif("pw");
        assert!(text.contains("gecos:: Sm9zw6kgTcO8bGxlci3DhnLDuA==\n"), "jose's gecos is not base64");
        assert!(!text.contains("José"));
        let mut out = String::new();
        line(&mut out, "cn", " leading space");
        line(&mut out, "cn", "plain");
        assert_eq!(out, "cn:: IGxlYWRpbmcgc3BhY2U=\ncn: plain\n");
    }

    #[test]
    fn counts_and_well_known_values() {
        let users = users();
        assert_eq!(users.len(), 303);
        assert_eq!(USER_COUNT, 303);
        assert_eq!(users[0].passwd_line(), "alice:x:10001:10000:Alice Liddell:/home/alice:/bin/bash");
        assert_eq!(users.last().map(|u| (u.name.as_str(), u.uid)), Some(("user0300", 20300)));
        let groups = groups();
        assert_eq!(groups.len(), 6);
        let big = groups.iter().find(|g| g.name == "biggroup").unwrap();
        assert_eq!((big.gid, big.members.len()), (10100, 5001));
        assert_eq!(big.members[0], "member0001");
        assert_eq!(big.members[4999], "member5000");
        let mut alice: Vec<u32> = supplementary_groups("alice").into_iter().map(|(_, gid)| gid).collect();
        alice.sort_unstable();
        assert_eq!(alice, [10010, 10011, 10012, 10100]);
    }

    #[test]
    fn ldif_has_one_entry_per_object() {
        let text = ldif("pw");
        let entries = text.matches("\ndn: ").count() + usize::from(text.starts_with("dn: "));
        assert_eq!(entries, 4 + 303 + 6);
        assert_eq!(text.matches("\nmemberUid: ").count(), 5001 + 2 + 1 + 1);
    }
}
