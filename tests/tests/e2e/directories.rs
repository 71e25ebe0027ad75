//! Issue 9: the same end-to-end checks against every directory layout Lanyard supports, each a
//! real server set up from scratch: OpenLDAP with RFC 2307 groups (`memberUid`) and with RFC
//! 2307bis groups (`member` DNs, groups within groups, a cycle), 389 Directory Server with the
//! same rfc2307bis data, and a Samba AD domain controller (RFC 2307 attributes; ids mapped from
//! SIDs; found through its own DNS SRV records).
//!
//! One test per server runs every check in turn ([`check_everything`]): users by name and
//! uid, every group by gid (and by name where `/etc/group` does not have the name), `id` and
//! initgroups with nested groups, a login and a wrong password, an expired account and one
//! whose password must change, a password change, and, with the server stopped, an offline
//! login. What each check expects comes from the fixture's model of that server's data.

use std::collections::BTreeSet;

use lanyard_proto::{Client, Deadlines, Request, Response};
use lanyard_tests::ds389::Ds389;
use lanyard_tests::fixture::{
    AGED, ALICE, BIG_GROUP, BOB, CHANGER, CHANGER_NEW_PASSWORD, EXPIRED, GroupEntry, JOSE, LOCKED, OUTSIDER, Schema,
    User, groups_in, supplementary_groups_in,
};
use lanyard_tests::pam::PamCode;
use lanyard_tests::process::run_bounded_with_input;
use lanyard_tests::samba_ad::{DISABLED, MUST_CHANGE, SambaAd, data as ad_data};
use lanyard_tests::{Agent, AgentConfig, Caller, HANG_GUARD, Launch, Namespace, OfflineConfig, Output, Pam, Slapd};

use crate::common::{assert_pam_error, assert_pam_success, assert_success};

/// The directory's budget per operation: the offline check waits one out when it finds the
/// server gone.
const TIMEOUT: &str = "2s";
const WRONG_PASSWORD: &str = "not-the-Password-9";

/// A directory server holding the shared users, as one target of the checks.
trait Target {
    /// For messages: which server and layout.
    fn name(&self) -> &'static str;
    /// The agent's config for this server: URIs, TLS, service account, schema.
    fn agent_config(&self) -> AgentConfig;
    /// Every group as `getent group` must show it, members flattened.
    fn groups(&self) -> Vec<GroupEntry>;
    /// Makes the server unreachable (for the offline login).
    fn stop(&mut self);
    /// Accounts the account phase must refuse, and how.
    fn refused_accounts(&self) -> Vec<(&'static str, PamCode)> {
        vec![(EXPIRED.name, PamCode::AcctExpired), (LOCKED.name, PamCode::PermDenied)]
    }
    /// How the agent is started (in the server's network namespace for Samba).
    fn launch(&self) -> Launch {
        Launch::default()
    }
    /// Users whose right password the server refuses until it is changed (AD), who must still
    /// get through authentication to the change.
    fn must_change_first(&self) -> Vec<User> {
        Vec::new()
    }
}

struct OpenLdap {
    slapd: Slapd,
    schema: Schema,
}

impl Target for OpenLdap {
    fn name(&self) -> &'static str {
        match self.schema {
            Schema::Rfc2307 => "OpenLDAP, rfc2307",
            Schema::Rfc2307bis => "OpenLDAP, rfc2307bis",
        }
    }

    fn agent_config(&self) -> AgentConfig {
        let config = AgentConfig::for_slapd(&self.slapd);
        match self.schema {
            Schema::Rfc2307 => config,
            Schema::Rfc2307bis => config.directory_line("schema = \"rfc2307bis\""),
        }
    }

    fn groups(&self) -> Vec<GroupEntry> {
        groups_in(self.schema)
    }

    fn stop(&mut self) {
        self.slapd.stop().expect("stopping slapd");
    }
}

/// 389 Directory Server in rfc2307bis shape, without the 5,000-member `biggroup`.
struct Ds389Target(Ds389);

impl Target for Ds389Target {
    fn name(&self) -> &'static str {
        "389 Directory Server, rfc2307bis"
    }

    fn agent_config(&self) -> AgentConfig {
        AgentConfig::new(vec![self.0.uri_starttls()], self.0.ca_pem(), self.0.bind_secret())
            .directory_line("schema = \"rfc2307bis\"")
    }

    fn groups(&self) -> Vec<GroupEntry> {
        groups_in(Schema::Rfc2307bis).into_iter().filter(|g| g.name != BIG_GROUP.name).collect()
    }

    fn stop(&mut self) {
        self.0.stop().expect("stopping 389 DS");
    }
}

