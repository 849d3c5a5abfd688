//! A one-file HTTPS server for TLS tests: rustls (aws-lc-rs, the stack reqwest uses) with the
//! self-signed `localhost` / `127.0.0.1` certificate in `tests/fixtures` (a throwaway key made for these
//! tests only). It answers every request whose handshake succeeds with `200 {}` and records what
//! happened, so a test can tell "refused by the client's certificate check" from "server broken".
#![allow(dead_code, clippy::unwrap_used)]

use std::{
    io::{Read, Write},
    net::TcpListener,
    sync::{Arc, Mutex},
};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

/// The self-signed certificate (PEM).
pub const CERT_PEM: &[u8] = include_bytes!("../fixtures/self-signed-localhost.crt");
const KEY_PEM: &[u8] = include_bytes!("../fixtures/self-signed-localhost.key");

/// What the server saw.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    /// Connections whose TLS handshake failed, with the server's view of why.
    pub failed_handshakes: Vec<String>,
    /// Decrypted request heads (only after a completed handshake).
    pub requests: Vec<String>,
}

/// Starts the server on 127.0.0.1 (a port of its own) in a background thread; returns
/// `https://127.0.0.1:PORT` and the record of what it saw.
pub fn start() -> (String, Arc<Mutex<Seen>>) {
    let cert = CertificateDer::from_pem_slice(CERT_PEM).unwrap();
    let key = PrivateKeyDer::from_pem_slice(KEY_PEM).unwrap();
    let config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let seen = Arc::new(Mutex::new(Seen::default()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut tcp) = stream else { return };
            let Ok(mut conn) = rustls::ServerConnection::new(config.clone()) else {
                return;
            };
            let mut handshake = Ok(());
            while conn.is_handshaking() {
                if let Err(e) = conn.complete_io(&mut tcp) {
                    handshake = Err(e.to_string());
                    break;
                }
            }
            if let Err(why) = handshake {
                record.lock().unwrap().failed_handshakes.push(why);
                continue;
            }
            let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
            let mut head = Vec::new();
            let mut chunk = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&chunk[..n]),
                }
            }
            record
                .lock()
                .unwrap()
                .requests
                .push(String::from_utf8_lossy(&head).into_owned());
            let _ = tls.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
            );
            let _ = tls.flush();
            tls.conn.send_close_notify();
            let _ = tls.conn.complete_io(tls.sock);
        }
    });
    (url, seen)
}

/// What the server saw once it has recorded a failed handshake (or after 5 s): the client can see its
/// own refusal before the server thread has recorded the other side of it.
pub fn after_failed_handshake(seen: &Mutex<Seen>) -> Seen {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let now = seen.lock().unwrap().clone();
        if !now.failed_handshakes.is_empty() || std::time::Instant::now() >= deadline {
            return now;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The whole chain of an error's messages, `: `-joined.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
