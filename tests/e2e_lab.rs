//! End-to-end tests against the real Unleash lab (`scripts/lab.sh up`).
//!
//! They run with the `lab` feature, which `scripts/test.sh` sets after starting the lab;
//! plain `cargo test` lists them as ignored, and with the feature but without the lab they
//! fail (see [`Lab::take`]). Every test here carries the same `cfg_attr` line.
//!
//! Each test takes the lab lock, resets the servers it uses, seeds them through the admin
//! API, and runs the real `flagfleet` binary or library against them.

mod apply_trust;
mod lab;

use std::path::Path;

use assert_cmd::Command;
use flagfleet::client::ClientOptions;
use flagfleet::pipeline;
use flagfleet::state::{self, snapshot, State};
use flagfleet::topology;
use lab::{seed, Admin, Lab};

/// Writes a topology naming the lab hub and spoke1 (tokens in env vars) into `dir`.
fn live_topology(dir: &Path, lab: &Lab, hub_envs: &str) -> std::path::PathBuf {
    let path = dir.join("flagfleet.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[hub]
url = "{}"
token_env = "LAB_HUB_TOKEN"
environments = {hub_envs}

[[spokes]]
name = "eu-west"
url = "{}"
token_env = "LAB_SPOKE1_TOKEN"
environments = {{ production = "production" }}
"#,
            lab.hub.url, lab.spoke1.url
        ),
    )
    .unwrap();
    path
}

/// Writes a topology of the lab hub (with `hub_extra` after its table, e.g. `[select]`)
/// and one spoke `(name, server, token variable)` (with `spoke_extra` in its table).
fn hub_and_spoke(
    dir: &Path,
    lab: &Lab,
    hub_extra: &str,
    (name, server, token_env): (&str, &lab::Server, &str),
    spoke_extra: &str,
) -> std::path::PathBuf {
    let path = dir.join("flagfleet.toml");
    let text = format!(
        "[hub]\nurl = \"{}\"\ntoken_env = \"LAB_HUB_TOKEN\"\n{hub_extra}[[spokes]]\nname = \"{name}\"\nurl = \"{}\"\ntoken_env = \"{token_env}\"\n{spoke_extra}",
        lab.hub.url, server.url
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn flagfleet(lab: &Lab, topology: &Path) -> Command {
    let mut cmd = Command::cargo_bin("flagfleet").unwrap();
    cmd.arg("-c")
        .arg(topology)
        .env("LAB_HUB_TOKEN", &lab.hub.token)
        .env("LAB_SPOKE1_TOKEN", &lab.spoke1.token)
        .env("NO_COLOR", "1")
        .env_remove("FLAGFLEET_LOG");
    cmd
}

fn read_snapshot(path: &Path) -> snapshot::Snapshot {
    let text = std::fs::read_to_string(path).unwrap();
    match snapshot::parse(&text, "default").unwrap() {
        snapshot::FileContents::Snapshot(s) => *s,
        other => panic!("expected a snapshot, got {other:?}"),
    }
}

#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn export_reads_every_field_of_a_rich_hub_faithfully() {
    let lab = Lab::take(&["hub"]);
    seed::rich_hub(&Admin::new(&lab.hub));
    let dir = tempfile::tempdir().unwrap();
    let topo = live_topology(dir.path(), &lab, r#"["production", "development"]"#);
    let out = dir.path().join("hub.json");

    let assert = flagfleet(&lab, &topo)
        .args(["-vv", "export", "hub", "--out"])
        .arg(&out)
        .assert()
        .success();
    let output = assert.get_output();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!all.contains(&lab.hub.token), "token leaked into output");
    assert!(!std::fs::read_to_string(&out)
        .unwrap()
        .contains(&lab.hub.token));

    let snap = read_snapshot(&out);
    let s = &snap.state;
    assert_eq!(snap.source.unleash_version.as_deref(), Some("8.2.0"));

    // Strategy order is the evaluation order set by set-sort-order, not the export's.
    let prod = &s.flags["checkout-v2"]
        .environments
        .get("production")
        .unwrap();
    let names: Vec<&str> = prod.strategies.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["by-tenant", "default", "flexibleRollout"]);
    // Segments by name, sorted; ids gone.
    assert_eq!(prod.strategies[0].segments, ["beta-users", "premium"]);
    assert!(prod.strategies[1].disabled);
    assert_eq!(
        prod.strategies[2].title.as_deref(),
        Some("Half of EU and US")
    );
    // Archived flags are not active flags, but their names are known as taken.
    assert!(!s.flags.contains_key("old-flag"));
    assert!(s.elsewhere["old-flag"].archived);
    // A context field used only inside a segment is still read.
    assert_eq!(s.context_fields["plan"].legal_values.len(), 2);
    assert!(s.context_fields["userId"].builtin);
    assert!(s.strategies["flexibleRollout"].builtin);
    assert!(!s.strategies["by-tenant"].builtin);
    assert!(s.tag_types["simple"].builtin);

    // Everything else is pinned by a reviewed snapshot of the whole state.
    insta::assert_json_snapshot!("rich_hub_state", s);

    // Read back from the file, it is the same state; exported again, the same bytes.
    let file_topo = dir.path().join("file.toml");
    std::fs::write(
        &file_topo,
        "[hub]\nfile = \"hub.json\"\nenvironments = [\"production\", \"development\"]\n[[spokes]]\nname = \"x\"\nfile = \"hub.json\"\nproject = \"other\"\n",
    )
    .unwrap();
    let again = dir.path().join("again.json");
    flagfleet(&lab, &file_topo)
        .args(["export", "hub", "--out"])
        .arg(&again)
        .assert()
        .success();
    assert_eq!(read_snapshot(&again).state, snap.state);
    let strip_source = |p: &Path| {
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("source");
        v
    };
    assert_eq!(strip_source(&again), strip_source(&out));
}

