//! Which strings can be user or group names.
//!
//! A name that fails [`is_valid_name`] is answered "not found" before any traffic: the module does
//! not send it and the agent does not search for it. The rule is deliberately narrower than what
//! LDAP can store, close to what shadow's `useradd` accepts: ASCII letters, digits, `.`, `_`,
//! `-`, `@`, and a trailing `$` (Samba machine accounts). That keeps out every LDAP filter
//! metacharacter (`*()\` and NUL), the `:` and `,` that break `/etc/passwd` and `/etc/group`
//! lines, whitespace, control and bidi characters, and names that differ from a real one only
//! by Unicode normalization. Values are still escaped wherever they reach a filter or a DN.

/// `LOGIN_NAME_MAX` is 256 including the terminating NUL.
pub const MAX_NAME_LEN: usize = 255;

/// Whether `name` can be a login or group name.
pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let Some((&first, _)) = bytes.split_first() else {
        return false;
    };
    if bytes.len() > MAX_NAME_LEN || first == b'-' || name == "." || name == ".." {
        return false;
    }
    // A single trailing `$` is allowed (machine accounts); `$` alone is not a name.
    let body = match bytes.strip_suffix(b"$") {
        Some(body) if !body.is_empty() => body,
        _ => bytes,
    };
    body.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_are_valid() {
        for name in ["alice", "bob.smith", "svc_backup", "j-doe", "alice@example.org", "HOST$", "A1", "_apt"] {
            assert!(is_valid_name(name), "{name}");
        }
    }

    #[test]
    fn hostile_and_malformed_names_are_invalid() {
        let long = "a".repeat(MAX_NAME_LEN + 1);
        for name in [
            "",
            "*",
            "*)(uid=*",
            "admin)(|(uid=*",
            "\\2a",
            "al\0ice",
            "al ice",
            "alice:x",
            "a,b",
            "-rf",
            ".",
            "..",
            "$",
            "a$b",
            "al\u{202e}ice",
            "ålice",
            "alice\n",
            long.as_str(),
        ] {
            assert!(!is_valid_name(name), "{name:?}");
        }
    }

    #[test]
    fn the_longest_allowed_name_is_valid() {
        assert!(is_valid_name(&"a".repeat(MAX_NAME_LEN)));
    }
}
