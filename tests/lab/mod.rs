//! The real Unleash lab, as the end-to-end tests see it.
//!
//! `scripts/lab.sh up` starts PostgreSQL and seven unleash-server processes on loopback
//! (five of 8.2.0, one of 7.6.5, one of 6.10.1)
//! and writes `.lab/lab.env`. Tests take the [`Lab`] lock (they share the servers), reset
//! the instances they use to a pristine state, seed them through the admin API, and run
//! the real `flagfleet` binary against them.
#![allow(dead_code)]

pub mod faults;
pub mod seed;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;

/// One Unleash server of the lab.
#[derive(Debug, Clone)]
pub struct Server {
    /// `hub`, `spoke1`, `spoke2`, `spoke3`, `strict` (Unleash's default rate limits), all
    /// 8.2.0; `v7` (7.6.5) and `v6` (6.10.1).
    pub name: &'static str,
    pub url: String,
    pub token: String,
}

impl Server {
    /// Reads this server's state in `environments` directly (no proxy), all names taken
    /// included, as `flagfleet export` does.
    pub fn read_state(&self, environments: &[&str]) -> flagfleet::state::State {
        let dir = tempfile::tempdir().unwrap();
        let topo = dir.path().join("t.toml");
        std::fs::write(
            &topo,
            format!(
                "[hub]\nurl = \"{}\"\ntoken_env = \"READ_TOKEN\"\nenvironments = {environments:?}\n[[spokes]]\nname = \"x\"\nfile = \"x.json\"\n",
                self.url
            ),
        )
        .unwrap();
        std::env::set_var("READ_TOKEN", &self.token);
        let t = flagfleet::topology::load(&topo).unwrap();
        let options = flagfleet::client::ClientOptions::default();
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let client = flagfleet::state::connect(&t.hub.instance, &options)
                .unwrap()
                .unwrap();
            flagfleet::state::read(&t.hub.instance, Some(&client), &t.hub.environments, true)
                .await
                .unwrap()
        })
    }

    /// The write requests this server has answered since it started, by its own count
    /// (the Prometheus counters every Unleash serves): every method but GET, HEAD and
    /// OPTIONS, less the POSTs that only read (export, search, playground).
    pub fn writes(&self) -> u64 {
        const READ_POSTS: [&str; 3] = [
            "/api/admin/features-batch/export",
            "/api/admin/search/features",
            "/api/admin/playground",
        ];
        self.requests(|method, path| {
            !["GET", "HEAD", "OPTIONS"].contains(&method) && !READ_POSTS.contains(&path)
        })
    }

    /// The requests this server has answered since it started (by its own Prometheus
    /// counters) whose method and path (route) `count` accepts; the scrape itself never.
    pub fn requests(&self, count: impl Fn(&str, &str) -> bool) -> u64 {
        const SCRAPE: &str = "/internal-backstage/prometheus";
        let url = format!("{}{SCRAPE}", self.url.trim_end_matches('/'));
        let text = reqwest::blocking::get(&url)
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.text())
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let label = |labels: &str, key: &str| -> Option<String> {
            let start = labels.find(&format!("{key}=\""))? + key.len() + 2;
            let end = labels[start..].find('"')?;
            Some(labels[start..start + end].to_string())
        };
        text.lines()
            .filter_map(|line| line.strip_prefix("http_request_duration_milliseconds_count{"))
            .filter_map(|rest| rest.rsplit_once("} "))
            .filter(|(labels, _)| {
                let method = label(labels, "method").unwrap_or_default();
                let path = label(labels, "path").unwrap_or_default();
                path != SCRAPE && count(&method, &path)
            })
            .map(|(_, count)| count.trim().parse::<f64>().unwrap_or(0.0) as u64)
            .sum()
    }
}

/// The running lab, held exclusively by one test at a time.
pub struct Lab {
    pub hub: Server,
    pub spoke1: Server,
    pub spoke2: Server,
    pub spoke3: Server,
    /// Keeps Unleash's default rate limits (15 flag searches a minute): only the tests of
    /// rate limits use it, and they reset it first (a restart starts a fresh window).
    pub strict: Server,
    /// Unleash 7.6.5.
    pub v7: Server,
    /// Unleash 6.10.1.
    pub v6: Server,
    script: PathBuf,
    _guard: MutexGuard<'static, ()>,
}

static LOCK: Mutex<()> = Mutex::new(());

impl Lab {
    /// Takes the lab for this test and resets the named instances to an empty Unleash.
    pub fn take(reset: &[&str]) -> Lab {
        let guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let env_file = root.join(".lab/lab.env");
        let text = std::fs::read_to_string(&env_file).unwrap_or_else(|_| {
            panic!(
                "the Unleash lab is not running ({} missing): run `scripts/test.sh`, or `scripts/lab.sh up` before `cargo test --features lab`",
                env_file.display()
            )
        });
        let vars: BTreeMap<&str, &str> = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        let server = |name: &'static str, key: &str| Server {
            name,
            url: vars[format!("FLAGFLEET_LAB_{key}_URL").as_str()].to_string(),
            token: vars[format!("FLAGFLEET_LAB_{key}_TOKEN").as_str()].to_string(),
        };
        let lab = Lab {
            hub: server("hub", "HUB"),
            spoke1: server("spoke1", "SPOKE1"),
            spoke2: server("spoke2", "SPOKE2"),
            spoke3: server("spoke3", "SPOKE3"),
            strict: server("strict", "STRICT"),
            v7: server("v7", "V7"),
            v6: server("v6", "V6"),
            script: root.join("scripts/lab.sh"),
            _guard: guard,
        };
        if !reset.is_empty() {
            lab.reset(reset);
        }
        lab
    }
}

