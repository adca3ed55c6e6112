//! Delivery to the app: events wait for a reader however late it starts, taking a message is
//! what commits it, and waiting on the side (for the connection, for an ack) takes nothing
//! from the event stream.

use std::time::{Duration, Instant};

use steadyws::{Cause, Delivery, Event, Opening, Payload, Socket, State};
use steadyws_server::{ServerConfig, start};
use steadyws_tests::support::*;

#[tokio::test]
async fn a_late_reader_gets_every_message_and_only_taking_commits() {
    let server = start(ServerConfig::default()).await.unwrap();
    let socket = Socket::new(quick(&server.url())).unwrap();
    socket.connect();
    assert_eq!(socket.wait_open(Some(WAIT)).await, Opening::Open);
    for n in 0..50 {
        server.publish(&n.to_string()).unwrap();
    }
    let deadline = Instant::now() + WAIT;
    while socket.stats().messages_received < 50 {
        assert!(Instant::now() < deadline, "{:?}", socket.stats());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = socket.stats();
    assert_eq!(stats.messages_in, 0, "received, but nothing taken yet");
    assert_eq!(
        stats.cursor.last_seq,
        Some(0),
        "nothing taken yet: the cursor is where the stream started"
    );

    // Reading starts only now: every event is still there, the state changes first.
    let mut events = Vec::new();
    while events.len() < 52 {
        events.extend(socket.next_events(16).await);
    }
    assert!(matches!(
        &events[0],
        Event::StateChanged {
            state: State::Connecting { .. },
            cause: Cause::App
        }
    ));
    assert!(matches!(
        &events[1],
        Event::StateChanged {
            state: State::Open,
            cause: Cause::Opened
        }
    ));
    let data: Vec<String> = events[2..]
        .iter()
        .map(|event| match event {
            Event::Message(message) => match &message.data {
                Payload::Json(json) => json.clone(),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        })
        .collect();
    let expected: Vec<String> = (0..50).map(|n| n.to_string()).collect();
    assert_eq!(data, expected);
    let Event::Message(last) = &events[51] else {
        unreachable!()
    };
    let stats = socket.stats();
    assert_eq!(stats.messages_in, 50);
    assert_eq!(stats.cursor, last.cursor);
    assert_eq!(last.cursor.last_seq, Some(50));
    server.shutdown().await;
}

#[tokio::test]
async fn waiting_for_open_and_for_acks_keeps_every_event_for_the_reader() {
    let server = start(ServerConfig::default()).await.unwrap();
    let socket = Socket::new(quick(&server.url())).unwrap();
    socket.connect();
    assert_eq!(socket.wait_open(Some(WAIT)).await, Opening::Open);
    let (first, delivery) = socket
        .send_and_wait(r#"{"n":1}"#, None, Some(WAIT))
        .await
        .unwrap();
    assert_eq!(delivery, Delivery::Acked);
    let second = socket.send(r#"{"n":2}"#).unwrap();
    assert_eq!(
        socket.wait_acked(&second, Some(WAIT)).await,
        Delivery::Acked
    );
    assert_eq!(
        socket.wait_acked(&first, None).await,
        Delivery::Acked,
        "a settled message answers at once"
    );
    let events = collect_for(&socket, Duration::from_millis(300)).await;
    let opened = events.iter().any(|e| {
        matches!(
            e,
            Event::StateChanged {
                state: State::Open,
                ..
            }
        )
    });
    let acked: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Acked(id) => Some(id.clone()),
            _ => None,
        })
        .collect();
    assert!(opened, "{events:?}");
    assert_eq!(acked, [first, second], "the stream still has both acks");
    server.shutdown().await;
}

#[tokio::test]
async fn after_close_every_wait_ends_at_once_and_the_state_is_closed() {
    let server = start(ServerConfig::default()).await.unwrap();
    let never = Socket::new(quick(&server.url())).unwrap();
    never.close();
    assert_eq!(
        never.state(),
        State::Closed,
        "closed even if never connected"
    );
    assert_eq!(never.wait_open(None).await, Opening::Closed);

    let socket = Socket::new(quick(&server.url())).unwrap();
    // Never connected: this send cannot be acked, so its wait only ends with the close.
    let (waiting, _) = tokio::join!(socket.send_and_wait("1", None, None), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        socket.close();
    });
    assert_eq!(waiting.unwrap().1, Delivery::Closed);
    assert_eq!(socket.state(), State::Closed);
    let started = Instant::now();
    assert!(matches!(
        socket.send_and_wait("2", None, None).await,
        Err(steadyws::Error::Closed)
    ));
    assert!(matches!(socket.send("3"), Err(steadyws::Error::Closed)));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "nothing waits on a closed socket"
    );
    let rest = collect_for(&socket, Duration::from_millis(100)).await;
    assert!(matches!(
        rest.last(),
        Some(Event::StateChanged {
            state: State::Closed,
            cause: Cause::App
        })
    ));
    server.shutdown().await;
}