#[test]
fn ds389_with_rfc2307bis_nested_groups_passes_every_check() {
    let ds = Ds389::start().expect("starting 389 Directory Server");
    check_everything(&mut Ds389Target(ds), Schema::Rfc2307bis);
}

/// A Samba AD domain controller with RFC 2307 attributes, in a network namespace of its own.
struct SambaTarget(SambaAd);

impl Target for SambaTarget {
    fn name(&self) -> &'static str {
        "Samba AD, RFC 2307 attributes"
    }

    fn agent_config(&self) -> AgentConfig {
        let mut config = AgentConfig::new(vec![self.0.uri_starttls()], self.0.ca_pem(), self.0.bind_secret())
            .directory_line("schema = \"ad\"");
        config.base = self.0.base_dn().into();
        config.bind_dn = Some(self.0.bind_dn().into());
        config
    }

    fn groups(&self) -> Vec<GroupEntry> {
        ad_groups()
    }

    fn stop(&mut self) {
        self.0.stop().expect("stopping the Samba DC");
    }

    fn refused_accounts(&self) -> Vec<(&'static str, PamCode)> {
        vec![
            (EXPIRED.name, PamCode::AcctExpired),
            (DISABLED.name, PamCode::AcctExpired),
            (MUST_CHANGE.name, PamCode::NewAuthtokReqd),
        ]
    }

    fn launch(&self) -> Launch {
        Launch::default().net_namespace_of(self.0.pid())
    }

    fn must_change_first(&self) -> Vec<User> {
        vec![AGED, MUST_CHANGE]
    }
}

/// The DC's groups as `getent group` must show them: nested members flattened, `biggroup`'s
/// 1,600 generated users and alice.
fn ad_groups() -> Vec<GroupEntry> {
    let flatten = |name: &str| {
        let mut members = BTreeSet::new();
        let mut pending = vec![name];
        while let Some(group) = pending.pop() {
            let group = ad_data::GROUPS.iter().find(|g| g.name == group).expect("a group of the DC");
            members.extend(group.users.iter().map(|u| u.to_string()));
            pending.extend(group.groups.iter().copied());
        }
        if name == ad_data::BIG_GROUP.name {
            members.extend((1..=ad_data::BIG_USERS).map(ad_data::big_user_name));
        }
        members.into_iter().collect()
    };
    ad_data::GROUPS.iter().map(|g| GroupEntry { name: g.name.into(), gid: g.gid, members: flatten(g.name) }).collect()
}

#[test]
fn samba_ad_with_rfc2307_attributes_passes_every_check() {
    let dc = SambaAd::start().expect("starting the Samba AD DC");
    check_everything(&mut SambaTarget(dc), Schema::Rfc2307bis);
}

#[test]
fn openldap_with_rfc2307_groups_passes_every_check() {
    let slapd = Slapd::start().expect("starting slapd");
    check_everything(&mut OpenLdap { slapd, schema: Schema::Rfc2307 }, Schema::Rfc2307);
}

#[test]
fn openldap_with_rfc2307bis_nested_groups_passes_every_check() {
    let slapd = Slapd::start_rfc2307bis().expect("starting slapd");
    check_everything(&mut OpenLdap { slapd, schema: Schema::Rfc2307bis }, Schema::Rfc2307bis);
}

/// The agent and the modules against `target`, whose supplementary groups follow `schema`'s
/// model; see the module's doc for the list.
fn check_everything(target: &mut dyn Target, schema: Schema) {
    let config = target.agent_config().timeout(TIMEOUT).offline(OfflineConfig::default().probe_interval("1s"));
    let agent = Agent::start_with(&config, &target.launch())
        .unwrap_or_else(|e| panic!("{}: starting lanyardd: {e:#}", target.name()));
    let ns = Namespace::for_agent(&agent).expect("preparing the namespace");
    let pam = Pam::for_agent(&agent).expect("preparing the PAM stack");
    let checks = Checks { target: target.name(), agent: &agent, ns: &ns, pam: &pam };

    for user in [ALICE, BOB, JOSE] {
        checks.user(&user);
    }
    let groups = target.groups();
    for group in &groups {
        checks.group(group);
    }
    checks.group_listing(&groups);
    // Every group of the model that this server holds and lists alice.
    let alices: Vec<(String, u32)> = supplementary_groups_in(schema, ALICE.name)
        .into_iter()
        .filter(|(name, _)| groups.iter().any(|g| &g.name == name))
        .collect();
    checks.memberships(&ALICE, &alices);
    checks.logins_and_accounts(&target.refused_accounts());
    for user in target.must_change_first() {
        checks.change_before_first_use(&user);
    }

    // Offline: alice logged in above, so her verifier is cached.
    target.stop();
    assert_pam_success(&pam.authenticate(ALICE.name, ALICE.password).unwrap(), &agent);
    assert_pam_error(&pam.authenticate(ALICE.name, WRONG_PASSWORD).unwrap(), PamCode::AuthErr, &agent);
    assert!(agent.log().contains("now offline"), "{}: the agent never went offline:\n{}", target.name(), agent.log());
}

