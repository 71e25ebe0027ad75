//! LDAP entries to `passwd` and `group` records (RFC 2307, attribute names from the config).
//!
//! An entry that cannot be represented faithfully is refused with a reason rather than patched:
//! a name that is not a valid login name, a missing or out-of-range id, a NUL byte (C strings
//! end there) or a line break (it splits `/etc/passwd`-format output). uid 0 and gid 0 are never
//! taken from the directory: root is the machine's own.

use std::collections::{HashMap, HashSet};

use lanyard_proto::name::is_valid_name;
use lanyard_proto::{Group, Passwd};

use crate::config::{GroupMap, UserMap};

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
    attrs
}

/// The attributes a group search asks for.
pub fn group_attributes(map: &GroupMap) -> Vec<String> {
    let mut attrs = vec![map.name.clone(), map.gid_number.clone(), map.member.clone()];
    attrs.extend(map.member_dn.clone());
    attrs
}

/// Maps one entry to a user. With `wanted`, the entry must carry that exact name (LDAP matched
/// it case-insensitively; `ALICE` must not become `alice`).
pub fn user(attrs: &HashMap<String, Vec<String>>, map: &UserMap, wanted: Option<&str>) -> Result<Passwd, String> {
    let name = pick_name(values(attrs, &map.name), wanted)?;
    let uid = id(attrs, &map.uid_number)?;
    let gid = id(attrs, &map.gid_number)?;
    if uid == 0 || gid == 0 {
        return Err("uid 0 and primary gid 0 are refused from the directory".into());
    }
    let gecos = first_value(attrs, &map.gecos).or_else(|| first_value(attrs, "cn")).unwrap_or_default();
    let passwd = Passwd {
        name,
        uid,
        gid,
        gecos: gecos.to_owned(),
        home: first_value(attrs, &map.home).unwrap_or_default().to_owned(),
        shell: first_value(attrs, &map.shell).unwrap_or_default().to_owned(),
    };
    for (field, value) in [("gecos", &passwd.gecos), ("home", &passwd.home), ("shell", &passwd.shell)] {
        check_text(field, value)?;
    }
    Ok(passwd)
}

/// Maps one entry to a group. Members that are not valid names are left out; members given
/// by DN (`map.member_dn`) are not resolved here (see [`member_dns`]).
pub fn group(attrs: &HashMap<String, Vec<String>>, map: &GroupMap, wanted: Option<&str>) -> Result<Group, String> {
    let name = pick_name(values(attrs, &map.name), wanted)?;
    let gid = id(attrs, &map.gid_number)?;
    if gid == 0 {
        return Err("gid 0 is refused from the directory".into());
    }
    let mut seen = HashSet::new();
    let members =
        values(attrs, &map.member).iter().filter(|m| is_valid_name(m) && seen.insert(m.as_str())).cloned().collect();
    Ok(Group { name, gid, members })
}

/// The values of the group's DN-valued member attribute (none without `map.member_dn`).
pub fn member_dns(attrs: &HashMap<String, Vec<String>>, map: &GroupMap) -> Vec<String> {
    map.member_dn.as_deref().map_or_else(Vec::new, |attribute| values(attrs, attribute).to_vec())
}

/// Whether the user entry carries exactly `name` (LDAP matched it without regard to case).
pub fn has_name(attrs: &HashMap<String, Vec<String>>, map: &UserMap, name: &str) -> bool {
    values(attrs, &map.name).iter().any(|n| n == name)
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

    #[test]
    fn a_multi_valued_name_picks_the_requested_one() {
        let (_, groups) = maps();
        let attrs = entry(&[("cn", &["Developers", "dev"]), ("gidNumber", &["10"])]);
        assert_eq!(group(&attrs, &groups, Some("dev")).unwrap().name, "dev");
        assert_eq!(group(&attrs, &groups, None).unwrap().name, "Developers");
    }
}
