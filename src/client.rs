//! The one place that talks HTTP to Unleash: URLs, the token header, retries, error
//! messages that name the instance, and a request counter.
//!
//! The state reader and the applier both go through [`Client`]; nothing else builds URLs.
//! The token is sent as a sensitive header and never appears in an error, a log line or a
//! `Debug` dump. A 429 answer is waited out as [`rate_limit`] says, for every request.

mod rate_limit;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use rate_limit::{Exceeded, Notice, RateLimitWait, Wait, DEFAULT_MAX_WAIT};

/// An Unleash API token. Its value is only ever put into the `Authorization` header.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// Wraps a token value (surrounding whitespace, e.g. a file's trailing newline, dropped).
    pub fn new(value: impl Into<String>) -> Self {
        Token(value.into().trim().to_string())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Connection settings shared by every instance of a run.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Time allowed for one request, connection included.
    pub timeout: Duration,
    /// How many times a failed idempotent request is retried.
    pub retries: u32,
    /// The first backoff delay; doubled on each retry, with jitter.
    pub backoff: Duration,
    /// How 429 answers are waited out (shared by every client of the run).
    pub rate_limit: RateLimitWait,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            retries: 3,
            backoff: Duration::from_millis(250),
            rate_limit: RateLimitWait::default(),
        }
    }
}

