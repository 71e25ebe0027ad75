//! Search filters. Every value is escaped (RFC 4515 section 3) on its way in, even though the
//! service only passes names that [`lanyard_proto::name::is_valid_name`] accepts: the escaping
//! is what makes a filter safe, the name check is what keeps odd names from reaching it at all.

use ldap3::ldap_escape;

/// `(&<object filter>(<attribute>=<value>))`, the value escaped.
pub fn equality(object_filter: &str, attribute: &str, value: &str) -> String {
    format!("(&{object_filter}({attribute}={}))", ldap_escape(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metacharacters_are_escaped_so_the_filter_matches_only_the_literal() {
        let filter = equality("(objectClass=posixAccount)", "uid", "*)(uid=*\\\0");
        assert_eq!(filter, "(&(objectClass=posixAccount)(uid=\\2a\\29\\28uid=\\2a\\5c\\00))");
        assert!(ldap3::parse_filter(&filter).is_ok());
    }

    #[test]
    fn plain_values_pass_unchanged() {
        assert_eq!(
            equality("(objectClass=posixGroup)", "memberUid", "alice"),
            "(&(objectClass=posixGroup)(memberUid=alice))"
        );
    }
}
