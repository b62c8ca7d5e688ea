//! A fault-injecting HTTP proxy for the end-to-end tests: it stands on 127.0.0.1:0 in front
//! of one lab server and, per request and with a fixed seed, answers 503 without
//! forwarding, forwards and then drops the connection without an answer, resets the
//! connection before forwarding, or forwards after a delay.
//!
//! One request per connection (the proxy asks the server to close, and closes towards the
//! client after each answer), so every request meets the dice once and a fault never
//! spills over into the next request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How often each fault happens, as fractions of requests (the rest are forwarded as they
/// are), and the seed of the dice.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Answered `503 Service Unavailable` without forwarding.
    pub unavailable: f64,
    /// Forwarded (the server acts), then the connection is closed without an answer.
    pub drop_after: f64,
    /// The connection is reset before anything is forwarded.
    pub reset: f64,
    /// Forwarded after [`Faults::delay_by`].
    pub delay: f64,
    /// How long a delayed request waits.
    pub delay_by: Duration,
    /// Seed of the dice.
    pub seed: u64,
}

/// How many requests the proxy saw and what it did to them.
#[derive(Debug, Default)]
pub struct Counts {
    pub requests: AtomicU64,
    pub unavailable: AtomicU64,
    pub drop_after: AtomicU64,
    pub reset: AtomicU64,
    pub delay: AtomicU64,
}

impl Counts {
    /// `(requests, 503s, drops after forwarding, resets, delays)`.
    pub fn get(&self) -> (u64, u64, u64, u64, u64) {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        (
            g(&self.requests),
            g(&self.unavailable),
            g(&self.drop_after),
            g(&self.reset),
            g(&self.delay),
        )
    }

    /// Faults injected (delays are no fault).
    pub fn faults(&self) -> u64 {
        let (_, u, d, r, _) = self.get();
        u + d + r
    }
}

/// A running proxy; stops when dropped.
pub struct Proxy {
    /// `http://127.0.0.1:PORT`, to use instead of the server's URL.
    pub url: String,
    pub counts: Arc<Counts>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

enum Fate {
    Forward,
    Unavailable,
    DropAfter,
    Reset,
    Delay,
}

impl Proxy {
    /// Starts a proxy in front of `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str, faults: Faults) -> Proxy {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let counts = Arc::new(Counts::default());
        let dice = Arc::new(Mutex::new(fastrand::Rng::with_seed(faults.seed)));
        let c = counts.clone();
        runtime.spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let (upstream, counts, dice) = (upstream.clone(), c.clone(), dice.clone());
                tokio::spawn(async move {
                    let _ = serve(client, &upstream, &counts, &dice, faults).await;
                });
            }
        });
        Proxy {
            url,
            counts,
            runtime: Some(runtime),
        }
    }
}

async fn serve(
    mut client: TcpStream,
    upstream: &str,
    counts: &Counts,
    dice: &Mutex<fastrand::Rng>,
    f: Faults,
) -> std::io::Result<()> {
    let Some(request) = read_request(&mut client).await? else {
        return Ok(());
    };
    counts.requests.fetch_add(1, Ordering::Relaxed);
    let roll = dice.lock().unwrap().f64();
    let fate = [
        (f.unavailable, Fate::Unavailable),
        (f.drop_after, Fate::DropAfter),
        (f.reset, Fate::Reset),
        (f.delay, Fate::Delay),
    ]
    .into_iter()
    .scan(0.0, |edge, (rate, fate)| {
        *edge += rate;
        Some((*edge, fate))
    })
    .find(|(edge, _)| roll < *edge)
    .map_or(Fate::Forward, |(_, fate)| fate);
    match fate {
        Fate::Unavailable => {
            counts.unavailable.fetch_add(1, Ordering::Relaxed);
            let body = "upstream unavailable (injected)";
            let answer = format!(
                "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            client.write_all(answer.as_bytes()).await?;
            client.shutdown().await
        }
        Fate::Reset => {
            counts.reset.fetch_add(1, Ordering::Relaxed);
            client.set_zero_linger()?;
            drop(client);
            Ok(())
        }
        Fate::DropAfter => {
            counts.drop_after.fetch_add(1, Ordering::Relaxed);
            forward(upstream, &request).await?;
            drop(client);
            Ok(())
        }
        Fate::Delay | Fate::Forward => {
            if matches!(fate, Fate::Delay) {
                counts.delay.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(f.delay_by).await;
            }
            let answer = forward(upstream, &request).await?;
            client.write_all(&answer).await?;
            client.shutdown().await
        }
    }
}

/// Reads one request (head and `content-length` body), with its `connection` header
/// replaced by `connection: close`.
async fn read_request(client: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    let body_start = head_end + 4;
    while buf.len() < body_start + length {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let mut out: Vec<u8> = head
        .split("\r\n")
        .filter(|l| {
            !l.split_once(':')
                .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("connection"))
        })
        .flat_map(|l| format!("{l}\r\n").into_bytes())
        .collect();
    out.extend_from_slice(b"connection: close\r\n\r\n");
    out.extend_from_slice(&buf[body_start..body_start + length]);
    Ok(Some(out))
}

/// Sends `request` to the server and returns its whole answer (it closes after it).
async fn forward(upstream: &str, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut server = TcpStream::connect(upstream).await?;
    server.write_all(request).await?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer).await?;
    Ok(answer)
}
