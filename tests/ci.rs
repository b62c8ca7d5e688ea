//! The CI integration, tested locally: the comment-upsert script of the GitHub Action
//! against a stub of the GitHub (and GitLab) REST API on 127.0.0.1, and the action and the
//! example pipelines parsed as YAML, every input, flag and script option they use checked
//! against what really exists.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use clap::CommandFactory;
use serde_json::{json, Value};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------------------------------
// A stub of the comment API: GitHub's issue comments and GitLab's merge-request notes.

/// One request the stub answered.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
}

#[derive(Default)]
struct Thread {
    /// (id, body), oldest first.
    comments: Vec<(u64, String)>,
    next_id: u64,
    seen: Vec<Seen>,
    /// Answer every request with this status instead (e.g. 403).
    fail_with: Option<u16>,
}

/// The stub's address and its one comment thread.
struct Stub {
    url: String,
    thread: Arc<Mutex<Thread>>,
}

const PER_PAGE: usize = 100;

impl Stub {
    fn start() -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let thread = Arc::new(Mutex::new(Thread {
            next_id: 1000,
            ..Thread::default()
        }));
        let shared = thread.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                let base = format!("http://{}", stream.local_addr().unwrap());
                std::thread::spawn(move || serve(stream, &base, &shared));
            }
        });
        Stub { url, thread }
    }

    /// Comments others wrote, before the script runs.
    fn seed(&self, bodies: impl IntoIterator<Item = String>) {
        let mut t = self.thread.lock().unwrap();
        for body in bodies {
            let id = t.next_id;
            t.next_id += 1;
            t.comments.push((id, body));
        }
    }

    fn comments(&self) -> Vec<(u64, String)> {
        self.thread.lock().unwrap().comments.clone()
    }

    fn seen(&self) -> Vec<Seen> {
        self.thread.lock().unwrap().seen.clone()
    }

    fn writes(&self) -> Vec<String> {
        self.seen()
            .into_iter()
            .filter(|s| s.method != "GET")
            .map(|s| format!("{} {}", s.method, s.path))
            .collect()
    }
}

fn serve(stream: TcpStream, base: &str, thread: &Mutex<Thread>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() || line.is_empty() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query: BTreeMap<&str, &str> = query.split('&').filter_map(|p| p.split_once('=')).collect();

    let mut t = thread.lock().unwrap();
    t.seen.push(Seen {
        method: method.clone(),
        path: path.to_string(),
        headers,
    });
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (status, link, answer) = if let Some(code) = t.fail_with {
        (
            code,
            None,
            json!({"message": "Resource not accessible by integration"}),
        )
    } else {
        let new_body = || -> String {
            let v: Value = serde_json::from_slice(&body).unwrap();
            v["body"].as_str().unwrap().to_string()
        };
        match (method.as_str(), segments.as_slice()) {
            // GitHub: /repos/{owner}/{repo}/issues/{n}/comments; GitLab:
            // /api/v4/projects/{id}/merge_requests/{iid}/notes
            ("GET", [.., "comments" | "notes"]) => {
                let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
                let per_page: usize = query
                    .get("per_page")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(30)
                    .min(PER_PAGE);
                let start = (page - 1) * per_page;
                let items: Vec<Value> = t
                    .comments
                    .iter()
                    .skip(start)
                    .take(per_page)
                    .map(|(id, body)| json!({"id": id, "body": body}))
                    .collect();
                let link = (start + per_page < t.comments.len()).then(|| {
                    format!(
                        "<{base}{path}?per_page={per_page}&page={}>; rel=\"next\"",
                        page + 1
                    )
                });
                (200, link, Value::Array(items))
            }
            ("POST", [.., "comments" | "notes"]) => {
                let id = t.next_id;
                t.next_id += 1;
                let text = new_body();
                t.comments.push((id, text.clone()));
                (201, None, json!({"id": id, "body": text}))
            }
            ("PATCH", [.., "issues", "comments", id]) | ("PUT", [.., "notes", id]) => {
                let id: u64 = id.parse().unwrap();
                let text = new_body();
                match t.comments.iter_mut().find(|(i, _)| *i == id) {
                    Some(c) => {
                        c.1 = text.clone();
                        (200, None, json!({"id": id, "body": text}))
                    }
                    None => (404, None, json!({"message": "Not Found"})),
                }
            }
            _ => (404, None, json!({"message": "Not Found"})),
        }
    };
    drop(t);
    let text = answer.to_string();
    let mut out = stream;
    let link = link.map(|l| format!("Link: {l}\r\n")).unwrap_or_default();
    let _ = write!(
        out,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{link}Connection: close\r\n\r\n{text}",
        text.len()
    );
}