/// Reads the hub through the library and returns the state and the requests it took.
fn read_counting(lab: &Lab, topo: &Path) -> (State, u64) {
    std::env::set_var("LAB_HUB_TOKEN", &lab.hub.token);
    let t = topology::load(topo).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = state::connect(&t.hub.instance, &ClientOptions::default())
            .unwrap()
            .unwrap();
        let s = state::read(&t.hub.instance, Some(&client), &t.hub.environments, true)
            .await
            .unwrap();
        (s, client.requests())
    })
}

#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn a_thousand_more_flags_add_no_requests_and_keep_their_strategy_order() {
    let lab = Lab::take(&["hub"]);
    let admin = Admin::new(&lab.hub);
    seed::rich_hub(&admin);
    let dir = tempfile::tempdir().unwrap();
    let topo = live_topology(dir.path(), &lab, r#"["production", "development"]"#);

    let playgrounds = || lab.hub.requests(|_, path| path == "/api/admin/playground");
    let (before, requests_before) = read_counting(&lab, &topo);
    seed::bulk_flags(&admin, 1000);
    // Flags with two strategies whose evaluation order is not their creation order: the
    // order comes from one playground evaluation per environment, not a request per flag.
    seed::reordered_pairs(&admin, 100);
    let playgrounds_before = playgrounds();
    let (after, requests_after) = read_counting(&lab, &topo);
    assert_eq!(
        playgrounds() - playgrounds_before,
        1,
        "101 flags to order: the playground"
    );

    assert_eq!(after.flags.len(), before.flags.len() + 1100);
    for i in [0, 57, 99] {
        let names: Vec<&str> = after.flags[&format!("pair-{i:04}")]
            .environments
            .get("production")
            .unwrap()
            .strategies
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(names, ["default", "flexibleRollout"], "pair-{i:04}");
    }
    assert_eq!(
        after.flags["bulk-0999"]
            .environments
            .get("production")
            .unwrap()
            .strategies
            .len(),
        1
    );
    assert_eq!(
        requests_after, requests_before,
        "reading 1,100 more flags must not cost more requests"
    );
    // 2 exports + 4 scaffolding lists + the project list twice (flag count check) + the
    // version (ui-config) + 2 searches + 1 read of checkout-v2's order (production, where it
    // has three strategies; the one flag to order, so no playground).
    assert_eq!(requests_before, 12);
}

#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn a_few_flags_with_several_strategies_are_ordered_flag_by_flag_without_the_playground() {
    let lab = Lab::take(&["hub"]);
    let admin = Admin::new(&lab.hub);
    seed::rich_hub(&admin);
    // Seven flags whose evaluation order is not their creation order, besides checkout-v2:
    // eight to order, one round of requests.
    seed::reordered_pairs(&admin, 7);
    let dir = tempfile::tempdir().unwrap();
    let topo = live_topology(dir.path(), &lab, r#"["production", "development"]"#);

    let playgrounds = || lab.hub.requests(|_, path| path == "/api/admin/playground");
    let playgrounds_before = playgrounds();
    let (s, requests) = read_counting(&lab, &topo);
    assert_eq!(
        playgrounds(),
        playgrounds_before,
        "8 flags to order: no playground"
    );
    let order = |flag: &str| -> Vec<String> {
        s.flags[flag]
            .environments
            .get("production")
            .unwrap()
            .strategies
            .iter()
            .map(|s| s.name.clone())
            .collect()
    };
    for i in 0..7 {
        assert_eq!(
            order(&format!("pair-{i:04}")),
            ["default", "flexibleRollout"],
            "pair-{i:04}"
        );
    }
    assert_eq!(
        order("checkout-v2"),
        ["by-tenant", "default", "flexibleRollout"]
    );
    // The read of the rich hub alone (12, see above) less its one order read, plus one
    // strategy list per flag to order.
    assert_eq!(requests, 11 + 8);
}

