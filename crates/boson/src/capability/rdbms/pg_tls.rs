//! TLS for outbound PostgreSQL, over rustls: the server's certificate is checked against the
//! public (webpki) roots plus any CA the guest trusts through the 4.2.0 connection builder.
//!
//! When TLS is used follows the connection string's `sslmode`: `disable` never, `require`
//! always (a server without TLS is an error), `prefer` (the default) only when the guest gave a
//! CA — otherwise the connection is plain, as it always was in Boson. (libpq's `prefer` would
//! encrypt without checking the certificate; Boson does not do unchecked TLS.)

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use sha2::Digest as _;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::Socket;
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

/// CA certificates a guest added with `set-ca-root`.
#[derive(Debug)]
pub struct CaRoots {
    certs: Vec<CertificateDer<'static>>,
    /// Tells pooled connections made with different CAs apart.
    pub(super) fingerprint: String,
}

impl CaRoots {
    /// Parses one or more PEM certificates; each must be usable as a trust anchor.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("the CA certificate is not valid PEM: {e}"))?;
        if certs.is_empty() {
            return Err("the CA certificate holds no PEM CERTIFICATE block".into());
        }
        for cert in &certs {
            rustls::RootCertStore::empty()
                .add(cert.clone())
                .map_err(|e| format!("the CA certificate cannot be used as a root: {e}"))?;
        }
        let mut hash = sha2::Sha256::new();
        for cert in &certs {
            hash.update(cert.as_ref());
        }
        Ok(Self {
            certs,
            fingerprint: hex::encode(hash.finalize()),
        })
    }
}

/// Whether a connection with `mode` and, maybe, a guest CA uses TLS.
pub(super) fn uses_tls(mode: SslMode, ca: Option<&CaRoots>) -> bool {
    match mode {
        SslMode::Disable => false,
        SslMode::Require => true,
        _ => ca.is_some(),
    }
}

/// tokio-postgres's TLS hook: one rustls client configuration per connection.
#[derive(Clone)]
pub(super) struct MakeRustls(Arc<rustls::ClientConfig>);

impl MakeRustls {
    pub(super) fn new(ca: Option<&CaRoots>) -> Self {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        for cert in ca.map(|ca| ca.certs.as_slice()).unwrap_or_default() {
            // Checked in `CaRoots::from_pem`.
            let _ = roots.add(cert.clone());
        }
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Self(Arc::new(config))
    }
}

impl MakeTlsConnect<Socket> for MakeRustls {
    type Stream = RustlsStream;
    type TlsConnect = RustlsConnect;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, Self::Error> {
        Ok(RustlsConnect {
            config: self.0.clone(),
            name: ServerName::try_from(domain.to_string())?,
        })
    }
}

pub(super) struct RustlsConnect {
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
}

impl TlsConnect<Socket> for RustlsConnect {
    type Stream = RustlsStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        Box::pin(async move {
            let tls = tokio_rustls::TlsConnector::from(self.config)
                .connect(self.name, stream)
                .await?;
            Ok(RustlsStream(tls))
        })
    }
}

pub(super) struct RustlsStream(tokio_rustls::client::TlsStream<Socket>);

impl TlsStream for RustlsStream {
    /// No channel binding: SCRAM authenticates without `-PLUS`, as it does without TLS.
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl AsyncRead for RustlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for RustlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_roots_need_a_certificate() {
        assert!(CaRoots::from_pem("").is_err());
        assert!(CaRoots::from_pem("not a certificate").is_err());
        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(CaRoots::from_pem(garbage).is_err());
    }

    #[test]
    fn tls_follows_sslmode() {
        assert!(!uses_tls(SslMode::Disable, None));
        assert!(!uses_tls(SslMode::Prefer, None));
        assert!(uses_tls(SslMode::Require, None));
    }
}
