//! End-to-end tests of how a fleet is run, against the real Unleash lab: fields a spoke
//! owns (`[[spokes.keep]]`), waves, and where drift comes from.
//!
//! They run with the `lab` feature, as those of tests/e2e_lab.rs do.

mod lab;

use std::path::{Path, PathBuf};

use lab::{seed, Admin, Lab, Server};
use serde_json::{json, Value};

/// A topology of the lab hub (production) and `spokes` as `(name, server, extra keys)`.
/// Runs `flagfleet` with `args`; returns (exit code, stdout, stderr).
fn run(lab: &Lab, topology: &Path, args: &[&str]) -> (i32, String, String) {
    let out = lab.flagfleet(topology).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The plan as JSON.
fn plan_json(lab: &Lab, topology: &Path) -> Value {
    let (code, stdout, stderr) = run(lab, topology, &["plan", "--format", "json"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

/// The action on the `kind` object `name` in spoke `spoke` of a JSON plan.
fn action<'p>(plan: &'p Value, spoke: &str, kind: &str, name: &str) -> &'p Value {
    plan["spokes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == spoke)
        .and_then(|s| {
            s["actions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["kind"] == kind && a["name"] == name)
        })
        .unwrap_or_else(|| panic!("no action for {kind} {name} on {spoke}: {plan:#}"))
}

/// The action on flag `name` in spoke `spoke` of a JSON plan.
fn flag_action<'p>(plan: &'p Value, spoke: &str, name: &str) -> &'p Value {
    action(plan, spoke, "flag", name)
}

/// The action on segment `name` in spoke `spoke` of a JSON plan.
fn segment_action<'p>(plan: &'p Value, spoke: &str, name: &str) -> &'p Value {
    action(plan, spoke, "segment", name)
}

/// Asserts that `action` drifted on the spoke alone, its newest change a `kind` event by
/// `by`.
#[track_caller]
fn assert_spoke_drift(action: &Value, by: &str, kind: &str) {
    let drift = &action["drift"];
    assert_eq!(drift["origin"], "spoke", "{action:#}");
    let newest = &drift["spoke_changes"][0];
    assert_eq!((&newest["by"], &newest["type"]), (&json!(by), &json!(kind)));
    assert_eq!(drift["hub_changes"], json!([]), "{action:#}");
}

/// Asserts that `action` changed on the hub alone, its newest change a `kind` event.
#[track_caller]
fn assert_hub_drift(action: &Value, kind: &str) {
    let drift = &action["drift"];
    assert_eq!(drift["origin"], "hub", "{action:#}");
    assert_eq!(drift["spoke_changes"], json!([]), "{action:#}");
    assert_eq!(drift["hub_changes"][0]["type"], kind, "{action:#}");
}

/// Creates segment `name` (one `IN` constraint on `userId`) and an enabled flag `flag`
/// whose production strategy uses it.
fn flag_with_segment(a: &Admin, flag: &str, name: &str, users: &[&str]) {
    let segment = a.post(
        "/api/admin/segments",
        json!({"name": name, "constraints": [{"contextName": "userId", "operator": "IN", "values": users}]}),
    );
    seed::feature(a, flag, "release", "", false);
    seed::strategy(
        a,
        flag,
        "production",
        json!({"name": "default", "segments": [segment["id"].clone()]}),
    );
    seed::enable(a, flag, "production");
}

/// Replaces the users of segment `name` on the server `a` talks to, as its token's
/// identity.
fn edit_segment(a: &Admin, name: &str, users: &[&str]) {
    let segments = a.get("/api/admin/segments");
    let id = segments["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no segment {name}: {segments:#}"))["id"]
        .clone();
    a.put(
        &format!("/api/admin/segments/{id}"),
        json!({"name": name, "constraints": [{"contextName": "userId", "operator": "IN", "values": users}]}),
    );
}

/// The users segment `name` holds on `server` (sorted, as the state reader gives them).
fn segment_users(server: &Server, name: &str) -> Vec<String> {
    server.read_state(&["production"]).segments[name].constraints[0]
        .values
        .clone()
}

