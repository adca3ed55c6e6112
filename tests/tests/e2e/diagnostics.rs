//! Each failure from the seed's checklist, produced for real, with the typed error and hint.

use std::time::Duration;

use steadyws::{ConnectionError, Event, Socket, SocketConfig, State, UrlError};
use steadyws_server::{ServerConfig, start};
use steadyws_tests::support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[test]
fn http_urls_are_refused_at_construction_naming_the_ws_form() {
    let err = Socket::new(SocketConfig::new("http://127.0.0.1:8080/chat"))
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "the URL's scheme must be ws or wss, not \"http\": use ws://127.0.0.1:8080/chat"
    );
    assert!(matches!(
        err,
        steadyws::Error::Config(steadyws::ConfigError::Url(UrlError::WrongScheme { .. }))
    ));
}

#[tokio::test]
async fn nothing_listening_is_refused_naming_host_and_port() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let socket = Socket::new(quick(&format!("ws://127.0.0.1:{port}/ws"))).unwrap();
    socket.connect();
    let (retrying, err) = next_failure(&socket).await;
    assert_eq!(
        err,
        ConnectionError::Refused {
            addr: format!("127.0.0.1:{port}")
        }
    );
    assert!(
        err.to_string()
            .contains("is the server running and listening there?"),
        "{err}"
    );
    assert!(matches!(retrying, State::Reconnecting { attempt: 2, .. }));
}

#[tokio::test]
async fn a_plain_http_server_gets_the_non_101_hint() {
    // Answers every request with 200 OK, like a static file server that cannot upgrade.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut request = [0u8; 2048];
            let _ = stream.read(&mut request).await;
            let _ = stream
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
                )
                .await;
        }
    });
    let socket = Socket::new(quick(&format!("ws://{addr}/ws"))).unwrap();
    socket.connect();
    let err = next_error(&socket).await;
    assert_eq!(
        err,
        ConnectionError::Handshake {
            status: 200,
            retry_after: None
        }
    );
    assert!(
        err.to_string()
            .contains("`Upgrade: websocket` / `Connection: Upgrade`"),
        "{err}"
    );
    server.abort();
}

#[tokio::test]
async fn a_listener_that_never_answers_times_out_connecting() {
    // Accepts TCP and then says nothing: the "onopen never fires" / stuck CONNECTING case.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    let mut config = quick(&format!("ws://{addr}/ws"));
    config.engine.connect_timeout = Duration::from_millis(700);
    let socket = Socket::new(config).unwrap();
    socket.connect();
    let started = std::time::Instant::now();
    let err = next_error(&socket).await;
    assert_eq!(
        err,
        ConnectionError::ConnectTimeout {
            after: Duration::from_millis(700)
        }
    );
    assert!(
        started.elapsed() >= Duration::from_millis(650),
        "{:?}",
        started.elapsed()
    );
    assert!(
        err.to_string().contains("may not answer the Upgrade"),
        "{err}"
    );
    held.abort();
}

#[tokio::test]
async fn an_unresolvable_host_is_a_dns_error() {
    let socket = Socket::new(quick("ws://steadyws-test.invalid/ws")).unwrap();
    socket.connect();
    let err = next_error(&socket).await;
    assert!(
        matches!(&err, ConnectionError::Dns { host, .. } if host == "steadyws-test.invalid"),
        "{err:?}"
    );
    assert!(err.to_string().contains("cannot resolve host"), "{err}");
}

#[tokio::test]
async fn overload_answers_503_and_the_retry_after_is_honoured() {
    let server = start(ServerConfig::default()).await.unwrap();
    server.set_overloaded(Duration::from_secs(60), Duration::from_secs(7));
    let socket = Socket::new(quick(&server.url())).unwrap();
    socket.connect();
    let (state, err) = next_failure(&socket).await;
    assert_eq!(
        err,
        ConnectionError::Handshake {
            status: 503,
            retry_after: Some(Duration::from_secs(7))
        }
    );
    assert_eq!(
        state,
        State::Reconnecting {
            attempt: 2,
            retry_in: Duration::from_secs(7)
        }
    );
    server.shutdown().await;
}

