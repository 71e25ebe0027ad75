use lanyard_proto::Response;

use super::*;
use crate::cache::store::StoreKey;
use crate::cache::test_support::*;

fn open(dir: &Scratch) -> Arc<Store> {
    Arc::new(Store::open(dir.path()).unwrap())
}

fn answer(uid: u32) -> Write {
    Write::Answer(StoreKey::UserByUid(uid), fresh(Response::User(passwd(&format!("user{uid}"), uid))))
}

fn cached(store: &Store, uid: u32) -> bool {
    store.answer(&StoreKey::UserByUid(uid)).unwrap().is_some()
}

#[tokio::test]
async fn a_thousand_quick_writes_share_a_few_commits_and_flush_makes_them_visible() {
    let dir = Scratch::new("batching");
    let store = open(&dir);
    let (writer, _task) = StoreWriter::spawn(store.clone());
    for uid in 0..1000 {
        writer.send(answer(uid));
    }
    assert!(writer.flush().await);
    assert!((0..1000).all(|uid| cached(&store, uid)));
    // 1,000 / 256 per batch: four commits, not a thousand.
    assert!(store.commits() <= 5, "{} commits", store.commits());
}

#[tokio::test]
async fn a_lone_write_is_committed_once_the_linger_time_is_up() {
    let dir = Scratch::new("linger");
    let store = open(&dir);
    let (writer, _task) = StoreWriter::spawn(store.clone());
    let sent = std::time::Instant::now();
    writer.send(answer(1));
    // The count goes up just after the commit, so the write is visible once it has.
    while store.commits() == 0 {
        assert!(sent.elapsed() < Duration::from_secs(5), "never committed");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Never before it was due (a busy machine may make it later, so no upper bound here).
    assert!(sent.elapsed() >= LINGER, "committed after {:?}", sent.elapsed());
    assert!(cached(&store, 1));
    assert_eq!(store.commits(), 1);
}

#[tokio::test]
async fn a_full_queue_drops_writes_instead_of_waiting() {
    let dir = Scratch::new("full-queue");
    let store = open(&dir);
    let (writer, _task) = StoreWriter::spawn(store.clone());
    // One thread, no await: the writer cannot run, so the queue fills and stays full.
    for uid in 0..(QUEUE as u32 + 100) {
        writer.send(answer(uid));
    }
    assert!(writer.flush().await);
    assert!(cached(&store, QUEUE as u32 - 1));
    assert!(!cached(&store, QUEUE as u32));
}

#[tokio::test]
async fn dropping_every_handle_commits_what_was_queued_and_ends_the_task() {
    let dir = Scratch::new("drop");
    let store = open(&dir);
    let (writer, task) = StoreWriter::spawn(store.clone());
    let other = writer.clone();
    writer.send(answer(1));
    other.send(answer(2));
    drop((writer, other));
    task.await.unwrap();
    assert!(cached(&store, 1) && cached(&store, 2));
}

#[tokio::test]
async fn shutdown_commits_what_was_queued_and_later_writes_are_dropped() {
    let dir = Scratch::new("shutdown");
    let store = open(&dir);
    let (writer, task) = StoreWriter::spawn(store.clone());
    writer.send(answer(1));
    assert!(writer.shutdown().await);
    task.await.unwrap();
    writer.send(answer(2));
    assert!(!writer.flush().await);
    assert!(cached(&store, 1));
    assert!(!cached(&store, 2));
}

/// Runs in a child, inside its own mount namespace on a 512 KiB tmpfs that fills up and is then
/// grown; the parent only checks that the child passed. Mounting needs root (skipped without).
#[test]
fn a_full_disk_fails_commits_without_panicking_and_writes_resume_once_there_is_room() {
    const NAME: &str =
        "cache::writer::tests::a_full_disk_fails_commits_without_panicking_and_writes_resume_once_there_is_room";
    const DIR: &str = "LANYARD_TEST_FULL_DISK_DIR";
    let Some(dir) = std::env::var_os(DIR) else {
        let scratch = Scratch::new("full-disk");
        let mount = r#"mount -n -t tmpfs -o size=512k lanyard-test "$LANYARD_TEST_FULL_DISK_DIR" && exec "$@""#;
        let wrapper = ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount, "sh"];
        let child = rerun_in_child(NAME, (DIR, scratch.path()), &wrapper);
        let output = format!("{}{}", String::from_utf8_lossy(&child.stdout), String::from_utf8_lossy(&child.stderr));
        if output.starts_with("unshare:") || output.starts_with("mount:") {
            eprintln!("skipped: a private tmpfs needs root ({})", output.trim());
            return;
        }
        assert!(child.status.success() && output.contains("1 passed"), "{output}");
        return;
    };
    show_logs();
    let dir = std::path::PathBuf::from(dir);
    let store = Arc::new(Store::open(&dir).unwrap());
    store.apply(&[answer(0)]).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let (writer, task) = StoreWriter::spawn(store.clone());
        let mut uid = 1;
        let full = loop {
            for _ in 0..BATCH {
                writer.send(answer(uid));
                uid += 1;
            }
            if !writer.flush().await {
                break uid;
            }
            assert!(uid < 100_000, "512 KiB never filled up");
        };
        // Failed, and nothing torn: what was committed reads back, the failed batch is absent.
        assert!(cached(&store, 0) && cached(&store, full - BATCH as u32 - 1));
        assert!((full - BATCH as u32..full).all(|uid| !cached(&store, uid)));

        let grown =
            std::process::Command::new("mount").args(["-n", "-o", "remount,size=8m"]).arg(&dir).status().unwrap();
        assert!(grown.success());
        writer.send(answer(full));
        assert!(writer.flush().await, "writes did not resume");
        assert!(cached(&store, full) && cached(&store, 0));
        assert!(writer.shutdown().await);
        task.await.unwrap();
    });
}