/// A failed conversation with an Unleash instance.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The configured URL is not usable.
    #[error("{instance}: invalid URL `{url}`")]
    Url {
        /// Instance name.
        instance: String,
        /// The URL as configured.
        url: String,
    },
    /// No answer: connection refused, DNS, TLS, timeout.
    #[error("{instance}: cannot reach {url}: {detail}")]
    Unreachable {
        /// Instance name.
        instance: String,
        /// The URL requested (never carries the token).
        url: String,
        /// What failed, with its causes.
        detail: String,
    },
    /// The server refused the token.
    #[error("{instance}: the API token was refused (HTTP {status} on {method} {path}): {message}")]
    Unauthorized {
        /// Instance name.
        instance: String,
        /// Method.
        method: Method,
        /// Path requested.
        path: String,
        /// 401 or 403.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// Any other error status.
    #[error("{instance}: {method} {path} failed with HTTP {status}: {message}")]
    Status {
        /// Instance name.
        instance: String,
        /// Method.
        method: Method,
        /// Path requested.
        path: String,
        /// The status code.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The server kept answering 429, and waiting longer would pass the run's bound.
    #[error("{instance}: {method} {path} is rate-limited (HTTP 429): {exceeded}")]
    RateLimited {
        /// Instance name.
        instance: String,
        /// Method.
        method: Method,
        /// Path requested.
        path: String,
        /// What was asked, spent and allowed.
        exceeded: Exceeded,
    },
    /// The answer was not what the API documents.
    #[error("{instance}: unexpected answer to {method} {path}: {detail}")]
    Decode {
        /// Instance name.
        instance: String,
        /// Method.
        method: Method,
        /// Path requested.
        path: String,
        /// What did not fit.
        detail: String,
    },
}

impl ClientError {
    /// Whether the request may have taken effect although it failed: no answer, or a
    /// gateway error that may have been sent after the server acted.
    pub fn is_ambiguous(&self) -> bool {
        matches!(self, ClientError::Unreachable { .. }) || matches!(self.status(), Some(502..=504))
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Unauthorized { status, .. } | ClientError::Status { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }
}

/// A client for one Unleash instance.
pub struct Client {
    instance: String,
    base: url::Url,
    http: reqwest::Client,
    options: ClientOptions,
    requests: AtomicU64,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("instance", &self.instance)
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for the instance `instance` at `base_url` (which may carry a path prefix).
    pub fn new(
        instance: &str,
        base_url: &str,
        token: &Token,
        options: ClientOptions,
    ) -> Result<Self, ClientError> {
        let url_error = || ClientError::Url {
            instance: instance.to_string(),
            url: base_url.to_string(),
        };
        let mut base = url::Url::parse(base_url).map_err(|_| url_error())?;
        if base.cannot_be_a_base() {
            return Err(url_error());
        }
        // Path segments are appended to the base; make sure it ends in exactly one slash.
        let trimmed = base.path().trim_end_matches('/').to_string();
        base.set_path(&format!("{trimmed}/"));

        let mut auth = HeaderValue::from_str(&token.0).map_err(|_| ClientError::Unauthorized {
            instance: instance.to_string(),
            method: Method::GET,
            path: String::new(),
            status: 0,
            message: "the token contains characters that cannot be sent in a header".into(),
        })?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("flagfleet/", env!("CARGO_PKG_VERSION")))
            .timeout(options.timeout)
            .connect_timeout(options.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| ClientError::Unreachable {
                instance: instance.to_string(),
                url: base_url.to_string(),
                detail: error_chain(&e),
            })?;
        Ok(Self {
            instance: instance.to_string(),
            base,
            http,
            options,
            requests: AtomicU64::new(0),
        })
    }

    /// The instance name this client reports in errors.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// How many HTTP requests this client has sent (retries included).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// `GET` a JSON document; retried on transient failures.
    pub async fn get<T: DeserializeOwned>(&self, path: Path<'_>) -> Result<T, ClientError> {
        self.send(Method::GET, &path, None::<&()>, true).await
    }

    /// `POST` a request that only reads (such as the batch export); retried like a `GET`.
    pub async fn post_read<T: DeserializeOwned, B: Serialize>(
        &self,
        path: Path<'_>,
        body: &B,
    ) -> Result<T, ClientError> {
        self.send(Method::POST, &path, Some(body), true).await
    }

    /// A write that may be repeated safely (PUT, DELETE, enabling, re-ordering): retried on
    /// transient failures like a read.
    pub async fn write_idempotent<T: DeserializeOwned, B: Serialize>(
        &self,
        method: Method,
        path: Path<'_>,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        self.send(method, &path, body, true).await
    }

    /// A write that creates something (POST): sent once. After an ambiguous failure the
    /// caller must find out whether it took effect before trying again, or a flaky network
    /// could leave a duplicate.
    pub async fn create<T: DeserializeOwned, B: Serialize>(
        &self,
        path: Path<'_>,
        body: &B,
    ) -> Result<T, ClientError> {
        self.send(Method::POST, &path, Some(body), false).await
    }

    async fn send<T: DeserializeOwned, B: Serialize>(
        &self,
        method: Method,
        path: &Path<'_>,
        body: Option<&B>,
        idempotent: bool,
    ) -> Result<T, ClientError> {
        let url = self.url(path);
        let shown = path.to_string();
        let mut attempt = 0;
        let mut limited = 0;
        loop {
            attempt += 1;
            let mut request = self.http.request(method.clone(), url.clone());
            if let Some(body) = body {
                request = request.json(body);
            }
            let started = Instant::now();
            self.requests.fetch_add(1, Ordering::Relaxed);
            let outcome = request.send().await;
            // 429: refused before any work, so any request may be sent again, once the
            // run's rate-limit policy has waited (or refused to wait).
            if let Ok(r) = &outcome {
                if r.status() == StatusCode::TOO_MANY_REQUESTS {
                    limited += 1;
                    let asked = rate_limit::asked_delay(r.headers());
                    // Never less than our own backoff, so `Retry-After: 0` cannot spin.
                    let delay = asked.unwrap_or_default().max(self.backoff(limited));
                    self.options
                        .rate_limit
                        .wait(&self.instance, &method, &shown, delay, asked.is_some())
                        .await
                        .map_err(|exceeded| ClientError::RateLimited {
                            instance: self.instance.clone(),
                            method: method.clone(),
                            path: shown.clone(),
                            exceeded,
                        })?;
                    continue;
                }
            }
            let retry_after = match &outcome {
                Ok(r) if is_transient(r.status()) => Some(retry_after(r.headers())),
                Err(e) if !e.is_builder() => Some(None),
                _ => None,
            };
            // A write that creates is repeated only when it surely did not arrive: a
            // connection that was never made.
            let surely_not_sent = matches!(&outcome, Err(e) if e.is_connect());
            if let Some(wait) = retry_after {
                if (idempotent || surely_not_sent) && attempt <= self.options.retries {
                    let delay = wait.unwrap_or_else(|| self.backoff(attempt));
                    tracing::warn!(
                        instance = %self.instance, %method, path = %shown, attempt,
                        "transient failure, retrying in {} ms", delay.as_millis()
                    );
                    tokio::time::sleep(delay).await;
                    continue;
                }
            }
            let response = outcome.map_err(|e| ClientError::Unreachable {
                instance: self.instance.clone(),
                url: url.to_string(),
                detail: error_chain(&e),
            })?;
            let status = response.status();
            tracing::debug!(
                instance = %self.instance, %method, path = %shown, status = status.as_u16(),
                ms = started.elapsed().as_millis() as u64, "request"
            );
            let bytes = response
                .bytes()
                .await
                .map_err(|e| ClientError::Unreachable {
                    instance: self.instance.clone(),
                    url: url.to_string(),
                    detail: error_chain(&e),
                })?;
            if !status.is_success() {
                let message = server_message(&bytes);
                let (instance, path) = (self.instance.clone(), shown);
                return Err(match status {
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ClientError::Unauthorized {
                        instance,
                        method,
                        path,
                        status: status.as_u16(),
                        message,
                    },
                    _ => ClientError::Status {
                        instance,
                        method,
                        path,
                        status: status.as_u16(),
                        message,
                    },
                });
            }
            let body = if bytes.is_empty() {
                &b"null"[..]
            } else {
                &bytes[..]
            };
            return serde_json::from_slice(body).map_err(|e| ClientError::Decode {
                instance: self.instance.clone(),
                method,
                path: shown,
                detail: e.to_string(),
            });
        }
    }

    fn url(&self, path: &Path<'_>) -> url::Url {
        let mut url = self.base.clone();
        {
            // `base` is known to be a base URL (checked in `new`).
            if let Ok(mut segments) = url.path_segments_mut() {
                segments.pop_if_empty().extend(path.segments.iter());
            }
        }
        if !path.query.is_empty() {
            url.query_pairs_mut().extend_pairs(path.query.iter());
        }
        url
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let base = self
            .options
            .backoff
            .saturating_mul(1 << (attempt - 1).min(6));
        let jitter = fastrand::f64() * 0.5 + 0.75;
        base.mul_f64(jitter)
    }
}

/// A request path: segments (escaped when the URL is built) and query pairs.
#[derive(Debug, Clone, Default)]
pub struct Path<'a> {
    segments: Vec<&'a str>,
    query: Vec<(&'a str, &'a str)>,
}

