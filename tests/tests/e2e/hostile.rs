//! Names and ids an attacker or a typo might send: each is a clean not-found, and slapd never
//! sees a filter that could match more than the literal.
//!
//! Through getent the NSS module refuses most of these names before it connects, so the agent's
//! own defences are tested by talking to its socket directly: the same names in every lookup
//! request, a caller-chosen PAM service in an access filter, and frames that are not frames.

use std::ffi::OsString;
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use lanyard_proto::frame::{self, MAX_REQUEST, VERSION};
use lanyard_proto::name::is_valid_name;
use lanyard_proto::{Client, Deadlines, PamContext, Request, Response};
use lanyard_tests::{PamConfig, Slapd};

use crate::common::{Setup, assert_not_found, assert_success, setup, setup_with};

const ALICE_LINE: &str = "alice:x:10001:10000:Alice Liddell:/home/alice:/bin/bash\n";

/// Values built to escape a filter assertion: both the getent and the raw-socket tests send them.
const FILTER_BREAKERS: [&str; 8] =
    ["*", "*)(uid=*", "admin)(|(uid=*", "alice)(uid=*", "al*", "\\2a", "\\", "(uid=alice)"];

fn hostile_names() -> Vec<OsString> {
    let mut names: Vec<OsString> = FILTER_BREAKERS
        .into_iter()
        .chain([
            // LDAP matching ignores case and surrounding spaces; the agent must not.
            "ALICE",
            "Alice",
            "alice ",
            " alice",
            "alice\t",
            "DEVELOPERS",
        ])
        .map(OsString::from)
        .collect();
    names.push("a".repeat(300).into());
    names.push(OsString::from_vec(b"al\xffice".to_vec()));
    names.push(OsString::from_vec(b"\xc3(".to_vec()));
    names
}

/// A filter widens a search if it holds a `*` outside `(objectClass=*)`: RFC 4515 escaping
/// turns a literal `*` into `\2a`.
fn widening_filters(filters: &[String]) -> Vec<&String> {
    filters.iter().filter(|f| f.replace("(objectClass=*)", "").contains('*')).collect()
}

#[test]
fn hostile_names_are_not_found_and_never_widen_a_search() {
    let s = setup();
    // Positive control: the log does record the agent's searches.
    let mark = s.slapd.log_mark();
    assert_success(&s.ns.getent("passwd", &["bob"]).unwrap(), &s.agent);
    let control = Slapd::search_filters(&s.slapd.log_since(mark));
    assert!(control.iter().any(|f| f.contains("(uid=bob)")), "slapd logged no search for bob: {control:?}");

    let mark = s.slapd.log_mark();
    for name in hostile_names() {
        for database in ["passwd", "group"] {
            let out = s.ns.getent(database, &[&name]).unwrap();
            assert_not_found(&out, &s.agent);
        }
    }
    let filters = Slapd::search_filters(&s.slapd.log_since(mark));
    assert_eq!(widening_filters(&filters), Vec::<&String>::new(), "all filters: {filters:#?}");
    for f in &filters {
        assert!(!f.contains("(|(uid=") && !f.contains("(uid=*"), "injected filter {f}");
    }
}

#[test]
fn widening_filter_check_can_fail() {
    let logged = vec!["(&(objectClass=posixAccount)(uid=*))".to_owned(), "(&(objectClass=*)(uid=al\\2A))".to_owned()];
    assert_eq!(widening_filters(&logged), vec![&logged[0]]);
}

/// getent turns a numeric key into a uid with strtoul and a cast to uid_t: `-1` and anything
/// over u64 become 4294967295 ((uid_t)-1); `4294967296` would wrap to 0 and find root in files
/// before the module is asked, so it tests nothing of ours and is left out.
#[test]
fn out_of_range_ids_are_not_found() {
    let s = setup();
    for key in ["-1", "4294967295", "99999999999999999999999", "4294967294"] {
        for database in ["passwd", "group"] {
            let out = s.ns.run(&["getent", database, "--", key]).unwrap();
            assert_not_found(&out, &s.agent);
        }
    }
}

