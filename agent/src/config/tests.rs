use super::*;

const MINIMAL: &str = r#"
[directory]
uris = ["ldap://ldap.example.org", "ldaps://ldap2.example.org:6360"]
base = "dc=example,dc=org"
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("/etc/lanyard/lanyard.toml"), text)
}

fn error_of(text: &str) -> String {
    parse(text).expect_err("config should be refused").to_string()
}

/// A scratch directory, removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch_dir(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("lanyard-config-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

#[test]
fn a_minimal_config_gets_the_documented_defaults() {
    let config = parse(MINIMAL).unwrap();
    assert_eq!(config.socket, Path::new("/run/lanyard/socket"));
    assert_eq!(config.cache_dir, Path::new("/var/lib/lanyard"));
    let d = &config.directory;
    assert_eq!(
        d.servers[0],
        Server {
            uri: "ldap://ldap.example.org".into(),
            host: "ldap.example.org".into(),
            port: 389,
            transport: Transport::StartTls
        }
    );
    assert_eq!(d.servers[1].transport, Transport::Ldaps);
    assert_eq!(d.servers[1].port, 6360);
    assert_eq!(d.timeout, Duration::from_secs(3));
    assert_eq!(d.failback, DEFAULT_FAILBACK);
    assert_eq!(DEFAULT_FAILBACK, Duration::from_secs(30));
    assert!(matches!(d.trust, Trust::System));
    assert!(d.service_account.is_none());
    assert_eq!(d.users.filter, "(objectClass=posixAccount)");
    assert_eq!(d.users.base, "dc=example,dc=org");
    assert_eq!(d.groups.member, "memberUid");
    assert_eq!(
        config.cache,
        CacheConfig { ttl: Duration::from_secs(300), negative_ttl: Duration::from_secs(30), enumerate: false }
    );
    assert_eq!(config.offline.max_failures, 5);
}

#[test]
fn an_unknown_key_is_named_with_the_file() {
    let message = error_of(&format!("{MINIMAL}colour = \"red\"\n"));
    assert!(message.contains("colour") && message.contains("/etc/lanyard/lanyard.toml"), "{message}");
}

#[test]
fn an_unknown_top_level_key_is_named() {
    let message = error_of(&format!("sockets = \"/x\"\n{MINIMAL}"));
    assert!(message.contains("sockets"), "{message}");
}

#[test]
fn a_uri_that_is_not_ldap_is_refused_naming_uris() {
    let message = error_of("[directory]\nuris = [\"http://example.org\"]\nbase = \"dc=x\"\n");
    assert!(message.contains("directory.uris") && message.contains("http"), "{message}");
}

#[test]
fn ldap_uris_with_tls_ldaps_are_refused() {
    let message = error_of("[directory]\nuris = [\"ldap://a\"]\nbase = \"dc=x\"\ntls = \"ldaps\"\n");
    assert!(message.contains("directory.uris"), "{message}");
}

#[test]
fn danger_plaintext_is_spelled_out_and_applies_to_ldap_uris_only() {
    let config = parse(&MINIMAL.replace("base =", "tls = \"danger-plaintext\"\nbase =")).unwrap();
    assert_eq!(config.directory.servers[0].transport, Transport::DangerPlaintext);
    assert_eq!(config.directory.servers[1].transport, Transport::Ldaps);
    let message = error_of(&MINIMAL.replace("base =", "tls = \"plaintext\"\nbase ="));
    assert!(message.contains("plaintext") && message.contains("danger-plaintext"), "{message}");
}

#[test]
fn a_missing_ca_file_is_refused_naming_ca_file() {
    let message = error_of(&format!("{MINIMAL}ca_file = \"/nonexistent/ca.pem\"\n"));
    assert!(message.contains("directory.ca_file"), "{message}");
}

#[test]
fn a_ca_file_without_certificates_is_refused() {
    let dir = scratch_dir("ca");
    let path = dir.join("empty.pem");
    std::fs::write(&path, "not a certificate\n").unwrap();
    let message = error_of(&format!("{MINIMAL}ca_file = {:?}\n", path));
    assert!(message.contains("directory.ca_file") && message.contains("no PEM"), "{message}");
}

#[test]
fn a_bind_password_file_others_can_read_is_refused() {
    let dir = scratch_dir("pw-open");
    let path = dir.join("bind.secret");
    std::fs::write(&path, "s3cret\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let message = error_of(&format!("{MINIMAL}bind_dn = \"cn=reader,dc=x\"\nbind_password_file = {path:?}\n"));
    assert!(message.contains("directory.bind_password_file") && message.contains("0644"), "{message}");
    assert!(!message.contains("s3cret"));
}