struct Checks<'a> {
    target: &'static str,
    agent: &'a Agent,
    ns: &'a Namespace,
    pam: &'a Pam,
}

impl Checks<'_> {
    fn user(&self, user: &User) {
        let line = format!("{}:x:{}:{}:{}:{}:{}\n", user.name, user.uid, user.gid, user.gecos, user.home, user.shell);
        for key in [user.name.to_owned(), user.uid.to_string()] {
            let out = self.ns.getent("passwd", &[&key]).unwrap();
            assert_success(&out, self.agent);
            assert_eq!(out.stdout(), line, "{}: getent passwd {key}", self.target);
        }
    }

    fn group(&self, group: &GroupEntry) {
        let expected = (group.name.clone(), group.gid, group.members.iter().cloned().collect::<BTreeSet<_>>());
        let mut keys = vec![group.gid.to_string()];
        // Debian's /etc/group has its own `staff`, which `files` answers first by name.
        if group.name != "staff" {
            keys.push(group.name.clone());
        }
        for key in keys {
            let out = self.ns.getent("group", &[&key]).unwrap();
            assert_success(&out, self.agent);
            assert_eq!(group_fields(&out), expected, "{}: getent group {key}", self.target);
        }
    }

    /// `getent group`: the directory's groups are every expected group, members flattened.
    fn group_listing(&self, groups: &[GroupEntry]) {
        let out = self.ns.getent("group", &[] as &[&str]).unwrap();
        assert_success(&out, self.agent);
        let expected: BTreeSet<_> =
            groups.iter().map(|g| (g.name.clone(), g.gid, g.members.iter().cloned().collect())).collect();
        let listed: BTreeSet<_> = out
            .lines()
            .iter()
            .map(|line| line_fields(line))
            .filter(|(_, gid, _)| groups.iter().any(|g| g.gid == *gid))
            .collect();
        assert_eq!(listed, expected, "{}: getent group", self.target);
    }

    /// `id` and `getent initgroups`: the primary group and every supplementary one, nested
    /// ones included.
    fn memberships(&self, user: &User, supplementary: &[(String, u32)]) {
        let id = self.ns.run(&["id", user.name]).unwrap();
        assert_success(&id, self.agent);
        let mut groups: BTreeSet<String> = supplementary.iter().map(|(name, gid)| format!("{gid}({name})")).collect();
        groups.insert(format!("{}(staff)", user.gid));
        let text = id.stdout();
        let (head, listed) = text.trim_end().split_once(" groups=").unwrap_or_else(|| panic!("not id output: {id}"));
        assert_eq!(head, format!("uid={}({}) gid={}(staff)", user.uid, user.name, user.gid), "{}", self.target);
        assert_eq!(listed.split(',').map(str::to_owned).collect::<BTreeSet<_>>(), groups, "{}: {id}", self.target);

        let initgroups = self.ns.getent("initgroups", &[user.name]).unwrap();
        assert_success(&initgroups, self.agent);
        let gids: BTreeSet<String> = initgroups.stdout().split_whitespace().skip(1).map(str::to_owned).collect();
        let expected: BTreeSet<String> = supplementary.iter().map(|(_, gid)| gid.to_string()).collect();
        assert_eq!(gids, expected, "{}: {initgroups}", self.target);
    }

    fn logins_and_accounts(&self, refused: &[(&str, PamCode)]) {
        let (pam, agent) = (self.pam, self.agent);
        assert_pam_success(&pam.authenticate(ALICE.name, ALICE.password).unwrap(), agent);
        assert_pam_error(&pam.authenticate(ALICE.name, WRONG_PASSWORD).unwrap(), PamCode::AuthErr, agent);
        for (user, code) in refused {
            assert_pam_error(&pam.acct_mgmt(user).unwrap(), *code, agent);
        }
        if refused.iter().any(|(user, _)| *user == LOCKED.name) {
            // The server refuses a locked account's bind (ppolicy: 49; 389: 53): a failed
            // login, never "the directory is unavailable".
            assert_pam_error(&pam.authenticate(LOCKED.name, LOCKED.password).unwrap(), PamCode::AuthErr, agent);
        }
        assert_pam_error(&pam.acct_mgmt(AGED.name).unwrap(), PamCode::NewAuthtokReqd, agent);
        assert_pam_success(&pam.acct_mgmt(ALICE.name).unwrap(), agent);

        let out = pam.chauthtok(Caller::user(&CHANGER), CHANGER.name, CHANGER.password, CHANGER_NEW_PASSWORD).unwrap();
        assert_pam_success(&out, agent);
        assert_pam_success(&pam.authenticate(CHANGER.name, CHANGER_NEW_PASSWORD).unwrap(), agent);
        assert_pam_error(&pam.authenticate(CHANGER.name, CHANGER.password).unwrap(), PamCode::AuthErr, agent);
    }
}