/// Names for the agent's own check, sent as `String`s (so also what no C string can carry).
fn hostile_agent_names() -> Vec<String> {
    let mut names: Vec<String> = FILTER_BREAKERS
        .into_iter()
        .chain([
            "al\0ice",
            // slapd normalizes an escaped NUL away in memberUid (IA5): `(memberUid=alice\00)` finds
            // alice's groups. Only the name rule keeps this one out.
            "alice\0",
            "alice ",
            " alice",
            "alice\t",
            "alice\n",
            // Bidi controls: shown as "alice", they are not.
            "\u{202e}ecila",
            "al\u{202e}ice",
            "alice\u{202e}",
            // Unicode normalization: a combining accent, the precomposed form, fullwidth letters
            // (NFKC makes them "alice"), a zero-width space.
            "jose\u{301}",
            "jos\u{e9}",
            "\u{ff41}\u{ff4c}\u{ff49}\u{ff43}\u{ff45}",
            "alice\u{200b}",
            // Valid names for the rule, so they do reach slapd, where matching ignores case: only
            // the exact name may answer, and the filter must carry them as they are.
            "ALICE",
            "Alice",
            "JOSE",
            "DEVELOPERS",
            "alice$",
        ])
        .map(String::from)
        .collect();
    names.push("a".repeat(300));
    names.push("a".repeat(lanyard_proto::name::MAX_NAME_LEN));
    names
}

/// One of the agent's lookups by name: the request, and the start of the filter it searches
/// with (`filter::equality` under the default rfc2307 object filters).
struct Lookup {
    what: &'static str,
    request: fn(String) -> Request,
    prefix: &'static str,
    /// slapd logs assertion values normalized by the attribute's equality rule: `uid` and `cn`
    /// (caseIgnoreMatch) lowercased, `memberUid` (caseExactIA5Match) as sent.
    case_folded: bool,
}

const LOOKUPS: [Lookup; 3] = [
    Lookup {
        what: "UserByName",
        request: Request::UserByName,
        prefix: "(&(objectClass=posixAccount)(uid=",
        case_folded: true,
    },
    Lookup {
        what: "GroupByName",
        request: Request::GroupByName,
        prefix: "(&(objectClass=posixGroup)(cn=",
        case_folded: true,
    },
    Lookup {
        what: "GroupsOfUser",
        request: Request::GroupsOfUser,
        prefix: "(&(objectClass=posixGroup)(memberUid=",
        case_folded: false,
    },
];

impl Lookup {
    /// How slapd logs this lookup's filter for a `name` sent literally.
    fn logged_filter(&self, name: &str) -> String {
        let value = if self.case_folded { name.to_ascii_lowercase() } else { name.to_owned() };
        format!("{}{value}))", self.prefix)
    }
}

/// The lookup a logged filter belongs to and the value it carries, or `None` for a filter of
/// any other shape. A value that escaped its assertion (`*)(uid=*`) shows up here as a value
/// holding `)`, `(` or `*`.
fn looked_up_value(filter: &str) -> Option<(&'static Lookup, &str)> {
    LOOKUPS.iter().find_map(|lookup| Some((lookup, filter.strip_prefix(lookup.prefix)?.strip_suffix("))")?)))
}

/// Whether a logged assertion value can only match itself: no `*` (presence or substring), no
/// parenthesis (a second assertion), no raw NUL. RFC 4515 escapes (`\2a`) are literal.
fn is_literal(value: &str) -> bool {
    !value.contains(['*', '(', ')', '\0'])
}

/// What is wrong with the lookup filters slapd logged, given the names the agent may search
/// for: empty when every filter has a lookup's shape and carries, literally, one of
/// `searchable` (as slapd normalizes it).
fn filter_problems(filters: &[String], searchable: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    for filter in filters {
        match looked_up_value(filter) {
            None => problems.push(format!("a filter of another shape: {filter}")),
            Some((_, value)) if !is_literal(value) => problems.push(format!("a value that is not a literal: {filter}")),
            Some((lookup, _)) if !searchable.iter().any(|name| lookup.logged_filter(name) == *filter) => {
                problems.push(format!("a search for a name the agent's rule refuses, or altered: {filter}"))
            }
            Some(_) => {}
        }
    }
    problems
}

#[test]
fn filter_problem_checks_can_fail() {
    let logged = |fs: &[&str]| fs.iter().map(|f| f.to_string()).collect::<Vec<_>>();
    let clean = logged(&["(&(objectClass=posixAccount)(uid=alice))", "(&(objectClass=posixGroup)(memberUid=ALICE))"]);
    assert_eq!(filter_problems(&clean, &["ALICE"]), Vec::<String>::new());
    // Unescaped injection, escaped but searched although the rule refuses it, altered case
    // where slapd keeps it, another shape.
    for bad in [
        "(&(objectClass=posixAccount)(uid=*)(uid=*))",
        "(&(objectClass=posixAccount)(uid=admin)(|(uid=*)))",
        "(&(objectClass=posixGroup)(cn=\\2a\\29\\28uid=\\2a))",
        "(&(objectClass=posixGroup)(memberUid=alice))",
        "(|(uid=alice)(uid=*))",
    ] {
        assert_eq!(filter_problems(&logged(&[bad]), &["ALICE"]).len(), 1, "{bad}");
    }
}