#[test]
fn the_bind_password_loses_its_trailing_newline_and_stays_out_of_debug() {
    let dir = scratch_dir("pw-ok");
    let path = dir.join("bind.secret");
    std::fs::write(&path, "s3cret\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = parse(&format!("{MINIMAL}bind_dn = \"cn=reader,dc=x\"\nbind_password_file = {path:?}\n")).unwrap();
    let account = config.directory.service_account.as_ref().unwrap();
    assert_eq!(account.password.expose(), b"s3cret");
    assert!(!format!("{config:?}").contains("s3cret"));
}

#[test]
fn an_empty_bind_password_is_refused() {
    let dir = scratch_dir("pw-empty");
    let path = dir.join("bind.secret");
    std::fs::write(&path, "\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let message = error_of(&format!("{MINIMAL}bind_dn = \"cn=reader,dc=x\"\nbind_password_file = {path:?}\n"));
    assert!(message.contains("is empty"), "{message}");
}

#[test]
fn a_bind_dn_without_a_password_file_is_refused() {
    let message = error_of(&format!("{MINIMAL}bind_dn = \"cn=reader,dc=x\"\n"));
    assert!(message.contains("directory.bind_password_file"), "{message}");
}

#[test]
fn bad_durations_name_their_key() {
    let message = error_of(&format!("{MINIMAL}timeout = \"3\"\n"));
    assert!(message.contains("directory.timeout"), "{message}");
    let message = error_of(&format!("{MINIMAL}[cache]\nttl = \"soon\"\n"));
    assert!(message.contains("cache.ttl"), "{message}");
    let message = error_of(&format!("{MINIMAL}failback = \"30\"\n"));
    assert!(message.contains("directory.failback"), "{message}");
}

#[test]
fn failback_is_read_from_the_directory_section() {
    let config = parse(&format!("{MINIMAL}failback = \"2s\"\n")).unwrap();
    assert_eq!(config.directory.failback, Duration::from_secs(2));
}

#[test]
fn attribute_overrides_are_used_and_checked() {
    let config = parse(&format!(
        "{MINIMAL}[directory.users]\nhome = \"unixHomeDirectory\"\nbase = \"ou=people,dc=example,dc=org\"\n"
    ))
    .unwrap();
    assert_eq!(config.directory.users.home, "unixHomeDirectory");
    assert_eq!(config.directory.users.base, "ou=people,dc=example,dc=org");
    let message = error_of(&format!("{MINIMAL}[directory.users]\nname = \"uid)(x=*\"\n"));
    assert!(message.contains("directory.users.name"), "{message}");
}

#[test]
fn a_broken_filter_is_refused_at_start() {
    let message = error_of(&format!("{MINIMAL}[directory.groups]\nfilter = \"(objectClass=posixGroup\"\n"));
    assert!(message.contains("directory.groups.filter"), "{message}");
}

#[test]
fn ad_names_users_and_groups_by_samaccountname_and_reads_member_dns() {
    let config = parse(&format!("{MINIMAL}schema = \"ad\"\n")).unwrap();
    let (users, groups) = (&config.directory.users, &config.directory.groups);
    assert_eq!(config.directory.schema, Schema::Ad);
    assert_eq!(
        (users.filter.as_str(), users.name.as_str(), users.home.as_str()),
        ("(&(objectClass=user)(objectCategory=person)(uidNumber=*))", "sAMAccountName", "unixHomeDirectory")
    );
    assert_eq!((users.login_alias.as_deref(), users.id_mapping.as_ref()), (None, None));
    assert_eq!(
        (groups.filter.as_str(), groups.name.as_str(), groups.member_dn.as_deref()),
        ("(&(objectClass=group)(gidNumber=*))", "sAMAccountName", Some("member"))
    );
}

#[test]
fn id_mapping_has_documented_defaults_and_a_bounded_offset() {
    let config = parse(&format!(
        "{MINIMAL}schema = \"ad\"\n[directory.users]\nlogin_alias = \"userPrincipalName\"\n[directory.id_mapping]\n"
    ))
    .unwrap();
    let expected = IdMapping { offset: DEFAULT_ID_OFFSET, home: "/home/{user}".into(), shell: "/bin/sh".into() };
    assert_eq!(config.directory.users.id_mapping.as_ref(), Some(&expected));
    assert_eq!(config.directory.groups.id_mapping.as_ref(), Some(&expected));
    assert_eq!(config.directory.users.login_alias.as_deref(), Some("userPrincipalName"));
    // Mapped ids: every person and group counts, with or without RFC 2307 attributes.
    assert_eq!(config.directory.users.filter, "(&(objectClass=user)(objectCategory=person))");
    assert_eq!(config.directory.groups.filter, "(objectClass=group)");
    let message = error_of(&format!("{MINIMAL}[directory.id_mapping]\n"));
    assert!(message.contains("directory.id_mapping") && message.contains("schema"), "{message}");
    for (line, key) in [
        ("offset = 999", "directory.id_mapping.offset"),
        ("offset = 4294967000", "directory.id_mapping.offset"),
        ("home = \"home/{user}\"", "directory.id_mapping.home"),
        ("shell = \"sh\"", "directory.id_mapping.shell"),
    ] {
        let message = error_of(&format!("{MINIMAL}schema = \"ad\"\n[directory.id_mapping]\n{line}\n"));
        assert!(message.contains(key), "{line}: {message}");
    }
}

