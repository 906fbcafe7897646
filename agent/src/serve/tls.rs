//! TLS for `halo serve --tls-cert F --tls-key F`: rustls with the ring
//! provider (as halo's HTTP client), PEM files read once at start.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::commands::UserError;

/// An acceptor for the certificate chain in `cert` and the key in `key`.
pub fn acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| UserError(format!("--tls-cert {}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(UserError(format!(
            "--tls-cert {}: no certificate in it (PEM expected)",
            cert.display()
        ))
        .into());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| UserError(format!("--tls-key {}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| UserError(format!("--tls-cert/--tls-key: {e}")))?;
    let mut config = config;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
