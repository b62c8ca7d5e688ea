//! A tiny HTTP stub on 127.0.0.1:0 for tests that inject faults a real Unleash server will
//! not produce on demand (502 after acting, 429 with Retry-After, a refused token).

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The request lines (`METHOD /path`) the stub received, in order.
pub(crate) type Seen = Arc<Mutex<Vec<String>>>;

/// Serves `responses` (raw HTTP), one per connection, in order; returns the base URL and
/// the request lines seen.
pub(crate) async fn serve(responses: Vec<String>) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        for response in responses {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 8192];
            let n = socket.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]);
            let line = head.lines().next().unwrap_or_default();
            let line = line.rsplit_once(' ').map_or(line, |(l, _)| l).to_string();
            log.lock().unwrap().push(line);
            socket.write_all(response.as_bytes()).await.unwrap();
            socket.shutdown().await.unwrap();
        }
    });
    (format!("http://{addr}"), seen)
}

/// A raw HTTP response with a JSON (or empty) body.
pub(crate) fn response(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}