const TOKEN: &str = "ghs_secret-token-value-1234";

/// Runs the upsert script as the action runs it, against the stub, on pull request 7.
fn upsert(stub: &Stub, forge: &str, body: &str, extra: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let body_file = dir.path().join("plan.md");
    std::fs::write(&body_file, body).unwrap();
    let mut cmd = Command::new("python3");
    cmd.arg(root().join("action/upsert_comment.py"))
        .arg("--body-file")
        .arg(&body_file)
        .args(["--forge", forge])
        .args(extra)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    if forge == "github" {
        let event = dir.path().join("event.json");
        std::fs::write(&event, r#"{"pull_request": {"number": 7}}"#).unwrap();
        cmd.env("GITHUB_API_URL", &stub.url)
            .env("GITHUB_REPOSITORY", "acme/fleet")
            .env("GITHUB_TOKEN", TOKEN)
            .env("GITHUB_EVENT_PATH", &event)
            .env("GITHUB_OUTPUT", dir.path().join("output"));
    } else {
        cmd.env("CI_API_V4_URL", format!("{}/api/v4", stub.url))
            .env("CI_PROJECT_ID", "acme/fleet")
            .env("CI_MERGE_REQUEST_IID", "7")
            .env("GITLAB_TOKEN", TOKEN);
    }
    let out = cmd.output().expect("python3 runs the upsert script");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!printed.contains(TOKEN), "the token was printed: {printed}");
    if forge == "github" && out.status.success() {
        // The action reads the comment's id from the step's outputs.
        let output = std::fs::read_to_string(dir.path().join("output")).unwrap_or_default();
        if printed.starts_with("created comment ") || printed.starts_with("updated comment ") {
            assert!(output.starts_with("comment-id="), "{output:?}");
        }
    }
    out
}

#[track_caller]
fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "upsert failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn marked(stub: &Stub, key: &str) -> Vec<(u64, String)> {
    let marker = format!("<!-- flagfleet-plan:{key} -->\n");
    stub.comments()
        .into_iter()
        .filter(|(_, b)| b.starts_with(&marker))
        .collect()
}

#[test]
fn the_plan_comment_is_created_once_then_updated_in_place() {
    let stub = Stub::start();
    // Others' comments fill the first page, so the plan comment lands on the second.
    stub.seed((0..PER_PAGE).map(|i| format!("review comment {i}")));

    let first = ok(&upsert(&stub, "github", "## Plan\n1 to create\n", &[]));
    assert!(first.starts_with("created comment "), "{first}");
    assert_eq!(stub.writes(), ["POST /repos/acme/fleet/issues/7/comments"]);
    let created = marked(&stub, "default");
    assert_eq!(created.len(), 1);
    assert_eq!(
        created[0].1,
        "<!-- flagfleet-plan:default -->\n## Plan\n1 to create\n"
    );

    let second = ok(&upsert(&stub, "github", "## Plan\nNo changes.\n", &[]));
    assert_eq!(second.trim(), format!("updated comment {}", created[0].0));
    let after = marked(&stub, "default");
    assert_eq!(
        after,
        [(
            created[0].0,
            "<!-- flagfleet-plan:default -->\n## Plan\nNo changes.\n".to_string()
        )]
    );
    assert_eq!(
        stub.writes(),
        [
            "POST /repos/acme/fleet/issues/7/comments".to_string(),
            format!("PATCH /repos/acme/fleet/issues/comments/{}", created[0].0)
        ]
    );
    // Nobody else's comment was touched, and every request carried the token.
    assert_eq!(stub.comments().len(), PER_PAGE + 1);
    assert!(stub.comments()[..PER_PAGE]
        .iter()
        .enumerate()
        .all(|(i, (_, b))| *b == format!("review comment {i}")));
    for seen in stub.seen() {
        assert_eq!(
            seen.headers["authorization"],
            format!("Bearer {TOKEN}"),
            "{seen:?}"
        );
    }
}

