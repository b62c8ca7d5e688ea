//! Faults a real server will not produce on demand (429, 503, a token refused mid-way),
//! injected by a tiny HTTP stub on 127.0.0.1:0.
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;

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
