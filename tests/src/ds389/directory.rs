//! What the 389 instance holds, in rfc2307bis shape: the fixture's named users, its small groups
//! as `groupOfNames` + `posixGroup` with `member` DNs, a nested chain and a membership cycle, the
//! reader and the ACIs; and the `cn=config` changes made before any of it is loaded.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::fixture::{self, Account, BASE_DN, GROUPS_DN, PEOPLE_DN, READER_DN, User, user_dn};

/// A group of the 389 instance: its direct members, users and groups, by name. Both kinds are
/// written as `member: <DN>`; the memberOf plugin resolves the nesting. The nested groups are
/// the OpenLDAP rfc2307bis fixture's, so one model of the data serves both servers.
pub use fixture::NestedGroup as DsGroup;
pub use fixture::{ENG, EVERYONE, LOOP_A, LOOP_B, NESTED_GROUPS};

/// The users: [`fixture::NAMED_USERS`] (no bulk users: loading stays under a second).
/// [`fixture::LOCKED`] is locked the 389 way, see [`account_attributes`].
pub const USERS: [User; 8] = fixture::NAMED_USERS;

/// What puts a user in its [`Account`] state on 389: the fixture's attributes, except that
/// OpenLDAP's `pwdAccountLockedTime` becomes `nsAccountLock: true` (an operational attribute:
/// returned only when asked for by name), which makes 389 refuse the bind with 53, "Account
/// inactivated", where slapd answers 49.
pub fn account_attributes(account: Account) -> &'static [(&'static str, &'static str)] {
    match account {
        Account::Locked => &[("nsAccountLock", "true")],
        other => other.attributes(),
    }
}

/// Every group: [`fixture::SMALL_GROUPS`] with the same members (`staff` and `empty` have
/// none: 389's `groupOfNames` has `member` as MAY, unlike RFC 4519), then [`NESTED_GROUPS`].
pub fn groups() -> Vec<DsGroup> {
    let small =
        fixture::SMALL_GROUPS.iter().map(|g| DsGroup { name: g.name, gid: g.gid, users: g.members, groups: &[] });
    small.chain(NESTED_GROUPS).collect()
}

pub use fixture::group_dn;

/// The groups `user` belongs to directly or through nesting: what the memberOf plugin writes
/// into the user's `memberOf`, and what an rfc2307bis initgroups should answer (besides the
/// primary group). Cycles end because a group is only ever added once.
pub fn transitive_groups(user: &str) -> BTreeSet<&'static str> {
    let all = groups();
    let mut found: BTreeSet<&'static str> = all.iter().filter(|g| g.users.contains(&user)).map(|g| g.name).collect();
    loop {
        let before = found.len();
        let outer: Vec<_> = all.iter().filter(|g| g.groups.iter().any(|inner| found.contains(inner))).collect();
        found.extend(outer.into_iter().map(|g| g.name));
        if found.len() == before {
            return found;
        }
    }
}

/// `cn=config` before the data: TLS on (the certificates are imported already) with simple binds
/// refused without it ("Confidentiality required", 13; anonymous operations in clear still pass
/// but see nothing); the access log unbuffered, so tests read it at once; users may change their
/// own password (the global policy; no quality checks: with `passwordCheckSyntax` 389 refuses
/// passwords containing the uid, as `changer-Second-Pass-6` does); the memberOf plugin on,
/// which takes effect at the next start, before the data is loaded; and fixed small caches
/// instead of ones sized from the host's RAM (1.5 GB of database cache on a 24 GB machine):
/// the same server everywhere, about 58 MB resident instead of 73. Autosizing is turned off in
/// a change of its own: while it is on, 389 refuses a cache size (53), even in the same change.
pub(crate) const CONFIG_LDIF: &str = "\
dn: cn=config
changetype: modify
replace: nsslapd-security
nsslapd-security: on
-
replace: nsslapd-require-secure-binds
nsslapd-require-secure-binds: on
-
replace: nsslapd-accesslog-logbuffering
nsslapd-accesslog-logbuffering: off
-
replace: passwordChange
passwordChange: on

dn: cn=MemberOf Plugin,cn=plugins,cn=config
changetype: modify
replace: nsslapd-pluginEnabled
nsslapd-pluginEnabled: on

dn: cn=config,cn=ldbm database,cn=plugins,cn=config
changetype: modify
replace: nsslapd-cache-autosize
nsslapd-cache-autosize: 0

dn: cn=config,cn=ldbm database,cn=plugins,cn=config
changetype: modify
replace: nsslapd-dbcachesize
nsslapd-dbcachesize: 8000000

dn: cn=userroot,cn=ldbm database,cn=plugins,cn=config
changetype: modify
replace: nsslapd-cachememsize
nsslapd-cachememsize: 10000000
-
replace: nsslapd-dncachememsize
nsslapd-dncachememsize: 10000000
";

/// Without ACIs only Directory Manager reads anything. The reader reads everything but
/// passwords (`nsAccountLock` and `memberOf` included); users read their own entry and write
/// their own password (Password Modify, RFC 3062, needs that too); binding needs no ACI.
const ACIS: [&str; 3] = [
    "(targetattr != \"userPassword\")(version 3.0; acl \"lanyard: the reader reads all but passwords\"; \
     allow (read, search, compare) userdn = \"ldap:///cn=reader,dc=example,dc=org\";)",
    "(targetattr != \"userPassword\")(version 3.0; acl \"lanyard: users read their own entry\"; \
     allow (read, search, compare) userdn = \"ldap:///self\";)",
    "(targetattr = \"userPassword\")(version 3.0; acl \"lanyard: users change their own password\"; \
     allow (write) userdn = \"ldap:///self\";)",
];

