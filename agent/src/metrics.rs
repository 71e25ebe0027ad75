//! The agent's metrics, in the Prometheus text format (version 0.0.4): `lanyardctl metrics` asks
//! for them over the socket, and an optional HTTP listener on loopback ([`crate::metrics_http`])
//! serves them to a scraper.
//!
//! One [`Metrics`] per agent, shared as an `Arc` by the service, the directory's pools and
//! [`crate::state::Health`]; every counter is an atomic, so recording costs a few nanoseconds
//! on the request path. Labels name a server URI at most, never a user: a label per user would
//! grow without bound and put names into every scrape.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode_registry;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use tokio::time::Instant;

/// The media type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Search latency buckets, in seconds: from a loopback answer (well under 1 ms) to the default
/// `directory.timeout` (3 s).
const SEARCH_BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// How often a server's certificate is read again (after a reconnect) for its expiry time.
pub const CERTIFICATE_REREAD: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServerLabel {
    pub server: String,
}

/// Who bound: the service account (when a pooled connection opens) or a user logging in.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum BindKind {
    Service,
    User,
}

/// What a bind came to.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum BindResult {
    Success,
    /// invalidCredentials (49).
    InvalidCredentials,
    /// Any other result code, a broken connection or a timeout.
    Error,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BindLabels {
    kind: &'static str,
    result: &'static str,
}

impl BindLabels {
    fn new(kind: BindKind, result: BindResult) -> BindLabels {
        let kind = match kind {
            BindKind::Service => "service",
            BindKind::User => "user",
        };
        let result = match result {
            BindResult::Success => "success",
            BindResult::InvalidCredentials => "invalid_credentials",
            BindResult::Error => "error",
        };
        BindLabels { kind, result }
    }
}

#[derive(Debug)]
pub struct Metrics {
    pub lookups: Counter,
    pub cache_memory_hits: Counter,
    pub cache_disk_hits: Counter,
    pub cache_stale_answers: Counter,
    pub cache_misses: Counter,
    /// Login and password-change attempts refused by the failure limiter.
    pub rate_limited: Counter,
    /// Snapshots written for the NSS module's fast path, and the size of the last one.
    pub snapshots_published: Counter,
    pub snapshot_bytes: Gauge,
    offline: Gauge,
    offline_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    /// While offline: since when the time offline is not yet in `offline_seconds`.
    offline_uncounted_since: Mutex<Option<Instant>>,
    connections: Family<ServerLabel, Gauge>,
    binds: Family<BindLabels, Counter>,
    searches: Counter,
    search_seconds: Histogram,
    certificate_expiry: Family<ServerLabel, Gauge>,
    /// When each server's certificate was last read for `certificate_expiry`.
    certificate_read: Mutex<std::collections::HashMap<String, Instant>>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let metrics = Metrics {
            lookups: Counter::default(),
            cache_memory_hits: Counter::default(),
            cache_disk_hits: Counter::default(),
            cache_stale_answers: Counter::default(),
            cache_misses: Counter::default(),
            rate_limited: Counter::default(),
            snapshots_published: Counter::default(),
            snapshot_bytes: Gauge::default(),
            offline: Gauge::default(),
            offline_seconds: Counter::default(),
            offline_uncounted_since: Mutex::new(None),
            connections: Family::default(),
            binds: Family::default(),
            searches: Counter::default(),
            search_seconds: Histogram::new(SEARCH_BUCKETS),
            certificate_expiry: Family::default(),
            certificate_read: Mutex::default(),
        };
        // Every combination from the start, at zero: a scraper sees the series before the
        // first event, and `rate()` does not miss the first increase.
        for kind in [BindKind::Service, BindKind::User] {
            for result in [BindResult::Success, BindResult::InvalidCredentials, BindResult::Error] {
                drop(metrics.binds.get_or_create(&BindLabels::new(kind, result)));
            }
        }
        metrics
    }
}

impl Metrics {
    /// Makes `server`'s series exist (at zero) before its first connection.
    pub fn add_server(&self, server: &str) {
        drop(self.connections.get_or_create(&ServerLabel { server: server.to_owned() }));
    }

    /// Counts a connection to `server` as open until the returned guard is dropped.
    pub fn connection_opened(self: &std::sync::Arc<Self>, server: &str) -> OpenConnection {
        let label = ServerLabel { server: server.to_owned() };
        self.connections.get_or_create(&label).inc();
        OpenConnection { metrics: self.clone(), label }
    }

    pub fn bind(&self, kind: BindKind, result: BindResult) {
        self.binds.get_or_create(&BindLabels::new(kind, result)).inc();
    }

    /// One search (retries included) that took `elapsed`, whatever its outcome.
    pub fn search(&self, elapsed: Duration) {
        self.searches.inc();
        self.search_seconds.observe(elapsed.as_secs_f64());
    }

