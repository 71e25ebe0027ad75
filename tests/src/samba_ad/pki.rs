//! The DC's certificates: like [`TestPki::generate`] (a per-run CA, ECDSA P-256, a wrong CA), with
//! the DC's DNS names added to the server certificate. An agent that finds the DC through DNS SRV
//! records connects to the SRV target `dc1.example.org` and checks that name, not the IP;
//! referrals name the domain `example.org`. `TestPki::generate` names only `127.0.0.1` and
//! `localhost` and keeps its CA key private, hence this small copy of it.

use std::path::Path;

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    date_time_ymd,
};

use super::data::{DC_FQDN, DNS_DOMAIN};
use crate::TestPki;
use crate::tempdir::{random_hex, write_file_mode};

/// Every name the server certificate carries: the loopback IP (`uri_starttls`), `localhost`,
/// the DC's host name (SRV targets) and the domain (referrals, its A record).
pub const SERVER_NAMES: [&str; 4] = ["127.0.0.1", "localhost", DC_FQDN, DNS_DOMAIN];

/// Writes `ca.pem`, `server.pem`, `server.key` (0600: Samba refuses a key others can read) and
/// `wrong-ca.pem` into `dir`.
pub fn generate(dir: &Path) -> Result<TestPki> {
    let run = random_hex(4)?;
    let (ca_cert, issuer) = new_ca(&format!("Lanyard Samba test CA {run}"))?;
    let (wrong_cert, _) = new_ca(&format!("Lanyard Samba wrong CA {run}"))?;

    let names: Vec<String> = SERVER_NAMES.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names).context("server certificate names")?;
    params.distinguished_name.push(DnType::CommonName, DC_FQDN);
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    set_validity(&mut params);
    let server_key = KeyPair::generate().context("server key")?;
    let server_cert = params.signed_by(&server_key, &issuer).context("signing the server certificate")?;

    let pki = TestPki {
        ca_pem: dir.join("ca.pem"),
        server_cert_pem: dir.join("server.pem"),
        server_key_pem: dir.join("server.key"),
        wrong_ca_pem: dir.join("wrong-ca.pem"),
    };
    write_file_mode(&pki.ca_pem, ca_cert.pem().as_bytes(), 0o644)?;
    write_file_mode(&pki.wrong_ca_pem, wrong_cert.pem().as_bytes(), 0o644)?;
    write_file_mode(&pki.server_cert_pem, server_cert.pem().as_bytes(), 0o644)?;
    write_file_mode(&pki.server_key_pem, server_key.serialize_pem().as_bytes(), 0o600)?;
    Ok(pki)
}

fn new_ca(common_name: &str) -> Result<(rcgen::Certificate, Issuer<'static, KeyPair>)> {
    let mut params = CertificateParams::new(Vec::new()).context("CA parameters")?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.distinguished_name.push(DnType::OrganizationName, "Lanyard tests");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    set_validity(&mut params);
    let key = KeyPair::generate().context("CA key")?;
    let cert = params.self_signed(&key).context("self-signing the CA")?;
    Ok((cert, Issuer::new(params, key)))
}

/// The same fixed window as `TestPki` (a date this century, not rcgen's year 4096).
fn set_validity(params: &mut CertificateParams) {
    params.not_before = date_time_ymd(2024, 1, 1);
    params.not_after = date_time_ymd(2099, 12, 31);
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
