//! The receivers over TLS (rustls) with a certificate from a test CA made by `rcgen`: a client
//! trusting the CA is served (`http` 202, OTLP/HTTP 200, OTLP/gRPC over HTTP/2), a client that
//! does not trust it and a plain-HTTP client are refused, and nothing they sent is kept.

use super::{mcp_export, start};
use crate::util::{read_json_lines, record};
use aiwarden::sources::receiver::{Listener, ServerTlsConfig};
use prost::Message;
use serde_json::{json, Value};
use std::path::PathBuf;

/// A CA, and a server certificate for 127.0.0.1 and localhost it signed, as PEM files.
struct Certificates {
    ca: reqwest::Certificate,
    tls: ServerTlsConfig,
    _dir: tempfile::TempDir,
}

impl Certificates {
    fn new() -> Certificates {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, pem: String| -> PathBuf {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };
        let tls = ServerTlsConfig {
            cert_file: write("server.crt", leaf.pem()),
            key_file: write("server.key", leaf_key.serialize_pem()),
        };
        Certificates {
            ca: reqwest::Certificate::from_pem(ca_cert.pem().as_bytes()).unwrap(),
            tls,
            _dir: dir,
        }
    }

    /// A client that trusts only the test CA.
    fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(self.ca.clone())
            .build()
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_receiver_over_tls_serves_a_trusting_client_and_refuses_plain_http() {
    use aiwarden::sources::http::{run_on, HttpSourceConfig};
    let certificates = Certificates::new();
    let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), Some(&certificates.tls))
        .await
        .unwrap();
    let address = listener.local_addr().unwrap();
    let config: HttpSourceConfig = toml::from_str(&format!(
        "listen = \"{address}\"\nauth = {{ tokens = [\"t0ken-tls\"] }}\n\
         tls = {{ cert_file = {:?}, key_file = {:?} }}\n",
        certificates.tls.cert_file, certificates.tls.key_file
    ))
    .unwrap();
    let running = start(move |context| Box::pin(run_on(config, listener, context)));
    let body = |id: &str| {
        format!(
            "{}\n",
            record(id, "2026-11-23T10:00:00Z", "alice", "s1", json!({}))
        )
    };

    for (name, client) in [("localhost", "localhost"), ("address", "127.0.0.1")] {
        let answer = certificates
            .client()
            .post(format!("https://{client}:{}/v1/events", address.port()))
            .bearer_auth("t0ken-tls")
            .header("content-type", "application/x-ndjson")
            .body(body(&format!("tls-{name}")))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 202, "{name}");
        assert_eq!(
            serde_json::from_slice::<Value>(&answer.bytes().await.unwrap()).unwrap(),
            json!({"accepted": 1})
        );
    }

    let plain = reqwest::Client::new()
        .post(format!("http://{address}/v1/events"))
        .bearer_auth("t0ken-tls")
        .header("content-type", "application/x-ndjson")
        .body(body("plain"))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP on a TLS port: {plain:?}");
    let untrusting = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .build()
        .unwrap()
        .post(format!("https://{address}/v1/events"))
        .bearer_auth("t0ken-tls")
        .header("content-type", "application/x-ndjson")
        .body(body("untrusted"))
        .send()
        .await;
    assert!(
        untrusting.is_err(),
        "a client that does not trust the CA: {untrusting:?}"
    );

    let ids: Vec<Value> = read_json_lines(&running.events())
        .iter()
        .map(|e| e["event_id"].clone())
        .collect();
    assert_eq!(ids, [json!("tls-localhost"), json!("tls-address")]);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_over_tls_serves_http_protobuf_and_grpc() {
    use aiwarden::sources::otlp::{run_on, OtlpSourceConfig};
    let certificates = Certificates::new();
    let bind = || Listener::bind("127.0.0.1:0".parse().unwrap(), Some(&certificates.tls));
    let (http, grpc) = (bind().await.unwrap(), bind().await.unwrap());
    let (http_port, grpc_port) = (
        http.local_addr().unwrap().port(),
        grpc.local_addr().unwrap().port(),
    );
    let config: OtlpSourceConfig = toml::from_str("auth = { tokens = [\"otlp-tls\"] }").unwrap();
    let running = start(move |context| Box::pin(run_on(config, Some(http), Some(grpc), context)));
    let client = certificates.client();

    let answer = client
        .post(format!("https://localhost:{http_port}/v1/logs"))
        .bearer_auth("otlp-tls")
        .header("content-type", "application/x-protobuf")
        .body(mcp_export("s-tls-http", 2).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.headers()["content-type"],
        "application/x-protobuf",
        "answered in the request's encoding"
    );

    // A unary gRPC call spoken over HTTP/2 (negotiated by ALPN): a length-prefixed message.
    let message = mcp_export("s-tls-grpc", 3).encode_to_vec();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(&message);
    let grpc_call = |token: &'static str| {
        client
            .post(format!(
                "https://localhost:{grpc_port}/opentelemetry.proto.collector.logs.v1.LogsService/Export"
            ))
            .version(reqwest::Version::HTTP_2)
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("authorization", format!("Bearer {token}"))
            .body(framed.clone())
            .send()
    };
    // A refusal is a trailers-only answer: the status is in the headers.
    let refused = grpc_call("wrong-token").await.unwrap();
    assert_eq!(refused.version(), reqwest::Version::HTTP_2);
    assert_eq!(refused.headers()["grpc-status"], "16", "UNAUTHENTICATED");
    let accepted = grpc_call("otlp-tls").await.unwrap();
    assert_eq!(accepted.status(), 200);
    assert_eq!(accepted.headers()["content-type"], "application/grpc");
    let reply = accepted.bytes().await.unwrap();
    assert_eq!(reply[0], 0, "an uncompressed ExportLogsServiceResponse");

    let events = read_json_lines(&running.events());
    let in_session = |session: &str| events.iter().filter(|e| e["session_id"] == session).count();
    assert_eq!(in_session("s-tls-http"), 2);
    assert_eq!(
        in_session("s-tls-grpc"),
        3,
        "delivered before the gRPC answer"
    );

    let plain = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{http_port}/v1/logs"))
        .header("content-type", "application/x-protobuf")
        .body(mcp_export("s-plain", 1).encode_to_vec())
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP on a TLS port: {plain:?}");
    assert!(!read_json_lines(&running.events())
        .iter()
        .any(|e| e["session_id"] == "s-plain"));
    running.stop().await;
}
