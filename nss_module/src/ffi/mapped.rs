//! A file mapped read-only: the agent's snapshot. The only unsafe outside `ffi.rs` proper,
//! and part of it (a child module, under the same `allow(unsafe_code)`).
//!
//! The mapping is `MAP_SHARED` so the one word the agent writes after replacing the file (the
//! superseded flag) is seen at once. The agent never truncates a published file, so reads stay
//! inside the file's pages. Only the agent (or root) can write in the socket's directory; the
//! file must also be a regular file that nobody but its owner may write.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::ptr::NonNull;

use lanyard_proto::snapshot::MAX_FILE_LEN;

/// A read-only mapping of a whole file, unmapped on drop.
#[derive(Debug)]
pub struct MappedFile {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the memory is mapped read-only and never written through this type; sharing a
// pointer to it between threads is as safe as sharing a `&[u8]`.
unsafe impl Send for MappedFile {}
// SAFETY: as above.
unsafe impl Sync for MappedFile {}

impl MappedFile {
    /// Maps `path` read-only. Refuses what cannot be a snapshot: not a regular file, empty,
    /// larger than the format allows, or writable by group or others.
    pub fn open(path: &Path) -> io::Result<MappedFile> {
        let file = File::options().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(path)?;
        let meta = file.metadata()?;
        let refuse = |why: &str| Err(io::Error::new(io::ErrorKind::InvalidData, why.to_owned()));
        if !meta.file_type().is_file() {
            return refuse("not a regular file");
        }
        if meta.mode() & 0o022 != 0 {
            return refuse("writable by group or others");
        }
        let Ok(len) = usize::try_from(meta.len()) else { return refuse("too large") };
        if len == 0 || len > MAX_FILE_LEN {
            return refuse("empty or too large");
        }
        // SAFETY: a fresh mapping chosen by the kernel (addr null) of `len` bytes of an open
        // file, read-only; the result is checked against MAP_FAILED before use. The descriptor
        // may be closed afterwards: the mapping keeps the file.
        let ptr =
            unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_SHARED, file.as_raw_fd(), 0) };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(MappedFile { ptr, len })
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes for as long as `self` lives (unmapped only in
        // drop). Only the superseded word changes underneath, and is read with a volatile load.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        // SAFETY: exactly the region mmap returned; no `bytes()` borrow can outlive `self`.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
