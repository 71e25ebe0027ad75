//! Creating a home directory from a skeleton (`/etc/skel`), for the session phase.
//!
//! The order keeps the half-built directory out of anyone else's reach: the home is made
//! mode 0700 and owned by root (the caller: sshd, login); the skeleton is copied into it
//! without following a single symlink (files with their permission bits, directories,
//! symlinks as symlinks; nothing else); then every created entry is `lchown`ed to the user,
//! the home itself last, and only then does the home get its final mode. If any step fails,
//! what was created is removed again, so the next login tries afresh instead of finding a
//! root-owned home. The parent (`/home`) must exist already; it is never created.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt, lchown, symlink};
use std::path::{Component, Path, PathBuf};

use lanyard_proto::HomeDirectory;

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Home {
    /// Something is at the path already (a directory, or anything else: it is left alone).
    Existed,
    Created,
}

/// Why the home directory could not be created.
#[derive(Debug)]
pub enum HomeError {
    /// The path is not absolute, or has `.` or `..` in it.
    BadPath,
    /// The parent directory does not exist (or is not a directory).
    NoParent(io::Error),
    /// A step failed; `path` is where.
    Io { path: PathBuf, error: io::Error },
}

impl std::fmt::Display for HomeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HomeError::BadPath => f.write_str("not an absolute path without . or .."),
            HomeError::NoParent(e) => write!(f, "its parent directory is missing: {e}"),
            HomeError::Io { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

/// Permission bits copied from the skeleton: no setuid, setgid or sticky bits.
const COPIED_BITS: u32 = 0o777;

/// Creates `home.path` from `skel` unless something is there already. A missing `skel` gives
/// an empty home.
pub fn ensure(home: &HomeDirectory, skel: &Path) -> Result<Home, HomeError> {
    let path = Path::new(&home.path);
    let mut components = path.components();
    let absolute = components.next() == Some(Component::RootDir);
    if !absolute || !components.all(|c| matches!(c, Component::Normal(_))) {
        return Err(HomeError::BadPath);
    }
    match fs::symlink_metadata(path) {
        Ok(_) => return Ok(Home::Existed),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(HomeError::Io { path: path.to_owned(), error }),
    }
    let parent = path.parent().ok_or(HomeError::BadPath)?;
    match fs::metadata(parent) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(HomeError::NoParent(io::ErrorKind::NotADirectory.into())),
        Err(e) => return Err(HomeError::NoParent(e)),
    }
    match DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        // Someone else made it between the check and now: theirs, then.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(Home::Existed),
        Err(error) => return Err(HomeError::Io { path: path.to_owned(), error }),
    }
    fill(path, home, skel).inspect_err(|_| {
        let _ = fs::remove_dir_all(path); // never follows symlinks inside
    })?;
    Ok(Home::Created)
}

/// Everything after the `mkdir`: copy, hand over, set the final mode.
fn fill(path: &Path, home: &HomeDirectory, skel: &Path) -> Result<(), HomeError> {
    // The process umask must not decide the mode of a directory only root may enter yet.
    fs::set_permissions(path, Permissions::from_mode(0o700)).map_err(at(path))?;
    let mut created = Vec::new();
    match fs::symlink_metadata(skel) {
        Ok(meta) if meta.is_dir() => copy_dir(skel, path, &mut created)?,
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(HomeError::Io { path: skel.to_owned(), error }),
    }
    for entry in created.iter().map(PathBuf::as_path).chain([path]) {
        lchown(entry, Some(home.uid), Some(home.gid)).map_err(at(entry))?;
    }
    fs::set_permissions(path, Permissions::from_mode(home.mode & 0o7777)).map_err(at(path))
}

/// Copies the entries of `from` into the existing directory `to`, recording what it creates.
fn copy_dir(from: &Path, to: &Path, created: &mut Vec<PathBuf>) -> Result<(), HomeError> {
    for entry in fs::read_dir(from).map_err(at(from))? {
        let entry = entry.map_err(at(from))?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        // symlink_metadata: the entry itself, never what a symlink points to.
        let meta = fs::symlink_metadata(&source).map_err(at(&source))?;
        let mode = Permissions::from_mode(meta.permissions().mode() & COPIED_BITS);
        let kind = meta.file_type();
        if kind.is_dir() {
            DirBuilder::new().mode(0o700).create(&target).map_err(at(&target))?;
            created.push(target.clone());
            copy_dir(&source, &target, created)?;
            fs::set_permissions(&target, mode).map_err(at(&target))?;
        } else if kind.is_symlink() {
            let link = fs::read_link(&source).map_err(at(&source))?;
            symlink(&link, &target).map_err(at(&target))?;
            created.push(target);
        } else if kind.is_file() {
            copy_file(&source, &target, mode)?;
            created.push(target);
        }
        // Sockets, fifos and devices have no place in a home directory: skipped.
    }
    Ok(())
}

fn copy_file(source: &Path, target: &Path, mode: Permissions) -> Result<(), HomeError> {
    let mut input = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(source).map_err(at(source))?;
    // create_new is O_EXCL: it fails rather than follow anything already at `target`.
    let mut output: File =
        OpenOptions::new().write(true).create_new(true).mode(0o600).open(target).map_err(at(target))?;
    io::copy(&mut input, &mut output).map_err(at(target))?;
    output.set_permissions(mode).map_err(at(target))
}

/// For `map_err`: an I/O error at `path`.
fn at(path: &Path) -> impl FnOnce(io::Error) -> HomeError + '_ {
    move |error| HomeError::Io { path: path.to_owned(), error }
}

#[cfg(test)]
mod tests;
