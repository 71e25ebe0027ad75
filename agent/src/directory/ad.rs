//! Active Directory's own encodings (MS-ADTS, MS-DTYP): security identifiers, FILETIME
//! timestamps, `userAccountControl` flags, the `unicodePwd` value, and the id mapping from a
//! SID's RID. Pure functions; the searches that use them are in `ad_search`.

use zeroize::Zeroizing;

/// `userAccountControl` bits (MS-ADTS 2.2.16).
pub const ACCOUNT_DISABLED: u32 = 0x0002;
pub const DONT_EXPIRE_PASSWORD: u32 = 0x1_0000;
/// `msDS-User-Account-Control-Computed` bits (MS-ADTS 2.2.16).
pub const LOCKED_OUT: u32 = 0x0010;
pub const PASSWORD_EXPIRED: u32 = 0x80_0000;

/// FILETIME: 100-nanosecond intervals since 1601-01-01 UTC.
const FILETIME_PER_SECOND: i64 = 10_000_000;
const FILETIME_AT_UNIX_EPOCH: i64 = 116_444_736_000_000_000;

/// The `supportedCapabilities` value of an Active Directory server (LDAP_CAP_ACTIVE_DIRECTORY_OID,
/// MS-ADTS 3.1.1.3.4.3), which Samba's DC announces too.
pub const ACTIVE_DIRECTORY_CAPABILITY: &str = "1.2.840.113556.1.4.800";

/// Whether a refused bind's diagnostic text says the password was right but has expired
/// (`data 532`) or must be changed before it is used (`data 773`, `pwdLastSet` 0): AD's
/// "AcceptSecurityContext error, data NNN" sub-codes (MS-ADTS 3.1.1.3.3.1; Samba the same).
pub fn password_must_change(diagnostic: &str) -> bool {
    let Some(at) = diagnostic.find("data ") else { return false };
    let code: String = diagnostic[at + 5..].chars().take_while(char::is_ascii_hexdigit).collect();
    matches!(code.to_ascii_lowercase().as_str(), "532" | "773")
}

/// A FILETIME timestamp (`accountExpires`, `pwdLastSet`) as Unix seconds; `None` for 0 and
/// `i64::MAX`, which AD uses for "never".
pub fn filetime_to_unix(filetime: i64) -> Option<i64> {
    (filetime > 0 && filetime != i64::MAX).then(|| (filetime - FILETIME_AT_UNIX_EPOCH).div_euclid(FILETIME_PER_SECOND))
}

/// The domain's `maxPwdAge` (a negative interval in 100 ns) as seconds; `None` when passwords
/// never expire (0, or the most negative value).
pub fn max_password_age_seconds(max_pwd_age: i64) -> Option<i64> {
    (max_pwd_age < 0 && max_pwd_age != i64::MIN).then(|| -(max_pwd_age / FILETIME_PER_SECOND))
}

/// When the password expires, in Unix seconds: `Some(i64::MIN)` when it must be changed now
/// (`pwdLastSet` 0), `None` when it never does.
pub fn password_expires_at(pwd_last_set: Option<i64>, account_control: u32, max_age: Option<i64>) -> Option<i64> {
    if account_control & DONT_EXPIRE_PASSWORD != 0 {
        return None;
    }
    match pwd_last_set? {
        0 => Some(i64::MIN),
        set => Some(filetime_to_unix(set)?.saturating_add(max_age?)),
    }
}

/// A binary security identifier (MS-DTYP 2.4.2.2): revision 1, a 48-bit authority and up to
/// 15 32-bit sub-authorities, the last of which is the RID of a domain account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sid(Vec<u8>);

impl Sid {
    pub fn parse(bytes: &[u8]) -> Option<Sid> {
        let (&revision, &count) = (bytes.first()?, bytes.get(1)?);
        (revision == 1 && (1..=15).contains(&count) && bytes.len() == 8 + 4 * usize::from(count))
            .then(|| Sid(bytes.to_vec()))
    }

    fn sub_authorities(&self) -> impl Iterator<Item = u32> + '_ {
        self.0[8..].chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
    }

    /// The last sub-authority: the account's relative id within its domain.
    pub fn rid(&self) -> u32 {
        self.sub_authorities().last().unwrap_or(0)
    }

    /// The SID of the domain an account SID belongs to (the account SID without its RID).
    pub fn domain(&self) -> Option<Sid> {
        let count = self.0[1];
        (count > 1).then(|| {
            let mut bytes = self.0[..self.0.len() - 4].to_vec();
            bytes[1] = count - 1;
            Sid(bytes)
        })
    }

    /// The account `rid` in this domain.
    pub fn with_rid(&self, rid: u32) -> Option<Sid> {
        let count = self.0[1];
        (count < 15).then(|| {
            let mut bytes = self.0.clone();
            bytes[1] = count + 1;
            bytes.extend_from_slice(&rid.to_le_bytes());
            Sid(bytes)
        })
    }

    /// `(objectSid=\01\05...)`: every byte escaped (RFC 4515), which AD and Samba match
    /// against the binary value.
    pub fn filter(&self) -> String {
        let mut out = String::from("(objectSid=");
        for byte in &self.0 {
            out.push_str(&format!("\\{byte:02x}"));
        }
        out.push(')');
        out
    }
}

impl std::fmt::Display for Sid {
    /// `S-1-5-21-...` (MS-DTYP 2.4.2.1).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let authority = self.0[2..8].iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        write!(f, "S-{}-{authority}", self.0[0])?;
        self.sub_authorities().try_for_each(|s| write!(f, "-{s}"))
    }
}

