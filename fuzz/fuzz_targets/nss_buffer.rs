//! The NSS module's buffer packing: any entry in any buffer (any size, any alignment) packs or
//! is refused, never a panic; every offset lies inside the buffer, every string is there
//! NUL-terminated, the pointer array is aligned at its real address and overlaps no string; and
//! "too small" is only said when the entry really does not fit.
#![no_main]

use std::mem::{align_of, size_of};

use arbitrary::Arbitrary;
use lanyard_proto::{Group, Passwd};
use libfuzzer_sys::fuzz_target;
use nss_lanyard::buffer::{PackError, pack_group, pack_passwd};

#[derive(Arbitrary, Debug)]
struct Input {
    name: String,
    uid: u32,
    gid: u32,
    gecos: String,
    home: String,
    shell: String,
    members: Vec<String>,
    len: u16,
    shift: u8,
}

type Ptr = *mut libc::c_char;

fuzz_target!(|input: Input| {
    let shift = usize::from(input.shift % 16);
    let mut storage = vec![0u8; usize::from(input.len) + shift];
    let buf = &mut storage[shift..];

    let user = Passwd {
        name: input.name.clone(),
        uid: input.uid,
        gid: input.gid,
        gecos: input.gecos,
        home: input.home,
        shell: input.shell,
    };
    let strings = [&user.name, "x", &user.gecos, &user.home, &user.shell];
    let has_nul = strings.iter().any(|s| s.contains('\0'));
    let needed: usize = strings.iter().map(|s| s.len() + 1).sum();
    match pack_passwd(&user, buf) {
        Ok(p) => {
            assert!(!has_nul);
            assert_eq!((p.uid, p.gid), (user.uid, user.gid));
            let offsets = [p.name, p.passwd, p.gecos, p.dir, p.shell];
            for (offset, s) in offsets.into_iter().zip(strings) {
                assert_c_string(buf, offset, s);
            }
        }
        Err(PackError::ContainsNul) => assert!(has_nul),
        Err(PackError::TooSmall) => assert!(!has_nul && buf.len() < needed, "{needed} fit in {}", buf.len()),
    }

    let group = Group { name: input.name, gid: input.gid, members: input.members };
    let has_nul = group.name.contains('\0') || group.members.iter().any(|m| m.contains('\0'));
    let slots = group.members.len() + 1;
    let strings: usize = group.name.len() + 1 + 2 + group.members.iter().map(|m| m.len() + 1).sum::<usize>();
    let needed = align_of::<Ptr>() - 1 + slots * size_of::<Ptr>() + strings;
    match pack_group(&group, buf) {
        Ok(p) => {
            assert!(!has_nul);
            assert_eq!(p.gid, group.gid);
            assert_eq!(p.members.len(), group.members.len());
            let array_end = p.member_array + slots * size_of::<Ptr>();
            assert!(array_end <= buf.len(), "pointer array ends at {array_end} of {}", buf.len());
            assert_eq!(buf[p.member_array..].as_ptr().addr() % align_of::<Ptr>(), 0, "pointer array misaligned");
            // The slots are not zeroed: ffi.rs writes every one (members, then the null).
            assert_c_string(buf, p.name, &group.name);
            assert_c_string(buf, p.passwd, "x");
            for (offset, m) in p.members.iter().zip(&group.members) {
                assert_c_string(buf, *offset, m);
            }
            for offset in [p.name, p.passwd].iter().chain(&p.members) {
                assert!(*offset >= array_end, "a string at {offset} overlaps the pointer array");
            }
        }
        Err(PackError::ContainsNul) => assert!(has_nul),
        Err(PackError::TooSmall) => assert!(!has_nul && buf.len() < needed, "{needed} fit in {}", buf.len()),
    }
});

fn assert_c_string(buf: &[u8], offset: usize, s: &str) {
    let end = offset + s.len();
    assert!(end < buf.len(), "string at {offset}..={end} outside a buffer of {}", buf.len());
    assert_eq!(&buf[offset..end], s.as_bytes());
    assert_eq!(buf[end], 0);
}