#[test]
fn each_key_owns_one_comment() {
    let stub = Stub::start();
    for round in 0..2 {
        for shard in ["eu-west", "us-east"] {
            ok(&upsert(
                &stub,
                "github",
                &format!("{shard} {round}"),
                &["--key", shard],
            ));
        }
    }
    assert_eq!(marked(&stub, "eu-west").len(), 1);
    assert_eq!(marked(&stub, "us-east").len(), 1);
    assert!(marked(&stub, "eu-west")[0].1.ends_with("eu-west 1"));
    assert_eq!(stub.comments().len(), 2);
}

#[test]
fn update_only_posts_nothing_new_but_refreshes_an_earlier_comment() {
    let stub = Stub::start();
    let quiet = ok(&upsert(
        &stub,
        "github",
        "No changes.\n",
        &["--update-only"],
    ));
    assert!(quiet.contains("no comment posted"), "{quiet}");
    assert!(stub.comments().is_empty());
    assert!(stub.writes().is_empty());

    ok(&upsert(&stub, "github", "1 to create\n", &[]));
    ok(&upsert(
        &stub,
        "github",
        "No changes.\n",
        &["--update-only"],
    ));
    let mine = marked(&stub, "default");
    assert_eq!(mine.len(), 1);
    assert!(
        mine[0].1.ends_with("No changes.\n"),
        "a stale plan stayed: {mine:?}"
    );
}

#[test]
fn a_refused_request_fails_with_the_status_and_posts_nothing() {
    let stub = Stub::start();
    stub.thread.lock().unwrap().fail_with = Some(403);
    let out = upsert(&stub, "github", "x", &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("GET /repos/acme/fleet/issues/7/comments: HTTP 403"),
        "{stderr}"
    );
    assert!(stub.comments().is_empty());
}

#[test]
fn an_oversized_plan_is_cut_to_one_github_comment() {
    let stub = Stub::start();
    let huge = "x".repeat(70_000);
    ok(&upsert(&stub, "github", &huge, &[]));
    let body = &marked(&stub, "default")[0].1;
    assert!(body.chars().count() <= 65_536, "{}", body.len());
    assert!(body.ends_with("the full plan is in the saved plan._\n"));
}

#[test]
fn gitlab_merge_request_note_is_created_then_updated() {
    let stub = Stub::start();
    ok(&upsert(&stub, "gitlab", "plan 1", &[]));
    ok(&upsert(&stub, "gitlab", "plan 2", &[]));
    let notes = marked(&stub, "default");
    assert_eq!(notes.len(), 1);
    assert!(notes[0].1.ends_with("plan 2"));
    assert_eq!(
        stub.writes(),
        [
            "POST /api/v4/projects/acme%2Ffleet/merge_requests/7/notes".to_string(),
            format!(
                "PUT /api/v4/projects/acme%2Ffleet/merge_requests/7/notes/{}",
                notes[0].0
            )
        ]
    );
    for seen in stub.seen() {
        assert_eq!(seen.headers["private-token"], TOKEN);
    }
}

// ---------------------------------------------------------------------------------------
// The action and the example pipelines refer only to what exists.

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
}

