//! `directory.domain`: the servers are the targets of the domain's SRV records
//! (`_ldap._tcp.<domain>`, or `_ldaps._tcp.<domain>` with `tls = "ldaps"`), in RFC 2782 order.
//!
//! A background task looks them up when the agent first needs a server, then again when the
//! records' TTL runs out (kept within [`MIN_REFRESH`]..[`MAX_REFRESH`]), sooner after a failure
//! ([`FIRST_RETRY`], doubling up to [`MAX_RETRY`]), and soon (at most every [`MIN_SPACING`])
//! when no listed server answered. A changed record set replaces `ServerOrder`'s list; the
//! same set keeps the list as it is, so the weighted random order chosen once is not shuffled
//! at every refresh (and connections do not move between servers of equal rank). A failed
//! lookup keeps the last good list; with none yet, requests fail at once with the lookup's
//! error instead of waiting for it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::servers::ServerOrder;
use crate::config::{Server, SrvDiscovery, Transport};
use crate::metrics::Metrics;

/// Bounds on how long a list is used before the records are looked up again: DNS TTLs of
/// zero or of days both occur.
pub const MIN_REFRESH: Duration = Duration::from_secs(30);
pub const MAX_REFRESH: Duration = Duration::from_secs(3600);
/// After a failed lookup, the next comes this much later, doubling up to [`MAX_RETRY`].
pub const FIRST_RETRY: Duration = Duration::from_secs(2);
pub const MAX_RETRY: Duration = Duration::from_secs(60);
/// Lookups asked for early (no server answered) start at least this long after the last one.
pub const MIN_SPACING: Duration = Duration::from_secs(5);
/// The most one lookup may take, whatever the resolver's own timeouts and attempts add up to.
const LOOKUP_LIMIT: Duration = Duration::from_secs(15);

/// One SRV record (RFC 2782). `target` is in lower case without the trailing dot; `"."` is
/// the root: "no such service here".
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SrvRecord {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: String,
}

/// RFC 2782's order: ascending priority; within one priority, a weighted random order, each
/// pick made among the records left with a chance proportional to its weight. Weight-0
/// records go first in each draw, so they are picked only when the draw is 0: rarely, but
/// never never. `random(n)` must return a uniform number in `0..=n`.
pub fn rfc2782_order(mut records: Vec<SrvRecord>, random: &mut impl FnMut(u32) -> u32) -> Vec<SrvRecord> {
    records.sort_by_key(|r| r.priority);
    let mut ordered = Vec::with_capacity(records.len());
    let mut rest = records.into_iter().peekable();
    while let Some(first) = rest.next() {
        let mut group = vec![first];
        while let Some(next) = rest.next_if(|r| r.priority == group[0].priority) {
            group.push(next);
        }
        // All weights 0 (common in zones): the draw would always take them in the same
        // (sorted) order on every host; a shuffle spreads the hosts over them instead.
        if group.iter().all(|r| r.weight == 0) {
            for i in (1..group.len()).rev() {
                let j = random(u32::try_from(i).unwrap_or(u32::MAX)) as usize;
                group.swap(i, j.min(i));
            }
            ordered.append(&mut group);
            continue;
        }
        // Stable: weight-0 records first, the others in the order they came.
        group.sort_by_key(|r| r.weight != 0);
        while !group.is_empty() {
            let total: u32 = group.iter().map(|r| u32::from(r.weight)).sum();
            let draw = random(total).min(total);
            let mut running = 0;
            let pick = group
                .iter()
                .position(|r| {
                    running += u32::from(r.weight);
                    running >= draw
                })
                .unwrap_or(0);
            ordered.push(group.remove(pick));
        }
    }
    ordered
}

/// The servers `records` name, in RFC 2782 order, each once.
pub fn servers_from(
    records: Vec<SrvRecord>,
    spec: &SrvDiscovery,
    random: &mut impl FnMut(u32) -> u32,
) -> Result<Vec<Server>, String> {
    if records.is_empty() {
        return Err("no SRV records".into());
    }
    let offered: Vec<SrvRecord> = records.into_iter().filter(|r| r.target != "." && r.port != 0).collect();
    if offered.is_empty() {
        return Err("the domain says it offers no such service (SRV target \".\")".into());
    }
    let mut servers: Vec<Server> = Vec::with_capacity(offered.len());
    let mut refused = Vec::new();
    for record in rfc2782_order(offered, random) {
        match spec.server(&record.target, record.port) {
            Ok(server) if !servers.iter().any(|s| s.uri == server.uri) => servers.push(server),
            Ok(_) => {}
            Err(why) => refused.push(why),
        }
    }
    if !refused.is_empty() {
        warn!("{}", refused.join("; "));
    }
    if servers.is_empty() {
        return Err(format!("no usable SRV target ({})", refused.join("; ")));
    }
    Ok(servers)
}

