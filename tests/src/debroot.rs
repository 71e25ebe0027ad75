//! [`OverlayRoot`]: a throwaway Debian root for package tests. The host's `/` is the lower
//! layer of an overlayfs whose upper layer is a tmpfs, mounted inside
//! `unshare --pid --fork --kill-child -m --propagation private`; `/run` and `/tmp` of that root
//! are fresh tmpfs, `/proc` is the new PID namespace's own, `/dev` is bound in. A script then
//! runs `chroot "$ROOT" ...` commands there: whatever `dpkg -i`, maintainer scripts or a daemon
//! write lands in the tmpfs and vanishes with the namespace. The host's `/etc`, `/run` and
//! `/var/lib` are never written.
//!
//! Every process the script starts lives in the new PID namespace: when the script ends, or
//! the hang guard kills `unshare`, its init dies and the kernel kills the rest. The script
//! itself stops what it started by PID before it ends.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::process::{Output, run_bounded};
use crate::tempdir::TempDir;

/// Mounts the root, then runs the caller's script with `ROOT` (the merged root), `SHARE` (a
/// host directory bound to `$ROOT/tmp/share`, for files in and results out) and the caller's
/// arguments as "$@".
const SETUP: &str = r#"
fail() { echo "overlay root setup failed: $*" >&2; exit 125; }
scratch=$1; body=$2; shift 2
mount -n -t tmpfs -o mode=0755 lanyard-overlay "$scratch/layers" || fail "tmpfs for the layers"
mkdir "$scratch/layers/upper" "$scratch/layers/work" || fail "mkdir upper, work"
ROOT=$scratch/root
mount -n -t overlay lanyard-root -o "lowerdir=/,upperdir=$scratch/layers/upper,workdir=$scratch/layers/work" "$ROOT" \
  || fail "overlayfs over /"
mount -n -t tmpfs -o mode=0755 lanyard-root-run "$ROOT/run" || fail "tmpfs on run"
mount -n -t tmpfs -o mode=1777 lanyard-root-tmp "$ROOT/tmp" || fail "tmpfs on tmp"
mount -n -t proc proc "$ROOT/proc" || fail "proc"
mount -n --rbind /dev "$ROOT/dev" || fail "bind dev"
mkdir -m 0755 "$ROOT/tmp/share" || fail "mkdir share"
mount -n --bind "$scratch/share" "$ROOT/tmp/share" || fail "bind share"
SHARE=$scratch/share
export ROOT SHARE
exec sh -c "$body" sh "$@"
"#;

/// Exit code of the setup when mounting failed.
const SETUP_FAILED: i32 = 125;

/// A scratch directory for one overlay root: `share/` is visible inside as `/tmp/share`.
#[derive(Debug)]
pub struct OverlayRoot {
    dir: TempDir,
}

impl OverlayRoot {
    pub fn new() -> Result<Self> {
        let dir = TempDir::new("deb")?;
        for sub in ["layers", "root", "share"] {
            std::fs::create_dir(dir.join(sub)).with_context(|| format!("creating {sub}/"))?;
        }
        Ok(OverlayRoot { dir })
    }

    /// The host side of the root's `/tmp/share`.
    pub fn share(&self) -> PathBuf {
        self.dir.join("share")
    }

    /// Runs `script` (POSIX sh, with `$ROOT` and `$SHARE` set) in a fresh overlay root, killed
    /// with everything it started if it outlives `guard`.
    pub fn run<S: AsRef<OsStr>>(&self, script: &str, args: &[S], guard: Duration) -> Result<Output> {
        let mut cmd = Command::new("unshare");
        cmd.args(["--pid", "--fork", "--kill-child", "-m", "--propagation", "private", "sh", "-c", SETUP, "sh"])
            .arg(self.dir.path())
            .arg(script)
            .args(args)
            .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .env("DEBIAN_FRONTEND", "noninteractive");
        let out = run_bounded(&mut cmd, "a script in an overlay root", guard)?;
        anyhow::ensure!(
            !(out.code() == Some(SETUP_FAILED) && out.stderr().contains("overlay root setup failed")),
            "could not set up the overlay root:\n{out}"
        );
        Ok(out)
    }
}

/// The contents of `/etc/nsswitch.conf` and of every file in `/etc/pam.d` under `root`, by
/// path: what a package must leave as it found it.
pub fn nss_and_pam_files(root: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let etc = root.join("etc");
    let mut files = vec![(PathBuf::from("nsswitch.conf"), read(&etc.join("nsswitch.conf"))?)];
    let mut names: Vec<_> = std::fs::read_dir(etc.join("pam.d"))
        .context("listing pam.d")?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .context("listing pam.d")?;
    names.sort();
    for name in names {
        let path = PathBuf::from("pam.d").join(&name);
        files.push((path.clone(), read(&etc.join(&path))?));
    }
    Ok(files)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}
