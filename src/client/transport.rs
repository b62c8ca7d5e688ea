//! The transport policy: which URLs are accepted, how the HTTP client is built (token
//! header, no redirects, system roots plus `ca_file`, proxy logged), and how a path
//! becomes a URL.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};

use super::error::{error_chain, RAW_BODY_CHARS};
use super::{Client, ClientError, ClientOptions, Path, Token};

/// The checked base URL of `instance`, ending in exactly one slash.
///
/// Refuses URLs with credentials and plain http to a host that is not loopback (unless
/// `options.allow_insecure_http`).
pub(super) fn base_url(
    instance: &str,
    base_url: &str,
    options: &ClientOptions,
) -> Result<url::Url, ClientError> {
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
    Ok(base)
}

/// The HTTP client for `instance`: the token as a sensitive default header, no
/// redirects, the system's roots plus `ca_file`, and the proxy logged.
pub(super) fn http_client(
    instance: &str,
    base: &url::Url,
    token: &Token,
    options: &ClientOptions,
) -> Result<reqwest::Client, ClientError> {
    let mut auth = HeaderValue::from_str(&token.0).map_err(|_| ClientError::TokenNotSendable {
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
    } else if let Some(proxy) = proxy_for(base) {
        tracing::info!(instance, proxy = %proxy, "requests go through a proxy from the environment (--no-proxy ignores it)");
    }
    if let Some(path) = &options.ca_file {
        for cert in read_ca_file(instance, path)? {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| ClientError::Unreachable {
        instance: instance.to_string(),
        url: base.to_string(),
        detail: error_chain(&e),
    })
}

impl Client {
    /// The URL of `path`: each segment percent-encoded (`/` and `%` included); a segment
    /// that would change the path itself (`.`, `..`, empty) is refused.
    pub(super) fn url(&self, path: &Path<'_>) -> Result<url::Url, ClientError> {
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