/// The id of an account of the mapped domain: `offset + RID`. `None` for a RID past the range
/// (MS-SAMR: RIDs are 30 bits; the config keeps `offset + 2^30` within u32).
pub fn mapped_id(offset: u32, rid: u32) -> Option<u32> {
    (rid <= crate::config::MAX_RID).then(|| offset + rid)
}

/// The RID an id of the mapped range stands for.
pub fn rid_of(offset: u32, id: u32) -> Option<u32> {
    id.checked_sub(offset).filter(|rid| *rid <= crate::config::MAX_RID)
}

/// The value AD takes for `unicodePwd` (MS-ADTS 3.1.1.3.1.5.1): the password in double quotes,
/// UTF-16LE. Wiped when dropped.
pub fn unicode_pwd(password: &str) -> Zeroizing<Vec<u8>> {
    // Room for every case (a UTF-8 byte never needs more than two UTF-16 bytes), so the
    // buffer never moves and leaves no copy behind.
    let mut out = Zeroizing::new(Vec::with_capacity(2 * password.len() + 4));
    let mut units = [0u16; 2];
    for c in std::iter::once('"').chain(password.chars()).chain(std::iter::once('"')) {
        for unit in c.encode_utf16(&mut units).iter() {
            out.extend_from_slice(&unit.to_le_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// S-1-5-21-1004336348-1177238915-682003330-1104, as AD stores it.
    const ALICE_SID: [u8; 28] = [
        1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 0xdc, 0xf4, 0xdc, 0x3b, 0x83, 0x3d, 0x2b, 0x46, 0x82, 0x8b, 0xa6, 0x28,
        0x50, 0x04, 0, 0,
    ];

    #[test]
    fn a_sid_reads_as_text_and_splits_into_domain_and_rid() {
        let sid = Sid::parse(&ALICE_SID).unwrap();
        assert_eq!(sid.to_string(), "S-1-5-21-1004336348-1177238915-682003330-1104");
        assert_eq!(sid.rid(), 1104);
        let domain = sid.domain().unwrap();
        assert_eq!(domain.to_string(), "S-1-5-21-1004336348-1177238915-682003330");
        assert_eq!(domain.with_rid(1104), Some(sid.clone()));
        assert_eq!(domain.with_rid(513).unwrap().to_string(), "S-1-5-21-1004336348-1177238915-682003330-513");
        assert!(sid.filter().starts_with(r"(objectSid=\01\05\00\00\00\00\00\05\15\00\00\00\dc"));
    }

    #[test]
    fn malformed_sids_are_refused() {
        for bad in [
            &[][..],
            &[1],
            &[2, 1, 0, 0, 0, 0, 0, 5, 1, 0, 0, 0],
            &[1, 2, 0, 0, 0, 0, 0, 5, 1, 0, 0, 0],
            &[1, 0, 0, 0, 0, 0, 0, 5],
        ] {
            assert_eq!(Sid::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn filetimes_convert_and_never_is_none() {
        assert_eq!(filetime_to_unix(FILETIME_AT_UNIX_EPOCH), Some(0));
        // 2024-01-01T00:00:00Z
        assert_eq!(filetime_to_unix(133_485_408_000_000_000), Some(1_704_067_200));
        assert_eq!(filetime_to_unix(0), None);
        assert_eq!(filetime_to_unix(i64::MAX), None);
        // 42 days, as `samba-tool domain passwordsettings` stores it.
        assert_eq!(max_password_age_seconds(-36_288_000_000_000), Some(42 * 86_400));
        assert_eq!(max_password_age_seconds(i64::MIN), None);
        assert_eq!(max_password_age_seconds(0), None);
    }

    #[test]
    fn password_expiry_follows_pwd_last_set_and_the_flags() {
        let set = 133_485_408_000_000_000;
        assert_eq!(password_expires_at(Some(set), 0x200, Some(86_400)), Some(1_704_067_200 + 86_400));
        assert_eq!(password_expires_at(Some(0), 0x200, Some(86_400)), Some(i64::MIN));
        assert_eq!(password_expires_at(Some(0), 0x200 | DONT_EXPIRE_PASSWORD, Some(86_400)), None);
        assert_eq!(password_expires_at(Some(set), 0x200, None), None);
        assert_eq!(password_expires_at(None, 0x200, Some(86_400)), None);
    }

    #[test]
    fn expired_and_must_change_binds_are_told_apart_from_wrong_passwords() {
        let text = |code| {
            format!("80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data {code}, v4563")
        };
        assert!(password_must_change(&text("532")) && password_must_change(&text("773")));
        for other in ["52e", "533", "701", "775", "5320"] {
            assert!(!password_must_change(&text(other)), "{other}");
        }
        assert!(!password_must_change("Invalid credentials"));
    }

    #[test]
    fn ids_map_from_rids_within_the_range() {
        assert_eq!(mapped_id(200_000, 1104), Some(201_104));
        assert_eq!(rid_of(200_000, 201_104), Some(1104));
        assert_eq!(rid_of(200_000, 199_999), None);
        assert_eq!(mapped_id(200_000, 1 << 30), None);
    }

    #[test]
    fn unicode_pwd_is_quoted_utf16le() {
        assert_eq!(*unicode_pwd("pw"), [b'"', 0, b'p', 0, b'w', 0, b'"', 0]);
        assert_eq!(*unicode_pwd("é𝄞"), [b'"', 0, 0xe9, 0, 0x34, 0xd8, 0x1e, 0xdd, b'"', 0]);
    }
}
