//! wss with certificates made in the test: trusted through the extra-roots config, pinned, and
//! the TLS failures each named for the check that failed.

use steadyws::{ConnectionError, Event, Socket, State};
use steadyws_server::{RunningServer, ServerConfig, TlsFiles, start};
use steadyws_tests::pki::{Leaf, TestCa};
use steadyws_tests::support::*;

async fn wss_server(leaf: &Leaf, tag: &str) -> RunningServer {
    let dir = std::env::temp_dir().join(format!("steadyws-tls-{}-{tag}", std::process::id()));
    let (cert, key) = leaf.write_to(&dir);
    start(ServerConfig {
        tls: Some(TlsFiles { cert, key }),
        ..ServerConfig::default()
    })
    .await
    .unwrap()
}

fn wss_url(server: &RunningServer, host: &str) -> String {
    format!("wss://{host}:{}/ws", server.addr().port())
}

#[tokio::test]
async fn wss_works_with_the_ca_in_extra_roots_and_a_matching_pin() {
    let ca = TestCa::new();
    let leaf = ca.leaf(&["localhost", "127.0.0.1"]);
    let server = wss_server(&leaf, "ok").await;
    let mut config = quick(&wss_url(&server, "localhost"));
    config.extra_root_certs_pem = vec![ca.cert_pem.clone()];
    config.pinned_spki_sha256 = vec![steadyws::spki_sha256_hex(&leaf.cert_der).unwrap()];
    let socket = Socket::new(config).unwrap();
    socket.connect();
    let id = socket.send(r#"{"secure":true}"#).unwrap();
    wait_for(&socket, WAIT, "ack over wss", |e| {
        matches!(e, Event::Acked(a) if *a == id).then_some(())
    })
    .await;
    assert_eq!(socket.state(), State::Open);
    server.shutdown().await;
}

#[tokio::test]
async fn an_unknown_ca_says_to_add_it_to_extra_roots() {
    let ca = TestCa::new();
    let server = wss_server(&ca.leaf(&["localhost"]), "unknown-ca").await;
    let socket = Socket::new(quick(&wss_url(&server, "localhost"))).unwrap();
    socket.connect();
    let err = next_error(&socket).await;
    assert!(matches!(err, ConnectionError::Tls { .. }), "{err:?}");
    assert!(
        err.to_string().contains("unknown authority")
            && err.to_string().contains("extra_root_certs_pem"),
        "{err}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_wrong_name_says_the_certificate_does_not_cover_it() {
    let ca = TestCa::new();
    let server = wss_server(&ca.leaf(&["some-other-host.test"]), "wrong-name").await;
    let mut config = quick(&wss_url(&server, "localhost"));
    config.extra_root_certs_pem = vec![ca.cert_pem.clone()];
    let socket = Socket::new(config).unwrap();
    socket.connect();
    let err = next_error(&socket).await;
    assert!(matches!(err, ConnectionError::Tls { .. }), "{err:?}");
    assert!(
        err.to_string().contains("not valid for this host name"),
        "{err}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_pin_mismatch_fails_the_tls_handshake() {
    let ca = TestCa::new();
    let leaf = ca.leaf(&["localhost"]);
    let server = wss_server(&leaf, "pin").await;
    let mut config = quick(&wss_url(&server, "localhost"));
    config.extra_root_certs_pem = vec![ca.cert_pem.clone()];
    let other_key = ca.leaf(&["localhost"]);
    config.pinned_spki_sha256 = vec![steadyws::spki_sha256_hex(&other_key.cert_der).unwrap()];
    let socket = Socket::new(config).unwrap();
    socket.connect();
    let err = next_error(&socket).await;
    let presented = steadyws::spki_sha256_hex(&leaf.cert_der).unwrap();
    assert!(matches!(err, ConnectionError::Tls { .. }), "{err:?}");
    assert!(
        err.to_string().contains("certificate pin mismatch")
            && err.to_string().contains(&presented),
        "{err}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn wss_to_a_plain_ws_port_is_explained() {
    let server = start(ServerConfig::default()).await.unwrap();
    let socket = Socket::new(quick(&format!(
        "wss://127.0.0.1:{}/ws",
        server.addr().port()
    )))
    .unwrap();
    socket.connect();
    let err = next_error(&socket).await;
    assert!(
        matches!(
            err,
            ConnectionError::Tls { .. } | ConnectionError::Io { .. }
        ),
        "{err:?}"
    );
    server.shutdown().await;
}
