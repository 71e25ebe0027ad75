//! LDAP entries to `passwd` and `group` records (RFC 2307, attribute names from the config).
//!
//! An entry that cannot be represented faithfully is refused with a reason rather than patched:
//! a name that is not a valid login name, a missing or out-of-range id, a NUL byte (C strings
//! end there) or a line break (it splits `/etc/passwd`-format output). uid 0 and gid 0 are never
//! taken from the directory: root is the machine's own.

use std::collections::{HashMap, HashSet};

use lanyard_proto::name::is_valid_name;
use lanyard_proto::{Group, Passwd};
use ldap3::SearchEntry;

use super::ad::{self, Sid};
use crate::config::{GroupMap, IdMapping, UserMap};

/// The attributes a user search asks for.
pub fn user_attributes(map: &UserMap) -> Vec<String> {
    let mut attrs = vec![
        map.name.clone(),
        map.uid_number.clone(),
        map.gid_number.clone(),
        map.gecos.clone(),
        map.home.clone(),
        map.shell.clone(),
    ];
    // gecos falls back to cn, as nslcd does: many directories fill only cn.
    attrs.push("cn".into());
    attrs.extend(map.login_alias.clone());
    if map.id_mapping.is_some() {
        attrs.extend(ID_MAPPING_USER_ATTRIBUTES.map(String::from));
    }
    attrs
}

/// The attributes a group search asks for.
pub fn group_attributes(map: &GroupMap) -> Vec<String> {
    let mut attrs = vec![map.name.clone(), map.gid_number.clone(), map.member.clone()];
    attrs.extend(map.member_dn.clone());
    if map.id_mapping.is_some() {
        attrs.push("objectSid".into());
    }
    attrs
}

/// Maps one entry to a user. With `wanted`, the entry must carry that exact name (LDAP matched
/// it case-insensitively; `ALICE` must not become `alice`).
pub fn user(attrs: &HashMap<String, Vec<String>>, map: &UserMap, wanted: Option<&str>) -> Result<Passwd, String> {
    let ids = (id(attrs, &map.uid_number)?, id(attrs, &map.gid_number)?);
    user_with_ids(attrs, map, wanted, ids, None)
}

/// [`user`] for a whole entry: with `map.id_mapping`, the uid comes from `objectSid` and the
/// primary gid from `primaryGroupID`, and a missing home or shell from the mapping's defaults.
/// `domain` is the mapped domain's SID: an account of any other (a BUILTIN group, another
/// domain's account in a Global Catalog) has no mapped id, as RIDs repeat across domains.
pub fn user_entry(
    entry: &SearchEntry,
    map: &UserMap,
    wanted: Option<&str>,
    domain: Option<&Sid>,
) -> Result<Passwd, String> {
    let Some(mapping) = &map.id_mapping else { return user(&entry.attrs, map, wanted) };
    let rid = domain_rid(entry, domain)?;
    let primary = id(&entry.attrs, "primaryGroupID")?;
    let mapped = |rid| ad::mapped_id(mapping.offset, rid).ok_or_else(|| format!("RID {rid} is past the id range"));
    user_with_ids(&entry.attrs, map, wanted, (mapped(rid)?, mapped(primary)?), Some(mapping))
}

/// The attributes [`user_entry`] reads for ids mapped from SIDs.
const ID_MAPPING_USER_ATTRIBUTES: [&str; 2] = ["objectSid", "primaryGroupID"];

fn user_with_ids(
    attrs: &HashMap<String, Vec<String>>,
    map: &UserMap,
    wanted: Option<&str>,
    (uid, gid): (u32, u32),
    defaults: Option<&IdMapping>,
) -> Result<Passwd, String> {
    let name = pick_name(values(attrs, &map.name), wanted)?;
    if uid == 0 || gid == 0 {
        return Err("uid 0 and primary gid 0 are refused from the directory".into());
    }
    let gecos = first_value(attrs, &map.gecos).or_else(|| first_value(attrs, "cn")).unwrap_or_default();
    let home = match (first_value(attrs, &map.home), defaults) {
        (Some(home), _) => home.to_owned(),
        (None, Some(defaults)) => defaults.home.replace("{user}", &name),
        (None, None) => String::new(),
    };
    let shell = first_value(attrs, &map.shell).or(defaults.map(|d| d.shell.as_str())).unwrap_or_default();
    let passwd = Passwd { name, uid, gid, gecos: gecos.to_owned(), home, shell: shell.to_owned() };
    for (field, value) in [("gecos", &passwd.gecos), ("home", &passwd.home), ("shell", &passwd.shell)] {
        check_text(field, value)?;
    }
    Ok(passwd)
}

