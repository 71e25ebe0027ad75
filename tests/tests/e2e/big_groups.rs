//! Issue 9: a big RFC 2307bis group whose member DNs each need a lookup (they do not start with
//! `uid=`) is resolved while other requests keep being answered, and says what it holds.
//!
//! Nothing here is timed. That other lookups were not held up is read from slapd's own log:
//! the group's member lookups go on after another client's lookup was searched and answered.

use std::fmt::Write as _;
use std::time::Duration;

use lanyard_proto::{Client, Deadlines, Request, Response};
use lanyard_tests::fixture::{GROUPS_DN, PEOPLE_DN, bulk_user_name};
use lanyard_tests::{Agent, AgentConfig, Namespace, Slapd, poll_until};

use crate::common::assert_success;

/// Members of the big group: DNs that name no entry, so each costs the agent base-scope
/// lookups (as a site whose members are `cn=Full Name,...` would).
const GHOSTS: usize = 1000;
const GHOST_GID: u32 = 10030;
/// How long the group lookup may take before it counts as hung (a bound, not a measurement).
const GROUP_GUARD: Duration = Duration::from_secs(60);

#[test]
fn a_big_group_of_dns_to_look_up_does_not_hold_up_other_lookups() {
    let slapd = Slapd::start_rfc2307bis().expect("starting slapd");
    let mut ldif = format!(
        "dn: cn=ghosts,{GROUPS_DN}\nobjectClass: groupOfNames\nobjectClass: posixGroup\ncn: ghosts\ngidNumber: {GHOST_GID}\n"
    );
    for i in 0..GHOSTS {
        let _ = writeln!(ldif, "member: cn=ghost{i:04},{PEOPLE_DN}");
    }
    // One real member among them, named by the same kind of DN.
    let _ = writeln!(ldif, "member: uid=alice,{PEOPLE_DN}");
    let added = slapd.add_as_admin(&ldif).expect("adding the big group");
    assert!(added.status.success(), "{added}");
    let config = AgentConfig::for_slapd(&slapd).directory_line("schema = \"rfc2307bis\"");
    let agent = Agent::start(&config).expect("starting lanyardd");
    let ns = Namespace::for_agent(&agent).expect("preparing the namespace");

    let mark = slapd.log_mark();
    let socket = agent.socket();
    let group = std::thread::spawn(move || {
        let deadlines = Deadlines { connect: Duration::from_secs(1), reply: GROUP_GUARD };
        Client::call(&socket, &Request::GroupByName("ghosts".into()), deadlines)
    });
    // Once the agent is looking the members up, another client asks for a user it never saw.
    let ghost_lookups = || ghost_searches(&slapd.log_since(mark));
    poll_until("the agent to start looking the members up", GROUP_GUARD, Duration::from_millis(5), || {
        Ok((ghost_lookups() > 0).then_some(()))
    })
    .expect("the agent never looked the big group's members up");
    let other = bulk_user_name(42);
    let out = ns.getent("passwd", &[&other]).unwrap();
    assert_success(&out, &agent);
    let log_when_answered = slapd.log_since(mark);

    let answer = group.join().expect("the group lookup thread").expect("the group lookup");
    match answer {
        Response::Group(group) => {
            assert_eq!(
                (group.name.as_str(), group.gid, group.members.as_slice()),
                ("ghosts", GHOST_GID, &["alice".to_owned()][..])
            );
        }
        other => panic!("{other:?}\n--- lanyardd log ---\n{}", agent.log()),
    }
    let all = slapd.log_since(mark);
    let filters = Slapd::search_filters(&log_when_answered);
    assert!(filters.iter().any(|f| f.contains(&format!("(uid={other})"))), "{other} was never searched: {filters:#?}");
    let (before, after) = (ghost_searches(&log_when_answered), ghost_searches(&all));
    assert!(
        before < after,
        "the member lookups ({after} in all) had finished by the time {other} was answered ({before}): \
         nothing shows the group did not hold it up"
    );
    // Each ghost: one lookup as a user, one as a group; alice needs none.
    assert_eq!(after, 2 * GHOSTS, "member lookups");
}

/// Base-scope searches of ghost DNs in a slapd log.
fn ghost_searches(log: &str) -> usize {
    log.lines().filter(|l| l.contains("SRCH base=\"cn=ghost") && l.contains("scope=0")).count()
}
