use std::os::unix::fs::PermissionsExt;

use lanyard_proto::Invalidation;

use super::*;
use crate::cache::test_support::*;

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn key_stale(store: &Store, key: StoreKey) -> bool {
    store.answer(&key).unwrap().unwrap_or_else(|| panic!("{key:?} is gone")).stale
}

#[test]
fn every_kind_of_write_round_trips() {
    let dir = Scratch::new("round-trip");
    let store = Store::open(dir.path()).unwrap();
    assert!(store.started_fresh());
    let users = fresh(vec![passwd("alice", 1000), passwd("bob", 1001)]);
    let groups = fresh(vec![group("staff", 50, &["alice", "bob"])]);
    let mut batch = user_answers("alice", 1000);
    batch.extend(group_answers("staff", 50));
    batch.extend([
        Write::Users(users.clone()),
        Write::Groups(groups.clone()),
        Write::Verifier("alice".into(), verifier(7)),
        Write::Verifier("bob".into(), verifier(8)),
        Write::RemoveVerifier("bob".into()),
    ]);
    store.apply(&batch).unwrap();

    for write in &batch[..5] {
        let Write::Answer(key, stored) = write else { unreachable!() };
        assert_eq!(store.answer(key).unwrap().as_ref(), Some(stored));
    }
    assert_eq!(store.users().unwrap(), Some(users));
    assert_eq!(store.groups().unwrap(), Some(groups));
    assert_eq!(store.verifier("alice").unwrap(), Some(verifier(7)));
    assert_eq!(store.verifier("bob").unwrap(), None);
    assert_eq!(store.answer(&StoreKey::UserByName("carol".into())).unwrap(), None);
}

#[test]
fn only_user_group_and_group_id_answers_are_stored() {
    let dir = Scratch::new("storable");
    let store = Store::open(dir.path()).unwrap();
    let refused = [
        Response::NotFound,
        Response::Unavailable("down".into()),
        Response::UserPage(vec![passwd("alice", 1000)]),
        Response::Authenticated { offline: false },
    ];
    let batch: Vec<Write> =
        refused.into_iter().map(|r| Write::Answer(StoreKey::UserByName("alice".into()), fresh(r))).collect();
    store.apply(&batch).unwrap();
    assert_eq!(store.answer(&StoreKey::UserByName("alice".into())).unwrap(), None);
}

#[test]
fn a_batch_is_one_commit_and_an_empty_one_none() {
    let dir = Scratch::new("one-commit");
    let store = Store::open(dir.path()).unwrap();
    let batch: Vec<Write> = (0..100).flat_map(|uid| user_answers(&format!("u{uid}"), uid)).collect();
    store.apply(&batch).unwrap();
    store.apply(&[]).unwrap();
    assert_eq!(store.commits(), 1);
}

#[test]
fn invalidating_a_user_marks_its_three_answers_stale_and_keeps_them() {
    let dir = Scratch::new("invalidate-user");
    let store = Store::open(dir.path()).unwrap();
    let mut batch = user_answers("alice", 1000);
    batch.extend(user_answers("bob", 1001));
    batch.extend(group_answers("alice", 1000));
    store.apply(&batch).unwrap();

    store.apply(&[Write::Invalidate(Invalidation::User("alice".into()))]).unwrap();
    assert!(key_stale(&store, StoreKey::UserByName("alice".into())));
    assert!(key_stale(&store, StoreKey::UserByUid(1000)));
    assert!(key_stale(&store, StoreKey::GroupsOfUser("alice".into())));
    let kept = store.answer(&StoreKey::UserByUid(1000)).unwrap().unwrap();
    assert_eq!(kept.value, Response::User(passwd("alice", 1000)));
    assert_eq!(kept.fetched_at, 1_700_000_000);
    // Not alice's: bob, and a group that happens to share her name and id.
    assert!(!key_stale(&store, StoreKey::UserByName("bob".into())));
    assert!(!key_stale(&store, StoreKey::UserByUid(1001)));
    assert!(!key_stale(&store, StoreKey::GroupByName("alice".into())));
    assert!(!key_stale(&store, StoreKey::GroupByGid(1000)));
}

#[test]
fn invalidating_a_group_marks_it_stale_by_name_and_by_gid() {
    let dir = Scratch::new("invalidate-group");
    let store = Store::open(dir.path()).unwrap();
    let mut batch = group_answers("staff", 50);
    batch.extend(group_answers("wheel", 10));
    batch.extend(user_answers("staff", 50));
    store.apply(&batch).unwrap();

    store.apply(&[Write::Invalidate(Invalidation::Group("staff".into()))]).unwrap();
    assert!(key_stale(&store, StoreKey::GroupByName("staff".into())));
    assert!(key_stale(&store, StoreKey::GroupByGid(50)));
    assert!(!key_stale(&store, StoreKey::GroupByGid(10)));
    assert!(!key_stale(&store, StoreKey::UserByUid(50)));
    // Invalidating something never cached is not an error.
    store.apply(&[Write::Invalidate(Invalidation::Group("nobody".into()))]).unwrap();
}

