//! Group members given as DNs (RFC 2307bis `member`/`uniqueMember`), turned into the login
//! names a `group` record lists, following groups within groups to a depth.
//!
//! A member DN whose first RDN is the user name attribute (`uid=alice,...`) names its user
//! without a search, as nslcd does; any other DN is asked of the directory, a level of the
//! tree at a time (concurrently, by the caller's [`Resolve`]). Every DN is visited once, so a
//! cycle (a group inside itself, two groups inside each other) ends, and a member reached by
//! two paths is listed once.

use std::collections::HashSet;
use std::future::Future;

use lanyard_proto::name::is_valid_name;
use tracing::{debug, warn};

use super::{DirectoryError, dn};

/// What a member DN turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    User(String),
    /// A group: its own members, by DN and by name.
    Group {
        dns: Vec<String>,
        names: Vec<String>,
    },
    /// No such entry, or one that is neither a user nor a group: left out.
    Neither,
}

/// Looks up member DNs that do not name themselves. One call per level of nesting; the
/// answer is in the order asked.
pub trait Resolve {
    fn resolve(&self, dns: Vec<String>) -> impl Future<Output = Result<Vec<Member>, DirectoryError>> + Send;
}

/// How one group's membership was flattened.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Expansion {
    /// Login names, each once, in the order found.
    pub names: Vec<String>,
    /// Some group lay deeper than the configured depth; its members are not in `names`.
    pub truncated: bool,
}

/// Where member DNs name their users without a search: `uid=NAME,...` (`attribute`) under the
/// users' base. A DN elsewhere (stale, or outside the users the agent serves) is looked up.
pub struct Users<'a> {
    pub attribute: &'a str,
    pub base: &'a str,
}

/// The members of the group at `group_dn` whose own values are `dns` and `names`, groups
/// within it followed `depth` levels down.
pub async fn expand(
    group_dn: &str,
    dns: Vec<String>,
    names: Vec<String>,
    depth: u32,
    users: &Users<'_>,
    resolver: &impl Resolve,
) -> Result<Expansion, DirectoryError> {
    let mut visited = HashSet::from([dn::key(group_dn)]);
    let mut found = Names::default();
    found.extend(names);
    let mut frontier = dns;
    let mut level = 0;
    let mut truncated = false;
    while !frontier.is_empty() {
        let mut asked = Vec::new();
        for member in frontier.drain(..) {
            let member = strip_unique_identifier(&member).to_owned();
            if !visited.insert(dn::key(&member)) {
                continue;
            }
            match dn::first_rdn_value(&member, users.attribute).filter(|_| dn::is_below(&member, users.base)) {
                Some(name) => found.push(name),
                None => asked.push(member),
            }
        }
        if asked.is_empty() {
            break;
        }
        let answers = resolver.resolve(asked.clone()).await?;
        for (member, answer) in asked.iter().zip(answers) {
            match answer {
                Member::User(name) => found.push(name),
                Member::Group { .. } if level >= depth => {
                    truncated = true;
                    debug!("{group_dn}: group {member} is nested deeper than directory.groups.nesting_depth");
                }
                Member::Group { dns, names } => {
                    found.extend(names);
                    frontier.extend(dns);
                }
                Member::Neither => debug!("{group_dn}: member {member} is neither a user nor a group"),
            }
        }
        level += 1;
    }
    if truncated {
        warn!(
            "{group_dn} has groups nested more than {depth} deep; their members are left out \
             (directory.groups.nesting_depth)"
        );
    }
    Ok(Expansion { names: found.into_vec(), truncated })
}

/// `uniqueMember` may carry a bit-string identifier after `#` (RFC 4517 3.3.23,
/// `uid=a,dc=x#'0101'B`); the DN is what comes before it.
fn strip_unique_identifier(value: &str) -> &str {
    match value.rsplit_once('#') {
        Some((dn, tail)) if tail.starts_with('\'') && tail.ends_with("'B") => dn,
        _ => value,
    }
}

/// Valid login names, each kept once, in order.
#[derive(Default)]
struct Names {
    seen: HashSet<String>,
    order: Vec<String>,
}

impl Names {
    fn push(&mut self, name: String) {
        if is_valid_name(&name) && self.seen.insert(name.clone()) {
            self.order.push(name);
        }
    }

    fn extend(&mut self, names: impl IntoIterator<Item = String>) {
        names.into_iter().for_each(|n| self.push(n));
    }

