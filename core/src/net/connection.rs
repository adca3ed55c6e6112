//! One transport's task: dial, then shuttle frames between the socket and the pump until either
//! side ends it. It reports what happened and never decides what to do about it.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::dial::{self, TransportOptions};
use crate::engine::{ConnId, ConnectionError, Frame};

/// What a transport reports to the pump.
#[derive(Debug)]
pub enum Report {
    /// The upgrade completed.
    Opened,
    /// The dial failed, or the open connection broke.
    Failed(ConnectionError),
    /// The peer closed (`None`: without a close frame).
    Closed(Option<u16>, String),
    /// A frame arrived.
    Frame(Frame),
}

/// What the pump asks of a transport.
#[derive(Debug)]
pub enum Command {
    /// Write a frame.
    Send(Frame),
    /// Send a close frame, then wait for the peer's close (bounded).
    Close(u16, String),
}

/// Longest wait for a close frame to be written and answered before the socket is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Run transport `conn` to completion.
pub async fn run(
    conn: ConnId,
    url: String,
    refresh_credentials: bool,
    options: Arc<TransportOptions>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    reports: mpsc::UnboundedSender<(ConnId, Report)>,
) {
    let report = |r: Report| {
        let _ = reports.send((conn, r));
    };
    let ws = match dial::dial(&url, &options, refresh_credentials).await {
        Ok(ws) => ws,
        Err(err) => return report(Report::Failed(err)),
    };
    report(Report::Opened);
    let (mut sink, mut stream) = ws.split();
    let reader = async {
        while let Some(inbound) = stream.next().await {
            match inbound {
                Ok(Message::Text(text)) => {
                    report(Report::Frame(Frame::Text(text.as_str().to_owned())))
                }
                Ok(Message::Binary(bytes)) => report(Report::Frame(Frame::Binary(bytes.to_vec()))),
                Ok(Message::Ping(payload)) => report(Report::Frame(Frame::Ping(payload.to_vec()))),
                Ok(Message::Pong(payload)) => report(Report::Frame(Frame::Pong(payload.to_vec()))),
                Ok(Message::Close(frame)) => {
                    let (code, reason) = frame.map_or((None, String::new()), |f| {
                        (Some(u16::from(f.code)), f.reason.as_str().to_owned())
                    });
                    return report(Report::Closed(code, reason));
                }
                Ok(Message::Frame(_)) => {}
                Err(err) => return report(Report::Failed(dial::handshake_error(&err))),
            }
        }
        report(Report::Closed(None, String::new()));
    };
    let writer = async {
        while let Some(command) = commands.recv().await {
            match command {
                Command::Send(frame) => {
                    if let Err(err) = sink.send(message(frame)).await {
                        return report(Report::Failed(dial::handshake_error(&err)));
                    }
                }
                Command::Close(code, reason) => {
                    let close = CloseFrame {
                        code: CloseCode::from(code),
                        reason: reason.into(),
                    };
                    let _ =
                        tokio::time::timeout(CLOSE_GRACE, sink.send(Message::Close(Some(close))))
                            .await;
                    break;
                }
            }
        }
        // Either the pump dropped this transport or asked to close it: give the peer a moment
        // to answer the close, then drop the socket.
        tokio::time::sleep(CLOSE_GRACE).await;
        report(Report::Closed(
            None,
            "no close frame from the server".into(),
        ));
    };
    tokio::select! {
        _ = reader => {}
        _ = writer => {}
    }
}

fn message(frame: Frame) -> Message {
    match frame {
        Frame::Text(text) => Message::Text(text.into()),
        Frame::Binary(bytes) => Message::Binary(bytes.into()),
        Frame::Ping(payload) => Message::Ping(payload.into()),
        Frame::Pong(payload) => Message::Pong(payload.into()),
    }
}
