//! Child processes with bounded lifetimes: long-running servers ([`Supervised`]) and one-shot
//! commands ([`run_bounded`]). Every wait here is bounded in both tries and time.

use std::ffi::OsString;
use std::fmt;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How long a one-shot command may run before it counts as hung, is killed, and fails the test.
/// A guard against hangs, not a timing assertion: every command here normally takes milliseconds.
pub const HANG_GUARD: Duration = Duration::from_secs(20);

/// How long a stopped server gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Calls `probe` every `interval` until it returns `Some`, at most `limit` long and at most
/// `limit / interval + 1` times. An `Err` from `probe` ends the wait at once.
pub fn poll_until<T>(
    what: &str,
    limit: Duration,
    interval: Duration,
    mut probe: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let start = Instant::now();
    let max_tries = limit.as_millis() / interval.as_millis().max(1) + 1;
    for _ in 0..max_tries {
        if let Some(value) = probe()? {
            return Ok(value);
        }
        if start.elapsed() >= limit {
            break;
        }
        thread::sleep(interval);
    }
    bail!("gave up after {limit:?} waiting for {what}")
}

/// A long-running child (slapd, lanyardd). Dropping it stops it: SIGTERM to its PID, a wait of
/// at most [`STOP_GRACE`], then SIGKILL, then `waitpid`.
#[derive(Debug)]
pub struct Supervised {
    name: String,
    child: Child,
    status: Option<ExitStatus>,
}

impl Supervised {
    pub fn spawn(name: &str, command: &mut Command) -> Result<Self> {
        let child = command.spawn().with_context(|| format!("starting {name}: {command:?}"))?;
        Ok(Supervised { name: name.to_owned(), child, status: None })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the child has exited (reaping it), without waiting.
    pub fn try_exit_status(&mut self) -> Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self.child.try_wait().with_context(|| format!("waitpid on {}", self.name))?;
        }
        Ok(self.status)
    }

    /// Waits at most `limit` for the child to exit on its own.
    pub fn wait_exit(&mut self, limit: Duration) -> Result<Option<ExitStatus>> {
        let what = format!("{} (pid {}) to exit", self.name, self.pid());
        match poll_until(&what, limit, POLL_INTERVAL, || self.try_exit_status()) {
            Ok(status) => Ok(Some(status)),
            Err(_) => self.try_exit_status(),
        }
    }

    /// Sends `signal` (e.g. `SIGSTOP`) to the child if it has not exited.
    pub fn signal(&mut self, signal: libc::c_int) -> Result<()> {
        if self.try_exit_status()?.is_some() {
            bail!("{} has already exited", self.name);
        }
        let pid = libc::pid_t::try_from(self.pid()).context("pid out of range")?;
        // SAFETY: kill(2) takes plain integers; the child is not reaped, so the PID is ours.
        let rc = unsafe { libc::kill(pid, signal) };
        anyhow::ensure!(rc == 0, "kill({pid}, {signal}): {}", std::io::Error::last_os_error());
        Ok(())
    }

    /// Kills the child with SIGKILL (no chance to clean up: a crash, a power cut) and reaps it.
    /// Fails if it had already exited.
    pub fn kill(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.try_exit_status()? {
            bail!("{} had already exited with {status}", self.name);
        }
        // SIGKILL through the std handle, which targets this same unreaped PID.
        self.child.kill().with_context(|| format!("SIGKILL to {}", self.name))?;
        let status = self.child.wait().with_context(|| format!("waitpid on {}", self.name))?;
        self.status = Some(status);
        Ok(status)
    }

    /// Stops the child by its PID and reaps it. Idempotent.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.try_exit_status()? {
            return Ok(status);
        }
        let pid = libc::pid_t::try_from(self.pid()).context("pid out of range")?;
        // SAFETY: kill(2) takes plain integers. The child is not reaped yet (we own its `Child`
        // and `try_wait` saw it running), so the PID still names our child and no other process.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        // SAFETY: as above. Lets a SIGSTOPped child run, and so act on the SIGTERM.
        unsafe { libc::kill(pid, libc::SIGCONT) };
        if let Some(status) = self.wait_exit(STOP_GRACE)? {
            return Ok(status);
        }
        // A frozen (SIGSTOPped) child cannot act on SIGTERM; SIGKILL still works.
        eprintln!("{} (pid {pid}) ignored SIGTERM for {STOP_GRACE:?}; sending SIGKILL", self.name);
        // SIGKILL through the std handle, which targets this same unreaped PID.
        self.child.kill().with_context(|| format!("SIGKILL to {}", self.name))?;
        let status = self.child.wait().with_context(|| format!("waitpid on {}", self.name))?;
        self.status = Some(status);
        Ok(status)
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("stopping {}: {e:#}", self.name);
        }
    }
}

/// A process that is not our own child (the one child of `unshare --fork`, say), held through
/// a pidfd: a signal sent through it can never reach another process that reused its PID.
#[derive(Debug)]
pub struct PidFd {
    fd: std::os::fd::OwnedFd,
    pid: u32,
}

