//! Sending one request: retries with backoff and jitter, 429s waited out, the answer
//! read within the size limit and turned into a value or a [`ClientError`].

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::{error_chain, server_message, MESSAGE_CHARS, RAW_BODY_CHARS};
use super::{rate_limit, Client, ClientError, Path, MAX_BACKOFF};

impl Client {
    pub(super) async fn send<T: DeserializeOwned, B: Serialize>(
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
            let transient = outcome
                .as_ref()
                .map_or_else(Transient::error, Transient::answer);
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
            tracing::debug!(
                instance = %self.instance, %method, path = %shown,
                status = response.status().as_u16(), retry,
                ms = started.elapsed().as_millis() as u64, "request"
            );
            return self.answer(response, method, shown, &url).await;
        }
    }

    /// The value of a final answer, or the error it means: a redirect (never followed),
    /// a refused token, another error status, or a body that does not decode.
    async fn answer<T: DeserializeOwned>(
        &self,
        response: reqwest::Response,
        method: Method,
        shown: String,
        url: &url::Url,
    ) -> Result<T, ClientError> {
        let status = response.status();
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
        let bytes = self.body(response, &method, &shown, url).await?;
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
        serde_json::from_slice(body).map_err(|e| ClientError::Decode {
            instance: self.instance.clone(),
            method,
            path: shown,
            // serde quotes the offending value, which the server chose.
            detail: crate::redact::clean(&e.to_string(), MESSAGE_CHARS),
        })
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

/// A failure worth another attempt.
struct Transient {
    /// What failed, for the log line.
    what: String,
    /// The server's `Retry-After`, if it gave one.
    retry_after: Option<Duration>,
    /// Whether the request surely had no effect, so that even a create may be repeated.
    not_processed: bool,
}

impl Transient {
    /// An answer worth another attempt (502, 503, 504), or `None`.
    fn answer(r: &reqwest::Response) -> Option<Self> {
        is_transient(r.status()).then(|| Transient {
            what: format!("HTTP {}", r.status().as_u16()),
            retry_after: retry_after(r.headers()),
            not_processed: not_processed(r.status()),
        })
    }

    /// A failure to send worth another attempt (any but a request that could not be
    /// built), or `None`.
    fn error(e: &reqwest::Error) -> Option<Self> {
        (!e.is_builder()).then(|| Transient {
            what: error_chain(e),
            retry_after: None,
            // A connection that was never made carried no request.
            not_processed: e.is_connect(),
        })
    }
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