#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn validate_reports_every_instance_and_every_problem() {
    let lab = Lab::take(&[]);
    let dir = tempfile::tempdir().unwrap();
    let topo = dir.path().join("flagfleet.toml");
    // The hub's token comes from a mounted-secret style file (with a trailing newline).
    std::fs::create_dir_all(dir.path().join("secrets")).unwrap();
    std::fs::write(
        dir.path().join("secrets/hub-token"),
        format!("{}\n", lab.hub.token),
    )
    .unwrap();
    std::fs::write(
        &topo,
        format!(
            r#"
[hub]
url = "{}"
token_file = "secrets/hub-token"

[[spokes]]
name = "eu-west"
url = "{}"
token_env = "LAB_SPOKE1_TOKEN"
environments = {{ production = "staging" }}

[[spokes]]
name = "us-east"
url = "{}"
token_env = "WRONG_TOKEN"

[[spokes]]
name = "ap-south"
url = "http://127.0.0.1:9"
token_env = "LAB_HUB_TOKEN"

[[spokes]]
name = "no-env"
url = "{}"
token_env = "FLAGFLEET_TEST_UNSET_VARIABLE"
"#,
            lab.hub.url, lab.spoke1.url, lab.spoke2.url, lab.spoke3.url
        ),
    )
    .unwrap();
    let assert = flagfleet(&lab, &topo)
        .env("WRONG_TOKEN", "*:*.not-a-real-token")
        .env_remove("FLAGFLEET_TEST_UNSET_VARIABLE")
        .arg("validate")
        .assert()
        .code(1);
    let out = assert.get_output();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("8.2.0"), "{stdout}");
    assert!(
        stderr.contains("eu-west: environment `staging` does not exist here"),
        "{stderr}"
    );
    assert!(
        stderr.contains("us-east: the API token was refused (HTTP 401"),
        "{stderr}"
    );
    assert!(
        stderr.contains("ap-south: cannot reach http://127.0.0.1:9/"),
        "{stderr}"
    );
    assert!(
        stderr.contains("no-env: environment variable FLAGFLEET_TEST_UNSET_VARIABLE is not set"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-a-real-token") && !stdout.contains("not-a-real-token"));
    assert!(!stderr.contains(&lab.hub.token));
    let hub_line = stdout.lines().find(|l| l.contains(" hub ")).unwrap();
    assert!(hub_line.contains("ok"), "{stdout}");
}

/// A fleet of the lab hub and two spokes, selected like the quickstart.
fn fleet_topology(dir: &Path, lab: &Lab) -> std::path::PathBuf {
    let path = dir.join("flagfleet.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[hub]
url = "{}"
token_env = "LAB_HUB_TOKEN"

[select]
tags = ["sync:global"]
names = ["ops-*", "parent-flag", "kill-switch-*"]

[[spokes]]
name = "eu-west"
url = "{}"
token_env = "LAB_SPOKE1_TOKEN"

[[spokes.overrides]]
flags = ["checkout-*"]
parameters = {{ rollout = "10" }}

[[spokes]]
name = "us-east"
url = "{}"
token_env = "LAB_SPOKE2_TOKEN"

[[spokes.overrides]]
flags = ["ops-*"]
enabled = false
"#,
            lab.hub.url, lab.spoke1.url, lab.spoke2.url
        ),
    )
    .unwrap();
    path
}

/// `kind name: action (reason)` lines of a JSON plan, one spoke after another.
fn action_lines(plan: &flagfleet::plan::Plan) -> String {
    let mut out = String::new();
    for s in &plan.spokes {
        out.push_str(&format!("{}:\n", s.name));
        if let Some(e) = &s.error {
            out.push_str(&format!("  error: {e}\n"));
        }
        for a in &s.actions {
            let action = serde_json::to_value(a.action).unwrap();
            out.push_str(&format!(
                "  {} {}: {} ({}){}\n",
                a.kind,
                a.name,
                action.as_str().unwrap(),
                a.reason,
                if a.blocked { " BLOCKED" } else { "" }
            ));
        }
    }
    out
}