/// Maps one entry to a group. Members that are not valid names are left out; members given
/// by DN (`map.member_dn`) are not resolved here (see [`member_dns`]).
pub fn group(attrs: &HashMap<String, Vec<String>>, map: &GroupMap, wanted: Option<&str>) -> Result<Group, String> {
    group_with_gid(attrs, map, wanted, id(attrs, &map.gid_number)?)
}

fn group_with_gid(
    attrs: &HashMap<String, Vec<String>>,
    map: &GroupMap,
    wanted: Option<&str>,
    gid: u32,
) -> Result<Group, String> {
    let name = pick_name(values(attrs, &map.name), wanted)?;
    if gid == 0 {
        return Err("gid 0 is refused from the directory".into());
    }
    let mut seen = HashSet::new();
    let members =
        values(attrs, &map.member).iter().filter(|m| is_valid_name(m) && seen.insert(m.as_str())).cloned().collect();
    Ok(Group { name, gid, members })
}

/// [`group`] for a whole entry: with `map.id_mapping`, the gid comes from `objectSid`.
pub fn group_entry(
    entry: &SearchEntry,
    map: &GroupMap,
    wanted: Option<&str>,
    domain: Option<&Sid>,
) -> Result<Group, String> {
    let mut group = match &map.id_mapping {
        None => return group(&entry.attrs, map, wanted),
        // The gid below replaces this one; `group` must not refuse a group for lacking it.
        Some(_) => group_with_gid(&entry.attrs, map, wanted, u32::MAX)?,
    };
    group.gid = gid_entry(entry, map, domain)?;
    Ok(group)
}

/// [`gid`] for a whole entry (see [`group_entry`]).
pub fn gid_entry(entry: &SearchEntry, map: &GroupMap, domain: Option<&Sid>) -> Result<u32, String> {
    match &map.id_mapping {
        None => gid(&entry.attrs, map),
        Some(mapping) => {
            let rid = domain_rid(entry, domain)?;
            ad::mapped_id(mapping.offset, rid).ok_or_else(|| format!("RID {rid} is past the id range"))
        }
    }
}

/// The RID of the entry's `objectSid`, which must be an account of `domain`.
fn domain_rid(entry: &SearchEntry, domain: Option<&Sid>) -> Result<u32, String> {
    let sid = object_sid(entry)?;
    let domain = domain.ok_or("the mapped domain's SID is not known")?;
    if sid.domain().as_ref() != Some(domain) {
        return Err(format!("{sid} is not an account of the mapped domain {domain}"));
    }
    Ok(sid.rid())
}

/// The entry's `objectSid`.
pub fn object_sid(entry: &SearchEntry) -> Result<Sid, String> {
    binary_values(entry, "objectSid").first().and_then(|v| Sid::parse(v)).ok_or_else(|| "no valid objectSid".into())
}

/// The values of a binary attribute (`objectSid`, `tokenGroups`). ldap3 keeps a value that
/// happens to be valid UTF-8 among the text attributes: both are read.
pub fn binary_values(entry: &SearchEntry, name: &str) -> Vec<Vec<u8>> {
    let binary = entry.bin_attrs.iter().filter(|(key, _)| key.eq_ignore_ascii_case(name)).flat_map(|(_, v)| v.clone());
    binary.chain(values(&entry.attrs, name).iter().map(|v| v.as_bytes().to_vec())).collect()
}

/// The values of the group's DN-valued member attribute (none without `map.member_dn`).
pub fn member_dns(attrs: &HashMap<String, Vec<String>>, map: &GroupMap) -> Vec<String> {
    map.member_dn.as_deref().map_or_else(Vec::new, |attribute| values(attrs, attribute).to_vec())
}

/// Whether the user entry carries exactly `alias` in `map.login_alias` (LDAP matched it
/// without regard to case). The entry is then known by its own name, not the alias.
pub fn has_alias(attrs: &HashMap<String, Vec<String>>, map: &UserMap, alias: &str) -> bool {
    map.login_alias.as_deref().is_some_and(|attribute| values(attrs, attribute).iter().any(|a| a == alias))
}

/// The group's members by name (`map.member`), valid names only.
pub fn group_member_names(attrs: &HashMap<String, Vec<String>>, map: &GroupMap) -> Vec<String> {
    values(attrs, &map.member).iter().filter(|m| is_valid_name(m)).cloned().collect()
}

/// The first valid login name among the user entry's names.
pub fn user_name(attrs: &HashMap<String, Vec<String>>, map: &UserMap) -> Option<String> {
    values(attrs, &map.name).iter().find(|n| is_valid_name(n)).cloned()
}

/// The gid of a group entry found by membership.
pub fn gid(attrs: &HashMap<String, Vec<String>>, map: &GroupMap) -> Result<u32, String> {
    id(attrs, &map.gid_number)
}

