//! Lookups and enumeration through `libnss_lanyard.so.2`, with the system's getent and id.

use std::collections::{BTreeMap, BTreeSet};

use lanyard_tests::fixture::{self, ALICE, JOSE};
use lanyard_tests::{Output, Slapd};

use crate::common::{assert_not_found, assert_success, setup};

/// `name:x:gid:m1,m2,...` as (name, gid, members).
fn parse_group_line(line: &str) -> (String, u32, Vec<String>) {
    let fields: Vec<&str> = line.split(':').collect();
    assert_eq!(fields.len(), 4, "not a group line: {line:?}");
    let members = if fields[3].is_empty() { Vec::new() } else { fields[3].split(',').map(str::to_owned).collect() };
    (fields[0].to_owned(), fields[2].parse().expect("gid"), members)
}

fn single_line(out: &Output) -> String {
    let lines = out.lines();
    assert_eq!(lines.len(), 1, "{out}");
    lines[0].clone()
}

#[test]
fn getent_passwd_by_name_gives_alices_exact_line() {
    let s = setup();
    let out = s.ns.getent("passwd", &["alice"]).unwrap();
    assert_success(&out, &s.agent);
    assert_eq!(out.stdout(), "alice:x:10001:10000:Alice Liddell:/home/alice:/bin/bash\n");
    assert_eq!(out.stdout().trim_end(), fixture::UserEntry::from(ALICE).passwd_line());
}

#[test]
fn getent_passwd_by_uid_gives_alice() {
    let s = setup();
    let out = s.ns.getent("passwd", &["10001"]).unwrap();
    assert_success(&out, &s.agent);
    assert_eq!(out.stdout(), "alice:x:10001:10000:Alice Liddell:/home/alice:/bin/bash\n");
}

#[test]
fn non_ascii_gecos_arrives_intact() {
    let s = setup();
    let out = s.ns.getent("passwd", &["jose"]).unwrap();
    assert_success(&out, &s.agent);
    assert_eq!(out.stdout, "jose:x:10003:10000:José Müller-Ærø:/home/jose:/bin/bash\n".as_bytes());
    assert_eq!(out.stdout().trim_end(), fixture::UserEntry::from(JOSE).passwd_line());
}

#[test]
fn getent_group_by_name_and_gid_lists_the_members() {
    let s = setup();
    for key in ["developers", "10010"] {
        let out = s.ns.getent("group", &[key]).unwrap();
        assert_success(&out, &s.agent);
        let (name, gid, mut members) = parse_group_line(&single_line(&out));
        members.sort();
        assert_eq!((name.as_str(), gid, members), ("developers", 10010, vec!["alice".to_owned(), "bob".to_owned()]));
    }
    // A group without memberUid, found by gid (by name, files' own `staff` would answer first).
    let out = s.ns.getent("group", &["10000"]).unwrap();
    assert_success(&out, &s.agent);
    assert_eq!(out.stdout(), "staff:x:10000:\n");
    let out = s.ns.getent("group", &["empty"]).unwrap();
    assert_success(&out, &s.agent);
    assert_eq!(out.stdout(), "empty:x:10013:\n");
}

#[test]
fn id_alice_lists_every_supplementary_group() {
    let s = setup();
    let out = s.ns.run(&["id", "alice"]).unwrap();
    assert_success(&out, &s.agent);
    let text = out.stdout();
    let (head, groups) = text.trim_end().split_once(" groups=").unwrap_or_else(|| panic!("{out}"));
    assert_eq!(head, "uid=10001(alice) gid=10000(staff)");
    let listed: BTreeSet<&str> = groups.split(',').collect();
    let expected: BTreeSet<&str> =
        ["10000(staff)", "10010(developers)", "10011(ops)", "10012(admins)", "10100(biggroup)"].into();
    assert_eq!(listed, expected, "{out}");
    let from_fixture: BTreeSet<String> =
        fixture::supplementary_groups("alice").into_iter().map(|(name, gid)| format!("{gid}({name})")).collect();
    assert!(from_fixture.iter().all(|g| listed.contains(g.as_str())), "{from_fixture:?} vs {listed:?}");
}

#[test]
fn getent_initgroups_alice_lists_her_groups() {
    let s = setup();
    let out = s.ns.getent("initgroups", &["alice"]).unwrap();
    assert_success(&out, &s.agent);
    let line = single_line(&out);
    let mut words = line.split_whitespace();
    assert_eq!(words.next(), Some("alice"));
    let gids: BTreeSet<u32> = words.map(|w| w.parse().expect("gid")).collect();
    // getent asks with group -1, so the primary group appears only if the module adds it.
    let supplementary: BTreeSet<u32> = [10010, 10011, 10012, 10100].into();
    assert!(gids.is_superset(&supplementary), "{out}");
    assert!(gids.difference(&supplementary).all(|&g| g == 10000), "unexpected groups in {out}");
}