#[test]
fn invalidating_all_marks_every_answer_and_both_listings_stale() {
    let dir = Scratch::new("invalidate-all");
    let store = Store::open(dir.path()).unwrap();
    let mut batch = user_answers("alice", 1000);
    batch.extend(group_answers("staff", 50));
    batch.push(Write::Users(fresh(vec![passwd("alice", 1000)])));
    batch.push(Write::Groups(fresh(vec![group("staff", 50, &["alice"])])));
    batch.push(Write::Verifier("alice".into(), verifier(7)));
    store.apply(&batch).unwrap();

    store.apply(&[Write::Invalidate(Invalidation::All)]).unwrap();
    for write in &batch[..5] {
        let Write::Answer(key, stored) = write else { unreachable!() };
        assert_eq!(store.answer(key).unwrap(), Some(Stored { stale: true, ..stored.clone() }));
    }
    let users = store.users().unwrap().unwrap();
    assert!(users.stale);
    assert_eq!(users.value, vec![passwd("alice", 1000)]);
    assert!(store.groups().unwrap().unwrap().stale);
    assert_eq!(store.verifier("alice").unwrap(), Some(verifier(7)));
}

#[test]
fn clear_wipes_answers_listings_and_verifiers() {
    let dir = Scratch::new("clear");
    let store = Store::open(dir.path()).unwrap();
    let mut batch = user_answers("alice", 1000);
    batch.push(Write::Users(fresh(vec![passwd("alice", 1000)])));
    batch.push(Write::Groups(fresh(vec![])));
    batch.push(Write::Verifier("alice".into(), verifier(7)));
    store.apply(&batch).unwrap();

    // Cleared and refilled in one batch: order within a batch holds.
    store.apply(&[Write::Clear, Write::Verifier("bob".into(), verifier(9))]).unwrap();
    assert_eq!(store.answer(&StoreKey::UserByName("alice".into())).unwrap(), None);
    assert_eq!(store.answer(&StoreKey::UserByUid(1000)).unwrap(), None);
    assert_eq!(store.users().unwrap(), None);
    assert_eq!(store.groups().unwrap(), None);
    assert_eq!(store.verifier("alice").unwrap(), None);
    assert_eq!(store.verifier("bob").unwrap(), Some(verifier(9)));
}

#[test]
fn what_was_committed_is_there_after_reopening() {
    let dir = Scratch::new("reopen");
    let store = Store::open(dir.path()).unwrap();
    store.apply(&user_answers("alice", 1000)).unwrap();
    store.apply(&[Write::Verifier("alice".into(), verifier(7))]).unwrap();
    drop(store);

    let store = Store::open(dir.path()).unwrap();
    assert!(!store.started_fresh());
    assert_eq!(store.answer(&StoreKey::UserByUid(1000)).unwrap(), Some(fresh(Response::User(passwd("alice", 1000)))));
    assert_eq!(store.verifier("alice").unwrap(), Some(verifier(7)));
    assert!(dir.broken_files().is_empty());
}

#[test]
fn a_new_cache_file_is_0600_in_a_new_0700_directory() {
    let dir = Scratch::new("modes");
    let cache_dir = dir.path().join("var/lib/lanyard");
    let store = Store::open(&cache_dir).unwrap();
    assert_eq!(mode(&cache_dir), 0o700);
    assert_eq!(mode(store.path()), 0o600);
    assert_eq!(store.path(), cache_dir.join("cache.redb"));
}

#[test]
fn an_existing_cache_directory_open_to_others_is_made_0700() {
    let dir = Scratch::new("dir-mode");
    let cache_dir = dir.path().join("made-by-hand");
    fs::create_dir(&cache_dir).unwrap();
    fs::set_permissions(&cache_dir, Permissions::from_mode(0o755)).unwrap();
    Store::open(&cache_dir).unwrap();
    assert_eq!(mode(&cache_dir), 0o700);
}

#[test]
fn a_cache_file_open_to_others_is_made_0600_on_open_and_keeps_its_data() {
    let dir = Scratch::new("repair-mode");
    Store::open(dir.path()).unwrap().apply(&user_answers("alice", 1000)).unwrap();
    fs::set_permissions(dir.file(), Permissions::from_mode(0o644)).unwrap();

    let store = Store::open(dir.path()).unwrap();
    assert_eq!(mode(&dir.file()), 0o600);
    assert!(store.answer(&StoreKey::UserByName("alice".into())).unwrap().is_some());
}

