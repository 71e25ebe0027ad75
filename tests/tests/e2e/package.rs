//! The Debian package (packaging/build-deb.sh) on a Debian 12 root that is not the host: an
//! overlay over `/` in a private mount and PID namespace ([`OverlayRoot`]). `dpkg -i` runs the
//! maintainer scripts; lanyardd starts as its unit would (same ExecStart, user, directories)
//! against the test slapd; getent, id and pamtester go through the installed NSS module and
//! the installed pam-auth-update profile; `dpkg --purge` must give back nsswitch.conf and
//! pam.d byte for byte. The host's own files are compared before and after as well.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use lanyard_tests::debroot::{OverlayRoot, nss_and_pam_files};
use lanyard_tests::fixture::ALICE;
use lanyard_tests::{AgentConfig, Slapd, run_bounded, workspace_dir};

/// A clean release build takes about 90 s on two cores; the guard is only against hangs.
const BUILD_GUARD: Duration = Duration::from_secs(1200);
/// dpkg, adduser and pam-auth-update twice, and a few lookups: seconds. A hang guard.
const ROOT_GUARD: Duration = Duration::from_secs(300);

/// Runs inside the overlay root's namespace with $ROOT and $SHARE set; "$1" is alice's
/// password. Each step leaves `out/NAME.out` and `out/NAME.rc` in the share; snapshots of
/// nsswitch.conf and pam.d go to `before/`, `installed/` and `purged/`. Every wait is bounded
/// in tries; the agent is stopped by its PID.
const SCRIPT: &str = r#"
set -u
pass=$1
out=$SHARE/out
mkdir "$out"
step() { name=$1; shift; "$@" > "$out/$name.out" 2>&1; echo $? > "$out/$name.rc"; }
snapshot() { mkdir -p "$SHARE/$1/etc" && cp -a "$ROOT/etc/nsswitch.conf" "$ROOT/etc/pam.d" "$SHARE/$1/etc/"; }
# Alive and not yet a zombie, by the PID namespace's own /proc.
alive() { state=$(cut -d' ' -f3 "$ROOT/proc/$1/stat" 2>/dev/null) && [ "$state" != Z ]; }

snapshot before
# No service starts from maintainer scripts (there is no systemd here anyway).
printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d" && chmod 0755 "$ROOT/usr/sbin/policy-rc.d"
step install chroot "$ROOT" dpkg -i /tmp/share/lanyard.deb
[ "$(cat "$out/install.rc")" = 0 ] || exit 10
snapshot installed
ls "$ROOT/etc/systemd/system/multi-user.target.wants" 2>/dev/null | grep -x lanyardd.service > "$out/enabled.out"
step conffile chroot "$ROOT" stat -c '%a %U:%G' /etc/lanyard/lanyard.toml

# The administrator's part, as README.md says: config, CA, bind secret owned by the agent's user.
uid=$(chroot "$ROOT" id -u _lanyard) && gid=$(chroot "$ROOT" id -g _lanyard) || exit 11
cat "$SHARE/lanyard.toml" > "$ROOT/etc/lanyard/lanyard.toml"
install -m 0644 "$SHARE/ca.pem" "$ROOT/etc/lanyard/ca.pem"
install -o "$uid" -g "$gid" -m 0600 "$SHARE/bind.secret" "$ROOT/etc/lanyard/bind.secret"

# What systemd would do for the installed unit: its directories, user, umask and ExecStart.
unit=$ROOT/usr/lib/systemd/system/lanyardd.service
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
user=$(sed -n 's/^User=//p' "$unit")
[ "$user" = _lanyard ] || { echo "unit runs as '$user'" > "$out/unit.out"; exit 12; }
install -d -o "$uid" -g "$gid" -m "$(sed -n 's/^RuntimeDirectoryMode=//p' "$unit")" "$ROOT/run/lanyard"
install -d -o "$uid" -g "$gid" -m "$(sed -n 's/^StateDirectoryMode=//p' "$unit")" "$ROOT/var/lib/lanyard"
# $exec_start is split into words on purpose, as systemd splits ExecStart=.
(umask "$(sed -n 's/^UMask=//p' "$unit")" && exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  chroot --userspec="$uid:$gid" "$ROOT" $exec_start) > "$out/agent.out" 2>&1 &
agent=$!
tries=0
while [ "$tries" -lt 600 ] && [ ! -S "$ROOT/run/lanyard/socket" ] && alive "$agent"; do
  sleep 0.05; tries=$((tries + 1))
