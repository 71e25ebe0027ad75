//! Names and ids an attacker or a typo might send: each is a clean not-found, and slapd never
//! sees a filter that could match more than the literal.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use lanyard_tests::Slapd;

use crate::common::{assert_not_found, assert_success, setup};

fn hostile_names() -> Vec<OsString> {
    let mut names: Vec<OsString> = [
        "*",
        "*)(uid=*",
        "admin)(|(uid=*",
        "alice)(uid=*",
        "al*",
        "\\2a",
        "\\",
        "(uid=alice)",
        // LDAP matching ignores case and surrounding spaces; the agent must not.
        "ALICE",
        "Alice",
        "alice ",
        " alice",
        "alice\t",
        "DEVELOPERS",
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    names.push("a".repeat(300).into());
    names.push(OsString::from_vec(b"al\xffice".to_vec()));
    names.push(OsString::from_vec(b"\xc3(".to_vec()));
    names
}

/// A filter widens a search if it holds a `*` outside `(objectClass=*)`: RFC 4515 escaping
/// turns a literal `*` into `\2a`.
fn widening_filters(filters: &[String]) -> Vec<&String> {
    filters.iter().filter(|f| f.replace("(objectClass=*)", "").contains('*')).collect()
}

#[test]
fn hostile_names_are_not_found_and_never_widen_a_search() {
    let s = setup();
    // Positive control: the log does record the agent's searches.
    let mark = s.slapd.log_mark();
    assert_success(&s.ns.getent("passwd", &["bob"]).unwrap(), &s.agent);
    let control = Slapd::search_filters(&s.slapd.log_since(mark));
    assert!(control.iter().any(|f| f.contains("(uid=bob)")), "slapd logged no search for bob: {control:?}");

    let mark = s.slapd.log_mark();
    for name in hostile_names() {
        for database in ["passwd", "group"] {
            let out = s.ns.getent(database, &[&name]).unwrap();
            assert_not_found(&out, &s.agent);
        }
    }
    let filters = Slapd::search_filters(&s.slapd.log_since(mark));
    assert_eq!(widening_filters(&filters), Vec::<&String>::new(), "all filters: {filters:#?}");
    for f in &filters {
        assert!(!f.contains("(|(uid=") && !f.contains("(uid=*"), "injected filter {f}");
    }
}

#[test]
fn widening_filter_check_can_fail() {
    let logged = vec!["(&(objectClass=posixAccount)(uid=*))".to_owned(), "(&(objectClass=*)(uid=al\\2A))".to_owned()];
    assert_eq!(widening_filters(&logged), vec![&logged[0]]);
}

/// getent turns a numeric key into a uid with strtoul and a cast to uid_t: `-1` and anything
/// over u64 become 4294967295 ((uid_t)-1); `4294967296` would wrap to 0 and find root in files
/// before the module is asked, so it tests nothing of ours and is left out.
#[test]
fn out_of_range_ids_are_not_found() {
    let s = setup();
    for key in ["-1", "4294967295", "99999999999999999999999", "4294967294"] {
        for database in ["passwd", "group"] {
            let out = s.ns.run(&["getent", database, "--", key]).unwrap();
            assert_not_found(&out, &s.agent);
        }
    }
}