/// A file that is not a redb file at all, one cut short, and one from another schema
/// version are each moved aside, and the fresh store in their place works.
fn assert_moved_aside_and_rebuilt(dir: &Scratch, original: Option<&[u8]>) {
    let store = Store::open(dir.path()).unwrap();
    assert!(store.started_fresh());
    let broken = dir.broken_files();
    assert_eq!(broken.len(), 1, "{broken:?}");
    if let Some(original) = original {
        assert!(fs::read(dir.path().join(&broken[0])).unwrap() == original, "the evidence is kept as it was");
    }
    assert_eq!(mode(&dir.file()), 0o600);
    assert_eq!(store.answer(&StoreKey::UserByName("alice".into())).unwrap(), None);
    store.apply(&user_answers("alice", 1000)).unwrap();
    assert!(store.answer(&StoreKey::UserByName("alice".into())).unwrap().is_some());
}

#[test]
fn a_garbage_file_is_moved_aside_and_a_fresh_store_works() {
    let dir = Scratch::new("garbage");
    let garbage = vec![0xFF; 4096];
    fs::write(dir.file(), &garbage).unwrap();
    assert_moved_aside_and_rebuilt(&dir, Some(&garbage));
}

#[test]
fn a_truncated_file_is_moved_aside_and_a_fresh_store_works() {
    let dir = Scratch::new("truncated");
    let store = Store::open(dir.path()).unwrap();
    let batch: Vec<Write> = (0..2000).flat_map(|uid| user_answers(&format!("user{uid}"), uid)).collect();
    store.apply(&batch).unwrap();
    drop(store);
    let whole = fs::read(dir.file()).unwrap();
    let cut = whole[..whole.len() / 3].to_vec();
    fs::write(dir.file(), &cut).unwrap();
    assert_moved_aside_and_rebuilt(&dir, Some(&cut));
}

#[test]
fn a_file_with_another_schema_version_is_moved_aside() {
    let dir = Scratch::new("other-version");
    let store = Store::open(dir.path()).unwrap();
    store.apply(&user_answers("alice", 1000)).unwrap();
    store.set_schema_version(SCHEMA_VERSION + 1).unwrap();
    drop(store);
    // Opening it to read the version already rewrote part of it (redb's integrity check).
    assert_moved_aside_and_rebuilt(&dir, None);
}

#[test]
fn a_cache_file_in_use_is_refused_and_not_moved_aside() {
    let dir = Scratch::new("in-use");
    let _first = Store::open(dir.path()).unwrap();
    let second = Store::open(dir.path());
    assert!(matches!(second, Err(StoreError::Database(redb::Error::DatabaseAlreadyOpen))), "{second:?}");
    assert!(dir.broken_files().is_empty());
}

#[test]
fn a_file_with_a_damaged_page_is_moved_aside() {
    let dir = Scratch::new("damaged");
    let store = Store::open(dir.path()).unwrap();
    let batch: Vec<Write> = (0..2000).flat_map(|uid| user_answers(&format!("user{uid}"), uid)).collect();
    store.apply(&batch).unwrap();
    drop(store);
    let mut bytes = fs::read(dir.file()).unwrap();
    let middle = bytes.len() / 2 / 4096 * 4096;
    bytes[middle..middle + 4096].fill(0xA5);
    fs::write(dir.file(), &bytes).unwrap();
    assert_moved_aside_and_rebuilt(&dir, Some(&bytes));
}

/// Answers overwritten by every batch of the crash test, all stamped with the batch number.
const OVERWRITTEN: u32 = 256;

/// Batch `n` of the crash test: rewrites the same answers, stamped `n`, and adds a marker.
fn crash_batch(n: u64) -> Vec<Write> {
    let stamped = |value| Stored { fetched_at: n, stale: false, value };
    let mut batch: Vec<Write> = (0..OVERWRITTEN)
        .map(|uid| Write::Answer(StoreKey::UserByUid(uid), stamped(Response::User(passwd(&format!("u{uid}"), uid)))))
        .collect();
    batch.push(Write::Answer(StoreKey::UserByName(format!("batch{n}")), stamped(Response::GroupIds(vec![]))));
    batch
}

/// How many crash-test batches the store holds, checking that they are whole: markers
/// 0..n present and no later one, every overwritten answer stamped with batch n - 1.
fn whole_batches(store: &Store) -> u64 {
    let marker = |n: u64| store.answer(&StoreKey::UserByName(format!("batch{n}"))).unwrap();
    let n = (0..).find(|&n| marker(n).is_none()).unwrap();
    assert!((n..n + 10).all(|later| marker(later).is_none()), "a batch after a missing one");
    for uid in 0..OVERWRITTEN {
        let stamp = store.answer(&StoreKey::UserByUid(uid)).unwrap().map(|stored| stored.fetched_at);
        assert_eq!(stamp, n.checked_sub(1), "answer {uid} is from another batch than the last one");
    }
    n
}

