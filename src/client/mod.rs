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

mod error;
mod path;
mod rate_limit;
mod request;
#[cfg(test)]
mod tests;
mod transport;

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use error::ClientError;
pub use path::Path;
pub use rate_limit::{Exceeded, Notice, RateLimitWait, Wait, DEFAULT_MAX_WAIT};
pub use transport::is_loopback;

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
        let base = transport::base_url(instance, base_url, &options)?;
        let http = transport::http_client(instance, &base, token, &options)?;
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
}
