//! Membership by DN against the directory (RFC 2307bis, `directory.groups.member_dn`): what
//! [`members::expand`] asks of it, a user's groups found from the user's DN, and the
//! enumeration of every group.
//!
//! A user's groups take one search for the user's DN and one per level of nesting (groups that
//! list any group of the level before), never a walk over every group's member list.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Mutex;

use futures_util::{StreamExt, TryStreamExt, stream};
use lanyard_proto::Group;
use ldap3::{Scope, SearchEntry, ldap_escape};
use tracing::debug;

use super::ldap::LdapDirectory;
use super::members::{self, Member, Resolve, Users};
use super::pool::ldap3_result_text;
use super::{DirectoryError, dn, mapping};
use crate::config::Schema;

/// Member DNs looked up at once: enough to hide round trips, few enough that one big group
/// does not crowd out every other request on the pooled connections.
const CONCURRENT_LOOKUPS: usize = 16;
/// Group DNs per `(|(member=...)...)` filter when climbing to the groups that contain them.
const DNS_PER_FILTER: usize = 50;
/// LDAP results (RFC 4511 A.2) after which a member DN is left out rather than failing its
/// group: it names nothing, lies outside this server, is not a DN, or is closed to us.
const NO_SUCH_OBJECT: u32 = 32;
const REFERRAL: u32 = 10;
const INVALID_DN_SYNTAX: u32 = 34;
const INSUFFICIENT_ACCESS: u32 = 50;

impl LdapDirectory {
    /// Replaces `group.members` with its named members followed by those given by DN, groups
    /// within it followed to `nesting_depth`.
    pub(super) async fn add_members_by_dn(
        &self,
        group: &mut Group,
        group_dn: &str,
        member_dns: Vec<String>,
        resolver: &impl Resolve,
    ) -> Result<(), DirectoryError> {
        if member_dns.is_empty() {
            return Ok(());
        }
        let names = std::mem::take(&mut group.members);
        let depth = self.groups.nesting_depth;
        let users = Users { attribute: &self.users.name, base: &self.users.base };
        group.members = members::expand(group_dn, member_dns, names, depth, &users, resolver).await?.names;
        Ok(())
    }

    /// The gids of the groups that list `user` by name or by DN, and of the groups containing
    /// those, `nesting_depth` levels up.
    pub(super) async fn groups_of_user_by_dn(
        &self,
        dn_attribute: &str,
        user: &str,
    ) -> Result<Vec<u32>, DirectoryError> {
        let by_name = format!("({}={})", self.groups.member, ldap_escape(user));
        let Some(user_dn) = self.user_dn(user).await? else {
            // No entry of that name: only `memberUid` can still list it.
            let (_, gids) = self.groups_matching(&format!("(&{}{by_name})", self.groups.filter)).await?;
            return Ok(sorted(gids));
        };
        let by_dn = format!("({dn_attribute}={})", ldap_escape(&user_dn));
        let (mut level, mut gids) =
            self.groups_matching(&format!("(&{}(|{by_name}{by_dn}))", self.groups.filter)).await?;
        let mut visited: HashSet<String> = level.iter().map(|d| dn::key(d)).collect();
        for _ in 0..self.groups.nesting_depth {
            let mut next = Vec::new();
            for chunk in level.chunks(DNS_PER_FILTER) {
                let any: String = chunk.iter().map(|d| format!("({dn_attribute}={})", ldap_escape(d))).collect();
                let (dns, found) = self.groups_matching(&format!("(&{}(|{any}))", self.groups.filter)).await?;
                for (dn, gid) in dns.into_iter().zip(found) {
                    if visited.insert(dn::key(&dn)) {
                        next.push(dn);
                        gids.push(gid);
                    }
                }
            }
            if next.is_empty() {
                break;
            }
            level = next;
        }
        Ok(sorted(gids))
    }

