//! `pamtester` (Debian) driving a test PAM service that loads the built `pam_lanyard.so` by
//! absolute path, inside the same private namespace as the NSS tests ([`crate::Namespace`])
//! with a scratch `pam.d` bind-mounted over `/etc/pam.d`. Nothing of the host's PAM
//! configuration is read or changed.
//!
//! Passwords go to pamtester's stdin, one line per prompt: libpam_misc's text conversation
//! reads a pipe one line at a time, so `old\nnew\nnew\n` answers three prompts in turn.
//! pamtester prints `pamtester: <pam_strerror text>` on stderr when an operation fails (see
//! [`PamCode`] and [`pam_error`]) and exits 1; on success it exits 0 and says so on stdout.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::fixture::User;
use crate::process::Output;
use crate::tempdir::TempDir;
use crate::{Agent, Namespace, pam_module_path, require_built};

/// The service name of the test stack (`/etc/pam.d/lanyard-test` inside the namespace).
pub const SERVICE: &str = "lanyard-test";

/// Stands for the copied module's path in service texts given to [`Pam::with_service`] and
/// [`crate::sshd::SshdOptions`].
pub const MODULE_PLACEHOLDER: &str = "@MODULE@";

/// PAM results as `pam_strerror` (Linux-PAM 1.5) words them, which is what pamtester prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PamCode {
    PermDenied,
    AuthErr,
    AuthinfoUnavail,
    UserUnknown,
    Maxtries,
    NewAuthtokReqd,
    AcctExpired,
    AuthtokErr,
    SystemErr,
}

impl PamCode {
    /// The text `pam_strerror` gives for this code.
    pub fn text(self) -> &'static str {
        match self {
            PamCode::PermDenied => "Permission denied",
            PamCode::AuthErr => "Authentication failure",
            PamCode::AuthinfoUnavail => "Authentication service cannot retrieve authentication info",
            PamCode::UserUnknown => "User not known to the underlying authentication module",
            PamCode::Maxtries => "Have exhausted maximum number of retries for service",
            PamCode::NewAuthtokReqd => "Authentication token is no longer valid; new one required",
            PamCode::AcctExpired => "User account has expired",
            PamCode::AuthtokErr => "Authentication token manipulation error",
            PamCode::SystemErr => "System error",
        }
    }
}

/// The error pamtester reported (its last `pamtester: ...` message on stderr that is not
/// progress), or `None` when it reported none. A prompt read from a pipe ends no line, so the
/// message may follow one on the same line (`Password: pamtester: Authentication failure`).
pub fn pam_error(out: &Output) -> Option<String> {
    out.stderr()
        .lines()
        .filter_map(|l| l.rsplit_once("pamtester: ").map(|(_, message)| message))
        .rfind(|l| !l.starts_with("invoking pam_start(") && !l.starts_with("performing operation - "))
        .map(str::to_owned)
}

/// Who runs pamtester. The module runs inside it, so this is the uid the agent sees through
/// `SO_PEERCRED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Root,
    /// Runs as this uid and gid with no supplementary groups (`setpriv`).
    Uid {
        uid: u32,
        gid: u32,
    },
}

impl Caller {
    /// The given user's own uid and primary gid (a user changing their own password, a screen
    /// locker).
    pub fn user(user: &User) -> Self {
        Caller::Uid { uid: user.uid, gid: user.gid }
    }

    fn argv_prefix(self) -> Vec<String> {
        match self {
            Caller::Root => Vec::new(),
            Caller::Uid { uid, gid } => {
                vec!["setpriv".into(), format!("--reuid={uid}"), format!("--regid={gid}"), "--clear-groups".into()]
            }
        }
    }
}

/// The service file that runs `module` for all four PAM groups with `args`.
pub fn lanyard_service(module: &Path, args: &[&str]) -> String {
    let mut args = args.join(" ");
    if !args.is_empty() {
        args.insert(0, ' ');
    }
    ["auth", "account", "password", "session"]
        .iter()
        .map(|group| format!("{group:<8} required {}{args}\n", module.display()))
        .collect()
}

