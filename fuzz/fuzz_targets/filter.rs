//! Filter escaping: whatever the value, the filter parses as exactly
//! `(&<object filter>(<attribute>=<value>))`: an AND of the object filter and one equality
//! assertion whose value is the raw value's bytes. No wildcard, no extra clause.
#![no_main]

use arbitrary::Arbitrary;
use lanyard_agent::directory::filter;
use ldap3::asn1::{OctetString, Sequence, Tag, TagClass};
use libfuzzer_sys::fuzz_target;

const OBJECT_FILTERS: &[&str] = &[
    "(objectClass=posixAccount)",
    "(objectClass=posixGroup)",
    "(&(objectClass=posixAccount)(!(loginShell=/bin/false)))",
    "(|(objectClass=posixGroup)(objectClass=groupOfNames))",
];
const ATTRIBUTES: &[&str] = &["uid", "cn", "memberUid", "uidNumber", "gidNumber", "member"];

/// RFC 4511 filter choices (context tags), as ldap3 builds them.
const AND: u64 = 0;
const EQUALITY: u64 = 3;

#[derive(Arbitrary, Debug)]
struct Input {
    object_filter: u8,
    attribute: u8,
    value: String,
}

fuzz_target!(|input: Input| {
    let object_filter = OBJECT_FILTERS[usize::from(input.object_filter) % OBJECT_FILTERS.len()];
    let attribute = ATTRIBUTES[usize::from(input.attribute) % ATTRIBUTES.len()];
    let text = filter::equality(object_filter, attribute, &input.value);
    let parsed = ldap3::parse_filter(&text).unwrap_or_else(|()| panic!("{text:?} does not parse"));
    let object = ldap3::parse_filter(object_filter).expect("the object filter parses");
    let expected = Tag::Sequence(Sequence {
        class: TagClass::Context,
        id: AND,
        inner: vec![
            object,
            Tag::Sequence(Sequence {
                class: TagClass::Context,
                id: EQUALITY,
                inner: vec![
                    Tag::OctetString(OctetString { inner: attribute.as_bytes().to_vec(), ..Default::default() }),
                    Tag::OctetString(OctetString { inner: input.value.as_bytes().to_vec(), ..Default::default() }),
                ],
            }),
        ],
    });
    assert_eq!(parsed, expected, "{text:?} for value {:?}", input.value);
});
