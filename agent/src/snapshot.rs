//! Publishes the snapshot the NSS module answers from without a socket round trip
//! (`lanyard_proto::snapshot` defines the format and explains the protocol).
//!
//! Each publication writes a complete new file beside the socket under a temporary name,
//! renames it over [`SNAPSHOT_FILE_NAME`], and only then sets the superseded word of the file it
//! replaces, through the descriptor kept from when that one was published: readers that have
//! it mapped notice with one load and map the new one. A published file is never truncated or
//! rewritten (a reader's mapping would fault inside sshd); the one word is the only byte that
//! changes after the rename.
//!
//! The file is world-readable (0644), like /etc/passwd: it holds what `getent` shows anyone,
//! never a "not found" (people type passwords at login prompts), never anything secret.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use lanyard_proto::snapshot::{SNAPSHOT_FILE_NAME, SUPERSEDED_OFFSET};
use lanyard_proto::{Group, Passwd, SnapshotBuilder};
use tokio::time::Instant;

/// Writes snapshots into one directory and marks each replaced one superseded.
#[derive(Debug)]
pub struct Publisher {
    dir: PathBuf,
    /// The published file, open for the one write it will get (its superseded word).
    current: Option<File>,
    generation: u64,
}

impl Publisher {
    /// Publishes into `dir` (the socket's directory). A file left by an earlier run is taken
    /// over: it is marked superseded when the first new one replaces it.
    pub fn new(dir: &Path) -> Publisher {
        let current = OpenOptions::new().write(true).open(dir.join(SNAPSHOT_FILE_NAME)).ok();
        // Generations only need to differ between files; starting from the wall clock keeps
        // them increasing across restarts too, which reads better in a debugger.
        let generation = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs().saturating_mul(1000));
        Publisher { dir: dir.to_owned(), current, generation }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(SNAPSHOT_FILE_NAME)
    }

    /// Builds a snapshot of `contents` and puts it in place.
    pub fn publish(&mut self, contents: &Contents) -> io::Result<usize> {
        self.generation += 1;
        let bytes = contents.build(self.generation);
        let temporary = self.dir.join(format!(".{SNAPSHOT_FILE_NAME}.{}.new", std::process::id()));
        // A leftover from a crash mid-write: never mapped by anyone (never renamed into place).
        let _ = fs::remove_file(&temporary);
        let mut file = OpenOptions::new().write(true).create_new(true).mode(0o644).open(&temporary)?;
        // Explicitly, whatever the umask (the unit's is 0077): every process reads this file.
        if let Err(e) = file.set_permissions(fs::Permissions::from_mode(0o644)).and_then(|()| file.write_all(&bytes)) {
            let _ = fs::remove_file(&temporary);
            return Err(e);
        }
        fs::rename(&temporary, self.path())?;
        if let Some(old) = self.current.replace(file) {
            // After the rename: a reader that sees the word set finds the new file in place.
            old.write_all_at(&1u64.to_le_bytes(), SUPERSEDED_OFFSET as u64)?;
        }
        Ok(bytes.len())
    }
}

/// What goes into one snapshot, collected from the caches (cheap: the values are shared).
#[derive(Default)]
pub struct Contents {
    /// Users by name, with their expiry (CLOCK_BOOTTIME milliseconds).
    pub users: HashMap<String, (Passwd, u64)>,
    /// Groups by gid.
    pub groups: HashMap<u32, (Group, u64)>,
    /// Group lists (initgroups) by name, with their expiry: in the user's record for a user in
    /// `users`, in a record of its own for any other name (a user looked up only through
    /// `getgrouplist`, a local user in directory groups).
    pub groups_of: HashMap<String, (Vec<u32>, u64)>,
    /// Every user of the directory is in `users`, until then.
    pub complete_users: Option<u64>,
    pub complete_groups: Option<u64>,
}

impl Contents {
    /// Adds a user unless one of that name is there already with a later expiry.
    pub fn add_user(&mut self, user: &Passwd, expires: u64) {
        match self.users.get(&user.name) {
            Some((_, known)) if *known >= expires => {}
            _ => {
                self.users.insert(user.name.clone(), (user.clone(), expires));
            }
        }
    }

    pub fn add_group(&mut self, group: &Group, expires: u64) {
        match self.groups.get(&group.gid) {
            Some((_, known)) if *known >= expires => {}
            _ => {
                self.groups.insert(group.gid, (group.clone(), expires));
            }
        }
    }

    /// Every group list a complete group listing (`memberUid` names) implies: each listed
    /// user's (empty if in no group) and each other member name's. A list already known from
    /// an initgroups answer stays.
    pub fn derive_group_lists(&mut self, groups: &[Group], expires: u64) {
        let mut lists: HashMap<&str, Vec<u32>> = HashMap::new();
        for group in groups {
            for member in &group.members {
                lists.entry(member.as_str()).or_default().push(group.gid);
            }
        }
        for name in self.users.keys() {
            lists.entry(name.as_str()).or_default();
        }
        for (name, gids) in lists {
            if !self.groups_of.contains_key(name) {
                self.groups_of.insert(name.to_owned(), (gids, expires));
            }
        }
    }

