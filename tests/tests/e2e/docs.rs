//! The shipped documentation: every page in `packaging/man/` renders with the system's `man`
//! and `groff` without a warning, and the generated files (lanyardd.8, lanyardctl.8, the
//! completion scripts) are byte for byte what `lanyardctl generate` makes from the clap
//! definitions now, so they cannot drift from the options they describe.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use lanyard_tests::{HANG_GUARD, Output, TempDir, lanyardctl_path, require_built, run_bounded, workspace_dir};

const MAN_PAGES: [&str; 5] = ["lanyardd.8", "lanyardctl.8", "lanyard.toml.5", "pam_lanyard.8", "nss_lanyard.8"];
/// What `lanyardctl generate man` writes; the other pages are written by hand.
const GENERATED_MAN_PAGES: [&str; 2] = ["lanyardd.8", "lanyardctl.8"];
const SHELLS: [&str; 3] = ["bash", "zsh", "fish"];

fn man_dir() -> PathBuf {
    workspace_dir().join("packaging/man")
}

fn completions_dir() -> PathBuf {
    workspace_dir().join("packaging/completions")
}

/// The names of the files in `dir`.
fn file_names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Fails unless `out` exited 0 with nothing on stderr (groff and man both exit 0 on warnings).
#[track_caller]
fn assert_clean(out: &Output) {
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(out.stderr(), "", "warnings:\n{out}");
}

#[test]
fn every_man_page_renders_with_man_and_groff_without_warnings() {
    let dir = man_dir();
    let pages = file_names(&dir);
    let expected: BTreeSet<String> = MAN_PAGES.iter().map(|p| p.to_string()).collect();
    assert!(pages.is_superset(&expected), "packaging/man/ lacks some of {expected:?}: {pages:?}");
    for page in &pages {
        let path = dir.join(page);
        for device in [None, Some("-Tutf8")] {
            // --warnings=w: man-db passes `-ww` (every warning) to groff; without it, man says nothing.
            let mut man = Command::new("man");
            man.env("MANWIDTH", "80").env("MANPAGER", "cat").env("PAGER", "cat").args(["--warnings=w", "-l"]);
            man.args(device).arg(&path);
            let out = run_bounded(&mut man, &format!("man -l {page}"), HANG_GUARD).unwrap();
            assert_clean(&out);
            let text = without_overstrikes(&out.stdout());
            assert!(text.contains("\nNAME\n"), "{page} renders without a NAME section:\n{text}");
        }
        let mut groff = Command::new("groff");
        groff.args(["-man", "-ww", "-z", "-Tutf8"]).arg(&path);
        assert_clean(&run_bounded(&mut groff, &format!("groff -man -ww -z {page}"), HANG_GUARD).unwrap());
    }
}

/// `text` with nroff's bold and underline (`X\bX`, `_\bX`) reduced to the plain characters.
fn without_overstrikes(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\u{8}' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    plain
}

/// Runs `lanyardctl generate ARGS... DIR` and fails unless it succeeds.
fn generate(args: &[&str], dir: &Path) {
    require_built(&lanyardctl_path()).unwrap();
    let mut cmd = Command::new(lanyardctl_path());
    cmd.arg("generate").args(args).arg(dir);
    let out = run_bounded(&mut cmd, &format!("lanyardctl generate {}", args.join(" ")), HANG_GUARD).unwrap();
    assert_clean(&out);
}

/// Fails unless each of `names` is the same, byte for byte, in `generated` and `committed`.
#[track_caller]
fn assert_same_files(names: &BTreeSet<String>, generated: &Path, committed: &Path) {
    for name in names {
        let fresh = std::fs::read(generated.join(name)).unwrap();
        let shipped =
            std::fs::read(committed.join(name)).unwrap_or_else(|e| panic!("{}: {e}", committed.join(name).display()));
        assert!(
            fresh == shipped,
            "{} differs from what `lanyardctl generate` makes now; regenerate it from the clap definitions",
            committed.join(name).display()
        );
    }
}

#[test]
fn committed_man_pages_are_what_lanyardctl_generates() {
    let dir = TempDir::new("docs").unwrap();
    generate(&["man"], dir.path());
    let generated = file_names(dir.path());
    let expected: BTreeSet<String> = GENERATED_MAN_PAGES.iter().map(|p| p.to_string()).collect();
    assert_eq!(generated, expected);
    assert_same_files(&generated, dir.path(), &man_dir());
}

#[test]
fn committed_completions_are_what_lanyardctl_generates() {
    let dir = TempDir::new("docs").unwrap();
    for shell in SHELLS {
        generate(&["completions", shell], dir.path());
    }
    let generated = file_names(dir.path());
    assert_eq!(generated.len(), SHELLS.len(), "{generated:?}");
    // Nothing stale beside them: every committed script is one lanyardctl still generates.
    assert_eq!(file_names(&completions_dir()), generated);
    assert_same_files(&generated, dir.path(), &completions_dir());
}
