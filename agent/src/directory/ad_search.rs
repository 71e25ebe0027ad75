//! Searches only Active Directory answers (`schema = "ad"`): member DNs resolved a batch at a
//! time by `distinguishedName`, a user's groups from `tokenGroups`, and the account state AD
//! keeps in `userAccountControl`, `accountExpires` and `pwdLastSet`.

use std::collections::HashMap;

use futures_util::{StreamExt, TryStreamExt, stream};
use ldap3::{SearchEntry, ldap_escape};

use super::ad::{self, Sid};
use super::ldap::LdapDirectory;
use super::members::Member;
use super::{DirectoryError, dn, mapping};

/// Values per `(|...)` filter: AD takes far more, but a filter this size stays readable in
/// the server's log and well under any request size limit.
const PER_FILTER: usize = 50;
/// Batches of [`PER_FILTER`] DNs searched at once (over the pool's multiplexed connections).
const CONCURRENT_BATCHES: usize = 4;

/// What the account phase reads on AD besides the `passwd` attributes.
/// `msDS-User-Account-Control-Computed` is what the DC works out for now (MS-ADTS 3.1.1.4.5.17):
/// locked out, and the password expired under whichever policy applies (a fine-grained one
/// included, which the domain's `maxPwdAge` does not show).
pub const ACCOUNT_ATTRIBUTES: [&str; 4] =
    ["userAccountControl", "accountExpires", "pwdLastSet", "msDS-User-Account-Control-Computed"];

/// The account state AD keeps, in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AdAccount {
    /// Disabled, or its `userAccountControl` could not be read (the only sign of a disabled
    /// account: without it a login by SSH key, which never binds, would pass).
    pub disabled: bool,
    /// Locked out after failed logins, as the DC computes it now.
    pub locked: bool,
    pub expires_at: Option<i64>,
    /// `Some(i64::MIN)`: must change now.
    pub password_expires_at: Option<i64>,
}

impl LdapDirectory {
    /// What each DN is, by two searches per [`PER_FILTER`] DNs (users, then the rest among
    /// groups) instead of one per DN: AD member DNs are `CN=Full Name,...`, which name no login.
    pub(super) async fn members_by_distinguished_name(&self, dns: Vec<String>) -> Result<Vec<Member>, DirectoryError> {
        let mut found: HashMap<String, Member> = HashMap::new();
        let user_attrs = [self.users.name.clone()];
        // A few batches at once: a group of 20,000 members is 400 of them, which one after the
        // other could outlast a request's budget.
        let filters: Vec<String> =
            dns.chunks(PER_FILTER).map(|chunk| format!("(&{}{})", self.users.filter, any_dn(chunk))).collect();
        let user_attrs = &user_attrs;
        let batches: Vec<Vec<SearchEntry>> = stream::iter(filters)
            .map(|filter| async move { self.search(&self.users.base, &filter, user_attrs, true).await })
            .buffered(CONCURRENT_BATCHES)
            .try_collect()
            .await?;
        for entry in batches.into_iter().flatten() {
            let user = mapping::user_name(&entry.attrs, &self.users).map_or(Member::Neither, Member::User);
            found.insert(dn::key(&entry.dn), user);
        }
        let rest: Vec<String> = dns.iter().filter(|d| !found.contains_key(&dn::key(d))).cloned().collect();
        let group_attrs = self.group_attributes();
        for chunk in rest.chunks(PER_FILTER) {
            let filter = format!("(&{}{})", self.groups.filter, any_dn(chunk));
            for entry in self.search(&self.groups.base, &filter, &group_attrs, true).await? {
                let names = mapping::group_member_names(&entry.attrs, &self.groups);
                found.insert(dn::key(&entry.dn), Member::Group { dns: self.member_dns(&entry).await?, names });
            }
        }
        Ok(dns.iter().map(|d| found.remove(&dn::key(d)).unwrap_or(Member::Neither)).collect())
    }