impl Checks<'_> {
    /// What sshd does for an expired password: authentication passes, the account phase asks
    /// for a new password, the change works with the old one, and the new one then logs in.
    fn change_before_first_use(&self, user: &User) {
        let (pam, agent) = (self.pam, self.agent);
        let new = format!("{}-Renewed-7", user.name);
        assert_pam_success(&pam.authenticate(user.name, user.password).unwrap(), agent);
        assert_pam_error(&pam.acct_mgmt(user.name).unwrap(), PamCode::NewAuthtokReqd, agent);
        assert_pam_error(&pam.authenticate(user.name, WRONG_PASSWORD).unwrap(), PamCode::AuthErr, agent);
        let out = pam.chauthtok(Caller::user(user), user.name, user.password, &new).unwrap();
        assert_pam_success(&out, agent);
        assert_pam_success(&pam.authenticate(user.name, &new).unwrap(), agent);
        assert_pam_success(&pam.acct_mgmt(user.name).unwrap(), agent);
        assert_pam_error(&pam.authenticate(user.name, user.password).unwrap(), PamCode::AuthErr, agent);
    }
}

/// A one-line `getent group` answer as (name, gid, members).
fn group_fields(out: &Output) -> (String, u32, BTreeSet<String>) {
    let lines = out.lines();
    assert_eq!(lines.len(), 1, "{out}");
    line_fields(&lines[0])
}

/// One `/etc/group`-format line as (name, gid, members).
fn line_fields(line: &str) -> (String, u32, BTreeSet<String>) {
    let fields: Vec<&str> = line.split(':').collect();
    assert_eq!(fields.len(), 4, "not a group line: {line}");
    let members = fields[3].split(',').filter(|m| !m.is_empty()).map(str::to_owned).collect();
    (fields[0].to_owned(), fields[2].parse().expect("gid"), members)
}

/// `nesting_depth` bounds how far groups within groups count, for a group's members and for a
/// user's groups alike; a user's groups take one search for the user's DN and one per level,
/// never a listing of every group.
#[test]
fn nesting_depth_bounds_groups_within_groups_and_a_users_groups_take_a_search_per_level() {
    let slapd = Slapd::start_rfc2307bis().expect("starting slapd");
    let config = AgentConfig::for_slapd(&slapd)
        .directory_line("schema = \"rfc2307bis\"")
        .section("[directory.groups]\nnesting_depth = 1");
    let agent = Agent::start(&config).expect("starting lanyardd");
    let ns = Namespace::for_agent(&agent).expect("preparing the namespace");

    let mark = slapd.log_mark();
    let initgroups = ns.getent("initgroups", &["alice"]).unwrap();
    assert_success(&initgroups, &agent);
    let gids: BTreeSet<String> = initgroups.stdout().split_whitespace().skip(1).map(str::to_owned).collect();
    // Her own groups, and one level up: eng (holds developers) and loop-b (holds loop-a); not
    // everyone, which holds eng.
    let expected = ["10010", "10011", "10012", "10100", "10022", "10020", "10023"];
    assert_eq!(gids, expected.iter().map(|g| g.to_string()).collect(), "{initgroups}");
    let filters = Slapd::search_filters(&slapd.log_since(mark));
    assert_eq!(filters.len(), 3, "her DN, her groups, one level up: {filters:#?}");
    assert!(filters[1].contains("(member=uid=alice,ou=people,dc=example,dc=org)"), "{filters:#?}");
    assert!(filters[2].contains("(member=cn=loop-a,ou=groups,dc=example,dc=org)"), "{filters:#?}");

    let eng = ns.getent("group", &["eng"]).unwrap();
    assert_success(&eng, &agent);
    assert_eq!(group_fields(&eng).2, BTreeSet::from(["alice".to_owned(), "bob".to_owned()]), "{eng}");
    let everyone = ns.getent("group", &["everyone"]).unwrap();
    assert_success(&everyone, &agent);
    assert_eq!(group_fields(&everyone), ("everyone".to_owned(), 10021, BTreeSet::new()), "{everyone}");
    assert!(
        agent.log().contains("nested more than 1 deep"),
        "the agent did not say what it left out:\n{}",
        agent.log()
    );
}

