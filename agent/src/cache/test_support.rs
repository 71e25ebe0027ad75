//! Scratch directories, sample entries and child processes for the store and writer tests.
//! Real redb files in real directories: the point is what happens on disk.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use lanyard_proto::{Group, Passwd, Response};

use super::store::{StoreKey, Stored, Write};
use crate::offline::Verifier;

/// The store's and writer's log lines, shown with a failing test's output (or --nocapture).
pub fn show_logs() {
    let _ = tracing_subscriber::fmt().with_test_writer().with_max_level(tracing::Level::DEBUG).try_init();
}

/// A directory under the system temp dir, removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        show_logs();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("lanyard-store-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Where the store keeps its file in this directory.
    pub fn file(&self) -> PathBuf {
        self.0.join(super::store::FILE_NAME)
    }

    /// The names of the moved-aside files.
    pub fn broken_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("cache.redb.broken-"))
            .collect();
        names.sort();
        names
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn passwd(name: &str, uid: u32) -> Passwd {
    Passwd {
        name: name.into(),
        uid,
        gid: 100,
        gecos: format!("{name} example"),
        home: format!("/home/{name}"),
        shell: "/bin/bash".into(),
    }
}

pub fn group(name: &str, gid: u32, members: &[&str]) -> Group {
    Group { name: name.into(), gid, members: members.iter().map(|m| (*m).into()).collect() }
}

pub fn fresh<T>(value: T) -> Stored<T> {
    Stored { fetched_at: 1_700_000_000, stale: false, value }
}

/// The answers a lookup of `name` (uid `uid`) leaves behind: by name, by uid, its groups.
pub fn user_answers(name: &str, uid: u32) -> Vec<Write> {
    vec![
        Write::Answer(StoreKey::UserByName(name.into()), fresh(Response::User(passwd(name, uid)))),
        Write::Answer(StoreKey::UserByUid(uid), fresh(Response::User(passwd(name, uid)))),
        Write::Answer(StoreKey::GroupsOfUser(name.into()), fresh(Response::GroupIds(vec![100, uid]))),
    ]
}

pub fn group_answers(name: &str, gid: u32) -> Vec<Write> {
    vec![
        Write::Answer(StoreKey::GroupByName(name.into()), fresh(Response::Group(group(name, gid, &["alice"])))),
        Write::Answer(StoreKey::GroupByGid(gid), fresh(Response::Group(group(name, gid, &["alice"])))),
    ]
}

pub fn verifier(last_online_login: u64) -> Verifier {
    Verifier {
        phc: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".into(),
        last_online_login,
        failures: 0,
        locked_until: None,
    }
}

/// Runs the test `name` (its full path in this binary) again in a child process with `env`
/// set, through `wrapper` (e.g. `unshare`) if given. `set_var` in this process would race the
/// other test threads; a child has the variable from the start.
pub fn rerun_in_child(name: &str, env: (&str, &Path), wrapper: &[&str]) -> Output {
    let exe = std::env::current_exe().unwrap();
    let (program, mut args) = match wrapper.split_first() {
        Some((program, rest)) => (program.to_string(), rest.iter().map(|a| a.to_string()).collect()),
        None => (exe.display().to_string(), Vec::new()),
    };
    if !wrapper.is_empty() {
        args.push(exe.display().to_string());
    }
    args.extend(["--exact", name, "--test-threads=1", "--nocapture"].map(String::from));
    Command::new(program).args(args).env(env.0, env.1).output().unwrap()
}
