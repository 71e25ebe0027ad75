//! [`LdapDirectory`]: the [`Directory`] trait over LDAP searches.
//!
//! Every operation, connecting and one retry included, runs under one `directory.timeout`. A
//! connection that fails or stalls is discarded and the operation tried once more on another
//! pooled connection (reconnecting if that slot is empty), so one dead connection costs a
//! retry, not an outage, and a hung directory costs a request the timeout, never more.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use lanyard_proto::{Group, Passwd, Secret};
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{Ldap, LdapError, Scope, SearchEntry};
use tokio::time::Instant;
use tracing::{debug, warn};

use super::facts::FactsCache;
use super::membership::DirectoryResolver;
use super::pool::{Identity, Pool, ldap3_result_text};
use super::servers::ServerOrder;
use super::{AccountState, Directory, DirectoryError, PasswordChange, PasswordCheck, ad, filter, mapping, tls};
use crate::config::{DirectoryConfig, GroupMap, Schema, UserMap};
use crate::metrics::Metrics;

/// LDAP result codes after which the operation is tried once more (RFC 4511 A.2).
const BUSY: u32 = 51;
const UNAVAILABLE: u32 = 52;

/// Below this much budget left, a retry is not worth starting.
const MIN_ATTEMPT: Duration = Duration::from_millis(50);

/// What becomes of a connection after an operation it answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AfterUse {
    /// Back to the pool for the next operation.
    Keep,
    /// Closed: it carried a password. ldap3 encodes each request into the connection's write
    /// buffer and never clears it, so the bytes stay until the connection is freed (and wiped
    /// by lanyardd's allocator); a pooled connection would keep them for its whole life.
    Retire,
}

pub struct LdapDirectory {
    /// Searches, bound as the service account.
    pool: Pool,
    /// The servers (`uris`, or found in DNS), shared by both pools.
    order: Arc<ServerOrder>,
    /// Binds as end users (logins, password changes), one user at a time per connection.
    /// Shared with the tasks that replace a connection retired after a bind.
    pub(super) binder: Arc<Pool>,
    pub(super) schema: Schema,
    /// Read from the server when first needed (see `facts`).
    pub(super) facts: FactsCache,
    pub(super) users: UserMap,
    pub(super) groups: GroupMap,
    pub(super) timeout: Duration,
    page_size: u32,
    pub(super) metrics: Arc<Metrics>,
}

impl LdapDirectory {
    pub fn new(config: &DirectoryConfig) -> Result<LdapDirectory, String> {
        LdapDirectory::with_metrics(config, Arc::default())
    }

    /// Connections, binds and searches are recorded in `metrics`.
    pub fn with_metrics(config: &DirectoryConfig, metrics: Arc<Metrics>) -> Result<LdapDirectory, String> {
        let tls = tls::client_config(&config.trust)?;
        let order = Arc::new(ServerOrder::for_config(config, metrics.clone()));
        for server in &config.servers {
            metrics.add_server(&server.uri);
        }
        Ok(LdapDirectory {
            pool: Pool::new(config, tls.clone(), order.clone(), Identity::ServiceAccount, metrics.clone()),
            binder: Arc::new(Pool::new(config, tls, order.clone(), Identity::BindsPerUse, metrics.clone())),
            order,
            schema: config.schema,
            facts: FactsCache::default(),
            users: config.users.clone(),
            groups: config.groups.clone(),
            timeout: config.timeout,
            page_size: config.page_size,
            metrics,
        })
    }

    /// Connects every pool slot now, so a broken setup is in the log at start-up rather than
    /// at the first login, and the first lookups do not pay for TLS handshakes.
    pub async fn warm_up(&self) -> Result<(), DirectoryError> {
        self.pool.connect_all().await
    }

    /// Runs `op` on a pooled connection under the timeout; once more on a fresh connection if
    /// the first one failed or stalled.
    pub(super) async fn with_retry<T, F, Fut>(&self, what: &str, op: F) -> Result<T, DirectoryError>
    where
        F: Fn(Ldap) -> Fut,
        Fut: Future<Output = Result<T, LdapError>>,
    {
        self.with_retry_then(what, AfterUse::Keep, op).await
    }