impl Lab {
    /// Empties the servers named (`hub`, `spoke1`, ...): a fresh database each.
    pub fn reset(&self, servers: &[&str]) {
        let status = Command::new("bash")
            .arg(&self.script)
            .arg("reset")
            .args(servers)
            .status()
            .expect("run scripts/lab.sh reset");
        assert!(status.success(), "scripts/lab.sh reset {servers:?} failed");
    }

    fn servers(&self) -> [&Server; 7] {
        [
            &self.hub,
            &self.spoke1,
            &self.spoke2,
            &self.spoke3,
            &self.strict,
            &self.v7,
            &self.v6,
        ]
    }

    /// The server named `name` (`hub`, `spoke1`, ..., `v7`, `v6`).
    pub fn server(&self, name: &str) -> &Server {
        self.servers()
            .into_iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no lab server {name}"))
    }

    /// The real `flagfleet -c topology`, with every lab server's token in
    /// `LAB_<SERVER>_TOKEN` (as [`topology`] names them), `NO_COLOR` set and
    /// `FLAGFLEET_LOG` unset.
    pub fn flagfleet(&self, topology: &Path) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::cargo_bin("flagfleet").unwrap();
        cmd.arg("-c").arg(topology).env("NO_COLOR", "1");
        for s in self.servers() {
            cmd.env(token_env(s), &s.token);
        }
        cmd.env_remove("FLAGFLEET_LOG");
        cmd
    }
}

/// The variable a lab topology reads `server`'s token from.
fn token_env(server: &Server) -> String {
    format!("LAB_{}_TOKEN", server.name.to_uppercase())
}

/// Writes `dir/flagfleet.toml`: `hub` and the spokes `(name, server, extra keys)`, each
/// instance's token read from `LAB_<SERVER>_TOKEN` ([`Lab::flagfleet`] sets them all).
pub fn topology(dir: &Path, hub: &Server, spokes: &[(&str, &Server, &str)]) -> PathBuf {
    let mut text = format!(
        "[hub]\nurl = \"{}\"\ntoken_env = \"{}\"\n",
        hub.url,
        token_env(hub)
    );
    for (name, server, extra) in spokes {
        text.push_str(&format!(
            "\n[[spokes]]\nname = \"{name}\"\nurl = \"{}\"\ntoken_env = \"{}\"\n{extra}\n",
            server.url,
            token_env(server)
        ));
    }
    let path = dir.join("flagfleet.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The part of a state a sync of `flags` makes equal: those flags in production (without
/// `stale`, which is not synced), the `segments` named and the custom strategy
/// `by-tenant`, each as JSON.
pub fn synced_view(
    state: &flagfleet::state::State,
    flags: &[impl AsRef<str>],
    segments: &[impl AsRef<str>],
) -> Value {
    let mut out = serde_json::Map::new();
    for name in flags.iter().map(AsRef::as_ref) {
        let mut f = state
            .flags
            .get(name)
            .map(|f| (**f).clone())
            .unwrap_or_default();
        f.stale = false;
        f.environments.retain(|e, _| e == "production");
        out.insert(name.to_string(), serde_json::to_value(f).unwrap());
    }
    for seg in segments.iter().map(AsRef::as_ref) {
        out.insert(
            format!("segment:{seg}"),
            serde_json::to_value(state.segments.get(seg)).unwrap(),
        );
    }
    out.insert(
        "strategy:by-tenant".into(),
        serde_json::to_value(state.strategies.get("by-tenant")).unwrap(),
    );
    Value::Object(out)
}

/// A tiny admin-API client for seeding and inspecting servers in tests (independent of
/// flagfleet's own client, so a bug there cannot hide itself).
pub struct Admin {
    http: reqwest::blocking::Client,
    base: String,
    token: String,
}

impl Admin {
    pub fn new(server: &Server) -> Admin {
        Admin {
            http: reqwest::blocking::Client::new(),
            base: server.url.trim_end_matches('/').to_string(),
            token: server.token.clone(),
        }
    }

    #[track_caller]
    pub fn send(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method.clone(), format!("{}{}", self.base, path))
            .header("Authorization", &self.token);
        if let Some(b) = &body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status();
        let text = resp.text().unwrap_or_default();
        assert!(
            status.is_success(),
            "{method} {path} -> {status}: {text}\nbody: {body:?}"
        );
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        }
    }

    #[track_caller]
    pub fn get(&self, path: &str) -> Value {
        self.send("GET", path, None)
    }

    #[track_caller]
    pub fn post(&self, path: &str, body: Value) -> Value {
        self.send("POST", path, Some(body))
    }

    #[track_caller]
    pub fn put(&self, path: &str, body: Value) -> Value {
        self.send("PUT", path, Some(body))
    }
}
