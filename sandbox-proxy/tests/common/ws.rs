//! A minimal WebSocket client over a raw TCP stream (enough for the HMR and terminal tests).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub struct Ws {
    pub stream: TcpStream,
    pub head: String,
}

/// Sends an upgrade request; returns the socket and the response head (whatever the status).
pub fn connect(port: u16, path: &str, headers: &[(&str, &str)]) -> Ws {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\
         sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    );
    for (k, v) in headers {
        req += &format!("{k}: {v}\r\n");
    }
    req += "\r\n";
    stream.write_all(req.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut b).unwrap_or(0) == 0 {
            break;
        }
        head.push(b[0]);
    }
    Ws {
        stream,
        head: String::from_utf8_lossy(&head).into_owned(),
    }
}

impl Ws {
    pub fn status(&self) -> u16 {
        self.head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// Sends one masked frame (opcode 1 text, 2 binary).
    pub fn send(&mut self, opcode: u8, payload: &[u8]) {
        let mut f = vec![0x80 | opcode];
        let mask = [1u8, 2, 3, 4];
        if payload.len() < 126 {
            f.push(0x80 | payload.len() as u8);
        } else {
            f.push(0x80 | 126);
            f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&f).unwrap();
    }

    /// Next frame's payload, or None on close/EOF/timeout.
    pub fn recv(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut h = [0u8; 2];
        self.stream.read_exact(&mut h).ok()?;
        let opcode = h[0] & 0x0f;
        let mut len = (h[1] & 0x7f) as u64;
        if len == 126 {
            let mut l = [0u8; 2];
            self.stream.read_exact(&mut l).ok()?;
            len = u16::from_be_bytes(l) as u64;
        } else if len == 127 {
            let mut l = [0u8; 8];
            self.stream.read_exact(&mut l).ok()?;
            len = u64::from_be_bytes(l);
        }
        let mut p = vec![0u8; len as usize];
        self.stream.read_exact(&mut p).ok()?;
        if opcode == 8 {
            return None;
        }
        Some((opcode, p))
    }

    /// Reads frames until their text contains `needle`; returns everything read.
    pub fn read_until(&mut self, needle: &str) -> Result<String, String> {
        let mut all = String::new();
        while !all.contains(needle) {
            match self.recv() {
                Some((_, p)) => all += &String::from_utf8_lossy(&p),
                None => return Err(all),
            }
        }
        Ok(all)
    }
}
