//! A blocking WebSocket client for end-to-end tests of a project's room.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;
use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

pub struct Socket {
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    /// Highest broadcast `seq` received (what a client would send as `last_seq`).
    pub last_seq: u64,
}

/// How the socket authenticates.
pub enum Auth<'a> {
    Bearer(&'a str),
    Cookie(&'a str),
    Ticket(&'a str),
    None,
}

/// A refused upgrade: the HTTP status and body.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub body: String,
}

/// How a socket ended, as `Socket::wait_closed` saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The server sent a close frame with this code.
    Closed { code: u16, reason: String },
    /// The connection ended without a close frame (or failed).
    Dropped(String),
    /// Still open when the wait ran out.
    StillOpen,
}

const BROADCAST: &[&str] = &[
    "file_edited",
    "file_deleted",
    "file_renamed",
    "presence",
    "version_created",
    "doc_update",
];

impl Socket {
    pub fn connect(base_url: &str, project: &str, auth: Auth<'_>) -> Result<Socket, Refused> {
        Self::connect_with(base_url, project, auth, &[])
    }

    /// `connect` with extra request headers on the upgrade (e.g. `Origin`,
    /// `Sec-Fetch-Site`), as a browser page would send them.
    pub fn connect_with(
        base_url: &str,
        project: &str,
        auth: Auth<'_>,
        headers: &[(&str, &str)],
    ) -> Result<Socket, Refused> {
        let ws_url = base_url.replacen("http://", "ws://", 1);
        let mut url = format!("{ws_url}/api/projects/{project}/ws");
        if let Auth::Ticket(t) = auth {
            url += &format!("?ticket={t}");
        }
        let mut req = url.into_client_request().expect("request");
        match auth {
            Auth::Bearer(t) => {
                req.headers_mut()
                    .insert("authorization", format!("Bearer {t}").parse().unwrap());
            }
            Auth::Cookie(t) => {
                req.headers_mut()
                    .insert("cookie", format!("kiln_session={t}").parse().unwrap());
            }
            Auth::Ticket(_) | Auth::None => {}
        }
        for (k, v) in headers {
            let name =
                tungstenite::http::HeaderName::from_bytes(k.as_bytes()).expect("header name");
            req.headers_mut()
                .insert(name, v.parse().expect("header value"));
        }
        match tungstenite::connect(req) {
            Ok((ws, _)) => {
                if let MaybeTlsStream::Plain(s) = ws.get_ref() {
                    s.set_read_timeout(Some(Duration::from_millis(200))).ok();
                }
                Ok(Socket { ws, last_seq: 0 })
            }
            Err(tungstenite::Error::Http(resp)) => Err(Refused {
                status: resp.status().as_u16(),
                body: resp
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default(),
            }),
            Err(e) => panic!("websocket connect: {e}"),
        }
    }

    /// How long one read waits (200 ms unless set), e.g. shorter for a client that types
    /// and reads in turns.
    pub fn set_read_timeout(&mut self, t: Duration) {
        if let MaybeTlsStream::Plain(s) = self.ws.get_ref() {
            s.set_read_timeout(Some(t)).ok();
        }
    }

    pub fn send(&mut self, msg: Value) {
        self.ws
            .send(Message::text(msg.to_string()))
            .expect("send frame");
    }

    /// `send`, but a socket the server already closed is not a panic: the error is returned.
    pub fn try_send(&mut self, msg: Value) -> Result<(), tungstenite::Error> {
        self.ws.send(Message::text(msg.to_string()))
    }

    pub fn send_raw(&mut self, msg: Message) {
        self.ws.send(msg).expect("send frame");
    }

    /// The next JSON frame within `timeout`, or `None`.
    pub fn try_recv(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    let v: Value = serde_json::from_str(&t).expect("JSON frame");
                    if BROADCAST.contains(&v["type"].as_str().unwrap_or("")) {
                        self.last_seq = self.last_seq.max(v["seq"].as_u64().unwrap_or(0));
                    }
                    return Some(v);
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("websocket read: {e}"),
            }
            if Instant::now() >= deadline {
                return None;
            }
        }
    }

    /// The next frame; panics after 20 s.
    #[track_caller]
    pub fn recv(&mut self) -> Value {
        self.try_recv(Duration::from_secs(20))
            .expect("no frame within 20 s")
    }

    /// Frames until one of type `ty` arrives; returns that one.
    #[track_caller]
    pub fn recv_type(&mut self, ty: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(v) = self.try_recv(Duration::from_millis(500)) {
                if v["type"] == ty {
                    return v;
                }
            }
        }
        panic!("no {ty} frame within 20 s")
    }

    /// Every frame that arrives until `quiet` passes without one.
    pub fn drain(&mut self, quiet: Duration) -> Vec<Value> {
        let mut out = vec![];
        while let Some(v) = self.try_recv(quiet) {
            out.push(v);
        }
        out
    }

    /// Reads until the server closes the socket or `timeout` passes. Returns the JSON frames
    /// that came first and how it ended.
    pub fn wait_closed(&mut self, timeout: Duration) -> (Vec<Value>, Ended) {
        let deadline = Instant::now() + timeout;
        let mut frames = vec![];
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    frames.push(serde_json::from_str(&t).expect("JSON frame"));
                }
                Ok(Message::Close(frame)) => {
                    let ended = match frame {
                        Some(f) => Ended::Closed {
                            code: u16::from(f.code),
                            reason: f.reason.to_string(),
                        },
                        None => Ended::Closed {
                            code: 1005,
                            reason: String::new(),
                        },
                    };
                    return (frames, ended);
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return (
                        frames,
                        Ended::Dropped("closed without a close frame".into()),
                    )
                }
                Err(e) => return (frames, Ended::Dropped(e.to_string())),
            }
            if Instant::now() >= deadline {
                return (frames, Ended::StillOpen);
            }
        }
    }

    pub fn close(mut self) {
        let _ = self.ws.close(None);
        let _ = self.ws.flush();
    }
}