#[test]
fn pam_defaults_allow_everyone_and_limit_guessing() {
    let pam = parse(MINIMAL).unwrap().pam;
    assert!(pam.allowed_groups.is_empty() && pam.access_filter.is_none());
    assert!(!pam.root_may_reset_passwords && !pam.create_home);
    assert_eq!((pam.home_mode, pam.max_failures, pam.failure_window), (0o700, 5, Duration::from_secs(300)));
}

#[test]
fn pam_settings_are_checked() {
    let pam = parse(&format!(
        "{MINIMAL}[pam]\nallowed_groups = [\"developers\"]\naccess_filter = \"(host={{host}})\"\nhome_mode = \"0750\"\n"
    ))
    .unwrap()
    .pam;
    assert_eq!(pam.allowed_groups, ["developers"]);
    assert_eq!(pam.access_filter.as_deref(), Some("(host={host})"));
    assert_eq!(pam.home_mode, 0o750);
    for (text, key) in [
        ("allowed_groups = [\"a b\"]", "pam.allowed_groups"),
        ("access_filter = \"(host={host}\"", "pam.access_filter"),
        ("home_mode = \"0799\"", "pam.home_mode"),
        ("max_failures = 0", "pam.max_failures"),
        ("failure_window = \"5\"", "pam.failure_window"),
    ] {
        let message = error_of(&format!("{MINIMAL}[pam]\n{text}\n"));
        assert!(message.contains(key), "{text}: {message}");
    }
}

#[test]
fn metrics_listener_is_off_by_default_and_log_level_is_info() {
    let config = parse(MINIMAL).unwrap();
    assert_eq!(config.metrics.listen, None);
    assert_eq!(config.log_level, "info");
}

#[test]
fn metrics_listener_takes_a_loopback_address() {
    let config = parse(&format!("{MINIMAL}[metrics]\nlisten = \"127.0.0.1:9775\"\n")).unwrap();
    assert_eq!(config.metrics.listen, Some("127.0.0.1:9775".parse().unwrap()));
    let config = parse(&format!("{MINIMAL}[metrics]\nlisten = \"[::1]:9775\"\n")).unwrap();
    assert_eq!(config.metrics.listen, Some("[::1]:9775".parse().unwrap()));
}

#[test]
fn metrics_listener_on_a_non_loopback_address_is_refused_naming_the_key() {
    for address in ["0.0.0.0:9775", "192.0.2.1:9775", "[::]:9775"] {
        let message = error_of(&format!("{MINIMAL}[metrics]\nlisten = \"{address}\"\n"));
        assert!(message.contains("metrics.listen") && message.contains("loopback"), "{message}");
    }
    let message = error_of(&format!("{MINIMAL}[metrics]\nlisten = \"localhost\"\n"));
    assert!(message.contains("metrics.listen"), "{message}");
}

#[test]
fn log_level_takes_a_level_and_refuses_a_typo() {
    let config = parse(&format!("log_level = \"debug\"\n{MINIMAL}")).unwrap();
    assert_eq!(config.log_level, "debug");
    let message = error_of(&format!("log_level = \"inof\"\n{MINIMAL}"));
    assert!(message.contains("log_level"), "{message}");
}

#[test]
fn rfc2307bis_reads_members_by_dn_and_follows_nested_groups() {
    let plain = parse(MINIMAL).unwrap();
    assert_eq!(plain.directory.schema, Schema::Rfc2307);
    assert_eq!(plain.directory.groups.member_dn, None);
    let bis = parse(&format!("{MINIMAL}schema = \"rfc2307bis\"\n")).unwrap();
    assert_eq!(bis.directory.schema, Schema::Rfc2307bis);
    let groups = &bis.directory.groups;
    assert_eq!(
        (groups.member.as_str(), groups.member_dn.as_deref(), groups.nesting_depth),
        ("memberUid", Some("member"), DEFAULT_NESTING_DEPTH)
    );
    let unique = parse(&format!(
        "{MINIMAL}schema = \"rfc2307bis\"\n[directory.groups]\nmember_dn = \"uniqueMember\"\nnesting_depth = 0\n"
    ))
    .unwrap();
    assert_eq!(
        (unique.directory.groups.member_dn.as_deref(), unique.directory.groups.nesting_depth),
        (Some("uniqueMember"), 0)
    );
    // member_dn alone turns DN members on with the rfc2307 defaults otherwise.
    let mixed = parse(&format!("{MINIMAL}[directory.groups]\nmember_dn = \"member\"\n")).unwrap();
    assert_eq!(mixed.directory.groups.member_dn.as_deref(), Some("member"));
}

