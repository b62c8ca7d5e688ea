//! Mixed-version fleets against the real lab: Unleash 8.2.0 (`hub`, `spoke1`, ...), 7.6.5
//! (`v7`) and 6.10.1 (`v6`). Run with the `lab` feature like tests/e2e_lab.rs.

mod lab;

use std::path::Path;

use assert_cmd::Command;
use flagfleet::state::State;
use lab::{seed, Admin, Lab};

fn flagfleet(topology: &Path) -> Command {
    let mut cmd = Command::cargo_bin("flagfleet").unwrap();
    cmd.arg("-c")
        .arg(topology)
        .env("NO_COLOR", "1")
        .env_remove("FLAGFLEET_LOG");
    cmd
}

/// The same configuration seeded on 8.2.0, 7.6.5 and 6.10.1 reads as the same state
/// (seeded without a flag link, which 6.10.1 cannot hold; 6.10.1 has the built-in
/// strategy `userWithId` besides), with the same number of requests but one on 6.10.1,
/// whose enabled states come from the project's flag list (its export reports every flag
/// enabled); `validate` shows each server's version.
#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn every_version_reads_alike_in_as_many_requests_and_validate_shows_it() {
    let lab = Lab::take(&["hub", "v7", "v6"]);
    seed::rich_hub_with(&Admin::new(&lab.hub), false);
    seed::rich_hub_with(&Admin::new(&lab.v7), false);
    seed::rich_hub_with(&Admin::new(&lab.v6), false);
    let envs = ["development", "production"];
    let read = |s: &lab::Server| {
        let before = s.requests(|_, _| true);
        let state = s.read_state(&envs);
        (state, s.requests(|_, _| true) - before)
    };
    let (hub, hub_requests) = read(&lab.hub);
    assert!(hub.flags.contains_key("child-flag") && hub.elsewhere.contains_key("old-flag"));
    for (server, extra) in [(&lab.v7, 0), (&lab.v6, 1)] {
        let (mut state, requests) = read(server);
        if server.name == "v6" {
            assert!(state.strategies.remove("userWithId").unwrap().builtin);
        }
        assert_eq!(
            serde_json::to_value(&state).unwrap(),
            serde_json::to_value(&hub).unwrap(),
            "{} reads otherwise than 8.2.0",
            server.name
        );
        assert_eq!(requests, hub_requests + extra, "{} requests", server.name);
    }

    let dir = tempfile::tempdir().unwrap();
    let topo = dir.path().join("flagfleet.toml");
    std::fs::write(
        &topo,
        format!(
            "[hub]\nurl = \"{}\"\ntoken_env = \"HUB_TOKEN\"\n\
             [[spokes]]\nname = \"seven\"\nurl = \"{}\"\ntoken_env = \"V7_TOKEN\"\n\
             [[spokes]]\nname = \"six\"\nurl = \"{}\"\ntoken_env = \"V6_TOKEN\"\n",
            lab.hub.url, lab.v7.url, lab.v6.url
        ),
    )
    .unwrap();
    let out = flagfleet(&topo)
        .env("HUB_TOKEN", &lab.hub.token)
        .env("V7_TOKEN", &lab.v7.token)
        .env("V6_TOKEN", &lab.v6.token)
        .arg("validate")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (name, version) in [("hub", "8.2.0"), ("seven", "7.6.5"), ("six", "6.10.1")] {
        let line = stdout
            .lines()
            .find(|l| l.contains(&format!(" {name} ")))
            .unwrap_or_else(|| panic!("no row for {name}:\n{stdout}"));
        assert!(line.contains(version) && line.contains("ok"), "{stdout}");
    }
}

/// The rich hub plus [`seed::version_extras`] as far as `hub`'s version holds them.
fn seed_hub(hub: &lab::Server) {
    let admin = Admin::new(hub);
    match hub.name {
        "v6" => {
            seed::rich_hub_with(&admin, false);
            seed::version_extras(&admin, false, false);
        }
        "v7" => {
            seed::rich_hub(&admin);
            seed::version_extras(&admin, true, false);
        }
        _ => {
            seed::rich_hub(&admin);
            seed::version_extras(&admin, true, true);
        }
    }
}

/// The segments `flags` use in `state`.
fn segments_used(state: &State, flags: &[String]) -> Vec<String> {
    let used: std::collections::BTreeSet<&String> = flags
        .iter()
        .filter_map(|f| state.flags.get(f))
        .flat_map(|f| f.environments.values())
        .flat_map(|e| &e.strategies)
        .flat_map(|s| &s.segments)
        .collect();
    used.into_iter().cloned().collect()
}