/// A flag with one 100 % rollout in production, enabled or not.
fn rollout_flag(a: &Admin, name: &str, rollout: &str, enabled: bool) {
    seed::feature(a, name, "release", "", false);
    seed::strategy(
        a,
        name,
        "production",
        json!({"name": "flexibleRollout", "parameters": {"rollout": rollout, "stickiness": "default", "groupId": name}}),
    );
    if enabled {
        seed::enable(a, name, "production");
    }
}

fn enabled_on(server: &Server, flag: &str) -> bool {
    server.read_state(&["production"]).flags[flag].environments[&"production".to_string()].enabled
}

/// An incident commander turned a kill switch off on the spoke: apply leaves it off (and
/// syncs the rest), a re-plan is empty; a create-only flag is created once and a hub
/// change to it is never written after.
#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn a_kept_kill_switch_survives_apply_and_create_only_flags_are_created_once() {
    let lab = Lab::take(&["hub", "spoke1"]);
    let hub = Admin::new(&lab.hub);
    let spoke = Admin::new(&lab.spoke1);
    rollout_flag(&hub, "kill-search", "100", true);
    rollout_flag(&hub, "checkout", "50", true);
    rollout_flag(&hub, "welcome-banner", "100", true);
    let dir = tempfile::tempdir().unwrap();
    let keep = r#"
[[spokes.keep]]
flags = ["kill-*"]
environment = "production"
fields = ["enabled"]

