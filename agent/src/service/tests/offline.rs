//! The service with a real disk cache (redb in a scratch directory) and a fake directory that
//! can go away: offline answers, offline logins, stale answers refreshed in the background.

use std::path::PathBuf;

use super::*;
use crate::cache::{Store, StoreWriter};

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("lanyard-service-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    Scratch(dir)
}

/// A service over `directory` with the disk cache in `dir`, online unless the directory is
/// down from the start (as after a restart without network).
fn persistent(directory: FakeDirectory, dir: &Scratch) -> Service<FakeDirectory> {
    let store = Arc::new(Store::open(&dir.0).unwrap());
    let (writer, _task) = StoreWriter::spawn(store.clone());
    persistent_with(directory, store, writer)
}

fn persistent_with(
    directory: FakeDirectory,
    store: Arc<Store>,
    writer: crate::cache::WriterHandle,
) -> Service<FakeDirectory> {
    let health = Arc::new(Health::new(Duration::from_secs(5)));
    if directory.down.load(Ordering::SeqCst) {
        health.observe::<()>(&Err(DirectoryError::Timeout));
    }
    Service::new(directory, &config_with(pam_config()), health, Some(Persist { store, writer }))
}

async fn flush(service: &Service<FakeDirectory>) {
    assert!(service.persist.as_ref().unwrap().writer.flush().await);
}

/// The verifier is made in the background after a login: wait for it, bounded.
async fn wait_for_offline_password(service: &Service<FakeDirectory>, user: &str) {
    for _ in 0..100 {
        flush(service).await;
        if service.has_offline_password(user).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no offline verifier for {user} after 100 tries");
}

#[tokio::test]
async fn a_restarted_agent_without_the_directory_answers_from_disk() {
    let dir = scratch("restart");
    let store = Arc::new(Store::open(&dir.0).unwrap());
    let (writer, task) = StoreWriter::spawn(store.clone());
    let online = persistent_with(FakeDirectory::with_alice(), store, writer);
    assert!(matches!(one(&online, Request::UserByName("alice".into())).await, Response::User(_)));
    // As at an agent's stop: the writer commits what is queued and lets go of the file.
    assert!(online.persist.as_ref().unwrap().writer.shutdown().await);
    drop(online);
    task.await.unwrap();

    let offline = persistent(FakeDirectory::down(), &dir);
    assert!(
        matches!(one(&offline, Request::UserByName("alice".into())).await, Response::User(ref u) if u.uid == 10001)
    );
    // Stored under its uid too, from the lookup by name.
    assert!(matches!(one(&offline, Request::UserByUid(10001)).await, Response::User(ref u) if u.name == "alice"));
    assert!(matches!(one(&offline, Request::UserByName("bob".into())).await, Response::Unavailable(_)));
    assert!(offline.directory().asked().is_empty(), "offline, nothing waits on the directory");
}

#[tokio::test]
async fn an_offline_login_takes_the_right_password_and_refuses_a_wrong_one() {
    let dir = scratch("login");
    let service = persistent(FakeDirectory::with_alice(), &dir);
    assert_eq!(one(&service, login("alice", b"right")).await, Response::Authenticated { offline: false });
    wait_for_offline_password(&service, "alice").await;

    service.directory().set_down(true);
    assert_eq!(one(&service, login("alice", b"right")).await, Response::Authenticated { offline: true });
    assert!(!service.health().is_online());
    assert_eq!(one(&service, login("alice", b"wrong")).await, Response::WrongPassword);
    let account = Request::CheckAccount { user: "alice".into(), context: PamContext::default() };
    assert!(matches!(one(&service, account).await, Response::AccountOk { warning: Some(_) }));
}

#[tokio::test]
async fn a_wrong_password_online_never_falls_back_to_the_verifier() {
    let dir = scratch("no-fallback");
    let service = persistent(FakeDirectory::with_alice(), &dir);
    assert_eq!(one(&service, login("alice", b"right")).await, Response::Authenticated { offline: false });
    wait_for_offline_password(&service, "alice").await;
    assert_eq!(one(&service, login("alice", b"guess")).await, Response::WrongPassword);
    assert!(service.health().is_online());
}

#[tokio::test]
async fn an_account_the_directory_denies_gets_no_offline_login() {
    let dir = scratch("denied");
    let service = persistent(FakeDirectory::with_alice(), &dir);
    service.directory().denies.store(true, Ordering::SeqCst);
    assert_eq!(one(&service, login("alice", b"right")).await, Response::Authenticated { offline: false });
    let account = Request::CheckAccount { user: "alice".into(), context: PamContext::default() };
    assert!(matches!(one(&service, account.clone()).await, Response::Denied(_)));
    flush(&service).await;
    assert!(!service.has_offline_password("alice").await);
    service.directory().set_down(true);
    assert!(matches!(one(&service, login("alice", b"right")).await, Response::Unavailable(_)));
    assert!(matches!(one(&service, account).await, Response::Unavailable(_)));
}

#[tokio::test(start_paused = true)]
async fn a_stale_answer_is_served_at_once_and_refreshed_in_the_background() {
    let dir = scratch("stale");
    let service = Arc::new(persistent(FakeDirectory::with_alice(), &dir));
    tokio::spawn(service.clone().refresher());
    assert!(matches!(one(&service, Request::UserByName("alice".into())).await, Response::User(_)));
    flush(&service).await;
    service.handle(Request::Invalidate(lanyard_proto::Invalidation::All), ROOT).await;
    flush(&service).await;
    let asked_before = service.directory().asked().len();
    // Served from disk although stale; the refresh happens behind it.
    assert!(matches!(one(&service, Request::UserByName("alice".into())).await, Response::User(_)));
    for _ in 0..100 {
        if service.directory().asked().len() > asked_before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(service.directory().asked().len(), asked_before + 1, "one background refresh");
}

#[tokio::test]
async fn invalidation_is_for_root_only() {
    let service = service(FakeDirectory::with_alice());
    let request = Request::Invalidate(lanyard_proto::Invalidation::User("alice".into()));
    assert!(matches!(one_as(&service, request.clone(), ALICE_UID).await, Response::Refused(_)));
    assert_eq!(one(&service, request).await, Response::Invalidated);
}
