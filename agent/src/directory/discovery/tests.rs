use super::*;
use crate::config::{DirectoryConfig, Transport};

fn record(priority: u16, weight: u16, target: &str) -> SrvRecord {
    SrvRecord { priority, weight, port: 389, target: target.into() }
}

fn targets(records: &[SrvRecord]) -> Vec<&str> {
    records.iter().map(|r| r.target.as_str()).collect()
}

/// A random source that returns `draws` in turn, and checks each is asked within its range.
fn scripted(draws: &[u32]) -> impl FnMut(u32) -> u32 + '_ {
    let mut next = draws.iter();
    move |max| {
        let draw = *next.next().expect("more draws than scripted");
        assert!(draw <= max, "draw {draw} outside 0..={max}");
        draw
    }
}

fn spec(transport: Transport) -> SrvDiscovery {
    SrvDiscovery { domain: "example.org".into(), transport }
}

#[test]
fn lower_priorities_come_first_whatever_the_weights() {
    let records = || vec![record(20, 100, "c"), record(10, 0, "a"), record(30, 5, "d"), record(10, 0, "b")];
    // Priority 10 is all weight 0: one shuffle draw (1 keeps a before b, 0 swaps them); then
    // one draw each for c and d, alone in their priorities.
    let ordered = rfc2782_order(records(), &mut scripted(&[1, 0, 0]));
    assert_eq!(targets(&ordered), ["a", "b", "c", "d"]);
    let ordered = rfc2782_order(records(), &mut scripted(&[0, 0, 0]));
    assert_eq!(targets(&ordered), ["b", "a", "c", "d"]);
}

#[test]
fn within_a_priority_each_draw_picks_the_first_running_sum_reaching_it() {
    // Weights 10, 30, 60: running sums 10, 40, 100 over a draw in 0..=100.
    let records = || vec![record(0, 10, "a"), record(0, 30, "b"), record(0, 60, "c")];
    let order = |draws: &[u32]| targets(&rfc2782_order(records(), &mut scripted(draws))).join(",");
    assert_eq!(order(&[10, 0, 0]), "a,b,c");
    assert_eq!(order(&[11, 0, 0]), "b,a,c");
    assert_eq!(order(&[40, 11, 0]), "b,c,a", "after b, a and c sum to 10 and 70");
    assert_eq!(order(&[41, 10, 0]), "c,a,b");
    assert_eq!(order(&[100, 40, 0]), "c,b,a");
}

#[test]
fn over_every_draw_a_record_leads_in_proportion_to_its_weight() {
    let records = vec![record(0, 1, "light"), record(0, 3, "heavy")];
    let mut leads = std::collections::HashMap::new();
    for first in 0..=4 {
        let ordered = rfc2782_order(records.clone(), &mut scripted(&[first, 0]));
        *leads.entry(ordered[0].target.clone()).or_insert(0) += 1;
    }
    // Draws 0 and 1 reach the light record's running sum (1), 2..=4 the heavy one's (4).
    assert_eq!((leads["light"], leads["heavy"]), (2, 3));
}

#[test]
fn weight_zero_records_lead_only_on_a_draw_of_zero() {
    let records = || vec![record(0, 50, "weighted"), record(0, 0, "zero")];
    let first = |draw| rfc2782_order(records(), &mut scripted(&[draw, 0]))[0].target.clone();
    assert_eq!(first(0), "zero");
    for draw in 1..=50 {
        assert_eq!(first(draw), "weighted", "draw {draw}");
    }
}

#[test]
fn the_os_random_source_stays_in_range_and_varies() {
    let mut random = os_random();
    let draws: Vec<u32> = (0..200).map(|_| random(9)).collect();
    assert!(draws.iter().all(|&d| d <= 9));
    assert!(draws.iter().collect::<std::collections::HashSet<_>>().len() > 5, "{draws:?}");
    assert_eq!(random(0), 0);
}

#[test]
fn servers_keep_their_dns_names_and_follow_tls() {
    let records = vec![record(0, 0, "ldap1.example.org"), record(1, 0, "LDAP2.Example.org")];
    let servers = servers_from(records.clone(), &spec(Transport::StartTls), &mut scripted(&[0, 0])).unwrap();
    let uris: Vec<&str> = servers.iter().map(|s| s.uri.as_str()).collect();
    assert_eq!(uris, ["ldap://ldap1.example.org:389", "ldap://ldap2.example.org:389"]);
    assert_eq!((servers[0].host.as_str(), servers[0].transport), ("ldap1.example.org", Transport::StartTls));

    let ldaps = spec(Transport::Ldaps);
    assert_eq!(ldaps.record_name(), "_ldaps._tcp.example.org");
    assert_eq!(spec(Transport::DangerPlaintext).record_name(), "_ldap._tcp.example.org");
    let servers = servers_from(records, &ldaps, &mut scripted(&[0, 0])).unwrap();
    assert_eq!((servers[0].uri.as_str(), servers[0].transport), ("ldaps://ldap1.example.org:389", Transport::Ldaps));
}

#[test]
fn a_root_target_means_no_service_and_duplicates_count_once() {
    let none = servers_from(vec![record(0, 0, ".")], &spec(Transport::StartTls), &mut scripted(&[]));
    assert!(none.unwrap_err().contains("no such service"));
    assert_eq!(servers_from(vec![], &spec(Transport::StartTls), &mut scripted(&[])).unwrap_err(), "no SRV records");
    let twice = vec![record(0, 0, "a.example.org"), record(5, 0, "a.example.org"), record(9, 0, ".")];
    let servers = servers_from(twice, &spec(Transport::StartTls), &mut scripted(&[0, 0])).unwrap();
    assert_eq!(servers.len(), 1);
}

