//! HTTPS: a round trip to a server whose certificate a private CA (rcgen) signed, trusted
//! through `ca_file`; the same server without `ca_file` is a permanent `tls:` dead letter.

use super::super::dispatch::Dispatcher;
use super::super::receiver::Chaos;
use super::*;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA (PEM) and a server certificate it signed for 127.0.0.1, with its key.
fn private_ca() -> (String, CertificateDer<'static>, PrivateKeyDer<'static>) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "riskwatch test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    (ca.pem(), cert.der().clone(), key)
}

/// Serves the receiver kit over TLS on 127.0.0.1:0.
async fn serve_tls(
    receiver: &Receiver,
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = receiver.router();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let service = TowerToHyperService::new(router.clone());
            tokio::spawn(async move {
                // An untrusting client aborts the handshake: nothing to serve then.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_round_trip_with_a_private_ca_and_untrusted_certificates_dead_letter() {
    let (ca_pem, cert, key) = private_ca();
    let receiver = Receiver::new(Verifier::new(SECRET).unwrap(), None, Chaos::default()).unwrap();
    let addr = serve_tls(&receiver, cert, key).await;
    let t = temp_state("tls");
    let ca_file = t.path.with_extension("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();

    let mut trusted = endpoint_config("trusted", &format!("https://{addr}/hooks"));
    trusted.ca_file = Some(ca_file.display().to_string());
    let untrusted = endpoint_config("untrusted", &format!("https://{addr}/hooks"));
    let entries: Vec<_> = (1..=3).map(|s| entry("trusted", "c-1", s, s)).collect();
    stage_all(&t.outbox, &entries);
    stage_all(&t.outbox, &[entry("untrusted", "a-1", 0, 1)]);
    let dispatcher = Dispatcher::new(
        t.outbox.clone(),
        vec![endpoint(&trusted), endpoint(&untrusted)],
    );
    dispatcher.run_until_drained().await.unwrap();
    let _ = std::fs::remove_file(&ca_file);

    let ids: Vec<String> = receiver.recorded().into_iter().map(|a| a.id).collect();
    assert_eq!(ids, ["c-1:1", "c-1:2", "c-1:3"]);
    let dead = t.outbox.dead_letters().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].entry.endpoint, "untrusted");
    assert_eq!(dead[0].reason, "tls:unknown_issuer");
    let snap = dispatcher.counters().snapshot();
    assert_eq!((snap[0].delivered, snap[0].dead), (3, 0));
    assert_eq!(
        (snap[1].retried, snap[1].dead),
        (0, 1),
        "a TLS error is permanent"
    );
}

#[test]
fn a_ca_file_without_certificates_is_refused() {
    let path = std::env::temp_dir().join(format!("riskwatch-empty-ca-{}.pem", std::process::id()));
    std::fs::write(&path, "not a certificate\n").unwrap();
    let err = super::super::client::tls_config(Some(&path)).unwrap_err();
    let _ = std::fs::remove_file(&path);
    assert!(err.contains("no certificate"), "{err}");
}
