//! End-to-end tests of how a fleet is run, against the real Unleash lab: fields a spoke
//! owns (`[[spokes.keep]]`), waves, and where drift comes from.
//!
//! They run with the `lab` feature, as those of tests/e2e_lab.rs do.

mod lab;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use lab::{seed, Admin, Lab, Server};
use serde_json::{json, Value};

/// A topology of the lab hub (production) and `spokes` as `(name, server, extra keys)`.
fn topology(dir: &Path, lab: &Lab, spokes: &[(&str, &Server, &str)]) -> PathBuf {
    let mut text = format!(
        "[hub]\nurl = \"{}\"\ntoken_env = \"LAB_HUB_TOKEN\"\n",
        lab.hub.url
    );
    for (name, server, extra) in spokes {
        text.push_str(&format!(
            "\n[[spokes]]\nname = \"{name}\"\nurl = \"{}\"\ntoken_env = \"LAB_{}_TOKEN\"\n{extra}\n",
            server.url,
            server.name.to_uppercase()
        ));
    }
    let path = dir.join("flagfleet.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn flagfleet(lab: &Lab, topology: &Path) -> Command {
    let mut cmd = Command::cargo_bin("flagfleet").unwrap();
    cmd.arg("-c").arg(topology).env("NO_COLOR", "1");
    for s in [&lab.hub, &lab.spoke1, &lab.spoke2, &lab.spoke3] {
        cmd.env(format!("LAB_{}_TOKEN", s.name.to_uppercase()), &s.token);
    }
    cmd.env_remove("FLAGFLEET_LOG");
    cmd
}

/// Runs `flagfleet` with `args`; returns (exit code, stdout, stderr).
fn run(lab: &Lab, topology: &Path, args: &[&str]) -> (i32, String, String) {
    let out = flagfleet(lab, topology).args(args).output().unwrap();
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

/// The action on `name` (a flag) in spoke `spoke` of a JSON plan.
fn flag_action<'p>(plan: &'p Value, spoke: &str, name: &str) -> &'p Value {
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
                .find(|a| a["kind"] == "flag" && a["name"] == name)
        })
        .unwrap_or_else(|| panic!("no action for flag {name} on {spoke}: {plan:#}"))
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
    let topo = topology(dir.path(), &lab, &[("eu-west", &lab.spoke1, keep)]);

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
