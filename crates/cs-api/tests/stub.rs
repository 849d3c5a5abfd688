//! Answers the emulator never gives (garbage bodies, single-object errors, `Retry-After`, a 204 labelled
//! `text/html`), served by a minimal raw HTTP/1.1 stub so the whole reqwest path is exercised.
#![allow(clippy::unwrap_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use cs_api::{Client, ClientOptions, Endpoints, Error};
use cs_auth::UsernamePasswordProvider;
use secrecy::SecretString;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// Serves the canned responses in order, one per connection; counts the requests.
async fn stub(responses: Vec<String>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/2.0/", listener.local_addr().unwrap());
    let served = Arc::new(AtomicUsize::new(0));
    let counter = served.clone();
    tokio::spawn(async move {
        for response in responses {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut request = Vec::new();
            let mut chunk = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&chunk[..n]),
                }
            }
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    });
    (url, served)
}

fn response(status: &str, headers: &[&str], body: &str) -> String {
    let mut text = format!(
        "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        text.push_str(h);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    text.push_str(body);
    text
}

fn client(url: &str, options: ClientOptions) -> Client {
    let provider = UsernamePasswordProvider::new("a@example.com", SecretString::from("pw-stub-1")).unwrap();
    Client::new(Endpoints::single(url).unwrap(), Arc::new(provider), options).unwrap()
}

fn quick() -> ClientOptions {
    ClientOptions {
        backoff_min: Duration::from_millis(1),
        backoff_max: Duration::from_millis(5),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_garbage_success_body_is_a_decode_error_with_the_request_id() {
    let (url, served) = stub(vec![response(
        "200 OK",
        &["Content-Type: application/json", "X-REQUEST-ID: req-42"],
        "<html>oops</html>",
    )])
    .await;
    let e = client(&url, quick()).get_server("s1").await.unwrap_err();
    assert!(matches!(e, Error::Decode { status: 200, .. }), "{e}");
    assert_eq!(e.request_id(), Some("req-42"));
    assert!(!e.is_retryable());
    assert_eq!(served.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_single_object_error_body_is_understood() {
    let body = r#"{"error_type":"permission","error_point":null,"error_message":"User u does not have all of the permissions"}"#;
    let (url, served) = stub(vec![response(
        "403 FORBIDDEN",
        &["Content-Type: application/json", "X-REQUEST-ID: r-7"],
        body,
    )])
    .await;
    let e = client(&url, quick()).get_drive("d1").await.unwrap_err();
    assert!(matches!(e, Error::Forbidden(_)), "{e}");
    assert_eq!(e.error_type(), Some("permission"));
    assert_eq!(e.request_id(), Some("r-7"));
    assert_eq!(served.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_empty_or_html_error_body_keeps_the_status() {
    let (url, _) = stub(vec![response(
        "502 Bad Gateway",
        &["Content-Type: text/html"],
        "<h1>bad gateway</h1>",
    )])
    .await;
    let options = ClientOptions {
        max_attempts: 1,
        ..quick()
    };
    let e = client(&url, options).get_server("s1").await.unwrap_err();
    assert!(
        matches!(e, Error::Server(_)) && e.status() == Some(502) && e.error_type().is_none(),
        "{e}"
    );
    assert!(
        !e.to_string().contains("bad gateway"),
        "the body is not echoed: {e}"
    );
}

#[tokio::test]
async fn retry_after_is_honoured_up_to_the_cap() {
    let ok = r#"{"uuid":"s1","name":"n","status":"running"}"#;
    let (url, served) = stub(vec![
        response(
            "503 Service Unavailable",
            &["Retry-After: 30", "Content-Type: application/json"],
            "[]",
        ),
        response("200 OK", &["Content-Type: application/json"], ok),
    ])
    .await;
    let options = ClientOptions {
        backoff_max: Duration::from_millis(300),
        ..quick()
    };
    let started = Instant::now();
    let server = client(&url, options).get_server("s1").await.unwrap();
    let waited = started.elapsed();
    assert_eq!(server.name, "n");
    assert_eq!(served.load(Ordering::SeqCst), 2);
    assert!(
        waited >= Duration::from_millis(280),
        "Retry-After raised the delay to the cap: {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "but not to 30 s: {waited:?}");
}

#[tokio::test]
async fn a_204_labelled_text_html_is_not_parsed() {
    let (url, served) = stub(vec![response(
        "204 No Content",
        &["Content-Type: text/html; charset=utf-8"],
        "",
    )])
    .await;
    client(&url, quick()).delete_snapshot("sn1").await.unwrap();
    assert_eq!(served.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_snapshot_clone_answered_with_a_bare_drive_object_is_decoded() {
    let bare = r#"{"uuid":"d-new","name":"restored","size":2147483648,"media":"disk","status":"cloning_dst",
                   "storage_type":"dssd","meta":{"csi_source_snapshot":"sn1"},"mounted_on":[],"jobs":[]}"#;
    let enveloped = format!(r#"{{"objects":[{bare}]}}"#);
    let (url, served) = stub(vec![
        response("202 ACCEPTED", &["Content-Type: application/json"], bare),
        response("202 ACCEPTED", &["Content-Type: application/json"], &enveloped),
        response(
            "202 ACCEPTED",
            &["Content-Type: application/json"],
            r#"{"objects":[]}"#,
        ),
    ])
    .await;
    let c = client(&url, quick());
    let request = cs_api::SnapshotCloneRequest::new("restored", 2 << 30);
    for _ in 0..2 {
        let d = c.clone_snapshot("sn1", &request).await.unwrap();
        assert_eq!((d.uuid.as_str(), d.size), ("d-new", 2 << 30));
        assert_eq!(d.status, cs_api::DriveStatus::CloningDst);
        assert_eq!(d.meta.get("csi_source_snapshot").map(String::as_str), Some("sn1"));
    }
    let e = c.clone_snapshot("sn1", &request).await.unwrap_err();
    assert!(
        matches!(e, Error::Decode { .. }),
        "an empty envelope is no drive: {e}"
    );
    assert_eq!(served.load(Ordering::SeqCst), 3);
}