/// Plans the seeded `hub` against the empty `spoke` (of another Unleash version), checks
/// that exactly `want_blocked` (`kind name: reason`) is blocked, applies, and checks that
/// the spoke then holds what the hub holds minus what was blocked, and that a second plan
/// is empty.
fn converges(hub: &str, spoke: &str, want_blocked: &[&str]) {
    let lab = Lab::take(&[hub, spoke]);
    let (hub, spoke) = (lab.server(hub), lab.server(spoke));
    seed_hub(hub);
    let dir = tempfile::tempdir().unwrap();
    let topo = dir.path().join("flagfleet.toml");
    std::fs::write(
        &topo,
        format!(
            "[hub]\nurl = \"{}\"\ntoken_env = \"HUB_TOKEN\"\n\
             [[spokes]]\nname = \"dc\"\nurl = \"{}\"\ntoken_env = \"SPOKE_TOKEN\"\n",
            hub.url, spoke.url
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        flagfleet(&topo)
            .env("HUB_TOKEN", &hub.token)
            .env("SPOKE_TOKEN", &spoke.token)
            .args(args)
            .output()
            .unwrap()
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).to_string();

    let out = run(&["plan", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan: flagfleet::plan::Plan = serde_json::from_slice(&out.stdout).unwrap();
    let dc = &plan.spokes[0];
    let version = spoke_version(spoke);
    assert_eq!(dc.unleash_version.as_deref(), Some(version));
    let blocked: Vec<String> = dc
        .actions
        .iter()
        .filter(|a| a.blocked)
        .map(|a| format!("{} {}: {}", a.kind, a.name, a.reason))
        .collect();
    assert_eq!(blocked, want_blocked, "{}", text(&out.stdout));
    let human = run(&["plan"]);
    assert!(
        text(&human.stdout).contains(&format!("Unleash {version}, project default")),
        "{}",
        text(&human.stdout)
    );

    let out = run(&["apply", "--auto-approve"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let again = run(&["plan", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stdout));

    let synced: Vec<String> = dc
        .actions
        .iter()
        .filter(|a| a.kind == flagfleet::plan::Kind::Flag && !a.blocked)
        .map(|a| a.name.clone())
        .collect();
    let hub_state = hub.read_state(&["production"]);
    let spoke_state = spoke.read_state(&["production"]);
    let segments = segments_used(&hub_state, &synced);
    assert!(segments.contains(&"beta-users".to_string()), "{segments:?}");
    assert_eq!(
        lab::synced_view(&spoke_state, &synced, &segments),
        lab::synced_view(&hub_state, &synced, &segments)
    );
    for a in dc.actions.iter().filter(|a| a.blocked) {
        let absent = match a.kind {
            flagfleet::plan::Kind::Flag => !spoke_state.flags.contains_key(&a.name),
            flagfleet::plan::Kind::Segment => !spoke_state.segments.contains_key(&a.name),
            flagfleet::plan::Kind::Strategy => !spoke_state.strategies.contains_key(&a.name),
            _ => true,
        };
        assert!(absent, "blocked {} {} was written", a.kind, a.name);
    }
}

fn spoke_version(server: &lab::Server) -> &'static str {
    match server.name {
        "v7" => "7.6.5",
        "v6" => "6.10.1",
        _ => "8.2.0",
    }
}

#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn a_hub_on_8_2_converges_a_spoke_on_7_6_5_but_for_the_sunset_flag() {
    converges(
        "hub",
        "v7",
        &["flag retiring-flag: the spoke's Unleash 7.6.5 cannot hold: flag type sunset"],
    );
}

#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn a_hub_on_8_2_converges_a_spoke_on_6_10_1_but_for_links_regex_and_sunset() {
    let regex = "the spoke's Unleash 6.10.1 cannot hold: constraint operator REGEX";
    converges(
        "hub",
        "v6",
        &[
            &format!("segment regex-users: {regex}"),
            "flag checkout-v2: the spoke's Unleash 6.10.1 cannot hold: flag links",
            &format!("flag regex-flag: {regex}"),
            &format!(
                "flag regex-segment-flag: needs segment regex-users ({regex}; missing on spoke)"
            ),
            "flag retiring-flag: the spoke's Unleash 6.10.1 cannot hold: flag type sunset",
        ],
    );
}

#[test]
#[cfg_attr(not(feature = "lab"), ignore = "needs the lab: scripts/test.sh")]
fn a_hub_on_7_6_5_converges_a_spoke_on_8_2() {
    converges("v7", "spoke1", &[]);
}