#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn plan_against_an_empty_and_a_drifted_spoke() {
    let lab = Lab::take(&["hub", "spoke1", "spoke2"]);
    seed::rich_hub(&Admin::new(&lab.hub));
    seed::drifted_spoke(&Admin::new(&lab.spoke1));
    let dir = tempfile::tempdir().unwrap();
    let topo = fleet_topology(dir.path(), &lab);
    let assert = flagfleet(&lab, &topo)
        .env("LAB_SPOKE2_TOKEN", &lab.spoke2.token)
        .args(["plan", "--format", "json", "--detailed-exitcode"])
        .assert()
        .code(2);
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
    assert!(!stdout.contains(&lab.spoke1.token) && !stdout.contains(&lab.hub.token));
    let plan: flagfleet::plan::Plan = serde_json::from_str(&stdout).unwrap();
    insta::assert_snapshot!("lab_plan_actions", action_lines(&plan));

    let eu = &plan.spokes[0];
    let find = |name: &str| eu.actions.iter().find(|a| a.name == name).unwrap();
    // Legal values differ both ways: the hub's are added, the spoke's own kept.
    assert_eq!(
        find("region").notes,
        ["legal values only the spoke has are kept: emea"]
    );
    // The override runs checkout at 10 % here while the hub runs 50 %.
    assert!(find("checkout-v2")
        .diff
        .as_ref()
        .unwrap()
        .contains("+            \"rollout\": \"10\","));
    // Spoke-only things are never touched.
    assert!(eu
        .actions
        .iter()
        .all(|a| a.name != "eu-cookie-banner" && a.name != "geo-fence"));
}

#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn planning_requests_do_not_grow_with_single_strategy_flags() {
    let lab = Lab::take(&["hub", "spoke1"]);
    let admin = Admin::new(&lab.hub);
    seed::rich_hub(&admin);
    let dir = tempfile::tempdir().unwrap();
    let topo = live_topology(dir.path(), &lab, r#"["production"]"#);
    std::env::set_var("LAB_HUB_TOKEN", &lab.hub.token);
    std::env::set_var("LAB_SPOKE1_TOKEN", &lab.spoke1.token);
    let t = std::sync::Arc::new(topology::load(&topo).unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let options = pipeline::Options {
        client: ClientOptions::default(),
        parallelism: 1,
    };
    let requests = |rt: &tokio::runtime::Runtime| {
        rt.block_on(async {
            let (fleet, plan) =
                pipeline::plan_fleet(t.clone(), String::new(), &[], &options, |_| true)
                    .await
                    .unwrap();
            assert!(plan.spokes[0].error.is_none());
            (
                fleet.hub.client.as_ref().unwrap().requests(),
                fleet.spokes[0].client.as_ref().unwrap().requests(),
                plan.spokes[0].summary.create,
            )
        })
    };
    let (hub_before, spoke_before, creates_before) = requests(&rt);
    seed::bulk_flags(&admin, 1000);
    let (hub_after, spoke_after, creates_after) = requests(&rt);
    assert_eq!(creates_after, creates_before + 1000);
    assert_eq!(hub_after, hub_before);
    // The names a plan would create are looked up on the spoke (taken there, archived or
    // in another project?), 1,000 to a batch export: the rich hub's and 1,000 more take
    // one more.
    assert_eq!(spoke_after, spoke_before + 1);
}

/// The part of a state a sync makes equal: selected flags in production (without
/// `stale`), and the scaffolding they use.
fn synced_view(state: &State, flags: &[&str]) -> serde_json::Value {
    lab::synced_view(state, flags, &["beta-users", "premium"])
}

fn read_live_state(server: &lab::Server) -> State {
    server.read_state(&["production"])
}

/// Routes as the servers count them: one flag switched on, and many at once.
const ONE_ON: &str =
    "/api/admin/projects/:projectId/features/:featureName/environments/:environment/on";
const BULK_ON: &str = "/api/admin/projects/:projectId/bulk_features/environments/:environment/on";

#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn apply_makes_empty_and_drifted_spokes_equal_to_the_hub_and_replans_clean() {
    let lab = Lab::take(&["hub", "spoke1", "spoke2"]);
    seed::rich_hub(&Admin::new(&lab.hub));
    seed::drifted_spoke(&Admin::new(&lab.spoke1));
    let dir = tempfile::tempdir().unwrap();
    let topo = fleet_topology(dir.path(), &lab);
    let backups = dir.path().join("backups");
    let switches = |server: &lab::Server| {
        let on = |route: &'static str| server.requests(move |m, p| m == "POST" && p == route);
        (on(ONE_ON), on(BULK_ON))
    };
    let us_before = switches(&lab.spoke2);
    let out = flagfleet(&lab, &topo)
        .env("LAB_SPOKE2_TOKEN", &lab.spoke2.token)
        .args(["apply", "--auto-approve", "--backup-dir"])
        .arg(&backups)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(!stdout.contains(&lab.spoke1.token) && !stderr.contains(&lab.spoke1.token));
    assert!(
        stdout.contains("Apply to eu-west: 9 applied, 0 failed, 0 not attempted."),
        "{stdout}"
    );
    assert!(
        stdout.contains("Apply to us-east: 13 applied, 0 failed, 0 not attempted."),
        "{stdout}"
    );
    // us-east was empty: its new flags (on in production only) were switched on in one
    // request, none one by one.
    let us_after = switches(&lab.spoke2);
    assert_eq!(
        (us_after.0 - us_before.0, us_after.1 - us_before.1),
        (0, 1),
        "(single, bulk) switches on us-east"
    );
    // The progress lines say so after the creates' own lines, and nothing was left off.
    let switching = stderr.find("us-east: switching ");
    let last_create = stderr.rfind("us-east: create flag ");
    assert!(
        matches!((last_create, switching), (Some(c), Some(s)) if c < s),
        "{stderr}"
    );
    assert!(stderr.contains(" new flag environments on\n"), "{stderr}");
    assert!(!stderr.contains("left off"), "{stderr}");
    assert_eq!(
        std::fs::read_dir(&backups).unwrap().count(),
        2,
        "one backup per spoke"
    );

    // A second plan is empty.
    flagfleet(&lab, &topo)
        .env("LAB_SPOKE2_TOKEN", &lab.spoke2.token)
        .args(["plan", "--detailed-exitcode"])
        .assert()
        .code(0);

    // The spokes hold what the hub holds, with eu-west's override.
    let hub = read_live_state(&lab.hub);
    let flags = ["checkout-v2", "child-flag", "ops-cache", "parent-flag"];
    let mut want = synced_view(&hub, &flags);
    let mut want_us = want.clone();
    want_us["ops-cache"]["environments"]["production"]["enabled"] = false.into();
    assert_eq!(synced_view(&read_live_state(&lab.spoke2), &flags), want_us);
    want["checkout-v2"]["environments"]["production"]["strategies"][2]["parameters"]["rollout"] =
        "10".into();
    let eu = read_live_state(&lab.spoke1);
    assert_eq!(synced_view(&eu, &flags), want);
    // Spoke-local data is intact: extra legal value, spoke-only flag and strategy; the
    // archived flag was not revived.
    assert!(eu.context_fields["region"]
        .legal_values
        .iter()
        .any(|l| l.value == "emea"));
    assert!(eu.flags.contains_key("eu-cookie-banner"));
    assert!(eu.strategies.contains_key("geo-fence"));
    assert!(!eu.flags.contains_key("kill-switch-search"));
    assert!(eu.elsewhere["kill-switch-search"].archived);
}

