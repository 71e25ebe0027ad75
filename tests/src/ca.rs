//! Certificates made per run with rcgen (ECDSA P-256): a CA, a server certificate it signs for
//! `IP:127.0.0.1` and `DNS:localhost` (and any DNS names asked for: [`TestPki::generate_for`]),
//! and an unrelated "wrong" CA that must not be trusted.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    date_time_ymd,
};

use crate::tempdir::{random_hex, write_file_mode};

/// PEM files written into a test's scratch directory.
#[derive(Debug, Clone)]
pub struct TestPki {
    /// The CA that signed the server certificate.
    pub ca_pem: PathBuf,
    /// The server certificate (leaf only).
    pub server_cert_pem: PathBuf,
    /// The server's private key, mode 0600.
    pub server_key_pem: PathBuf,
    /// A CA that signed nothing the server presents.
    pub wrong_ca_pem: PathBuf,
}

impl TestPki {
    /// Generates fresh keys and certificates and writes them into `dir` as `ca.pem`,
    /// `server.pem`, `server.key` and `wrong-ca.pem`.
    pub fn generate(dir: &Path) -> Result<Self> {
        TestPki::generate_for(dir, &[])
    }

    /// Like [`TestPki::generate`], with `dns_names` in the server certificate's
    /// subjectAltName as well (servers reached by name: `ldap1.example.org`).
    pub fn generate_for(dir: &Path, dns_names: &[&str]) -> Result<Self> {
        let run = random_hex(4)?;
        let (ca_cert, issuer) = new_ca(&format!("Lanyard test CA {run}"))?;
        let (wrong_cert, _) = new_ca(&format!("Lanyard wrong CA {run}"))?;

        let mut names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        names.extend(dns_names.iter().map(|name| (*name).to_owned()));
        let mut params = CertificateParams::new(names).context("server certificate names")?;
        params.distinguished_name.push(DnType::CommonName, "localhost");
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

/// A fixed, plainly valid window: rcgen's default ends in year 4096, which some TLS stacks
/// handle less well than a date this century.
fn set_validity(params: &mut CertificateParams) {
    params.not_before = date_time_ymd(2024, 1, 1);
    params.not_after = date_time_ymd(2099, 12, 31);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TempDir;

    #[test]
    fn writes_pem_files_and_keeps_the_key_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("pki").unwrap();
        let pki = TestPki::generate(dir.path()).unwrap();
        for path in [&pki.ca_pem, &pki.server_cert_pem, &pki.wrong_ca_pem] {
            let text = std::fs::read_to_string(path).unwrap();
            assert!(text.starts_with("-----BEGIN CERTIFICATE-----"), "{}", path.display());
        }
        let key = std::fs::read_to_string(&pki.server_key_pem).unwrap();
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
        let mode = std::fs::metadata(&pki.server_key_pem).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_ne!(std::fs::read(&pki.ca_pem).unwrap(), std::fs::read(&pki.wrong_ca_pem).unwrap());
    }

    /// openssl is the referee: the leaf verifies against the CA, not against the wrong CA, and
    /// carries both SANs.
    #[test]
    fn server_certificate_verifies_against_the_ca_only() {
        let dir = TempDir::new("pki").unwrap();
        let pki = TestPki::generate(dir.path()).unwrap();
        let verify = |ca: &Path| {
            std::process::Command::new("openssl")
                .arg("verify")
                .arg("-CAfile")
                .arg(ca)
                .arg(&pki.server_cert_pem)
                .output()
                .unwrap()
        };
        let good = verify(&pki.ca_pem);
        assert!(good.status.success(), "{}", String::from_utf8_lossy(&good.stderr));
        assert!(!verify(&pki.wrong_ca_pem).status.success());
        let text = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
            .arg(&pki.server_cert_pem)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains("IP Address:127.0.0.1") && text.contains("DNS:localhost"), "{text}");
    }

    #[test]
    fn dns_names_asked_for_join_the_server_certificate() {
        let dir = TempDir::new("pki").unwrap();
        let pki = TestPki::generate_for(dir.path(), &["ldap1.example.org", "ldap2.example.org"]).unwrap();
        let text = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
            .arg(&pki.server_cert_pem)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&text.stdout);
        for name in ["IP Address:127.0.0.1", "DNS:localhost", "DNS:ldap1.example.org", "DNS:ldap2.example.org"] {
            assert!(text.contains(name), "{name} missing: {text}");
        }
    }
}