    /// [`LdapDirectory::with_retry`], choosing what becomes of the connection once it answered:
    /// one that carried a password is retired (see [`AfterUse`]).
    pub(super) async fn with_retry_then<T, F, Fut>(
        &self,
        what: &str,
        after: AfterUse,
        op: F,
    ) -> Result<T, DirectoryError>
    where
        F: Fn(Ldap) -> Fut,
        Fut: Future<Output = Result<T, LdapError>>,
    {
        // One budget for the whole operation, connecting and the retry included: a hung
        // directory costs a request `directory.timeout`, never a multiple of it. With more than
        // one server, the first attempt gets half of it: a server that stopped answering on a
        // pooled connection is held back and the retry goes to the next one in time.
        let deadline = Instant::now() + self.timeout;
        let mut last = DirectoryError::Timeout;
        for attempt in 0..2 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left < MIN_ATTEMPT {
                break;
            }
            // A lease dropped without `keep` (an error, the budget running out, or this future
            // being cancelled) discards its connection.
            let lease = match tokio::time::timeout(left, self.pool.lease()).await {
                Ok(Ok(lease)) => lease,
                // No server could be connected to: connecting again now would not help.
                Ok(Err(unreachable)) => return Err(unreachable),
                Err(_) => {
                    warn!("{what}: no connection within {left:?} (directory.timeout)");
                    last = DirectoryError::Timeout;
                    continue;
                }
            };
            let left = deadline.saturating_duration_since(Instant::now());
            let budget = if attempt == 0 && self.order.len() > 1 { left / 2 } else { left };
            match tokio::time::timeout(budget, op(lease.ldap.clone())).await {
                Ok(Ok(value)) => {
                    if after == AfterUse::Keep {
                        lease.keep();
                    }
                    return Ok(value);
                }
                // busy (51) and unavailable (52): this server cannot serve it now (RFC 4511
                // A.2), another connection or server may; unavailable holds the server back.
                Ok(Err(LdapError::LdapResult { result })) if matches!(result.rc, BUSY | UNAVAILABLE) => {
                    let why = format!("{}: {what}: {}", lease.server, ldap3_result_text(result.rc, &result.text));
                    if result.rc == UNAVAILABLE {
                        self.order.failed(&lease.server);
                    } else if after == AfterUse::Keep {
                        lease.keep();
                    }
                    warn!("{why}; trying again");
                    last = DirectoryError::Server(why);
                }
                Ok(Err(LdapError::LdapResult { result })) => {
                    let why = format!("{}: {what}: {}", lease.server, ldap3_result_text(result.rc, &result.text));
                    if after == AfterUse::Keep {
                        lease.keep();
                    }
                    warn!("{why}");
                    return Err(DirectoryError::Server(why));
                }
                Ok(Err(e)) => {
                    warn!(server = %lease.server, "{what} failed, retrying on another connection: {e}");
                    last = DirectoryError::Unreachable(format!("{}: {e}", lease.server));
                }
                Err(_) => {
                    // Held back: the pools leave its connections and try the others first.
                    self.order.failed(&lease.server);
                    warn!(server = %lease.server, "{what}: no answer within {budget:?}; trying another server");
                    last = DirectoryError::Timeout;
                }
            }
        }
        Err(last)
    }

    /// Entries matching `filter` under `base`, fetched in one search (lookups) or in pages.
    pub(super) async fn search(
        &self,
        base: &str,
        filter: &str,
        attrs: &[String],
        paged: bool,
    ) -> Result<Vec<SearchEntry>, DirectoryError> {
        self.search_each(base, filter, attrs, paged, |entry| entry).await
    }

    /// [`LdapDirectory::search`], turning each entry into a `T` as it arrives: a listing of
    /// 100,000 users never holds every raw entry (attribute maps, DNs) at once, only what each
    /// becomes (measured: about 59 MB less at the peak).
    pub(super) async fn search_each<T: Send>(
        &self,
        base: &str,
        filter: &str,
        attrs: &[String],
        paged: bool,
        each: impl Fn(SearchEntry) -> T + Sync,
    ) -> Result<Vec<T>, DirectoryError> {
        debug!(base, filter, "search");
        let each = &each;
        let page_size = i32::try_from(self.page_size).unwrap_or(i32::MAX);
        let started = Instant::now();
        let result = self
            .with_retry("search", |mut ldap| async move {
                let adapters: Vec<Box<dyn Adapter<_, _>>> = if paged {
                    vec![Box::new(EntriesOnly::new()), Box::new(PagedResults::new(page_size))]
                } else {
                    vec![Box::new(EntriesOnly::new())]
                };
                let mut stream =
                    ldap.streaming_search_with(adapters, base, Scope::Subtree, filter, attrs.to_vec()).await?;
                let mut entries = Vec::new();
                while let Some(entry) = stream.next().await? {
                    entries.push(each(SearchEntry::construct(entry)));
                }
                stream.finish().await.success()?;
                Ok(entries)
            })
            .await;
        self.metrics.search(started.elapsed());
        result
    }

    /// The user entry `filter` finds (`key` for the log).
    async fn one_user(&self, filter: &str, key: &str, wanted: Option<&str>) -> Result<Option<Passwd>, DirectoryError> {
        let domain = self.mapped_domain().await?;
        let entries = self.search(&self.users.base, filter, &mapping::user_attributes(&self.users), false).await?;
        Ok(first_mapped(entries, |e| mapping::user_entry(e, &self.users, wanted, domain.as_ref()), "user", key))
    }

    /// The group entry `filter` finds, its members by DN resolved.
    async fn one_group(&self, filter: &str, key: &str, wanted: Option<&str>) -> Result<Option<Group>, DirectoryError> {
        let domain = self.mapped_domain().await?;
        let entries = self.search(&self.groups.base, filter, &self.group_attributes(), false).await?;
        let map = |e: &SearchEntry| {
            mapping::group_entry(e, &self.groups, wanted, domain.as_ref()).map(|g| (g, e.dn.clone(), e.clone()))
        };
        let Some((mut group, dn, entry)) = first_mapped(entries, map, "group", key) else { return Ok(None) };
        let member_dns = self.member_dns(&entry).await?;
        self.add_members_by_dn(&mut group, &dn, member_dns, &DirectoryResolver(self)).await?;
        Ok(Some(group))
    }

    /// The user entry a login name names, with `attrs` (which must include the mapped ones),
    /// and what it maps to: the entry whose `users.name` is exactly `name`; failing that, with
    /// `users.login_alias`, the one entry whose alias is exactly `name`, and only for a name with
    /// an `@` (a principal name: never one a local account such as root has). An alias two
    /// entries claim names nobody: whoever can write their own alias must not pick who they log
    /// in as.
    pub(super) async fn find_user(
        &self,
        name: &str,
        attrs: &[String],
    ) -> Result<Option<(SearchEntry, Passwd)>, DirectoryError> {
        let domain = self.mapped_domain().await?;
        let by_name = filter::equality(&self.users.filter, &self.users.name, name);
        let entries = self.search(&self.users.base, &by_name, attrs, false).await?;
        let exact =
            |e: &SearchEntry| mapping::user_entry(e, &self.users, Some(name), domain.as_ref()).map(|p| (e.clone(), p));
        if let Some(found) = first_mapped(entries, exact, "user", name) {
            return Ok(Some(found));
        }
        let Some(alias) = self.users.login_alias.as_deref().filter(|_| name.contains('@')) else { return Ok(None) };
        let by_alias = filter::equality(&self.users.filter, alias, name);
        let entries = self.search(&self.users.base, &by_alias, attrs, false).await?;
        let mut claimed: Vec<(SearchEntry, Passwd)> = entries
            .into_iter()
            .filter(|e| mapping::has_alias(&e.attrs, &self.users, name))
            .filter_map(|e| mapping::user_entry(&e, &self.users, None, domain.as_ref()).ok().map(|p| (e, p)))
            .collect();
        if claimed.len() > 1 {
            let who: Vec<&str> = claimed.iter().map(|(e, _)| e.dn.as_str()).collect();
            warn!("{alias} {name:?} is claimed by {} entries ({}): refused", who.len(), who.join("; "));
            return Ok(None);
        }
        Ok(claimed.pop())
    }

    /// The filter for the entry with this uid or gid: by `attribute`, or with id mapping by the
    /// SID whose RID the id stands for. `None`: no entry can have it (outside the mapped range).
    async fn id_filter(&self, object_filter: &str, attribute: &str, id: u32) -> Result<Option<String>, DirectoryError> {
        let Some(mapping) = &self.users.id_mapping else {
            return Ok(Some(filter::equality(object_filter, attribute, &id.to_string())));
        };
        let Some(rid) = ad::rid_of(mapping.offset, id) else { return Ok(None) };
        let facts = self.facts().await?;
        let Some(domain) = facts.domain_sid.as_ref() else {
            warn!("id mapping: the server gave no domain SID (defaultNamingContext's objectSid)");
            return Ok(None);
        };
        Ok(domain.with_rid(rid).map(|sid| format!("(&{object_filter}{})", sid.filter())))
    }
}

