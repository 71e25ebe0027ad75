//! [`Secret`]: how a credential travels through Lanyard.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

/// A password or other credential. Its `Debug` is redacted, it is zeroized when dropped, and it
/// has no `Display`, so it cannot end up in a log line by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(Zeroizing::new(bytes))
    }

    /// The credential itself; use it where it is needed and nowhere else.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        // Borrowing from the frame buffer (which is itself zeroized) avoids a second copy.
        let bytes: &[u8] = Deserialize::deserialize(deserializer)?;
        Ok(Secret::new(bytes.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_secret() {
        let secret = Secret::new(b"hunter2".to_vec());
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
    }

    #[test]
    fn secret_round_trips_through_postcard() -> Result<(), postcard::Error> {
        let secret = Secret::new(b"p\xc3\xa4ss".to_vec());
        let bytes = postcard::to_allocvec(&secret)?;
        let back: Secret = postcard::from_bytes(&bytes)?;
        assert_eq!(back.expose(), secret.expose());
        Ok(())
    }
}