/// AD without relying on RFC 2307 ids: uid and gid are `offset + RID` of the account's
/// `objectSid` (the primary gid from `primaryGroupID`), the same on every host, and found again
/// by those ids; users log in by `userPrincipalName` too and are known by `sAMAccountName`.
#[test]
fn samba_ad_with_ids_mapped_from_sids_and_logins_by_principal_name() {
    const OFFSET: u32 = 500_000;
    let dc = SambaAd::start().expect("starting the Samba AD DC");
    let target = SambaTarget(dc);
    let config = target.agent_config().section(&format!(
        "[directory.users]\nlogin_alias = \"userPrincipalName\"\n\n[directory.id_mapping]\noffset = {OFFSET}"
    ));
    let agent = Agent::start_with(&config, &target.launch()).expect("starting lanyardd");
    let ns = Namespace::for_agent(&agent).expect("preparing the namespace");
    let pam = Pam::for_agent(&agent).expect("preparing the PAM stack");
    let rid = |filter: &str| {
        let out = target.0.search_as_reader(filter, &["objectSid"]).unwrap();
        let line = out.lines().into_iter().find_map(|l| l.strip_prefix("objectSid:: ").map(str::to_owned));
        let sid =
            lanyard_tests::fixture::base64_decode(&line.unwrap_or_else(|| panic!("no objectSid: {out}"))).unwrap();
        u32::from_le_bytes(sid[sid.len() - 4..].try_into().unwrap())
    };
    let (alice_uid, developers_gid) =
        (OFFSET + rid("(sAMAccountName=alice)"), OFFSET + rid("(sAMAccountName=developers)"));
    // Domain Users, every account's primary group (RID 513, MS-DTYP 2.4.2.4).
    let line = format!("alice:x:{alice_uid}:{}:Alice Liddell:/home/alice:/bin/bash\n", OFFSET + 513);
    for key in ["alice".to_owned(), alice_uid.to_string(), "alice@example.org".to_owned()] {
        let out = ns.getent("passwd", &[&key]).unwrap();
        assert_success(&out, &agent);
        assert_eq!(out.stdout(), line, "getent passwd {key}");
    }
    for key in ["developers".to_owned(), developers_gid.to_string()] {
        let out = ns.getent("group", &[&key]).unwrap();
        assert_success(&out, &agent);
        let expected = BTreeSet::from(["alice".to_owned(), "bob".to_owned()]);
        assert_eq!(group_fields(&out), ("developers".to_owned(), developers_gid, expected), "getent group {key}");
    }
    let initgroups = ns.getent("initgroups", &["alice"]).unwrap();
    assert_success(&initgroups, &agent);
    assert!(initgroups.stdout().split_whitespace().any(|g| g == developers_gid.to_string()), "{initgroups}");
    assert_pam_success(&pam.authenticate("alice@example.org", ALICE.password).unwrap(), &agent);
    assert_pam_error(&pam.authenticate("alice@example.org", WRONG_PASSWORD).unwrap(), PamCode::AuthErr, &agent);

    // Someone who can set their own principal name must not choose whom they log in as: an
    // alias without `@` (a local account's name) is never tried. (Samba itself refuses a
    // principal name two accounts share: see the OpenLDAP test for that case.)
    let ldif = format!(
        "dn: {}\nchangetype: modify\nreplace: userPrincipalName\nuserPrincipalName: root\n",
        ad_data::dn_of(OUTSIDER.name)
    );
    let mut modify = target.0.ldap_tool("ldapmodify");
    modify
        .args(["-x", "-ZZ", "-H", &target.0.uri_starttls(), "-D", ad_data::ADMIN_DN, "-y"])
        .arg(target.0.admin_secret());
    let changed = run_bounded_with_input(&mut modify, ldif.as_bytes(), "ldapmodify", HANG_GUARD).unwrap();
    assert!(changed.status.success(), "{changed}");
    let answer = Client::call(&agent.socket(), &Request::UserByName("root".into()), Deadlines::default()).unwrap();
    assert_eq!(answer, Response::NotFound, "--- lanyardd log ---\n{}", agent.log());
    assert_pam_error(&pam.authenticate("root", OUTSIDER.password).unwrap(), PamCode::UserUnknown, &agent);
}

