//! What the agent learns from the server itself rather than from the config: how it takes a
//! password change (its root DSE announces RFC 3062, or that it is Active Directory), and for
//! AD the domain's SID (ids mapped from RIDs) and maximum password age.
//!
//! Read on first need and again once [`FACTS_LIFETIME`] has passed, so a domain policy change
//! reaches the agent without a restart.

use std::sync::Arc;
use std::time::Duration;

use ldap3::{Scope, SearchEntry, SearchResult};
use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::{info, warn};

use super::ad::{self, Sid};
use super::ldap::LdapDirectory;
use super::{DirectoryError, mapping};

/// How long facts read from the server are trusted.
const FACTS_LIFETIME: Duration = Duration::from_secs(600);
/// After a failed refresh, how long the old facts serve before the next try.
const FACTS_RETRY: Duration = Duration::from_secs(30);
/// The Password Modify extended operation (RFC 3062).
const PASSWORD_MODIFY_OID: &str = "1.3.6.1.4.1.4203.1.11.1";

/// How the server takes a password change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordProtocol {
    /// The Password Modify extended operation (OpenLDAP, 389 DS).
    PasswordModify,
    /// A modify of `unicodePwd`: delete the old value and add the new (Active Directory).
    UnicodePwd,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFacts {
    pub password_protocol: PasswordProtocol,
    /// AD: the SID of the domain at `defaultNamingContext`.
    pub domain_sid: Option<Sid>,
    /// AD: the domain's `maxPwdAge` in seconds; `None` when passwords never expire.
    pub max_password_age: Option<i64>,
}

/// The facts and when they were read.
#[derive(Default)]
pub struct FactsCache(Mutex<Option<(Instant, Arc<ServerFacts>)>>);

impl LdapDirectory {
    /// The server's facts, read now if never read or older than [`FACTS_LIFETIME`].
    pub(super) async fn facts(&self) -> Result<Arc<ServerFacts>, DirectoryError> {
        let mut cached = self.facts.0.lock().await;
        if let Some((read_at, facts)) = cached.as_ref()
            && read_at.elapsed() < FACTS_LIFETIME
        {
            return Ok(facts.clone());
        }
        let facts = match (self.read_facts().await, cached.as_ref()) {
            (Ok(facts), _) => Arc::new(facts),
            // Facts change rarely: stale ones serve better than none while the server is
            // away, and the next try waits a while rather than costing every request a budget.
            (Err(why), Some((_, stale))) => {
                warn!("directory: cannot read the server's facts again ({why}); keeping the ones read before");
                let stale = stale.clone();
                // Dated so that they count as due again after FACTS_RETRY (`checked_sub`: a
                // monotonic clock may have started less than a lifetime ago).
                let dated = Instant::now().checked_sub(FACTS_LIFETIME - FACTS_RETRY).unwrap_or_else(Instant::now);
                *cached = Some((dated, stale.clone()));
                return Ok(stale);
            }
            (Err(why), None) => return Err(why),
        };
        if cached.as_ref().is_none_or(|(_, old)| **old != *facts) {
            info!(
                "directory: password changes by {:?}{}",
                facts.password_protocol,
                facts.domain_sid.as_ref().map_or(String::new(), |sid| format!("; AD domain {sid}"))
            );
        }
        *cached = Some((Instant::now(), facts.clone()));
        Ok(facts)
    }

    /// With id mapping, the SID of the mapped domain (ids of its accounts only); `None` without.
    pub(super) async fn mapped_domain(&self) -> Result<Option<Sid>, DirectoryError> {
        if self.users.id_mapping.is_none() {
            return Ok(None);
        }
        match self.facts().await?.domain_sid.clone() {
            Some(sid) => Ok(Some(sid)),
            None => Err(DirectoryError::Server(
                "id mapping: the server gave no domain SID (defaultNamingContext's objectSid); is it Active Directory?"
                    .into(),
            )),
        }
    }

    async fn read_facts(&self) -> Result<ServerFacts, DirectoryError> {
        let root = self
            .read_entry("", &["supportedCapabilities", "supportedExtension", "defaultNamingContext"])
            .await?
            .unwrap_or_else(|| SearchEntry {
                dn: String::new(),
                attrs: Default::default(),
                bin_attrs: Default::default(),
            });
        let values = |name: &str| {
            root.attrs.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).flat_map(|(_, v)| v.clone()).collect()
        };
        let capabilities: Vec<String> = values("supportedCapabilities");
        let extensions: Vec<String> = values("supportedExtension");
        let is_ad = capabilities.iter().any(|c| c == ad::ACTIVE_DIRECTORY_CAPABILITY);
        if !is_ad && !extensions.iter().any(|e| e == PASSWORD_MODIFY_OID) {
            warn!(
                "the directory announces neither RFC 3062 Password Modify nor Active Directory; trying Password Modify"
            );
        }
        let mut facts = ServerFacts {
            password_protocol: if is_ad { PasswordProtocol::UnicodePwd } else { PasswordProtocol::PasswordModify },
            domain_sid: None,
            max_password_age: None,
        };
        let naming_context = mapping::first_value(&root.attrs, "defaultNamingContext").map(str::to_owned);
        if let (true, Some(domain)) = (is_ad, naming_context)
            && let Some(entry) = self.read_entry(&domain, &["objectSid", "maxPwdAge"]).await?
        {
            facts.domain_sid = mapping::object_sid(&entry).ok();
            facts.max_password_age = mapping::first_value(&entry.attrs, "maxPwdAge")
                .and_then(|v| v.trim().parse().ok())
                .and_then(ad::max_password_age_seconds);
        }
        Ok(facts)
    }

    /// The entry at `dn` (`""`: the root DSE) with `attrs`, if the server shows it.
    async fn read_entry(&self, dn: &str, attrs: &[&str]) -> Result<Option<SearchEntry>, DirectoryError> {
        let attrs: Vec<String> = attrs.iter().map(|a| (*a).to_owned()).collect();
        self.with_retry("reading server facts", |mut ldap| {
            let attrs = attrs.clone();
            async move {
                let SearchResult(entries, result) = ldap.search(dn, Scope::Base, "(objectClass=*)", attrs).await?;
                // Not readable (an ACL, no such entry): no facts from it, not an outage.
                Ok((result.rc == 0).then(|| entries.into_iter().next().map(SearchEntry::construct)).flatten())
            }
        })
        .await
    }
}