impl PidFd {
    /// The only child of `parent`, waiting at most `limit` for it to appear. `parent` must fork
    /// exactly one child (as `unshare --fork` does).
    pub fn only_child_of(parent: &mut Supervised, limit: Duration) -> Result<Self> {
        let ppid = parent.pid();
        let what = format!("the child of {} (pid {ppid})", parent.name);
        poll_until(&what, limit, POLL_INTERVAL, || {
            if let Some(status) = parent.try_exit_status()? {
                bail!("{} exited with {status} before its child could be found", parent.name);
            }
            let children = std::fs::read_to_string(format!("/proc/{ppid}/task/{ppid}/children")).unwrap_or_default();
            let Some(pid) = children.split_whitespace().next().and_then(|p| p.parse::<u32>().ok()) else {
                return Ok(None);
            };
            let Ok(fd) = pidfd_open(pid) else { return Ok(None) };
            // Checked after opening: if the process behind the pidfd still has `parent` as its
            // parent, it is that child (`parent` has only one, and it has not reaped it).
            Ok((parent_of(pid) == Some(ppid)).then_some(PidFd { fd, pid }))
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends `signal`; Ok also when the process has already exited.
    pub fn signal(&self, signal: libc::c_int) -> Result<()> {
        use std::os::fd::AsRawFd;
        // SAFETY: pidfd_send_signal(2) takes the pidfd we own, a signal number, a null siginfo
        // (the kernel fills in a default one) and flags 0; no memory is shared.
        let rc = unsafe {
            libc::syscall(libc::SYS_pidfd_send_signal, self.fd.as_raw_fd(), signal, std::ptr::null::<u8>(), 0)
        };
        let err = std::io::Error::last_os_error();
        if rc == 0 || err.raw_os_error() == Some(libc::ESRCH) {
            return Ok(());
        }
        bail!("pidfd_send_signal({}, {signal}): {err}", self.pid)
    }

    /// Whether the process has exited (a pidfd becomes readable then).
    pub fn has_exited(&self) -> bool {
        use std::os::fd::AsRawFd;
        let mut poll = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd, timeout 0: poll(2) only writes `revents`.
        let rc = unsafe { libc::poll(&mut poll, 1, 0) };
        rc == 1 && poll.revents & libc::POLLIN != 0
    }
}

fn pidfd_open(pid: u32) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let pid = libc::pid_t::try_from(pid).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: pidfd_open(2) takes a pid and flags 0 and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fd = libc::c_int::try_from(fd).map_err(|_| std::io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// The parent PID in `/proc/PID/stat` (the field after the `)` that closes the command name).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.split_whitespace().nth(1)?.parse().ok()
}

/// What a one-shot command did.
#[derive(Debug, Clone)]
pub struct Output {
    /// How the command was described to [`run_bounded`], for failure messages.
    pub command: String,
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    /// The exit code; `None` when a signal ended the command.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// stdout as text (invalid UTF-8 replaced).
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr as text (invalid UTF-8 replaced).
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// stdout's lines.
    pub fn lines(&self) -> Vec<String> {
        self.stdout().lines().map(str::to_owned).collect()
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 2000;
        let cut = |s: String| {
            if s.chars().count() <= SHOWN {
                return s;
            }
            let head: String = s.chars().take(SHOWN).collect();
            format!("{head}... ({} bytes in all)", s.len())
        };
        write!(
            f,
            "`{}` exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command,
            self.status,
            cut(self.stdout()),
            cut(self.stderr())
        )
    }
}

/// Runs `command` to completion with stdin from /dev/null, capturing stdout and stderr. If it
/// runs longer than `guard`, its whole process group is killed and this returns an error naming
/// `description`: a hang is a failure.
pub fn run_bounded(command: &mut Command, description: &str, guard: Duration) -> Result<Output> {
    run_with(command, None, description, guard)
}

/// Like [`run_bounded`], with `input` written to the command's stdin, which is then closed
/// (answers to prompts, one line each: PAM's text conversation reads a pipe line by line).
pub fn run_bounded_with_input(
    command: &mut Command,
    input: &[u8],
    description: &str,
    guard: Duration,
) -> Result<Output> {
    run_with(command, Some(input), description, guard)
}

fn run_with(command: &mut Command, input: Option<&[u8]>, description: &str, guard: Duration) -> Result<Output> {
    let stdin = if input.is_some() { Stdio::piped() } else { Stdio::null() };
    // Its own process group, so a hang guard can also stop whatever it started.
    command.stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let mut child = command.spawn().with_context(|| format!("starting `{description}`"))?;
    if let (Some(mut pipe), Some(input)) = (child.stdin.take(), input) {
        let input = input.to_vec();
        // A thread, so a command that reads nothing cannot block us on a full pipe. It ends
        // when the input is written or the command exits (EPIPE); dropping the pipe is the EOF.
        thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let start = Instant::now();
    let waited = poll_until(description, guard, Duration::from_millis(2), || {
        child.try_wait().with_context(|| format!("waitpid on `{description}`"))
    });
    let status = match waited {
        Ok(status) => status,
        Err(_) => {
            if let Ok(pgid) = libc::pid_t::try_from(child.id()) {
                // SAFETY: kill(2) with plain integers. The child leads the process group we made
                // for it and is not reaped yet, so -pgid names only that group.
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
            }
            let _ = child.kill();
            let _ = child.wait();
            bail!("`{description}` did not finish within {guard:?} (hang guard); it was killed");
        }
    };
    // The pipes close when the command exits, unless something it started still holds them.
    let remaining = guard.saturating_sub(start.elapsed()).max(Duration::from_secs(1));
    let stdout = stdout.recv_timeout(remaining).unwrap_or_default();
    let stderr = stderr.recv_timeout(Duration::from_secs(1)).unwrap_or_default();
    Ok(Output { command: description.to_owned(), status, stdout, stderr })
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            let _ = tx.send(buf);
        });
    }
    rx
}

/// `program arg...` with arguments shown as Rust strings would be, for messages.
pub fn describe(program: &str, args: &[OsString]) -> String {
    let mut s = program.to_owned();
    for arg in args {
        match arg.to_str() {
            Some(a) if !a.is_empty() && a.chars().all(|c| c.is_ascii_graphic()) => {
                s.push(' ');
                s.push_str(a);
            }
            _ => s.push_str(&format!(" {arg:?}")),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_bounded_captures_output_and_status() {
        let out =
            run_bounded(Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]), "sh", HANG_GUARD).unwrap();
        assert_eq!(out.code(), Some(3));
        assert_eq!(out.stdout(), "out\n");
        assert_eq!(out.stderr(), "err\n");
    }

    #[test]
    fn run_bounded_with_input_feeds_stdin_then_closes_it() {
        let out = run_bounded_with_input(
            Command::new("sh").args(["-c", "read a; read b; echo \"$b/$a\"; cat"]),
            b"one\ntwo\n",
            "sh",
            HANG_GUARD,
        )
        .unwrap();
        assert_eq!(out.stdout(), "two/one\n");
        // A command that never reads its input still finishes.
        let quiet = run_bounded_with_input(&mut Command::new("true"), &[b'x'; 1 << 20], "true", HANG_GUARD).unwrap();
        assert!(quiet.status.success());
    }

    #[test]
    fn run_bounded_kills_a_hung_command_and_says_so() {
        let err = run_bounded(Command::new("sleep").arg("30"), "sleep 30", Duration::from_millis(200)).unwrap_err();
        assert!(err.to_string().contains("hang guard"), "{err}");
    }

    #[test]
    fn supervised_child_is_stopped_by_sigterm() {
        let mut child = Supervised::spawn("sleep", Command::new("sleep").arg("30")).unwrap();
        let pid = child.pid();
        let status = child.stop().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(libc::SIGTERM));
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "pid {pid} still exists");
    }

    #[test]
    fn supervised_child_is_killed_by_sigkill_once() {
        // An ignored signal stays ignored across exec: this sleep (the same PID) ignores SIGTERM.
        let mut child =
            Supervised::spawn("sleep", Command::new("sh").args(["-c", "trap '' TERM; exec sleep 30"])).unwrap();
        let pid = child.pid();
        let status = child.kill().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(libc::SIGKILL));
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "pid {pid} still exists");
        assert!(child.kill().is_err(), "a second kill claimed to kill something");
    }

    #[test]
    fn pidfd_finds_the_one_child_and_signals_it() {
        let mut parent = Supervised::spawn("sh", Command::new("sh").args(["-c", "sleep 30; true"])).unwrap();
        let child = PidFd::only_child_of(&mut parent, Duration::from_secs(5)).unwrap();
        assert_eq!(parent_of(child.pid()), Some(parent.pid()));
        // The forked child is still `sh` until it has exec'd sleep.
        let cmdline = || std::fs::read_to_string(format!("/proc/{}/cmdline", child.pid())).unwrap_or_default();
        let exec = poll_until("sh's child to exec sleep", Duration::from_secs(5), Duration::from_millis(5), || {
            Ok(cmdline().starts_with("sleep").then_some(()))
        });
        assert!(exec.is_ok(), "{:?}", cmdline());
        assert!(!child.has_exited());
        child.signal(libc::SIGTERM).unwrap();
        let status = parent.wait_exit(STOP_GRACE).unwrap().expect("sh exits once sleep is gone");
        // sh ran `true` after sleep died: the signal reached sleep, not sh.
        assert_eq!(status.code(), Some(0), "{status}");
        assert!(child.has_exited());
        child.signal(libc::SIGTERM).unwrap();
    }

    #[test]
    fn poll_until_gives_up() {
        let mut tries = 0;
        let r: Result<()> = poll_until("nothing", Duration::from_millis(50), Duration::from_millis(10), || {
            tries += 1;
            Ok(None)
        });
        assert!(r.is_err());
        assert!((2..=7).contains(&tries), "{tries}");
    }
}
