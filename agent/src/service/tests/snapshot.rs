//! What the NSS module's snapshot holds: positive answers from memory (never a "not found"),
//! listings marked complete, and nothing of an invalidated entry once the reply is out.

use lanyard_proto::snapshot::{Answer, SNAPSHOT_FILE_NAME};
use lanyard_proto::{Invalidation, Snapshot, boottime_ms};

use super::*;

fn alice_in(dir: &std::path::Path) -> Option<u32> {
    let bytes = std::fs::read(dir.join(SNAPSHOT_FILE_NAME)).unwrap();
    match Snapshot::parse(&bytes).unwrap().user_by_name(b"alice", boottime_ms()) {
        Answer::Fresh(user) => Some(user.uid),
        _ => None,
    }
}

#[tokio::test]
async fn answers_go_into_the_snapshot_misses_never_and_an_invalidation_takes_them_out_at_once() {
    let service = service(FakeDirectory::with_alice());
    one(&service, Request::UserByName("alice".into())).await;
    one(&service, Request::GroupsOfUser("alice".into())).await;
    one(&service, Request::UserByName("hunter2".into())).await;
    let contents = service.snapshot_contents();
    assert_eq!(contents.users.keys().collect::<Vec<_>>(), ["alice"], "only what was found");
    assert_eq!(contents.groups_of["alice"].0, [10010, 10011]);
    assert_eq!((contents.complete_users, contents.complete_groups), (None, None));

    let dir = std::env::temp_dir().join(format!("lanyard-service-{}-snapshot", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    service.publish_snapshots_to(&dir);
    assert_eq!(alice_in(&dir), Some(10001));
    let reply = one(&service, Request::Invalidate(Invalidation::User("alice".into()))).await;
    assert_eq!(reply, Response::Invalidated);
    assert_eq!(alice_in(&dir), None, "the reply went out before the snapshot changed");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn listings_make_the_snapshot_complete_and_give_every_user_a_group_list() {
    let service = service(FakeDirectory::with_alice());
    assert!(matches!(service.handle(Request::EnumerateUsers, ROOT).await, Reply::Users(_)));
    assert!(matches!(service.handle(Request::EnumerateGroups, ROOT).await, Reply::Groups(_)));
    let contents = service.snapshot_contents();
    assert!(contents.complete_users.is_some() && contents.complete_groups.is_some());
    assert!(contents.users.contains_key("alice"));
    // Known (from the listing), even if empty: initgroups needs no request.
    assert!(contents.groups_of.contains_key("alice"));
}

#[tokio::test]
async fn a_group_list_asked_without_its_user_is_in_the_snapshot() {
    let service = service(FakeDirectory::with_alice());
    one(&service, Request::GroupsOfUser("alice".into())).await;
    let dir = std::env::temp_dir().join(format!("lanyard-service-{}-lists", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    service.publish_snapshots_to(&dir);
    let bytes = std::fs::read(dir.join(SNAPSHOT_FILE_NAME)).unwrap();
    let snapshot = Snapshot::parse(&bytes).unwrap();
    match snapshot.groups_of(b"alice", boottime_ms()) {
        Answer::Fresh(gids) => assert_eq!(gids.iter().collect::<Vec<_>>(), [10010, 10011]),
        other => panic!("alice's groups not in the snapshot: {other:?}"),
    }
    assert_eq!(alice_in(&dir), None, "only her groups were asked for");
    std::fs::remove_dir_all(dir).unwrap();
}