#[tokio::test]
async fn an_app_that_never_reads_is_pushed_back_until_send_says_the_outbox_is_full() {
    let server = start(ServerConfig::default()).await.unwrap();
    let mut config = quick(&server.url());
    config.inbox_max_events = 20;
    config.engine.outbox.max_messages = 50;
    let socket = Socket::new(config).unwrap();
    socket.connect();
    assert_eq!(socket.wait_open(Some(WAIT)).await, Opening::Open);
    // Acks (and the echoes of our own messages) arrive by reading, which stops once 20 events
    // wait: the outbox then fills, and send says so instead of memory growing.
    let deadline = Instant::now() + WAIT;
    let mut sent = Vec::new();
    let refusal = loop {
        assert!(
            Instant::now() < deadline,
            "send never refused: {:?}",
            socket.stats()
        );
        match socket.send(r#"{"n":1}"#) {
            Ok(id) => sent.push(id),
            Err(err) => break err,
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    assert!(
        matches!(
            refusal,
            steadyws::Error::Send(steadyws::SendError::OutboxFull { .. })
        ),
        "{refusal}"
    );
    assert!(sent.len() < 200, "pushed back after {} sends", sent.len());
    // Reading again lets everything through.
    let last = sent.last().unwrap().clone();
    let mut acked = 0;
    while acked < sent.len() {
        assert!(
            Instant::now() < deadline + WAIT,
            "{acked} of {} acked",
            sent.len()
        );
        acked += socket
            .next_events(64)
            .await
            .iter()
            .filter(|e| matches!(e, Event::Acked(_)))
            .count();
    }
    assert_eq!(socket.wait_acked(&last, None).await, Delivery::Acked);
    server.shutdown().await;
}

/// An open socket, its first events taken, whose task nothing but its socket wakes within a
/// test's bound: no heartbeat for a minute, so a frame left unread stays unread.
async fn open_unprompted(url: &str) -> Socket {
    let mut config = quick(url);
    config.engine.heartbeat = steadyws::engine::HeartbeatMode::JsonPing {
        interval: Duration::from_secs(60),
        timeout: Duration::from_secs(5),
    };
    let socket = Socket::new(config).unwrap();
    socket.connect();
    wait_open(&socket).await;
    while socket.try_next_event().is_some() {}
    socket
}

/// While the app waits with nothing queued, its own call reads the socket. A wait that ends
/// without an event (here a timeout) must leave reading to the socket's task: messages that
/// arrive afterwards are read, acked and counted while nobody waits.
#[tokio::test]
async fn a_wait_that_gives_up_leaves_reading_to_the_socket() {
    let server = start(ServerConfig::default()).await.unwrap();
    let socket = open_unprompted(&server.url()).await;
    for round in 1..=3u64 {
        let waited = tokio::time::timeout(Duration::from_millis(50), socket.next_events(16)).await;
        assert!(waited.is_err(), "nothing was published yet: {waited:?}");
        server.publish(&round.to_string()).unwrap();
        let deadline = Instant::now() + WAIT;
        while socket.stats().messages_received < round {
            assert!(
                Instant::now() < deadline,
                "round {round}: {:?}",
                socket.stats()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let taken = socket.try_next_events(16);
        assert!(
            matches!(&taken[..], [Event::Message(m)] if m.data == Payload::Json(round.to_string())),
            "{taken:?}"
        );
    }
    server.shutdown().await;
}

/// A burst larger than one read's batch, arriving while the app waits: the app's call takes
/// the first batch, and the rest, already buffered with no wake-up to come, is read by the
/// socket's task although the app does not wait again.
#[tokio::test]
async fn a_burst_beyond_one_batch_is_read_in_full_after_the_app_takes_the_first() {
    const BURST: u64 = 2_000;
    let server = start(ServerConfig::default()).await.unwrap();
    let socket = open_unprompted(&server.url()).await;
    let publish = async {
        // Published once the app is waiting, so its own call reads the burst.
        tokio::time::sleep(Duration::from_millis(50)).await;
        for n in 0..BURST {
            server.publish(&n.to_string()).unwrap();
        }
    };
    let (first, ()) = tokio::join!(
        tokio::time::timeout(WAIT, socket.next_events(10_000)),
        publish
    );
    let first = first.expect("the burst arrives");
    assert!(!first.is_empty());
    let deadline = Instant::now() + WAIT;
    while socket.stats().messages_received < BURST {
        assert!(Instant::now() < deadline, "{:?}", socket.stats());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut seen = first.len();
    while seen < BURST as usize {
        let more = socket.try_next_events(10_000);
        assert!(!more.is_empty(), "{seen} of {BURST} taken");
        seen += more.len();
    }
    server.shutdown().await;
}