impl<'a> Path<'a> {
    /// A path from its segments, e.g. `["api", "admin", "segments"]`.
    pub fn new(segments: &[&'a str]) -> Self {
        Self {
            segments: segments.to_vec(),
            query: Vec::new(),
        }
    }

    /// Adds a query parameter.
    pub fn query(mut self, key: &'a str, value: &'a str) -> Self {
        self.query.push((key, value));
        self
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.segments {
            write!(f, "/{s}")?;
        }
        for (i, (k, v)) in self.query.iter().enumerate() {
            write!(f, "{}{k}={v}", if i == 0 { '?' } else { '&' })?;
        }
        Ok(())
    }
}

/// Answers worth retrying a few times with backoff (429 is waited out apart, see
/// [`rate_limit`]).
fn is_transient(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
    )
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs.min(60)))
}

/// The message of an Unleash error body (`{"message": ..., "details": [{"message": ...}]}`),
/// or the start of the body when it is something else.
fn server_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Detail {
        message: Option<String>,
        description: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        message: Option<String>,
        #[serde(default)]
        details: Vec<Detail>,
    }
    if let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body) {
        let mut parts: Vec<String> = parsed.message.into_iter().collect();
        for d in parsed.details {
            if let Some(m) = d.message.or(d.description) {
                if !parts.contains(&m) {
                    parts.push(m);
                }
            }
        }
        if !parts.is_empty() {
            return parts.join("; ");
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "(empty body)".to_string()
    } else {
        text.chars().take(300).collect()
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    //! Faults a real server will not produce on demand (429, 503, a token refused mid-way),
    //! injected by a tiny HTTP stub on 127.0.0.1:0.
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Serves raw responses, one per connection, and returns the base URL.
    async fn stub(responses: Vec<&'static str>) -> String {
        crate::stub::serve(responses.into_iter().map(String::from).collect())
            .await
            .0
    }

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: 11\r\n\r\n{\"ok\":true}";

    fn client(url: &str) -> Client {
        client_waiting(url, RateLimitWait::default())
    }

    fn client_waiting(url: &str, rate_limit: RateLimitWait) -> Client {
        let options = ClientOptions {
            timeout: Duration::from_secs(5),
            retries: 3,
            backoff: Duration::from_millis(1),
            rate_limit,
        };
        Client::new("stub", url, &Token::new("*:*.secret-value"), options).unwrap()
    }

    const LIMITED: &str = "HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";

    /// A policy allowing `max` in all, and the waits it announced.
    fn announcing(max: Duration) -> (RateLimitWait, Arc<Mutex<Vec<Wait>>>) {
        let seen: Arc<Mutex<Vec<Wait>>> = Arc::default();
        let log = seen.clone();
        let notice: Notice = Arc::new(move |w: &Wait| log.lock().unwrap().push(w.clone()));
        (RateLimitWait::new(max).with_notice(notice), seen)
    }

    #[tokio::test]
    async fn a_429_is_announced_waited_out_and_even_a_create_is_sent_again() {
        let (url, requests) = crate::stub::serve(vec![LIMITED.into(), OK.into()]).await;
        let (policy, waits) = announcing(Duration::from_secs(10));
        let c = client_waiting(&url, policy);
        let started = Instant::now();
        let v: serde_json::Value = c
            .create(Path::new(&["api", "things"]), &serde_json::json!({}))
            .await
            .unwrap();
        assert_eq!(v["ok"], true);
        assert!(started.elapsed() >= Duration::from_millis(900));
        assert_eq!(*requests.lock().unwrap(), ["POST /api/things"; 2]);
        let waits = waits.lock().unwrap();
        assert_eq!(waits.len(), 1);
        assert_eq!(
            waits[0].to_string(),
            "stub: POST /api/things is rate-limited (HTTP 429); waiting 1 s as the server asks (9 s of --max-wait left)"
        );
    }

    #[tokio::test]
    async fn a_wait_past_the_bound_fails_at_once_with_what_was_asked() {
        let (url, _) = crate::stub::serve(vec![LIMITED.into()]).await;
        let (policy, waits) = announcing(Duration::from_millis(500));
        let c = client_waiting(&url, policy);
        let started = Instant::now();
        let err = c
            .get::<serde_json::Value>(Path::new(&["api", "admin", "search", "features"]))
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(500));
        assert!(matches!(err, ClientError::RateLimited { .. }));
        assert_eq!(
            err.to_string(),
            "stub: GET /api/admin/search/features is rate-limited (HTTP 429): waiting another 1 s would pass --max-wait 0.5 s (0 s already spent waiting on rate limits in this run)"
        );
        assert!(waits.lock().unwrap().is_empty());
        assert_eq!(c.requests(), 1);
    }

    #[tokio::test]
    async fn the_bound_holds_for_the_run_not_per_client() {
        let (first, _) = crate::stub::serve(vec![LIMITED.into(), OK.into()]).await;
        let (second, _) = crate::stub::serve(vec![LIMITED.into()]).await;
        let (policy, waits) = announcing(Duration::from_millis(1500));
        let (a, b) = (
            client_waiting(&first, policy.clone()),
            client_waiting(&second, policy),
        );
        let _: serde_json::Value = a.get(Path::new(&["api", "x"])).await.unwrap();
        let err = b
            .get::<serde_json::Value>(Path::new(&["api", "x"]))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .ends_with("(1 s already spent waiting on rate limits in this run)"),
            "{err}"
        );
        assert_eq!(waits.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn transient_answers_are_retried_and_counted() {
        let url = stub(vec![
            "HTTP/1.1 429 Too Many Requests\r\nretry-after: 0\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
            "HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
            OK,
        ])
        .await;
        let c = client(&url);
        let v: serde_json::Value = c.get(Path::new(&["api", "x"])).await.unwrap();
        assert_eq!(v["ok"], true);
        assert_eq!(c.requests(), 3);
    }

    #[tokio::test]
    async fn retry_after_is_honoured() {
        let url = stub(vec![
            "HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
            OK,
        ])
        .await;
        let c = client(&url);
        let started = Instant::now();
        let _: serde_json::Value = c.get(Path::new(&["api", "x"])).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(900));
    }

    #[tokio::test]
    async fn retries_are_bounded() {
        let busy = "HTTP/1.1 502 Bad Gateway\r\nconnection: close\r\ncontent-length: 4\r\n\r\nbusy";
        let url = stub(vec![busy; 4]).await;
        let c = client(&url);
        let err = c
            .get::<serde_json::Value>(Path::new(&["api", "x"]))
            .await
            .unwrap_err();
        assert_eq!(c.requests(), 4);
        assert_eq!(
            err.to_string(),
            "stub: GET /api/x failed with HTTP 502: busy"
        );
    }

    #[tokio::test]
    async fn a_refused_token_is_reported_with_the_servers_message_and_never_echoed() {
        let url = stub(vec![
            "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: 59\r\n\r\n{\"name\":\"AuthenticationRequired\",\"message\":\"bad token xyz\"}",
        ])
        .await;
        let c = client(&url);
        let err = c
            .get::<serde_json::Value>(Path::new(&["api", "x"]))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert_eq!(
            text,
            "stub: the API token was refused (HTTP 401 on GET /api/x): bad token xyz"
        );
        assert!(!format!("{err:?}{c:?}").contains("secret-value"));
    }

    #[tokio::test]
    async fn an_answer_that_is_not_json_is_a_decode_error_naming_the_request() {
        let url = stub(vec![
            "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\nconnection: close\r\ncontent-length: 6\r\n\r\n<html>",
        ])
        .await;
        let err = client(&url)
            .get::<serde_json::Value>(Path::new(&["api", "x"]))
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Decode { .. }));
        assert!(err
            .to_string()
            .starts_with("stub: unexpected answer to GET /api/x: "));
    }

    #[test]
    fn path_segments_are_escaped_and_appended_to_a_base_with_a_prefix() {
        let c = client("https://example.com/unleash/");
        let url = c.url(&Path::new(&["api", "features", "a b/c"]).query("q", "x&y"));
        assert_eq!(
            url.as_str(),
            "https://example.com/unleash/api/features/a%20b%2Fc?q=x%26y"
        );
    }
}