    /// When `server`'s certificate expires, in Unix seconds.
    pub fn set_certificate_expiry(&self, server: &str, unix_seconds: i64) {
        self.certificate_expiry.get_or_create(&ServerLabel { server: server.to_owned() }).set(unix_seconds);
    }

    /// Whether `server`'s certificate should be read again for its expiry: not within the last
    /// [`CERTIFICATE_REREAD`]. Claims the read when it says yes.
    pub fn certificate_read_due(&self, server: &str) -> bool {
        let mut read = self.certificate_read.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        if read.get(server).is_some_and(|last| now.duration_since(*last) < CERTIFICATE_REREAD) {
            return false;
        }
        read.insert(server.to_owned(), now);
        true
    }

    /// The agent went offline (`true`) or came back (`false`): sets the gauge and counts the
    /// time offline so far.
    pub fn set_offline(&self, offline: bool) {
        let mut since = self.lock_offline_since();
        self.count_offline_time(&mut since);
        *since = offline.then(Instant::now);
        self.offline.set(i64::from(offline));
    }

    fn count_offline_time(&self, since: &mut Option<Instant>) {
        if let Some(start) = since {
            let now = Instant::now();
            self.offline_seconds.inc_by(now.duration_since(*start).as_secs_f64());
            *start = now;
        }
    }

    fn lock_offline_since(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.offline_uncounted_since.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The Prometheus text exposition (version 0.0.4) of every metric.
    pub fn render(&self) -> String {
        // Time offline counts up to this scrape, not only to the last transition.
        self.count_offline_time(&mut self.lock_offline_since());
        let mut registry = Registry::with_prefix("lanyard");
        registry.register("lookups", "Lookups answered", self.lookups.clone());
        registry.register(
            "snapshots_published",
            "Snapshots written for the NSS module's in-process fast path",
            self.snapshots_published.clone(),
        );
        registry.register("snapshot_bytes", "Size of the last snapshot written", self.snapshot_bytes.clone());
        registry.register("cache_memory_hits", "Lookups answered from memory", self.cache_memory_hits.clone());
        registry.register("cache_disk_hits", "Lookups answered from the disk cache", self.cache_disk_hits.clone());
        registry.register(
            "cache_stale_answers",
            "Lookups answered with a stale entry (refreshed in the background or offline)",
            self.cache_stale_answers.clone(),
        );
        registry.register("cache_misses", "Lookups the directory had to answer", self.cache_misses.clone());
        registry.register("offline", "1 while the directory cannot be reached", self.offline.clone());
        registry.register_with_unit(
            "offline",
            "Time spent offline since the agent started",
            Unit::Seconds,
            self.offline_seconds.clone(),
        );
        registry.register(
            "rate_limited_attempts",
            "Login and password-change attempts refused after too many failures",
            self.rate_limited.clone(),
        );
        registry.register(
            "directory_connections",
            "Open connections to each directory server (searches and logins)",
            self.connections.clone(),
        );
        registry.register("directory_binds", "Binds by kind (service account or user) and result", self.binds.clone());
        registry.register("directory_searches", "Directory searches, retries included", self.searches.clone());
        registry.register_with_unit(
            "directory_search_duration",
            "How long directory searches took, retries included",
            Unit::Seconds,
            self.search_seconds.clone(),
        );
        // No sample until a server's certificate has been read.
        registry.register_with_unit(
            "directory_certificate_expiry_timestamp",
            "When each directory server's certificate expires, in Unix time",
            Unit::Seconds,
            self.certificate_expiry.clone(),
        );
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode_registry(&mut text, &registry);
        to_text_format(&text)
    }
}

/// prometheus-client writes OpenMetrics, whose counter families are named without `_total`
/// while their samples carry it. Parsers of the older text format (Prometheus's `text/plain`,
/// Python's `prometheus_client.parser`) then see an empty counter and an untyped sample; naming
/// the family like its samples makes it one counter in both. `# UNIT` lines, which the older
/// format does not know, are left out.
fn to_text_format(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> =
        openmetrics.lines().filter_map(|line| line.strip_prefix("# TYPE ")?.strip_suffix(" counter")).collect();
    let mut out = String::with_capacity(openmetrics.len() + 16 * counters.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let header = ["# HELP ", "# TYPE "].into_iter().find_map(|p| Some((p, line.strip_prefix(p)?)));
        match header {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let total = if counters.contains(name) { "_total" } else { "" };
                out.push_str(&format!("{prefix}{name}{total} {tail}"));
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// An open connection, counted in `lanyard_directory_connections` until dropped.
#[derive(Debug)]
pub struct OpenConnection {
    metrics: std::sync::Arc<Metrics>,
    label: ServerLabel,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.metrics.connections.get_or_create(&self.label).dec();
    }
}

#[cfg(test)]
mod tests;
