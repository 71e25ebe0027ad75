use std::sync::Arc;

use super::*;

/// `name value` for every sample line, labels included in the name.
fn samples(text: &str) -> std::collections::HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

#[test]
fn every_metric_is_present_before_anything_happens() {
    let metrics = Metrics::default();
    metrics.add_server("ldaps://ldap.example.org");
    let text = metrics.render();
    let samples = samples(&text);
    for name in [
        "lanyard_lookups_total",
        "lanyard_cache_memory_hits_total",
        "lanyard_cache_disk_hits_total",
        "lanyard_cache_stale_answers_total",
        "lanyard_cache_misses_total",
        "lanyard_offline",
        "lanyard_offline_seconds_total",
        "lanyard_rate_limited_attempts_total",
        "lanyard_directory_connections{server=\"ldaps://ldap.example.org\"}",
        "lanyard_directory_binds_total{kind=\"service\",result=\"success\"}",
        "lanyard_directory_binds_total{kind=\"user\",result=\"invalid_credentials\"}",
        "lanyard_directory_binds_total{kind=\"user\",result=\"error\"}",
        "lanyard_directory_searches_total",
        "lanyard_directory_search_duration_seconds_count",
        "lanyard_directory_search_duration_seconds_sum",
        "lanyard_directory_search_duration_seconds_bucket{le=\"+Inf\"}",
    ] {
        assert_eq!(samples.get(name), Some(&0.0), "{name} missing or not zero in\n{text}");
    }
}

#[test]
fn counter_families_are_named_like_their_samples_for_the_text_format() {
    let text = Metrics::default().render();
    assert!(text.contains("# TYPE lanyard_lookups_total counter\n"), "{text}");
    assert!(text.contains("# HELP lanyard_lookups_total "), "{text}");
    assert!(text.contains("# TYPE lanyard_offline gauge\n"), "{text}");
    assert!(text.contains("# TYPE lanyard_directory_search_duration_seconds histogram\n"), "{text}");
    assert!(!text.contains("# EOF") && !text.contains("# UNIT"), "{text}");
}

#[test]
fn counters_move() {
    let metrics = Arc::new(Metrics::default());
    metrics.lookups.inc();
    metrics.cache_misses.inc();
    metrics.rate_limited.inc();
    metrics.bind(BindKind::User, BindResult::Success);
    metrics.bind(BindKind::User, BindResult::InvalidCredentials);
    metrics.bind(BindKind::User, BindResult::InvalidCredentials);
    metrics.search(Duration::from_millis(3));
    let open = metrics.connection_opened("ldap://a");
    let _other = metrics.connection_opened("ldap://a");
    let samples = samples(&metrics.render());
    assert_eq!(samples["lanyard_lookups_total"], 1.0);
    assert_eq!(samples["lanyard_cache_misses_total"], 1.0);
    assert_eq!(samples["lanyard_rate_limited_attempts_total"], 1.0);
    assert_eq!(samples["lanyard_directory_binds_total{kind=\"user\",result=\"success\"}"], 1.0);
    assert_eq!(samples["lanyard_directory_binds_total{kind=\"user\",result=\"invalid_credentials\"}"], 2.0);
    assert_eq!(samples["lanyard_directory_searches_total"], 1.0);
    assert_eq!(samples["lanyard_directory_search_duration_seconds_bucket{le=\"0.005\"}"], 1.0);
    assert_eq!(samples["lanyard_directory_search_duration_seconds_bucket{le=\"0.0025\"}"], 0.0);
    assert_eq!(samples["lanyard_directory_connections{server=\"ldap://a\"}"], 2.0);
    drop(open);
    let samples = super::tests::samples(&metrics.render());
    assert_eq!(
        samples["lanyard_directory_connections{server=\"ldap://a\"}"], 1.0,
        "a closed connection is no longer counted"
    );
}

#[tokio::test(start_paused = true)]
async fn time_offline_counts_across_transitions_and_up_to_each_render() {
    let metrics = Metrics::default();
    metrics.set_offline(true);
    tokio::time::advance(Duration::from_secs(10)).await;
    let samples1 = samples(&metrics.render());
    assert_eq!(samples1["lanyard_offline"], 1.0);
    assert_eq!(samples1["lanyard_offline_seconds_total"], 10.0, "counted up to the render");
    tokio::time::advance(Duration::from_secs(5)).await;
    metrics.set_offline(false);
    tokio::time::advance(Duration::from_secs(100)).await;
    let samples2 = samples(&metrics.render());
    assert_eq!(samples2["lanyard_offline"], 0.0);
    assert_eq!(samples2["lanyard_offline_seconds_total"], 15.0, "time online is not counted");
}

#[test]
fn the_certificate_expiry_appears_once_known() {
    let metrics = Metrics::default();
    assert!(!metrics.render().contains("lanyard_directory_certificate_expiry_timestamp_seconds{"));
    metrics.set_certificate_expiry("ldaps://a", 1_900_000_000);
    let samples = samples(&metrics.render());
    assert_eq!(
        samples["lanyard_directory_certificate_expiry_timestamp_seconds{server=\"ldaps://a\"}"],
        1_900_000_000.0
    );
}

#[tokio::test(start_paused = true)]
async fn a_certificate_is_read_again_only_after_an_hour() {
    let metrics = Metrics::default();
    assert!(metrics.certificate_read_due("ldaps://a"));
    assert!(!metrics.certificate_read_due("ldaps://a"), "a reconnect storm reads it once");
    assert!(metrics.certificate_read_due("ldaps://b"));
    tokio::time::advance(CERTIFICATE_REREAD).await;
    assert!(metrics.certificate_read_due("ldaps://a"));
}
