//! Home creation in scratch directories. Owners are checked, so these run as root (as the
//! session phase does in sshd and login); as anyone else they say so and pass.

use super::*;
use crate::fake_agent::scratch_dir;
use std::os::unix::fs::MetadataExt;

const UID: u32 = 12345;
const GID: u32 = 23456;

fn root() -> bool {
    crate::fake_agent::running_as_root()
}

fn home_at(path: &Path, mode: u32) -> HomeDirectory {
    HomeDirectory { path: path.to_str().unwrap().to_owned(), uid: UID, gid: GID, mode }
}

/// A skeleton with a file, a private file, a directory with a file, a symlink that points
/// outside (it must be copied as a link, not followed) and a dangling symlink.
fn skel() -> PathBuf {
    let skel = scratch_dir().join("skel");
    fs::create_dir(&skel).unwrap();
    fs::write(skel.join(".profile"), b"# profile\n").unwrap();
    fs::set_permissions(skel.join(".profile"), Permissions::from_mode(0o644)).unwrap();
    fs::write(skel.join(".secret"), b"private\n").unwrap();
    fs::set_permissions(skel.join(".secret"), Permissions::from_mode(0o600)).unwrap();
    fs::create_dir(skel.join(".config")).unwrap();
    fs::write(skel.join(".config/app.conf"), b"x=1\n").unwrap();
    fs::set_permissions(skel.join(".config"), Permissions::from_mode(0o750)).unwrap();
    symlink("/etc/passwd", skel.join("outside")).unwrap();
    symlink("nowhere", skel.join("dangling")).unwrap();
    skel
}

#[test]
fn home_is_created_from_skel_and_owned_by_the_user() {
    if !root() {
        eprintln!("skipped: needs root to hand files to another uid");
        return;
    }
    let (parent, skel) = (scratch_dir(), skel());
    let path = parent.join("alice");
    assert_eq!(ensure(&home_at(&path, 0o750), &skel).unwrap(), Home::Created);

    let meta = |p: &str| fs::symlink_metadata(path.join(p)).unwrap();
    let home = fs::symlink_metadata(&path).unwrap();
    assert!(home.is_dir());
    assert_eq!((home.uid(), home.gid(), home.mode() & 0o7777), (UID, GID, 0o750));
    for (entry, mode) in [(".profile", 0o644), (".secret", 0o600), (".config", 0o750), (".config/app.conf", 0o644)] {
        let m = meta(entry);
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (UID, GID, mode), "{entry}");
    }
    assert_eq!(fs::read(path.join(".config/app.conf")).unwrap(), b"x=1\n");
    assert_eq!(fs::read(path.join(".profile")).unwrap(), b"# profile\n");
    for (link, target) in [("outside", "/etc/passwd"), ("dangling", "nowhere")] {
        let m = meta(link);
        assert!(m.file_type().is_symlink(), "{link} stays a symlink");
        assert_eq!((m.uid(), m.gid()), (UID, GID), "{link} itself is the user's");
        assert_eq!(fs::read_link(path.join(link)).unwrap(), Path::new(target));
    }
    let passwd = fs::metadata("/etc/passwd").unwrap();
    assert_eq!(passwd.uid(), 0, "the symlink's target was not chowned");
}

#[test]
fn an_existing_home_is_left_alone() {
    let parent = scratch_dir();
    let path = parent.join("alice");
    fs::create_dir(&path).unwrap();
    fs::set_permissions(&path, Permissions::from_mode(0o711)).unwrap();
    assert_eq!(ensure(&home_at(&path, 0o700), &skel()).unwrap(), Home::Existed);
    assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o711);
    assert_eq!(fs::read_dir(&path).unwrap().count(), 0, "nothing copied into it");

    let file = parent.join("bob");
    fs::write(&file, b"not a directory").unwrap();
    assert_eq!(ensure(&home_at(&file, 0o700), &skel()).unwrap(), Home::Existed);
}

#[test]
fn a_symlink_at_the_home_path_counts_as_existing_and_is_not_followed() {
    let parent = scratch_dir();
    let elsewhere = parent.join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    let path = parent.join("alice");
    symlink(&elsewhere, &path).unwrap();
    let dangling = parent.join("bob");
    symlink(parent.join("nothing-here"), &dangling).unwrap();
    assert_eq!(ensure(&home_at(&path, 0o700), &skel()).unwrap(), Home::Existed);
    assert_eq!(ensure(&home_at(&dangling, 0o700), &skel()).unwrap(), Home::Existed);
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
    assert!(!parent.join("nothing-here").exists());
}

#[test]
fn the_parent_directory_is_never_created() {
    let parent = scratch_dir().join("home");
    let path = parent.join("alice");
    assert!(matches!(ensure(&home_at(&path, 0o700), &skel()), Err(HomeError::NoParent(_))));
    assert!(!parent.exists());
}

#[test]
fn relative_paths_and_paths_with_dot_dot_are_refused() {
    let parent = scratch_dir();
    for path in ["home/alice", "", "/home/../etc/alice", &format!("{}/../x", parent.display())] {
        let home = HomeDirectory { path: path.to_owned(), uid: UID, gid: GID, mode: 0o700 };
        assert!(matches!(ensure(&home, &skel()), Err(HomeError::BadPath)), "{path:?}");
    }
    assert!(!parent.parent().unwrap().join("x").exists());
}

#[test]
fn a_missing_skel_gives_an_empty_home() {
    if !root() {
        eprintln!("skipped: needs root to hand files to another uid");
        return;
    }
    let path = scratch_dir().join("alice");
    assert_eq!(ensure(&home_at(&path, 0o700), &scratch_dir().join("no-skel")).unwrap(), Home::Created);
    assert_eq!(fs::read_dir(&path).unwrap().count(), 0);
    assert_eq!(fs::metadata(&path).unwrap().uid(), UID);
}

#[test]
fn a_failure_midway_removes_what_was_created() {
    // A parent so deep that the skeleton's nested entries pass PATH_MAX (4096) inside the new
    // home: the copy fails after the home and some entries exist.
    let mut parent = scratch_dir();
    while parent.as_os_str().len() < 3700 {
        parent.push("d".repeat(200));
    }
    fs::create_dir_all(&parent).unwrap();
    let skel = scratch_dir().join("deep-skel");
    fs::create_dir_all(skel.join("a".repeat(200)).join("b".repeat(200))).unwrap();
    let path = parent.join("alice");
    assert!(matches!(ensure(&home_at(&path, 0o700), &skel), Err(HomeError::Io { .. })));
    assert!(fs::symlink_metadata(&path).is_err(), "the half-made home is gone");
}