/// The first entry that maps; the others are logged. Two entries for one name or id is a
/// directory problem the administrator should hear about.
pub(super) fn first_mapped<T>(
    entries: Vec<SearchEntry>,
    map: impl Fn(&SearchEntry) -> Result<T, String>,
    kind: &str,
    key: &str,
) -> Option<T> {
    let mut found = None;
    for entry in &entries {
        match map(entry) {
            Ok(value) if found.is_none() => found = Some(value),
            Ok(_) => warn!("more than one {kind} entry matches {key:?}; using the first"),
            Err(why) => debug!("{kind} entry for {key:?} skipped: {why}"),
        }
    }
    found
}

/// Maps every entry, skipping (and counting in the log) those that cannot be represented, and
/// keeping the first of several entries with one name.
fn map_all<T>(entries: Vec<Result<T, String>>, name: impl Fn(&T) -> &str, kind: &str) -> Vec<T> {
    let mut seen = HashSet::new();
    let mut skipped = 0usize;
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        match entry {
            Ok(value) if seen.insert(name(&value).to_owned()) => out.push(value),
            Ok(_) => skipped += 1,
            Err(why) => {
                debug!("{kind} entry skipped: {why}");
                skipped += 1;
            }
        }
    }
    if skipped > 0 {
        warn!("{skipped} {kind} entries skipped during enumeration (duplicates or unusable; debug logs say which)");
    }
    out
}

