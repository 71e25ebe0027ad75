use std::sync::Mutex;
use std::time::Duration;

use super::*;

/// A directory that knows alice and counts every question it is asked.
#[derive(Default)]
struct FakeDirectory {
    asked: Mutex<Vec<String>>,
    down: bool,
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
        if self.down { Err(DirectoryError::Unreachable("test: down".into())) } else { Ok(()) }
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
        Ok(vec![10010, 10011])
    }
    async fn all_users(&self) -> Result<Vec<Passwd>, DirectoryError> {
        self.record("all users".into())?;
        Ok(self.users.clone())
    }
    async fn all_groups(&self) -> Result<Vec<Group>, DirectoryError> {
        self.record("all groups".into())?;
        let members: Vec<String> = (0..5000).map(|i| format!("member{i:04}")).collect();
        Ok((0..200).map(|gid| Group { name: format!("g{gid}"), gid: gid + 1, members: members.clone() }).collect())
    }
}

fn service(directory: FakeDirectory) -> Service<FakeDirectory> {
    Service::new(directory, CacheConfig { ttl: Duration::from_secs(300), negative_ttl: Duration::from_secs(30) })
}

async fn one(service: &Service<FakeDirectory>, request: Request) -> Response {
    match service.handle(request).await {
        Reply::One(response) => (*response).clone(),
        Reply::Pages(pages) => panic!("expected one response, got {} pages", pages.len()),
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
async fn an_unreachable_directory_is_unavailable_and_not_remembered() {
    let service = service(FakeDirectory { down: true, ..FakeDirectory::with_alice() });
    for _ in 0..2 {
        assert!(
            matches!(one(&service, Request::UserByName("alice".into())).await, Response::Unavailable(ref why) if why.contains("down"))
        );
    }
    assert_eq!(service.directory().asked().len(), 2);
}

#[tokio::test]
async fn groups_of_an_unknown_user_are_not_found() {
    let service = service(FakeDirectory::with_alice());
    assert_eq!(one(&service, Request::GroupsOfUser("nobody".into())).await, Response::NotFound);
    assert_eq!(one(&service, Request::GroupsOfUser("alice".into())).await, Response::GroupIds(vec![10010, 10011]));
}

#[tokio::test]
async fn enumeration_comes_in_bounded_pages_closed_by_end_of_pages() {
    let service = service(FakeDirectory::with_alice());
    let Reply::Pages(pages) = service.handle(Request::EnumerateGroups).await else { panic!("expected pages") };
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
    let service = service(FakeDirectory { down: true, ..FakeDirectory::with_alice() });
    let Reply::Pages(pages) = service.handle(Request::EnumerateUsers).await else { panic!("expected pages") };
    assert!(matches!(pages.as_slice(), [Response::Unavailable(_)]));
}
