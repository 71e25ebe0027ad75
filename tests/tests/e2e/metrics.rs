//! The agent's metrics against the real slapd: the same text from `Request::Metrics` on the
//! socket and from the HTTP listener (`[metrics] listen`), parsed by a real Prometheus parser
//! (Debian's python3-prometheus-client), and its counters moving with lookups and logins.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use lanyard_proto::{Client, Deadlines, Request, Response};
use lanyard_tests::fixture::ALICE;

use crate::common::{PamSetup, assert_pam_error, assert_pam_success, pam_setup_with};
use lanyard_tests::pam::PamCode;

/// Debian's interpreter, which has python3-prometheus-client (`tests/install-deps.sh`); not
/// whatever `python3` comes first on PATH.
const PYTHON: &str = "/usr/bin/python3";

/// Parses Prometheus text with `prometheus_client.parser` and prints each family's type and
/// samples as JSON-ish lines: `family<TAB>type<TAB>sample{labels}<TAB>value`.
const PARSE: &str = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    if not family.samples:
        print(f"{family.name}\t{family.type}\t\t")
    for s in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        name = f"{s.name}{{{labels}}}" if labels else s.name
        print(f"{family.name}\t{family.type}\t{name}\t{s.value}")
"#;

/// What the real parser made of a metrics text.
#[derive(Debug)]
struct Parsed {
    /// Family name → type.
    types: BTreeMap<String, String>,
    /// Sample name with sorted labels → value.
    samples: BTreeMap<String, f64>,
}

impl Parsed {
    fn value(&self, sample: &str) -> f64 {
        *self.samples.get(sample).unwrap_or_else(|| panic!("no sample {sample} in {:#?}", self.samples))
    }
}

fn parse(text: &str) -> Parsed {
    let mut child = Command::new(PYTHON)
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running /usr/bin/python3 (tests/install-deps.sh installs python3-prometheus-client)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parser refused the text:\n{}\n---\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut parsed = Parsed { types: BTreeMap::new(), samples: BTreeMap::new() };
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        parsed.types.insert(fields[0].to_owned(), fields[1].to_owned());
        if !fields[2].is_empty() {
            parsed.samples.insert(fields[2].to_owned(), fields[3].parse().unwrap());
        }
    }
    parsed
}

fn over_socket(s: &PamSetup) -> String {
    match Client::call(&s.agent.socket(), &Request::Metrics, Deadlines::default()).unwrap() {
        Response::Metrics(text) => text,
        other => panic!("expected metrics, got {other:?}"),
    }
}

/// `GET path` on the listener: the status line, the headers and the body.
fn over_http(port: u16, path: &str) -> (String, String, String) {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no head in {response:?}"));
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_owned(), headers.to_owned(), body.to_owned())
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port()
}

fn lookup_alice(s: &PamSetup) {
    match Client::call(&s.agent.socket(), &Request::UserByName("alice".into()), Deadlines::default()).unwrap() {
        Response::User(passwd) => assert_eq!(passwd.name, "alice"),
        other => panic!("expected alice, got {other:?}\n{}", s.agent.log()),
    }
}

#[test]
fn metrics_parse_as_prometheus_text_and_move_with_lookups_and_logins() {
    let port = free_port();
    let s = pam_setup_with(|config| config.section(&format!("[metrics]\nlisten = \"127.0.0.1:{port}\"")), &[]);
    let server = format!("server=\"{}\"", s.slapd.uri_starttls());
    let before = parse(&over_socket(&s));

    lookup_alice(&s);
    lookup_alice(&s);
    assert_pam_success(&s.pam.authenticate("alice", ALICE.password).unwrap(), &s.agent);
    assert_pam_error(&s.pam.authenticate("alice", "not-Alices-password-1").unwrap(), PamCode::AuthErr, &s.agent);

    let text = over_socket(&s);
    assert!(!text.contains("alice"), "a user name in the metrics:\n{text}");
    let after = parse(&text);
    for (family, kind) in [
        ("lanyard_lookups", "counter"),
        ("lanyard_cache_memory_hits", "counter"),
        ("lanyard_cache_misses", "counter"),
        ("lanyard_cache_stale_answers", "counter"),
        ("lanyard_cache_disk_hits", "counter"),
        ("lanyard_offline", "gauge"),
        ("lanyard_offline_seconds", "counter"),
        ("lanyard_rate_limited_attempts", "counter"),
        ("lanyard_snapshots_published", "counter"),
        ("lanyard_snapshot_bytes", "gauge"),
        ("lanyard_directory_connections", "gauge"),
        ("lanyard_directory_binds", "counter"),
        ("lanyard_directory_searches", "counter"),
        ("lanyard_directory_search_duration_seconds", "histogram"),
    ] {
        assert_eq!(after.types.get(family).map(String::as_str), Some(kind), "{family} in {:#?}", after.types);
    }
    let moved = |sample: &str| after.value(sample) - before.value(sample);
    assert!(moved("lanyard_lookups_total") >= 2.0, "{after:#?}");
    assert!(moved("lanyard_cache_memory_hits_total") >= 1.0, "{after:#?}");
    assert!(moved("lanyard_cache_misses_total") >= 1.0, "{after:#?}");
    assert!(moved("lanyard_directory_searches_total") >= 1.0, "{after:#?}");
    assert!(moved("lanyard_directory_search_duration_seconds_count") >= 1.0, "{after:#?}");
    assert_eq!(moved("lanyard_directory_binds_total{kind=\"user\",result=\"success\"}"), 1.0, "{after:#?}");
    assert_eq!(moved("lanyard_directory_binds_total{kind=\"user\",result=\"invalid_credentials\"}"), 1.0, "{after:#?}");
    assert!(after.value("lanyard_directory_binds_total{kind=\"service\",result=\"success\"}") >= 1.0, "{after:#?}");
    assert!(after.value(&format!("lanyard_directory_connections{{{server}}}")) >= 1.0, "{after:#?}");
    assert_eq!(after.value("lanyard_offline"), 0.0);
    // Published at start-up, before the first request is read.
    assert!(after.value("lanyard_snapshots_published_total") >= 1.0, "{after:#?}");
    assert!(after.value("lanyard_snapshot_bytes") > 0.0, "{after:#?}");

    // The HTTP listener serves the same metrics to a scraper.
    let (status, headers, body) = over_http(port, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK", "{headers}");
    assert!(headers.contains("Content-Type: text/plain; version=0.0.4"), "{headers}");
    let scraped = parse(&body);
    assert_eq!(scraped.types, after.types);
    assert!(scraped.value("lanyard_lookups_total") >= after.value("lanyard_lookups_total"));
    // Read once after connecting, in the background: long since done by now.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let expiry = scraped.value(&format!("lanyard_directory_certificate_expiry_timestamp_seconds{{{server}}}"));
    assert!(expiry > now, "the fixture's certificate is valid, yet expires at {expiry}");
    assert_eq!(over_http(port, "/").0, "HTTP/1.1 404 Not Found");
}
