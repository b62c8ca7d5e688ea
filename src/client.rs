//! The one place that talks HTTP to Unleash: URLs, the token header, retries, error
//! messages that name the instance, and a request counter.
//!
//! The state reader and the applier both go through [`Client`]; nothing else builds URLs.
//! The token is sent as a sensitive header and never appears in an error, a log line or a
//! `Debug` dump. A 429 answer is waited out as [`rate_limit`] says, for every request.
//!
//! Transport policy (docs/security.md): redirects are never followed (a 3xx is an error);
//! `http://` only to loopback unless the instance allows it; no credentials in URLs; a
//! proxy from the environment is logged at `-v` (`--no-proxy` ignores it); a private CA
//! may be added per instance; answers are capped in size while they stream in; server
//! text in errors is cleaned by [`crate::redact`].

mod rate_limit;

use std::fmt;
use std::path::PathBuf;
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

/// The largest answer read unless `--max-response-size` says otherwise: 256 MiB.
pub const DEFAULT_MAX_RESPONSE_SIZE: u64 = 256 * 1024 * 1024;

/// How many characters of server text an error shows: enough for Unleash's `message` and
/// its `details`, not a whole error page.
const MESSAGE_CHARS: usize = 1000;
/// How many characters of a body that is not an Unleash error an error shows.
const RAW_BODY_CHARS: usize = 300;

/// Connection settings: the run's (timeout, retries, limits, proxy) and the instance's
/// (`allow_insecure_http`, `ca_file`).
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Time allowed for one request, connection included.
    pub timeout: Duration,
    /// How many times a failed request is retried (and how many times a create whose
    /// answer was lost is looked up and sent again).
    pub retries: u32,
    /// The first backoff delay; doubled on each retry up to [`MAX_BACKOFF`], with jitter.
    pub backoff: Duration,
    /// How 429 answers are waited out (shared by every client of the run).
    pub rate_limit: RateLimitWait,
    /// The largest answer read, in bytes; larger ones fail while they stream in.
    pub max_response_size: u64,
    /// Ignore the proxy environment variables (`--no-proxy`).
    pub no_proxy: bool,
    /// Allow `http://` to an address that is not loopback (the token crosses in clear).
    pub allow_insecure_http: bool,
    /// A PEM file of CA certificates trusted in addition to the system's.
    pub ca_file: Option<PathBuf>,
}

/// The longest wait between two attempts of one request (before jitter).
pub const MAX_BACKOFF: Duration = Duration::from_secs(4);