[[spokes.keep]]
flags = ["welcome-*"]
fields = ["*"]
"#;
    let topo = lab::topology(dir.path(), &lab.hub, &[("eu-west", &lab.spoke1, keep)]);

    // First apply: everything is created with the hub's values, kept fields included.
    let (code, stdout, stderr) = run(&lab, &topo, &["apply", "--auto-approve"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(enabled_on(&lab.spoke1, "kill-search"));

    // The incident: kill switch off on the spoke. The hub changes checkout and the
    // create-only flag.
    spoke.post(
        "/api/admin/projects/default/features/kill-search/environments/production/off",
        json!({}),
    );
    hub.put(
        "/api/admin/projects/default/features/checkout",
        json!({"description": "new text", "type": "release"}),
    );
    hub.put(
        "/api/admin/projects/default/features/welcome-banner",
        json!({"description": "hub edit", "type": "release"}),
    );
    let plan = plan_json(&lab, &topo);
    let kill = flag_action(&plan, "eu-west", "kill-search");
    assert_eq!(kill["action"], "skip", "{kill:#}");
    assert_eq!(kill["reason"], "kept by spoke: production.enabled");
    assert_eq!(kill["blocked"], false);
    let welcome = flag_action(&plan, "eu-west", "welcome-banner");
    assert_eq!(
        (&welcome["action"], &welcome["reason"]),
        (&json!("skip"), &json!("kept by spoke: *"))
    );
    assert_eq!(
        flag_action(&plan, "eu-west", "checkout")["action"],
        "overwrite"
    );
    let (_, human, _) = run(&lab, &topo, &["plan"]);
    assert!(
        human.contains("flag kill-search") && human.contains("kept by spoke: production.enabled"),
        "{human}"
    );

    let writes = lab.spoke1.writes();
    let (code, stdout, stderr) = run(&lab, &topo, &["apply", "--auto-approve"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    // One write: checkout's description; nothing for the kept fields.
    assert_eq!(lab.spoke1.writes() - writes, 1, "{stdout}");
    let state = lab.spoke1.read_state(&["production"]);
    assert!(!state.flags["kill-search"].environments[&"production".to_string()].enabled);
    assert_eq!(
        state.flags["checkout"].description.as_deref(),
        Some("new text")
    );
    assert_eq!(state.flags["welcome-banner"].description, None);

    // A re-plan has nothing to do.
    let (code, stdout, stderr) = run(&lab, &topo, &["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
}

/// A hub with one plain flag and one whose strategy uses a segment of two values, which
/// spoke3 refuses (it allows one value per segment).
fn hub_spoke3_refuses(a: &Admin) {
    rollout_flag(a, "plain", "100", true);
    let segment = a.post(
        "/api/admin/segments",
        json!({"name": "two-tenants",
               "constraints": [{"contextName": "userId", "operator": "IN", "values": ["a", "b"]}]}),
    );
    seed::feature(a, "segmented", "release", "", false);
    seed::strategy(
        a,
        "segmented",
        "production",
        json!({"name": "default", "segments": [segment["id"].clone()]}),
    );
}

/// Wave 1 (spoke3) fails: wave 2 (spoke1) is not started, nothing is written to it, the
/// report says so and apply exits 1. The plan shows the waves.
#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn a_failed_wave_leaves_the_next_wave_untouched() {
    let lab = Lab::take(&["hub", "spoke1", "spoke3"]);
    hub_spoke3_refuses(&Admin::new(&lab.hub));
    let dir = tempfile::tempdir().unwrap();
    let topo = lab::topology(
        dir.path(),
        &lab.hub,
        &[
            ("us-east", &lab.spoke1, "wave = 2"),
            ("canary", &lab.spoke3, "wave = 1"),
        ],
    );
    let (_, human, _) = run(&lab, &topo, &["plan"]);
    let canary = human.find("== Wave 1: canary").expect(&human);
    let second = human.find("== Wave 2: us-east").expect(&human);
    assert!(canary < second, "{human}");
    let plan = plan_json(&lab, &topo);
    let waves: Vec<(&str, u64)> = plan["spokes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["wave"].as_u64().unwrap()))
        .collect();
    assert_eq!(waves, [("us-east", 2), ("canary", 1)]);

    let writes = lab.spoke1.writes();
    let (code, stdout, stderr) = run(&lab, &topo, &["apply", "--auto-approve", "--gate", "true"]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("failed: segment:two-tenants: canary:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Apply to us-east: not started: wave 1 did not succeed."),
        "{stdout}"
    );
    assert!(
        stderr.contains("not starting wave 2: wave 1 did not succeed"),
        "{stderr}"
    );
    assert_eq!(lab.spoke1.writes(), writes, "nothing written to wave 2");
    assert!(lab.spoke1.read_state(&["production"]).flags.is_empty());
}

/// A gate that exits 1 after wave 1 stops the rollout: wave 1 is applied, wave 2 is not
/// started. The gate sees which wave it follows. `--wave 2` then applies wave 2 alone.
#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn a_failing_gate_stops_the_rollout_and_wave_applies_one_wave() {
    let lab = Lab::take(&["hub", "spoke1", "spoke2"]);
    rollout_flag(&Admin::new(&lab.hub), "plain", "100", true);
    let dir = tempfile::tempdir().unwrap();
    let topo = lab::topology(
        dir.path(),
        &lab.hub,
        &[
            ("canary", &lab.spoke1, "wave = 1"),
            ("rest", &lab.spoke2, "wave = 2"),
        ],
    );
    let seen = dir.path().join("gate.txt");
    let gate = format!(
        "echo \"$FLAGFLEET_WAVE $FLAGFLEET_NEXT_WAVE $FLAGFLEET_SPOKES $FLAGFLEET_NEXT_SPOKES\" > {}; exit 1",
        seen.display()
    );
    let (code, stdout, stderr) = run(
        &lab,
        &topo,
        &[
            "apply",
            "--auto-approve",
            "--wave-pause",
            "1",
            "--gate",
            &gate,
        ],
    );
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), "1 2 canary rest\n");
    assert!(
        stdout.contains("Apply to canary: 1 applied, 0 failed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Apply to rest: not started: the gate after wave 1 exited with status 1."),
        "{stdout}"
    );
    assert!(lab
        .spoke1
        .read_state(&["production"])
        .flags
        .contains_key("plain"));
    assert!(lab.spoke2.read_state(&["production"]).flags.is_empty());

    // The approval came: wave 2 alone.
    let writes = lab.spoke1.writes();
    let (code, stdout, stderr) = run(&lab, &topo, &["apply", "--auto-approve", "--wave", "2"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("Apply to rest: 1 applied"), "{stdout}");
    assert!(!stdout.contains("canary"), "{stdout}");
    assert_eq!(lab.spoke1.writes(), writes);
    assert!(lab
        .spoke2
        .read_state(&["production"])
        .flags
        .contains_key("plain"));
}

/// A spoke of a later wave changed during the pause between waves is refused when its
/// wave starts, with nothing written to it.
#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn a_later_wave_changed_during_the_pause_is_refused() {
    let lab = Lab::take(&["hub", "spoke1", "spoke2"]);
    rollout_flag(&Admin::new(&lab.hub), "plain", "100", true);
    let dir = tempfile::tempdir().unwrap();
    let topo = lab::topology(
        dir.path(),
        &lab.hub,
        &[
            ("canary", &lab.spoke1, "wave = 1"),
            ("rest", &lab.spoke2, "wave = 2"),
        ],
    );
    // The gate plays the person who edits the second wave's spoke meanwhile.
    let gate = gate_creating_a_flag(&lab.spoke2, "hand-made");
    let (code, stdout, stderr) = run(&lab, &topo, &["apply", "--auto-approve", "--gate", &gate]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stdout.contains("Apply to canary: 1 applied"), "{stdout}");
    assert!(
        stdout.contains("Apply to rest: error: it changed since the plan was made"),
        "{stdout}"
    );
    assert!(!lab
        .spoke2
        .read_state(&["production"])
        .flags
        .contains_key("plain"));
}

/// A `--gate` command that plays someone creating the flag `name` on `server` meanwhile.
fn gate_creating_a_flag(server: &Server, name: &str) -> String {
    format!(
        "curl -sf -o /dev/null -X POST -H 'Authorization: {}' -H 'Content-Type: application/json' -d '{{\"name\":\"{name}\",\"type\":\"release\"}}' {}/api/admin/projects/default/features",
        server.token, server.url
    )
}

/// Writes in `dir` the topology of spoke `eu-west` (spoke1) with `on_drift = "block"`,
/// plans it and asserts that `kind name`, which Alice changed on the spoke, is a blocked
/// skip naming her, and that `flag`, which needs it, is blocked in turn. Returns the
/// topology.
#[track_caller]
fn blocked_for_alice(lab: &Lab, dir: &Path, kind: &str, name: &str, flag: &str) -> PathBuf {
    let blocking = lab::topology(
        dir,
        &lab.hub,
        &[("eu-west", &lab.spoke1, "on_drift = \"block\"")],
    );
    let plan = plan_json(lab, &blocking);
    let drifted = "changed on the spoke by alice@example.com since flagfleet last wrote it (on_drift = block)";
    let object = action(&plan, "eu-west", kind, name);
    assert_eq!(
        (&object["action"], &object["blocked"], &object["reason"]),
        (&json!("skip"), &json!(true), &json!(drifted)),
        "{object:#}"
    );
    let needs = flag_action(&plan, "eu-west", flag);
    assert_eq!(
        (&needs["blocked"], &needs["reason"]),
        (
            &json!(true),
            &json!(format!("needs {kind} {name} ({drifted})"))
        ),
        "{needs:#}"
    );
    blocking
}

/// A second identity on `server`: a user `alice@example.com` with a personal access token
/// (admin API tokens cannot be made through the API in Unleash 8.2). Returns the token.
fn alice_token(server: &Server) -> String {
    let password = "Alice-lab-pass-1!";
    Admin::new(server).post(
        "/api/admin/user-admin",
        json!({"email": "alice@example.com", "name": "Alice", "password": password,
               "rootRole": "Admin", "sendEmail": false}),
    );
    let http = reqwest::blocking::Client::new();
    let base = server.url.trim_end_matches('/');
    // Setup, not the behaviour under test: a login or token answer without what we need
    // (seen once on a loaded machine) is tried again, and shown if it never comes.
    let mut last = String::new();
    for _ in 0..3 {
        let login = http
            .post(format!("{base}/auth/simple/login"))
            .json(&json!({"username": "alice@example.com", "password": password}))
            .send()
            .unwrap();
        let cookie = login
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|c| c.to_str().ok())
            .filter_map(|c| c.split(';').next())
            .collect::<Vec<_>>()
            .join("; ");
        let answer = http
            .post(format!("{base}/api/admin/user/tokens"))
            .header("Cookie", cookie)
            .json(&json!({"description": "alice", "expiresAt": "2099-01-01T00:00:00.000Z"}))
            .send()
            .unwrap();
        let status = answer.status();
        let token: Value = answer.json().unwrap_or(Value::Null);
        if let Some(secret) = token["secret"].as_str() {
            return secret.to_string();
        }
        last = format!("login {}, token {status}: {token}", login.status());
        // A rate-limited login says how long to wait.
        let wait = login
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(2u64);
        std::thread::sleep(std::time::Duration::from_secs(wait.min(65)));
    }
    panic!("cannot make Alice's personal access token: {last}");
}

/// Syncs the spoke `name` (on `server`) from the lab hub, with a topology written in
/// `dir`, then gives Alice, a second identity, an admin client on `server`. Returns the
/// topology and Alice's client.
fn synced_then_alice(lab: &Lab, dir: &Path, name: &str, server: &Server) -> (PathBuf, Admin) {
    let topo = lab::topology(dir, &lab.hub, &[(name, server, "")]);
    let (code, stdout, stderr) = run(lab, &topo, &["apply", "--auto-approve"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let alice = Admin::new(&Server {
        token: alice_token(server),
        ..server.clone()
    });
    (topo, alice)
}

/// After flagfleet synced the spoke, Alice (another identity) turns a flag off on the
/// spoke and the hub changes another: the plan says the first drifted on the spoke, by
/// Alice, and the second changed on the hub; `--drift-only` lists only the first; with
/// `on_drift = "block"` the first is blocked, naming Alice, and apply leaves it.
#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn drift_is_attributed_to_who_made_it_and_block_keeps_a_hand_made_change() {
    let lab = Lab::take(&["hub", "spoke1"]);
    let hub = Admin::new(&lab.hub);
    rollout_flag(&hub, "checkout", "50", true);
    rollout_flag(&hub, "search", "100", false);
    let dir = tempfile::tempdir().unwrap();
    let (topo, alice) = synced_then_alice(&lab, dir.path(), "eu-west", &lab.spoke1);
    alice.post(
        "/api/admin/projects/default/features/checkout/environments/production/off",
        json!({}),
    );
    hub.put(
        "/api/admin/projects/default/features/search",
        json!({"description": "hub edit", "type": "release"}),
    );

    let plan = plan_json(&lab, &topo);
    let checkout = flag_action(&plan, "eu-west", "checkout");
    assert_eq!(checkout["action"], "overwrite", "{checkout:#}");
    assert_spoke_drift(
        checkout,
        "alice@example.com",
        "feature-environment-disabled",
    );
    let search = flag_action(&plan, "eu-west", "search");
    assert_hub_drift(search, "feature-metadata-updated");

    let (_, human, _) = run(&lab, &topo, &["plan"]);
    assert!(
        human.contains("drifted on spoke: 1 change by alice@example.com, last "),
        "{human}"
    );
    assert!(human.contains("changed on hub: 1 change by "), "{human}");
    let (code, only, stderr) = run(&lab, &topo, &["plan", "--drift-only"]);
    assert_eq!(code, 0, "{only}\n{stderr}");
    assert!(only.contains("flag checkout"), "{only}");
    assert!(!only.contains("flag search"), "{only}");

    // The spoke's hotfix is never reverted silently.
    let topo = lab::topology(
        dir.path(),
        &lab.hub,
        &[("eu-west", &lab.spoke1, "on_drift = \"block\"")],
    );
    let plan = plan_json(&lab, &topo);
    let checkout = flag_action(&plan, "eu-west", "checkout");
    assert_eq!(
        (&checkout["action"], &checkout["blocked"], &checkout["reason"]),
        (
            &json!("skip"),
            &json!(true),
            &json!("changed on the spoke by alice@example.com since flagfleet last wrote it (on_drift = block)")
        )
    );
    let (code, stdout, stderr) = run(&lab, &topo, &["apply", "--auto-approve"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let state = lab.spoke1.read_state(&["production"]);
    assert!(!state.flags["checkout"].environments[&"production".to_string()].enabled);
    assert_eq!(
        state.flags["search"].description.as_deref(),
        Some("hub edit")
    );
}

/// After flagfleet synced the spoke, Alice (another identity) edits one segment on the
/// spoke and the hub edits another: the plan says the first drifted on the spoke, by
/// Alice, and the second changed on the hub; `--drift-only` lists only the first; with
/// `on_drift = "block"` the first is blocked, naming Alice, so is the flag that uses it,
/// and apply leaves both; with the default, apply overwrites it and a re-plan is empty.
#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn segment_drift_is_attributed_and_block_keeps_a_hand_made_segment() {
    let lab = Lab::take(&["hub", "spoke1"]);
    let hub = Admin::new(&lab.hub);
    flag_with_segment(&hub, "checkout", "beta-users", &["u1"]);
    flag_with_segment(&hub, "search", "regions", &["r1"]);
    let dir = tempfile::tempdir().unwrap();
    let (topo, alice) = synced_then_alice(&lab, dir.path(), "eu-west", &lab.spoke1);
    edit_segment(&alice, "beta-users", &["u1", "hotfix"]);
    edit_segment(&hub, "regions", &["r1", "r2"]);

    let plan = plan_json(&lab, &topo);
    let beta = segment_action(&plan, "eu-west", "beta-users");
    assert_eq!(beta["action"], "overwrite", "{beta:#}");
    assert_spoke_drift(beta, "alice@example.com", "segment-updated");
    assert_hub_drift(
        segment_action(&plan, "eu-west", "regions"),
        "segment-updated",
    );
    let (_, human, _) = run(&lab, &topo, &["plan"]);
    assert!(
        human.contains("drifted on spoke: 1 change by alice@example.com, last "),
        "{human}"
    );
    let (code, only, stderr) = run(&lab, &topo, &["plan", "--drift-only"]);
    assert_eq!(code, 0, "{only}\n{stderr}");
    assert!(only.contains("segment beta-users"), "{only}");
    assert!(!only.contains("segment regions"), "{only}");

    // The spoke's hand-made segment is never reverted silently, nor used under a flag
    // synced as if it held the hub's.
    let blocking_dir = tempfile::tempdir().unwrap();
    let blocking = blocked_for_alice(
        &lab,
        blocking_dir.path(),
        "segment",
        "beta-users",
        "checkout",
    );
    let (code, stdout, stderr) = run(&lab, &blocking, &["apply", "--auto-approve"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(segment_users(&lab.spoke1, "beta-users"), ["hotfix", "u1"]);
    assert_eq!(segment_users(&lab.spoke1, "regions"), ["r1", "r2"]);

    let (code, stdout, stderr) = run(&lab, &topo, &["apply", "--auto-approve"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(segment_users(&lab.spoke1, "beta-users"), ["u1"]);
    let (code, stdout, stderr) = run(&lab, &topo, &["plan", "--detailed-exitcode"]);
    assert_eq!(
        code, 0,
        "a re-plan after apply is not empty:\n{stdout}\n{stderr}"
    );
}

/// Server-wide objects other than segments are attributed too: Alice edits a context
/// field on the spoke and the hub changes a custom strategy definition; the plan says
/// which drifted where and by whom; with `on_drift = "block"` the context field is kept
/// as Alice left it, and so is the flag that needs it.
#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn context_field_and_strategy_drift_is_attributed_and_block_keeps_a_hand_made_field() {
    let lab = Lab::take(&["hub", "spoke1"]);
    let hub = Admin::new(&lab.hub);
    let zone = |description: &str| json!({"name": "zone", "description": description, "legalValues": [{"value": "a"}]});
    let by_zone = |description: &str| {
        json!({"name": "by-zone", "description": description,
               "parameters": [{"name": "zones", "type": "list", "description": "", "required": false}]})
    };
    hub.post("/api/admin/context", zone("zone"));
    hub.post("/api/admin/strategies", by_zone("v1"));
    seed::feature(&hub, "zoned", "release", "", false);
    seed::strategy(
        &hub,
        "zoned",
        "production",
        json!({"name": "by-zone", "parameters": {"zones": "a"},
               "constraints": [{"contextName": "zone", "operator": "IN", "values": ["a"]}]}),
    );
    let dir = tempfile::tempdir().unwrap();
    let (topo, alice) = synced_then_alice(&lab, dir.path(), "eu-west", &lab.spoke1);
    alice.put("/api/admin/context/zone", zone("hotfix"));
    hub.put("/api/admin/strategies/by-zone", by_zone("v2"));

    let plan = plan_json(&lab, &topo);
    let field = action(&plan, "eu-west", "context_field", "zone");
    assert_eq!(field["action"], "overwrite", "{field:#}");
    assert_spoke_drift(field, "alice@example.com", "context-field-updated");
    assert_hub_drift(
        action(&plan, "eu-west", "strategy", "by-zone"),
        "strategy-updated",
    );

    let blocking_dir = tempfile::tempdir().unwrap();
    let blocking = blocked_for_alice(&lab, blocking_dir.path(), "context_field", "zone", "zoned");
    let (code, stdout, stderr) = run(&lab, &blocking, &["apply", "--auto-approve"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let spoke = lab.spoke1.read_state(&["production"]);
    assert_eq!(
        spoke.context_fields["zone"].description.as_deref(),
        Some("hotfix")
    );
    assert_eq!(
        spoke.strategies["by-zone"].description.as_deref(),
        Some("v2")
    );
}

/// Drift attribution against the oldest Unleash of the lab (6.10.1) as a spoke: its
/// event search answers the same questions, so Alice's segment edit there is spoke
/// drift by her and a hub flag edit a hub change (an older log that could not be read
/// would leave `unknown`, never fail the plan).
#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn drift_is_attributed_on_an_unleash_6_spoke() {
    let lab = Lab::take(&["hub", "v6"]);
    let hub = Admin::new(&lab.hub);
    flag_with_segment(&hub, "checkout", "beta-users", &["u1"]);
    rollout_flag(&hub, "search", "100", false);
    let dir = tempfile::tempdir().unwrap();
    let (topo, alice) = synced_then_alice(&lab, dir.path(), "old", &lab.v6);
    edit_segment(&alice, "beta-users", &["u1", "hotfix"]);
    hub.put(
        "/api/admin/projects/default/features/search",
        json!({"description": "hub edit", "type": "release"}),
    );

    let plan = plan_json(&lab, &topo);
    assert_spoke_drift(
        segment_action(&plan, "old", "beta-users"),
        "alice@example.com",
        "segment-updated",
    );
    assert_hub_drift(
        flag_action(&plan, "old", "search"),
        "feature-metadata-updated",
    );
}

/// The strategies of every flag of `server` in `environment`, by flag, as JSON.
fn strategies_in(server: &Server, environment: &str) -> Value {
    let state = server.read_state(&[environment]);
    let env = environment.to_string();
    state
        .flags
        .iter()
        .map(|(name, f)| {
            let strategies = f.environments.get(&env).map(|e| e.strategies.clone());
            (name.clone(), serde_json::to_value(strategies).unwrap())
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Two spokes on one server, one per stage (its development and its production
/// environment): what the first writes (the server's scaffolding, the flags themselves) is
/// no reason to refuse the second, which brings those objects in line by updates rather
/// than creating them twice, so that one apply leaves both stages equal to the hub, in
/// waves or at once. A change by anyone else in between still refuses the second.
#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn stages_on_one_server_converge_in_one_apply_and_only_their_own_writes_pass() {
    let lab = Lab::take(&["hub", "spoke1"]);
    seed::rich_hub(&Admin::new(&lab.hub));
    let dir = tempfile::tempdir().unwrap();
    let stages = |staging: &str, prod: &str| {
        lab::topology(
            dir.path(),
            &lab.hub,
            &[
                (
                    "staging",
                    &lab.spoke1,
                    &format!("{staging}\nenvironments = {{ production = \"development\" }}"),
                ),
                ("prod", &lab.spoke1, prod),
            ],
        )
    };
    let hub_strategies = strategies_in(&lab.hub, "production");
    assert!(hub_strategies.as_object().unwrap().len() > 3);

    for (staging, prod) in [("wave = 1", "wave = 2"), ("", "")] {
        lab.reset(&["spoke1"]);
        let topo = stages(staging, prod);
        let (code, stdout, stderr) = run(&lab, &topo, &["apply", "--auto-approve"]);
        assert_eq!(code, 0, "{stdout}\n{stderr}");
        assert!(stdout.contains("Apply to staging: "), "{stdout}");
        assert!(
            stdout.contains(", 0 failed, 0 not attempted")
                && !stdout.contains("error")
                && stdout.matches(", 0 failed, 0 not attempted").count() == 2,
            "{stdout}"
        );
        assert!(
            format!("{stdout}{stderr}")
                .contains("written already by staging (same server) in this run: updated instead")
                || format!("{stdout}{stderr}")
                    .contains("written already by prod (same server) in this run: updated instead"),
            "{stdout}\n{stderr}"
        );
        let (code, stdout, stderr) = run(&lab, &topo, &["plan", "--detailed-exitcode"]);
        assert_eq!(code, 0, "a second plan is empty:\n{stdout}\n{stderr}");
        // Each stage holds the hub's strategies once, not twice.
        assert_eq!(strategies_in(&lab.spoke1, "production"), hub_strategies);
        assert_eq!(strategies_in(&lab.spoke1, "development"), hub_strategies);
    }

    // Someone else creates a flag on the server while the first wave is gated.
    lab.reset(&["spoke1"]);
    let topo = stages("wave = 1", "wave = 2");
    let gate = gate_creating_a_flag(&lab.spoke1, "hand-made");
    let (code, stdout, stderr) = run(&lab, &topo, &["apply", "--auto-approve", "--gate", &gate]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stdout.contains("Apply to staging: "), "{stdout}");
    assert!(
        stdout.contains(
            "Apply to prod: error: it changed since the plan was made (flag hand-made), not by this apply; nothing was changed"
        ),
        "{stdout}"
    );
    let (_, stdout, _) = run(&lab, &topo, &["plan", "--format", "json"]);
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    let prod = plan["spokes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "prod")
        .unwrap();
    assert!(
        prod["summary"]["create"].as_u64().unwrap() == 0
            && prod["summary"]["overwrite"].as_u64().unwrap() > 0,
        "prod's environment was left as it was: {prod}"
    );

    // Both stages in line; the hub edits a flag, so both plans overwrite it. While the
    // first wave is gated, someone on call turns that flag off in production: the first
    // stage wrote the flag, but only its development environment, so the second stage
    // is refused rather than turning it back on.
    let (code, stdout, stderr) = run(&lab, &topo, &["apply", "--auto-approve"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    Admin::new(&lab.hub).put(
        "/api/admin/projects/default/features/checkout-v2",
        json!({"description": "new checkout flow, v2", "type": "release", "impressionData": true}),
    );
    let gate = format!(
        "curl -sf -o /dev/null -X POST -H 'Authorization: {}' {}/api/admin/projects/default/features/checkout-v2/environments/production/off",
        lab.spoke1.token, lab.spoke1.url
    );
    let (code, stdout, stderr) = run(&lab, &topo, &["apply", "--auto-approve", "--gate", &gate]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Apply to staging: 1 applied, 0 failed"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "Apply to prod: error: it changed since the plan was made (flag checkout-v2 in production), not by this apply; nothing was changed"
        ),
        "{stdout}"
    );
    assert!(!enabled_on(&lab.spoke1, "checkout-v2"), "turned back on");
}