/// Servers return attribute names in their own case (`uidnumber` asked, `uidNumber` returned).
fn values<'a>(attrs: &'a HashMap<String, Vec<String>>, name: &str) -> &'a [String] {
    attrs.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map_or(&[], |(_, values)| values.as_slice())
}

/// The first value of `name` (any case), if the entry has one.
pub fn first_value<'a>(attrs: &'a HashMap<String, Vec<String>>, name: &str) -> Option<&'a str> {
    values(attrs, name).first().map(String::as_str)
}

fn pick_name(names: &[String], wanted: Option<&str>) -> Result<String, String> {
    let found = match wanted {
        Some(wanted) => names.iter().find(|n| *n == wanted),
        None => names.iter().find(|n| is_valid_name(n)),
    };
    match found {
        Some(name) if is_valid_name(name) => Ok(name.clone()),
        Some(name) => Err(format!("name {name:?} is not a valid login or group name")),
        None if wanted.is_some() => Err("no value matches the requested name exactly".into()),
        None => Err(format!("no valid name among {names:?}")),
    }
}

fn id(attrs: &HashMap<String, Vec<String>>, attribute: &str) -> Result<u32, String> {
    let text = first_value(attrs, attribute).ok_or_else(|| format!("no {attribute}"))?;
    text.trim().parse().map_err(|_| format!("{attribute} {text:?} is not a number from 0 to 4294967295"))
}

