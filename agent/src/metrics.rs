//! The agent's metrics, in the Prometheus text format: `lanyardctl metrics` asks for them over
//! the socket, and an optional HTTP listener on loopback serves them to a scraper.
//!
//! One [`Metrics`] per agent, shared by reference; every counter is an atomic, so recording
//! costs a few nanoseconds on the request path.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Default)]
pub struct Metrics {
    pub lookups: Counter,
    pub cache_memory_hits: Counter,
    pub cache_disk_hits: Counter,
    pub cache_stale_answers: Counter,
    pub cache_misses: Counter,
    pub offline: Gauge,
}

impl Metrics {
    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut registry = Registry::with_prefix("lanyard");
        registry.register("lookups", "Lookups answered", self.lookups.clone());
        registry.register("cache_memory_hits", "Lookups answered from memory", self.cache_memory_hits.clone());
        registry.register("cache_disk_hits", "Lookups answered from the disk cache", self.cache_disk_hits.clone());
        registry.register(
            "cache_stale_answers",
            "Lookups answered with a stale entry (refreshed in the background or offline)",
            self.cache_stale_answers.clone(),
        );
        registry.register("cache_misses", "Lookups the directory had to answer", self.cache_misses.clone());
        registry.register("offline", "1 while the directory cannot be reached", self.offline.clone());
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &registry);
        text
    }
}
