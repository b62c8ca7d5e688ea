//! The corpus of bad input (docs/security.md): each bad input is refused with its pinned,
//! exact message, and where the run could have reached a spoke, nothing was written to it.
//!
//! - snapshot files (`tests/corpus/snapshot/*.json`) as the hub of an `apply`;
//! - saved plan files, truncated or edited, given to `apply PLAN_FILE`;
//! - server answers from a stub (`tests/stub`) standing in for a broken server or proxy;
//! - a token canary: every command with `-vv` and `FLAGFLEET_LOG=trace` against the
//!   stub's error paths, which echo the token back; no token in any output or file.
//!
//! Topology files have their corpus in `tests/topologies/invalid` (tests/topology_files.rs).

mod stub;

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use stub::{Reply, Request, Stub};

const HUB_TOKEN: &str = "*:*.hub-canary-5f1e0c9a2b";
const SPOKE_TOKEN: &str = "*:*.spoke-canary-77d2b4e1c3";

/// What a run printed and its exit code.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// stdout and stderr as one text for a snapshot, with what varies scrubbed.
    fn shown(&self, scrub: &[(&str, &str)]) -> String {
        let mut text = format!(
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        for (from, to) in scrub {
            text = text.replace(from, to);
        }
        text
    }

    #[track_caller]
    fn assert_no_token(&self) {
        for token in [
            HUB_TOKEN,
            SPOKE_TOKEN,
            "hub-canary-5f1e0c9a2b",
            "spoke-canary-77d2b4e1c3",
        ] {
            assert!(
                !self.stdout.contains(token),
                "token in stdout:\n{}",
                self.stdout
            );
            assert!(
                !self.stderr.contains(token),
                "token in stderr:\n{}",
                self.stderr
            );
        }
    }
}

fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::cargo_bin("flagfleet").unwrap();
    cmd.current_dir(dir)
        .args(args)
        .env("HUB_TOKEN", HUB_TOKEN)
        .env("SPOKE_TOKEN", SPOKE_TOKEN)
        .env("NO_COLOR", "1")
        .env_remove("FLAGFLEET_LOG")
        .timeout(Duration::from_secs(60));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn corpus(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(path)
}

/// A folder with a hub snapshot `hub` and a spoke snapshot that lacks one of the hub's
/// flags (so a good hub makes apply write the spoke file).
fn file_fleet(hub: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(hub, dir.path().join("hub.json")).unwrap();
    std::fs::copy(corpus("spoke.json"), dir.path().join("dc1.json")).unwrap();
    std::fs::write(
        dir.path().join("flagfleet.toml"),
        "[hub]\nfile = \"hub.json\"\n\n[[spokes]]\nname = \"dc1\"\nfile = \"dc1.json\"\n",
    )
    .unwrap();
    dir
}

const APPLY: &[&str] = &["apply", "--auto-approve", "--backup-dir", "backups"];

#[test]
fn a_description_that_would_reorder_the_terminal_is_shown_escaped_in_every_plan_format() {
    // A spoke's description with a right-to-left override and a C1 control (NEL): raw,
    // they would make the diff under review read other than it is.
    let dir = file_fleet(&corpus("hub.json"));
    let path = dir.path().join("dc1.json");
    let mut spoke: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    spoke["state"]["flags"]["app-one"]["description"] =
        serde_json::Value::from("turns \u{202e}search\u{202c} off\u{85}");
    std::fs::write(&path, serde_json::to_vec(&spoke).unwrap()).unwrap();
    for format in ["human", "markdown", "json"] {
        let r = run(dir.path(), &["plan", "--format", format], &[]);
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        assert!(
            !r.stdout.contains(['\u{202e}', '\u{202c}', '\u{85}']),
            "{format}: {}",
            r.stdout
        );
        let shown = if format == "json" {
            r#"\\u202esearch\\u202c off\\u0085"#
        } else {
            r#"\u202esearch\u202c off\u0085"#
        };
        assert!(r.stdout.contains(shown), "{format}: {}", r.stdout);
    }
}

