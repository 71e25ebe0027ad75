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
pub const POLICIES_DN: &str = "ou=policies,dc=example,dc=org";
/// The password policy slapd's ppolicy overlay applies to every entry (`ppolicy_default`).
pub const DEFAULT_POLICY_DN: &str = "cn=default,ou=policies,dc=example,dc=org";

/// The default policy's `pwdMinLength`: every fixture password is at least this long.
pub const POLICY_MIN_LENGTH: usize = 8;
/// The default policy's `pwdMaxFailure`: slapd locks an account after this many failed binds.
pub const POLICY_MAX_FAILURE: u32 = 5;

/// `pwdAccountLockedTime` value that the ppolicy overlay reads as "locked until an
/// administrator unlocks it".
pub const LOCKED_FOREVER: &str = "000001010000Z";

/// What makes an account more than a plain login; written as the attributes below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Account {
    Active,
    /// `shadowExpire: 1`: the account expired on 2 January 1970.
    Expired,
    /// `shadowLastChange: 1` and `shadowMax: 30`: the password had to change by 1970.
    PasswordAged,
    /// `pwdAccountLockedTime: 000001010000Z`: locked by the password policy for good.
    Locked,
}

impl Account {
    /// The attributes that put an entry in this state.
    pub fn attributes(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Account::Active => &[],
            Account::Expired => &[("shadowExpire", "1")],
            Account::PasswordAged => &[("shadowLastChange", "1"), ("shadowMax", "30")],
            Account::Locked => &[("pwdAccountLockedTime", LOCKED_FOREVER)],
        }
    }
}

/// A user written out by hand below.
#[derive(Debug, Clone, Copy)]
pub struct User {
    pub name: &'static str,
    pub uid: u32,
    pub gid: u32,
    pub gecos: &'static str,
    pub home: &'static str,
    pub shell: &'static str,
    /// The cleartext `userPassword` (at least [`POLICY_MIN_LENGTH`] long).
    pub password: &'static str,
    pub account: Account,
}

pub const ALICE: User = User {
    name: "alice",
    uid: 10001,
    gid: 10000,
    gecos: "Alice Liddell",
    home: "/home/alice",
    shell: "/bin/bash",
    password: "alice-Wonderland-7",
    account: Account::Active,
};
pub const BOB: User = User {
    name: "bob",
    uid: 10002,
    gid: 10000,
    gecos: "Bob Builder",
    home: "/home/bob",
    shell: "/bin/bash",
    password: "bob-CanWeFixIt-3",
    account: Account::Active,
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
    account: Account::Active,
};
/// Expired by `shadowExpire`: its password is right, its account check must fail.
pub const EXPIRED: User = User {
    name: "expired",
    uid: 10004,
    gid: 10000,
    gecos: "Expired Account",
    home: "/home/expired",
    shell: "/bin/bash",
    password: "expired-Long-Gone-1",
    account: Account::Expired,
};
/// Past `shadowLastChange + shadowMax`: must change the password.
pub const AGED: User = User {
    name: "aged",
    uid: 10005,
    gid: 10000,
    gecos: "Aged Password",
    home: "/home/aged",
    shell: "/bin/bash",
    password: "aged-Old-Secret-2",
    account: Account::PasswordAged,
};
/// Locked by the password policy: slapd refuses its binds even with the right password.
pub const LOCKED: User = User {
    name: "locked",
    uid: 10006,
    gid: 10000,
    gecos: "Locked Account",
    home: "/home/locked",
    shell: "/bin/bash",
    password: "locked-Out-Pass-3",
    account: Account::Locked,
};
/// A normal user in no group but `staff`: outside `developers` for the access rule tests.
pub const OUTSIDER: User = User {
    name: "outsider",
    uid: 10007,
    gid: 10000,
    gecos: "Out Sider",
    home: "/home/outsider",
    shell: "/bin/bash",
    password: "outsider-Pass-4",
    account: Account::Active,
};
/// A normal user whose password tests change, so that no other test depends on it.
pub const CHANGER: User = User {
    name: "changer",
    uid: 10008,
    gid: 10000,
    gecos: "Password Changer",
    home: "/home/changer",
    shell: "/bin/bash",
    password: "changer-First-Pass-5",
    account: Account::Active,
};
pub const NAMED_USERS: [User; 8] = [ALICE, BOB, JOSE, EXPIRED, AGED, LOCKED, OUTSIDER, CHANGER];

