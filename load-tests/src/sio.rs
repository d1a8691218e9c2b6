//! A minimal Socket.IO v4 client: Engine.IO v4 over the WebSocket transport only, text packets
//! only, one namespace per connection. Enough to play an agent console under load; not a
//! general-purpose client (no polling transport, no binary attachments, no reconnection).
//!
//! Wire format, as this client speaks it (`ns` is e.g. `/agent`):
//! - server → `0{"sid":…,"pingInterval":25000,"pingTimeout":20000,…}` (Engine.IO open);
//! - client → `40/ns,{auth json}` (namespace connect); server → `40/ns,{"sid":…}` or
//!   `44/ns,{"message":…}` (refused);
//! - server → `2` (ping), client → `3` (pong);
//! - server → `42/ns,["event",data]` (event), `43/ns,ID[data]` (ack of our emit `ID`);
//! - client → `42/ns,ID["event",data]` (emit, with an ack id when an answer is wanted).
//!
//! Each connection is one spawned driver task that owns the WebSocket: it answers pings, matches
//! acks to waiting emitters and forwards events to an optional channel. The driver stops when the
//! server closes, when the server misses its ping deadline, or when the [`SioClient`] is closed or
//! dropped — so its lifetime is bounded by its owner's.

use std::collections::HashMap;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A server event: its name and first argument (`Value::Null` when it has none).
#[derive(Debug)]
pub struct Event {
    pub name: String,
    pub data: Value,
}

/// Why a connection or a request failed.
#[derive(Debug)]
pub enum SioError {
    /// The WebSocket could not be opened or broke.
    Transport(String),
    /// The server sent something this client does not understand at a point where it matters.
    Protocol(String),
    /// The namespace connect was refused (`44`), with the server's message.
    Refused(String),
    /// No answer within the allowed time.
    Timeout(&'static str),
    /// The connection is gone (driver stopped).
    Closed,
}

impl std::fmt::Display for SioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SioError::Transport(e) => write!(f, "transport: {e}"),
            SioError::Protocol(e) => write!(f, "protocol: {e}"),
            SioError::Refused(e) => write!(f, "namespace connect refused: {e}"),
            SioError::Timeout(what) => write!(f, "timed out waiting for {what}"),
            SioError::Closed => f.write_str("connection closed"),
        }
    }
}

impl std::error::Error for SioError {}

/// How to connect.
pub struct ConnectOptions {
    /// Namespace, e.g. `/agent`.
    pub namespace: String,
    /// The `auth` object of the namespace connect, e.g. `{"token": …}`.
    pub auth: Value,
    /// Bound on the whole handshake (TCP, WebSocket upgrade, Engine.IO open, namespace connect).
    pub timeout: Duration,
    /// Where server events go. `None` discards them. A full channel holds the driver back
    /// (back-pressure on the socket), which is what a slow real client does too.
    pub events: Option<mpsc::Sender<Event>>,
}

enum Command {
    Emit { event: String, data: Value, ack: Option<oneshot::Sender<Value>> },
    Close,
}

/// A connected namespace. Dropping it closes the connection.
pub struct SioClient {
    commands: mpsc::Sender<Command>,
    driver: tokio::task::JoinHandle<()>,
}

/// Opens `base` (e.g. `http://127.0.0.1:8080`) and connects `opts.namespace`.
pub async fn connect(base: &str, opts: ConnectOptions) -> Result<SioClient, SioError> {
    let ws_base = base.replacen("http://", "ws://", 1);
    let url = format!("{}/socket.io/?EIO=4&transport=websocket", ws_base.trim_end_matches('/'));
    let deadline = Instant::now() + opts.timeout;
    let (ws, _) = tokio::time::timeout_at(deadline, tokio_tungstenite::connect_async(url.as_str()))
        .await
        .map_err(|_| SioError::Timeout("WebSocket upgrade"))?
        .map_err(|e| SioError::Transport(e.to_string()))?;
    let mut ws = ws;

    // Engine.IO open packet: `0{…}`; its ping settings bound how long we wait for pings later.
    let open = next_text(&mut ws, deadline, "Engine.IO open").await?;
    let open_json =
        open.strip_prefix('0').ok_or_else(|| SioError::Protocol(format!("expected open packet, got {open:.80}")))?;
    let open_json: Value =
        serde_json::from_str(open_json).map_err(|e| SioError::Protocol(format!("open packet: {e}")))?;
    let ping_interval = open_json.get("pingInterval").and_then(Value::as_u64).unwrap_or(25_000);
    let ping_timeout = open_json.get("pingTimeout").and_then(Value::as_u64).unwrap_or(20_000);
    let liveness = Duration::from_millis(ping_interval + ping_timeout);

    let prefix = namespace_prefix(&opts.namespace);
    send_text(&mut ws, format!("40{prefix}{}", opts.auth)).await?;
    // Wait for the namespace answer, answering pings meanwhile (bounded by `deadline`).
    loop {
        let text = next_text(&mut ws, deadline, "namespace connect").await?;
        if text == "2" {
            send_text(&mut ws, "3".to_string()).await?;
            continue;
        }
        match parse_packet(&text) {
            Some(p) if p.ns == opts.namespace && p.kind == PacketKind::Connect => break,
            Some(p) if p.ns == opts.namespace && p.kind == PacketKind::ConnectError => {
                let message = serde_json::from_str::<Value>(p.json)
                    .ok()
                    .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
                    .unwrap_or_else(|| p.json.to_string());
                return Err(SioError::Refused(message));
            }
            // Anything else before the connect answer (e.g. another namespace) is ignored.
            _ => continue,
        }
    }

    let (commands, rx) = mpsc::channel(64);
    let driver = tokio::spawn(drive(ws, rx, opts.namespace, opts.events, liveness));
    Ok(SioClient { commands, driver })
}