/// Looks the records up with the system's resolver configuration, read anew each time (a
/// laptop's `/etc/resolv.conf` changes with its network). Also returns the records' TTL.
pub async fn lookup(spec: &SrvDiscovery) -> Result<(Vec<SrvRecord>, Duration), String> {
    let resolver = TokioResolver::builder_tokio()
        .map_err(|e| format!("reading the resolver configuration (/etc/resolv.conf): {e}"))?
        .build()
        .map_err(|e| format!("setting up the resolver: {e}"))?;
    // Fully qualified: the search list of resolv.conf must not be appended.
    let name = Name::from_ascii(format!("{}.", spec.record_name())).map_err(|e| e.to_string())?;
    let answer = tokio::time::timeout(LOOKUP_LIMIT, resolver.srv_lookup(name))
        .await
        .map_err(|_| format!("no answer within {LOOKUP_LIMIT:?}"))?
        .map_err(|e| match spec.transport {
            // Active Directory publishes _ldap._tcp only.
            Transport::Ldaps => {
                format!("{}; Active Directory publishes no _ldaps._tcp records: use StartTLS", describe(&e))
            }
            _ => describe(&e),
        })?;
    let mut ttl = None::<u32>;
    let mut records = Vec::new();
    for record in answer.answers() {
        let RData::SRV(srv) = &record.data else { continue };
        ttl = Some(ttl.map_or(record.ttl, |t| t.min(record.ttl)));
        let target = if srv.target.is_root() {
            ".".to_owned()
        } else {
            srv.target.to_ascii().trim_end_matches('.').to_lowercase()
        };
        records.push(SrvRecord { priority: srv.priority, weight: srv.weight, port: srv.port, target });
    }
    Ok((records, Duration::from_secs(u64::from(ttl.unwrap_or(0)))))
}

/// The resolver's error, said plainly where it is a usual one.
fn describe(error: &NetError) -> String {
    match error {
        NetError::Dns(DnsError::NoRecordsFound(none)) => match none.response_code {
            ResponseCode::NXDomain => "no such name (NXDOMAIN)".into(),
            ResponseCode::NoError => "no SRV records at that name".into(),
            code => format!("the DNS server answered {code}"),
        },
        NetError::Dns(DnsError::ResponseCode(code)) => format!("the DNS server answered {code}"),
        NetError::Timeout => "no DNS server answered (timed out)".into(),
        other => other.to_string(),
    }
}

/// Uniform numbers for [`rfc2782_order`], from a generator seeded by std's per-process random
/// keys (`RandomState`): good enough to spread a fleet over equal servers, no extra dependency.
pub fn os_random() -> impl FnMut(u32) -> u32 {
    use std::hash::BuildHasher;
    let mut state = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
    move |max| {
        // SplitMix64.
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        u32::try_from(z % (u64::from(max) + 1)).unwrap_or(max)
    }
}

/// What `ServerOrder` keeps about the lookups of `directory.domain`.
#[derive(Debug)]
pub(crate) struct Discovery {
    spec: SrvDiscovery,
    metrics: Arc<Metrics>,
    started: AtomicBool,
    /// Asks the refresher for a lookup before its time.
    wanted: Arc<Notify>,
    /// `None` until the first lookup has finished; then whether the last one failed, and why.
    settled: watch::Sender<Option<Result<(), String>>>,
}

impl Discovery {
    pub fn new(spec: SrvDiscovery, metrics: Arc<Metrics>) -> Discovery {
        let (settled, _) = watch::channel(None);
        Discovery { spec, metrics, started: AtomicBool::new(false), wanted: Arc::default(), settled }
    }

    /// Starts the refresher, once; it ends when `order` is dropped.
    pub fn start(&self, order: &Arc<ServerOrder>) {
        if !self.started.swap(true, Ordering::AcqRel) {
            tokio::spawn(refresh_forever(Arc::downgrade(order), self.wanted.clone()));
        }
    }