/// Every string in a YAML document, with where it is.
fn strings<'v>(v: &'v Value, at: String, out: &mut Vec<(String, &'v str)>) {
    match v {
        Value::String(s) => out.push((at, s)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                strings(item, format!("{at}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                strings(item, format!("{at}.{k}"), out);
            }
        }
        _ => {}
    }
}

/// The names after each `prefix` in `text`, e.g. `inputs.` -> `config`.
fn references<'t>(text: &'t str, prefix: &str) -> Vec<&'t str> {
    text.match_indices(prefix)
        .filter(|(i, _)| {
            // `needs.plan.outputs.x` is not `inputs.`; `steps.x` after a letter is not `steps.`.
            text[..*i]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '.' || c == '_'))
        })
        .map(|(i, _)| {
            let rest = &text[i + prefix.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

fn action_inputs() -> BTreeSet<String> {
    let action = yaml(&root().join("action.yml"));
    action["inputs"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

/// The long flags each flagfleet command takes (global ones included), from its clap
/// definition: exactly what `--help`, completions and the man pages show.
fn cli_flags() -> BTreeMap<String, BTreeSet<String>> {
    let mut cli = flagfleet::cli::Cli::command();
    cli.build();
    let longs = |c: &clap::Command| -> BTreeSet<String> {
        c.get_arguments()
            .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
            .chain(["--help".to_string()])
            .collect()
    };
    let mut flags: BTreeMap<String, BTreeSet<String>> = cli
        .get_subcommands()
        .map(|s| (s.get_name().to_string(), longs(s)))
        .collect();
    flags.insert(String::new(), longs(&cli));
    flags
}

/// Checks every `flagfleet ...` command in a shell script: a real command, and only
/// flags it takes. Returns the commands seen.
fn check_commands(
    script: &str,
    at: &str,
    flags: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    let mut seen = Vec::new();
    for line in script.lines() {
        let Some(start) = line.find("flagfleet ").filter(|i| {
            line[..*i]
                .chars()
                .next_back()
                .is_none_or(|c| " ;|&/(\"".contains(c))
        }) else {
            continue;
        };
        if line[..start].ends_with('/') && !line[..start].ends_with("bin/") {
            continue; // a path such as .flagfleet/src, not the command
        }
        let words: Vec<&str> = line[start..].split_whitespace().skip(1).collect();
        let mut command = None;
        let mut i = 0;
        while i < words.len() {
            let w = words[i].trim_matches('"');
            if [">", "|", ";", "&&", "||"].contains(&w) || w.starts_with('>') {
                break;
            }
            if w == "-c" {
                i += 2;
                continue;
            }
            if let Some(flag) = w
                .strip_prefix("--")
                .map(|f| f.split('=').next().unwrap_or(f))
            {
                let sub = command.unwrap_or("");
                let flag = format!("--{flag}");
                assert!(
                    flags[sub].contains(&flag) || flags[""].contains(&flag),
                    "{at}: `flagfleet {sub}` takes no {flag}: {line}"
                );
            } else if command.is_none() && !w.starts_with('-') && !w.starts_with('$') {
                assert!(
                    flags.contains_key(w),
                    "{at}: no command `flagfleet {w}`: {line}"
                );
                command = Some(w);
            }
            i += 1;
        }
        if let Some(c) = command {
            seen.push(c.to_string());
        }
    }
    seen
}

/// Checks every call of the upsert script: only options it has.
fn check_upsert_calls(script: &str, at: &str) {
    static HELP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let help = HELP.get_or_init(|| {
        let out = Command::new("python3")
            .arg(root().join("action/upsert_comment.py"))
            .arg("--help")
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    });
    for line in script.lines().filter(|l| l.contains("upsert_comment.py")) {
        for flag in line.split_whitespace().filter(|w| w.starts_with("--")) {
            assert!(
                help.contains(flag),
                "{at}: upsert_comment.py has no {flag}: {line}"
            );
        }
    }
}

#[test]
fn the_action_uses_only_its_inputs_real_flags_and_real_options() {
    let action = yaml(&root().join("action.yml"));
    let inputs = action_inputs();
    assert!(
        [
            "mode",
            "config",
            "spokes",
            "working-directory",
            "comment",
            "comment-on-changes-only"
        ]
        .iter()
        .all(|i| inputs.contains(*i)),
        "{inputs:?}"
    );
    let steps = action["runs"]["steps"].as_array().unwrap();
    let ids: BTreeSet<&str> = steps.iter().filter_map(|s| s["id"].as_str()).collect();
    let mut all = Vec::new();
    strings(&action, String::new(), &mut all);
    for (at, text) in &all {
        for name in references(text, "inputs.") {
            assert!(inputs.contains(name), "action.yml{at}: no input `{name}`");
        }
        for name in references(text, "steps.") {
            assert!(ids.contains(name), "action.yml{at}: no step `{name}`");
        }
    }
    let flags = cli_flags();
    let mut commands = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        if let Some(run) = step["run"].as_str() {
            let at = format!("action.yml step {i}");
            commands.extend(check_commands(run, &at, &flags));
            check_upsert_calls(run, &at);
            assert_eq!(
                step["shell"], "bash",
                "{at}: a composite run step needs a shell"
            );
        }
    }
    assert_eq!(commands, ["plan", "show", "apply"]);
    // The script the comment step runs is the one tested above.
    assert!(all
        .iter()
        .any(|(_, t)| t.contains("$GITHUB_ACTION_PATH/action/upsert_comment.py")));
}

#[test]
fn the_example_pipelines_use_real_inputs_commands_and_flags() {
    let inputs = action_inputs();
    let modes = ["plan", "apply"];
    let flags = cli_flags();
    let dir = root().join("examples/ci");
    let mut files = Vec::new();
    for sub in ["github", "gitlab"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            files.push(entry.unwrap().path());
        }
    }
    files.sort();
    let mut uses_action = 0;
    let mut commands = BTreeSet::new();
    for path in &files {
        let doc = yaml(path);
        let at = path.strip_prefix(root()).unwrap().display().to_string();
        let mut all = Vec::new();
        strings(&doc, String::new(), &mut all);
        // Shell: GitHub's `run`, GitLab's `script` and `before_script`.
        let shell = all.iter().filter(|(w, _)| {
            w.ends_with(".run") || w.contains(".script[") || w.contains(".before_script[")
        });
        for (where_, text) in shell {
            commands.extend(check_commands(text, &format!("{at}{where_}"), &flags));
            check_upsert_calls(text, &at);
        }
        if at.contains("github") {
            for (name, job) in doc["jobs"].as_object().unwrap() {
                for step in job["steps"].as_array().unwrap() {
                    let Some(uses) = step["uses"].as_str() else {
                        continue;
                    };
                    if !uses.contains("/flagfleet@") && uses != "./" {
                        continue;
                    }
                    uses_action += 1;
                    for (key, value) in step["with"].as_object().unwrap() {
                        assert!(
                            inputs.contains(key),
                            "{at} job {name}: the action has no input `{key}`"
                        );
                        if key == "mode" {
                            assert!(
                                modes.contains(&value.as_str().unwrap()),
                                "{at}: mode {value}"
                            );
                        }
                    }
                }
                // Jobs that name another job's outputs name real ones.
                let mut texts = Vec::new();
                strings(job, String::new(), &mut texts);
                for (_, text) in texts {
                    for needed in references(text, "needs.") {
                        assert!(doc["jobs"].get(needed).is_some(), "{at}: no job `{needed}`");
                    }
                }
            }
        }
    }
    assert!(
        uses_action >= 4,
        "the GitHub examples use the action {uses_action} times"
    );
    assert!(
        ["apply", "plan", "show"]
            .iter()
            .all(|c| commands.contains(*c)),
        "{commands:?}"
    );
    // The GitLab pipeline posts the note with the tested script, and applies manually.
    let gitlab = yaml(&dir.join("gitlab/gitlab-ci.yml"));
    assert_eq!(gitlab["apply"]["rules"][0]["when"], "manual");
    let plan_script = gitlab["plan"]["script"].to_string();
    assert!(
        plan_script.contains("upsert_comment.py --forge gitlab"),
        "{plan_script}"
    );
    // The sharded example plans one shard per job with its own plan file and comment.
    let sharded = yaml(&dir.join("github/sharded.yml"));
    let with = &sharded["jobs"]["plan"]["steps"][1]["with"];
    for key in ["spokes", "comment-key", "artifact-name", "plan-file"] {
        assert!(
            with[key].as_str().unwrap().contains("matrix."),
            "{key}: {with}"
        );
    }
}

/// Runs one `run:` step of action.yml with bash as a runner would: `env` as the step's
/// environment, the built flagfleet first on the PATH, in `dir`. Returns the step's
/// outputs (`GITHUB_OUTPUT`) and its exit code.
fn run_action_step(
    id_or_name: &str,
    dir: &Path,
    env: &[(&str, &str)],
) -> (BTreeMap<String, String>, i32) {
    let action = yaml(&root().join("action.yml"));
    let step = action["runs"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id_or_name || s["name"] == id_or_name)
        .unwrap_or_else(|| panic!("no step {id_or_name}"));
    let script = step["run"].as_str().unwrap();
    let temp = tempfile::tempdir().unwrap();
    let output = temp.path().join("output");
    let bin = Path::new(env!("CARGO_BIN_EXE_flagfleet")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .args(["-e", "-c", script])
        .current_dir(dir)
        .env("PATH", path)
        .env("RUNNER_TEMP", temp.path())
        .env("GITHUB_OUTPUT", &output)
        .env("GITHUB_STEP_SUMMARY", temp.path().join("summary"))
        .env("GITHUB_JOB", "plan")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let mut outputs: BTreeMap<String, String> = std::fs::read_to_string(&output)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if let Some(md) = outputs.get("markdown").cloned() {
        // The runner's temporary folder goes with this function: keep what it held.
        outputs.insert(
            "markdown".into(),
            std::fs::read_to_string(md).unwrap_or_default(),
        );
        let summary = std::fs::read_to_string(temp.path().join("summary")).unwrap_or_default();
        assert_eq!(
            summary, outputs["markdown"],
            "the job summary shows the plan"
        );
    }
    outputs.insert(
        "stdout".into(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    );
    outputs.insert(
        "stderr".into(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    (outputs, out.status.code().unwrap_or(-1))
}

/// The action's plan and apply steps, run locally on the quickstart's file spokes: the
/// plan step reports changes and saves the plan, the apply step applies that saved plan,
/// and the plan step then reports none.
#[test]
fn the_action_plans_then_applies_the_saved_plan() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["flagfleet.toml", "hub.json", "eu-west.json", "us-east.json"] {
        std::fs::copy(
            root().join("examples/quickstart").join(f),
            dir.path().join(f),
        )
        .unwrap();
    }
    let plan_env = [
        ("CONFIG", "flagfleet.toml"),
        ("SPOKES", "eu-west, us-east"),
        ("PLAN_FILE", "plan.json"),
        ("NO_COLOR", "1"),
    ];
    let (outputs, code) = run_action_step("plan", dir.path(), &plan_env);
    assert_eq!(code, 0, "{outputs:?}");
    assert_eq!(outputs["exitcode"], "2");
    assert_eq!(outputs["has-changes"], "true");
    assert_eq!(outputs["plan-file"], "plan.json");
    assert!(outputs["markdown"].contains("eu-west"), "{outputs:?}");
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("plan.json")).unwrap())
            .unwrap();
    assert_eq!(saved["spokes"].as_array().unwrap().len(), 2);

    // One spoke only: the saved plan holds that spoke alone.
    let one = [
        ("SPOKES", "us-east"),
        ("PLAN_FILE", "one.json"),
        ("CONFIG", "flagfleet.toml"),
    ];
    let (outputs, code) = run_action_step("plan", dir.path(), &one);
    assert_eq!(
        (code, outputs["exitcode"].as_str()),
        (0, "2"),
        "{outputs:?}"
    );
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("one.json")).unwrap())
            .unwrap();
    assert_eq!(saved["spokes"][0]["name"], "us-east");
    assert_eq!(saved["spokes"].as_array().unwrap().len(), 1);

    let apply_env = [
        ("CONFIG", "flagfleet.toml"),
        ("PLAN_FILE", "plan.json"),
        ("NO_COLOR", "1"),
    ];
    let (outputs, code) = run_action_step("Apply the saved plan", dir.path(), &apply_env);
    assert_eq!(code, 0, "{outputs:?}");
    assert!(
        outputs["stdout"].contains("Apply to eu-west: "),
        "{outputs:?}"
    );

    let (outputs, code) = run_action_step("plan", dir.path(), &plan_env);
    assert_eq!(code, 0, "{outputs:?}");
    assert_eq!(outputs["exitcode"], "0");
    assert_eq!(outputs["has-changes"], "false");
}