impl SioClient {
    /// Emits an event without asking for an acknowledgement.
    pub async fn emit(&self, event: &str, data: Value) -> Result<(), SioError> {
        self.commands
            .send(Command::Emit { event: event.to_string(), data, ack: None })
            .await
            .map_err(|_| SioError::Closed)
    }

    /// Emits an event and waits (at most `timeout`) for the server's acknowledgement, returning
    /// its first argument.
    pub async fn request(&self, event: &str, data: Value, timeout: Duration) -> Result<Value, SioError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Emit { event: event.to_string(), data, ack: Some(tx) })
            .await
            .map_err(|_| SioError::Closed)?;
        tokio::time::timeout(timeout, rx)
            .await
            .map_err(|_| SioError::Timeout("acknowledgement"))?
            .map_err(|_| SioError::Closed)
    }

    /// True while the driver runs (the connection is up).
    pub fn is_open(&self) -> bool {
        !self.driver.is_finished()
    }

    /// Closes the connection politely (Engine.IO close packet) and waits for the driver to stop.
    pub async fn close(self) {
        let _ = self.commands.send(Command::Close).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.driver).await;
    }
}

/// The driver loop: the only owner of the socket after the handshake.
async fn drive(
    mut ws: Ws,
    mut commands: mpsc::Receiver<Command>,
    namespace: String,
    mut events: Option<mpsc::Sender<Event>>,
    liveness: Duration,
) {
    let prefix = namespace_prefix(&namespace);
    let mut pending: HashMap<u64, oneshot::Sender<Value>> = HashMap::new();
    let mut next_ack: u64 = 0;
    // The server pings every `pingInterval`; no ping for `pingInterval + pingTimeout` means the
    // server (or the path to it) is gone, so the loop cannot outlive a dead peer.
    let mut ping_deadline = Instant::now() + liveness;
    loop {
        tokio::select! {
            frame = ws.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    // Binary frames carry attachments this client never asks for; pings and
                    // pongs of the WebSocket layer are answered by tungstenite itself.
                    Some(Ok(_)) => continue,
                };
                let text = text.as_str();
                match text.as_bytes().first() {
                    Some(b'2') if text.len() == 1 => {
                        ping_deadline = Instant::now() + liveness;
                        if ws.send(Message::text("3")).await.is_err() {
                            return;
                        }
                    }
                    Some(b'1') => return,
                    Some(b'4') => {
                        let Some(p) = parse_packet(text) else { continue };
                        if p.ns != namespace {
                            continue;
                        }
                        match p.kind {
                            PacketKind::Event => {
                                let Some(tx) = &events else { continue };
                                let Ok(Value::Array(mut args)) = serde_json::from_str::<Value>(p.json) else { continue };
                                if args.is_empty() {
                                    continue;
                                }
                                let name = match args.remove(0) {
                                    Value::String(s) => s,
                                    _ => continue,
                                };
                                let data = if args.is_empty() { Value::Null } else { args.swap_remove(0) };
                                if tx.send(Event { name, data }).await.is_err() {
                                    // Nobody listens any more: keep the connection, drop events.
                                    events = None;
                                }
                            }
                            PacketKind::Ack => {
                                let Some(waiter) = p.id.and_then(|id| pending.remove(&id)) else { continue };
                                let data = match serde_json::from_str::<Value>(p.json) {
                                    Ok(Value::Array(mut args)) if !args.is_empty() => args.swap_remove(0),
                                    _ => Value::Null,
                                };
                                let _ = waiter.send(data);
                            }
                            PacketKind::Disconnect => return,
                            _ => {}
                        }
                    }
                    _ => {}
                }
            }
            command = commands.recv() => {
                match command {
                    Some(Command::Emit { event, data, ack }) => {
                        let args = Value::Array(vec![Value::String(event), data]);
                        let id = match ack {
                            Some(waiter) => {
                                next_ack += 1;
                                pending.insert(next_ack, waiter);
                                next_ack.to_string()
                            }
                            None => String::new(),
                        };
                        if ws.send(Message::text(format!("42{prefix}{id}{args}"))).await.is_err() {
                            return;
                        }
                    }
                    Some(Command::Close) | None => {
                        let _ = ws.send(Message::text(format!("41{prefix}"))).await;
                        let _ = ws.send(Message::text("1")).await;
                        let _ = ws.close(None).await;
                        return;
                    }
                }
            }
            _ = tokio::time::sleep_until(ping_deadline) => return,
        }
    }
}

