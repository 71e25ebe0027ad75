//! Frame decoding: any bytes from a peer are refused or decoded, never a panic, and a body is
//! never larger than the side's maximum. Also decodes the raw input as a body (most inputs
//! never get past the header) and checks that what decodes re-encodes to the same message.
#![no_main]

use lanyard_proto::frame::{self, MAX_REQUEST, MAX_RESPONSE};
use lanyard_proto::{Request, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for max in [MAX_REQUEST, MAX_RESPONSE] {
        if let Ok(body) = frame::read_body(&mut &data[..], max) {
            assert!(body.len() <= max, "a body of {} bytes passed a maximum of {max}", body.len());
            check::<Request>(&body, max);
            check::<Response>(&body, max);
        }
    }
    check::<Request>(data, MAX_REQUEST);
    check::<Response>(data, MAX_RESPONSE);
});

fn check<T>(body: &[u8], max: usize)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let Ok(message) = frame::decode::<T>(body) else { return };
    // A message decoded from at most `max` bytes re-encodes within `max` (postcard's encoding
    // is never longer than what it accepts) and decodes back to itself.
    let encoded = frame::encode(&message, max).expect("a decoded message re-encodes");
    let again = frame::read_body(&mut encoded.as_slice(), max).expect("a re-encoded frame reads back");
    assert_eq!(frame::decode::<T>(&again).expect("a re-encoded body decodes"), message);
}