/// The child appends batches (after those already there) and reports each commit on stdout;
/// the parent kills it with SIGKILL at an unpredictable moment, five times over the same
/// file, and checks after each kill that the file opens cleanly and holds whole batches only,
/// at least every one reported committed.
#[test]
fn a_kill_during_writes_leaves_only_whole_batches_and_a_file_that_opens() {
    const NAME: &str = "cache::store::tests::a_kill_during_writes_leaves_only_whole_batches_and_a_file_that_opens";
    const DIR: &str = "LANYARD_TEST_CRASH_DIR";
    if let Some(dir) = std::env::var_os(DIR) {
        let store = Store::open(Path::new(&dir)).unwrap();
        let started = std::time::Instant::now();
        // Bounded, in case the parent died without killing this process.
        for n in whole_batches(&store).. {
            store.apply(&crash_batch(n)).unwrap();
            println!("committed {n}");
            assert!(started.elapsed() < std::time::Duration::from_secs(60));
        }
        return;
    }
    use std::io::BufRead;
    use std::os::unix::process::ExitStatusExt;
    const SIGKILL: i32 = 9;
    let dir = Scratch::new("crash");
    let mut total = 0;
    for round in 0..5 {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--test-threads=1", "--nocapture"])
            .env(DIR, dir.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Kept open until the child is dead: a closed pipe would end it with a panic in
        // `println!`, between commits, instead of a SIGKILL somewhere inside one.
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut reported = None;
        for line in lines.by_ref() {
            if let Some(n) = line.unwrap().strip_prefix("committed ") {
                reported = Some(n.parse::<u64>().unwrap());
            }
            if reported.is_some_and(|n| n >= total + 20) {
                break;
            }
        }
        // Somewhere inside one of the next few commits.
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
        std::thread::sleep(std::time::Duration::from_micros(u64::from(nanos % 5000)));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(SIGKILL), "round {round}: the child ended some other way: {status}");
        drop(lines);

        let store = Store::open(dir.path()).unwrap();
        assert!(!store.started_fresh() && dir.broken_files().is_empty(), "round {round}: the file was rebuilt");
        total = whole_batches(&store);
        let reported = reported.expect("the child reported no commit");
        assert!(total > reported, "round {round}: batch {reported} was reported committed but is missing");
        println!("round {round}: killed after batch {reported} was reported, {total} batches whole on disk");
    }
}

/// Numbers for the closing note, not a check. In release mode, on the disk that will
/// hold the cache: `LANYARD_MEASURE_DIR=/var/tmp cargo test --release -p lanyard-agent --lib
/// commit_and_open_times -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement; run it by hand"]
fn commit_and_open_times_are_printed() {
    let base = std::env::var_os("LANYARD_MEASURE_DIR").map_or_else(std::env::temp_dir, Into::into);
    let dir = base.join(format!("lanyard-measure-{}", std::process::id()));
    let store = Store::open(&dir).unwrap();
    let timed = |f: &dyn Fn()| {
        let started = std::time::Instant::now();
        f();
        started.elapsed()
    };
    for size in [1, 16, 256] {
        let mut times: Vec<_> = (0..200u32)
            .map(|round| {
                let batch: Vec<Write> =
                    (0..size).flat_map(|i| user_answers(&format!("m{round}-{i}"), round * 1000 + i)).collect();
                timed(&|| store.apply(&batch[..size as usize]).unwrap())
            })
            .collect();
        times.sort();
        println!("batch of {size} answers: p50 {:?}, p99 {:?}", times[100], times[198]);
    }
    // About a 10,000-user site: 30,000 user answers, 6,000 group answers, a user listing.
    let mut batch: Vec<Write> = (0..10_000).flat_map(|uid| user_answers(&format!("p{uid}"), 100_000 + uid)).collect();
    batch.extend((0..2_000).flat_map(|gid| group_answers(&format!("g{gid}"), 100_000 + gid)));
    batch.push(Write::Users(fresh((0..10_000).map(|uid| passwd(&format!("p{uid}"), uid)).collect())));
    println!("one batch of {} writes: {:?}", batch.len(), timed(&|| store.apply(&batch).unwrap()));
    let user = Write::Invalidate(Invalidation::User("p5".into()));
    println!("invalidate one user: {:?}", timed(&|| store.apply(std::slice::from_ref(&user)).unwrap()));
    println!("invalidate all: {:?}", timed(&|| store.apply(&[Write::Invalidate(Invalidation::All)]).unwrap()));
    drop(store);
    println!("file: {} bytes", fs::metadata(dir.join(FILE_NAME)).unwrap().len());
    println!("open, with its integrity check: {:?}", timed(&|| drop(Store::open(&dir).unwrap())));
    fs::remove_dir_all(&dir).unwrap();
}
