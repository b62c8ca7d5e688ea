//! Apply that a release pipeline can trust: one run converges through injected faults,
//! concurrent creates of one tag do not race, two applies do not interleave, a signal
//! leaves a report, and a saved plan runs only as reviewed. Like every test of the
//! `e2e_lab` target, they run with the `lab` feature.

use std::path::{Path, PathBuf};
use std::time::Duration;

use flagfleet::client::ClientOptions;
use flagfleet::state::State;
use flagfleet::topology;

use super::{flagfleet, lab};
use lab::faults::{Faults, Proxy};
use lab::{seed, Admin, Lab};

/// A topology of a hub and two spokes at the given URLs, syncing production and
/// development, everything selected.
fn two_spokes(dir: &Path, hub: &str, eu: &str, us: &str) -> PathBuf {
    let path = dir.join("flagfleet.toml");
    let envs = "environments = { production = \"production\", development = \"development\" }";
    std::fs::write(
        &path,
        format!(
            "[hub]\nurl = \"{hub}\"\ntoken_env = \"LAB_HUB_TOKEN\"\nenvironments = [\"production\", \"development\"]\n\n\
             [[spokes]]\nname = \"eu-west\"\nurl = \"{eu}\"\ntoken_env = \"LAB_SPOKE1_TOKEN\"\n{envs}\n\n\
             [[spokes]]\nname = \"us-east\"\nurl = \"{us}\"\ntoken_env = \"LAB_SPOKE2_TOKEN\"\n{envs}\n"
        ),
    )
    .unwrap();
    path
}

/// Reads a lab server's state in production and development (directly, no proxy).
pub(crate) fn read_state(server: &lab::Server) -> State {
    server.read_state(&["production", "development"])
}

/// Asserts that `spoke` holds exactly what the hub holds (flags with every strategy, tag,
/// link and dependency, and the scaffolding), so no duplicates either. `stale` is not
/// synced.
#[track_caller]
fn assert_equal_to_hub(hub: &State, spoke: &State, name: &str) {
    let flags = |s: &State| {
        let mut f = s.flags.clone();
        for flag in f.values_mut() {
            std::sync::Arc::make_mut(flag).stale = false;
        }
        serde_json::to_value(f).unwrap()
    };
    assert_eq!(
        flags(spoke),
        flags(hub),
        "{name}: flags differ from the hub's"
    );
    assert_eq!(spoke.segments, hub.segments, "{name}: segments");
    assert_eq!(spoke.strategies, hub.strategies, "{name}: strategies");
    assert_eq!(spoke.tag_types, hub.tag_types, "{name}: tag types");
    for (field, c) in &hub.context_fields {
        assert_eq!(spoke.context_fields.get(field), Some(c), "{name}: {field}");
    }
}

/// The seeded hub of the fault tests: rich_hub and 32 tagged flags.
fn seed_fleet_hub(lab: &Lab) {
    let hub = Admin::new(&lab.hub);
    seed::rich_hub(&hub);
    seed::tagged_fleet(&hub, 32);
}