fn discovered_order() -> ServerOrder {
    let text = "[directory]\ndomain = \"example.org\"\nbase = \"dc=x\"\nfailback = \"30s\"\n";
    let config = crate::config::Config::parse("t.toml".as_ref(), text).unwrap();
    let directory: &DirectoryConfig = &config.directory;
    ServerOrder::for_config(directory, Arc::default())
}

/// The servers' host names, without the domain.
fn hosts(order: &ServerOrder) -> Vec<String> {
    order.servers().iter().map(|s| s.host.trim_end_matches(".example.org").to_owned()).collect()
}

#[tokio::test]
async fn a_failed_lookup_keeps_the_last_list_and_retries_sooner_and_sooner() {
    let order = discovered_order();
    let discovery = order.discovery().unwrap();
    let mut refresher = Refresher::with_random(|_| 0);
    let answer = |targets: &[&str], ttl: u64| {
        let name = |t: &str| if t == "." { t.to_owned() } else { format!("{t}.example.org") };
        let records = targets.iter().enumerate().map(|(i, t)| record(i as u16, 0, &name(t))).collect();
        Ok((records, Duration::from_secs(ttl)))
    };

    // Nothing yet: requests are told why at once.
    assert_eq!(refresher.settle(&order, Err("no such name (NXDOMAIN)".into())), FIRST_RETRY);
    let why = discovery.first_list(Duration::ZERO, || order.len() > 0).await.unwrap_err();
    assert_eq!(why, "DNS SRV lookup for _ldap._tcp.example.org failed: no such name (NXDOMAIN)");
    assert_eq!(refresher.settle(&order, Err("timeout".into())), FIRST_RETRY * 2);

    let generation = order.generation();
    assert_eq!(refresher.settle(&order, answer(&["a", "b"], 300)), Duration::from_secs(300));
    assert_eq!(hosts(&order), ["a", "b"]);
    assert_ne!(order.generation(), generation);
    assert_eq!(discovery.first_list(Duration::ZERO, || order.len() > 0).await, Ok(()));

    // A failure keeps the list; the retries back off to MAX_RETRY, and a success resets them.
    let waits: Vec<Duration> = (0..8).map(|_| refresher.settle(&order, Err("SERVFAIL".into()))).collect();
    assert_eq!(waits[0], FIRST_RETRY);
    assert_eq!(*waits.last().unwrap(), MAX_RETRY);
    assert!(waits.windows(2).all(|w| w[0] <= w[1]), "{waits:?}");
    assert_eq!(hosts(&order), ["a", "b"]);
    assert_eq!(refresher.settle(&order, Err("SERVFAIL".into())), MAX_RETRY);
    assert_eq!(refresher.settle(&order, answer(&["a", "b"], 5)), MIN_REFRESH, "a short TTL is clamped");
    assert_eq!(refresher.settle(&order, Err("SERVFAIL".into())), FIRST_RETRY);
    assert_eq!(refresher.settle(&order, answer(&["a", "b"], 86_400)), MAX_REFRESH, "a long one too");

    // A "." answer is a failure too: the list stays.
    assert_eq!(refresher.settle(&order, answer(&["."], 60)), FIRST_RETRY);
    assert_eq!(hosts(&order), ["a", "b"]);
    refresher.settle(&order, answer(&["c", "a"], 60));
    assert_eq!(hosts(&order), ["c", "a"]);
}

#[tokio::test]
async fn the_same_records_keep_the_order_chosen_once() {
    let order = discovered_order();
    let equal = || Ok((vec![record(0, 10, "a.example.org"), record(0, 10, "b.example.org")], Duration::from_secs(60)));
    // The first draw puts b first; a different draw later must not reshuffle the same records.
    let mut draws = vec![20, 0].into_iter();
    let mut refresher = Refresher::with_random(move |_| draws.next().unwrap_or(0));
    refresher.settle(&order, equal());
    assert_eq!(hosts(&order), ["b", "a"]);
    let generation = order.generation();
    refresher.settle(&order, equal());
    assert_eq!((hosts(&order), order.generation()), (vec!["b".to_owned(), "a".to_owned()], generation));
}

#[tokio::test]
async fn without_any_lookup_finished_requests_wait_a_bounded_time() {
    let order = discovered_order();
    let discovery = order.discovery().unwrap();
    let why = discovery.first_list(Duration::from_millis(10), || false).await.unwrap_err();
    assert_eq!(why, "DNS SRV lookup for _ldap._tcp.example.org has not answered yet");
}

/// Found in review: a forged answer naming a host outside the domain is dropped; with nothing
/// else left, the lookup counts as failed (the list found before is kept).
#[test]
fn targets_outside_the_domain_are_dropped() {
    let spec = spec(Transport::StartTls);
    let records = vec![record(0, 0, "ldap.attacker.net"), record(1, 0, "dc1.example.org")];
    let servers = servers_from(records, &spec, &mut |_| 0).unwrap();
    assert_eq!(servers.iter().map(|s| s.host.as_str()).collect::<Vec<_>>(), ["dc1.example.org"]);
    let why = servers_from(vec![record(0, 0, "ldap.attacker.net")], &spec, &mut |_| 0).unwrap_err();
    assert!(why.contains("not in example.org"), "{why}");
}
