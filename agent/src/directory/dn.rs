//! Distinguished names as RFC 4514 writes them, read just far enough for group membership:
//! a member DN's own name (`uid=alice,ou=people,...` names alice without another search) and
//! a key under which two spellings of one DN compare equal (cycles, duplicates).
//!
//! Values are compared without case, as the naming attributes of posix entries (`uid`, `cn`,
//! `ou`, `dc`) are by their matching rules; a DN that does not parse is kept as written, so it
//! is still asked of the directory and never silently merged with another.

/// One attribute-value pair of an RDN, the type lowercased and the value unescaped.
type Ava = (String, String);

/// The RDNs of `dn`, left to right; `None` if it is not a DN (a hex `#...` value included,
/// which only an entry of an unusual schema has).
fn parse(dn: &str) -> Option<Vec<Vec<Ava>>> {
    let mut rdns = Vec::new();
    let mut rdn = Vec::new();
    // Only spaces are insignificant around separators (RFC 4514 3); a line break or tab is
    // part of a value.
    // Spaces at the end are dropped by `value` unless escaped (`cn=a\ ` keeps its space).
    let mut rest = dn.trim_start_matches(' ');
    if rest.trim_end_matches(' ').is_empty() {
        return Some(rdns);
    }
    loop {
        let (kind, after) = rest.split_once('=')?;
        let kind = kind.trim_matches(' ');
        if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
            return None;
        }
        let (value, separator, after) = value(after.trim_start_matches(' '))?;
        rdn.push((kind.to_ascii_lowercase(), value));
        match separator {
            Some('+') => {}
            Some(_) => rdns.push(std::mem::take(&mut rdn)),
            None => {
                rdns.push(rdn);
                return Some(rdns);
            }
        }
        rest = after;
    }
}

/// An attribute value up to an unescaped `,`, `;` or `+`: the value, the separator (none at
/// the end) and what follows it.
fn value(text: &str) -> Option<(String, Option<char>, &str)> {
    if text.starts_with('#') {
        return None;
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    // Spaces at the end of a value are not part of it unless escaped.
    let mut kept_len = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                let next = *bytes.get(i + 1)?;
                if let Some(byte) = bytes.get(i + 1..i + 3).and_then(hex_pair) {
                    out.push(byte);
                    i += 3;
                } else if b" \"#+,;<=>\\".contains(&next) {
                    out.push(next);
                    i += 2;
                } else {
                    return None;
                }
                kept_len = out.len();
                continue;
            }
            separator @ (b',' | b';' | b'+') => {
                out.truncate(kept_len);
                let separator = if separator == b'+' { '+' } else { ',' };
                return Some((String::from_utf8(out).ok()?, Some(separator), &text[i + 1..]));
            }
            b' ' => out.push(b' '),
            other => {
                out.push(other);
                kept_len = out.len();
            }
        }
        i += 1;
    }
    out.truncate(kept_len);
    Some((String::from_utf8(out).ok()?, None, ""))
}

fn hex_pair(pair: &[u8]) -> Option<u8> {
    let text = std::str::from_utf8(pair).ok()?;
    if text.len() != 2 || !text.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u8::from_str_radix(text, 16).ok()
}

/// The value of `dn`'s first RDN when that RDN is a single `attribute=value` (any case of
/// `attribute`): `uid=alice,ou=people,dc=example,dc=org` gives `alice` for `uid`.
pub fn first_rdn_value(dn: &str, attribute: &str) -> Option<String> {
    let mut rdns = parse(dn)?;
    if rdns.is_empty() {
        return None;
    }
    let mut first = rdns.swap_remove(0);
    match first.as_slice() {
        [(kind, _)] if kind.eq_ignore_ascii_case(attribute) => first.pop().map(|(_, value)| value),
        _ => None,
    }
}

/// Whether the entry at `dn` lies under `base` (below it, not `base` itself): the RDNs after its
/// first one end with `base`'s, compared as [`key`] compares them.
pub fn is_below(dn: &str, base: &str) -> bool {
    let (Some(dn), Some(base)) = (parse(dn), parse(base)) else { return false };
    let rdn_keys = |rdns: &[Vec<Ava>]| rdns.iter().map(|rdn| rdn_key(rdn)).collect::<Vec<_>>();
    let (dn, base) = (rdn_keys(&dn), rdn_keys(&base));
    dn.len() > base.len() && dn.ends_with(&base)
}

/// A key equal for every spelling of one DN and different for different DNs: spaces around
/// separators, escapes and case do not matter. Values are escaped again (RFC 4514 2.4) so a
/// value holding `,` or `+` cannot pass for two RDNs; a DN that does not parse is its own key
/// (lowercased), marked so that it cannot equal a parsed one.
pub fn key(dn: &str) -> String {
    let Some(rdns) = parse(dn) else { return format!("\0unparsed:{}", dn.to_lowercase()) };
    rdns.iter().map(|rdn| rdn_key(rdn)).collect::<Vec<_>>().join(",")
}