/// `/agent,` for a namespace, empty for the main namespace `/`.
fn namespace_prefix(namespace: &str) -> String {
    if namespace == "/" {
        String::new()
    } else {
        format!("{namespace},")
    }
}

async fn send_text(ws: &mut Ws, text: String) -> Result<(), SioError> {
    ws.send(Message::text(text)).await.map_err(|e| SioError::Transport(e.to_string()))
}

async fn next_text(ws: &mut Ws, deadline: Instant, what: &'static str) -> Result<String, SioError> {
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next()).await.map_err(|_| SioError::Timeout(what))?;
        match frame {
            Some(Ok(Message::Text(t))) => return Ok(t.as_str().to_string()),
            Some(Ok(Message::Close(_))) | None => return Err(SioError::Closed),
            Some(Err(e)) => return Err(SioError::Transport(e.to_string())),
            Some(Ok(_)) => continue,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum PacketKind {
    Connect,
    Disconnect,
    Event,
    Ack,
    ConnectError,
    Other,
}

/// A Socket.IO packet inside an Engine.IO message packet (`4…`).
#[derive(Debug)]
struct Packet<'a> {
    kind: PacketKind,
    ns: &'a str,
    id: Option<u64>,
    json: &'a str,
}

/// Parses `4` + Socket.IO packet: type digit, optional `/namespace,`, optional ack id, JSON.
fn parse_packet(text: &str) -> Option<Packet<'_>> {
    let rest = text.strip_prefix('4')?;
    let kind = match rest.as_bytes().first()? {
        b'0' => PacketKind::Connect,
        b'1' => PacketKind::Disconnect,
        b'2' => PacketKind::Event,
        b'3' => PacketKind::Ack,
        b'4' => PacketKind::ConnectError,
        _ => PacketKind::Other,
    };
    let rest = &rest[1..];
    let (ns, rest) = if rest.starts_with('/') {
        match rest.find(',') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        }
    } else {
        ("/", rest)
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let id = if digits > 0 { rest[..digits].parse().ok() } else { None };
    Some(Packet { kind, ns, id, json: &rest[digits..] })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap (STYLE.md)
mod tests {
    use super::*;

    #[test]
    fn parses_event_with_namespace() {
        let p = parse_packet(r#"42/agent,["hello",{"user":1}]"#).unwrap();
        assert_eq!(p.kind, PacketKind::Event);
        assert_eq!(p.ns, "/agent");
        assert_eq!(p.id, None);
        assert_eq!(p.json, r#"["hello",{"user":1}]"#);
    }

    #[test]
    fn parses_ack_with_id() {
        let p = parse_packet(r#"43/agent,17[{"ok":true}]"#).unwrap();
        assert_eq!(p.kind, PacketKind::Ack);
        assert_eq!(p.id, Some(17));
        assert_eq!(p.json, r#"[{"ok":true}]"#);
    }

    #[test]
    fn parses_connect_and_refusal() {
        let p = parse_packet(r#"40/agent,{"sid":"x"}"#).unwrap();
        assert_eq!((p.kind, p.ns), (PacketKind::Connect, "/agent"));
        let p = parse_packet(r#"44/agent,{"message":"unauthorized"}"#).unwrap();
        assert_eq!(p.kind, PacketKind::ConnectError);
    }

    #[test]
    fn parses_main_namespace() {
        let p = parse_packet(r#"42["e",1]"#).unwrap();
        assert_eq!((p.ns, p.json), ("/", r#"["e",1]"#));
        assert!(parse_packet("3").is_none());
    }
}