    /// Every group, members by DN resolved; nested groups are found among the groups fetched,
    /// other DNs are asked of the directory once each.
    pub(super) async fn all_groups_by_dn(&self) -> Result<Vec<Result<Group, String>>, DirectoryError> {
        let attrs = self.group_attributes();
        let domain = self.mapped_domain().await?;
        let map = |e: SearchEntry| mapping::group_entry(&e, &self.groups, None, domain.as_ref()).map(|g| (g, e));
        let fetched = self.search_each(&self.groups.base, &self.groups.filter, &attrs, true, map).await?;
        let mut entries = Vec::with_capacity(fetched.len());
        for entry in fetched {
            entries.push(match entry {
                Ok((group, e)) => Ok((group, self.member_dns(&e).await?, e.dn)),
                Err(why) => Err(why),
            });
        }
        let mut known = HashMap::new();
        for (group, dns, dn) in entries.iter().flatten() {
            known.insert(dn::key(dn), Member::Group { dns: dns.clone(), names: group.members.clone() });
        }
        let resolver = Remembering { known: Mutex::new(known), directory: DirectoryResolver(self) };
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            out.push(match entry {
                Ok((mut group, dns, dn)) => {
                    self.add_members_by_dn(&mut group, &dn, dns, &resolver).await?;
                    Ok(group)
                }
                Err(why) => Err(why),
            });
        }
        Ok(out)
    }

    /// The DN of the user entry `user` names (see `find_user`).
    pub(super) async fn user_dn(&self, user: &str) -> Result<Option<String>, DirectoryError> {
        let found = self.find_user(user, &mapping::user_attributes(&self.users)).await?;
        Ok(found.map(|(entry, _)| entry.dn))
    }

    /// The DNs and gids of the groups matching `filter` (paged); groups without a usable gid
    /// are left out of both.
    pub(super) async fn groups_matching(&self, filter: &str) -> Result<(Vec<String>, Vec<u32>), DirectoryError> {
        let mut attrs = vec![self.groups.gid_number.clone()];
        if self.groups.id_mapping.is_some() {
            attrs.push("objectSid".into());
        }
        let domain = self.mapped_domain().await?;
        let map = |e: SearchEntry| mapping::gid_entry(&e, &self.groups, domain.as_ref()).map(|gid| (e.dn, gid));
        let entries = self.search_each(&self.groups.base, filter, &attrs, true, map).await?;
        Ok(entries
            .into_iter()
            .filter_map(|e| e.inspect_err(|why| debug!("group skipped: {why}")).ok())
            .filter(|&(_, gid)| gid != 0)
            .unzip())
    }

    /// The entry at `dn` if it matches `filter`; `None` if there is no such entry or it does
    /// not match.
    pub(super) async fn entry_at(
        &self,
        dn: &str,
        filter: &str,
        attrs: &[String],
    ) -> Result<Option<SearchEntry>, DirectoryError> {
        self.with_retry("member lookup", |mut ldap| async move {
            let found = ldap.search(dn, Scope::Base, filter, attrs.to_vec()).await?;
            match found.1.rc {
                // A member DN may be stale, outside what this server holds (a referral), not a
                // DN at all, or closed to the service account: that member is left out, the
                // rest of the group still counts.
                NO_SUCH_OBJECT => Ok(None),
                rc @ (REFERRAL | INVALID_DN_SYNTAX | INSUFFICIENT_ACCESS) => {
                    tracing::warn!("{dn}: left out ({})", ldap3_result_text(rc, &found.1.text));
                    Ok(None)
                }
                _ => Ok(found.success()?.0.into_iter().next().map(SearchEntry::construct)),
            }
        })
        .await
    }

    /// What the entry at `dn` is: a user (by the user filter), else a group (by the group
    /// filter), else neither.
    async fn member_at(&self, dn: String) -> Result<Member, DirectoryError> {
        let user_attrs = std::slice::from_ref(&self.users.name);
        if let Some(entry) = self.entry_at(&dn, &self.users.filter, user_attrs).await? {
            return Ok(mapping::user_name(&entry.attrs, &self.users).map_or(Member::Neither, Member::User));
        }
        let group_attrs = self.group_attributes();
        Ok(match self.entry_at(&dn, &self.groups.filter, &group_attrs).await? {
            Some(entry) => Member::Group {
                dns: self.member_dns(&entry).await?,
                names: mapping::group_member_names(&entry.attrs, &self.groups),
            },
            None => Member::Neither,
        })
    }
}