/// A cold apply of the seeded hub to two empty spokes, with every server behind a proxy
/// that fails 8 % of requests with 503 and drops 5 % after forwarding them.
fn converges_through_faults(seed: u64) {
    let lab = Lab::take(&["hub", "spoke1", "spoke2"]);
    seed_fleet_hub(&lab);
    let faults = |n: u64| Faults {
        unavailable: 0.08,
        drop_after: 0.05,
        seed: seed * 10 + n,
        ..Faults::default()
    };
    let proxies = [
        Proxy::start(&lab.hub.url, faults(0)),
        Proxy::start(&lab.spoke1.url, faults(1)),
        Proxy::start(&lab.spoke2.url, faults(2)),
    ];
    let dir = tempfile::tempdir().unwrap();
    let through = two_spokes(
        dir.path(),
        &proxies[0].url,
        &proxies[1].url,
        &proxies[2].url,
    );
    let started = std::time::Instant::now();
    let out = flagfleet(&lab, &through)
        .env("LAB_SPOKE2_TOKEN", &lab.spoke2.token)
        .args(["-vv", "apply", "--auto-approve", "--backup-dir"])
        .arg(dir.path().join("b"))
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let counts: Vec<_> = proxies.iter().map(|p| p.counts.get()).collect();
    eprintln!(
        "seed {seed}: one run, {:.1} s; (requests, 503, drop, reset, delay) hub {:?}, eu-west {:?}, us-east {:?}",
        started.elapsed().as_secs_f64(),
        counts[0],
        counts[1],
        counts[2]
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    for (p, name) in proxies[1..].iter().zip(["eu-west", "us-east"]) {
        let (_, unavailable, dropped, _, _) = p.counts.get();
        assert!(unavailable > 0 && dropped > 0, "{name}: no faults injected");
    }
    assert!(
        stderr
            .lines()
            .any(|l| l.contains(" request ") && l.contains(" retry=1 ")),
        "the per-request log line says which retry it is:\n{stderr}"
    );
    assert!(!stdout.contains("failed:"), "{stdout}");

    let hub = read_state(&lab.hub);
    assert_equal_to_hub(&hub, &read_state(&lab.spoke1), "eu-west");
    assert_equal_to_hub(&hub, &read_state(&lab.spoke2), "us-east");
    let direct = two_spokes(dir.path(), &lab.hub.url, &lab.spoke1.url, &lab.spoke2.url);
    flagfleet(&lab, &direct)
        .env("LAB_SPOKE2_TOKEN", &lab.spoke2.token)
        .args(["plan", "--detailed-exitcode"])
        .assert()
        .code(0);
}

#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn a_cold_apply_through_faults_converges_in_one_run_seed_1() {
    converges_through_faults(1);
}

#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn a_cold_apply_through_faults_converges_in_one_run_seed_2() {
    converges_through_faults(2);
}

