//! Per-test scratch directories and per-run random tokens.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result};

/// Set this variable to keep scratch directories after the test (their paths go to stderr).
pub const KEEP_ENV: &str = "LANYARD_TEST_KEEP";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A directory under [`std::env::temp_dir`] with a unique name, removed with its contents on
/// drop (unless [`KEEP_ENV`] is set).
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `<tmp>/lanyard-<prefix>-<pid>-<n>-<random>`. Names stay short: a Unix socket
    /// path inside must fit in 108 bytes.
    pub fn new(prefix: &str) -> Result<Self> {
        let base = std::env::temp_dir();
        let pid = std::process::id();
        let mut last_error = None;
        for _ in 0..8 {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!("lanyard-{prefix}-{pid}-{n}-{}", random_hex(3)?));
            match fs::create_dir(&path) {
                Ok(()) => return Ok(TempDir { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last_error = Some(e),
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
        Err(anyhow::anyhow!("no unused scratch directory name under {}: {last_error:?}", base.display()))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `self.path().join(name)`.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os(KEEP_ENV).is_some() {
            eprintln!("keeping {}", self.path.display());
            return;
        }
        // Best effort: a failure to clean up must not hide the test's own result.
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// `bytes` random bytes from the kernel, hex-encoded (passwords, unique names).
pub fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)).context("reading /dev/urandom")?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes `contents` to `path` with permission `mode` (set explicitly, not through the umask).
pub fn write_file_mode(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, contents).with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {mode:o} {}", path.display()))
}

/// The permission bits of `path` (`st_mode & 0o7777`), not following a final symlink, and its
/// owner's uid.
/// A server's log for tests to read as it grows: its text from `mark` (a byte length from
/// [`log_mark`], or 0) on, decoded lossily; empty if it cannot be read yet.
pub fn log_since(path: &Path, mark: usize) -> String {
    let bytes = fs::read(path).unwrap_or_default();
    String::from_utf8_lossy(bytes.get(mark..).unwrap_or_default()).into_owned()
}

/// The log's current length, to read only what comes after with [`log_since`].
pub fn log_mark(path: &Path) -> usize {
    fs::metadata(path).map(|m| m.len() as usize).unwrap_or(0)
}

pub fn mode_and_owner(path: &Path) -> Result<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::symlink_metadata(path).with_context(|| format!("stat {}", path.display()))?;
    Ok((meta.mode() & 0o7777, meta.uid()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_and_owner_reads_what_write_file_mode_set() {
        let dir = TempDir::new("t").unwrap();
        let file = dir.join("f");
        write_file_mode(&file, b"x", 0o640).unwrap();
        // SAFETY: geteuid(2) has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(mode_and_owner(&file).unwrap(), (0o640, euid));
        write_file_mode(&file, b"x", 0o600).unwrap();
        assert_eq!(mode_and_owner(&file).unwrap().0, 0o600);
        assert!(mode_and_owner(&dir.join("missing")).is_err());
    }

    #[test]
    fn temp_dir_is_created_unique_and_removed_on_drop() {
        let a = TempDir::new("t").unwrap();
        let b = TempDir::new("t").unwrap();
        assert_ne!(a.path(), b.path());
        assert!(a.path().is_dir());
        fs::write(a.join("f"), b"x").unwrap();
        let kept = a.path().to_path_buf();
        drop(a);
        if std::env::var_os(KEEP_ENV).is_none() {
            assert!(!kept.exists());
        }
    }

    #[test]
    fn random_hex_has_the_asked_length_and_varies() {
        let a = random_hex(16).unwrap();
        assert_eq!(a.len(), 32);
        assert_ne!(a, random_hex(16).unwrap());
    }
}