/// One RDN's part of a [`key`].
fn rdn_key(rdn: &[Ava]) -> String {
    let mut avas: Vec<String> =
        rdn.iter().map(|(kind, value)| format!("{kind}={}", ldap3::dn_escape(value.to_lowercase()))).collect();
    // A multi-valued RDN's order carries no meaning.
    avas.sort();
    avas.join("+")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_rdn_names_a_user() {
        assert_eq!(first_rdn_value("uid=alice,ou=people,dc=example,dc=org", "uid").as_deref(), Some("alice"));
        assert_eq!(first_rdn_value("UID = alice , ou=people", "uid").as_deref(), Some("alice"));
        assert_eq!(first_rdn_value("cn=alice,ou=people", "uid"), None);
        assert_eq!(first_rdn_value("uid=alice+cn=Alice,ou=people", "uid"), None, "a multi-valued RDN");
        assert_eq!(first_rdn_value("uid=#04056162,ou=people", "uid"), None, "a BER value");
        assert_eq!(first_rdn_value("", "uid"), None);
        // Found by the fuzz target: only spaces are trimmed, never a line break in a value.
        assert_eq!(first_rdn_value("cn=\n,ou=x", "cn").as_deref(), Some("\n"));
    }

    #[test]
    fn escapes_are_undone() {
        assert_eq!(first_rdn_value(r"cn=Smith\, John,ou=x", "cn").as_deref(), Some("Smith, John"));
        assert_eq!(first_rdn_value(r"cn=Jos\C3\A9,ou=x", "cn").as_deref(), Some("José"));
        assert_eq!(first_rdn_value(r"cn=\ lead and trail\ ,ou=x", "cn").as_deref(), Some(" lead and trail "));
        assert_eq!(first_rdn_value(r"cn=trailing\ ", "cn").as_deref(), Some("trailing "));
        assert_eq!(first_rdn_value("cn=trailing  ", "cn").as_deref(), Some("trailing"));
        assert_eq!(first_rdn_value(r"cn=a\2a\28,ou=x", "cn").as_deref(), Some("a*("));
        assert_eq!(first_rdn_value(r"cn=bad\q,ou=x", "cn"), None, "an unknown escape");
        assert_eq!(first_rdn_value(r"cn=\ff\fe,ou=x", "cn"), None, "not UTF-8");
        assert_eq!(first_rdn_value("cn=trailing\\", "cn"), None);
    }

    #[test]
    fn one_dn_spelled_differently_has_one_key() {
        let canonical = key("cn=Developers,ou=groups,dc=example,dc=org");
        for spelling in [
            "CN=developers,OU=Groups,DC=example,DC=org",
            "cn = developers , ou=groups,dc=example,dc=org",
            r"cn=d\65velopers,ou=groups;dc=example,dc=org",
        ] {
            assert_eq!(key(spelling), canonical, "{spelling}");
        }
        assert_ne!(key("cn=developers,ou=groups,dc=example,dc=com"), canonical);
        assert_eq!(key("uid=a+cn=b,dc=x"), key("cn=b+uid=a,dc=x"));
        assert_ne!(key("not a dn"), key("cn=not a dn"));
    }

    #[test]
    fn below_a_base_means_under_it_whatever_the_spelling() {
        let base = "ou=People,dc=example,dc=org";
        assert!(is_below("uid=alice,ou=people,dc=example,dc=org", base));
        assert!(is_below("uid=alice,ou=staff, OU=People,DC=example,DC=org", base));
        assert!(!is_below("ou=people,dc=example,dc=org", base), "the base itself");
        assert!(!is_below("uid=alice,ou=groups,dc=example,dc=org", base));
        assert!(!is_below("uid=alice,ou=people,dc=example,dc=com", base));
        assert!(!is_below(r"uid=alice\,ou=people,dc=example,dc=org", "dc=example,dc=org,x=y"));
    }

    /// Found in review: unescaped values joined with `,` and `+` made different DNs one key,
    /// which let a crafted group stand in for another in the nesting walk.
    #[test]
    fn different_dns_never_share_a_key() {
        for (a, b) in [
            (r"cn=ops\,ou\=team,ou=groups,dc=x", "cn=ops,ou=team,ou=groups,dc=x"),
            (r"cn=a\+uid\=b,dc=x", "uid=b+cn=a,dc=x"),
            (r"cn=a\q,dc=x", r"cn=a\\q,dc=x"),
        ] {
            assert_ne!(key(a), key(b), "{a} / {b}");
        }
    }
}
