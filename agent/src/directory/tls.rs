//! The TLS client configuration: ring as the one crypto provider (NOTES.md: a second provider
//! makes ldap3 panic), TLS 1.2 and 1.3, and certificates verified against the configured CA or
//! the system's roots, host name included.

use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};

use crate::config::Trust;

pub fn client_config(trust: &Trust) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    match trust {
        Trust::CaFile { path, certificates } => {
            for certificate in certificates {
                roots
                    .add(certificate.clone())
                    .map_err(|e| format!("{}: a certificate cannot be used as a root: {e}", path.display()))?;
            }
        }
        Trust::System => {
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::warn!("loading the system's CA certificates: {error}");
            }
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err("no system CA certificates found; set directory.ca_file".into());
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
