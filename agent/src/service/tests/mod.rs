use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::*;
use crate::config::{Config, PamConfig};
use crate::directory::{AccountState, PasswordChange, PasswordCheck};
use lanyard_proto::{HomeDirectory, PamContext, Secret};

/// A directory that knows alice and counts every question it is asked.
#[derive(Default)]
struct FakeDirectory {
    asked: Mutex<Vec<String>>,
    down: AtomicBool,
    /// The account phase says no (as for a locked account).
    denies: AtomicBool,
    users: Vec<Passwd>,
}

impl FakeDirectory {
    fn with_alice() -> FakeDirectory {
        let alice = Passwd {
            name: "alice".into(),
            uid: 10001,
            gid: 10000,
            gecos: String::new(),
            home: "/home/alice".into(),
            shell: "/bin/sh".into(),
        };
        FakeDirectory { users: vec![alice], ..Default::default() }
    }

    fn record(&self, what: String) -> Result<(), DirectoryError> {
        self.asked.lock().unwrap().push(what);
        if self.down.load(Ordering::SeqCst) { Err(DirectoryError::Unreachable("test: down".into())) } else { Ok(()) }
    }

    fn down() -> FakeDirectory {
        let directory = FakeDirectory::with_alice();
        directory.set_down(true);
        directory
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

impl Directory for FakeDirectory {
    async fn user_by_name(&self, name: &str) -> Result<Option<Passwd>, DirectoryError> {
        self.record(format!("user {name}"))?;
        Ok(self.users.iter().find(|u| u.name == name).cloned())
    }
    async fn user_by_uid(&self, uid: u32) -> Result<Option<Passwd>, DirectoryError> {
        self.record(format!("uid {uid}"))?;
        Ok(self.users.iter().find(|u| u.uid == uid).cloned())
    }
    async fn group_by_name(&self, name: &str) -> Result<Option<Group>, DirectoryError> {
        self.record(format!("group {name}"))?;
        Ok(None)
    }
    async fn group_by_gid(&self, gid: u32) -> Result<Option<Group>, DirectoryError> {
        self.record(format!("gid {gid}"))?;
        Ok(None)
    }
    async fn groups_of_user(&self, user: &str) -> Result<Vec<u32>, DirectoryError> {
        self.record(format!("groups of {user}"))?;
        Ok(match user {
            "alice" => vec![10010, 10011],
            "localuser" => vec![10010],
            _ => Vec::new(),
        })
    }
    async fn all_users(&self) -> Result<Vec<Passwd>, DirectoryError> {
        self.record("all users".into())?;
        Ok(self.users.clone())
    }
    fn server_in_use(&self) -> Option<String> {
        Some("ldap://fake".into())
    }
    async fn probe(&self) -> Result<(), DirectoryError> {
        self.record("probe".into())
    }
    async fn check_password(&self, user: &str, password: &Secret) -> Result<PasswordCheck, DirectoryError> {
        self.record(format!("bind {user}"))?;
        Ok(match (self.users.iter().any(|u| u.name == user), password.expose()) {
            (false, _) => PasswordCheck::NoSuchUser,
            (true, b"right") => PasswordCheck::Accepted,
            (true, _) => PasswordCheck::Rejected,
        })
    }
    async fn account(&self, user: &str) -> Result<Option<AccountState>, DirectoryError> {
        self.record(format!("account {user}"))?;
        Ok(self.users.iter().find(|u| u.name == user).map(|u| AccountState {
            user: u.clone(),
            shadow_expire: None,
            shadow_last_change: None,
            shadow_max: None,
            shadow_warning: None,
            locked: self.denies.load(Ordering::SeqCst),
            disabled: false,
            expires_at: None,
            password_expires_at: None,
        }))
    }
    async fn user_matches(&self, user: &str, filter: &str) -> Result<bool, DirectoryError> {
        self.record(format!("match {user} {filter}"))?;
        Ok(filter.contains("allowed"))
    }
    async fn change_password(
        &self,
        user: &str,
        old: Option<&Secret>,
        _new: &Secret,
    ) -> Result<PasswordChange, DirectoryError> {
        self.record(format!("change {user}"))?;
        Ok(match old.map(Secret::expose) {
            Some(b"right") | None => PasswordChange::Changed,
            Some(_) => PasswordChange::WrongOldPassword,
        })
    }
    async fn all_groups(&self) -> Result<Vec<Group>, DirectoryError> {
        self.record("all groups".into())?;
        let members: Vec<String> = (0..5000).map(|i| format!("member{i:04}")).collect();
        Ok((0..200).map(|gid| Group { name: format!("g{gid}"), gid: gid + 1, members: members.clone() }).collect())
    }
}

fn pam_config() -> PamConfig {
    PamConfig {
        allowed_groups: Vec::new(),
        access_filter: None,
        root_may_reset_passwords: false,
        create_home: false,
        home_mode: 0o700,
        max_failures: 3,
        failure_window: Duration::from_secs(300),
    }
}

fn config_with(pam: PamConfig) -> Config {
    let mut config = Config::parse("t.toml".as_ref(), "[directory]\nuris=[\"ldap://x\"]\nbase=\"dc=x\"\n").unwrap();
    config.pam = pam;
    config
}

fn service(directory: FakeDirectory) -> Service<FakeDirectory> {
    service_with(directory, pam_config())
}

/// A service without a disk cache, online unless the directory is down from the start.
fn service_with(directory: FakeDirectory, pam: PamConfig) -> Service<FakeDirectory> {
    let health = Arc::new(Health::new(Duration::from_secs(5)));
    if directory.down.load(Ordering::SeqCst) {
        health.observe::<()>(&Err(DirectoryError::Timeout));
    }
    Service::new(directory, &config_with(pam), health, None)
}

const ROOT: Caller = Caller { uid: 0, pid: Some(1) };
const ALICE_UID: Caller = Caller { uid: 10001, pid: Some(2) };
const BOB_UID: Caller = Caller { uid: 10002, pid: Some(3) };

async fn one(service: &Service<FakeDirectory>, request: Request) -> Response {
    one_as(service, request, ROOT).await
}

async fn one_as(service: &Service<FakeDirectory>, request: Request, caller: Caller) -> Response {
    match service.handle(request, caller).await {
        Reply::One(response) => (*response).clone(),
        other => panic!("expected one response, got {}", other.summary()),
    }
}

#[tokio::test]
async fn a_warm_lookup_does_not_ask_the_directory_again() {
    let service = service(FakeDirectory::with_alice());
    for _ in 0..3 {
        assert!(
            matches!(one(&service, Request::UserByName("alice".into())).await, Response::User(ref u) if u.uid == 10001)
        );
    }
    assert_eq!(service.directory().asked(), ["user alice"]);
}

#[tokio::test(start_paused = true)]
async fn not_found_is_remembered_for_negative_ttl_only() {
    let service = service(FakeDirectory::with_alice());
    assert_eq!(one(&service, Request::UserByName("nobody".into())).await, Response::NotFound);
    assert_eq!(one(&service, Request::UserByName("nobody".into())).await, Response::NotFound);
    tokio::time::advance(Duration::from_secs(31)).await;
    assert_eq!(one(&service, Request::UserByName("nobody".into())).await, Response::NotFound);
    assert_eq!(service.directory().asked(), ["user nobody", "user nobody"]);
}

#[tokio::test]
async fn invalid_names_and_id_zero_are_not_found_without_asking() {
    let service = service(FakeDirectory::with_alice());
    for request in [
        Request::UserByName("*".into()),
        Request::UserByName("*)(uid=*".into()),
        Request::GroupByName("a\0b".into()),
        Request::GroupsOfUser("x".repeat(300)),
        Request::UserByUid(0),
        Request::GroupByGid(0),
    ] {
        assert_eq!(one(&service, request).await, Response::NotFound);
    }
    assert!(service.directory().asked().is_empty());
}

#[tokio::test]
async fn an_unreachable_directory_is_unavailable_and_takes_the_agent_offline() {
    let service = service(FakeDirectory::with_alice());
    service.directory().set_down(true);
    for _ in 0..3 {
        assert!(matches!(
            one(&service, Request::UserByName("alice".into())).await,
            Response::Unavailable(ref why) if why == "no directory server reachable"
        ));
    }
    assert!(!service.health().is_online());
    assert_eq!(service.directory().asked().len(), 1, "once offline, nothing waits on the directory");
}

#[tokio::test]
async fn groups_of_a_name_in_no_group_and_unknown_are_not_found() {
    let service = service(FakeDirectory::with_alice());
    assert_eq!(one(&service, Request::GroupsOfUser("nobody".into())).await, Response::NotFound);
    assert_eq!(one(&service, Request::GroupsOfUser("alice".into())).await, Response::GroupIds(vec![10010, 10011]));
    // A name in a directory group that is not a directory user (a local user) gets the group.
    assert_eq!(one(&service, Request::GroupsOfUser("localuser".into())).await, Response::GroupIds(vec![10010]));
}

#[tokio::test]
async fn enumeration_comes_in_bounded_pages_closed_by_end_of_pages() {
    let service = service(FakeDirectory::with_alice());
    let reply = service.handle(Request::EnumerateGroups, ROOT).await;
    let pages: Vec<Response> = reply.pages().collect();
    assert!(pages.len() > 2, "200 groups of 5000 members should need several pages");
    assert_eq!(pages.last(), Some(&Response::EndOfPages));
    let groups: usize = pages.iter().map(|p| if let Response::GroupPage(g) = p { g.len() } else { 0 }).sum();
    assert_eq!(groups, 200);
    for page in &pages {
        let bytes = lanyard_proto::frame::encode(page, lanyard_proto::frame::MAX_RESPONSE).unwrap().len();
        assert!(bytes < 2 * PAGE_BYTES, "a page of {bytes} bytes");
    }
}

#[tokio::test]
async fn an_enumeration_with_the_directory_down_is_unavailable() {
    let service = service(FakeDirectory::with_alice());
    service.directory().set_down(true);
    let reply = service.handle(Request::EnumerateUsers, ROOT).await;
    assert!(matches!(&reply, Reply::One(response) if matches!(**response, Response::Unavailable(_))));
}

fn login(user: &str, password: &[u8]) -> Request {
    Request::Authenticate {
        user: user.into(),
        password: Secret::new(password.to_vec()),
        context: PamContext::default(),
    }
}

#[tokio::test]
async fn the_right_password_authenticates_and_a_wrong_one_does_not() {
    let service = service(FakeDirectory::with_alice());
    assert_eq!(one(&service, login("alice", b"right")).await, Response::Authenticated { offline: false });
    assert_eq!(one(&service, login("alice", b"wrong")).await, Response::WrongPassword);
    assert_eq!(one(&service, login("nobody", b"right")).await, Response::NotFound);
}

#[tokio::test]
async fn an_empty_password_never_reaches_the_directory() {
    let service = service(FakeDirectory::with_alice());
    assert_eq!(one(&service, login("alice", b"")).await, Response::WrongPassword);
    assert!(!service.directory().asked().iter().any(|q| q.starts_with("bind")), "{:?}", service.directory().asked());
}

#[tokio::test]
async fn a_non_root_caller_may_authenticate_only_itself() {
    let service = service(FakeDirectory::with_alice());
    assert_eq!(one_as(&service, login("alice", b"right"), ALICE_UID).await, Response::Authenticated { offline: false });
    assert!(matches!(one_as(&service, login("alice", b"right"), BOB_UID).await, Response::Refused(_)));
    assert_eq!(service.directory().asked().iter().filter(|q| q.starts_with("bind")).count(), 1);
}

#[tokio::test(start_paused = true)]
async fn guessing_stops_after_max_failures_without_asking_the_directory() {
    let service = service(FakeDirectory::with_alice());
    for _ in 0..3 {
        assert_eq!(one(&service, login("alice", b"guess")).await, Response::WrongPassword);
    }
    assert!(matches!(
        one(&service, login("alice", b"right")).await,
        Response::TooManyAttempts { retry_after_secs: 300 }
    ));
    assert_eq!(service.directory().asked().iter().filter(|q| q.starts_with("bind")).count(), 3);
    tokio::time::advance(Duration::from_secs(301)).await;
    assert_eq!(one(&service, login("alice", b"right")).await, Response::Authenticated { offline: false });
}

#[tokio::test]
async fn an_access_filter_gets_escaped_values_and_decides() {
    let pam = PamConfig { access_filter: Some("(|(host={host})(description=allowed {user}))".into()), ..pam_config() };
    let service = service_with(FakeDirectory::with_alice(), pam);
    let request = Request::CheckAccount { user: "alice".into(), context: PamContext::default() };
    assert_eq!(one(&service, request).await, Response::AccountOk { warning: None });
    let denied = PamConfig { access_filter: Some("(host={service})".into()), ..pam_config() };
    let service = service_with(FakeDirectory::with_alice(), denied);
    let context = PamContext { service: "ss*d)(x=".into(), ..PamContext::default() };
    assert!(matches!(
        one(&service, Request::CheckAccount { user: "alice".into(), context }).await,
        Response::Denied(_)
    ));
    assert!(
        service.directory().asked().iter().any(|q| q == "match alice (host=ss\\2ad\\29\\28x=)"),
        "{:?}",
        service.directory().asked()
    );
}

#[tokio::test]
async fn a_pam_service_with_control_characters_never_reaches_the_access_filter() {
    let pam = PamConfig { access_filter: Some("(description=allowed {service})".into()), ..pam_config() };
    let service = service_with(FakeDirectory::with_alice(), pam);
    for bad in ["sshd\0", "ss\nhd", "sshd\u{7f}"] {
        let context = PamContext { service: bad.into(), ..PamContext::default() };
        let request = Request::CheckAccount { user: "alice".into(), context };
        assert!(matches!(one(&service, request).await, Response::Denied(_)), "{bad:?}");
    }
    assert!(!service.directory().asked().iter().any(|q| q.starts_with("match")), "{:?}", service.directory().asked());
}

#[tokio::test]
async fn a_password_reset_without_the_old_one_is_for_root_and_only_when_enabled() {
    let reset = |caller| {
        let service = service_with(
            FakeDirectory::with_alice(),
            PamConfig { root_may_reset_passwords: caller == ROOT, ..pam_config() },
        );
        async move {
            let request = Request::ChangePassword {
                user: "alice".into(),
                old: None,
                new: Secret::new(b"n3w-p4ss".to_vec()),
                context: PamContext::default(),
            };
            one_as(&service, request, caller).await
        }
    };
    assert_eq!(reset(ROOT).await, Response::PasswordChanged);
    assert!(matches!(reset(ALICE_UID).await, Response::Refused(_)));
    let service = service(FakeDirectory::with_alice());
    let request = Request::ChangePassword {
        user: "alice".into(),
        old: None,
        new: Secret::new(b"x".to_vec()),
        context: PamContext::default(),
    };
    assert!(matches!(one(&service, request).await, Response::Refused(_)));
}

#[tokio::test]
async fn a_session_offers_the_home_directory_only_when_configured() {
    let service = service(FakeDirectory::with_alice());
    let open = || Request::OpenSession { user: "alice".into(), context: PamContext::default() };
    assert_eq!(one(&service, open()).await, Response::SessionReady { home: None });
    let service =
        service_with(FakeDirectory::with_alice(), PamConfig { create_home: true, home_mode: 0o750, ..pam_config() });
    let home = HomeDirectory { path: "/home/alice".into(), uid: 10001, gid: 10000, mode: 0o750 };
    assert_eq!(one(&service, open()).await, Response::SessionReady { home: Some(home) });
}

/// A lookup cut off by its request's budget goes on in the background and is then answered
/// from memory; names `lookup` would refuse are never handed to it.
#[tokio::test(start_paused = true)]
async fn a_lookup_past_its_budget_is_finished_in_the_background() {
    let service = Arc::new(service(FakeDirectory::with_alice()));
    tokio::spawn(service.clone().refresher());
    for request in [Request::UserByName("alice".into()), Request::UserByName("x)(y".into()), Request::UserByUid(0)] {
        service.finish_in_background(Service::<FakeDirectory>::lookup_key(&request).unwrap());
    }
    assert_eq!(Service::<FakeDirectory>::lookup_key(&Request::Status), None);
    for _ in 0..100 {
        if !service.directory().asked().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(service.directory().asked(), ["user alice"]);
    assert!(matches!(one(&service, Request::UserByName("alice".into())).await, Response::User(_)));
    assert_eq!(service.directory().asked(), ["user alice"], "answered from memory");
}

#[test]
fn an_empty_enumeration_is_just_the_end() {
    let pages: Vec<Response> = Reply::Users(Arc::new(Ok(Vec::new()))).pages().collect();
    assert_eq!(pages, [Response::EndOfPages]);
}

/// Regression: a cache layer that held each fetch future three times made the request future
/// 381 KB in debug builds, and the one-thread agent overflowed its stack on the first lookup.
#[test]
fn a_request_future_over_the_real_directory_stays_small() {
    let config =
        crate::config::Config::parse("t.toml".as_ref(), "[directory]\nuris=[\"ldap://x\"]\nbase=\"dc=x\"\n").unwrap();
    let ldap = crate::directory::LdapDirectory::new(&config.directory).unwrap();
    let service = Service::new(ldap, &config, Arc::new(Health::new(Duration::from_secs(5))), None);
    let size = std::mem::size_of_val(&service.handle(Request::EnumerateUsers, ROOT));
    assert!(size < 64 * 1024, "Service::handle's future is {size} bytes");
}

mod offline;
mod snapshot;