/// AD publishes its domain controllers in DNS: with only `domain` configured, the agent finds
/// `dc1.example.org` through Samba's own DNS server (`_ldap._tcp.example.org`), checks the
/// certificate against that name, and serves lookups and logins.
#[test]
fn samba_ad_is_found_through_its_own_dns_srv_records() {
    let dc = SambaAd::start().expect("starting the Samba AD DC");
    let target = SambaTarget(dc);
    let config = target.agent_config().domain(ad_data::DNS_DOMAIN);
    // The mount namespace too: its /etc/resolv.conf names Samba's DNS server.
    let launch = Launch::default().namespaces_of(target.0.pid());
    let agent = Agent::start_with(&config, &launch).expect("starting lanyardd");
    let ns = Namespace::for_agent(&agent).expect("preparing the namespace");
    let pam = Pam::for_agent(&agent).expect("preparing the PAM stack");
    let out = ns.getent("passwd", &["alice"]).unwrap();
    assert_success(&out, &agent);
    assert_eq!(out.stdout(), "alice:x:10001:10000:Alice Liddell:/home/alice:/bin/bash\n");
    assert_pam_success(&pam.authenticate(ALICE.name, ALICE.password).unwrap(), &agent);
    let log = agent.log();
    assert!(log.contains(&format!("ldap://{}:389", ad_data::DC_FQDN)), "the DC was not found by name:\n{log}");
}

/// `login_alias` on a directory that lets users share a value (OpenLDAP's `mail`): an alias two
/// entries carry names nobody, one without `@` is never tried, and a unique one logs in as its
/// owner, who keeps her name.
#[test]
fn a_login_alias_names_one_user_or_nobody() {
    let slapd = Slapd::start().expect("starting slapd");
    let mail = |user: &str, value: &str| {
        format!("dn: {}\nchangetype: modify\nreplace: mail\nmail: {value}\n\n", lanyard_tests::fixture::user_dn(user))
    };
    let ldif = [
        mail("alice", "alice@example.org"),
        mail("bob", "shared@example.org"),
        mail("jose", "shared@example.org"),
        mail("outsider", "root"),
    ]
    .concat();
    let changed = slapd.modify_as_admin(&ldif).expect("setting mail");
    assert!(changed.status.success(), "{changed}");
    let config = AgentConfig::for_slapd(&slapd).section("[directory.users]\nlogin_alias = \"mail\"");
    let agent = Agent::start(&config).expect("starting lanyardd");
    let pam = Pam::for_agent(&agent).expect("preparing the PAM stack");
    let ask =
        |name: &str| Client::call(&agent.socket(), &Request::UserByName(name.into()), Deadlines::default()).unwrap();
    match ask("alice@example.org") {
        Response::User(passwd) => assert_eq!((passwd.name.as_str(), passwd.uid), ("alice", ALICE.uid)),
        other => panic!("{other:?}\n--- lanyardd log ---\n{}", agent.log()),
    }
    for name in ["shared@example.org", "root"] {
        assert_eq!(ask(name), Response::NotFound, "{name}\n--- lanyardd log ---\n{}", agent.log());
    }
    assert!(agent.log().contains("claimed by 2 entries"), "the agent did not say why:\n{}", agent.log());
    assert_pam_success(&pam.authenticate("alice@example.org", ALICE.password).unwrap(), &agent);
    assert_pam_error(&pam.authenticate("shared@example.org", BOB.password).unwrap(), PamCode::UserUnknown, &agent);
}
