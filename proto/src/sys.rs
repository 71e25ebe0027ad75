//! Every `unsafe` in proto: a Unix-socket connect that gives up at a deadline, and a send that
//! cannot raise SIGPIPE. Both matter because the modules run inside sshd, login and `id`: a full
//! listen backlog (a hung agent) must not block them forever, and a peer that hung up must not
//! kill them with a signal.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Connects to the socket at `path`, waiting at most `timeout` for room in its listen backlog.
pub(crate) fn connect_unix(path: &Path, timeout: Duration) -> io::Result<UnixStream> {
    let path = path.as_os_str().as_bytes();
    // SAFETY: sockaddr_un is plain old data; all-zero bytes are a valid (empty) address.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    // Leave room for the terminating NUL that the zeroed tail provides.
    if path.is_empty() || path.len() >= addr.sun_path.len() || path.contains(&0) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "socket path is empty or too long"));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, &src) in addr.sun_path.iter_mut().zip(path) {
        *dst = src as libc::c_char;
    }
    let addr_len = std::mem::offset_of!(libc::sockaddr_un, sun_path) + path.len() + 1;

    // SAFETY: plain system call with constant arguments; the result is checked below.
    let raw = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a descriptor we just opened and nobody else owns.
    let stream = UnixStream::from(unsafe { OwnedFd::from_raw_fd(raw) });
    // Linux bounds a blocking AF_UNIX connect by SO_SNDTIMEO while it waits for backlog room.
    stream.set_write_timeout(Some(timeout.max(Duration::from_millis(1))))?;
    loop {
        // SAFETY: `addr` is a fully initialized sockaddr_un that outlives the call, and
        // `addr_len` does not exceed its size (checked against sun_path above).
        let rc = unsafe {
            libc::connect(stream.as_raw_fd(), (&raw const addr).cast::<libc::sockaddr>(), addr_len as libc::socklen_t)
        };
        if rc == 0 {
            return Ok(stream);
        }
        let err = io::Error::last_os_error();
        // A signal (sshd has SIGCHLD handlers) leaves an AF_UNIX socket unconnected: try again.
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Writes all of `buf`, with MSG_NOSIGNAL so a closed peer is an error, not a SIGPIPE.
/// The socket's write timeout bounds each call.
pub(crate) fn send_all(stream: &UnixStream, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: `buf` is a live slice; send reads at most `buf.len()` bytes from it.
        let sent = unsafe { libc::send(stream.as_raw_fd(), buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
        if sent < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        let sent = sent as usize;
        if sent == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        buf = buf.get(sent..).unwrap_or_default();
    }
    Ok(())
}

/// Milliseconds on CLOCK_BOOTTIME: the clock snapshot expiries are written in
/// ([`crate::snapshot`]). The same for every process on the host, never set back (unlike the
/// wall clock), and it counts time suspended (unlike CLOCK_MONOTONIC), so a laptop that slept
/// through an entry's lifetime does not find it fresh on waking. 0 if the clock cannot be read,
/// which makes every entry look expired: the safe side.
pub fn boottime_ms() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec through a valid pointer; the result is checked.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) };
    if rc != 0 {
        return 0;
    }
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let millis = u64::try_from(now.tv_nsec).unwrap_or(0) / 1_000_000;
    secs.saturating_mul(1000).saturating_add(millis)
}