    /// Asks for a lookup soon (not sooner than [`MIN_SPACING`] after the last).
    pub fn lookup_soon(&self) {
        self.wanted.notify_one();
    }

    /// Waits at most `budget` for the first lookup when there is no list (`has_list`); then
    /// fails with why there is still none.
    pub async fn first_list(&self, budget: Duration, has_list: impl Fn() -> bool) -> Result<(), String> {
        if has_list() {
            return Ok(());
        }
        let mut settled = self.settled.subscribe();
        let waited = tokio::time::timeout(budget, settled.wait_for(Option::is_some)).await;
        if has_list() {
            return Ok(());
        }
        let name = self.spec.record_name();
        match waited.as_ref().ok().and_then(|r| r.as_deref().ok()) {
            Some(Some(Err(why))) => Err(format!("DNS SRV lookup for {name} failed: {why}")),
            _ => Err(format!("DNS SRV lookup for {name} has not answered yet")),
        }
    }
}

/// Looks the records up for as long as the directory (`order`) lives.
async fn refresh_forever(order: Weak<ServerOrder>, wanted: Arc<Notify>) {
    let mut refresher = Refresher::with_random(os_random());
    loop {
        let started = Instant::now();
        let Some(order) = order.upgrade() else { return };
        let Some(discovery) = order.discovery() else { return };
        let result = lookup(&discovery.spec).await;
        let wait = refresher.settle(&order, result);
        // Registered before the wait: a nudge during it counts, as does one stored meanwhile.
        let nudged = wanted.notified();
        drop(order);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = nudged => tokio::time::sleep_until(started + MIN_SPACING).await,
        }
    }
}

/// The refresh policy, apart from the lookups themselves (so tests can feed it answers).
pub(crate) struct Refresher<R> {
    /// The records the current list was made from, sorted.
    records: Option<Vec<SrvRecord>>,
    retry: Duration,
    random: R,
}

impl<R: FnMut(u32) -> u32> Refresher<R> {
    pub fn with_random(random: R) -> Refresher<R> {
        Refresher { records: None, retry: FIRST_RETRY, random }
    }

    /// Applies one lookup's result to `order` (its discovery must be set) and returns how long
    /// to wait before the next.
    pub fn settle(&mut self, order: &ServerOrder, result: Result<(Vec<SrvRecord>, Duration), String>) -> Duration {
        let Some(discovery) = order.discovery() else { return MAX_REFRESH };
        let name = discovery.spec.record_name();
        let outcome = result.and_then(|(mut records, ttl)| {
            records.sort();
            if self.records.as_ref() != Some(&records) {
                let servers = servers_from(records.clone(), &discovery.spec, &mut self.random)?;
                for server in &servers {
                    discovery.metrics.add_server(&server.uri);
                }
                let before = order.servers();
                if order.replace(servers) {
                    let was = if before.is_empty() { String::new() } else { format!(" (was: {})", uris(&before)) };
                    info!(records = %name, "directory servers from DNS: {}{was}", uris(&order.servers()));
                }
                self.records = Some(records);
            } else {
                debug!(records = %name, "DNS SRV records unchanged");
            }
            Ok(ttl.clamp(MIN_REFRESH, MAX_REFRESH))
        });
        let was_failing = discovery.settled.borrow().as_ref().is_some_and(Result::is_err);
        let (wait, settled) = match outcome {
            Ok(wait) => {
                if was_failing {
                    info!(records = %name, "DNS SRV lookup works again");
                }
                self.retry = FIRST_RETRY;
                (wait, Ok(()))
            }
            Err(why) => {
                let wait = self.retry;
                self.retry = (self.retry * 2).min(MAX_RETRY);
                let kept = match order.len() {
                    0 => "no directory server known yet".to_owned(),
                    _ => format!("keeping the servers found before ({})", uris(&order.servers())),
                };
                // Once per outage at warn: while offline, lookups may come every few seconds.
                if was_failing {
                    debug!("DNS SRV lookup for {name} failed: {why}; {kept}; next try in {wait:?}");
                } else {
                    warn!("DNS SRV lookup for {name} failed: {why}; {kept}; next try in {wait:?}");
                }
                (wait, Err(why))
            }
        };
        discovery.settled.send_replace(Some(settled));
        wait
    }
}

fn uris(servers: &[Server]) -> String {
    servers.iter().map(|s| s.uri.as_str()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests;