/// The directory as `ldapmodify` change records. Groups are added with their users only, and
/// their group members in a later modify: memberOf only follows a `member` whose entry exists,
/// so each nested or cyclic link is made once both ends are there.
pub(crate) fn data_ldif(reader_password: &str) -> String {
    let mut out = String::new();
    let mut base =
        vec![("objectClass", "dcObject"), ("objectClass", "organization"), ("dc", "example"), ("o", "Example")];
    base.extend(ACIS.iter().map(|aci| ("aci", *aci)));
    add(&mut out, BASE_DN, &base);
    add(&mut out, PEOPLE_DN, &[("objectClass", "organizationalUnit"), ("ou", "people")]);
    add(&mut out, GROUPS_DN, &[("objectClass", "organizationalUnit"), ("ou", "groups")]);
    add(
        &mut out,
        READER_DN,
        &[
            ("objectClass", "organizationalRole"),
            ("objectClass", "simpleSecurityObject"),
            ("cn", "reader"),
            ("userPassword", reader_password),
        ],
    );
    for u in USERS {
        let (uid, gid) = (u.uid.to_string(), u.gid.to_string());
        let mut attrs = vec![
            ("objectClass", "inetOrgPerson"),
            ("objectClass", "posixAccount"),
            ("objectClass", "shadowAccount"),
            // Allows the memberOf values the plugin writes.
            ("objectClass", "nsMemberOf"),
            ("uid", u.name),
            ("cn", u.gecos),
            ("sn", u.name),
            ("uidNumber", &uid),
            ("gidNumber", &gid),
            ("gecos", u.gecos),
            ("homeDirectory", u.home),
            ("loginShell", u.shell),
            // Sent in clear over ldapi; 389 stores it hashed (PBKDF2_SHA256).
            ("userPassword", u.password),
        ];
        attrs.extend(account_attributes(u.account).iter().copied());
        add(&mut out, &user_dn(u.name), &attrs);
    }
    let all = groups();
    for g in &all {
        let gid = g.gid.to_string();
        let users: Vec<String> = g.users.iter().map(|u| user_dn(u)).collect();
        let mut attrs = vec![
            ("objectClass", "groupOfNames"),
            ("objectClass", "posixGroup"),
            // Groups get memberOf too: `developers` is in eng and everyone.
            ("objectClass", "nsMemberOf"),
            ("cn", g.name),
            ("gidNumber", &gid),
        ];
        attrs.extend(users.iter().map(|dn| ("member", dn.as_str())));
        add(&mut out, &group_dn(g.name), &attrs);
    }
    for g in all.iter().filter(|g| !g.groups.is_empty()) {
        let _ = writeln!(out, "dn: {}\nchangetype: modify\nadd: member", group_dn(g.name));
        for inner in g.groups {
            let _ = writeln!(out, "member: {}", group_dn(inner));
        }
        out.push('\n');
    }
    out
}

fn add(out: &mut String, dn: &str, attrs: &[(&str, &str)]) {
    line(out, "dn", dn);
    out.push_str("changetype: add\n");
    for (name, value) in attrs {
        line(out, name, value);
    }
    out.push('\n');
}

/// `name: value`, or `name:: base64` when the value is not an LDIF SAFE-STRING (RFC 2849):
/// jose's gecos and password.
fn line(out: &mut String, name: &str, value: &str) {
    let safe = !value.starts_with([' ', ':', '<'])
        && !value.ends_with(' ')
        && value.bytes().all(|b| (1..0x80).contains(&b) && b != b'\n' && b != b'\r');
    if safe {
        let _ = writeln!(out, "{name}: {value}");
    } else {
        let _ = writeln!(out, "{name}:: {}", fixture::base64(value.as_bytes()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_and_cycles_resolve_to_the_expected_groups() {
        let alice: Vec<_> = transitive_groups("alice").into_iter().collect();
        assert_eq!(alice, ["admins", "developers", "eng", "everyone", "loop-a", "loop-b", "ops"]);
        let bob: Vec<_> = transitive_groups("bob").into_iter().collect();
        assert_eq!(bob, ["developers", "eng", "everyone", "loop-a", "loop-b"]);
        assert!(transitive_groups("outsider").is_empty());
        let gids: BTreeSet<u32> = groups().iter().map(|g| g.gid).collect();
        assert_eq!(gids.len(), groups().len(), "two groups share a gid");
    }

    #[test]
    fn ldif_links_groups_after_adding_them_and_locks_the_389_way() {
        let text = data_ldif("pw");
        let loop_link = "dn: cn=loop-a,ou=groups,dc=example,dc=org\nchangetype: modify\nadd: member\n\
                         member: cn=loop-b,ou=groups,dc=example,dc=org\n";
        let link_at = text.find(loop_link).expect("loop-a is linked to loop-b");
        let added_at = text.find("dn: cn=loop-b,ou=groups,dc=example,dc=org\nchangetype: add\n").unwrap();
        assert!(added_at < link_at, "loop-b is linked before it exists");
        assert!(text.contains("dn: cn=eng,ou=groups,dc=example,dc=org\nchangetype: modify\nadd: member\n"));
        assert!(text.contains("\nnsAccountLock: true\n") && !text.contains("pwdAccountLockedTime"));
        assert!(text.contains("gecos:: Sm9zw6kgTcO8bGxlci3DhnLDuA==\n"), "jose's gecos is not base64");
        assert_eq!(text.matches("\naci: ").count(), ACIS.len());
    }
}
