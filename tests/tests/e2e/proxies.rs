//! Through an HTTP CONNECT proxy, and behind a real nginx with and without the Upgrade headers.

use steadyws::{ConnectionError, Event, Socket, State};
use steadyws_server::{ServerConfig, start};
use steadyws_tests::connect_proxy::ConnectProxy;
use steadyws_tests::nginx::{self, Nginx};
use steadyws_tests::support::*;

#[tokio::test]
async fn connects_through_an_http_connect_proxy() {
    let server = start(ServerConfig::default()).await.unwrap();
    let proxy = ConnectProxy::start().await.unwrap();
    let mut config = quick(&server.url());
    config.proxy = Some(proxy.url());
    let socket = Socket::new(config).unwrap();
    socket.connect();
    let id = socket.send(r#"{"via":"proxy"}"#).unwrap();
    wait_for(&socket, WAIT, "ack through the tunnel", |e| {
        matches!(e, Event::Acked(a) if *a == id).then_some(())
    })
    .await;
    assert_eq!(proxy.tunnels(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_proxy_is_named() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = quick("ws://127.0.0.1:1/ws");
    config.proxy = Some(format!("http://127.0.0.1:{port}"));
    let socket = Socket::new(config).unwrap();
    socket.connect();
    let err = next_error(&socket).await;
    assert!(
        matches!(&err, ConnectionError::Proxy { proxy, .. } if *proxy == format!("127.0.0.1:{port}")),
        "{err:?}"
    );
    assert!(
        Socket::new({
            let mut c = quick("ws://h/ws");
            c.proxy = Some("socks5://h:1".into());
            c
        })
        .is_err()
    );
}

#[tokio::test]
async fn behind_nginx_with_upgrade_headers_it_works_and_without_them_the_hint_says_why() {
    if nginx::binary().is_none() {
        eprintln!(
            "SKIPPED: nginx is not installed here (.ci/run installs it with apt-get install nginx-light)"
        );
        return;
    }
    let server = start(ServerConfig::default()).await.unwrap();
    let good = Nginx::start(server.addr(), true).unwrap();
    let socket = Socket::new(quick(&good.url())).unwrap();
    socket.connect();
    let id = socket.send(r#"{"via":"nginx"}"#).unwrap();
    wait_for(&socket, WAIT, "ack through nginx", |e| {
        matches!(e, Event::Acked(a) if *a == id).then_some(())
    })
    .await;
    drop(socket);

    let bad = Nginx::start(server.addr(), false).unwrap();
    let socket = Socket::new(quick(&bad.url())).unwrap();
    socket.connect();
    let err = next_error(&socket).await;
    assert!(
        matches!(
            err,
            ConnectionError::Handshake {
                status: 400 | 426 | 502,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("proxy_set_header"), "{err}");
    assert!(matches!(
        socket.state(),
        State::Reconnecting { .. } | State::Connecting { .. }
    ));
    server.shutdown().await;
}