#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn flags_sharing_new_tags_are_created_in_one_run_at_parallelism_8() {
    let lab = Lab::take(&["hub", "spoke1"]);
    seed_fleet_hub(&lab);
    let dir = tempfile::tempdir().unwrap();
    let topo = super::live_topology(dir.path(), &lab, r#"["production"]"#);
    let out = flagfleet(&lab, &topo)
        .args([
            "apply",
            "--auto-approve",
            "--parallelism",
            "8",
            "--backup-dir",
        ])
        .arg(dir.path().join("b"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    flagfleet(&lab, &topo)
        .args(["plan", "--detailed-exitcode"])
        .assert()
        .code(0);
    let tags = Admin::new(&lab.spoke1).get("/api/admin/tags");
    let squads = tags["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["type"] == "team" && t["value"].as_str().unwrap().starts_with("squad-"))
        .count();
    assert_eq!(squads, 4);
}

/// Starts `flagfleet apply` on the lab hub and spoke1 in `dir` and returns it once it has
/// applied `after` actions, with a thread draining the rest of its stderr.
fn apply_in_background(
    lab: &Lab,
    topo: &Path,
    dir: &Path,
    after: usize,
) -> (std::process::Child, std::thread::JoinHandle<String>) {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("flagfleet"))
        .current_dir(dir)
        .arg("-c")
        .arg(topo)
        .args(["apply", "--auto-approve", "--backup-dir"])
        .arg(dir.join("b"))
        .env("LAB_HUB_TOKEN", &lab.hub.token)
        .env("LAB_SPOKE1_TOKEN", &lab.spoke1.token)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let mut done = 0;
    for line in lines.by_ref() {
        if line.unwrap().contains(": ok (") {
            done += 1;
            if done == after {
                break;
            }
        }
    }
    assert_eq!(done, after, "the apply ended before {after} actions");
    let rest =
        std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().join("\n"));
    (child, rest)
}

#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn a_second_apply_to_a_locked_spoke_fails_naming_the_holder_and_nothing_is_lost() {
    let lab = Lab::take(&["hub", "spoke1"]);
    let hub = Admin::new(&lab.hub);
    seed::rich_hub(&hub);
    seed::bulk_flags(&hub, 200);
    let dir = tempfile::tempdir().unwrap();
    let topo = super::live_topology(dir.path(), &lab, r#"["production"]"#);
    let (first, rest) = apply_in_background(&lab, &topo, dir.path(), 10);

    let out = flagfleet(&lab, &topo)
        .current_dir(dir.path())
        .args(["apply", "--auto-approve"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "Error: spoke eu-west is locked by another apply (pid {} on host ",
            first.id()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("lock file .flagfleet/locks/127-0-0-1-"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Hint: wait for that apply to finish"),
        "{stderr}"
    );

    let out = first.wait_with_output().unwrap();
    let rest = rest.join().unwrap();
    assert!(out.status.success(), "{rest}");
    let locks = dir.path().join(".flagfleet/locks");
    assert_eq!(
        std::fs::read_dir(&locks).unwrap().count(),
        0,
        "lock released"
    );
    flagfleet(&lab, &topo)
        .args(["plan", "--detailed-exitcode"])
        .assert()
        .code(0);
}

#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn a_spoke_changed_between_plan_and_first_write_is_refused_and_nothing_written() {
    let lab = Lab::take(&["hub", "spoke1"]);
    seed::rich_hub(&Admin::new(&lab.hub));
    let dir = tempfile::tempdir().unwrap();
    let topo = super::live_topology(dir.path(), &lab, r#"["production"]"#);
    std::env::set_var("LAB_HUB_TOKEN", &lab.hub.token);
    std::env::set_var("LAB_SPOKE1_TOKEN", &lab.spoke1.token);
    let t = topology::load(&topo).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let t = std::sync::Arc::new(t);
    let reading = flagfleet::pipeline::Options {
        client: ClientOptions::default(),
        parallelism: 4,
    };
    let (fleet, plan) = rt
        .block_on(flagfleet::pipeline::plan_fleet(
            t.clone(),
            String::new(),
            &[],
            &reading,
            |_| true,
        ))
        .unwrap();
    assert!(plan.has_changes());
    // Another pipeline, on another runner (no shared lock), writes to the spoke now.
    seed::feature(
        &Admin::new(&lab.spoke1),
        "late-arrival",
        "release",
        "",
        false,
    );
    let options = flagfleet::apply::Options {
        parallelism: 4,
        backup_dir: dir.path().join("b"),
        interrupt: Default::default(),
        grace: Duration::from_secs(5),
        wave_pause: Duration::ZERO,
        gate: None,
        spokes_at_once: 4,
    };
    let spokes: Vec<flagfleet::apply::Planned> = plan
        .spokes
        .iter()
        .map(|plan| flagfleet::apply::Planned {
            plan,
            client: fleet
                .spokes
                .iter()
                .find(|s| s.name == plan.name)
                .and_then(|s| s.client.as_ref()),
        })
        .collect();
    /// The spokes whose progress ended, with whether their report had an error.
    #[derive(Default)]
    struct Ended(std::sync::Mutex<Vec<(String, bool)>>);
    impl flagfleet::apply::Progress for Ended {
        fn spoke_done(&self, report: &flagfleet::apply::SpokeReport) {
            let ended = (report.name.clone(), report.error.is_some());
            self.0.lock().unwrap().push(ended);
        }
    }
    let ended = Ended::default();
    let reports = rt.block_on(flagfleet::apply::apply(
        &t,
        Some(&fleet.hub.state),
        &spokes,
        &options,
        &ended,
    ));
    assert!(matches!(
        reports[0].error,
        Some(flagfleet::apply::ApplyError::ChangedSincePlan)
    ));
    // Its progress ends too (a terminal's bar says FAILED instead of staying open).
    assert_eq!(*ended.0.lock().unwrap(), [(reports[0].name.clone(), true)]);
    assert_eq!(
        reports[0].error.as_ref().map(ToString::to_string).as_deref(),
        Some("it changed since the plan was made (its state fingerprint differs now, right before the first write); nothing was changed: run plan again")
    );
    assert!(reports[0].outcomes.is_empty() && reports[0].backup.is_none());
    let flags: Vec<String> = read_state(&lab.spoke1).flags.into_keys().collect();
    assert_eq!(flags, ["late-arrival"], "nothing was written");
}

#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn sigterm_mid_apply_reports_exits_130_and_a_rerun_converges() {
    let lab = Lab::take(&["hub", "spoke1"]);
    let hub = Admin::new(&lab.hub);
    seed::rich_hub(&hub);
    seed::bulk_flags(&hub, 200);
    let dir = tempfile::tempdir().unwrap();
    let topo = super::live_topology(dir.path(), &lab, r#"["production"]"#);
    let (child, rest) = apply_in_background(&lab, &topo, dir.path(), 20);
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), rest.join().unwrap());
    assert_eq!(out.status.code(), Some(130), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("Interrupted: starting no new action"),
        "{stderr}"
    );
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("Apply to eu-west: "))
        .unwrap_or_else(|| panic!("no report:\n{stdout}"));
    let applied: usize = summary["Apply to eu-west: ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((20..200).contains(&applied), "{summary}");
    assert!(
        stdout.contains(": interrupted before it started"),
        "{stdout}"
    );
    assert!(stdout.contains("backup: "), "{stdout}");
    assert_eq!(
        std::fs::read_dir(dir.path().join(".flagfleet/locks"))
            .unwrap()
            .count(),
        0,
        "lock released"
    );

    flagfleet(&lab, &topo)
        .current_dir(dir.path())
        .args(["-q", "apply", "--auto-approve", "--backup-dir"])
        .arg(dir.path().join("b"))
        .assert()
        .success();
    flagfleet(&lab, &topo)
        .args(["plan", "--detailed-exitcode"])
        .assert()
        .code(0);
}

#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn a_saved_plan_whose_actions_were_edited_is_refused() {
    let lab = Lab::take(&["hub", "spoke1"]);
    seed::rich_hub(&Admin::new(&lab.hub));
    let dir = tempfile::tempdir().unwrap();
    let topo = super::live_topology(dir.path(), &lab, r#"["production"]"#);
    let plan_file = dir.path().join("plan.json");
    flagfleet(&lab, &topo)
        .args(["plan", "--out"])
        .arg(&plan_file)
        .assert()
        .success();
    // The reviewed plan created parent-flag; someone turns that into a skip.
    let mut plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_file).unwrap()).unwrap();
    let actions = plan["spokes"][0]["actions"].as_array_mut().unwrap();
    let at = actions
        .iter()
        .position(|a| a["name"] == "parent-flag")
        .unwrap();
    actions[at]["action"] = "skip".into();
    std::fs::write(&plan_file, serde_json::to_string_pretty(&plan).unwrap()).unwrap();

    let out = flagfleet(&lab, &topo)
        .current_dir(dir.path())
        .arg("apply")
        .arg(&plan_file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("Error: the saved plan's actions for spoke eu-west differ from the ones planned now from the same states, first at action {}: saved `skip flag parent-flag`, now `create flag parent-flag`; the plan file was edited or made by another flagfleet: run plan again (nothing was changed)\n", at + 1)
    );
    assert!(
        read_state(&lab.spoke1).flags.is_empty(),
        "nothing was applied"
    );
}

#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn skip_unreachable_applies_the_readable_spokes_and_reports_the_others() {
    let lab = Lab::take(&["hub", "spoke1"]);
    seed::rich_hub(&Admin::new(&lab.hub));
    let dir = tempfile::tempdir().unwrap();
    // us-east refuses the token it is given.
    let topo = two_spokes(dir.path(), &lab.hub.url, &lab.spoke1.url, &lab.spoke2.url);
    let run = |extra: &[&str]| {
        flagfleet(&lab, &topo)
            .current_dir(dir.path())
            .env("LAB_SPOKE2_TOKEN", "*:*.not-the-token")
            .args(["apply", "--auto-approve"])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Error: spoke us-east could not be read, so nothing was applied"),
        "{stderr}"
    );
    assert!(
        read_state(&lab.spoke1).flags.is_empty(),
        "refused as a whole"
    );

    let out = run(&["--skip-unreachable"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("Apply to us-east: error: could not be read, skipped (--skip-unreachable): us-east: the API token was refused (HTTP 401"),
        "{stdout}"
    );
    assert!(stdout.contains("Apply to eu-west: "), "{stdout}");
    assert!(!read_state(&lab.spoke1).flags.is_empty(), "eu-west applied");
}