/// A new password for [`CHANGER`] that the default policy accepts.
pub const CHANGER_NEW_PASSWORD: &str = "changer-Second-Pass-6";
/// Shorter than [`POLICY_MIN_LENGTH`]: the default policy refuses it.
pub const TOO_SHORT_PASSWORD: &str = "Sh0rt-p";

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

/// How groups list their members: the two layouts the OpenLDAP fixture comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// `posixGroup` with `memberUid` names.
    Rfc2307,
    /// `groupOfNames` + auxiliary `posixGroup` with `member` DNs, plus [`NESTED_GROUPS`].
    Rfc2307bis,
}

/// A group of the RFC 2307bis fixture that lists other groups (by DN) besides users.
#[derive(Debug, Clone, Copy)]
pub struct NestedGroup {
    pub name: &'static str,
    pub gid: u32,
    pub users: &'static [&'static str],
    pub groups: &'static [&'static str],
}

/// Developers inside eng inside everyone: a chain two levels deep.
pub const ENG: NestedGroup = NestedGroup { name: "eng", gid: 10020, users: &[], groups: &["developers"] };
pub const EVERYONE: NestedGroup = NestedGroup { name: "everyone", gid: 10021, users: &[], groups: &["eng"] };
/// Two groups inside each other: a cycle the agent must end.
pub const LOOP_A: NestedGroup = NestedGroup { name: "loop-a", gid: 10022, users: &["alice"], groups: &["loop-b"] };
pub const LOOP_B: NestedGroup = NestedGroup { name: "loop-b", gid: 10023, users: &["bob"], groups: &["loop-a"] };
pub const NESTED_GROUPS: [NestedGroup; 4] = [ENG, EVERYONE, LOOP_A, LOOP_B];

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
    pub account: Account,
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
            account: u.account,
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
        account: Account::Active,
    });
    NAMED_USERS.into_iter().map(UserEntry::from).chain(bulk).collect()
}

/// A user written out by hand, by name.
pub fn named_user(name: &str) -> Option<User> {
    NAMED_USERS.into_iter().find(|u| u.name == name)
}