#[tokio::test]
async fn an_unknown_path_is_404_and_fatal() {
    let server = start(ServerConfig::default()).await.unwrap();
    let socket = Socket::new(quick(&format!("ws://{}/nope", server.addr()))).unwrap();
    socket.connect();
    let state = wait_for(&socket, WAIT, "Failed", |e| match e {
        Event::StateChanged {
            state: s @ State::Failed { .. },
            ..
        } => Some(s.clone()),
        _ => None,
    })
    .await;
    assert!(
        state.to_string().contains("HTTP 404")
            && state.to_string().contains("check the URL's path"),
        "{state}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn an_oversized_inbound_message_is_a_typed_error_and_retries_back_off() {
    let server = start(ServerConfig::default()).await.unwrap();
    let mut config = quick(&server.url());
    config.max_message_size = 1024;
    let socket = Socket::new(config).unwrap();
    socket.connect();
    wait_for(&socket, WAIT, "Open", |e| {
        matches!(
            e,
            Event::StateChanged {
                state: State::Open,
                ..
            }
        )
        .then_some(())
    })
    .await;
    server
        .publish(&format!("\"{}\"", "x".repeat(4096)))
        .unwrap();
    let err = next_error(&socket).await;
    assert_eq!(err, ConnectionError::MessageTooLarge { max: 1024 });
    assert!(err.to_string().contains("raise the limit"), "{err}");
    // The server replays the same message on every reconnect, so with mismatched limits the
    // socket cannot make progress; it must keep retrying with growing delays, not spin.
    let events = steadyws_tests::support::collect_for(&socket, Duration::from_secs(3)).await;
    let failures = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::StateChanged { cause, .. }
                    if matches!(cause.problem(), Some(ConnectionError::MessageTooLarge { .. }))
            )
        })
        .count();
    assert!(
        (2..=8).contains(&failures),
        "{failures} failures in 3 s: {events:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn bad_frames_from_the_client_get_error_frames_not_a_crash() {
    // The reference server's side of bad input: a raw client sends garbage to the envelope endpoint.
    let server = start(ServerConfig::default()).await.unwrap();
    let mut config = SocketConfig::raw(server.url());
    config.engine.backoff.initial = Duration::from_millis(100);
    let socket = Socket::new(config).unwrap();
    socket.connect();
    for bad in [
        "not json",
        r#"{"type":"shout"}"#,
        r#"{"type":"msg","data":1}"#,
    ] {
        socket.send_text(bad).unwrap();
    }
    socket.send_binary(&[1, 2, 3]).unwrap();
    let mut codes = Vec::new();
    while codes.len() < 4 {
        let text = wait_for(&socket, WAIT, "error frame", |e| match e {
            Event::Message(m) => match &m.data {
                steadyws::Payload::Text(t) if t.contains(r#""type":"error""#) => Some(t.clone()),
                _ => None,
            },
            _ => None,
        })
        .await;
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        codes.push(value["code"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        codes,
        [
            "bad_json",
            "unknown_type",
            "bad_message",
            "binary_unsupported"
        ]
    );
    assert_eq!(server.connections(), 1, "still connected");
    server.shutdown().await;
}

/// Headers from an app's provider that panics.
struct PanickingHeaders;

impl steadyws::HeadersProvider for PanickingHeaders {
    fn headers(&self, _after_auth_failure: bool) -> Vec<(String, String)> {
        panic!("token store unavailable");
    }
}

#[tokio::test]
async fn a_panic_in_a_connection_task_is_a_typed_error_not_a_silent_timeout() {
    let server = start(ServerConfig::default()).await.unwrap();
    let mut config = quick(&server.url());
    config.headers_provider = Some(std::sync::Arc::new(PanickingHeaders));
    let socket = Socket::new(config).unwrap();
    socket.connect();
    let started = std::time::Instant::now();
    for _ in 0..2 {
        let (state, error) = next_failure(&socket).await;
        assert!(matches!(state, State::Reconnecting { .. }), "{state:?}");
        let ConnectionError::Io { detail } = &error else {
            panic!("{error:?}");
        };
        assert!(
            detail.contains("the connection task panicked (token store unavailable)"),
            "{detail}"
        );
    }
    // Reported at once each time, not after a 3 s connect timeout.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    server.shutdown().await;
}