/// A scratch `pam.d` with a copy of the built module as `pam_lanyard.so` beside it. Both are
/// readable by every user, so non-root callers can load them.
#[derive(Debug)]
pub struct PamDir {
    module: PathBuf,
    pam_d: PathBuf,
    dir: TempDir,
}

impl PamDir {
    pub fn new() -> Result<Self> {
        let built = pam_module_path();
        require_built(&built)?;
        let dir = TempDir::new("pam")?;
        let module = dir.join("pam_lanyard.so");
        fs::copy(&built, &module).with_context(|| format!("copying {}", built.display()))?;
        let pam_d = dir.join("pam.d");
        fs::create_dir(&pam_d).context("creating pam.d/")?;
        Ok(PamDir { module, pam_d, dir })
    }

    /// Writes `pam.d/NAME` with `text`.
    pub fn service(&self, name: &str, text: &str) -> Result<()> {
        fs::write(self.pam_d.join(name), text).with_context(|| format!("writing pam.d/{name}"))
    }

    /// The copy of the module the services load.
    pub fn module(&self) -> &Path {
        &self.module
    }

    /// The directory to mount over `/etc/pam.d`.
    pub fn pam_d(&self) -> &Path {
        &self.pam_d
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// pamtester against the [`SERVICE`] stack, in a namespace whose `/run/lanyard` is an agent's
/// run directory (it stays usable after the agent stops).
#[derive(Debug)]
pub struct Pam {
    // Declared first: the namespace's mounts name files in `files`.
    ns: Namespace,
    files: PamDir,
}

impl Pam {
    /// The stack for `agent` with no module arguments.
    pub fn for_agent(agent: &Agent) -> Result<Self> {
        Pam::new(&agent.run_dir(), &[])
    }

    /// The stack for the agent whose run directory is `run_dir`, with module arguments `args`
    /// (`debug`, `ignore_unknown_user`, ...), and a tmpfs over `/home`.
    pub fn new(run_dir: &Path, args: &[&str]) -> Result<Self> {
        Pam::with_service(run_dir, &lanyard_service(Path::new(MODULE_PLACEHOLDER), args))
    }

    /// A [`SERVICE`] file of its own (other modules around ours, say), where `@MODULE@` stands
    /// for the path of the copied `pam_lanyard.so`.
    pub fn with_service(run_dir: &Path, text: &str) -> Result<Self> {
        let files = PamDir::new()?;
        files.service(SERVICE, &text.replace(MODULE_PLACEHOLDER, &files.module().to_string_lossy()))?;
        let ns = Namespace::new(run_dir)?.with_pam_d(files.pam_d()).with_home_tmpfs();
        Ok(Pam { ns, files })
    }

    /// Runs every later pamtester under `guard` instead of [`crate::HANG_GUARD`]; see
    /// [`Namespace::set_guard`].
    pub fn set_guard(&mut self, guard: std::time::Duration) {
        self.ns.set_guard(guard);
    }

    /// The text of the service file, for failure messages.
    pub fn service_text(&self) -> String {
        fs::read_to_string(self.files.pam_d().join(SERVICE)).unwrap_or_default()
    }

    /// `pamtester -v lanyard-test USER OPERATION...` as `caller`, with `answers` fed to the
    /// prompts in turn; `items` are pamtester `-I` settings such as `rhost=192.0.2.1`.
    pub fn pamtester(
        &self,
        caller: Caller,
        user: &str,
        operations: &[&str],
        answers: &[&str],
        items: &[&str],
    ) -> Result<Output> {
        let mut argv: Vec<OsString> = caller.argv_prefix().into_iter().map(OsString::from).collect();
        argv.push("pamtester".into());
        argv.push("-v".into());
        for item in items {
            argv.push("-I".into());
            argv.push(item.into());
        }
        argv.push(SERVICE.into());
        argv.push(user.into());
        argv.extend(operations.iter().map(OsString::from));
        self.ns.run_with_input(&argv, &answer_lines(answers))
    }

    /// `authenticate` as root with `password`.
    pub fn authenticate(&self, user: &str, password: &str) -> Result<Output> {
        self.pamtester(Caller::Root, user, &["authenticate"], &[password], &[])
    }

    /// `authenticate` as `caller` with `password`.
    pub fn authenticate_as(&self, caller: Caller, user: &str, password: &str) -> Result<Output> {
        self.pamtester(caller, user, &["authenticate"], &[password], &[])
    }

    /// `acct_mgmt` as root (no password involved).
    pub fn acct_mgmt(&self, user: &str) -> Result<Output> {
        self.pamtester(Caller::Root, user, &["acct_mgmt"], &[], &[])
    }

    /// `chauthtok` as `caller`, answering the current password, then the new one twice.
    pub fn chauthtok(&self, caller: Caller, user: &str, old: &str, new: &str) -> Result<Output> {
        self.pamtester(caller, user, &["chauthtok"], &[old, new, new], &[])
    }

    /// Runs `script` with `bash -c` in this stack's namespace (the benchmark times with
    /// `$EPOCHREALTIME`).
    pub fn bash(&self, script: &str) -> Result<Output> {
        self.ns.run(&["bash", "-c", script])
    }

    /// Runs `argv` in this stack's namespace (a script with positional arguments, say).
    pub fn run<S: AsRef<std::ffi::OsStr>>(&self, argv: &[S]) -> Result<Output> {
        self.ns.run(argv)
    }

    /// Runs `script` with `sh -c` in this stack's namespace (pamtester and the files it leaves,
    /// e.g. a home directory on the tmpfs `/home`, in one run).
    pub fn shell(&self, script: &str) -> Result<Output> {
        self.ns.shell(script)
    }
}

fn answer_lines(answers: &[&str]) -> Vec<u8> {
    answers.iter().flat_map(|a| a.bytes().chain([b'\n'])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    fn output(status: i32, stderr: &str) -> Output {
        Output {
            command: "pamtester".into(),
            status: ExitStatus::from_raw(status << 8),
            stdout: Vec::new(),
            stderr: stderr.as_bytes().to_vec(),
        }
    }

    #[test]
    fn service_file_names_the_module_for_every_group() {
        let text = lanyard_service(Path::new("/t/pam_lanyard.so"), &["debug", "minimum_uid=1000"]);
        assert_eq!(
            text,
            "auth     required /t/pam_lanyard.so debug minimum_uid=1000\n\
             account  required /t/pam_lanyard.so debug minimum_uid=1000\n\
             password required /t/pam_lanyard.so debug minimum_uid=1000\n\
             session  required /t/pam_lanyard.so debug minimum_uid=1000\n"
        );
        assert!(lanyard_service(Path::new("/m.so"), &[]).starts_with("auth     required /m.so\n"));
    }

    #[test]
    fn pam_error_is_the_last_pamtester_line_that_is_not_progress() {
        let failed = output(
            1,
            "pamtester: invoking pam_start(lanyard-test, alice, ...)\n\
             pamtester: performing operation - authenticate\nPassword: pamtester: Authentication failure\n",
        );
        assert_eq!(pam_error(&failed).as_deref(), Some(PamCode::AuthErr.text()));
        let failed = output(1, "pamtester: performing operation - acct_mgmt\npamtester: Permission denied\n");
        assert_eq!(pam_error(&failed).as_deref(), Some(PamCode::PermDenied.text()));
        assert_eq!(pam_error(&output(0, "pamtester: performing operation - authenticate\n")), None);
    }

    #[test]
    fn answers_are_one_line_each() {
        assert_eq!(answer_lines(&["old", "new", "new"]), b"old\nnew\nnew\n");
        assert_eq!(answer_lines(&[""]), b"\n");
        assert_eq!(answer_lines(&[]), b"");
    }

    #[test]
    fn callers_become_setpriv_prefixes() {
        assert!(Caller::Root.argv_prefix().is_empty());
        assert_eq!(
            Caller::Uid { uid: 10002, gid: 10000 }.argv_prefix(),
            ["setpriv", "--reuid=10002", "--regid=10000", "--clear-groups"]
        );
    }
}
