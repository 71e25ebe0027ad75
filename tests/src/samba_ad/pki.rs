//! The DC's certificates: [`TestPki::generate_for`] (a per-run CA, ECDSA P-256, a wrong CA) with
//! the DC's DNS names in the server certificate. An agent that finds the DC through DNS SRV
//! records connects to the SRV target `dc1.example.org` and checks that name, not the IP;
//! referrals name the domain `example.org`. The key is 0600: Samba refuses one others can read.

use std::path::Path;

use anyhow::Result;

use super::data::{DC_FQDN, DNS_DOMAIN};
use crate::TestPki;

/// Writes `ca.pem`, `server.pem`, `server.key` and `wrong-ca.pem` into `dir`; the server
/// certificate names `127.0.0.1`, `localhost`, the DC's host name and the domain.
pub fn generate(dir: &Path) -> Result<TestPki> {
    TestPki::generate_for(dir, &[DC_FQDN, DNS_DOMAIN])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TempDir;

    /// openssl is the referee: the leaf verifies against the CA only and names the DC.
    #[test]
    fn server_certificate_names_the_dc_and_verifies_against_the_ca_only() {
        let dir = TempDir::new("samba-pki").unwrap();
        let pki = generate(dir.path()).unwrap();
        let openssl =
            |args: &[&str], path: &Path| std::process::Command::new("openssl").args(args).arg(path).output().unwrap();
        let ca = pki.ca_pem.to_string_lossy().into_owned();
        assert!(openssl(&["verify", "-CAfile", &ca], &pki.server_cert_pem).status.success());
        let wrong = pki.wrong_ca_pem.to_string_lossy().into_owned();
        assert!(!openssl(&["verify", "-CAfile", &wrong], &pki.server_cert_pem).status.success());
        let text = openssl(&["x509", "-noout", "-ext", "subjectAltName", "-in"], &pki.server_cert_pem);
        let text = String::from_utf8_lossy(&text.stdout);
        for name in ["IP Address:127.0.0.1", "DNS:localhost", "DNS:dc1.example.org", "DNS:example.org"] {
            assert!(text.contains(name), "{name} missing: {text}");
        }
        let (mode, _) = crate::tempdir::mode_and_owner(&pki.server_key_pem).unwrap();
        assert_eq!(mode, 0o600);
    }
}
