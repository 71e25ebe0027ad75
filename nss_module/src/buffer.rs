//! Packing an entry's strings (and a group's member pointer array) into the caller's buffer.
//!
//! glibc hands us one byte buffer per call and expects every string of the returned
//! `struct passwd` / `struct group` to live in it. This module writes into that buffer as a
//! plain `&mut [u8]` and returns byte offsets; `ffi.rs` turns the offsets into pointers. The
//! pointer array for `gr_mem` is reserved here (aligned for real, relative to the buffer's
//! actual address, since glibc's buffer need not be aligned) and filled in by `ffi.rs`.

use std::mem::{align_of, size_of};

use lanyard_proto::{Group, Passwd, UserRecord};
use libc::c_char;

/// The password field: no hash ever leaves the agent.
const NO_PASSWORD: &[u8] = b"x";

/// Why an entry was not packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackError {
    /// The buffer is too small for this entry; a larger one will do.
    TooSmall,
    /// A field contains a NUL byte, so it cannot be a C string in any buffer.
    ContainsNul,
}

/// Where each `struct passwd` string starts in the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedPasswd {
    pub name: usize,
    pub passwd: usize,
    pub uid: u32,
    pub gid: u32,
    pub gecos: usize,
    pub dir: usize,
    pub shell: usize,
}

/// Where each `struct group` string starts, and where the `gr_mem` array goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedGroup {
    pub name: usize,
    pub passwd: usize,
    pub gid: u32,
    /// Offset of `members.len() + 1` pointer slots, aligned for `*mut c_char` at the buffer's
    /// real address. `ffi.rs` fills them with the member strings and a terminating null.
    pub member_array: usize,
    pub members: Vec<usize>,
}

/// Packs `user`, NUL-terminated strings one after the other.
pub fn pack_passwd(user: &Passwd, buf: &mut [u8]) -> Result<PackedPasswd, PackError> {
    let fields = UserRecord {
        name: user.name.as_bytes(),
        uid: user.uid,
        gid: user.gid,
        gecos: user.gecos.as_bytes(),
        home: user.home.as_bytes(),
        shell: user.shell.as_bytes(),
    };
    pack_passwd_record(&fields, buf)
}

/// Packs a user given as bytes, as the snapshot holds it (an agent's answer is turned into the
/// same shape by [`pack_passwd`]).
pub fn pack_passwd_record(user: &UserRecord<'_>, buf: &mut [u8]) -> Result<PackedPasswd, PackError> {
    // Checked before any size: a NUL makes the entry unrepresentable, and answering "too small"
    // would send glibc growing its buffer forever.
    if [user.name, user.gecos, user.home, user.shell].iter().any(|s| s.contains(&0)) {
        return Err(PackError::ContainsNul);
    }
    let mut packer = Packer::new(buf);
    Ok(PackedPasswd {
        name: packer.string(user.name)?,
        passwd: packer.string(NO_PASSWORD)?,
        uid: user.uid,
        gid: user.gid,
        gecos: packer.string(user.gecos)?,
        dir: packer.string(user.home)?,
        shell: packer.string(user.shell)?,
    })
}

/// Packs `group`: the pointer array first (so its alignment padding is at most one pointer's
/// worth, at the very start), then the strings.
pub fn pack_group(group: &Group, buf: &mut [u8]) -> Result<PackedGroup, PackError> {
    pack_group_fields(group.name.as_bytes(), group.gid, group.members.iter().map(String::as_bytes), buf)
}

/// Packs a group given as bytes; `members` is walked twice (checked, then copied), so it must
/// be cheap to clone (an iterator over the agent's answer or over the snapshot's mapping).
pub fn pack_group_fields<'m>(
    name: &[u8],
    gid: u32,
    members: impl ExactSizeIterator<Item = &'m [u8]> + Clone,
    buf: &mut [u8],
) -> Result<PackedGroup, PackError> {
    if name.contains(&0) || members.clone().any(|m| m.contains(&0)) {
        return Err(PackError::ContainsNul);
    }
    let mut packer = Packer::new(buf);
    let slots = members.len().checked_add(1).ok_or(PackError::TooSmall)?;
    let member_array = packer.pointer_array(slots)?;
    let name = packer.string(name)?;
    let passwd = packer.string(NO_PASSWORD)?;
    let members = members.map(|m| packer.string(m)).collect::<Result<Vec<_>, _>>()?;
    Ok(PackedGroup { name, passwd, gid, member_array, members })
}

/// Packs a group whose members come as one block of NUL-terminated strings and the offset of
/// each in it (the snapshot's layout): the block is copied in one piece, which for a group of
/// thousands is far cheaper than copying each name.
pub fn pack_group_block(
    name: &[u8],
    gid: u32,
    block: &[u8],
    starts: impl ExactSizeIterator<Item = usize>,
    buf: &mut [u8],
) -> Result<PackedGroup, PackError> {
    if name.contains(&0) {
        return Err(PackError::ContainsNul);
    }
    let mut packer = Packer::new(buf);
    let slots = starts.len().checked_add(1).ok_or(PackError::TooSmall)?;
    let member_array = packer.pointer_array(slots)?;
    let name = packer.string(name)?;
    let passwd = packer.string(NO_PASSWORD)?;
    let block_at = packer.used;
    packer.reserve(block.len(), 1)?.copy_from_slice(block);
    let members = starts.map(|start| block_at + start).collect();
    Ok(PackedGroup { name, passwd, gid, member_array, members })
}