done
stat -c '%u' "$ROOT/proc/$agent" > "$out/agent_uid.out" 2>&1
echo "$uid" > "$out/lanyard_uid.out"

step getent chroot "$ROOT" getent passwd alice
step id chroot "$ROOT" id alice
printf '%s\n' "$pass" | step pamtester chroot "$ROOT" pamtester login alice authenticate acct_mgmt
printf 'not-%s\n' "$pass" | step pamtester_wrong chroot "$ROOT" pamtester login alice authenticate

kill -TERM "$agent" 2>/dev/null
tries=0
while [ "$tries" -lt 200 ] && alive "$agent"; do sleep 0.05; tries=$((tries + 1)); done
alive "$agent" && kill -KILL "$agent"
wait "$agent"
echo $? > "$out/agent.rc"

step purge chroot "$ROOT" dpkg --purge lanyard
snapshot purged
for path in usr/sbin/lanyardd usr/lib/x86_64-linux-gnu/libnss_lanyard.so.2 \
  usr/lib/x86_64-linux-gnu/security/pam_lanyard.so usr/share/pam-configs/lanyard etc/lanyard var/lib/lanyard; do
  if [ -e "$ROOT/$path" ]; then echo "$path"; fi
done > "$out/leftovers.out"
exit 0
"#;

#[test]
fn the_deb_installs_serves_alice_and_purges_cleanly_in_an_overlay_root() {
    let host_before = nss_and_pam_files(Path::new("/")).expect("reading the host's files");
    let deb = build_deb();
    let slapd = Slapd::start().expect("starting slapd");
    let root = OverlayRoot::new().expect("preparing the overlay root");
    let share = root.share();
    fs::copy(&deb, share.join("lanyard.deb")).expect("copying the .deb");
    let config = AgentConfig::new(
        vec![slapd.uri_starttls()],
        Path::new("/etc/lanyard/ca.pem"),
        Path::new("/etc/lanyard/bind.secret"),
    )
    .render(Path::new("/run/lanyard/socket"), Path::new("/var/lib/lanyard"));
    fs::write(share.join("lanyard.toml"), config).expect("writing lanyard.toml");
    fs::copy(slapd.ca_pem(), share.join("ca.pem")).expect("copying the CA");
    fs::copy(slapd.bind_secret(), share.join("bind.secret")).expect("copying the bind secret");

    let run = root.run(SCRIPT, &[ALICE.password], ROOT_GUARD).expect("running the package script");
    let steps = Steps(share.join("out"));
    let report = format!("{run}\n{}", steps.all());
    assert_eq!(run.code(), Some(0), "{report}");
    assert_eq!(steps.rc("install"), 0, "{report}");
    assert_eq!(steps.out("conffile").trim(), "640 root:_lanyard", "{report}");

    let installed = fs::read_to_string(share.join("installed/etc/nsswitch.conf")).expect("nsswitch.conf");
    for database in ["passwd", "group"] {
        let line = installed.lines().find(|l| l.starts_with(&format!("{database}:"))).unwrap_or_default();
        let words: Vec<&str> = line.split_whitespace().collect();
        let files = words.iter().position(|w| *w == "files");
        assert_eq!(files.map(|i| words.get(i + 1)), Some(Some(&"lanyard")), "{line}\n{report}");
    }
    let common_auth = fs::read_to_string(share.join("installed/etc/pam.d/common-auth")).expect("common-auth");
    assert!(common_auth.contains("pam_lanyard.so minimum_uid=1000 use_first_pass"), "{common_auth}");
    let systemd_wants = share.join("out/enabled.out");
    assert_eq!(
        fs::read_to_string(systemd_wants).unwrap_or_default(),
        "",
        "the unit must not be enabled by the install"
    );

    assert_eq!(steps.out("agent_uid").trim(), steps.out("lanyard_uid").trim(), "agent's uid\n{report}");
    assert_eq!(steps.rc("getent"), 0, "{report}");
    assert_eq!(steps.out("getent").trim(), "alice:x:10001:10000:Alice Liddell:/home/alice:/bin/bash", "{report}");
    assert_eq!(steps.rc("id"), 0, "{report}");
    assert!(steps.out("id").starts_with("uid=10001(alice) gid=10000("), "{report}");
    assert_eq!(steps.rc("pamtester"), 0, "{report}");
    assert_eq!(steps.rc("pamtester_wrong"), 1, "{report}");
    assert_eq!(steps.rc("agent"), 0, "lanyardd's exit after SIGTERM\n{report}");

    assert_eq!(steps.rc("purge"), 0, "{report}");
    assert_eq!(steps.out("leftovers"), "", "left after purge\n{report}");
    let before = nss_and_pam_files(&share.join("before")).expect("before");
    let purged = nss_and_pam_files(&share.join("purged")).expect("purged");
    assert_same(&before, &purged, "the root after purge");

    let host_after = nss_and_pam_files(Path::new("/")).expect("reading the host's files");
    assert_same(&host_before, &host_after, "the host");
}

