//! HTTPS on the proxy's own listener, for clients on other machines (`[proxy] tls_cert`,
//! `tls_key`): rustls, HTTP/2 and HTTP/1.1 offered by ALPN, served by hyper's server.

use std::path::Path;
use std::sync::Arc;

use tether_core::config::ProxyConfig;
use tokio_rustls::TlsAcceptor;

/// The listener's TLS, when the configuration asks for it; an error names the file and
/// the fix.
pub fn acceptor(config: &ProxyConfig) -> Result<Option<TlsAcceptor>, String> {
    let (cert, key) = match (&config.tls_cert, &config.tls_key) {
        (None, None) => return Ok(None),
        (Some(cert), Some(key)) => (cert, key),
        _ => {
            return Err(
                "[proxy] tls_cert and tls_key go together: set both (a PEM certificate chain and its private key), or neither"
                    .into(),
            );
        }
    };
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect())
        .map_err(|e| unreadable(cert, "a PEM certificate chain", &e))?;
    if chain.is_empty() {
        return Err(format!(
            "[proxy] tls_cert '{}' holds no certificate: give a PEM certificate chain",
            cert.display()
        ));
    }
    let private =
        PrivateKeyDer::from_pem_file(key).map_err(|e| unreadable(key, "a PEM private key", &e))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS cannot be set up: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| {
            format!(
                "[proxy] tls_cert '{}' and tls_key '{}' do not make a usable pair ({e}): give the key of that certificate",
                cert.display(),
                key.display()
            )
        })?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(server))))
}

fn unreadable(path: &Path, what: &str, e: &dyn std::fmt::Display) -> String {
    format!(
        "cannot read '{}' as {what} ({e}): check [proxy] tls_cert and tls_key",
        path.display()
    )
}
