//! LDAP entries to passwd/group: any attribute map maps or is refused, never a panic, and what
//! maps keeps the module's promises (valid names, no root ids, no NUL or line breaks).
#![no_main]

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use lanyard_agent::config::{Config, GroupMap, UserMap};
use lanyard_agent::directory::mapping;
use lanyard_proto::name::is_valid_name;
use libfuzzer_sys::fuzz_target;

/// Attribute names: mostly the ones the default maps read (in any case), sometimes anything.
#[derive(Arbitrary, Debug)]
enum Key {
    Known(u8, bool),
    Other(String),
}

const KNOWN: &[&str] = &["uid", "uidNumber", "gidNumber", "gecos", "cn", "homeDirectory", "loginShell", "memberUid"];

#[derive(Arbitrary, Debug)]
enum Value {
    Number(i64),
    Text(String),
}

#[derive(Arbitrary, Debug)]
struct Input {
    attrs: Vec<(Key, Vec<Value>)>,
    wanted: Option<String>,
}

fn maps() -> &'static (UserMap, GroupMap) {
    static MAPS: OnceLock<(UserMap, GroupMap)> = OnceLock::new();
    MAPS.get_or_init(|| {
        let text = "[directory]\nuris = [\"ldap://x\"]\nbase = \"dc=x\"\n";
        let config = Config::parse(Path::new("fuzz.toml"), text).expect("the minimal config parses");
        (config.directory.users, config.directory.groups)
    })
}

fuzz_target!(|input: Input| {
    let attrs: HashMap<String, Vec<String>> = input
        .attrs
        .into_iter()
        .map(|(key, values)| {
            let key = match key {
                Key::Known(i, upper) => {
                    let name = KNOWN[usize::from(i) % KNOWN.len()];
                    if upper { name.to_ascii_uppercase() } else { name.to_owned() }
                }
                Key::Other(name) => name,
            };
            let values = values
                .into_iter()
                .map(|v| match v {
                    Value::Number(n) => n.to_string(),
                    Value::Text(t) => t,
                })
                .collect();
            (key, values)
        })
        .collect();
    let wanted = input.wanted.as_deref();
    let (users, groups) = maps();
    if let Ok(p) = mapping::user(&attrs, users, wanted) {
        assert!(is_valid_name(&p.name), "{p:?}");
        assert!(wanted.is_none_or(|w| w == p.name), "{p:?} for {wanted:?}");
        assert!(p.uid != 0 && p.gid != 0, "{p:?}");
        for field in [&p.gecos, &p.home, &p.shell] {
            assert!(!field.contains(['\0', '\n', '\r']), "{p:?}");
        }
    }
    if let Ok(g) = mapping::group(&attrs, groups, wanted) {
        assert!(is_valid_name(&g.name), "{g:?}");
        assert!(wanted.is_none_or(|w| w == g.name), "{g:?} for {wanted:?}");
        assert!(g.gid != 0, "{g:?}");
        let mut seen = HashSet::new();
        assert!(g.members.iter().all(|m| is_valid_name(m) && seen.insert(m)), "{g:?}");
    }
    let _ = mapping::gid(&attrs, groups);
});
