//! Framing: `[version: u8][length: u32, big-endian][postcard body]`.
//!
//! The length is checked against the reader's maximum before a byte of the body is allocated,
//! so a hostile or confused peer cannot make either side reserve gigabytes.

use std::io::Read;

use serde::{Serialize, de::DeserializeOwned};
use zeroize::Zeroizing;

/// The layout version. Bumped only for an incompatible change; new enum variants are additive.
pub const VERSION: u8 = 1;

/// Version byte plus length.
pub const HEADER_LEN: usize = 5;

/// Largest request the agent reads. Requests are a name or an id (a password, later): tiny.
pub const MAX_REQUEST: usize = 64 * 1024;

/// Largest response a module reads: room for a group with a few hundred thousand members.
pub const MAX_RESPONSE: usize = 16 * 1024 * 1024;

/// Why a frame could not be read or written. Every variant means the same thing to the caller:
/// drop this connection; the peer is not speaking our protocol (or not this version of it).
#[derive(Debug)]
pub enum FrameError {
    /// The peer speaks another protocol version.
    Version(u8),
    /// The announced body is larger than this side accepts.
    TooLarge { len: usize, max: usize },
    /// The body is not a valid message.
    Decode(postcard::Error),
    /// The message could not be encoded (it is larger than the maximum, or not serializable).
    Encode(postcard::Error),
    /// The stream ended or failed mid-frame.
    Io(std::io::Error),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Version(v) => write!(f, "protocol version {v}, expected {VERSION}"),
            FrameError::TooLarge { len, max } => write!(f, "frame of {len} bytes exceeds {max}"),
            FrameError::Decode(e) => write!(f, "undecodable message: {e}"),
            FrameError::Encode(e) => write!(f, "message cannot be encoded: {e}"),
            FrameError::Io(e) => write!(f, "connection failed mid-frame: {e}"),
        }
    }
}

impl std::error::Error for FrameError {}

impl From<std::io::Error> for FrameError {
    fn from(e: std::io::Error) -> FrameError {
        FrameError::Io(e)
    }
}

/// Encodes `message` as one frame. The buffer is zeroized when dropped, and so is every buffer
/// it outgrew on the way ([`WipingVec`]), because a request may carry a [`crate::Secret`].
pub fn encode<T: Serialize>(message: &T, max: usize) -> Result<Zeroizing<Vec<u8>>, FrameError> {
    let mut out = WipingVec { bytes: Zeroizing::new(Vec::with_capacity(256)), max: HEADER_LEN + max };
    out.bytes.extend_from_slice(&[VERSION, 0, 0, 0, 0]);
    let mut out = postcard::serialize_with_flavor(message, out).map_err(|e| match e {
        postcard::Error::SerializeBufferFull => FrameError::TooLarge { len: max + 1, max },
        other => FrameError::Encode(other),
    })?;
    let len = out.len() - HEADER_LEN;
    let len32 = u32::try_from(len).map_err(|_| FrameError::TooLarge { len, max })?;
    out[1..HEADER_LEN].copy_from_slice(&len32.to_be_bytes());
    Ok(out)
}

/// A postcard output that never leaves a copy behind: when it must grow, it copies into a
/// larger buffer and wipes the old one (a plain `Vec` would free it with the bytes intact).
/// It also stops at `max` bytes, so an oversized message fails before it is fully built.
struct WipingVec {
    bytes: Zeroizing<Vec<u8>>,
    max: usize,
}

impl postcard::ser_flavors::Flavor for WipingVec {
    type Output = Zeroizing<Vec<u8>>;

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        let needed = self.bytes.len() + data.len();
        if needed > self.max {
            return Err(postcard::Error::SerializeBufferFull);
        }
        if needed > self.bytes.capacity() {
            let mut bigger = Zeroizing::new(Vec::with_capacity(needed.max(self.bytes.capacity() * 2).min(self.max)));
            bigger.extend_from_slice(&self.bytes);
            // Dropping the old Zeroizing<Vec> wipes it.
            self.bytes = bigger;
        }
        self.bytes.extend_from_slice(data);
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.try_extend(&[data])
    }

    fn finalize(self) -> postcard::Result<Self::Output> {
        Ok(self.bytes)
    }
}

