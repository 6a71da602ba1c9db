//! TLS client settings shared by the sinks: rustls with the ring provider
//! (installed as the process default for the HTTP and SMTP clients),
//! trusting the system's roots plus the certificates of an optional
//! `ca_file` (PEM), for private CAs and tests.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use crate::error::SinkError;

/// Installs rustls' ring provider as the process default (once; a provider
/// installed earlier by someone else is kept). reqwest and lettre use it.
pub(crate) fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Reads every certificate of a PEM file.
pub(crate) fn read_ca_file(
    sink: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, SinkError> {
    let pem = std::fs::read(path).map_err(|e| SinkError::Io {
        sink,
        source: std::io::Error::new(e.kind(), format!("ca_file {}: {e}", path.display())),
    })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SinkError::Config {
            sink,
            msg: format!("ca_file {}: {e}", path.display()),
        })?;
    if certs.is_empty() {
        return Err(SinkError::Config {
            sink,
            msg: format!("ca_file {}: no PEM certificate in it", path.display()),
        });
    }
    Ok(certs)
}

/// A client config trusting the system roots and `extra`.
pub(crate) fn client_config(
    sink: &'static str,
    extra: &[CertificateDer<'static>],
) -> Result<Arc<ClientConfig>, SinkError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(sink, added, "system trust anchors loaded");
    for c in extra {
        roots.add(c.clone()).map_err(|e| SinkError::Config {
            sink,
            msg: format!("ca_file: {e}"),
        })?;
    }
    if roots.is_empty() {
        return Err(SinkError::Config {
            sink,
            msg: "no trusted CA certificates (system store empty and no ca_file)".into(),
        });
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SinkError::Config {
            sink,
            msg: format!("TLS: {e}"),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}
