//! Member DNs from the directory (RFC 2307bis `member`, AD `member`): any text reads without a
//! panic, and a value escaped by ldap3's `dn_escape` reads back as exactly that value from the
//! first RDN, whatever the case of the attribute type or the spaces around separators.
#![no_main]

use arbitrary::Arbitrary;
use lanyard_agent::directory::dn;
use libfuzzer_sys::fuzz_target;

const ATTRIBUTES: &[&str] = &["uid", "cn", "sAMAccountName", "CN"];

#[derive(Arbitrary, Debug)]
struct Input {
    /// Anything a server might send.
    raw: String,
    attribute: u8,
    value: String,
    spaced: bool,
}

fuzz_target!(|input: Input| {
    let _ = dn::first_rdn_value(&input.raw, "uid");
    let _ = dn::key(&input.raw);

    let attribute = ATTRIBUTES[usize::from(input.attribute) % ATTRIBUTES.len()];
    let escaped = ldap3::dn_escape(&input.value);
    let separator = if input.spaced { " , " } else { "," };
    let dn = format!("{attribute}={escaped}{separator}ou=people,dc=example,dc=org");
    assert_eq!(
        dn::first_rdn_value(&dn, &attribute.to_ascii_lowercase()).as_deref(),
        Some(input.value.as_str()),
        "{dn:?}"
    );
    let upper = format!("{}={escaped},OU=people,DC=example,DC=org", attribute.to_ascii_uppercase());
    assert_eq!(dn::key(&dn), dn::key(&upper), "{dn:?} / {upper:?}");
});