/// A CI matrix sharded by `--spoke`, run one job after another: each shard plans only its
/// spoke into its own saved plan, `show` prints it, and applying it writes to that spoke
/// alone; after the last shard every spoke is converged and a whole-fleet plan is empty.
/// (spoke3 is left out: it refuses the hub's segments by design, see scripts/lab.sh.)
#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn a_fleet_sharded_by_spoke_converges_shard_by_shard() {
    let lab = Lab::take(&["hub", "spoke1", "spoke2"]);
    seed::rich_hub(&Admin::new(&lab.hub));
    seed::drifted_spoke(&Admin::new(&lab.spoke1));
    let dir = tempfile::tempdir().unwrap();
    let topo = dir.path().join("flagfleet.toml");
    let shards = [
        ("eu-west", &lab.spoke1, "LAB_SPOKE1_TOKEN"),
        ("us-east", &lab.spoke2, "LAB_SPOKE2_TOKEN"),
    ];
    let mut text = format!(
        "[hub]\nurl = \"{}\"\ntoken_env = \"LAB_HUB_TOKEN\"\n\n[select]\ntags = [\"sync:global\"]\nnames = [\"ops-*\", \"parent-flag\", \"kill-switch-*\"]\n",
        lab.hub.url
    );
    for (name, server, var) in &shards {
        text.push_str(&format!(
            "\n[[spokes]]\nname = \"{name}\"\nurl = \"{}\"\ntoken_env = \"{var}\"\n",
            server.url
        ));
    }
    std::fs::write(&topo, text).unwrap();
    let job = || {
        let mut cmd = flagfleet(&lab, &topo);
        cmd.env("LAB_SPOKE2_TOKEN", &lab.spoke2.token);
        cmd
    };

    for (i, (name, _, _)) in shards.iter().enumerate() {
        let plan_file = dir.path().join(format!("plan-{name}.json"));
        job()
            .args(["plan", "--spoke", name, "--detailed-exitcode", "--out"])
            .arg(&plan_file)
            .assert()
            .code(2);
        let saved: flagfleet::plan::Plan =
            serde_json::from_str(&std::fs::read_to_string(&plan_file).unwrap()).unwrap();
        let planned: Vec<&str> = saved.spokes.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(planned, [*name]);
        let shown = job().arg("show").arg(&plan_file).output().unwrap();
        assert!(
            String::from_utf8_lossy(&shown.stdout).contains(&format!("Spoke {name} ")),
            "{shown:?}"
        );

        let others: Vec<u64> = shards.iter().map(|(_, s, _)| s.writes()).collect();
        let out = job()
            .arg("apply")
            .arg(&plan_file)
            .args(["--backup-dir"])
            .arg(dir.path().join("backups"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains(&format!("Apply to {name}: ")), "{stdout}");
        for (j, (other, server, _)) in shards.iter().enumerate() {
            if j != i {
                assert!(
                    !stdout.contains(other),
                    "shard {name} touched {other}: {stdout}"
                );
                assert_eq!(server.writes(), others[j], "shard {name} wrote to {other}");
            }
        }
        // The shards not applied yet still have changes.
        for (later, _, _) in &shards[i + 1..] {
            job()
                .args(["plan", "--spoke", later, "--detailed-exitcode"])
                .assert()
                .code(2);
        }
    }

    job().args(["plan", "--detailed-exitcode"]).assert().code(0);
    let flags = ["checkout-v2", "child-flag", "ops-cache", "parent-flag"];
    let want = synced_view(&read_live_state(&lab.hub), &flags);
    for (name, server, _) in &shards {
        assert_eq!(
            synced_view(&read_live_state(server), &flags),
            want,
            "{name}"
        );
    }
}