/// A big group's members come in ranges on AD (`member;range=0-1499`, MS-ADTS 3.1.1.3.1.3.3);
/// each request for the next range is one search, and a group of N members takes N / 1500.
/// The bound only stops a server that never says `*` (the last range).
const MAX_RANGES: usize = 10_000;

/// The first range asked for by name on AD. Windows DCs send at most MaxValRange (1,500)
/// values of `member` and Samba sends all of them unless a range is named: asking for the first
/// one makes both answer in ranges, so a big group is read the same way everywhere.
const FIRST_RANGE: &str = "range=0-1499";

impl LdapDirectory {
    /// The attributes a group search asks for; on AD, the member DNs' first range by name.
    pub(super) fn group_attributes(&self) -> Vec<String> {
        let mut attrs = mapping::group_attributes(&self.groups);
        if let (Schema::Ad, Some(member)) = (self.schema, &self.groups.member_dn) {
            for attr in attrs.iter_mut().filter(|a| *a == member) {
                *attr = format!("{member};{FIRST_RANGE}");
            }
        }
        attrs
    }

    /// Every member DN of a group entry: the `member_dn` values, and on a server that sends
    /// them in ranges, the rest fetched a range at a time.
    pub(super) async fn member_dns(&self, entry: &SearchEntry) -> Result<Vec<String>, DirectoryError> {
        let Some(attribute) = self.groups.member_dn.as_deref() else { return Ok(Vec::new()) };
        let first = mapping::member_dns(&entry.attrs, &self.groups);
        collect_ranges(entry, first, attribute, |start| async move {
            let wanted = [format!("{attribute};range={start}-*")];
            self.entry_at(&entry.dn, "(objectClass=*)", &wanted).await
        })
        .await
    }
}

/// `first` (the plain values) and every range of `attribute`: those in `entry`, then each next
/// one `next_range(start)` fetches, until the last (`...-*`) or an answer without a range.
async fn collect_ranges<F, Fut>(
    entry: &SearchEntry,
    mut values: Vec<String>,
    attribute: &str,
    mut next_range: F,
) -> Result<Vec<String>, DirectoryError>
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<Option<SearchEntry>, DirectoryError>>,
{
    let mut ranged = ranged_values(entry, attribute);
    let mut expected_low = 0;
    for _ in 0..MAX_RANGES {
        let Some(Range { low, values: more, next }) = ranged else { return Ok(values) };
        // Each answer must start where it was asked to: a server repeating a range would
        // otherwise be asked for the same values again and again.
        if low != expected_low {
            let why =
                format!("{}: asked for {attribute} from {expected_low}, the server sent a range from {low}", entry.dn);
            return Err(DirectoryError::Server(why));
        }
        values.extend(more);
        let Some(start) = next else { return Ok(values) };
        expected_low = start;
        ranged = next_range(start).await?.and_then(|e| ranged_values(&e, attribute));
    }
    tracing::warn!("{}: more than {MAX_RANGES} ranges of {attribute}; the rest is left out", entry.dn);
    Ok(values)
}

/// The values of `attribute;range=LOW-HIGH` in `entry`, and the start of the next range
/// (`None` once HIGH is `*`, the last).
fn ranged_values(entry: &SearchEntry, attribute: &str) -> Option<Range> {
    entry.attrs.iter().find_map(|(key, values)| {
        let (name, options) = key.split_once(';')?;
        let bounds = options.get(..6).filter(|o| o.eq_ignore_ascii_case("range="))?;
        let (low, high) = options[bounds.len()..].split_once('-')?;
        if !name.eq_ignore_ascii_case(attribute) {
            return None;
        }
        let low = low.parse::<u64>().ok()?;
        let next = match high {
            "*" => None,
            // A range that ends before it starts, or at the end of the numbers, is not one.
            high => Some(high.parse::<u64>().ok().filter(|high| *high >= low)?.checked_add(1)?),
        };
        Some(Range { low, values: values.clone(), next })
    })
}

/// One range of a multi-valued attribute's values.
#[derive(Debug, PartialEq, Eq)]
struct Range {
    low: u64,
    values: Vec<String>,
    /// Where the next range starts; `None` after the last.
    next: Option<u64>,
}

fn sorted(mut gids: Vec<u32>) -> Vec<u32> {
    gids.sort_unstable();
    gids.dedup();
    gids
}

