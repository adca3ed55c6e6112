//! Hostile peers on 127.0.0.1: servers that attack the client and clients that attack the
//! reference server. Each test names the attack, bounds it in time, and asserts what the victim
//! keeps: its memory (RSS deltas against a stated ceiling), its connection policy, its data.
//!
//! The tests of this binary run one at a time, so that each memory figure is its own.

mod against_the_client;
mod against_the_server;

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Held by every test of this binary: memory deltas must not include a neighbour's.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long each flood lasts.
pub const FLOOD: Duration = Duration::from_secs(5);

/// A mebibyte.
pub const MIB: u64 = 1024 * 1024;

/// The reference server binary: `STEADYWS_SERVER` (a release build, to report its figures), or
/// the debug build of this package.
pub fn server_binary() -> PathBuf {
    std::env::var_os("STEADYWS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_reference-server")))
}

/// One WebSocket frame as a server writes it (unmasked), payload at most 125 bytes.
pub fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() <= 125);
    let mut frame = vec![0x80 | opcode, payload.len() as u8];
    frame.extend_from_slice(payload);
    frame
}

/// One WebSocket frame as a client writes it: masked, here with the all-zero key (which leaves
/// the payload as is), payload at most 125 bytes.
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() <= 125);
    let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(payload);
    frame
}

/// Opcode of a ping frame.
pub const PING: u8 = 0x9;
/// Opcode of a text frame.
pub const TEXT: u8 = 0x1;

/// Write `frame` over and over for [`FLOOD`], never reading. Returns the bytes written.
pub async fn flood(tcp: &mut TcpStream, frame: &[u8]) -> u64 {
    let burst: Vec<u8> = frame.repeat(64 * 1024 / frame.len());
    let deadline = tokio::time::Instant::now() + FLOOD;
    let mut written = 0;
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout_at(deadline, tcp.write_all(&burst)).await {
            Ok(Ok(())) => written += burst.len() as u64,
            // The victim stopped reading or closed: the flood is over either way.
            Ok(Err(_)) | Err(_) => break,
        }
    }
    written
}

/// Floods `tcp` with `frame` for [`FLOOD`] and asserts that the victim, whose resident memory
/// `rss` reads, grew by less than `ceiling`. Unbounded, a victim grows by at least what was
/// written (a pong or a queued answer per ping), so the flood must exceed `min_written` to prove
/// anything.
pub async fn assert_flood_bounded(
    what: &str,
    tcp: &mut TcpStream,
    frame: &[u8],
    min_written: u64,
    ceiling: u64,
    rss: impl Fn() -> u64,
) {
    let before = rss();
    let written = flood(tcp, frame).await;
    let after = rss();
    let grown = after.saturating_sub(before);
    println!(
        "{what}: {} MiB of frames in {FLOOD:?}; RSS {} -> {} MiB (+{:.1} MiB, ceiling {} MiB)",
        written / MIB,
        before / MIB,
        after / MIB,
        grown as f64 / MIB as f64,
        ceiling / MIB
    );
    assert!(
        written > min_written,
        "{what}: the flood was too weak to prove anything"
    );
    assert!(grown < ceiling, "{what}: grew by {grown} bytes");
}