#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn a_changed_strategy_costs_one_write_and_the_order_stays() {
    let lab = Lab::take(&["hub", "spoke1"]);
    let hub = Admin::new(&lab.hub);
    seed::rich_hub(&hub);
    let dir = tempfile::tempdir().unwrap();
    let spoke = ("eu-west", &lab.spoke1, "LAB_SPOKE1_TOKEN");
    let topo = hub_and_spoke(dir.path(), &lab, "", spoke, "");
    let apply = || {
        let out = flagfleet(&lab, &topo)
            .args(["apply", "--auto-approve"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    apply();

    // One parameter of the last of checkout-v2's three production strategies changes on
    // the hub.
    let path =
        "/api/admin/projects/default/features/checkout-v2/environments/production/strategies";
    let strategies = hub.get(path);
    let rollout = strategies
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "flexibleRollout")
        .unwrap();
    let mut body = serde_json::json!({});
    for key in [
        "name",
        "title",
        "disabled",
        "parameters",
        "constraints",
        "variants",
        "segments",
        "sortOrder",
    ] {
        body[key] = rollout[key].clone();
    }
    body["parameters"]["rollout"] = "30".into();
    hub.put(&format!("{path}/{}", rollout["id"].as_str().unwrap()), body);

    let before = lab.spoke1.writes();
    let stdout = apply();
    assert!(stdout.contains("1 applied, 0 failed"), "{stdout}");
    assert_eq!(
        lab.spoke1.writes() - before,
        1,
        "one strategy changed: one PUT, no other strategy, no re-order, no variants"
    );
    // The spoke holds what the hub holds, strategy order included; a new plan is empty.
    let flags = ["checkout-v2"];
    assert_eq!(
        synced_view(&read_live_state(&lab.spoke1), &flags),
        synced_view(&read_live_state(&lab.hub), &flags)
    );
    flagfleet(&lab, &topo)
        .args(["plan", "--detailed-exitcode"])
        .assert()
        .code(0);
}

#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn a_failing_action_stops_only_what_depends_on_it() {
    // spoke3 allows one value per segment: both hub segments are refused by the server.
    let lab = Lab::take(&["hub", "spoke3"]);
    seed::rich_hub(&Admin::new(&lab.hub));
    let dir = tempfile::tempdir().unwrap();
    let topo = hub_and_spoke(
        dir.path(),
        &lab,
        "",
        ("ap-south", &lab.spoke3, "LAB_SPOKE3_TOKEN"),
        "",
    );
    let out = flagfleet(&lab, &topo)
        .env("LAB_SPOKE3_TOKEN", &lab.spoke3.token)
        .args(["apply", "--auto-approve", "--backup-dir"])
        .arg(dir.path().join("b"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("failed: segment:beta-users: ap-south: POST /api/admin/segments failed with HTTP 400: Request validation failed: your request body or params contain invalid data: Segments may not have more than 1 values"), "{stdout}");
    assert!(
        stdout.contains(
            // beta-users or premium, whichever failure came back first: both are refused.
            "not attempted: flag:checkout-v2: depends on segment:"
        ),
        "{stdout}"
    );
    // Independent actions went on.
    let s = read_live_state(&lab.spoke3);
    assert!(s.flags.contains_key("parent-flag") && s.flags.contains_key("child-flag"));
    assert!(!s.flags.contains_key("checkout-v2"));
}

#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn a_stale_saved_plan_is_refused_before_any_change() {
    let lab = Lab::take(&["hub", "spoke1"]);
    seed::rich_hub(&Admin::new(&lab.hub));
    let dir = tempfile::tempdir().unwrap();
    let topo = live_topology(dir.path(), &lab, r#"["production"]"#);
    let plan_file = dir.path().join("plan.json");
    flagfleet(&lab, &topo)
        .args(["plan", "--out"])
        .arg(&plan_file)
        .assert()
        .success();
    // Someone changes the spoke after the plan was reviewed.
    seed::feature(
        &Admin::new(&lab.spoke1),
        "late-arrival",
        "release",
        "",
        false,
    );
    let out = flagfleet(&lab, &topo)
        .arg("apply")
        .arg(&plan_file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Error: plan is stale for spoke eu-west: it changed since the plan was made; run plan again (nothing was changed)\n"
    );
    assert_eq!(
        read_live_state(&lab.spoke1).flags.len(),
        1,
        "nothing was applied"
    );

    // A fresh plan applies, and a plan file from another topology is refused.
    flagfleet(&lab, &topo)
        .args(["plan", "--out"])
        .arg(&plan_file)
        .assert()
        .success();
    flagfleet(&lab, &topo)
        .arg("-q")
        .arg("apply")
        .arg(&plan_file)
        .assert()
        .success();
    std::fs::write(
        &topo,
        std::fs::read_to_string(&topo).unwrap() + "\n# edited\n",
    )
    .unwrap();
    let out = flagfleet(&lab, &topo)
        .arg("apply")
        .arg(&plan_file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the plan was made from another topology")
    );
}

#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn apply_refuses_to_run_unattended_without_auto_approve() {
    let lab = Lab::take(&["hub", "spoke1"]);
    seed::rich_hub(&Admin::new(&lab.hub));
    let dir = tempfile::tempdir().unwrap();
    let topo = live_topology(dir.path(), &lab, r#"["production"]"#);
    let out = flagfleet(&lab, &topo).arg("apply").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to apply without confirmation"));
    assert_eq!(read_live_state(&lab.spoke1).flags.len(), 0);
}

#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn an_interrupted_apply_converges_on_rerun_without_duplicates() {
    let lab = Lab::take(&["hub", "spoke1"]);
    let hub = Admin::new(&lab.hub);
    seed::rich_hub(&hub);
    seed::bulk_flags(&hub, 300);
    let dir = tempfile::tempdir().unwrap();
    let topo = live_topology(dir.path(), &lab, r#"["production"]"#);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("flagfleet"))
        .arg("-c")
        .arg(&topo)
        .args(["apply", "--auto-approve", "--backup-dir"])
        .arg(dir.path().join("b"))
        .env("LAB_HUB_TOKEN", &lab.hub.token)
        .env("LAB_SPOKE1_TOKEN", &lab.spoke1.token)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Kill it once it has written a few dozen objects.
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let mut done = 0;
    while let Some(Ok(line)) = lines.next() {
        if line.contains(": ok (") {
            done += 1;
        }
        if done == 40 {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = read_live_state(&lab.spoke1).flags.len();
    assert!(
        partial > 0 && partial < 305,
        "interrupted half-way ({partial} flags)"
    );

    flagfleet(&lab, &topo)
        .args(["-q", "apply", "--auto-approve", "--backup-dir"])
        .arg(dir.path().join("b"))
        .assert()
        .success();
    flagfleet(&lab, &topo)
        .args(["plan", "--detailed-exitcode"])
        .assert()
        .code(0);
    let s = read_live_state(&lab.spoke1);
    for i in 0..300 {
        let f = &s.flags[&format!("bulk-{i:04}")];
        assert_eq!(
            f.environments.get("production").unwrap().strategies.len(),
            1,
            "bulk-{i:04}"
        );
    }
    let hub_state = read_live_state(&lab.hub);
    let flags: Vec<&str> = hub_state.flags.keys().map(String::as_str).collect();
    assert_eq!(synced_view(&s, &flags), synced_view(&hub_state, &flags));
}

#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn spokes_are_applied_concurrently() {
    let lab = Lab::take(&["hub", "spoke1", "spoke2", "spoke3"]);
    seed::bulk_flags(&Admin::new(&lab.hub), 60);
    let dir = tempfile::tempdir().unwrap();
    let topo = dir.path().join("flagfleet.toml");
    let mut text = format!(
        "[hub]\nurl = \"{}\"\ntoken_env = \"LAB_HUB_TOKEN\"\n",
        lab.hub.url
    );
    for (name, server) in [
        ("s1", &lab.spoke1),
        ("s2", &lab.spoke2),
        ("s3", &lab.spoke3),
    ] {
        text.push_str(&format!(
            "[[spokes]]\nname = \"{name}\"\nurl = \"{}\"\ntoken_env = \"TOKEN_{name}\"\n",
            server.url
        ));
    }
    std::fs::write(&topo, text).unwrap();
    let out = flagfleet(&lab, &topo)
        .env("TOKEN_s1", &lab.spoke1.token)
        .env("TOKEN_s2", &lab.spoke2.token)
        .env("TOKEN_s3", &lab.spoke3.token)
        .args([
            "apply",
            "--auto-approve",
            "--parallelism",
            "2",
            "--backup-dir",
        ])
        .arg(dir.path().join("b"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // One progress line per action, in completion order: concurrent spokes interleave.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let spoke_of: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(": ok ("))
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(spoke_of.len(), 180);
    for a in ["s1", "s2", "s3"] {
        for b in ["s1", "s2", "s3"] {
            let first_a = spoke_of.iter().position(|s| *s == a).unwrap();
            let last_b = spoke_of.iter().rposition(|s| *s == b).unwrap();
            assert!(first_a < last_b, "{a} started only after {b} had finished");
        }
    }
}

#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn a_pruning_spoke_archives_what_the_hub_no_longer_has() {
    let lab = Lab::take(&["hub", "spoke1"]);
    let (hub, spoke) = (Admin::new(&lab.hub), Admin::new(&lab.spoke1));
    seed::feature(&hub, "app-kept", "release", "", false);
    seed::feature(&spoke, "app-kept", "release", "", false);
    seed::feature(&spoke, "app-gone", "release", "removed from the hub", false);
    seed::feature(&spoke, "local-thing", "release", "not ours to prune", false);
    let dir = tempfile::tempdir().unwrap();
    let select = "[select]\nnames = [\"app-*\"]\n";
    let spoke = ("eu-west", &lab.spoke1, "LAB_SPOKE1_TOKEN");
    let topo = hub_and_spoke(dir.path(), &lab, select, spoke, "prune = true\n");
    let out = flagfleet(&lab, &topo).args(["plan"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("  - flag app-gone  absent on the hub (prune)"),
        "{stdout}"
    );
    flagfleet(&lab, &topo)
        .args(["-q", "apply", "--auto-approve", "--backup-dir"])
        .arg(dir.path().join("b"))
        .assert()
        .success();
    let s = read_live_state(&lab.spoke1);
    assert!(s.elsewhere["app-gone"].archived, "archived, not deleted");
    assert!(s.flags.contains_key("local-thing") && s.flags.contains_key("app-kept"));
    flagfleet(&lab, &topo)
        .args(["plan", "--detailed-exitcode"])
        .assert()
        .code(0);
}

#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn no_command_leaks_a_token_against_the_lab() {
    let lab = Lab::take(&["hub", "spoke1"]);
    seed::rich_hub(&Admin::new(&lab.hub));
    let dir = tempfile::tempdir().unwrap();
    let topo = live_topology(dir.path(), &lab, r#"["production"]"#);
    let plan = dir.path().join("plan.json");
    let backups = dir.path().join("backups");
    let (plan, backups) = (plan.to_str().unwrap(), backups.to_str().unwrap());
    let commands: &[&[&str]] = &[
        &["validate"],
        &["export", "hub", "--out", "hub-export.json"],
        &["export", "eu-west"],
        &["plan", "--out", plan],
        &["plan", "--format", "json"],
        &["plan", "--format", "markdown"],
        &["graph"],
        &["apply", plan, "--backup-dir", backups],
        &["apply", "--auto-approve", "--backup-dir", backups],
    ];
    for args in commands {
        let out = flagfleet(&lab, &topo)
            .current_dir(dir.path())
            .env("FLAGFLEET_LOG", "trace")
            .arg("-vv")
            .args(*args)
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{args:?}: {all}");
        for token in [&lab.hub.token, &lab.spoke1.token] {
            assert!(!all.contains(token.as_str()), "{args:?} printed a token");
        }
    }
    let mut files = vec![dir.path().to_path_buf()];
    let mut seen = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        seen += 1;
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        for token in [&lab.hub.token, &lab.spoke1.token] {
            assert!(
                !text.contains(token.as_str()),
                "a token in {}",
                path.display()
            );
        }
    }
    // The topology, the plan, the export and a backup at least.
    assert!(seen >= 4, "{seen} files written");
}
