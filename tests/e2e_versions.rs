//! Mixed-version fleets against the real lab: Unleash 8.2.0 (`hub`, `spoke1`, ...), 7.6.5
//! (`v7`) and 6.10.1 (`v6`). Run with the `lab` feature like tests/e2e_lab.rs.

mod lab;

use std::path::Path;

use assert_cmd::Command;
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
