//! The fuzz targets' bodies, shared by the libFuzzer binaries (`cargo +nightly fuzz run NAME`)
//! and by the replay of the committed seeds in the ordinary test run
//! (`core/tests/fuzz_seeds.rs`), so a decoder regression is caught without a manual step.

use std::time::Duration;

use steadyws::engine::{
    AppState, Config, ConnId, ConnectionError, Engine, Frame, Instant, NetworkStatus, Payload,
    SplitMix64, fuzzing,
};

/// The engine fed an arbitrary sequence of inputs — app calls (sends and cancels), transport
/// reports for any transport id, frames with arbitrary text, timers, lifecycle and network
/// hints — must never
/// panic, must keep its memory bounds, and must never leave a timer due after handling it.
pub fn engine(data: &[u8]) {
    let mut config = Config::new("ws://fuzz.test/ws?room=1");
    config.outbox.max_messages = 8;
    config.dedup.max_entries = 16;
    config.outbox.default_ttl = Some(Duration::from_secs(30));
    let Ok(mut engine) = Engine::new(config, Box::new(SplitMix64::new(1))) else {
        return;
    };
    let mut now = Instant::ZERO;
    let mut bytes = data.iter().copied();
    while let (Some(op), Some(arg)) = (bytes.next(), bytes.next()) {
        now += Duration::from_millis(u64::from(arg) * 97);
        let conn = ConnId(u64::from(arg % 4));
        let text: String = bytes
            .by_ref()
            .take(usize::from(arg % 48))
            .map(char::from)
            .collect();
        match op % 14 {
            0 => engine.connect(now),
            1 => engine.disconnect(now),
            2 => {
                let _ = engine.send(now, Payload::Json(text));
            }
            3 => engine.handle_transport_opened(now, conn),
            4 => engine.handle_transport_failed(
                now,
                conn,
                ConnectionError::Handshake {
                    status: u16::from(arg) * 3,
                    retry_after: Some(Duration::from_secs(u64::from(arg))),
                },
            ),
            5 => engine.handle_transport_closed(now, conn, Some(u16::from(arg) * 20), &text),
            6 => engine.handle_frame(now, conn, Frame::Text(text)),
            7 => engine.handle_frame(
                now,
                conn,
                Frame::Text(format!(
                    r#"{{"type":"msg","id":"{}","seq":{},"data":1}}"#,
                    arg % 32,
                    arg % 64
                )),
            ),
            8 => engine.handle_frame(now, conn, Frame::Pong(text.into_bytes())),
            9 => engine.set_app_state(
                now,
                if arg % 2 == 0 {
                    AppState::Background
                } else {
                    AppState::Foreground
                },
            ),
            10 => engine.set_network(
                now,
                if arg % 3 == 0 {
                    NetworkStatus::Unavailable
                } else {
                    NetworkStatus::Available {
                        interface: Some(format!("if{}", arg % 3)),
                    }
                },
            ),
            11 => engine.handle_frame(
                now,
                conn,
                Frame::Text(format!(r#"{{"type":"ack","id":"{text}"}}"#)),
            ),
            12 => {
                let pending = engine.pending();
                if let Some(message) = pending.get(usize::from(arg) % 8) {
                    assert!(engine.cancel(&message.id));
                    assert!(!engine.is_queued(&message.id));
                }
            }
            _ => engine.handle_timeout(now),
        }
        for _ in 0..3 {
            if engine.poll_timeout().is_some_and(|at| at <= now) {
                engine.handle_timeout(now);
            }
        }
        assert!(
            engine.poll_timeout().is_none_or(|at| at > now),
            "a timer stays due"
        );
        while engine.poll_transmit().is_some() {}
        while engine.poll_event().is_some() {}
        let stats = engine.stats();
        assert!(stats.outbox_len <= 8 && stats.dedup_len <= 16);
    }
}

/// The envelope decoder on arbitrary text: it returns a frame or a `Malformed`, never panics,
/// and a preview never exceeds 61 characters.
pub fn envelope(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Err(malformed) = fuzzing::decode_server_frame(&text) {
        assert!(malformed.preview.chars().count() <= 61);
    }
    let _ = fuzzing::validate_json(&text);
}
