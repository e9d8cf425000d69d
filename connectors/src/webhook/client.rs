//! One endpoint's HTTP(S) client: hyper's pooled keep-alive client over rustls (the `ring`
//! provider), a timeout per attempt, and the classification of what came back.
//!
//! Trust: the public Mozilla roots (`webpki-roots`), or, with `ca_file`, only the CA
//! certificates of that PEM file. Redirects are never followed (a 3xx is dead-lettered:
//! fix the URL instead).

use super::retry::{classify_status, Outcome};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// At most this much of a response body is read (then dropped): enough to keep the
/// connection reusable for the usual short answers.
const RESPONSE_BODY_LIMIT: usize = 64 * 1024;

/// The `User-Agent` of every request.
const AGENT: &str = concat!("riskwatch/", env!("CARGO_PKG_VERSION"));

/// An endpoint's client. Cloning shares the connection pool.
#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    uri: http::Uri,
    timeout: Duration,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The rustls client config: `ring` only, TLS 1.2 and 1.3, trusting `ca_file`'s CAs or
/// else the public roots.
pub fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("ca_file \"{}\": {e}", path.display()))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("ca_file \"{}\": {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("ca_file \"{}\": {e}", path.display()))?;
            }
            if roots.is_empty() {
                return Err(format!(
                    "ca_file \"{}\" holds no certificate",
                    path.display()
                ));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl HttpClient {
    /// A client for `url` with a per-attempt `timeout` (connecting included), keeping up
    /// to `concurrency` idle connections.
    pub fn new(
        url: &str,
        timeout: Duration,
        concurrency: usize,
        ca_file: Option<&Path>,
    ) -> Result<HttpClient, String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("url: {e}"))?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        http.set_nodelay(true);
        http.set_keepalive(Some(Duration::from_secs(60)));
        let https = HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(ca_file)?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(concurrency)
            .build(https);
        Ok(HttpClient {
            client,
            uri,
            timeout,
        })
    }

    /// POSTs `body` with the three Standard Webhooks headers and classifies the result.
    pub async fn post(&self, id: &str, timestamp: i64, signature: &str, body: Bytes) -> Outcome {
        let request = http::Request::post(self.uri.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, AGENT)
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp)
            .header("webhook-signature", signature)
            .body(Full::new(body));
        let request = match request {
            Ok(r) => r,
            Err(_) => {
                return Outcome::Dead {
                    reason: "invalid_header".into(),
                }
            }
        };
        let exchange = async {
            let response = self.client.request(request).await?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            // Read (a bounded part of) the answer so the connection can be reused; its
            // content does not matter.
            let _ = Limited::new(response.into_body(), RESPONSE_BODY_LIMIT)
                .collect()
                .await;
            Ok::<_, hyper_util::client::legacy::Error>((status, retry_after))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => Outcome::Retry {
                reason: "timeout".into(),
                retry_after: None,
            },
            Ok(Err(e)) => classify_error(&e),
            Ok(Ok((status, retry_after))) => {
                classify_status(status, retry_after.as_deref(), SystemTime::now())
            }
        }
    }
}

/// A failed exchange: TLS errors are permanent (`tls:<detail>`), everything else (refused,
/// reset, DNS) transient.
fn classify_error(e: &hyper_util::client::legacy::Error) -> Outcome {
    if let Some(tls) = find_tls_error(e) {
        return Outcome::Dead {
            reason: format!("tls:{}", tls_detail(tls)),
        };
    }
    Outcome::Retry {
        reason: if e.is_connect() {
            "connect"
        } else {
            "connection"
        }
        .into(),
        retry_after: None,
    }
}

/// The rustls error in `e`'s source chain, looking inside `io::Error`s (whose `source()`
/// skips the error they wrap).
fn find_tls_error<'e>(e: &'e (dyn std::error::Error + 'static)) -> Option<&'e rustls::Error> {
    let mut current = Some(e);
    while let Some(err) = current {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        current = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

/// A fixed code for a rustls error.
fn tls_detail(e: &rustls::Error) -> &'static str {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => "unknown_issuer",
            C::Expired | C::ExpiredContext { .. } => "expired",
            C::NotValidYet | C::NotValidYetContext { .. } => "not_valid_yet",
            C::NotValidForName | C::NotValidForNameContext { .. } => "not_valid_for_name",
            C::Revoked => "revoked",
            C::BadSignature => "bad_signature",
            C::BadEncoding => "bad_encoding",
            _ => "invalid_certificate",
        },
        rustls::Error::NoCertificatesPresented => "no_certificate",
        rustls::Error::AlertReceived(_) => "alert_received",
        rustls::Error::InvalidMessage(_) => "invalid_message",
        _ => "handshake",
    }
}
