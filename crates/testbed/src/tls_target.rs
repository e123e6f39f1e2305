//! The target site over HTTPS, with a self-signed certificate made fresh for each instance.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use rcgen::CertifiedKey;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::in_process::InProcessServer;
use crate::pages::{self, PageStats};

/// The pages of [`crate::TargetServer`] over HTTPS (HTTP/1.1 only, TLS 1.2 and 1.3) on
/// 127.0.0.1, with a fresh self-signed certificate whose subject alternative names are
/// `localhost` and `127.0.0.1`. A client must trust [`TlsTargetServer::cert_der`] (or
/// [`TlsTargetServer::cert_pem`]) to connect.
///
/// Uses rustls with the ring provider passed explicitly, so no process-wide provider is
/// installed. Stops when dropped, open connections included. Must be started inside a tokio
/// runtime.
#[must_use = "the server stops as soon as it is dropped"]
pub struct TlsTargetServer {
    server: InProcessServer,
    stats: Arc<PageStats>,
    cert_pem: String,
    cert_der: Vec<u8>,
}

impl TlsTargetServer {
    /// Makes a certificate, binds a free port on 127.0.0.1 and starts serving.
    ///
    /// # Errors
    /// When no port of 127.0.0.1 can be bound, or (not expected) when rcgen cannot make the
    /// certificate or rustls refuses it; the error then says which.
    pub async fn start() -> io::Result<Self> {
        let CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .map_err(|error| io::Error::other(format!("cannot make a self-signed certificate: {error}")))?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(signing_key.serialize_der()));
        let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .and_then(|builder| builder.with_no_client_auth().with_single_cert(vec![cert.der().clone()], key))
            .map_err(|error| io::Error::other(format!("rustls refuses the TLS configuration: {error}")))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));

        let stats = Arc::new(PageStats::default());
        let shared = Arc::clone(&stats);
        let server = InProcessServer::start(move |tcp| {
            let acceptor = acceptor.clone();
            let stats = Arc::clone(&shared);
            async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    pages::serve_pages(tls, stats).await;
                }
            }
        })
        .await?;
        Ok(TlsTargetServer { server, stats, cert_pem: cert.pem(), cert_der: cert.der().to_vec() })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `https://127.0.0.1:PORT` (the certificate names the IP address).
    pub fn url(&self) -> String {
        format!("https://{}", self.addr())
    }

    /// `https://localhost:PORT`. It listens on 127.0.0.1 only: a client that resolves
    /// `localhost` to `::1` first must fall back to 127.0.0.1 (reqwest does).
    pub fn localhost_url(&self) -> String {
        format!("https://localhost:{}", self.addr().port())
    }

    /// The certificate in PEM, for a client to trust.
    pub fn cert_pem(&self) -> String {
        self.cert_pem.clone()
    }

    /// The certificate in DER, for a client to trust.
    pub fn cert_der(&self) -> Vec<u8> {
        self.cert_der.clone()
    }

    /// How many requests it has answered (responses written completely).
    pub fn requests_served(&self) -> usize {
        self.stats.answered()
    }

    /// How many well-formed requests for `path` (without the query) have arrived.
    pub fn requests_to(&self, path: &str) -> usize {
        self.stats.requests_to(path)
    }

    /// How many TCP connections it has accepted (handshakes that failed included).
    pub fn connections(&self) -> usize {
        self.server.connections()
    }
}