    fn into_vec(self) -> Vec<String> {
        self.order
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    /// A directory of groups by DN; any other DN not named by `uid=` is a user named by its
    /// `cn`. Records every batch it was asked.
    #[derive(Default)]
    struct Fake {
        groups: HashMap<String, (Vec<String>, Vec<String>)>,
        asked: Mutex<Vec<Vec<String>>>,
    }

    impl Fake {
        fn group(mut self, name: &str, dns: &[&str], names: &[&str]) -> Self {
            let members = (dns.iter().map(|s| s.to_string()).collect(), names.iter().map(|s| s.to_string()).collect());
            self.groups.insert(dn::key(&group_dn(name)), members);
            self
        }
    }

    impl Resolve for Fake {
        async fn resolve(&self, dns: Vec<String>) -> Result<Vec<Member>, DirectoryError> {
            self.asked.lock().unwrap().push(dns.clone());
            Ok(dns
                .iter()
                .map(|d| match self.groups.get(&dn::key(d)) {
                    Some((dns, names)) => Member::Group { dns: dns.clone(), names: names.clone() },
                    None if d.starts_with("cn=missing") => Member::Neither,
                    None => Member::User(dn::first_rdn_value(d, "cn").unwrap()),
                })
                .collect())
        }
    }

    fn group_dn(name: &str) -> String {
        format!("cn={name},ou=groups,dc=x")
    }

    async fn run(fake: &Fake, top: &str, depth: u32) -> Expansion {
        let (dns, names) = fake.groups[&dn::key(&group_dn(top))].clone();
        expand(&group_dn(top), dns, names, depth, &Users { attribute: "uid", base: "dc=x" }, fake).await.unwrap()
    }

    #[tokio::test]
    async fn uid_dns_need_no_search_and_other_dns_are_asked_once() {
        let fake = Fake::default().group(
            "dev",
            &["uid=alice,ou=people,dc=x", "cn=carol,ou=people,dc=x", "UID=alice, ou=people,dc=x", "cn=missing,dc=x"],
            &["bob", "alice"],
        );
        let out = run(&fake, "dev", 4).await;
        assert_eq!(out, Expansion { names: vec!["bob".into(), "alice".into(), "carol".into()], truncated: false });
        assert_eq!(*fake.asked.lock().unwrap(), [vec!["cn=carol,ou=people,dc=x", "cn=missing,dc=x"]]);
    }

    #[tokio::test]
    async fn nested_groups_are_followed_to_the_depth_and_no_further() {
        let fake = Fake::default()
            .group("all", &["cn=eng,ou=groups,dc=x", "uid=zed,dc=x"], &[])
            .group("eng", &["cn=dev,ou=groups,dc=x"], &["erin"])
            .group("dev", &["uid=alice,dc=x"], &[]);
        assert_eq!(run(&fake, "all", 2).await.names, ["zed", "erin", "alice"]);
        let shallow = run(&fake, "all", 1).await;
        assert_eq!(shallow, Expansion { names: vec!["zed".into(), "erin".into()], truncated: true });
        assert_eq!(run(&fake, "all", 0).await.names, ["zed"]);
    }

    #[tokio::test]
    async fn cycles_end_and_each_member_is_listed_once() {
        let fake = Fake::default().group("a", &["cn=b,ou=groups,dc=x", "uid=alice,dc=x"], &[]).group(
            "b",
            &["cn=a,ou=groups,dc=x", "CN=B,OU=groups,DC=x", "uid=alice,dc=x", "uid=bob,dc=x"],
            &[],
        );
        let out = run(&fake, "a", 16).await;
        assert_eq!(out.names, ["alice", "bob"]);
        assert!(!out.truncated);
        // a asked nothing of itself; b once.
        assert_eq!(*fake.asked.lock().unwrap(), [vec!["cn=b,ou=groups,dc=x"]]);
    }

    #[tokio::test]
    async fn invalid_names_and_unique_member_identifiers() {
        let fake = Fake::default().group("g", &["uid=ok,dc=x#'0101'B", "uid=x)(y,dc=x", "uid=,dc=x"], &["", "*"]);
        assert_eq!(run(&fake, "g", 1).await.names, ["ok"]);
        assert_eq!(strip_unique_identifier("cn=a#b,dc=x"), "cn=a#b,dc=x");
    }
}