impl Directory for LdapDirectory {
    async fn user_by_name(&self, name: &str) -> Result<Option<Passwd>, DirectoryError> {
        let found = self.find_user(name, &mapping::user_attributes(&self.users)).await?;
        Ok(found.map(|(_, passwd)| passwd))
    }

    async fn user_by_uid(&self, uid: u32) -> Result<Option<Passwd>, DirectoryError> {
        let Some(filter) = self.id_filter(&self.users.filter, &self.users.uid_number, uid).await? else {
            return Ok(None);
        };
        self.one_user(&filter, &uid.to_string(), None).await
    }

    async fn group_by_name(&self, name: &str) -> Result<Option<Group>, DirectoryError> {
        let filter = filter::equality(&self.groups.filter, &self.groups.name, name);
        self.one_group(&filter, name, Some(name)).await
    }

    async fn group_by_gid(&self, gid: u32) -> Result<Option<Group>, DirectoryError> {
        let Some(filter) = self.id_filter(&self.groups.filter, &self.groups.gid_number, gid).await? else {
            return Ok(None);
        };
        self.one_group(&filter, &gid.to_string(), None).await
    }

    async fn groups_of_user(&self, user: &str) -> Result<Vec<u32>, DirectoryError> {
        if self.schema == Schema::Ad {
            return self.groups_of_user_by_token(user).await;
        }
        if let Some(dn_attribute) = &self.groups.member_dn {
            return self.groups_of_user_by_dn(dn_attribute, user).await;
        }
        let filter = filter::equality(&self.groups.filter, &self.groups.member, user);
        let entries =
            self.search(&self.groups.base, &filter, std::slice::from_ref(&self.groups.gid_number), true).await?;
        let mut gids: Vec<u32> = entries
            .iter()
            .filter_map(|e| {
                mapping::gid_entry(e, &self.groups, None).inspect_err(|why| debug!("group skipped: {why}")).ok()
            })
            .filter(|&gid| gid != 0)
            .collect();
        gids.sort_unstable();
        gids.dedup();
        Ok(gids)
    }

    async fn all_users(&self) -> Result<Vec<Passwd>, DirectoryError> {
        let attrs = mapping::user_attributes(&self.users);
        let domain = self.mapped_domain().await?;
        let map = |e: SearchEntry| mapping::user_entry(&e, &self.users, None, domain.as_ref());
        let entries = self.search_each(&self.users.base, &self.users.filter, &attrs, true, map).await?;
        Ok(map_all(entries, |p| &p.name, "user"))
    }

    fn server_in_use(&self) -> Option<String> {
        self.order.in_use()
    }

    async fn probe(&self) -> Result<(), DirectoryError> {
        let base = self.users.base.as_str();
        self.with_retry("probe", |mut ldap| async move {
            // The cheapest question with a real answer: does the base entry exist?
            ldap.search(base, Scope::Base, "(objectClass=*)", vec!["1.1"]).await?.success().map(drop)
        })
        .await
    }

    async fn check_password(&self, user: &str, password: &Secret) -> Result<PasswordCheck, DirectoryError> {
        self.check_password_as_user(user, password).await
    }

    async fn account(&self, user: &str) -> Result<Option<AccountState>, DirectoryError> {
        self.account_state(user).await
    }

    async fn user_matches(&self, user: &str, filter: &str) -> Result<bool, DirectoryError> {
        self.user_matches_filter(user, filter).await
    }

    async fn change_password(
        &self,
        user: &str,
        old: Option<&Secret>,
        new: &Secret,
    ) -> Result<PasswordChange, DirectoryError> {
        self.change_password_of(user, old, new).await
    }

    async fn all_groups(&self) -> Result<Vec<Group>, DirectoryError> {
        if self.groups.member_dn.is_some() {
            return Ok(map_all(self.all_groups_by_dn().await?, |g| &g.name, "group"));
        }
        let attrs = mapping::group_attributes(&self.groups);
        let map = |e: SearchEntry| mapping::group_entry(&e, &self.groups, None, None);
        let entries = self.search_each(&self.groups.base, &self.groups.filter, &attrs, true, map).await?;
        Ok(map_all(entries, |g| &g.name, "group"))
    }
}