    fn build(&self, generation: u64) -> Vec<u8> {
        let mut builder = SnapshotBuilder::new(generation);
        if let Some(until) = self.complete_users {
            builder.set_complete_users(until);
        }
        if let Some(until) = self.complete_groups {
            builder.set_complete_groups(until);
        }
        for (name, (user, expires)) in &self.users {
            builder.add_user(user, self.groups_of.get(name).map(|(gids, _)| gids.as_slice()), *expires);
        }
        for (name, (gids, expires)) in &self.groups_of {
            if !self.users.contains_key(name) {
                builder.add_group_list(name, gids, *expires);
            }
        }
        for (group, expires) in self.groups.values() {
            builder.add_group(group, *expires);
        }
        builder.finish()
    }
}

/// Converts a cache expiry (tokio's monotonic clock) to the snapshot's clock.
#[derive(Debug, Clone, Copy)]
pub struct ExpiryClock {
    now: Instant,
    now_ms: u64,
}

impl ExpiryClock {
    pub fn now() -> ExpiryClock {
        ExpiryClock { now: Instant::now(), now_ms: lanyard_proto::boottime_ms() }
    }

    pub fn to_ms(self, expires: Instant) -> u64 {
        if expires >= self.now {
            let left = u64::try_from(expires.duration_since(self.now).as_millis()).unwrap_or(u64::MAX);
            self.now_ms.saturating_add(left)
        } else {
            let past = u64::try_from(self.now.duration_since(expires).as_millis()).unwrap_or(u64::MAX);
            self.now_ms.saturating_sub(past)
        }
    }
}

#[cfg(test)]
mod tests {
    use lanyard_proto::snapshot::{Answer, is_superseded};
    use lanyard_proto::{Snapshot, UserRecord};

    use super::*;

    fn alice() -> Passwd {
        Passwd {
            name: "alice".into(),
            uid: 10001,
            gid: 10000,
            gecos: "Alice".into(),
            home: "/home/alice".into(),
            shell: "/bin/bash".into(),
        }
    }

    fn uid_of(answer: Answer<UserRecord<'_>>) -> Option<u32> {
        match answer {
            Answer::Fresh(user) => Some(user.uid),
            _ => None,
        }
    }

    #[test]
    fn each_publication_replaces_the_file_and_marks_the_old_one_superseded() {
        let dir = std::env::temp_dir().join(format!("lanyard-snapshot-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        let mut publisher = Publisher::new(&dir);
        let mut contents = Contents::default();
        contents.add_user(&alice(), 5_000);
        publisher.publish(&contents).unwrap();
        // What a reader mapped: the first file, through its own descriptor.
        let first = File::open(publisher.path()).unwrap();
        // From offset 0 each time, through the descriptor (as a mapping sees the file).
        let read = |file: &File| {
            let mut bytes = vec![0; usize::try_from(file.metadata().unwrap().len()).unwrap()];
            file.read_exact_at(&mut bytes, 0).unwrap();
            bytes
        };
        let bytes = read(&first);
        assert!(!is_superseded(&bytes));
        let snapshot = Snapshot::parse(&bytes).unwrap();
        assert_eq!(uid_of(snapshot.user_by_name(b"alice", 1_000)), Some(10001));
        let mode = fs::metadata(publisher.path()).unwrap().permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o644);

        publisher.publish(&Contents::default()).unwrap();
        let old = read(&first);
        assert!(is_superseded(&old), "the replaced file was not marked");
        let new = read(&File::open(publisher.path()).unwrap());
        assert!(!is_superseded(&new));
        assert_eq!(uid_of(Snapshot::parse(&new).unwrap().user_by_name(b"alice", 1_000)), None);
        // Only the published file is left: no temporary.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);

        // A new agent takes the file over and marks it when it publishes.
        let kept = File::open(publisher.path()).unwrap();
        drop(publisher);
        Publisher::new(&dir).publish(&Contents::default()).unwrap();
        assert!(is_superseded(&read(&kept)));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_later_expiry_wins_and_group_lists_come_from_a_listing() {
        let mut contents = Contents::default();
        contents.add_user(&alice(), 5_000);
        contents.add_user(&alice(), 3_000);
        assert_eq!(contents.users["alice"].1, 5_000);
        contents.add_user(&Passwd { name: "bob".into(), uid: 10002, ..alice() }, 5_000);
        let groups = [
            Group { name: "ops".into(), gid: 10011, members: vec!["alice".into()] },
            Group { name: "dev".into(), gid: 10010, members: vec!["alice".into(), "carol".into()] },
        ];
        contents.derive_group_lists(&groups, 7_000);
        assert_eq!(contents.groups_of["alice"], (vec![10011, 10010], 7_000));
        assert_eq!(contents.groups_of["bob"], (Vec::<u32>::new(), 7_000));
        // A member with no user record (a local user in a directory group) gets a list too.
        assert_eq!(contents.groups_of["carol"], (vec![10010], 7_000));
    }

    #[test]
    fn expiries_convert_to_the_snapshot_clock_both_ways() {
        let clock = ExpiryClock { now: Instant::now(), now_ms: 100_000 };
        assert_eq!(clock.to_ms(clock.now + std::time::Duration::from_secs(5)), 105_000);
        assert_eq!(clock.to_ms(clock.now - std::time::Duration::from_secs(5)), 95_000);
    }
}
