//! End-to-end tests of reads under Unleash's default rate limits, against the lab's
//! `strict` server (which keeps them: 15 flag searches a minute per client address).
//!
//! They run with the `lab` feature, as those of tests/e2e_lab.rs do.
//!
//! Each test resets `strict` (a restart starts a fresh rate-limit window) and uses it as the
//! hub; the spokes are the lab's ordinary servers.

mod lab;

use std::time::{Duration, Instant};

use lab::{seed, Admin, Lab, Server};

const SEARCH: &str = "/api/admin/search/features";

/// A topology of `strict` as the hub and `spokes` as (name, server) pairs.
/// Spends the server's whole search allowance for this minute, and proves that it has a
/// limit: the next search is refused with 429.
fn exhaust_searches(server: &Server) {
    let http = reqwest::blocking::Client::new();
    let search = || {
        http.get(format!("{}{SEARCH}?limit=1", server.url))
            .header("Authorization", &server.token)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let statuses: Vec<u16> = (0..16).map(|_| search()).collect();
    assert_eq!(statuses[..15], [200; 15], "a fresh window allows 15");
    assert_eq!(statuses[15], 429, "the 16th search in a minute is refused");
}

/// Creates the flag `name` and archives it.
fn archived_flag(a: &Admin, name: &str) {
    seed::feature(a, name, "release", "", false);
    a.send(
        "DELETE",
        &format!("/api/admin/projects/default/features/{name}"),
        None,
    );
}

fn searches(server: &Server) -> u64 {
    server.requests(|_, path| path == SEARCH)
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs the Unleash lab: run scripts/test.sh"
)]
fn twenty_plans_in_a_minute_never_wait_on_a_rate_limit() {
    let lab = Lab::take(&["strict", "spoke1", "spoke2"]);
    seed::rich_hub(&Admin::new(&lab.strict));
    // A hub flag archived on one spoke: the plan must still know that name is taken.
    archived_flag(&Admin::new(&lab.spoke1), "ops-cache");
    let dir = tempfile::tempdir().unwrap();
    let topo = lab::topology(
        dir.path(),
        &lab.strict,
        &[("eu-west", &lab.spoke1, ""), ("us-east", &lab.spoke2, "")],
    );
    let spoke_searches = searches(&lab.spoke1) + searches(&lab.spoke2);
    // Any search the plans made on the hub would now be refused, and `--max-wait 0` makes
    // the first refusal fail the run.
    exhaust_searches(&lab.strict);

    let started = Instant::now();
    let mut times = Vec::new();
    for i in 0..20 {
        let run = Instant::now();
        let out = lab
            .flagfleet(&topo)
            .args(["-q", "--max-wait", "0", "plan", "--out"])
            .arg(dir.path().join(format!("plan-{i}.json")))
            .output()
            .unwrap();
        times.push(run.elapsed());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "plan {i}: {stderr}");
        assert!(!stderr.contains("rate-limited"), "plan {i}: {stderr}");
        if i == 0 {
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                stdout
                    .lines()
                    .any(|l| l.contains("! flag ops-cache ") && l.ends_with(" archived on spoke")),
                "{stdout}"
            );
        }
    }
    let total = started.elapsed();
    let secs: Vec<String> = times
        .iter()
        .map(|t| format!("{:.2}", t.as_secs_f64()))
        .collect();
    eprintln!(
        "20 plans (hub under default rate limits, 2 spokes): {:.1} s in all; each: {} s",
        total.as_secs_f64(),
        secs.join(" ")
    );
    assert!(total < Duration::from_secs(60), "{total:?}");
    assert_eq!(
        searches(&lab.spoke1) + searches(&lab.spoke2),
        spoke_searches,
        "no search on the spokes either"
    );
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs the Unleash lab: run scripts/test.sh"
)]
fn a_rate_limited_export_waits_visibly_and_only_as_long_as_max_wait_allows() {
    let lab = Lab::take(&["strict"]);
    archived_flag(&Admin::new(&lab.strict), "retired");
    let dir = tempfile::tempdir().unwrap();
    // (A topology needs a spoke; export reads only the hub.)
    let topo = lab::topology(dir.path(), &lab.strict, &[("eu-west", &lab.spoke1, "")]);
    // A snapshot lists archived flags, which only the (rate-limited) search lists.
    exhaust_searches(&lab.strict);
    let out = dir.path().join("hub.json");

    let started = Instant::now();
    let refused = lab
        .flagfleet(&topo)
        .args(["-q", "--max-wait", "5", "export", "hub", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "fails at once");
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(
            "Error: hub: GET /api/admin/search/features?limit=100&offset=0&archived=IS:true is rate-limited (HTTP 429): waiting another "
        ) && first.ends_with(
            " would pass --max-wait 5 s (0 s already spent waiting on rate limits in this run)"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("Hint: the server limits how often"),
        "{stderr}"
    );
    assert!(!out.exists());

    // Allowed to wait, it says so once on stderr (even with -q), waits, and succeeds.
    let started = Instant::now();
    let waited = lab
        .flagfleet(&topo)
        .args(["-q", "--max-wait", "120", "export", "hub", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&waited.stderr);
    assert!(waited.status.success(), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with(
            "hub: GET /api/admin/search/features?limit=100&offset=0&archived=IS:true is rate-limited (HTTP 429); waiting "
        ) && lines[0].contains(" as the server asks ("),
        "{stderr}"
    );
    assert!(lines[1].starts_with("Wrote "), "{stderr}");
    eprintln!(
        "export waited out the search limit: {elapsed:?} ({})",
        lines[0]
    );
    assert!(elapsed >= Duration::from_secs(1));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("\"retired\""), "the archived flag is listed");
}

/// The names of the active flags of a server's default project.
fn flag_names(server: &Server) -> Vec<String> {
    let features = Admin::new(server).get("/api/admin/projects/default/features");
    let mut names: Vec<String> = features["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

fn all_requests(server: &Server) -> u64 {
    server.requests(|_, _| true)
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs the Unleash lab: run scripts/test.sh"
)]
fn a_sharded_pipeline_reads_the_hub_twice_and_refuses_a_plan_made_before_a_hub_change() {
    let lab = Lab::take(&["strict", "spoke1", "spoke2", "spoke3"]);
    let hub = Admin::new(&lab.strict);
    seed::feature(&hub, "checkout", "release", "new checkout", false);
    seed::strategy(
        &hub,
        "checkout",
        "production",
        serde_json::json!({"name": "flexibleRollout",
            "parameters": {"rollout": "50", "stickiness": "default", "groupId": "checkout"}}),
    );
    seed::enable(&hub, "checkout", "production");
    seed::feature(&hub, "search-v2", "experiment", "", false);
    seed::tag(&hub, "search-v2", "simple", "web");
    seed::feature(&hub, "retired", "release", "", false);
    hub.send(
        "DELETE",
        "/api/admin/projects/default/features/retired",
        None,
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let shards = [
        ("eu", &lab.spoke1, ""),
        ("us", &lab.spoke2, ""),
        ("ap", &lab.spoke3, ""),
    ];
    let topo = lab::topology(d, &lab.strict, &shards);
    let file = |name: &str| d.join(name).to_string_lossy().into_owned();
    let run = |args: &[&str]| lab.flagfleet(&topo).args(args).output().unwrap();
    let ok = |args: &[&str]| {
        let out = run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };

    // One job reads the hub; the shard jobs plan against its snapshot, reading only their
    // spoke; after review, one job reads the hub again, and the shard jobs apply against
    // that second snapshot, which proves the hub has not changed since the plans.
    ok(&["export", "hub", "--out", &file("hub-1.json")]);
    let hub_requests = all_requests(&lab.strict);
    for (name, _, _) in shards {
        let plan = file(&format!("plan-{name}.json"));
        let snapshot = file("hub-1.json");
        ok(&[
            "plan",
            "--hub-snapshot",
            &snapshot,
            "--spoke",
            name,
            "--out",
            &plan,
        ]);
    }
    assert_eq!(
        all_requests(&lab.strict),
        hub_requests,
        "shards plan without the hub"
    );
    ok(&["export", "hub", "--out", &file("hub-2.json")]);
    let hub_requests = all_requests(&lab.strict);
    for (name, _, _) in shards {
        let plan = file(&format!("plan-{name}.json"));
        ok(&["-q", "apply", "--hub-snapshot", &file("hub-2.json"), &plan]);
    }
    assert_eq!(
        all_requests(&lab.strict),
        hub_requests,
        "shards apply without the hub"
    );
    for (name, server, _) in shards {
        assert_eq!(flag_names(server), ["checkout", "search-v2"], "{name}");
        let replan = run(&[
            "plan",
            "--hub-snapshot",
            &file("hub-2.json"),
            "--spoke",
            name,
            "--detailed-exitcode",
        ]);
        assert_eq!(replan.status.code(), Some(0), "{name} converged");
    }
    // The live hub agrees: a plan reading it finds nothing to do either.
    assert_eq!(run(&["plan", "--detailed-exitcode"]).status.code(), Some(0));

    // Plans made from a snapshot taken before a hub change are refused by every shard.
    seed::feature(&hub, "late-flag", "release", "", false);
    ok(&["export", "hub", "--out", &file("hub-3.json")]);
    for (name, _, _) in shards {
        let plan = file(&format!("plan-{name}.json"));
        ok(&[
            "plan",
            "--hub-snapshot",
            &file("hub-3.json"),
            "--spoke",
            name,
            "--out",
            &plan,
        ]);
    }
    hub.send(
        "PATCH",
        "/api/admin/projects/default/features/checkout",
        Some(serde_json::json!([{"op": "replace", "path": "/description", "value": "changed"}])),
    );
    ok(&["export", "hub", "--out", &file("hub-4.json")]);
    for (name, server, _) in shards {
        let plan = file(&format!("plan-{name}.json"));
        let out = run(&["apply", "--hub-snapshot", &file("hub-4.json"), &plan]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "Error: plan is stale for the hub hub: it changed since the plan was made; run plan again (nothing was changed)\n"
        );
        assert_eq!(
            flag_names(server),
            ["checkout", "search-v2"],
            "{name} unchanged"
        );
    }
}