/// Checks a header and returns the body length it announces.
pub fn parse_header(header: [u8; HEADER_LEN], max: usize) -> Result<usize, FrameError> {
    if header[0] != VERSION {
        return Err(FrameError::Version(header[0]));
    }
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(len)
}

/// Decodes a frame body.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    postcard::from_bytes(body).map_err(FrameError::Decode)
}

/// Reads one frame body (blocking), refusing anything larger than `max` before allocating.
pub fn read_body(reader: &mut impl Read, max: usize) -> Result<Zeroizing<Vec<u8>>, FrameError> {
    let mut header = [0u8; HEADER_LEN];
    reader.read_exact(&mut header)?;
    let len = parse_header(header, max)?;
    let mut body = Zeroizing::new(vec![0u8; len]);
    reader.read_exact(&mut body)?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        AgentStatus, Group, HomeDirectory, Invalidation, Lookup, PamContext, Passwd, Request, Response, Secret, Source,
        TracedAnswer,
    };

    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(message: T) {
        let frame = encode(&message, MAX_RESPONSE).unwrap();
        let body = read_body(&mut frame.as_slice(), MAX_RESPONSE).unwrap();
        let back: T = decode(&body).unwrap();
        assert_eq!(back, message);
    }

    fn context() -> PamContext {
        PamContext { service: "sshd".into(), rhost: "192.0.2.1".into(), tty: "ssh".into(), ruser: String::new() }
    }

    fn alice() -> Passwd {
        Passwd {
            name: "alice".into(),
            uid: 10001,
            gid: 10001,
            gecos: "Alice Ärger".into(),
            home: "/home/alice".into(),
            shell: "/bin/bash".into(),
        }
    }

    #[test]
    fn every_request_variant_round_trips() {
        for request in [
            Request::UserByName("alice".into()),
            Request::UserByUid(u32::MAX),
            Request::GroupByName("staff".into()),
            Request::GroupByGid(0),
            Request::GroupsOfUser("alice".into()),
            Request::EnumerateUsers,
            Request::EnumerateGroups,
            Request::Authenticate { user: "alice".into(), password: Secret::new(b"pw".to_vec()), context: context() },
            Request::CheckAccount { user: "alice".into(), context: context() },
            Request::ChangePassword {
                user: "alice".into(),
                old: Some(Secret::new(b"old".to_vec())),
                new: Secret::new(b"new".to_vec()),
                context: context(),
            },
            Request::ChangePassword {
                user: "bob".into(),
                old: None,
                new: Secret::new(b"n".to_vec()),
                context: context(),
            },
            Request::OpenSession { user: "alice".into(), context: PamContext::default() },
            Request::Invalidate(Invalidation::User("alice".into())),
            Request::Invalidate(Invalidation::Group("staff".into())),
            Request::Invalidate(Invalidation::All),
            Request::Status,
            Request::Metrics,
            Request::Trace(Lookup::UserByUid(10001)),
            Request::Trace(Lookup::GroupsOfUser("alice".into())),
            Request::ClearCache,
        ] {
            round_trip(request);
        }
    }

    #[test]
    fn every_response_variant_round_trips() {
        let group = Group { name: "staff".into(), gid: 50, members: vec!["alice".into(), "bob".into()] };
        for response in [
            Response::User(alice()),
            Response::Group(group.clone()),
            Response::GroupIds(vec![1, 2, 3]),
            Response::UserPage(vec![alice(), alice()]),
            Response::GroupPage(vec![group]),
            Response::EndOfPages,
            Response::NotFound,
            Response::Unavailable("directory down".into()),
            Response::Refused("not root".into()),
            Response::Authenticated { offline: true },
            Response::WrongPassword,
            Response::TooManyAttempts { retry_after_secs: 30 },
            Response::AccountOk { warning: Some("expires in 3 days".into()) },
            Response::AccountOk { warning: None },
            Response::AccountExpired("expired".into()),
            Response::PasswordExpired("too old".into()),
            Response::Denied("locked".into()),
            Response::PasswordChanged,
            Response::PasswordRejected("too short".into()),
            Response::SessionReady {
                home: Some(HomeDirectory { path: "/home/a".into(), uid: 1, gid: 2, mode: 0o700 }),
            },
            Response::SessionReady { home: None },
            Response::Invalidated,
            Response::Status(Box::new(AgentStatus {
                online: true,
                server: Some("ldap://x".into()),
                ..AgentStatus::default()
            })),
            Response::Metrics("lanyard_offline 0\n".into()),
            Response::Traced { answer: TracedAnswer::NotFound, source: Source::Disk { fetched_at: 1, stale: true } },
            Response::Traced { answer: TracedAnswer::GroupIds(vec![1, 2]), source: Source::Memory { age_secs: 3 } },
            Response::Cleared,
        ] {
            round_trip(response);
        }
    }

    #[test]
    fn a_length_over_the_maximum_is_refused_before_allocating() {
        let mut frame = vec![VERSION];
        frame.extend_from_slice(&u32::MAX.to_be_bytes());
        match read_body(&mut frame.as_slice(), MAX_REQUEST) {
            Err(FrameError::TooLarge { len, max }) => assert_eq!((len, max), (u32::MAX as usize, MAX_REQUEST)),
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[test]
    fn another_version_is_refused() {
        let frame = [VERSION + 1, 0, 0, 0, 0];
        assert!(matches!(read_body(&mut frame.as_slice(), MAX_REQUEST), Err(FrameError::Version(2))));
    }

    #[test]
    fn a_truncated_frame_is_an_io_error() {
        let frame = encode(&Request::UserByName("alice".into()), MAX_REQUEST).unwrap();
        let cut = &frame[..frame.len() - 1];
        assert!(matches!(read_body(&mut &cut[..], MAX_REQUEST), Err(FrameError::Io(_))));
    }

    #[test]
    fn garbage_bodies_are_decode_errors_not_panics() {
        for body in [&[0xffu8; 8][..], &[7u8], &[0u8, 0xff, 0xff, 0xff, 0xff, 0x0f]] {
            assert!(decode::<Request>(body).is_err(), "{body:?}");
        }
    }

    #[test]
    fn an_oversized_message_is_refused_at_encoding() {
        let request = Request::UserByName("a".repeat(MAX_REQUEST + 1));
        assert!(matches!(encode(&request, MAX_REQUEST), Err(FrameError::TooLarge { .. })));
    }

    #[test]
    fn a_large_message_grows_the_buffer_and_still_round_trips() {
        let members: Vec<String> = (0..5000).map(|i| format!("member{i:04}")).collect();
        round_trip(Response::Group(Group { name: "big".into(), gid: 1, members }));
    }

    /// Regression, found while fuzzing frame decoding: `Request::Trace(Box<Request>)` nested
    /// without a bound, one byte per level, and postcard recursed once per level, so a request
    /// of `MAX_REQUEST` bytes overflowed a 2 MiB stack and aborted the agent. `Trace` now holds
    /// a flat `Lookup`.
    #[test]
    fn a_deeply_nested_trace_is_refused_not_a_stack_overflow() {
        const TRACE: u8 = 14;
        const STATUS: u8 = 12;
        let mut body = vec![TRACE; MAX_REQUEST - 1];
        body.push(STATUS);
        let decoded = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || decode::<Request>(&body).is_ok())
            .unwrap()
            .join()
            .unwrap();
        assert!(!decoded, "a trace nested {} deep was accepted", MAX_REQUEST - 1);
    }

    #[test]
    fn a_secret_survives_a_frame() {
        let frame = encode(&Secret::new(b"pw".to_vec()), MAX_REQUEST).unwrap();
        let body = read_body(&mut frame.as_slice(), MAX_REQUEST).unwrap();
        assert_eq!(decode::<Secret>(&body).unwrap().expose(), b"pw");
    }
}