#[test]
fn a_good_hub_file_is_applied_so_the_no_write_checks_below_can_fail() {
    let dir = file_fleet(&corpus("hub.json"));
    let before = std::fs::read(dir.path().join("dc1.json")).unwrap();
    let r = run(dir.path(), APPLY, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_ne!(std::fs::read(dir.path().join("dc1.json")).unwrap(), before);
    assert!(dir.path().join("backups").exists());
}

#[test]
fn bad_snapshot_files_are_refused_with_exact_messages_and_nothing_is_written() {
    insta::glob!("corpus/snapshot/*.json", |path| {
        let dir = file_fleet(path);
        let before = std::fs::read(dir.path().join("dc1.json")).unwrap();
        let r = run(dir.path(), APPLY, &[]);
        assert_eq!(r.code, 1, "{}: {}{}", path.display(), r.stdout, r.stderr);
        assert_eq!(
            std::fs::read(dir.path().join("dc1.json")).unwrap(),
            before,
            "{}: the spoke file changed",
            path.display()
        );
        assert!(!dir.path().join("backups").exists(), "{}", path.display());
        insta::assert_snapshot!(r.shown(&[]));
    });
}

/// A saved plan of the quickstart-like file fleet, and the folder it is valid in.
fn saved_plan() -> (tempfile::TempDir, String) {
    let dir = file_fleet(&corpus("hub.json"));
    let r = run(dir.path(), &["plan", "--out", "plan.json"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = std::fs::read_to_string(dir.path().join("plan.json")).unwrap();
    (dir, text)
}

#[test]
fn bad_plan_files_are_refused_with_exact_messages_and_nothing_is_written() {
    type Edit = fn(&Path, &str) -> String;
    let cases: &[(&str, Edit)] = &[
        ("truncated", |_, t| t[..t.len() / 2].to_string()),
        ("empty", |_, _| String::new()),
        ("not_json", |_, _| "plan: yes\n".to_string()),
        ("a_snapshot_instead", |_, _| {
            std::fs::read_to_string(corpus("hub.json")).unwrap()
        }),
        ("another_format_version", |_, t| {
            t.replacen("\"format_version\": 1", "\"format_version\": 7", 1)
        }),
        ("edited_hub_fingerprint", |_, t| {
            let at = t.find("\"fingerprint\": \"xxh3:").unwrap() + 21;
            let mut t = t.to_string();
            t.replace_range(at..at + 4, "0000");
            t
        }),
        ("made_from_another_topology", |dir, t| {
            let topology = dir.join("flagfleet.toml");
            let text = std::fs::read_to_string(&topology).unwrap();
            std::fs::write(&topology, format!("# edited after the plan\n{text}")).unwrap();
            t.to_string()
        }),
        ("action_of_unknown_kind", |_, t| {
            t.replacen("\"kind\": \"flag\"", "\"kind\": \"dashboard\"", 1)
        }),
    ];
    for (name, edit) in cases {
        let (dir, text) = saved_plan();
        std::fs::write(dir.path().join("plan.json"), edit(dir.path(), &text)).unwrap();
        let before = std::fs::read(dir.path().join("dc1.json")).unwrap();
        let r = run(
            dir.path(),
            &["apply", "plan.json", "--backup-dir", "backups"],
            &[],
        );
        assert_eq!(r.code, 1, "{name}: {}{}", r.stdout, r.stderr);
        assert_eq!(
            std::fs::read(dir.path().join("dc1.json")).unwrap(),
            before,
            "{name}"
        );
        assert!(!dir.path().join("backups").exists(), "{name}");
        let dir_text = dir.path().display().to_string();
        insta::assert_snapshot!(
            format!("plan_file_{name}"),
            r.shown(&[(dir_text.as_str(), "[DIR]")])
        );
    }
}

/// A folder whose topology names the stub's hub and spoke.
fn live_fleet(stub: &Stub) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("flagfleet.toml"),
        format!(
            "[hub]\nurl = \"{0}/hub\"\ntoken_env = \"HUB_TOKEN\"\n\n[[spokes]]\nname = \"dc1\"\nurl = \"{0}/spoke\"\ntoken_env = \"SPOKE_TOKEN\"\n",
            stub.base
        ),
    )
    .unwrap();
    dir
}

fn is(r: &Request, instance: &str, endpoint: &str) -> bool {
    r.path
        .starts_with(&format!("/{instance}/api/admin/{endpoint}"))
}

/// Every header of the request as a body: what a misconfigured proxy echoes.
fn echo(r: &Request) -> String {
    r.headers.join("\n")
}

type FaultFn = fn(&Request) -> Option<Reply>;

/// Server answers that must be refused before anything is written, each with the extra
/// arguments of its run.
fn server_cases() -> Vec<(&'static str, &'static [&'static str], FaultFn)> {
    vec![
        ("export_is_an_empty_object", &[], |r| {
            is(r, "hub", "features-batch").then(|| Reply::json("{}"))
        }),
        ("export_is_a_list_of_items", &[], |r| {
            is(r, "hub", "features-batch").then(|| Reply::json(r#"{"items":[]}"#))
        }),
        ("export_features_is_text", &[], |r| {
            is(r, "hub", "features-batch")
                .then(|| Reply::json(r#"{"features":"none","featureStrategies":[],"tagTypes":[]}"#))
        }),
        ("hub_without_flags", &[], |r| {
            if is(r, "hub", "features-batch") {
                Some(Reply::json(stub::export(&[])))
            } else if is(r, "hub", "projects") {
                Some(Reply::json(stub::projects(0)))
            } else {
                None
            }
        }),
        ("export_lost_a_flag", &[], |r| {
            is(r, "hub", "features-batch").then(|| Reply::json(stub::export(&["app-one"])))
        }),
        ("maintenance_page_with_200", &[], |r| {
            is(r, "hub", "features-batch").then(|| {
                Reply::new(
                    "200 OK",
                    "text/html",
                    "<html><body>Down for maintenance</body></html>",
                )
            })
        }),
        ("redirect_to_a_login_page", &[], |r| {
            is(r, "hub", "features-batch").then(|| {
                let location = format!("https://sso.example.invalid/login?token={}", r.token);
                Reply::with_headers("302 Found", &[("location", &location)], "")
            })
        }),
        ("401_echoing_the_token", &[], |r| {
            is(r, "hub", "features-batch").then(|| {
                let body = serde_json::json!({"name": "AuthenticationRequired",
                    "message": format!("token {} is not valid", r.token)});
                Reply::new("401 Unauthorized", "application/json", body.to_string())
            })
        }),
        ("403_with_escape_sequences", &[], |r| {
            is(r, "hub", "segments").then(|| {
                Reply::new(
                    "403 Forbidden",
                    "text/plain",
                    "\x1b[2J\x1b[H\x1b[32mall spokes applied OK\x1b[0m\r\n",
                )
            })
        }),
        ("404_html", &[], |r| {
            is(r, "hub", "tag-types")
                .then(|| Reply::new("404 Not Found", "text/html", "<html><h1>404</h1></html>"))
        }),
        ("413_from_a_proxy", &[], |r| {
            is(r, "hub", "features-batch").then(|| {
                Reply::new(
                    "413 Payload Too Large",
                    "text/html",
                    "<h1>413 Request Entity Too Large</h1>",
                )
            })
        }),
        ("429_past_max_wait", &["--max-wait", "0"], |r| {
            is(r, "hub", "strategies").then(|| {
                Reply::with_headers(
                    "429 Too Many Requests",
                    &[("retry-after", "30")],
                    "slow down",
                )
            })
        }),
        ("500_echoing_every_header", &[], |r| {
            is(r, "hub", "context")
                .then(|| Reply::new("500 Internal Server Error", "text/plain", echo(r)))
        }),
        ("500_unleash_error_with_details", &[], |r| {
            is(r, "hub", "features-batch").then(|| {
                let body = serde_json::json!({"id": "x", "name": "ValidationError",
                    "message": "Request validation failed",
                    "details": [{"message": format!("header {} rejected", r.token)},
                                {"description": "\u{1b}]0;pwned\u{7}"}]});
                Reply::new(
                    "500 Internal Server Error",
                    "application/json",
                    body.to_string(),
                )
            })
        }),
        (
            "body_larger_than_the_limit",
            &["--max-response-size", "64KiB"],
            |r| is(r, "hub", "features-batch").then(|| Reply::json(vec![b' '; 200 * 1024])),
        ),
        ("slow_body", &["--timeout", "1"], |r| {
            is(r, "hub", "features-batch").then(|| {
                let mut reply = Reply::with_headers("200 OK", &[("content-type", "application/json")], "");
                // Announce a body, send a little of it, then stall past the timeout.
                reply.head = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"features\":".to_vec();
                reply.after = Some((Duration::from_secs(3), b"[]}".to_vec()));
                reply
            })
        }),
        ("flag_named_dot_dot", &[], |r| {
            is(r, "hub", "features-batch").then(|| Reply::json(stub::export(&["app-one", ".."])))
        }),
        ("flag_name_with_escape_sequence", &[], |r| {
            is(r, "hub", "features-batch")
                .then(|| Reply::json(stub::export(&["app-one", "app\u{1b}[2Jtwo"])))
        }),
        ("segments_is_a_list", &[], |r| {
            is(r, "hub", "segments").then(|| Reply::json("[]"))
        }),
        ("strategy_without_name", &[], |r| {
            is(r, "hub", "strategies").then(|| {
                Reply::json(r#"{"version":1,"strategies":[{"displayName":"x","parameters":[]}]}"#)
            })
        }),
        ("context_field_without_name", &[], |r| {
            is(r, "hub", "context").then(|| Reply::json(r#"[{"description":"x"}]"#))
        }),
        ("spoke_export_is_an_empty_object", &[], |r| {
            is(r, "spoke", "features-batch").then(|| Reply::json("{}"))
        }),
        ("spoke_redirects_plain_http_elsewhere", &[], |r| {
            is(r, "spoke", "segments").then(|| {
                Reply::with_headers(
                    "301 Moved Permanently",
                    &[(
                        "location",
                        "http://unleash.example.invalid/api/admin/segments",
                    )],
                    "",
                )
            })
        }),
    ]
}

#[test]
fn bad_server_answers_are_refused_with_exact_messages_and_nothing_is_written() {
    for (name, args, fault) in server_cases() {
        let stub = Stub::start(fault);
        let dir = live_fleet(&stub);
        let mut argv: Vec<&str> = args.to_vec();
        argv.extend_from_slice(APPLY);
        let r = run(dir.path(), &argv, &[]);
        assert_eq!(r.code, 1, "{name}: {}{}", r.stdout, r.stderr);
        assert_eq!(
            stub.spoke_writes(),
            Vec::<String>::new(),
            "{name}: wrote to the spoke"
        );
        assert!(!dir.path().join("backups").exists(), "{name}");
        r.assert_no_token();
        let host = stub.base.trim_start_matches("http://").to_string();
        // The spoke is read while the hub is; when the hub's answer ends the run, a spoke
        // request still in flight may log its retry warning as the run shuts down
        // (pipeline::start aborts the spokes' tasks, but not always before that). The
        // pinned text is the error itself, so those lines, and only they, are dropped.
        let shown: String = r
            .shown(&[(host.as_str(), "127.0.0.1:[PORT]")])
            .lines()
            .filter(|l| {
                !(l.contains(" WARN ") && l.contains("instance=dc1") && l.contains("; retry "))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        insta::assert_snapshot!(format!("server_{name}"), shown);
    }
}

#[test]
fn a_good_stub_fleet_gets_its_write_so_the_no_write_checks_can_fail() {
    let stub = Stub::start(|_| None);
    let dir = live_fleet(&stub);
    let r = run(dir.path(), APPLY, &[]);
    assert_eq!(
        r.code, 1,
        "the stub refuses writes: {}{}",
        r.stdout, r.stderr
    );
    assert!(
        stub.spoke_writes()
            .iter()
            .any(|w| w.starts_with("POST /spoke/api/admin/projects/default/features")),
        "{:?}",
        stub.spoke_writes()
    );
}

#[test]
fn a_search_that_ignores_offset_stops_after_a_page_without_new_names() {
    let stub = Stub::start(|r| {
        is(r, "hub", "search").then(|| {
            let features: Vec<_> = (0..100)
                .map(|i| serde_json::json!({"name": format!("old-{i}"), "project": "other"}))
                .collect();
            Reply::json(serde_json::json!({"features": features, "total": 1_000_000}).to_string())
        })
    });
    let dir = live_fleet(&stub);
    // `export` lists archived flags with the search (plan does without it).
    let r = run(dir.path(), &["export", "hub"], &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let searches = stub
        .requests()
        .iter()
        .filter(|q| is(q, "hub", "search"))
        .count();
    // The search reads a page, then one that adds no new name, and stops.
    assert_eq!(searches, 2, "{searches} search requests");
    assert!(
        r.stderr.contains("a page repeated names already read"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_write_answered_with_a_redirect_fails_instead_of_succeeding() {
    let stub = Stub::start(|r| {
        (r.path.starts_with("/spoke/") && r.is_write())
            .then(|| Reply::with_headers("302 Found", &[("location", "/spoke/api/admin/ok")], ""))
    });
    let dir = live_fleet(&stub);
    let r = run(dir.path(), APPLY, &[]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("was answered with a redirect (HTTP 302 to /spoke/api/admin/ok)"),
        "{}",
        r.stdout
    );
    let followed = stub
        .requests()
        .iter()
        .any(|q| q.path == "/spoke/api/admin/ok");
    assert!(!followed, "the redirect was followed");
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Runs every command with the most verbose logs in `dir` and checks that no token value
/// is in any output or any file written.
#[track_caller]
fn assert_no_command_leaks(dir: &Path) {
    let trace = [("FLAGFLEET_LOG", "trace")];
    let commands: &[&[&str]] = &[
        &["-vv", "validate"],
        &["-vv", "export", "hub", "--out", "hub-export.json"],
        &["-vv", "export", "dc1"],
        &["-vv", "plan", "--out", "plan.json"],
        &["-vv", "plan", "--format", "json"],
        &["-vv", "plan", "--format", "markdown"],
        &["-vv", "graph"],
        &["-vv", "apply", "--auto-approve", "--backup-dir", "backups"],
        &["-vv", "apply", "plan.json", "--backup-dir", "backups"],
    ];
    for args in commands {
        let r = run(dir, args, &trace);
        r.assert_no_token();
    }
    for file in files_under(dir) {
        let bytes = std::fs::read(&file).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for token in ["hub-canary-5f1e0c9a2b", "spoke-canary-77d2b4e1c3"] {
            assert!(!text.contains(token), "token in {}", file.display());
        }
    }
}

#[test]
fn no_command_leaks_a_token_on_the_stubs_error_paths() {
    // Every answer echoes the request's headers, the token among them, in an error.
    let everything_echoes = Stub::start(|r| {
        Some(Reply::new(
            "500 Internal Server Error",
            "text/plain",
            echo(r),
        ))
    });
    assert_no_command_leaks(live_fleet(&everything_echoes).path());

    // The hub is fine; the spoke's environment list (read by validate) echoes the token in
    // its message, and its writes are answered with a redirect to a URL that carries it.
    let spoke_echoes = Stub::start(|r| {
        if !r.path.starts_with("/spoke/") {
            return None;
        }
        if r.is_write() {
            let location = format!("http://127.0.0.1:1/?t={}", r.token);
            return Some(Reply::with_headers(
                "307 Temporary Redirect",
                &[("location", &location)],
                "",
            ));
        }
        is(r, "spoke", "environments").then(|| {
            let body = serde_json::json!({"message": format!("bad {}", r.token)});
            Reply::new("400 Bad Request", "application/json", body.to_string())
        })
    });
    assert_no_command_leaks(live_fleet(&spoke_echoes).path());
}

#[test]
fn a_proxy_from_the_environment_is_logged_without_its_password_and_no_proxy_ignores_it() {
    let stub = Stub::start(|_| None);
    let dir = live_fleet(&stub);
    let host = stub.base.trim_start_matches("http://");
    let proxy = format!("http://proxyuser:proxy-secret-pw@{host}");
    let env = [
        ("HTTP_PROXY", proxy.as_str()),
        ("NO_PROXY", ""),
        ("no_proxy", ""),
    ];

    let r = run(dir.path(), &["-v", "plan"], &env);
    assert!(
        r.stderr.contains(&format!(
            "requests go through a proxy from the environment (--no-proxy ignores it) instance=\"hub\" proxy=http://{host}"
        )),
        "{}",
        r.stderr
    );
    assert!(!format!("{}{}", r.stdout, r.stderr).contains("proxy-secret-pw"));

    let direct = run(dir.path(), &["-v", "--no-proxy", "plan"], &env);
    assert_eq!(direct.code, 0, "{}", direct.stderr);
    assert!(!direct.stderr.contains("proxy"), "{}", direct.stderr);
}

#[test]
fn a_ca_file_without_certificates_is_refused_before_any_request() {
    let stub = Stub::start(|_| None);
    let dir = live_fleet(&stub);
    let topology = dir.path().join("flagfleet.toml");
    let text = std::fs::read_to_string(&topology).unwrap();
    std::fs::write(
        &topology,
        text.replacen(
            "token_env = \"HUB_TOKEN\"\n",
            "token_env = \"HUB_TOKEN\"\nca_file = \"ca.pem\"\n",
            1,
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("ca.pem"), "not a certificate\n").unwrap();
    let r = run(dir.path(), &["plan"], &[]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "Error: cannot read the hub: hub: cannot use ca_file ca.pem: no PEM certificate in it\n"
    );
    assert!(stub.requests().iter().all(|q| !q.path.starts_with("/hub/")));
}

/// A note built from a spoke's own values (its legal values only it has, kept) with a
/// terminal escape sequence, a right-to-left override and Markdown that would draw an
/// image, HTML, a character reference and a link in a pull-request comment: shown as the
/// text it is in the terminal plan and in the Markdown plan.
#[test]
fn a_spoke_value_in_a_note_cannot_redraw_the_terminal_or_the_pull_request_comment() {
    let dir = tempfile::tempdir().unwrap();
    let quickstart = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    for f in ["flagfleet.toml", "hub.json", "eu-west.json", "us-east.json"] {
        std::fs::copy(quickstart.join(f), dir.path().join(f)).unwrap();
    }
    let path = dir.path().join("eu-west.json");
    let mut spoke: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let hostile = "x\u{1b}[2J\u{202e}evil ![t](https://evil.invalid/p.png) <b>bold</b> &#x202E; \\[a\\](https://evil.invalid) `code`";
    spoke["state"]["context_fields"]["region"]["legal_values"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({ "value": hostile }));
    std::fs::write(&path, serde_json::to_vec(&spoke).unwrap()).unwrap();

    let r = run(dir.path(), &["plan"], &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(!r.stdout.contains(['\u{1b}', '\u{202e}']), "{}", r.stdout);
    assert!(
        r.stdout
            .contains(r"are kept: emea, x\u{1b}[2J\u{202e}evil ![t]"),
        "{}",
        r.stdout
    );

    let r = run(dir.path(), &["plan", "--format", "markdown"], &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let note = r
        .stdout
        .lines()
        .find(|l| l.contains("legal values only the spoke has"))
        .unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(!note.contains(['\u{1b}', '\u{202e}']), "{note}");
    for raw in ["![t](", "<b>", "&#x202E;", "`code`"] {
        assert!(!note.contains(raw), "{raw} in {note}");
    }
    assert!(
        note.contains(
            r"x\\u{1b}\[2J\\u{202e}evil !\[t\](https://evil.invalid/p.png) &lt;b&gt;bold&lt;/b&gt; &amp;#x202E; \\\[a\\\](https://evil.invalid) \`code\`"
        ),
        "{note}"
    );
}
