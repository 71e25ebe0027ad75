//! How the agent reaches the directory: StartTLS by default, LDAPS, a wrong CA, explicit
//! plaintext, and several URIs in order.

use lanyard_tests::fixture::READER_DN;
use lanyard_tests::slapd::closed_port;
use lanyard_tests::{Agent, AgentConfig, Namespace, Slapd};

use crate::common::{
    NSS_STATUS_UNAVAIL, assert_not_found, assert_nss_status, assert_success, getpwnam_status, setup, setup_with,
};

const ALICE_LINE: &str = "alice:x:10001:10000:Alice Liddell:/home/alice:/bin/bash\n";

/// The reader's simple binds in `log`, as the `ssf=` (connection security strength) of each.
fn reader_bind_ssfs(log: &str) -> Vec<u32> {
    let bind = format!("BIND dn=\"{READER_DN}\" mech=SIMPLE");
    log.lines()
        .filter(|l| l.contains(&bind))
        .map(|l| {
            let ssf = l.rsplit_once(" ssf=").map(|(_, v)| v).unwrap_or_else(|| panic!("no ssf in {l}"));
            ssf.trim().parse().unwrap_or_else(|_| panic!("bad ssf in {l}"))
        })
        .collect()
}

#[test]
fn agent_binds_over_starttls_and_never_in_clear() {
    let s = setup();
    assert_success(&s.ns.getent("passwd", &["alice"]).unwrap(), &s.agent);
    let log = s.slapd.log();
    let ssfs = reader_bind_ssfs(&log);
    assert!(!ssfs.is_empty(), "the agent never bound as the reader:\n{log}");
    assert!(ssfs.iter().all(|&ssf| ssf > 0), "a bind without TLS: {ssfs:?}\n{log}");
    assert!(!log.contains("confidentiality required"), "{log}");
}

#[test]
fn wrong_ca_means_no_connection_and_a_log_line_saying_why() {
    let slapd = Slapd::start().unwrap();
    // From here on, anything in slapd's log comes from the agent.
    let mark = slapd.log_mark();
    let agent = Agent::start(&AgentConfig::for_slapd(&slapd).ca_file(slapd.wrong_ca_pem())).unwrap();
    let ns = Namespace::for_agent(&agent).unwrap();

    assert_not_found(&ns.getent("passwd", &["alice"]).unwrap(), &agent);
    // getent cannot tell, but the module must: the directory was never asked, so UNAVAIL, and
    // never NOTFOUND (which `[NOTFOUND=return]` would take as "no such user").
    assert_nss_status(&getpwnam_status(&ns, "alice"), NSS_STATUS_UNAVAIL, &agent);

    let log = agent.log();
    let lower = log.to_lowercase();
    assert!(lower.contains("certificate") && lower.contains("unknownissuer"), "no certificate error logged:\n{log}");
    let seen = slapd.log_since(mark);
    assert!(seen.contains("STARTTLS"), "the agent never tried to connect:\n{seen}");
    assert!(!seen.contains(&format!("BIND dn=\"{READER_DN}\"")), "the agent bound despite the wrong CA:\n{seen}");
}

#[test]
fn danger_plaintext_is_logged_and_refused_by_a_tls_only_directory() {
    let slapd = Slapd::start().unwrap();
    let mark = slapd.log_mark();
    let mut config = AgentConfig::for_slapd(&slapd).tls("danger-plaintext");
    config.ca_file = None;
    let agent = Agent::start(&config).unwrap();
    let ns = Namespace::for_agent(&agent).unwrap();

    assert_not_found(&ns.getent("passwd", &["alice"]).unwrap(), &agent);
    // The directory refused to answer: UNAVAIL, never NOTFOUND.
    assert_nss_status(&getpwnam_status(&ns, "alice"), NSS_STATUS_UNAVAIL, &agent);

    let log = agent.log();
    assert!(log.lines().any(|l| l.contains("WARN") && l.contains("danger-plaintext")), "no warning:\n{log}");
    let seen = slapd.log_since(mark);
    assert!(!seen.contains("STARTTLS"), "danger-plaintext used StartTLS:\n{seen}");
    // The agent did try, in clear, and slapd refused: nothing fell back silently.
    assert!(seen.contains(&format!("BIND dn=\"{READER_DN}\"")), "the agent never tried to bind:\n{seen}");
    assert!(seen.contains("err=13"), "slapd did not refuse a plaintext bind:\n{seen}");
}

#[test]
fn ldaps_uri_answers_lookups() {
    let slapd = Slapd::start().unwrap();
    let mark = slapd.log_mark();
    let config = AgentConfig::for_slapd(&slapd).uris(vec![slapd.uri_ldaps()]).tls("ldaps");
    let agent = Agent::start(&config).unwrap();
    let ns = Namespace::for_agent(&agent).unwrap();

    let out = ns.getent("passwd", &["alice"]).unwrap();
    assert_success(&out, &agent);
    assert_eq!(out.stdout(), ALICE_LINE);
    let seen = slapd.log_since(mark);
    assert!(!seen.contains("STARTTLS"), "ldaps used StartTLS:\n{seen}");
    assert!(!reader_bind_ssfs(&seen).is_empty() && reader_bind_ssfs(&seen).iter().all(|&s| s > 0), "{seen}");
}

#[test]
fn several_uris_are_tried_in_order() {
    let dead = format!("ldap://127.0.0.1:{}", closed_port().unwrap());
    let s = setup_with(|config| {
        let good = config.uris[0].clone();
        config.uris(vec![dead, good])
    });
    let out = s.ns.getent("passwd", &["alice"]).unwrap();
    assert_success(&out, &s.agent);
    assert_eq!(out.stdout(), ALICE_LINE);
}