/// Asks the directory about each DN with a base-scope search, several at a time.
pub(super) struct DirectoryResolver<'a>(pub &'a LdapDirectory);

impl Resolve for DirectoryResolver<'_> {
    async fn resolve(&self, dns: Vec<String>) -> Result<Vec<Member>, DirectoryError> {
        if self.0.schema == Schema::Ad {
            return self.0.members_by_distinguished_name(dns).await;
        }
        stream::iter(dns).map(|dn| self.0.member_at(dn)).buffered(CONCURRENT_LOOKUPS).try_collect().await
    }
}

/// Answers from what is already known (the groups of an enumeration, and every DN asked
/// before), and asks the directory only about the rest.
struct Remembering<'a> {
    known: Mutex<HashMap<String, Member>>,
    directory: DirectoryResolver<'a>,
}

impl Resolve for Remembering<'_> {
    async fn resolve(&self, dns: Vec<String>) -> Result<Vec<Member>, DirectoryError> {
        let keys: Vec<String> = dns.iter().map(|d| dn::key(d)).collect();
        let unknown: Vec<String> = {
            let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
            dns.iter().zip(&keys).filter(|(_, k)| !known.contains_key(*k)).map(|(d, _)| d.clone()).collect()
        };
        let unknown_keys: Vec<String> = unknown.iter().map(|d| dn::key(d)).collect();
        let answers = if unknown.is_empty() { Vec::new() } else { self.directory.resolve(unknown).await? };
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known.extend(unknown_keys.into_iter().zip(answers));
        Ok(keys.iter().map(|k| known.get(k).cloned().unwrap_or(Member::Neither)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, values: &[&str]) -> SearchEntry {
        let attrs = [(key.to_owned(), values.iter().map(|v| v.to_string()).collect())].into();
        SearchEntry { dn: "cn=big,dc=x".into(), attrs, bin_attrs: Default::default() }
    }

    #[tokio::test]
    async fn ranges_are_fetched_one_after_the_other_until_the_last() {
        let asked = std::sync::Mutex::new(Vec::new());
        let next = |start: u64| {
            asked.lock().unwrap().push(start);
            let answer = match start {
                2 => Some(entry("member;range=2-3", &["c", "d"])),
                4 => Some(entry("member;range=4-*", &["e"])),
                _ => None,
            };
            async move { Ok(answer) }
        };
        let first = entry("member;range=0-1", &["a", "b"]);
        let all = collect_ranges(&first, Vec::new(), "member", next).await.unwrap();
        assert_eq!(all, ["a", "b", "c", "d", "e"]);
        assert_eq!(*asked.lock().unwrap(), [2, 4]);
        // A server answering with the same range again is an error, not a loop.
        let stuck = |_| async { Ok(Some(entry("member;range=0-1", &["a", "b"]))) };
        assert!(collect_ranges(&first, Vec::new(), "member", stuck).await.is_err());
        // Plain values and no range: nothing more is asked.
        let plain = entry("member", &["a"]);
        let collected = collect_ranges(&plain, vec!["a".into()], "member", |_| async { panic!("asked for a range") });
        assert_eq!(collected.await.unwrap(), ["a"]);
    }

    #[test]
    fn ranges_say_where_the_next_one_starts_until_the_last() {
        let range =
            |low, values: &[&str], next| Range { low, values: values.iter().map(|v| v.to_string()).collect(), next };
        assert_eq!(ranged_values(&entry("member;range=0-1499", &["a"]), "member"), Some(range(0, &["a"], Some(1500))));
        assert_eq!(ranged_values(&entry("Member;Range=1500-*", &["b"]), "member"), Some(range(1500, &["b"], None)));
        assert_eq!(ranged_values(&entry("member;range=5-4", &["a"]), "member"), None);
        assert_eq!(ranged_values(&entry("member;range=0-18446744073709551615", &["a"]), "member"), None);
        assert_eq!(ranged_values(&entry("member", &["a"]), "member"), None);
        assert_eq!(ranged_values(&entry("uniqueMember;range=0-9", &["a"]), "member"), None);
        assert_eq!(ranged_values(&entry("member;range=0-x", &["a"]), "member"), None);
    }
}