/// `uid=NAME,ou=people,dc=example,dc=org`: the DN slapd logs for a user's bind.
pub fn user_dn(name: &str) -> String {
    format!("uid={name},{PEOPLE_DN}")
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

/// Every group of the fixture in `schema`, members flattened through nested groups (sorted):
/// what `getent group` must show.
pub fn groups_in(schema: Schema) -> Vec<GroupEntry> {
    let mut all = groups();
    if schema == Schema::Rfc2307bis {
        all.extend(NESTED_GROUPS.iter().map(|n| GroupEntry { name: n.name.into(), gid: n.gid, members: Vec::new() }));
        let direct = all.clone();
        for group in &mut all {
            group.members = flattened_members(&direct, &group.name);
        }
    }
    all
}

/// The groups of `schema`'s fixture whose (flattened) members include `user`, as (name, gid).
pub fn supplementary_groups_in(schema: Schema, user: &str) -> Vec<(String, u32)> {
    groups_in(schema).into_iter().filter(|g| g.members.iter().any(|m| m == user)).map(|g| (g.name, g.gid)).collect()
}

/// `name`'s users and, through [`NESTED_GROUPS`], the users of every group inside it.
fn flattened_members(direct: &[GroupEntry], name: &str) -> Vec<String> {
    let mut seen_groups = vec![name.to_owned()];
    let mut pending = vec![name.to_owned()];
    let mut members = std::collections::BTreeSet::new();
    while let Some(group) = pending.pop() {
        if let Some(entry) = direct.iter().find(|g| g.name == group) {
            members.extend(entry.members.iter().cloned());
        }
        if let Some(nested) = NESTED_GROUPS.iter().find(|n| n.name == group) {
            members.extend(nested.users.iter().map(|u| u.to_string()));
            for inner in nested.groups {
                if !seen_groups.iter().any(|s| s == inner) {
                    seen_groups.push(inner.to_string());
                    pending.push(inner.to_string());
                }
            }
        }
    }
    members.into_iter().collect()
}

/// `cn=NAME,ou=groups,dc=example,dc=org`.
pub fn group_dn(name: &str) -> String {
    format!("cn={name},{GROUPS_DN}")
}

/// The whole directory as LDIF for `slapadd`, groups in RFC 2307 shape. `reader_password` is
/// the service account's.
pub fn ldif(reader_password: &str) -> String {
    ldif_in(Schema::Rfc2307, reader_password)
}

/// [`ldif`], groups in `schema`'s shape.
pub fn ldif_in(schema: Schema, reader_password: &str) -> String {
    let mut out = String::new();
    entry(
        &mut out,
        BASE_DN,
        &[("objectClass", "dcObject"), ("objectClass", "organization"), ("dc", "example"), ("o", "Example")],
    );
    entry(&mut out, PEOPLE_DN, &[("objectClass", "organizationalUnit"), ("ou", "people")]);
    entry(&mut out, GROUPS_DN, &[("objectClass", "organizationalUnit"), ("ou", "groups")]);
    entry(&mut out, POLICIES_DN, &[("objectClass", "organizationalUnit"), ("ou", "policies")]);
    let (min_length, max_failure) = (POLICY_MIN_LENGTH.to_string(), POLICY_MAX_FAILURE.to_string());
    entry(
        &mut out,
        DEFAULT_POLICY_DN,
        &[
            // pwdPolicy is auxiliary; device is a structural class from core.schema with just a cn.
            ("objectClass", "device"),
            ("objectClass", "pwdPolicy"),
            ("cn", "default"),
            ("pwdAttribute", "userPassword"),
            ("pwdLockout", "TRUE"),
            ("pwdMaxFailure", &max_failure),
            ("pwdMinLength", &min_length),
            // 2: refuse a password whose quality the server cannot check (a pre-hashed one).
            ("pwdCheckQuality", "2"),
            ("pwdAllowUserChange", "TRUE"),
        ],
    );
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
        let mut attrs: Vec<(&str, &str)> = vec![
            ("objectClass", "inetOrgPerson"),
            ("objectClass", "posixAccount"),
            ("objectClass", "shadowAccount"),
            ("uid", u.name.as_str()),
            ("cn", u.gecos.as_str()),
            ("sn", u.name.as_str()),
            ("uidNumber", uid.as_str()),
            ("gidNumber", gid.as_str()),
            ("gecos", u.gecos.as_str()),
            ("homeDirectory", u.home.as_str()),
            ("loginShell", u.shell.as_str()),
            ("userPassword", u.password.as_str()),
        ];
        attrs.extend(u.account.attributes().iter().copied());
        entry(&mut out, &user_dn(&u.name), &attrs);
    }
    match schema {
        Schema::Rfc2307 => {
            for g in groups() {
                let gid = g.gid.to_string();
                let mut attrs =
                    vec![("objectClass", "posixGroup"), ("cn", g.name.as_str()), ("gidNumber", gid.as_str())];
                attrs.extend(g.members.iter().map(|m| ("memberUid", m.as_str())));
                entry(&mut out, &group_dn(&g.name), &attrs);
            }
        }
        Schema::Rfc2307bis => {
            let plain = groups().into_iter().map(|g| (g.name, g.gid, g.members, Vec::new()));
            let nested = NESTED_GROUPS.iter().map(|n| {
                let users = n.users.iter().map(|u| u.to_string()).collect();
                (n.name.to_owned(), n.gid, users, n.groups.iter().map(|g| group_dn(g)).collect())
            });
            for (name, gid, users, groups) in plain.chain(nested) {
                bis_group(&mut out, &name, gid, &users, &groups);
            }
        }
    }
    out
}