/// packaging/build-deb.sh (incremental through cargo); the path it prints last.
fn build_deb() -> PathBuf {
    let workspace = workspace_dir();
    let mut cmd = Command::new("sh");
    cmd.arg(workspace.join("packaging/build-deb.sh")).current_dir(&workspace);
    // `cargo test` sets CARGO_PKG_NAME and friends for this process; handed on, they differ
    // from what a plain build saw and cargo would rebuild lanyardd each time.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_") && name != "CARGO_HOME" && name != "CARGO_TARGET_DIR" {
            cmd.env_remove(&*name);
        }
    }
    let out = run_bounded(&mut cmd, "packaging/build-deb.sh", BUILD_GUARD).expect("running build-deb.sh");
    assert_eq!(out.code(), Some(0), "{out}");
    let deb = workspace.join(out.lines().last().expect("build-deb.sh printed no path"));
    assert!(deb.is_file(), "{} is missing\n{out}", deb.display());
    deb
}

#[track_caller]
fn assert_same(expected: &[(PathBuf, Vec<u8>)], actual: &[(PathBuf, Vec<u8>)], what: &str) {
    let names = |files: &[(PathBuf, Vec<u8>)]| files.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(names(expected), names(actual), "files of nsswitch.conf and pam.d in {what}");
    for ((path, want), (_, got)) in expected.iter().zip(actual) {
        assert!(
            want == got,
            "{} changed in {what}:\n--- before\n{}\n--- after\n{}",
            path.display(),
            String::from_utf8_lossy(want),
            String::from_utf8_lossy(got)
        );
    }
}

/// The step files the script left in `out/`.
struct Steps(PathBuf);

impl Steps {
    fn out(&self, name: &str) -> String {
        fs::read_to_string(self.0.join(format!("{name}.out"))).unwrap_or_else(|e| format!("(no {name}.out: {e})"))
    }

    fn rc(&self, name: &str) -> i32 {
        fs::read_to_string(self.0.join(format!("{name}.rc"))).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(-1)
    }

    fn all(&self) -> String {
        let mut names: Vec<String> = fs::read_dir(&self.0)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.sort();
        names.iter().map(|n| format!("--- {n}\n{}", fs::read_to_string(self.0.join(n)).unwrap_or_default())).collect()
    }
}