#[track_caller]
fn call(socket: &Path, request: &Request) -> Response {
    Client::call(socket, request, Deadlines::default()).unwrap_or_else(|e| panic!("{request:?}: {e}"))
}

/// The NSS module's name check is bypassed: every name goes to the agent in every lookup by
/// name. The agent answers "not found" to all of them, searches only for those its name rule
/// accepts, and those reach slapd as literals, unaltered (as far as slapd's normalized log
/// shows: memberUid keeps the case they were sent in).
#[test]
fn hostile_names_sent_straight_to_the_agent_are_not_found_and_reach_slapd_only_as_literals() {
    let s = setup();
    let socket = s.agent.socket();
    // Positive control: this socket answers, and slapd's log records the searches behind it.
    let mark = s.slapd.log_mark();
    match call(&socket, &Request::UserByName("bob".into())) {
        Response::User(bob) => assert_eq!((bob.name.as_str(), bob.uid), ("bob", 10002)),
        other => panic!("bob: {other:?}\n{}", s.agent.log()),
    }
    let control = Slapd::search_filters(&s.slapd.log_since(mark));
    assert!(control.contains(&"(&(objectClass=posixAccount)(uid=bob))".to_owned()), "{control:?}");

    let names = hostile_agent_names();
    let mark = s.slapd.log_mark();
    for name in &names {
        for lookup in &LOOKUPS {
            let response = call(&socket, &(lookup.request)(name.clone()));
            let what = lookup.what;
            assert_eq!(response, Response::NotFound, "{what}({name:?})\n--- lanyardd log ---\n{}", s.agent.log());
        }
    }
    let filters = Slapd::search_filters(&s.slapd.log_since(mark));
    let searchable: Vec<&str> = names.iter().map(String::as_str).filter(|n| is_valid_name(n)).collect();
    assert_eq!(searchable.len(), 6, "the valid names of the list: {searchable:?}");
    assert_eq!(filter_problems(&filters, &searchable), Vec::<String>::new(), "all filters: {filters:#?}");
    // Those names were searched for, each as sent (memberUid shows the case is kept).
    for name in searchable {
        for lookup in &LOOKUPS {
            let expected = lookup.logged_filter(name);
            assert!(filters.contains(&expected), "{}({name:?}): no {expected} in {filters:#?}", lookup.what);
        }
    }
}

/// RFC 4515 escaping of a filter value, as the agent must apply it (lowercase hex).
fn escaped(value: &str) -> String {
    value
        .chars()
        .map(|c| match c {
            '*' | '(' | ')' | '\\' | '\0' => format!("\\{:02x}", c as u32),
            c => c.to_string(),
        })
        .collect()
}

/// The PAM service is whatever the calling program passed to `pam_start`, and any user may ask
/// about their own account: the one caller-chosen value that reaches a filter without the name
/// rule. The rule admits alice only when `{service}` equals her cn; a service that escaped its
/// assertion (`*)(uid=*`) would let her in.
#[test]
fn a_hostile_pam_service_reaches_the_access_filter_only_escaped() {
    let rule = "(|(uid=nobody)(cn={service}))";
    let s = setup_with(|config| config.pam(PamConfig::default().access_filter(rule)));
    let socket = s.agent.socket();
    let check = |service: &str| {
        let context = PamContext { service: service.into(), ..PamContext::default() };
        call(&socket, &Request::CheckAccount { user: "alice".into(), context })
    };
    // Positive control: the rule is applied, and {service} is what decides it.
    let admitted = check("Alice Liddell");
    assert!(matches!(admitted, Response::AccountOk { .. }), "{admitted:?}\n{}", s.agent.log());

    let mark = s.slapd.log_mark();
    let hostile =
        ["*", "*)(uid=*", "Alice*", "Alice Liddell)(uid=*", "Alice Liddell\\", "Alice\0Liddell", "Alice Liddell\0x"];
    for service in hostile {
        let response = check(service);
        assert!(matches!(response, Response::Denied(_)), "service {service:?}: {response:?}\n{}", s.agent.log());
    }
    let filters = Slapd::search_filters(&s.slapd.log_since(mark));
    assert_eq!(widening_filters(&filters), Vec::<&String>::new(), "all filters: {filters:#?}");
    for service in hostile {
        let expected = format!("(cn={})", escaped(service)).to_lowercase();
        let searched = filters.iter().any(|f| f.to_lowercase().contains(&expected));
        // Control characters are refused before any search: slapd would normalize an IA5
        // value such as `alice\00liddell` to `alice`. Everything else reaches it escaped.
        let refused_before_search = service.chars().any(char::is_control);
        assert_eq!(searched, !refused_before_search, "service {service:?}: {expected} in {filters:#?}");
    }
}