/// A `groupOfNames` with the auxiliary `posixGroup`, listing users and groups by DN. A group
/// with no member lists itself: `groupOfNames` requires one, and sites do the same.
fn bis_group(out: &mut String, name: &str, gid: u32, users: &[String], groups: &[String]) {
    let (dn, gid) = (group_dn(name), gid.to_string());
    let mut members: Vec<String> = users.iter().map(|u| user_dn(u)).chain(groups.iter().cloned()).collect();
    if members.is_empty() {
        members.push(dn.clone());
    }
    let mut attrs =
        vec![("objectClass", "groupOfNames"), ("objectClass", "posixGroup"), ("cn", name), ("gidNumber", gid.as_str())];
    attrs.extend(members.iter().map(|m| ("member", m.as_str())));
    entry(out, &dn, &attrs);
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

/// Decodes standard base64 (padding optional, whitespace ignored); `None` if it is not base64.
pub fn base64_decode(input: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let (mut bits, mut count) = (0u32, 0u32);
    for byte in input.bytes().filter(|b| !b.is_ascii_whitespace() && *b != b'=') {
        let value = ALPHABET.iter().position(|&a| a == byte)?;
        bits = (bits << 6) | value as u32;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(out)
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
            assert_eq!(base64_decode(encoded).as_deref(), Some(plain.as_bytes()));
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
        assert_eq!(users.len(), 308);
        assert_eq!(USER_COUNT, 308);
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
        assert_eq!(entries, 6 + 308 + 6);
        assert_eq!(text.matches("\nmemberUid: ").count(), 5001 + 2 + 1 + 1);
    }

    #[test]
    fn account_states_and_passwords_are_as_the_tests_expect() {
        let text = ldif("pw");
        // Each entry's lines, without the blank line that ends it.
        let entry_of = |name: &str| {
            let start = text.find(&format!("dn: uid={name},ou=people,")).unwrap();
            text[start..].split("\n\n").next().unwrap().to_owned() + "\n"
        };
        assert!(entry_of("expired").contains("\nshadowExpire: 1\n"));
        let aged = entry_of("aged");
        assert!(aged.contains("\nshadowLastChange: 1\n") && aged.contains("\nshadowMax: 30\n"), "{aged}");
        assert!(entry_of("locked").contains("\npwdAccountLockedTime: 000001010000Z\n"));
        for plain in ["alice", "outsider", "changer"] {
            let e = entry_of(plain);
            assert!(!e.contains("shadowExpire") && !e.contains("shadowMax") && !e.contains("pwdAccount"), "{e}");
        }
        // The access rule tests rely on outsider being in no listed group, alice in developers.
        assert!(supplementary_groups("outsider").is_empty());
        assert!(supplementary_groups("alice").iter().any(|(g, _)| g == "developers"));
        // The password policy must not get in the way of logging in with a fixture password.
        assert!(users().iter().all(|u| u.password.chars().count() >= POLICY_MIN_LENGTH));
        assert!(CHANGER_NEW_PASSWORD.len() >= POLICY_MIN_LENGTH && CHANGER_NEW_PASSWORD != CHANGER.password);
        assert!(TOO_SHORT_PASSWORD.len() < POLICY_MIN_LENGTH);
        let uids: std::collections::BTreeSet<u32> = users().iter().map(|u| u.uid).collect();
        assert_eq!(uids.len(), USER_COUNT, "two users share a uid");
        assert_eq!(named_user("changer").map(|u| u.uid), Some(10008));
        assert_eq!(user_dn("alice"), "uid=alice,ou=people,dc=example,dc=org");
        assert!(text.contains("dn: cn=default,ou=policies,dc=example,dc=org\nobjectClass: device\n"));
    }
}