/// Hands out consecutive pieces of one buffer.
struct Packer<'a> {
    buf: &'a mut [u8],
    /// The buffer's address: alignment is about where the bytes really are, not offset 0.
    base: usize,
    used: usize,
}

impl<'a> Packer<'a> {
    fn new(buf: &'a mut [u8]) -> Packer<'a> {
        let base = buf.as_ptr().addr();
        Packer { buf, base, used: 0 }
    }

    /// Reserves `len` bytes at the next offset that is a multiple of `align` in memory.
    fn reserve(&mut self, len: usize, align: usize) -> Result<&mut [u8], PackError> {
        let misalignment = self.base.wrapping_add(self.used) % align;
        let padding = (align - misalignment) % align;
        let start = self.used.checked_add(padding).ok_or(PackError::TooSmall)?;
        let end = start.checked_add(len).ok_or(PackError::TooSmall)?;
        let slot = self.buf.get_mut(start..end).ok_or(PackError::TooSmall)?;
        self.used = end;
        Ok(slot)
    }

    /// Copies `s` and a terminating NUL; returns the offset of its first byte.
    fn string(&mut self, s: &[u8]) -> Result<usize, PackError> {
        let start = self.used;
        let slot = self.reserve(s.len() + 1, 1)?;
        let (text, nul) = slot.split_at_mut(s.len());
        text.copy_from_slice(s);
        nul.fill(0);
        Ok(start)
    }

    /// Reserves `slots` pointer slots, aligned; returns the offset of the first. Not zeroed:
    /// `ffi.rs` writes every slot (each member, then the terminating null) before the entry is
    /// handed to glibc, and zeroing 40 KB for a 5,000-member group only to overwrite it cost
    /// about 15% of a `getgrnam` (perf).
    fn pointer_array(&mut self, slots: usize) -> Result<usize, PackError> {
        let len = slots.checked_mul(size_of::<*mut c_char>()).ok_or(PackError::TooSmall)?;
        self.reserve(len, align_of::<*mut c_char>())?;
        Ok(self.used - len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PTR: usize = size_of::<*mut c_char>();

    fn alice() -> Passwd {
        Passwd {
            name: "alice".into(),
            uid: 10001,
            gid: 100,
            gecos: "Alice".into(),
            home: "/home/alice".into(),
            shell: "/bin/sh".into(),
        }
    }

    /// "alice\0" "x\0" "Alice\0" "/home/alice\0" "/bin/sh\0"
    const ALICE_LEN: usize = 6 + 2 + 6 + 12 + 8;

    fn staff(members: usize) -> Group {
        Group { name: "staff".into(), gid: 50, members: (0..members).map(|i| format!("user{i}")).collect() }
    }

    /// The C string starting at `offset`.
    fn c_str(buf: &[u8], offset: usize) -> &str {
        let len = buf[offset..].iter().position(|&b| b == 0).unwrap();
        std::str::from_utf8(&buf[offset..offset + len]).unwrap()
    }

    /// A `len`-byte window of `backing` whose address is `misalign` bytes past pointer alignment.
    fn window(backing: &mut [u8], misalign: usize, len: usize) -> &mut [u8] {
        let skip = (PTR - backing.as_ptr().addr() % PTR) % PTR + misalign;
        &mut backing[skip..skip + len]
    }

    #[test]
    fn a_passwd_that_fits_exactly_is_packed() {
        let mut buf = vec![0xAAu8; ALICE_LEN];
        let packed = pack_passwd(&alice(), &mut buf).unwrap();
        assert_eq!(c_str(&buf, packed.name), "alice");
        assert_eq!(c_str(&buf, packed.passwd), "x");
        assert_eq!(c_str(&buf, packed.gecos), "Alice");
        assert_eq!(c_str(&buf, packed.dir), "/home/alice");
        assert_eq!(c_str(&buf, packed.shell), "/bin/sh");
        assert_eq!((packed.uid, packed.gid), (10001, 100));
        assert_eq!(buf[ALICE_LEN - 1], 0, "the last string is NUL-terminated");
    }

    #[test]
    fn a_buffer_one_byte_short_is_too_small() {
        let mut buf = vec![0u8; ALICE_LEN - 1];
        assert_eq!(pack_passwd(&alice(), &mut buf), Err(PackError::TooSmall));
        assert_eq!(pack_passwd(&alice(), &mut []), Err(PackError::TooSmall));
    }

    #[test]
    fn a_group_that_fits_exactly_is_packed_and_one_byte_less_is_too_small() {
        // Two members: 3 pointer slots, then "staff\0" "x\0" "user0\0" "user1\0".
        let need = 3 * PTR + 6 + 2 + 6 + 6;
        let mut backing = vec![0u8; need + 2 * PTR];
        let buf = window(&mut backing, 0, need);
        let packed = pack_group(&staff(2), buf).unwrap();
        assert_eq!(packed.member_array, 0);
        assert_eq!(c_str(buf, packed.name), "staff");
        assert_eq!(c_str(buf, packed.passwd), "x");
        let members: Vec<_> = packed.members.iter().map(|&m| c_str(buf, m)).collect();
        assert_eq!(members, ["user0", "user1"]);
        assert!(buf[..3 * PTR].iter().all(|&b| b == 0), "slots start zeroed (the last stays null)");

        let short = window(&mut backing, 0, need - 1);
        assert_eq!(pack_group(&staff(2), short), Err(PackError::TooSmall));
    }

    #[test]
    fn the_member_array_is_aligned_for_every_buffer_start() {
        let mut backing = vec![0u8; 4096];
        for start in 0..4 * PTR {
            let buf = &mut backing[start..];
            let base = buf.as_ptr().addr();
            let packed = pack_group(&staff(3), buf).unwrap();
            assert_eq!((base + packed.member_array) % align_of::<*mut c_char>(), 0, "start {start}");
            assert!(packed.member_array < PTR, "padding is less than one pointer");
            // Strings never overlap the array.
            assert!(packed.name >= packed.member_array + 4 * PTR);
        }
    }

    #[test]
    fn padding_counts_toward_the_size_a_group_needs() {
        // Misaligned by 1: the array needs PTR - 1 bytes of padding first.
        let need = (PTR - 1) + PTR + 6 + 2;
        let mut backing = vec![0u8; need + 2 * PTR];
        assert!(pack_group(&staff(0), window(&mut backing, 1, need)).is_ok());
        assert_eq!(pack_group(&staff(0), window(&mut backing, 1, need - 1)), Err(PackError::TooSmall));
    }

    #[test]
    fn a_group_with_5000_members_is_packed() {
        let group = staff(5000);
        let strings: usize = group.members.iter().map(|m| m.len() + 1).sum::<usize>() + 6 + 2;
        let mut backing = vec![0u8; 5001 * PTR + strings + PTR];
        let packed = pack_group(&group, &mut backing).unwrap();
        assert_eq!(packed.members.len(), 5000);
        assert_eq!(c_str(&backing, packed.members[4999]), "user4999");
        assert_eq!(pack_group(&group, &mut backing[..5001 * PTR]), Err(PackError::TooSmall));
    }

    #[test]
    fn an_empty_group_has_only_the_terminating_slot() {
        let mut backing = vec![0u8; 64];
        let packed = pack_group(&staff(0), &mut backing).unwrap();
        assert!(packed.members.is_empty());
        assert!(packed.name >= packed.member_array + PTR);
    }

    #[test]
    fn a_nul_byte_in_any_field_is_refused_whatever_the_buffer_size() {
        let mut big = vec![0u8; 4096];
        let poisons: [fn(&mut Passwd); 4] =
            [|u| u.name.push('\0'), |u| u.gecos.push('\0'), |u| u.home.push('\0'), |u| u.shell.push('\0')];
        for poison in poisons {
            let mut user = alice();
            poison(&mut user);
            assert_eq!(pack_passwd(&user, &mut big), Err(PackError::ContainsNul));
            assert_eq!(pack_passwd(&user, &mut []), Err(PackError::ContainsNul));
        }
        let mut group = staff(2);
        group.members[1] = "b\0b".into();
        assert_eq!(pack_group(&group, &mut big), Err(PackError::ContainsNul));
        assert_eq!(pack_group(&group, &mut []), Err(PackError::ContainsNul));
    }

    #[test]
    fn a_member_block_packs_like_the_members_one_by_one() {
        let group = staff(3);
        let mut block = Vec::new();
        let mut starts = Vec::new();
        for member in &group.members {
            starts.push(block.len());
            block.extend_from_slice(member.as_bytes());
            block.push(0);
        }
        let mut one_by_one = [0u8; 256];
        let mut in_one_piece = [0u8; 256];
        let a = pack_group(&group, &mut one_by_one).unwrap();
        let b = pack_group_block(b"staff", 50, &block, starts.iter().copied(), &mut in_one_piece).unwrap();
        let names = |buf: &[u8], packed: &PackedGroup| -> Vec<String> {
            packed.members.iter().map(|&at| c_str(buf, at).to_owned()).collect()
        };
        assert_eq!(names(&one_by_one, &a), group.members);
        assert_eq!(names(&in_one_piece, &b), group.members);
        assert_eq!(c_str(&in_one_piece, b.name), "staff");
        assert_eq!(
            pack_group_block(b"staff", 50, &block, starts.iter().copied(), &mut [0u8; 16]),
            Err(PackError::TooSmall)
        );
    }
}