    /// The gids of the user's groups from `tokenGroups`: every group the user is in, nested
    /// ones and the primary group included, as AD computes them for a logon (security groups).
    pub(super) async fn groups_of_user_by_token(&self, user: &str) -> Result<Vec<u32>, DirectoryError> {
        let Some(user_dn) = self.user_dn(user).await? else { return Ok(Vec::new()) };
        // A constructed attribute: AD computes it only for a base-scope search.
        let wanted = ["tokenGroups".to_owned()];
        let Some(entry) = self.entry_at(&user_dn, "(objectClass=*)", &wanted).await? else {
            return Err(DirectoryError::Server(format!("{user_dn}: the user's entry cannot be read for tokenGroups")));
        };
        let sids: Vec<Sid> =
            mapping::binary_values(&entry, "tokenGroups").iter().filter_map(|v| Sid::parse(v)).collect();
        // It always holds the primary group at least: none means the service account may not
        // read it (hardened domains empty "Pre-Windows 2000 Compatible Access"). Saying "no
        // groups" would be cached and shut the user out of every group-based rule.
        if sids.is_empty() {
            return Err(DirectoryError::Server(format!(
                "{user_dn}: tokenGroups is empty or unreadable; the service account needs to read it \
                 (Read tokenGroups, or membership of Pre-Windows 2000 Compatible Access)"
            )));
        }
        let mut gids = Vec::new();
        for chunk in sids.chunks(PER_FILTER) {
            let any: String = chunk.iter().map(Sid::filter).collect();
            let (_, found) = self.groups_matching(&format!("(&{}(|{any}))", self.groups.filter)).await?;
            gids.extend(found);
        }
        gids.sort_unstable();
        gids.dedup();
        Ok(gids)
    }
}

/// `(|(distinguishedName=DN1)...)`, each DN escaped for the filter.
fn any_dn(dns: &[String]) -> String {
    let any: String = dns.iter().map(|d| format!("(distinguishedName={})", ldap_escape(d))).collect();
    format!("(|{any})")
}

/// The account state in an AD user entry; `max_password_age` is the domain's, in seconds.
pub fn account(entry: &SearchEntry, max_password_age: Option<i64>) -> AdAccount {
    let number = |name: &str| mapping::first_value(&entry.attrs, name).and_then(|v| v.trim().parse::<i64>().ok());
    // Signed 32-bit integers on the wire (MS-ADTS 2.2.16).
    let control = number("userAccountControl").map(|v| v as u32);
    let computed = number("msDS-User-Account-Control-Computed").map_or(0, |v| v as u32);
    let password_expires_at = match computed & ad::PASSWORD_EXPIRED {
        0 => ad::password_expires_at(number("pwdLastSet"), control.unwrap_or(0), max_password_age),
        _ => Some(i64::MIN),
    };
    AdAccount {
        disabled: control.is_none_or(|control| control & ad::ACCOUNT_DISABLED != 0),
        locked: computed & ad::LOCKED_OUT != 0,
        expires_at: number("accountExpires").and_then(ad::filetime_to_unix),
        password_expires_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(pairs: &[(&str, &str)]) -> SearchEntry {
        let attrs = pairs.iter().map(|(k, v)| (k.to_string(), vec![v.to_string()])).collect();
        SearchEntry { dn: "CN=x".into(), attrs, bin_attrs: Default::default() }
    }

    #[test]
    fn disabled_expired_and_must_change_accounts_read_as_such() {
        let normal = user(&[
            ("userAccountControl", "512"),
            ("accountExpires", "9223372036854775807"),
            ("pwdLastSet", "133485408000000000"),
        ]);
        assert_eq!(
            account(&normal, Some(86_400)),
            AdAccount {
                disabled: false,
                locked: false,
                expires_at: None,
                password_expires_at: Some(1_704_067_200 + 86_400)
            }
        );
        // What the DC computes wins: locked out, and expired under a fine-grained policy.
        let computed = user(&[("userAccountControl", "512"), ("msDS-User-Account-Control-Computed", "8388624")]);
        let computed = account(&computed, None);
        assert!(computed.locked && computed.password_expires_at == Some(i64::MIN));
        // No userAccountControl to read: refused rather than taken for enabled.
        assert!(account(&user(&[]), None).disabled);
        let disabled = user(&[("userAccountControl", "514")]);
        assert!(account(&disabled, None).disabled);
        let expired = user(&[("userAccountControl", "512"), ("accountExpires", "133485408000000000")]);
        assert_eq!(account(&expired, None).expires_at, Some(1_704_067_200));
        let must_change = user(&[("userAccountControl", "512"), ("pwdLastSet", "0")]);
        assert_eq!(account(&must_change, None).password_expires_at, Some(i64::MIN));
        // Negative as AD sends a control word with the top bit set; never "disabled" by accident.
        let negative = user(&[("userAccountControl", "-2147483136")]);
        assert!(!account(&negative, None).disabled);
    }

    #[test]
    fn dns_are_escaped_in_the_filter() {
        assert_eq!(any_dn(&["CN=Smith\\, J (x),DC=x".into()]), "(|(distinguishedName=CN=Smith\\5c, J \\28x\\29,DC=x))");
    }
}