fn check_text(field: &str, value: &str) -> Result<(), String> {
    if value.contains(['\0', '\n', '\r']) {
        return Err(format!("{field} contains a NUL byte or a line break"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn maps() -> (UserMap, GroupMap) {
        let config = Config::parse("t.toml".as_ref(), "[directory]\nuris=[\"ldap://x\"]\nbase=\"dc=x\"\n").unwrap();
        (config.directory.users, config.directory.groups)
    }

    fn entry(pairs: &[(&str, &[&str])]) -> HashMap<String, Vec<String>> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect())).collect()
    }

    #[test]
    fn a_posix_account_maps_to_passwd() {
        let (users, _) = maps();
        let attrs = entry(&[
            ("uid", &["alice"]),
            ("uidNumber", &["10001"]),
            ("gidnumber", &["10000"]),
            ("gecos", &["Alice Ærø"]),
            ("homeDirectory", &["/home/alice"]),
            ("loginShell", &["/bin/bash"]),
        ]);
        let passwd = user(&attrs, &users, Some("alice")).unwrap();
        assert_eq!(
            passwd,
            Passwd {
                name: "alice".into(),
                uid: 10001,
                gid: 10000,
                gecos: "Alice Ærø".into(),
                home: "/home/alice".into(),
                shell: "/bin/bash".into()
            }
        );
    }

    #[test]
    fn a_name_differing_in_case_is_not_a_match() {
        let (users, _) = maps();
        let attrs = entry(&[("uid", &["alice"]), ("uidNumber", &["10001"]), ("gidNumber", &["1"])]);
        assert!(user(&attrs, &users, Some("ALICE")).is_err());
    }

    #[test]
    fn gecos_falls_back_to_cn() {
        let (users, _) = maps();
        let attrs = entry(&[("uid", &["bob"]), ("uidNumber", &["5"]), ("gidNumber", &["5"]), ("cn", &["Bob"])]);
        assert_eq!(user(&attrs, &users, None).unwrap().gecos, "Bob");
    }

    #[test]
    fn root_ids_nul_bytes_and_bad_numbers_are_refused() {
        let (users, groups) = maps();
        let base = [("uid", &["eve"][..]), ("gidNumber", &["5"][..])];
        for (uid, gecos) in [("0", "x"), ("-1", "x"), ("4294967296", "x"), ("7", "a\0b"), ("7", "a\nb")] {
            let mut attrs = entry(&base);
            attrs.insert("uidNumber".into(), vec![uid.into()]);
            attrs.insert("gecos".into(), vec![gecos.into()]);
            assert!(user(&attrs, &users, None).is_err(), "{uid} {gecos:?}");
        }
        assert!(group(&entry(&[("cn", &["wheel"]), ("gidNumber", &["0"])]), &groups, None).is_err());
        let primary_root = entry(&[("uid", &["eve"]), ("uidNumber", &["7"]), ("gidNumber", &["0"])]);
        assert!(user(&primary_root, &users, None).is_err());
    }

    #[test]
    fn group_members_are_deduplicated_and_invalid_ones_dropped() {
        let (_, groups) = maps();
        let attrs =
            entry(&[("cn", &["dev"]), ("gidNumber", &["10"]), ("memberUid", &["alice", "bob", "alice", "x)(y", ""])]);
        assert_eq!(group(&attrs, &groups, Some("dev")).unwrap().members, ["alice", "bob"]);
    }

    fn ad_maps(extra: &str) -> (UserMap, GroupMap) {
        let text = format!("[directory]\nuris=[\"ldap://x\"]\nbase=\"dc=x\"\nschema=\"ad\"\n{extra}");
        let config = Config::parse("t.toml".as_ref(), &text).unwrap();
        (config.directory.users, config.directory.groups)
    }

    /// S-1-5-21-1-2-3-RID.
    fn sid(rid: u32) -> Vec<u8> {
        let mut bytes = vec![1, 4, 0, 0, 0, 0, 0, 5];
        for sub in [21, 1, 2, rid] {
            bytes.extend_from_slice(&u32::to_le_bytes(sub));
        }
        bytes
    }

    fn ad_entry(pairs: &[(&str, &[&str])], object_sid: Vec<u8>) -> SearchEntry {
        let bin_attrs = [("objectSid".to_owned(), vec![object_sid])].into();
        SearchEntry { dn: "CN=Alice,CN=Users,DC=x".into(), attrs: entry(pairs), bin_attrs }
    }

    #[test]
    fn ids_map_from_the_sid_and_missing_home_and_shell_from_the_defaults() {
        let (users, groups) = ad_maps("[directory.id_mapping]\noffset = 100000\n");
        let alice =
            ad_entry(&[("sAMAccountName", &["alice"]), ("primaryGroupID", &["513"]), ("uidNumber", &["5"])], sid(1104));
        let domain = Sid::parse(&sid(0)).unwrap().domain().unwrap();
        let domain = Some(&domain);
        let passwd = user_entry(&alice, &users, Some("alice"), domain).unwrap();
        assert_eq!((passwd.uid, passwd.gid), (101_104, 100_513), "uidNumber is ignored under id mapping");
        assert_eq!((passwd.home.as_str(), passwd.shell.as_str()), ("/home/alice", "/bin/sh"));
        let group = ad_entry(&[("sAMAccountName", &["dev"])], sid(1110));
        assert_eq!(group_entry(&group, &groups, Some("dev"), domain).unwrap().gid, 101_110);
        // BUILTIN\Administrators (S-1-5-32-544): not of the mapped domain, so no id at all.
        let builtin = [1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 2, 0, 0];
        let administrators = ad_entry(&[("sAMAccountName", &["Administrators"])], builtin.to_vec());
        assert!(gid_entry(&administrators, &groups, domain).unwrap_err().contains("not an account of"));
        assert!(user_entry(&alice, &users, Some("alice"), None).is_err(), "no domain known: no mapped id");
        let no_sid = SearchEntry { bin_attrs: Default::default(), ..alice.clone() };
        assert!(user_entry(&no_sid, &users, None, domain).is_err());
    }

    #[test]
    fn without_id_mapping_ad_users_use_their_rfc2307_attributes() {
        let (users, _) = ad_maps("");
        let attrs: &[(&str, &[&str])] = &[
            ("sAMAccountName", &["alice"]),
            ("uidNumber", &["10001"]),
            ("gidNumber", &["10000"]),
            ("unixHomeDirectory", &["/home/alice"]),
        ];
        let passwd = user_entry(&ad_entry(attrs, sid(1104)), &users, Some("alice"), None).unwrap();
        assert_eq!((passwd.uid, passwd.gid, passwd.home.as_str()), (10001, 10000, "/home/alice"));
    }

    #[test]
    fn a_login_alias_is_checked_exactly_and_is_never_taken_for_a_name() {
        let (users, _) = ad_maps("[directory.users]\nlogin_alias = \"userPrincipalName\"\n");
        let attrs = entry(&[
            ("sAMAccountName", &["alice"]),
            ("userPrincipalName", &["alice@example.org"]),
            ("uidNumber", &["10001"]),
            ("gidNumber", &["10000"]),
        ]);
        // The alias is not a name: an entry found by it is mapped by its own name.
        assert!(user(&attrs, &users, Some("alice@example.org")).is_err());
        assert_eq!(user(&attrs, &users, None).unwrap().name, "alice");
        assert!(has_alias(&attrs, &users, "alice@example.org"));
        assert!(!has_alias(&attrs, &users, "ALICE@example.org") && !has_alias(&attrs, &users, "alice"));
    }

    #[test]
    fn a_multi_valued_name_picks_the_requested_one() {
        let (_, groups) = maps();
        let attrs = entry(&[("cn", &["Developers", "dev"]), ("gidNumber", &["10"])]);
        assert_eq!(group(&attrs, &groups, Some("dev")).unwrap().name, "dev");
        assert_eq!(group(&attrs, &groups, None).unwrap().name, "Developers");
    }
}
