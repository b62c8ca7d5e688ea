//! What can go wrong talking to an instance, and the server's words made safe to show.

use std::path::PathBuf;

use reqwest::Method;

use super::Exceeded;

/// How many characters of server text an error shows: enough for Unleash's `message` and
/// its `details`, not a whole error page.
pub(super) const MESSAGE_CHARS: usize = 1000;
/// How many characters of a body that is not an Unleash error an error shows.
pub(super) const RAW_BODY_CHARS: usize = 300;

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

/// The message of an Unleash error body (`{"message": ..., "details": [{"message": ...}]}`),
/// or the start of the body when it is something else.
pub(super) fn server_message(body: &[u8]) -> String {
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

/// An error and its causes, cleaned (a proxy's or server's words may be among them).
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
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