#[test]
fn the_5000_member_group_is_complete() {
    let s = setup();
    for key in ["biggroup", "10100"] {
        let out = s.ns.getent("group", &[key]).unwrap();
        assert_success(&out, &s.agent);
        let (name, gid, members) = parse_group_line(&single_line(&out));
        assert_eq!((name.as_str(), gid), ("biggroup", 10100));
        assert_eq!(members.len(), 5001);
        let unique: BTreeSet<&String> = members.iter().collect();
        assert_eq!(unique.len(), fixture::BIG_GROUP_MEMBER_COUNT, "duplicate members");
        let expected: BTreeSet<String> =
            fixture::groups().into_iter().find(|g| g.name == "biggroup").unwrap().members.into_iter().collect();
        assert!(unique.iter().all(|m| expected.contains(*m)), "members not in the directory");
        assert!(unique.contains(&"member0001".to_owned()) && unique.contains(&"member5000".to_owned()));
        assert!(unique.contains(&"alice".to_owned()));
    }
}

#[test]
fn getent_passwd_enumerates_every_directory_user_once_and_files_users() {
    let s = setup();
    let out = s.ns.getent::<&str>("passwd", &[]).unwrap();
    assert_success(&out, &s.agent);
    let lines = out.lines();
    assert!(lines.iter().any(|l| l.starts_with("root:x:0:0:")), "root from files is missing");
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for line in &lines {
        *seen.entry(line.clone()).or_default() += 1;
    }
    let users = fixture::users();
    assert_eq!(users.len(), 308);
    for user in &users {
        assert_eq!(
            seen.get(&user.passwd_line()),
            Some(&1),
            "{} listed wrongly; {} lines in all",
            user.name,
            lines.len()
        );
    }
    let names: BTreeSet<&str> = users.iter().map(|u| u.name.as_str()).collect();
    let directory_lines = lines.iter().filter(|l| names.contains(l.split(':').next().unwrap_or(""))).count();
    assert_eq!(directory_lines, 308);
}

#[test]
fn getent_group_enumerates_every_directory_group() {
    let s = setup();
    let out = s.ns.getent::<&str>("group", &[]).unwrap();
    assert_success(&out, &s.agent);
    let listed: Vec<(String, u32, Vec<String>)> = out.lines().iter().map(|l| parse_group_line(l)).collect();
    assert!(listed.iter().any(|(n, g, _)| n == "root" && *g == 0), "root from files is missing");
    for group in fixture::groups() {
        let matching: Vec<_> = listed.iter().filter(|(n, g, _)| *n == group.name && *g == group.gid).collect();
        assert_eq!(matching.len(), 1, "{} listed {} times", group.name, matching.len());
        let members: BTreeSet<&String> = matching[0].2.iter().collect();
        assert_eq!(members, group.members.iter().collect(), "members of {}", group.name);
    }
    assert_eq!(fixture::groups().len(), 6);
}

#[test]
fn unknown_names_and_ids_are_not_found() {
    let s = setup();
    assert_not_found(&s.ns.getent("passwd", &["nosuchuser"]).unwrap(), &s.agent);
    assert_not_found(&s.ns.getent("group", &["nosuchgroup"]).unwrap(), &s.agent);
    assert_not_found(&s.ns.getent("passwd", &["4000000000"]).unwrap(), &s.agent);
    assert_not_found(&s.ns.getent("group", &["4000000000"]).unwrap(), &s.agent);
    // Member uids of biggroup are not users.
    assert_not_found(&s.ns.getent("passwd", &["member0001"]).unwrap(), &s.agent);
}

#[test]
fn a_repeated_lookup_within_the_ttl_does_not_search_again() {
    let s = setup();
    let searches_for_bob = |slapd: &Slapd, mark| {
        Slapd::search_filters(&slapd.log_since(mark)).into_iter().filter(|f| f.contains("(uid=bob)")).count()
    };
    let mark = s.slapd.log_mark();
    assert_success(&s.ns.getent("passwd", &["bob"]).unwrap(), &s.agent);
    assert!(searches_for_bob(&s.slapd, mark) >= 1, "the first lookup did not search:\n{}", s.slapd.log_since(mark));

    let mark = s.slapd.log_mark();
    let again = s.ns.getent("passwd", &["bob"]).unwrap();
    assert_success(&again, &s.agent);
    assert_eq!(again.stdout(), "bob:x:10002:10000:Bob Builder:/home/bob:/bin/bash\n");
    assert_eq!(searches_for_bob(&s.slapd, mark), 0, "the warm lookup searched:\n{}", s.slapd.log_since(mark));
}
