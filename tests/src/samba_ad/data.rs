//! The AD domain's contents: [`crate::fixture`]'s named users (same names, uids, gids, gecos,
//! homes, shells, passwords) as AD users with RFC 2307 attributes, its groups plus a nested
//! chain, a group too big for one AD range, the service account, and the DNS records provision
//! leaves out. All of it goes into `sam.ldb` with `ldbmodify` before the DC's first start.
//!
//! AD conventions the tests meet here: a user's RDN is its full name (`CN=Alice Liddell`), the
//! login name is `sAMAccountName`; everyone's primary group is Domain Users (`primaryGroupID`
//! 513), and `gidNumber` 10000 points at `staff`; group members are DNs (`member`).

use std::fmt::Write as _;

use crate::fixture::{self, ADMINS, AGED, ALICE, BOB, CHANGER, DEVELOPERS, EXPIRED, JOSE, OPS, OUTSIDER, STAFF, User};

pub const REALM: &str = "EXAMPLE.ORG";
/// The NetBIOS domain name (`EXAMPLE\alice` binds).
pub const NETBIOS_DOMAIN: &str = "EXAMPLE";
pub const DNS_DOMAIN: &str = "example.org";
/// The DC's host name; provision's SRV records point at [`DC_FQDN`].
pub const DC_HOST_NAME: &str = "dc1";
pub const DC_FQDN: &str = "dc1.example.org";
pub const BASE_DN: &str = "DC=example,DC=org";
pub const USERS_DN: &str = "CN=Users,DC=example,DC=org";
/// The service account (password per run, in `bind.secret`).
pub const READER_DN: &str = "CN=reader,CN=Users,DC=example,DC=org";
/// Provision's administrator (password per run, in `admin.secret`).
pub const ADMIN_DN: &str = "CN=Administrator,CN=Users,DC=example,DC=org";

/// `minPwdLength`; as in the slapd fixture, so [`fixture::TOO_SHORT_PASSWORD`] is refused.
pub const MIN_PASSWORD_LENGTH: usize = fixture::POLICY_MIN_LENGTH;
/// `maxPwdAge` of the domain.
pub const MAX_PASSWORD_AGE_DAYS: u64 = 30;
/// How long before the load [`AGED`]'s password was set (its `pwdLastSet`).
pub const AGED_PASSWORD_SET_DAYS_AGO: u64 = 60;
/// `accountExpires` of [`EXPIRED`]: 2 January 1970 (the slapd fixture's `shadowExpire: 1`), in
/// 100 ns units since 1601.
pub const EXPIRED_ACCOUNT_EXPIRES: u64 = (11_644_473_600 + 86_400) * 10_000_000;

/// Refused by `userAccountControl` ACCOUNTDISABLE (514): binds fail with `data 533`.
pub const DISABLED: User = User {
    name: "disabled",
    uid: 10009,
    gid: 10000,
    gecos: "Disabled Account",
    home: "/home/disabled",
    shell: "/bin/bash",
    password: "disabled-Turned-Off-9",
    account: fixture::Account::Active,
};
/// `pwdLastSet: 0`, "must change the password at next logon": binds fail with `data 773`.
pub const MUST_CHANGE: User = User {
    name: "mustchange",
    uid: 10010,
    gid: 10000,
    gecos: "Must Change",
    home: "/home/mustchange",
    shell: "/bin/bash",
    password: "mustchange-Pass-8",
    account: fixture::Account::Active,
};

/// What AD holds against an account. (The `account` field of a [`User`] describes the slapd
/// fixture's attributes and is not used here.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdState {
    Active,
    /// `accountExpires` in the past.
    Expired,
    /// `userAccountControl: 514` (ACCOUNTDISABLE).
    Disabled,
    /// `pwdLastSet` [`AGED_PASSWORD_SET_DAYS_AGO`] days back, past the domain's `maxPwdAge`.
    PasswordExpired,
    /// `pwdLastSet: 0`.
    MustChange,
}