#[test]
fn a_nesting_depth_past_the_bound_and_an_unknown_schema_are_refused() {
    let message = error_of(&format!("{MINIMAL}schema = \"rfc2307bis\"\n[directory.groups]\nnesting_depth = 17\n"));
    assert!(message.contains("directory.groups.nesting_depth") && message.contains("17"), "{message}");
    let message = error_of(&format!("{MINIMAL}schema = \"rfc2307-bis\"\n"));
    assert!(message.contains("directory.schema") && message.contains("rfc2307bis"), "{message}");
}

#[test]
fn a_domain_replaces_uris_and_names_the_srv_records_by_tls() {
    let config = parse("[directory]\ndomain = \"Example.ORG.\"\nbase = \"dc=example,dc=org\"\n").unwrap();
    let discovery = config.directory.discovery.as_ref().unwrap();
    assert!(config.directory.servers.is_empty());
    assert_eq!(discovery.domain, "example.org");
    assert_eq!(
        (discovery.transport, discovery.record_name().as_str()),
        (Transport::StartTls, "_ldap._tcp.example.org")
    );
    let server = discovery.server("ldap1.example.org.", 3389).unwrap();
    assert_eq!((server.uri.as_str(), server.host.as_str()), ("ldap://ldap1.example.org:3389", "ldap1.example.org"));
    assert_eq!(config.directory.server_named("ldap://ldap1.example.org:3389"), Some(server));
    assert_eq!(config.directory.server_named("ldaps://ldap1.example.org:3389"), None);

    let ldaps = parse("[directory]\ndomain = \"example.org\"\ntls = \"ldaps\"\nbase = \"dc=x\"\n").unwrap();
    let discovery = ldaps.directory.discovery.unwrap();
    assert_eq!((discovery.transport, discovery.record_name().as_str()), (Transport::Ldaps, "_ldaps._tcp.example.org"));
    assert_eq!(discovery.server("dc1.example.org", 636).unwrap().uri, "ldaps://dc1.example.org:636");
    let plain = error_of("[directory]\ndomain = \"example.org\"\ntls = \"danger-plaintext\"\nbase = \"dc=x\"\n");
    assert!(plain.contains("directory.domain") && plain.contains("danger-plaintext"), "{plain}");
}

/// Found in review: DNS answers are not authenticated, so a target outside the domain (whose
/// certificate from a public CA is cheap) or one that is not a plain host name is refused.
#[test]
fn srv_targets_must_be_host_names_in_the_domain() {
    let config = parse("[directory]\ndomain = \"example.org\"\nbase = \"dc=x\"\n").unwrap();
    let discovery = config.directory.discovery.unwrap();
    for good in ["example.org", "dc1.example.org", "a.b.example.org."] {
        assert!(discovery.server(good, 389).is_ok(), "{good}");
    }
    for bad in [
        "ldap.attacker.net",
        "example.org.attacker.net",
        "notexample.org",
        "evil\\@dc1.example.org",
        "127.0.0.1",
        "a b.example.org",
        "",
    ] {
        assert!(discovery.server(bad, 389).is_err(), "{bad:?}");
    }
}

#[test]
fn uris_and_domain_are_one_or_the_other() {
    let both = error_of(&MINIMAL.replace("base =", "domain = \"example.org\"\nbase ="));
    assert!(both.contains("directory.domain") && both.contains("uris"), "{both}");
    let neither = error_of("[directory]\nbase = \"dc=x\"\n");
    assert!(neither.contains("directory.uris") && neither.contains("directory.domain"), "{neither}");
    assert!(parse(MINIMAL).unwrap().directory.discovery.is_none());
}

#[test]
fn a_domain_must_be_a_dns_name() {
    for bad in
        ["", ".", "exa mple.org", "-a.example.org", "a..org", "example.org/x", "10.0.0.1", "_ldap._tcp.example.org"]
    {
        let message = error_of(&format!("[directory]\ndomain = {bad:?}\nbase = \"dc=x\"\n"));
        assert!(message.contains("directory.domain"), "{bad:?}: {message}");
    }
    let long_label = format!("{}.org", "a".repeat(64));
    assert!(error_of(&format!("[directory]\ndomain = {long_label:?}\nbase = \"dc=x\"\n")).contains("DNS label"));
    for good in ["corp", "ad.example.org", "1and1.com", "xn--bcher-kva.example"] {
        assert!(parse(&format!("[directory]\ndomain = {good:?}\nbase = \"dc=x\"\n")).is_ok(), "{good:?}");
    }
}