/// How long the agent may take to hang up on a connection it must drop. A hang guard, not a
/// latency measurement: a broken frame is dropped at once, a silent connection after the
/// agent's first-request read timeout (500 ms).
const HANG_UP_GUARD: Duration = Duration::from_secs(10);

/// Reads until the agent hangs up: true at end of file or a reset, false if it kept the
/// connection open past [`HANG_UP_GUARD`]. Returns what it sent before, too.
fn wait_for_hang_up(stream: &mut UnixStream) -> (bool, usize) {
    stream.set_read_timeout(Some(HANG_UP_GUARD)).unwrap();
    let mut received = 0;
    let mut buf = [0u8; 4096];
    // Bounded: a well-behaved agent sends nothing at all here.
    for _ in 0..64 {
        match stream.read(&mut buf) {
            Ok(0) => return (true, received),
            Ok(n) => received += n,
            // AF_UNIX: closing a socket with unread data resets the peer.
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return (true, received),
            Err(_) => return (false, received),
        }
    }
    (false, received)
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).unwrap();
    bytes
}

/// One way to break the framing: what is written, and whether the writer then hangs up (shuts
/// down its sending side: the agent reads end of file mid-frame).
struct Abuse {
    what: &'static str,
    bytes: Vec<u8>,
    hang_up: bool,
    /// Random bytes might, against all odds, form a request the agent answers.
    may_be_answered: bool,
}

impl Abuse {
    fn new(what: &'static str, bytes: Vec<u8>) -> Abuse {
        Abuse { what, bytes, hang_up: false, may_be_answered: false }
    }
}

fn abuses() -> Vec<Abuse> {
    let header = |version: u8, len: u32| {
        let mut bytes = vec![version];
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes
    };
    let request = frame::encode(&Request::UserByName("alice".into()), MAX_REQUEST).unwrap();
    let over_maximum = u32::try_from(MAX_REQUEST + 1).unwrap();
    vec![
        // u32::MAX, one byte short of 4 GiB: the most a header can announce.
        Abuse::new("a header announcing 4 GiB", header(VERSION, u32::MAX)),
        Abuse::new("a header one byte over the request maximum", header(VERSION, over_maximum)),
        Abuse::new("another protocol version", [header(VERSION + 1, 1), vec![0]].concat()),
        Abuse::new("a body that is no request", [header(VERSION, 8), vec![0xff; 8]].concat()),
        Abuse {
            hang_up: true,
            ..Abuse::new("a truncated request, then a hang-up", request[..request.len() - 2].to_vec())
        },
        Abuse { may_be_answered: true, ..Abuse::new("4 KiB of random bytes", random_bytes(4096)) },
        Abuse::new("nothing at all", Vec::new()),
    ]
}

#[track_caller]
fn assert_is_alice(response: Response, s: &Setup) {
    match response {
        Response::User(alice) => assert_eq!((alice.name.as_str(), alice.uid), ("alice", 10001)),
        other => panic!("{other:?}\n--- lanyardd log ---\n{}", s.agent.log()),
    }
}

/// Each broken connection is dropped on its own: while it is open, another connection made
/// before it and a getent through the module are answered; then the agent hangs up on it, and
/// it is still running.
#[test]
fn broken_frames_drop_only_their_own_connection_and_the_agent_keeps_serving() {
    let mut s = setup();
    let socket = s.agent.socket();
    for abuse in abuses() {
        let mut before = Client::connect(&socket, Deadlines::default()).unwrap();
        let mut bad = UnixStream::connect(&socket).unwrap();
        bad.set_write_timeout(Some(HANG_UP_GUARD)).unwrap();
        // The agent may hang up before it has read everything: a failed write is its right.
        let _ = bad.write_all(&abuse.bytes);
        if abuse.hang_up {
            bad.shutdown(Shutdown::Write).unwrap();
        }

        before.send(&Request::UserByName("alice".into())).unwrap();
        assert_is_alice(before.receive().unwrap(), &s);
        let out = s.ns.getent("passwd", &["alice"]).unwrap();
        assert_success(&out, &s.agent);
        assert_eq!(out.stdout(), ALICE_LINE, "{}", abuse.what);

        let (hung_up, received) = wait_for_hang_up(&mut bad);
        assert!(hung_up, "{}: the agent kept the connection open for {HANG_UP_GUARD:?}", abuse.what);
        if !abuse.may_be_answered {
            assert_eq!(received, 0, "{}: the agent answered", abuse.what);
        }
        assert_eq!(s.agent.exited().unwrap(), None, "{}: lanyardd exited\n{}", abuse.what, s.agent.log());
    }
    assert_is_alice(call(&socket, &Request::UserByName("alice".into())), &s);
    assert_success(&s.ns.getent("passwd", &["alice"]).unwrap(), &s.agent);
}