impl AdState {
    /// The `data NNN` sub-code in the "AcceptSecurityContext error" text of a simple bind with
    /// the right password (rc 49 in every case); `None` when the bind succeeds. A wrong password
    /// is `52e` whatever the state.
    pub fn bind_refusal(self) -> Option<&'static str> {
        match self {
            AdState::Active => None,
            AdState::Expired => Some("701"),
            AdState::Disabled => Some("533"),
            AdState::PasswordExpired => Some("532"),
            AdState::MustChange => Some("773"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct AdUser {
    pub user: User,
    pub state: AdState,
}

const fn ad(user: User, state: AdState) -> AdUser {
    AdUser { user, state }
}

/// The named users (the slapd fixture's but `locked`, plus [`DISABLED`] and [`MUST_CHANGE`]).
pub const USERS: [AdUser; 9] = [
    ad(ALICE, AdState::Active),
    ad(BOB, AdState::Active),
    ad(JOSE, AdState::Active),
    ad(EXPIRED, AdState::Expired),
    ad(AGED, AdState::PasswordExpired),
    ad(OUTSIDER, AdState::Active),
    ad(CHANGER, AdState::Active),
    ad(DISABLED, AdState::Disabled),
    ad(MUST_CHANGE, AdState::MustChange),
];

/// A group: users by login name, then groups by name (nesting).
#[derive(Debug, Clone, Copy)]
pub struct AdGroup {
    pub name: &'static str,
    pub gid: u32,
    pub users: &'static [&'static str],
    pub groups: &'static [&'static str],
}

const fn from_fixture(g: fixture::Group) -> AdGroup {
    AdGroup { name: g.name, gid: g.gid, users: g.members, groups: &[] }
}

/// Holds the `developers` group: a member only through nesting.
pub const ENG: AdGroup = AdGroup { name: "eng", gid: 10020, users: &[], groups: &["developers"] };
/// Holds `eng`: alice and bob are members two levels down.
pub const EVERYONE: AdGroup = AdGroup { name: "everyone", gid: 10021, users: &[], groups: &["eng"] };
/// [`BIG_USERS`] generated users, then alice: more than one AD range of 1,500 values.
pub const BIG_GROUP: AdGroup = AdGroup { name: "biggroup", gid: 10100, users: &["alice"], groups: &[] };
/// In creation order: a nested group comes after its members.
pub const GROUPS: [AdGroup; 7] =
    [from_fixture(STAFF), from_fixture(DEVELOPERS), from_fixture(OPS), from_fixture(ADMINS), ENG, EVERYONE, BIG_GROUP];

/// `big0001` .. `big1600`, uids 30001 .., members of [`BIG_GROUP`]. No password: AD makes them
/// disabled (`userAccountControl: 546`); they exist for enumeration and range retrieval.
pub const BIG_USERS: u32 = 1600;
pub const BIG_FIRST_UID: u32 = 30001;
pub const BIG_GROUP_MEMBER_COUNT: usize = BIG_USERS as usize + BIG_GROUP.users.len();

pub fn big_user_name(i: u32) -> String {
    format!("big{i:04}")
}

/// A named user by login name.
pub fn named_user(name: &str) -> Option<AdUser> {
    USERS.into_iter().find(|u| u.user.name == name)
}

/// The DN of a named user (`CN=<gecos>,CN=Users,...`), a big user, `reader` or a group.
pub fn dn_of(name: &str) -> String {
    match named_user(name) {
        Some(u) => format!("CN={},{USERS_DN}", u.user.gecos),
        None => format!("CN={name},{USERS_DN}"),
    }
}

/// `name@example.org`: the userPrincipalName, which binds like the DN.
pub fn upn(name: &str) -> String {
    format!("{name}@{DNS_DOMAIN}")
}

/// `unicodePwd`'s value for `password` as LDIF wants it: the password in double quotes,
/// UTF-16LE, base64.
pub fn unicode_pwd(password: &str) -> String {
    let quoted: Vec<u8> = format!("\"{password}\"").encode_utf16().flat_map(u16::to_le_bytes).collect();
    fixture::base64(&quoted)
}

/// A user's own password change: delete the old `unicodePwd`, add the new one, in one modify
/// (AD's only LDAP way; it needs TLS).
pub fn password_change_ldif(dn: &str, old: &str, new: &str) -> String {
    let mut out = String::new();
    line(&mut out, "dn", dn);
    let _ = write!(
        out,
        "changetype: modify\ndelete: unicodePwd\nunicodePwd:: {}\n-\nadd: unicodePwd\nunicodePwd:: {}\n-\n",
        unicode_pwd(old),
        unicode_pwd(new)
    );
    out
}

/// Everything but [`AGED`], for one `ldbmodify` on `sam.ldb`: the password policy first (so
/// the short fixture passwords pass), then users, groups and DNS records.
pub(crate) fn ldif(reader_password: &str) -> String {
    let mut out = String::new();
    let max_age = format!("-{}", MAX_PASSWORD_AGE_DAYS * 86_400 * 10_000_000);
    let min_length = MIN_PASSWORD_LENGTH.to_string();
    // pwdProperties 0: no complexity rule; lockoutThreshold 0: wrong passwords never lock.
    let policy = [
        ("pwdProperties", "0"),
        ("minPwdLength", min_length.as_str()),
        ("pwdHistoryLength", "0"),
        ("minPwdAge", "0"),
        ("maxPwdAge", max_age.as_str()),
        ("lockoutThreshold", "0"),
    ];
    line(&mut out, "dn", BASE_DN);
    out.push_str("changetype: modify\n");
    for (name, value) in policy {
        let _ = writeln!(out, "replace: {name}\n{name}: {value}\n-");
    }
    out.push('\n');

    let reader_pwd = unicode_pwd(reader_password);
    add(
        &mut out,
        READER_DN,
        &[
            ("objectClass", "user"),
            ("sAMAccountName", "reader"),
            ("userPrincipalName", &upn("reader")),
            ("userAccountControl", "512"),
        ],
        &[("unicodePwd", &reader_pwd)],
    );
    for u in USERS.iter().filter(|u| u.state != AdState::PasswordExpired) {
        user(&mut out, u);
    }
    for i in 1..=BIG_USERS {
        let name = big_user_name(i);
        let (uid, gecos, home) =
            ((BIG_FIRST_UID + i - 1).to_string(), format!("Big User {i}"), format!("/home/{name}"));
        let gid = STAFF.gid.to_string();
        let attrs = posix(&name, &uid, &gid, &gecos, &home, "/bin/sh");
        add(&mut out, &dn_of(&name), &attrs.iter().map(|(n, v)| (*n, v.as_str())).collect::<Vec<_>>(), &[]);
    }
    for g in GROUPS {
        group(&mut out, &g);
    }
    // Provision gives the DC no address record when its only address is 127.0.0.1; the SRV
    // records it writes name dc1.example.org, which must then resolve.
    let a_record = fixture::base64(&dns_a_record([127, 0, 0, 1]));
    let zone = format!("DC={DNS_DOMAIN},CN=MicrosoftDNS,DC=DomainDnsZones,{BASE_DN}");
    add(
        &mut out,
        &format!("DC={DC_HOST_NAME},{zone}"),
        &[("objectClass", "top"), ("objectClass", "dnsNode")],
        &[("dnsRecord", &a_record)],
    );
    let _ = write!(out, "dn: DC=@,{zone}\nchangetype: modify\nadd: dnsRecord\ndnsRecord:: {a_record}\n-\n\n");
    out
}

/// [`AGED`] alone, for an `ldbmodify` whose clock runs [`AGED_PASSWORD_SET_DAYS_AGO`] days
/// behind: Samba refuses any `pwdLastSet` but 0 and -1, even with the relax control, and
/// stamps the time of the password change.
pub(crate) fn aged_ldif() -> String {
    let mut out = String::new();
    for u in USERS.iter().filter(|u| u.state == AdState::PasswordExpired) {
        user(&mut out, u);
    }
    out
}

fn user(out: &mut String, u: &AdUser) {
    let AdUser { user, state } = *u;
    let (uid, gid) = (user.uid.to_string(), user.gid.to_string());
    let mut attrs = posix(user.name, &uid, &gid, user.gecos, user.home, user.shell);
    // Without an explicit value AD creates every account disabled (546).
    let control = if state == AdState::Disabled { "514" } else { "512" };
    attrs.push(("userAccountControl", control.into()));
    attrs.push(("userPrincipalName", upn(user.name)));
    match state {
        AdState::Expired => attrs.push(("accountExpires", EXPIRED_ACCOUNT_EXPIRES.to_string())),
        AdState::MustChange => attrs.push(("pwdLastSet", "0".into())),
        AdState::Active | AdState::Disabled | AdState::PasswordExpired => {}
    }
    let attrs: Vec<(&str, &str)> = attrs.iter().map(|(n, v)| (*n, v.as_str())).collect();
    add(out, &dn_of(user.name), &attrs, &[("unicodePwd", &unicode_pwd(user.password))]);
}

fn posix(name: &str, uid: &str, gid: &str, gecos: &str, home: &str, shell: &str) -> Vec<(&'static str, String)> {
    vec![
        ("objectClass", "user".into()),
        ("sAMAccountName", name.into()),
        ("displayName", gecos.into()),
        ("uidNumber", uid.into()),
        ("gidNumber", gid.into()),
        ("gecos", gecos.into()),
        ("unixHomeDirectory", home.into()),
        ("loginShell", shell.into()),
    ]
}

fn group(out: &mut String, g: &AdGroup) {
    let gid = g.gid.to_string();
    let mut members: Vec<String> = Vec::new();
    if g.name == BIG_GROUP.name {
        members.extend((1..=BIG_USERS).map(|i| dn_of(&big_user_name(i))));
    }
    members.extend(g.users.iter().chain(g.groups).map(|m| dn_of(m)));
    let mut attrs = vec![("objectClass", "group"), ("sAMAccountName", g.name), ("gidNumber", gid.as_str())];
    attrs.extend(members.iter().map(|m| ("member", m.as_str())));
    add(out, &dn_of(g.name), &attrs, &[]);
}

/// One `changetype: add` record; `encoded` values are already base64.
fn add(out: &mut String, dn: &str, attrs: &[(&str, &str)], encoded: &[(&str, &str)]) {
    line(out, "dn", dn);
    out.push_str("changetype: add\n");
    for (name, value) in attrs {
        line(out, name, value);
    }
    for (name, value) in encoded {
        let _ = writeln!(out, "{name}:: {value}");
    }
    out.push('\n');
}

/// `name: value`, or `name:: base64` for anything but plain printable ASCII (RFC 2849).
fn line(out: &mut String, name: &str, value: &str) {
    let plain = value.bytes().all(|b| (0x20..0x7f).contains(&b)) && !value.starts_with([' ', ':', '<']);
    if plain && !value.ends_with(' ') {
        let _ = writeln!(out, "{name}: {value}");
    } else {
        let _ = writeln!(out, "{name}:: {}", fixture::base64(value.as_bytes()));
    }
}

/// A static A record as AD stores it in `dnsRecord` (MS-DNSP 2.3.2.2, `DnssrvRpcRecord`):
/// data length and type (little-endian), version 5, rank 0xF0 (zone), flags, serial 1, TTL
/// 900 s (big-endian), reserved, timestamp 0 (static), then the address.
fn dns_a_record(ip: [u8; 4]) -> Vec<u8> {
    let mut record = Vec::with_capacity(28);
    record.extend_from_slice(&4u16.to_le_bytes());
    record.extend_from_slice(&1u16.to_le_bytes());
    record.extend_from_slice(&[5, 0xF0, 0, 0]);
    record.extend_from_slice(&1u32.to_le_bytes());
    record.extend_from_slice(&900u32.to_be_bytes());
    record.extend_from_slice(&[0; 8]);
    record.extend_from_slice(&ip);
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_a_record_matches_what_samba_packs() {
        // `ndr_pack(samba.provision.sambadns.ARecord("127.0.0.1"))` from Samba 4.17's Python.
        let samba = "0400010005f00000010000000000038400000000000000007f000001";
        let ours: String = dns_a_record([127, 0, 0, 1]).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(ours, samba);
    }

    #[test]
    fn unicode_pwd_is_quoted_utf16le_in_base64() {
        // "\"ab\"" in UTF-16LE: 22 00 61 00 62 00 22 00.
        assert_eq!(unicode_pwd("ab"), fixture::base64(&[0x22, 0, 0x61, 0, 0x62, 0, 0x22, 0]));
        let ldif = password_change_ldif(&dn_of("changer"), "old", "new");
        assert!(ldif.starts_with("dn: CN=Password Changer,CN=Users,DC=example,DC=org\nchangetype: modify\ndelete: "));
        assert!(ldif.contains(&format!("add: unicodePwd\nunicodePwd:: {}\n-\n", unicode_pwd("new"))));
    }

    #[test]
    fn users_keep_the_fixture_values_and_ad_names() {
        let text = ldif("reader-pw");
        assert_eq!(dn_of("alice"), "CN=Alice Liddell,CN=Users,DC=example,DC=org");
        assert_eq!(dn_of("big0001"), "CN=big0001,CN=Users,DC=example,DC=org");
        let alice = text.split("\n\n").find(|e| e.starts_with("dn: CN=Alice Liddell,")).unwrap();
        for want in ["sAMAccountName: alice", "uidNumber: 10001", "gidNumber: 10000", "unixHomeDirectory: /home/alice"]
        {
            assert!(alice.contains(want), "{want} missing:\n{alice}");
        }
        assert!(alice.contains(&format!("unicodePwd:: {}", unicode_pwd(ALICE.password))), "{alice}");
        // José's DN and gecos are not ASCII: base64 in LDIF.
        assert!(text.contains(&format!("dn:: {}\n", fixture::base64(dn_of("jose").as_bytes()))));
        // AGED is loaded on its own, under a shifted clock.
        assert!(!text.contains("sAMAccountName: aged\n") && aged_ldif().contains("sAMAccountName: aged\n"));
        let uids: std::collections::BTreeSet<u32> = USERS.iter().map(|u| u.user.uid).collect();
        assert_eq!(uids.len(), USERS.len());
        assert!(USERS.iter().all(|u| u.user.password.chars().count() >= MIN_PASSWORD_LENGTH));
        // An RDN taken from gecos must need no escaping.
        assert!(USERS.iter().all(|u| !u.user.gecos.contains([',', '+', '"', '\\', '<', '>', ';', '='])));
    }

    #[test]
    fn groups_list_members_as_dns_after_their_members() {
        let text = ldif("pw");
        let big = text.split("\n\n").find(|e| e.contains("sAMAccountName: biggroup\n")).unwrap();
        assert_eq!(big.matches("\nmember: ").count(), BIG_GROUP_MEMBER_COUNT);
        assert!(big.contains("\nmember: CN=Alice Liddell,CN=Users,DC=example,DC=org"));
        let eng = text.find("sAMAccountName: eng\n").unwrap();
        assert!(text.find("sAMAccountName: developers\n").unwrap() < eng);
        assert!(text.find("sAMAccountName: everyone\n").unwrap() > eng);
        assert!(text.contains("member: CN=developers,CN=Users,DC=example,DC=org\n"));
        // Ordered so that every member exists before the group that names it.
        assert!(text.find("sAMAccountName: big1600\n").unwrap() < text.find("sAMAccountName: biggroup\n").unwrap());
    }
}