impl Default for ClientOptions {
    /// Sized for gateways that fail about one request in eight (13 %): a request fails for
    /// good only after 9 failures in a row (0.13^9, about 1 in 10^8 requests), after
    /// waiting at most 0.2 + 0.4 + ... + 4 + 4 s, about 19 s with jitter.
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            retries: 8,
            backoff: Duration::from_millis(200),
            rate_limit: RateLimitWait::default(),
            max_response_size: DEFAULT_MAX_RESPONSE_SIZE,
            no_proxy: false,
            allow_insecure_http: false,
            ca_file: None,
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
    /// `http://` to a host that is not loopback, without `allow_insecure_http`.
    #[error("{instance}: refusing plain http to {host}, which is not a loopback address: the token would cross the network in clear")]
    InsecureHttp {
        /// Instance name.
        instance: String,
        /// The host of the URL.
        host: String,
    },
    /// The URL carries a user name or password.
    #[error("{instance}: the URL carries credentials (user name or password); they would be sent instead of the token")]
    UrlCredentials {
        /// Instance name.
        instance: String,
    },
    /// The `ca_file` could not be read or holds no certificate.
    #[error("{instance}: cannot use ca_file {}: {detail}", path.display())]
    CaFile {
        /// Instance name.
        instance: String,
        /// The file.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
    /// The token cannot be sent in an HTTP header.
    #[error("{instance}: the token contains characters that cannot be sent in a header")]
    TokenNotSendable {
        /// Instance name.
        instance: String,
    },
    /// A name would make a path segment that changes the path (`.`, `..`, empty).
    #[error("{instance}: `{segment}` cannot be a path segment of a request")]
    PathSegment {
        /// Instance name.
        instance: String,
        /// The segment, escaped.
        segment: String,
    },
    /// The server answered with a redirect, which is never followed.
    #[error("{instance}: {method} {path} was answered with a redirect (HTTP {status} to {location}), which flagfleet does not follow")]
    Redirect {
        /// Instance name.
        instance: String,
        /// Method.
        method: Method,
        /// Path requested.
        path: String,
        /// The 3xx status.
        status: u16,
        /// The `Location` header, cleaned.
        location: String,
    },
    /// The answer was larger than the limit.
    #[error("{instance}: the answer to {method} {path} is larger than {limit} bytes (--max-response-size)")]
    TooLarge {
        /// Instance name.
        instance: String,
        /// Method.
        method: Method,
        /// Path requested.
        path: String,
        /// The limit in bytes.
        limit: u64,
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

    /// Whether the server refused a create because the object exists already: 409, or
    /// the HTTP 500 Unleash answers when two creates of one tag race
    /// (`duplicate key value violates unique constraint`).
    pub fn is_already_exists(&self) -> bool {
        match self {
            ClientError::Status { status: 409, .. } => true,
            ClientError::Status {
                status: 500,
                message,
                ..
            } => message.contains("duplicate key value violates unique constraint"),
            _ => false,
        }
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
    ///
    /// Refuses URLs with credentials and plain http to a host that is not loopback (unless
    /// `options.allow_insecure_http`), before anything is sent.
    pub fn new(
        instance: &str,
        base_url: &str,
        token: &Token,
        options: ClientOptions,
    ) -> Result<Self, ClientError> {
        let url_error = || ClientError::Url {
            instance: instance.to_string(),
            url: crate::redact::clean(base_url, RAW_BODY_CHARS),
        };
        let mut base = url::Url::parse(base_url).map_err(|_| url_error())?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(url_error());
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(ClientError::UrlCredentials {
                instance: instance.to_string(),
            });
        }
        if base.scheme() == "http" && !options.allow_insecure_http && !is_loopback(&base) {
            return Err(ClientError::InsecureHttp {
                instance: instance.to_string(),
                host: base.host_str().unwrap_or_default().to_string(),
            });
        }
        // Path segments are appended to the base; make sure it ends in exactly one slash.
        let trimmed = base.path().trim_end_matches('/').to_string();
        base.set_path(&format!("{trimmed}/"));

        let mut auth =
            HeaderValue::from_str(&token.0).map_err(|_| ClientError::TokenNotSendable {
                instance: instance.to_string(),
            })?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        let mut builder = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("flagfleet/", env!("CARGO_PKG_VERSION")))
            .timeout(options.timeout)
            .connect_timeout(options.timeout.min(Duration::from_secs(10)))
            // A redirect of a write turns it into a GET without body that "succeeds", and
            // may carry the token elsewhere: a 3xx is an error instead.
            .redirect(reqwest::redirect::Policy::none())
            // The system's roots (which an enterprise manages) plus `ca_file`; no root
            // list is compiled into the binary (docs/security.md).
            .tls_built_in_native_certs(true);
        if options.no_proxy {
            builder = builder.no_proxy();
        } else if let Some(proxy) = proxy_for(&base) {
            tracing::info!(instance, proxy = %proxy, "requests go through a proxy from the environment (--no-proxy ignores it)");
        }
        if let Some(path) = &options.ca_file {
            for cert in read_ca_file(instance, path)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| ClientError::Unreachable {
            instance: instance.to_string(),
            url: base.to_string(),
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

    /// How many times a failed request is retried (see [`ClientOptions::retries`]).
    pub fn retries(&self) -> u32 {
        self.options.retries
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

    /// A write that creates something (POST): repeated only when it surely was not
    /// processed (429, 503, or no connection made). After an ambiguous failure
    /// ([`ClientError::is_ambiguous`]) the caller must find out whether it took effect
    /// before sending it again, or a flaky network could leave a duplicate.
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
        let url = self.url(path)?;
        let shown = path.to_string();
        let mut retry = 0;
        let mut limited = 0;
        loop {
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
            let transient = match &outcome {
                Ok(r) if is_transient(r.status()) => Some(Transient {
                    what: format!("HTTP {}", r.status().as_u16()),
                    retry_after: retry_after(r.headers()),
                    not_processed: not_processed(r.status()),
                }),
                Err(e) if !e.is_builder() => Some(Transient {
                    what: error_chain(e),
                    retry_after: None,
                    // A connection that was never made carried no request.
                    not_processed: e.is_connect(),
                }),
                _ => None,
            };
            if let Some(t) = transient {
                // A write that creates is repeated only when it surely was not processed;
                // otherwise the caller looks first.
                if (idempotent || t.not_processed) && retry < self.options.retries {
                    retry += 1;
                    let delay = t.retry_after.unwrap_or_else(|| self.backoff(retry));
                    tracing::warn!(
                        instance = %self.instance, %method, path = %shown, retry,
                        "{}; retry {retry} of {} in {} ms", t.what, self.options.retries,
                        delay.as_millis()
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
                retry, ms = started.elapsed().as_millis() as u64, "request"
            );
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                    .unwrap_or_else(|| "(no Location)".into());
                return Err(ClientError::Redirect {
                    instance: self.instance.clone(),
                    method,
                    path: shown,
                    status: status.as_u16(),
                    location: crate::redact::clean(&location, RAW_BODY_CHARS),
                });
            }
            let bytes = self.body(response, &method, &shown, &url).await?;
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
                // serde quotes the offending value, which the server chose.
                detail: crate::redact::clean(&e.to_string(), MESSAGE_CHARS),
            });
        }
    }

    /// Reads a body, failing as soon as it grows past `max_response_size`.
    async fn body(
        &self,
        mut response: reqwest::Response,
        method: &Method,
        path: &str,
        url: &url::Url,
    ) -> Result<Vec<u8>, ClientError> {
        let limit = self.options.max_response_size;
        let too_large = || ClientError::TooLarge {
            instance: self.instance.clone(),
            method: method.clone(),
            path: path.to_string(),
            limit,
        };
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let mut bytes = Vec::with_capacity(
            response
                .content_length()
                .map_or(0, |n| n.min(1 << 20) as usize),
        );
        loop {
            let chunk = response
                .chunk()
                .await
                .map_err(|e| ClientError::Unreachable {
                    instance: self.instance.clone(),
                    url: url.to_string(),
                    detail: error_chain(&e),
                })?;
            let Some(chunk) = chunk else {
                return Ok(bytes);
            };
            if (bytes.len() + chunk.len()) as u64 > limit {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
    }

    /// The URL of `path`: each segment percent-encoded (`/` and `%` included); a segment
    /// that would change the path itself (`.`, `..`, empty) is refused.
    fn url(&self, path: &Path<'_>) -> Result<url::Url, ClientError> {
        if let Some(bad) = path
            .segments
            .iter()
            .find(|s| matches!(**s, "" | "." | ".."))
        {
            return Err(ClientError::PathSegment {
                instance: self.instance.clone(),
                segment: (*bad).to_string(),
            });
        }
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
        Ok(url)
    }

    /// The wait before retry `retry` (1, 2, ...): exponential up to [`MAX_BACKOFF`], with
    /// jitter of +-50 % so that concurrent requests that failed together do not retry
    /// together.
    fn backoff(&self, retry: u32) -> Duration {
        let base = self
            .options
            .backoff
            .saturating_mul(1 << (retry.max(1) - 1).min(16))
            .min(MAX_BACKOFF.max(self.options.backoff));
        let jitter = fastrand::f64() + 0.5;
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

/// A failure worth another attempt.
struct Transient {
    /// What failed, for the log line.
    what: String,
    /// The server's `Retry-After`, if it gave one.
    retry_after: Option<Duration>,
    /// Whether the request surely had no effect, so that even a create may be repeated.
    not_processed: bool,
}

/// A 503 comes from a gateway or a server that is not taking requests (and a 429, waited
/// out apart, is refused before any work). 502 and 504 may come after the server acted.
fn not_processed(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    )
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
            return crate::redact::clean(&parts.join("; "), MESSAGE_CHARS);
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "(empty body)".to_string()
    } else {
        crate::redact::clean(text, RAW_BODY_CHARS)
    }
}

/// Whether the URL's host is a loopback address (`127.0.0.0/8`, `::1`, `localhost`).
pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        None => false,
    }
}

/// The proxy reqwest will use for `url` from the environment (`HTTPS_PROXY`,
/// `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`), without its credentials; `None` for none.
fn proxy_for(url: &url::Url) -> Option<String> {
    let uri: http::Uri = url.as_str().parse().ok()?;
    let intercept = hyper_util::client::proxy::matcher::Matcher::from_env().intercept(&uri)?;
    let proxy = intercept.uri();
    Some(format!(
        "{}://{}",
        proxy.scheme_str().unwrap_or("http"),
        proxy
            .authority()
            .map_or("", |a| a.as_str().rsplit('@').next().unwrap_or(""))
    ))
}

/// The certificates of a PEM `ca_file`.
fn read_ca_file(
    instance: &str,
    path: &std::path::Path,
) -> Result<Vec<reqwest::Certificate>, ClientError> {
    let error = |detail: String| ClientError::CaFile {
        instance: instance.to_string(),
        path: path.to_path_buf(),
        detail,
    };
    let pem = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| error(error_chain(&e)))?;
    if certs.is_empty() {
        return Err(error("no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// An error and its causes, cleaned (a proxy's or server's words may be among them).
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
    crate::redact::clean(&out, MESSAGE_CHARS)
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
            ..ClientOptions::default()
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
    async fn a_create_is_repeated_after_503_and_429_but_not_after_a_gateway_error() {
        let url = stub(vec![
            "HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
            "HTTP/1.1 429 Too Many Requests\r\nretry-after: 0\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
            OK,
        ])
        .await;
        let c = client(&url);
        let v: serde_json::Value = c.create(Path::new(&["api", "x"]), &()).await.unwrap();
        assert_eq!((v["ok"].as_bool(), c.requests()), (Some(true), 3));

        for ambiguous in ["502 Bad Gateway", "504 Gateway Timeout"] {
            let answer =
                format!("HTTP/1.1 {ambiguous}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
            let url = crate::stub::serve(vec![answer, OK.to_string()]).await.0;
            let c = client(&url);
            let err = c
                .create::<serde_json::Value, _>(Path::new(&["api", "x"]), &())
                .await
                .unwrap_err();
            assert!(err.is_ambiguous(), "{err}");
            assert_eq!(c.requests(), 1, "{ambiguous}: the caller looks first");
        }
    }

    #[tokio::test]
    async fn a_create_whose_connection_drops_without_an_answer_is_not_repeated() {
        // The stub closes the connection without a word: the request may have arrived.
        let url = stub(vec!["", OK]).await;
        let c = client(&url);
        let err = c
            .create::<serde_json::Value, _>(Path::new(&["api", "x"]), &())
            .await
            .unwrap_err();
        assert!(err.is_ambiguous(), "{err}");
        assert_eq!(c.requests(), 1);
    }

    #[test]
    fn a_409_and_unleashs_duplicate_key_500_mean_the_object_exists() {
        let status = |status: u16, message: &str| ClientError::Status {
            instance: "dc1".into(),
            method: Method::POST,
            path: "/api/admin/tags".into(),
            status,
            message: message.into(),
        };
        assert!(status(409, "exists").is_already_exists());
        assert!(status(
            500,
            r#"duplicate key value violates unique constraint "tags_pkey""#
        )
        .is_already_exists());
        assert!(!status(500, "Internal Server Error").is_already_exists());
        assert!(!status(400, "bad").is_already_exists());
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
        let c = client("https://unleash.example.invalid/unleash/");
        let url = c.url(&Path::new(&["api", "features", "a b/c"]).query("q", "x&y"));
        assert_eq!(
            url.unwrap().as_str(),
            "https://unleash.example.invalid/unleash/api/features/a%20b%2Fc?q=x%26y"
        );
        for bad in [".", "..", ""] {
            let err = c.url(&Path::new(&["api", "features", bad])).unwrap_err();
            assert!(matches!(err, ClientError::PathSegment { .. }), "{bad}");
        }
    }
}
