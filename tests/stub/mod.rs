//! A misbehaving Unleash, for faults a real server will not produce on demand: wrong
//! shapes, redirects, echoed tokens, escape sequences, huge or slow bodies, endless pages.
//!
//! It listens on 127.0.0.1:0 and serves two instances under path prefixes, `/hub` and
//! `/spoke`, each with well-formed minimal answers unless the test's `fault` function
//! answers a request first. Every request is recorded, so a test can prove that no write
//! reached the spoke.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the stub saw it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path and query, prefix included (`/hub/api/admin/segments`).
    pub path: String,
    /// Header lines as sent, `name: value`.
    pub headers: Vec<String>,
    /// The `Authorization` header's value.
    pub token: String,
}

impl Request {
    /// Whether this request changes something (reads that are POSTs excluded).
    pub fn is_write(&self) -> bool {
        let read_post =
            self.path.contains("/features-batch/export") || self.path.contains("/playground");
        self.method != "GET" && !(self.method == "POST" && read_post)
    }
}

/// An answer: raw bytes sent as they are, optionally the rest after a pause.
pub struct Reply {
    /// Bytes sent at once.
    pub head: Vec<u8>,
    /// A pause, then these bytes (a slow body).
    pub after: Option<(Duration, Vec<u8>)>,
}

impl Reply {
    /// A complete response with a status line, a content type and a body.
    pub fn new(status: &str, content_type: &str, body: impl AsRef<[u8]>) -> Reply {
        Reply::with_headers(status, &[("content-type", content_type)], body)
    }

    /// A JSON 200.
    pub fn json(body: impl AsRef<[u8]>) -> Reply {
        Reply::new("200 OK", "application/json", body)
    }

    /// A response with these headers (content-length and connection added).
    pub fn with_headers(status: &str, headers: &[(&str, &str)], body: impl AsRef<[u8]>) -> Reply {
        let body = body.as_ref();
        let mut head = format!("HTTP/1.1 {status}\r\nconnection: close\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        Reply {
            head: bytes,
            after: None,
        }
    }
}

/// Answers a request before the well-formed defaults do (`None`: the default answers).
pub type Fault = dyn Fn(&Request) -> Option<Reply> + Send + Sync;

/// A running stub.
pub struct Stub {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Stub {
    /// Starts a stub whose answers `fault` may replace.
    pub fn start(fault: impl Fn(&Request) -> Option<Reply> + Send + Sync + 'static) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let fault: Arc<Fault> = Arc::new(fault);
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (seen, fault) = (seen.clone(), fault.clone());
                std::thread::spawn(move || serve(stream, &seen, &*fault));
            }
        });
        Stub { base, requests }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// The writes that reached the spoke, as `METHOD path`.
    pub fn spoke_writes(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.starts_with("/spoke/") && r.is_write())
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }
}

fn serve(stream: TcpStream, seen: &Mutex<Vec<Request>>, fault: &Fault) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or_default().to_string(),
    );
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        let h = h.trim().to_string();
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        headers.push(h);
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let token = headers
        .iter()
        .find_map(|h| {
            h.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default();
    let request = Request {
        method,
        path,
        headers,
        token,
    };
    seen.lock().unwrap().push(request.clone());
    let reply = fault(&request).unwrap_or_else(|| default_reply(&request));
    let mut stream = reader.into_inner();
    let _ = stream.write_all(&reply.head);
    if let Some((pause, rest)) = reply.after {
        let _ = stream.flush();
        std::thread::sleep(pause);
        let _ = stream.write_all(&rest);
    }
}

/// The flags of each instance: the hub holds `app-one` and `app-two`, the spoke only
/// `app-one`, so a good run creates `app-two` on the spoke.
pub fn flags_of(path: &str) -> &'static [&'static str] {
    if path.starts_with("/hub/") {
        &["app-one", "app-two"]
    } else {
        &["app-one"]
    }
}

/// A well-formed export of `flags` in `production`.
pub fn export(flags: &[&str]) -> String {
    let features: Vec<_> = flags
        .iter()
        .map(|f| {
            serde_json::json!({"name": f, "type": "release", "project": "default",
                "stale": false, "impressionData": false, "archived": false})
        })
        .collect();
    let strategies: Vec<_> = flags
        .iter()
        .enumerate()
        .map(|(i, f)| {
            serde_json::json!({"id": format!("s{i}"), "name": "default", "featureName": f,
                "parameters": {}, "constraints": [], "segments": [], "variants": []})
        })
        .collect();
    let environments: Vec<_> = flags
        .iter()
        .map(|f| {
            serde_json::json!({"featureName": f, "name": f, "environment": "production",
                "enabled": true, "variants": []})
        })
        .collect();
    serde_json::json!({
        "features": features, "featureStrategies": strategies,
        "featureEnvironments": environments, "contextFields": [], "featureTags": [],
        "segments": [], "tagTypes": [], "dependencies": [], "links": []
    })
    .to_string()
}

/// The project list, counting `count` active flags.
pub fn projects(count: usize) -> String {
    format!(
        r#"{{"version":1,"projects":[{{"id":"default","name":"Default","featureCount":{count}}}]}}"#
    )
}

fn default_reply(r: &Request) -> Reply {
    let endpoint = r
        .path
        .split_once("/api/")
        .map_or("", |(_, rest)| rest)
        .split('?')
        .next()
        .unwrap_or_default();
    if r.is_write() {
        // Writes are refused: a test that reaches one has already failed its no-write check.
        return Reply::new(
            "500 Internal Server Error",
            "application/json",
            r#"{"message":"the stub takes no writes"}"#,
        );
    }
    let flags = flags_of(&r.path);
    match endpoint {
        "admin/features-batch/export" => Reply::json(export(flags)),
        "admin/segments" => Reply::json(r#"{"segments":[]}"#),
        "admin/strategies" => Reply::json(
            r#"{"version":1,"strategies":[{"name":"default","displayName":"Standard","description":"","editable":false,"deprecated":false,"parameters":[]}]}"#,
        ),
        "admin/context" => Reply::json("[]"),
        "admin/tag-types" => Reply::json(r#"{"version":1,"tagTypes":[{"name":"simple"}]}"#),
        "admin/projects" => Reply::json(projects(flags.len())),
        "admin/search/features" => Reply::json(r#"{"features":[],"total":0}"#),
        "admin/ui-config" => Reply::json(r#"{"version":"8.2.0"}"#),
        "admin/environments" => Reply::json(
            r#"{"version":1,"environments":[{"name":"production","type":"production","enabled":true,"protected":false,"sortOrder":1}]}"#,
        ),
        "admin/tags" => Reply::json(r#"{"version":1,"tags":[]}"#),
        _ => Reply::new(
            "404 Not Found",
            "application/json",
            r#"{"message":"no such route in the stub"}"#,
        ),
    }
}
