//! The command line, end to end, on snapshot files (no server): the quickstart, error
//! messages, `--help`, and pipes.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use assert_cmd::Command;
use flagfleet::state::{model, snapshot};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn flagfleet() -> Command {
    let mut cmd = Command::cargo_bin("flagfleet").unwrap();
    cmd.current_dir(root())
        .env("NO_COLOR", "1")
        .env_remove("FLAGFLEET_LOG");
    cmd
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = flagfleet().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

const QUICKSTART: &str = "examples/quickstart/flagfleet.toml";

#[test]
fn quickstart_validates() {
    let (code, stdout, stderr) = run(&["-c", QUICKSTART, "validate"]);
    assert_eq!(code, 0, "{stderr}");
    insta::assert_snapshot!(stdout);
}

#[test]
fn quickstart_export_reproduces_the_snapshot_file() {
    let (code, stdout, stderr) = run(&["-c", QUICKSTART, "export", "eu-west"]);
    assert_eq!(code, 0, "{stderr}");
    let original =
        std::fs::read_to_string(root().join("examples/quickstart/eu-west.json")).unwrap();
    let parse = |text: &str| match snapshot::parse(text, "default").unwrap() {
        snapshot::FileContents::Snapshot(s) => s.state,
        other => panic!("{other:?}"),
    };
    assert_eq!(parse(&stdout), parse(&original));
    // Byte-identical apart from `source` (which says where it was read from).
    let body = |text: &str| text[text.find("\"state\"").unwrap()..].to_string();
    assert_eq!(body(&stdout), body(&original));
}

#[test]
fn help_shows_examples() {
    for args in [&["--help"][..], &["help", "validate"], &["help", "export"]] {
        let (code, stdout, _) = run(args);
        assert_eq!(code, 0);
        insta::assert_snapshot!(format!("help_{}", args.join("_")), stdout);
    }
}

/// Writes a topology (and optional files) into a temporary folder.
fn fleet(topology: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("flagfleet.toml"), topology).unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn run_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = flagfleet()
        .arg("-c")
        .arg(dir.join("flagfleet.toml"))
        .args(args)
        .output()
        .unwrap();
    let scrub = |b: Vec<u8>| {
        String::from_utf8(b)
            .unwrap()
            .replace(&dir.display().to_string(), "[DIR]")
    };
    (
        out.status.code().unwrap_or(-1),
        scrub(out.stdout),
        scrub(out.stderr),
    )
}

#[test]
fn a_missing_snapshot_file_is_named() {
    let dir = fleet(
        "[hub]\nfile = \"hub.json\"\n[[spokes]]\nname = \"eu\"\nfile = \"eu.json\"\n",
        &[],
    );
    let (code, _, stderr) = run_in(dir.path(), &["export", "eu"]);
    assert_eq!(code, 1);
    insta::assert_snapshot!(stderr, @r"
    Error: eu: snapshot file [DIR]/eu.json does not exist
    Hint: paths in the topology are relative to the topology file; `flagfleet export INSTANCE --out FILE` writes a snapshot
    ");
}

#[test]
fn an_unset_token_variable_is_named_before_any_request() {
    let dir = fleet(
        "[hub]\nfile = \"hub.json\"\n[[spokes]]\nname = \"eu\"\nurl = \"http://127.0.0.1:9\"\ntoken_env = \"FLAGFLEET_TEST_NOT_SET\"\n",
        &[],
    );
    let out = flagfleet()
        .arg("-c")
        .arg(dir.path().join("flagfleet.toml"))
        .args(["export", "eu"])
        .env_remove("FLAGFLEET_TEST_NOT_SET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with(
            "Error: eu: environment variable FLAGFLEET_TEST_NOT_SET is not set (token_env at "
        ),
        "{stderr}"
    );
    assert!(stderr.contains("flagfleet.toml:6)"), "{stderr}");
}

#[test]
fn an_invalid_topology_is_reported_with_its_location() {
    let dir = fleet("[hub]\nfile = \"hub.json\"\nprojct = \"x\"\n[[spokes]]\nname = \"eu\"\nfile = \"eu.json\"\n", &[]);
    let (code, stdout, stderr) = run_in(dir.path(), &["validate"]);
    assert_eq!(code, 1);
    assert_eq!(stdout, "");
    insta::assert_snapshot!(stderr, @r"
    Error: invalid topology (1 problem):
      [DIR]/flagfleet.toml:3:1: unknown key `projct`, expected one of `name`, `url`, `file`, `token_env`, `token_file`, `project`, `allow_insecure_http`, `ca_file`, `environments`
        hint: did you mean `project`?
    ");
}

#[test]
fn the_hub_may_be_a_raw_unleash_export() {
    let sample =
        std::fs::read_to_string(root().join("tests/fixtures/unleash-8.2.0-export-sample.json"))
            .unwrap();
    let dir = fleet(
        "[hub]\nfile = \"export.json\"\n[[spokes]]\nname = \"eu\"\nfile = \"export.json\"\nproject = \"p2\"\n",
        &[("export.json", &sample)],
    );
    let (code, stdout, stderr) = run_in(dir.path(), &["export", "hub"]);
    assert_eq!(code, 0, "{stderr}");
    let state = match snapshot::parse(&stdout, "default").unwrap() {
        snapshot::FileContents::Snapshot(s) => s.state,
        other => panic!("{other:?}"),
    };
    let checkout = &state.flags["checkout-v2"];
    let strategy = &checkout.environments.get("production").unwrap().strategies[0];
    assert_eq!(strategy.segments, ["beta-users"]);
    assert!(state.segments["beta-users"].incomplete);
    assert_eq!(checkout.dependencies[0].feature, "parent-flag");
    assert!(state.context_fields["region"].legal_values.len() == 2);

    // A spoke may not be a raw export: it could not be written back.
    let (code, _, stderr) = run_in(dir.path(), &["export", "eu"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("is a raw Unleash export; only the hub may be one"),
        "{stderr}"
    );
}

#[test]
fn snapshots_of_another_format_version_or_project_are_refused() {
    let hub = std::fs::read_to_string(root().join("examples/quickstart/hub.json")).unwrap();
    let future = hub.replace("\"format_version\": 1", "\"format_version\": 9");
    let dir = fleet(
        "[hub]\nfile = \"hub.json\"\nproject = \"other\"\n[[spokes]]\nname = \"eu\"\nfile = \"future.json\"\n",
        &[("hub.json", &hub), ("future.json", &future)],
    );
    let (_, _, stderr) = run_in(dir.path(), &["export", "eu"]);
    insta::assert_snapshot!(stderr, @"Error: eu: [DIR]/future.json: snapshot format_version 9 is not supported (this flagfleet reads version 1)");
    let (_, _, stderr) = run_in(dir.path(), &["export", "hub"]);
    insta::assert_snapshot!(stderr, @"Error: hub: [DIR]/hub.json holds project `default`, but the topology names project `other`");
}

#[test]
fn a_closed_pipe_is_a_normal_exit() {
    // A snapshot large enough that writing it outlasts the reader.
    let mut state = model::State {
        project: "default".into(),
        environments: vec!["production".into()],
        ..Default::default()
    };
    for i in 0..20_000 {
        state.flags.insert(
            format!("flag-{i:05}"),
            std::sync::Arc::new(model::Flag::default()),
        );
    }
    let snap = snapshot::Snapshot::new(
        state,
        snapshot::SnapshotSource {
            instance: "hub".into(),
            location: "test".into(),
            unleash_version: None,
        },
    );
    let dir = fleet(
        "[hub]\nfile = \"hub.json\"\n[[spokes]]\nname = \"eu\"\nfile = \"hub.json\"\nproject = \"x\"\n",
        &[("hub.json", &snap.to_json())],
    );
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("flagfleet"))
        .arg("-c")
        .arg(dir.path().join("flagfleet.toml"))
        .args(["export", "hub"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The reader is gone (like `| head -c 16`).
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "exit {status:?}: {stderr}");
    assert_eq!(stderr, "");
}

#[test]
fn quickstart_plan_renderings() {
    for (format, name) in [
        ("human", "plan_human"),
        ("markdown", "plan_markdown"),
        ("json", "plan_json"),
    ] {
        let (code, stdout, stderr) = run(&["-c", QUICKSTART, "plan", "--format", format]);
        assert_eq!(code, 0, "{stderr}");
        insta::assert_snapshot!(name, stdout);
    }
    let (_, verbose, _) = run(&["-c", QUICKSTART, "-v", "plan", "--spoke", "eu-west"]);
    assert!(
        verbose.contains("= flag ops-cache"),
        "-v lists unchanged items:\n{verbose}"
    );
}

#[test]
fn plan_exit_codes_follow_terraform() {
    let (code, _, _) = run(&["-c", QUICKSTART, "plan", "--detailed-exitcode"]);
    assert_eq!(code, 2, "changes present");
    // A spoke planned against itself has nothing to do.
    let hub = std::fs::read_to_string(root().join("examples/quickstart/hub.json")).unwrap();
    let dir = fleet(
        "[hub]\nfile = \"hub.json\"\n[[spokes]]\nname = \"twin\"\nfile = \"twin.json\"\n",
        &[("hub.json", &hub), ("twin.json", &hub)],
    );
    let (code, stdout, _) = run_in(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("Plan for twin: 0 to create, 0 to overwrite,"),
        "{stdout}"
    );
    let (code, _, stderr) = run_in(dir.path(), &["plan", "--spoke", "nope"]);
    assert_eq!(code, 1);
    assert_eq!(
        stderr,
        "Error: no spoke named `nope` in the topology\nHint: spokes: twin\n"
    );
}

#[test]
fn one_unreadable_spoke_does_not_stop_the_others() {
    let hub = std::fs::read_to_string(root().join("examples/quickstart/hub.json")).unwrap();
    let dir = fleet(
        "[hub]\nfile = \"hub.json\"\n[[spokes]]\nname = \"gone\"\nfile = \"gone.json\"\n[[spokes]]\nname = \"twin\"\nfile = \"twin.json\"\n",
        &[("hub.json", &hub), ("twin.json", &hub)],
    );
    let (code, stdout, _) = run_in(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(code, 1, "an unreadable spoke is an error");
    assert!(stdout.contains("Spoke gone ([DIR]/gone.json, project default, production -> production)\n  error: gone: snapshot file [DIR]/gone.json does not exist"), "{stdout}");
    assert!(stdout.contains("Plan for twin: 0 to create"), "{stdout}");
}

#[test]
fn a_saved_plan_is_the_json_plan() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("plan.json");
    let (code, stdout, stderr) = run(&[
        "-c",
        QUICKSTART,
        "plan",
        "--format",
        "json",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), stdout);
    let plan: flagfleet::plan::Plan = serde_json::from_str(&stdout).unwrap();
    assert_eq!(plan.format_version, flagfleet::plan::FORMAT_VERSION);
    assert!(plan.spokes.iter().all(|s| s.fingerprint.is_some()));
}

#[test]
fn graph_is_dot_with_kind_name_nodes() {
    let (code, stdout, stderr) = run(&["-c", QUICKSTART, "graph", "--spoke", "eu-west"]);
    assert_eq!(code, 0, "{stderr}");
    insta::assert_snapshot!(stdout);
}

/// The quickstart fleet copied into a temporary folder, to apply to.
fn quickstart_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["flagfleet.toml", "hub.json", "eu-west.json", "us-east.json"] {
        std::fs::copy(
            root().join("examples/quickstart").join(f),
            dir.path().join(f),
        )
        .unwrap();
    }
    dir
}

#[test]
fn quickstart_apply_converges_on_file_spokes() {
    let dir = quickstart_copy();
    let (code, stdout, stderr) = run_in(
        dir.path(),
        &[
            "apply",
            "--auto-approve",
            "--backup-dir",
            &dir.path().join("b").display().to_string(),
        ],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("Apply to eu-west: 9 applied, 0 failed, 0 not attempted."),
        "{stdout}"
    );
    let (code, stdout, _) = run_in(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "a second plan is empty:\n{stdout}");
    // The backup is the spoke as it was.
    let backup = std::fs::read_dir(dir.path().join("b"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("eu-west-")
        })
        .unwrap();
    let parse = |p: &Path| match snapshot::parse(&std::fs::read_to_string(p).unwrap(), "default")
        .unwrap()
    {
        snapshot::FileContents::Snapshot(s) => s.state,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        parse(&backup),
        parse(&root().join("examples/quickstart/eu-west.json"))
    );
    // The rewritten spoke file and its backup keep the Unleash version the file recorded
    // (a later plan blocks by it).
    for file in [backup, dir.path().join("eu-west.json")] {
        let text = std::fs::read_to_string(&file).unwrap();
        let Ok(snapshot::FileContents::Snapshot(s)) = snapshot::parse(&text, "default") else {
            panic!("{} is no snapshot", file.display());
        };
        assert_eq!(
            s.source.unleash_version.as_deref(),
            Some("8.2.0"),
            "{}",
            file.display()
        );
    }
}

#[test]
fn apply_reports_spokes_already_in_sync_and_backs_up_only_what_it_changes() {
    let dir = quickstart_copy();
    let backups = dir.path().join("b");
    let backup_dir = backups.display().to_string();
    let apply = |extra: &[&str]| {
        let mut args = vec!["apply", "--auto-approve", "--backup-dir", &backup_dir];
        args.extend_from_slice(extra);
        run_in(dir.path(), &args)
    };
    let (code, stdout, stderr) = apply(&["--spoke", "eu-west"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    std::fs::remove_dir_all(&backups).unwrap();

    // eu-west is now in sync: read and planned, one spoke at a time, but not kept.
    let (code, stdout, stderr) = apply(&["--read-parallelism", "1"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("Apply to eu-west: nothing to do."),
        "{stdout}"
    );
    assert!(
        stdout.contains("Apply to us-east: ") && stdout.contains(" applied, 0 failed"),
        "{stdout}"
    );
    let saved: Vec<String> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert!(saved[0].starts_with("us-east-"), "{saved:?}");
    let (code, stdout, _) = run_in(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "a second plan is empty:\n{stdout}");
}

#[test]
fn a_token_file_that_cannot_be_read_is_named() {
    let dir = fleet(
        "[hub]\nfile = \"hub.json\"\n[[spokes]]\nname = \"eu\"\nurl = \"http://127.0.0.1:9\"\ntoken_file = \"secrets/eu-token\"\n",
        &[],
    );
    let (code, _, stderr) = run_in(dir.path(), &["export", "eu"]);
    assert_eq!(code, 1);
    assert_eq!(
        stderr,
        "Error: eu: cannot read token file [DIR]/secrets/eu-token (token_file at [DIR]/flagfleet.toml:6): No such file or directory (os error 2)\n"
    );
}

#[path = "../benches/support/fleet_gen.rs"]
mod fleet_gen;

/// `plan` reads and plans spokes a few at a time and drops each state once planned;
/// what it prints must be what the library's pipeline gives when it keeps the whole
/// fleet, every spoke read at once.
#[test]
fn a_streamed_plan_equals_the_plan_made_in_memory() {
    use flagfleet::pipeline;
    use flagfleet::render::{human, markdown, Options};

    let dir = tempfile::tempdir().unwrap();
    fleet_gen::write_fleet(dir.path(), 40, 5).unwrap();
    let toml = std::fs::read_to_string(dir.path().join("flagfleet.toml")).unwrap();

    let topology = flagfleet::topology::parse(&dir.path().join("flagfleet.toml"), &toml).unwrap();
    let topology_fp = flagfleet::plan::fingerprint_bytes(toml.as_bytes());
    let options = pipeline::Options {
        client: Default::default(),
        parallelism: 5,
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (fleet, whole) = runtime
        .block_on(pipeline::plan_fleet(
            std::sync::Arc::new(topology),
            topology_fp,
            &[],
            &options,
            |_| true,
        ))
        .unwrap();
    assert_eq!(fleet.spokes.len(), 5, "every spoke kept");
    assert!(whole.spokes.iter().all(|s| s.summary.skip > 10));

    let plan_file = dir.path().join("saved.json");
    for parallelism in ["1", "3"] {
        let streamed = |format: &str| {
            let (code, stdout, stderr) = run_in(
                dir.path(),
                &["plan", "--parallelism", parallelism, "--format", format],
            );
            assert_eq!(code, 0, "{stderr}");
            stdout
        };
        let scrub = |text: String| text.replace(&dir.path().display().to_string(), "[DIR]");
        assert_eq!(streamed("json"), scrub(whole.to_json()));
        assert_eq!(
            streamed("human"),
            scrub(human::render(&whole, Options::default()))
        );
        assert_eq!(
            streamed("markdown"),
            scrub(markdown::render(
                &whole,
                Options::default(),
                markdown::COMMENT_LIMIT
            ))
        );
        let (code, _, stderr) = run_in(
            dir.path(),
            &[
                "plan",
                "--parallelism",
                parallelism,
                "--out",
                plan_file.to_str().unwrap(),
            ],
        );
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(
            std::fs::read_to_string(&plan_file).unwrap(),
            whole.to_json()
        );
    }
}

/// The state a snapshot file holds.
fn snapshot_state(path: &Path) -> model::State {
    match snapshot::parse(&std::fs::read_to_string(path).unwrap(), "default").unwrap() {
        snapshot::FileContents::Snapshot(s) => s.state,
        other => panic!("{}: {other:?}", path.display()),
    }
}

/// Apply keeps no spoke's state from planning: it shows the plan `plan` shows, then reads
/// each spoke again, backs up what it read (the state the plan was made from), writes and
/// drops it, and every spoke ends as planned.
#[test]
fn apply_to_files_shows_the_plan_then_reads_backs_up_and_writes_each_spoke() {
    let dir = tempfile::tempdir().unwrap();
    fleet_gen::write_fleet(dir.path(), 40, 5).unwrap();
    let spoke = |i: usize| dir.path().join(format!("spoke-{i:02}.json"));
    let before: Vec<model::State> = (0..5).map(|i| snapshot_state(&spoke(i))).collect();
    let (code, plan, stderr) = run_in(dir.path(), &["plan"]);
    assert_eq!(code, 0, "{stderr}");
    let (_, json, _) = run_in(dir.path(), &["plan", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let backups = dir.path().join("b");
    let (code, stdout, stderr) = run_in(
        dir.path(),
        &[
            "apply",
            "--auto-approve",
            "--read-parallelism",
            "2",
            "--backup-dir",
            backups.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.starts_with(&plan), "apply shows the plan:\n{stdout}");
    for i in 0..5 {
        let summary = &json["spokes"][i]["summary"];
        let changes = summary["create"].as_u64().unwrap() + summary["overwrite"].as_u64().unwrap();
        assert!(changes > 0, "{summary}");
        let line = format!("Apply to spoke-{i:02}: {changes} applied, 0 failed, 0 not attempted.");
        assert!(stdout.contains(&line), "{stdout}");
        let prefix = format!("spoke-{i:02}-");
        let backup = std::fs::read_dir(&backups)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(&prefix)
            })
            .unwrap();
        assert_eq!(snapshot_state(&backup), before[i], "{}", backup.display());
        assert_ne!(snapshot_state(&spoke(i)), before[i], "spoke-{i:02} written");
    }
    let (code, stdout, _) = run_in(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "a second plan is empty:\n{stdout}");
}

/// A file spoke is read again right before its first write: one changed after the plan
/// (here by the gate, before its wave) is refused, not written and not backed up.
#[test]
fn a_file_spoke_changed_after_the_plan_is_refused_and_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    fleet_gen::write_fleet(dir.path(), 40, 3).unwrap();
    std::fs::write(
        dir.path().join("flagfleet.toml"),
        "[hub]\nfile = \"hub.json\"\n\
         [[spokes]]\nname = \"canary\"\nfile = \"spoke-00.json\"\nwave = 1\n\
         [[spokes]]\nname = \"rest\"\nfile = \"spoke-01.json\"\nwave = 2\n",
    )
    .unwrap();
    // The gate plays someone who edits the second wave's spoke meanwhile.
    let (other, rest) = (
        dir.path().join("spoke-02.json"),
        dir.path().join("spoke-01.json"),
    );
    let gate = format!("cp '{}' '{}'", other.display(), rest.display());
    let backups = dir.path().join("b");
    let (code, stdout, stderr) = run_in(
        dir.path(),
        &[
            "apply",
            "--auto-approve",
            "--gate",
            &gate,
            "--backup-dir",
            backups.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("Apply to canary: 4 applied"), "{stdout}");
    assert!(
        stdout.contains("Apply to rest: error: it changed since the plan was made"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read(&rest).unwrap(),
        std::fs::read(&other).unwrap(),
        "nothing written"
    );
    let saved: Vec<String> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        saved.len() == 1 && saved[0].starts_with("canary-"),
        "{saved:?}"
    );
}

/// Two spokes in one file (disjoint selections, the file named two ways), in two waves:
/// the second is not refused for what the first wrote (flags it reads as the file's), one
/// apply leaves the file as both plans promised and a second plan is empty.
#[test]
fn two_spokes_in_one_file_converge_in_one_apply() {
    let dir = quickstart_copy();
    std::fs::write(
        dir.path().join("flagfleet.toml"),
        "[hub]\nfile = \"hub.json\"\n\
         [[spokes]]\nname = \"ops\"\nfile = \"us-east.json\"\nwave = 1\n\
         select = { names = [\"ops-*\", \"kill-switch-*\"] }\n\
         [[spokes]]\nname = \"product\"\nfile = \"./us-east.json\"\nwave = 2\n\
         select = { names = [\"checkout-*\"] }\n",
    )
    .unwrap();
    // The plan says which spokes share the file, in every format.
    let (code, human, stderr) = run_in(dir.path(), &["plan"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        human.contains("production -> production; same file as product (applied in turn))"),
        "{human}"
    );
    let (code, json, stderr) = run_in(dir.path(), &["plan", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let plan: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        plan["spokes"][0]["same_place_as"],
        serde_json::json!(["product"])
    );
    assert_eq!(
        plan["spokes"][1]["same_place_as"],
        serde_json::json!(["ops"])
    );
    let (_, markdown, _) = run_in(dir.path(), &["plan", "--format", "markdown"]);
    assert!(
        markdown.contains(" · same file as ops (applied in turn)"),
        "{markdown}"
    );

    let (code, stdout, stderr) = run_in(dir.path(), &["apply", "--auto-approve"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    for spoke in ["ops", "product"] {
        assert!(
            stdout.contains(&format!("Apply to {spoke}: ")) && !stdout.contains("error"),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains("Apply to ops: 2 applied, 0 failed")
            && stdout.contains("Apply to product: 9 applied, 0 failed"),
        "{stdout}"
    );
    let (code, stdout, stderr) = run_in(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let spoke = snapshot_state(&dir.path().join("us-east.json"));
    let hub = snapshot_state(&dir.path().join("hub.json"));
    for flag in ["ops-cache", "kill-switch-search", "checkout-v2"] {
        // `stale` is not synced.
        let unstale = |f: &model::Flag| model::Flag {
            stale: false,
            ..f.clone()
        };
        assert_eq!(
            unstale(&spoke.flags[flag]),
            unstale(&hub.flags[flag]),
            "{flag}"
        );
    }
}

/// `plan --wave N` plans the spokes of that wave alone, and names the topology's waves
/// when it has none.
#[test]
fn plan_wave_plans_one_wave() {
    let dir = quickstart_copy();
    let path = dir.path().join("flagfleet.toml");
    let topology = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        topology.replace("name = \"us-east\"", "name = \"us-east\"\nwave = 2"),
    )
    .unwrap();
    let (code, stdout, stderr) = run_in(dir.path(), &["plan", "--wave", "2"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Spoke us-east"), "{stdout}");
    assert!(!stdout.contains("Spoke eu-west"), "{stdout}");
    let (code, _, stderr) = run_in(dir.path(), &["plan", "--wave", "3"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("no spoke in wave 3 (the topology's waves: 1, 2)"),
        "{stderr}"
    );
}

/// SIGTERM while the gate between two waves runs: apply stops the gate, starts no
/// further wave and exits as interrupted, instead of waiting for the gate to end.
#[test]
fn an_interrupt_during_the_gate_stops_it_and_the_rollout() {
    let dir = quickstart_copy();
    let mut topology = std::fs::read_to_string(dir.path().join("flagfleet.toml")).unwrap();
    topology = topology.replace("name = \"us-east\"", "name = \"us-east\"\nwave = 2");
    std::fs::write(dir.path().join("flagfleet.toml"), topology).unwrap();
    let before = std::fs::read(dir.path().join("us-east.json")).unwrap();
    let (started, finished) = (dir.path().join("started"), dir.path().join("finished"));
    let gate = format!(
        "touch '{}'; sleep 60 >/dev/null 2>&1; touch '{}'",
        started.display(),
        finished.display()
    );
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("flagfleet"))
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .args([
            "apply",
            "--auto-approve",
            "--backup-dir",
            "b",
            "--gate",
            &gate,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let waited = std::time::Instant::now();
    while !started.exists() {
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(30),
            "the gate never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    // Well before the gate's 60 s: the apply does not wait for it.
    let stopped = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopped.elapsed() < std::time::Duration::from_secs(30),
            "apply waited for the gate"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(status.code(), Some(130), "{stdout}");
    assert!(stdout.contains("Apply to eu-west: "), "{stdout}");
    assert!(
        stdout.contains("Apply to us-east: not started: interrupted"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("us-east.json")).unwrap(),
        before
    );
    assert!(!finished.exists(), "the gate went on after the apply");
}

/// `show` prints a saved plan byte for byte as `plan` printed it, in every format, with
/// and without -v, for a fleet with an unreadable spoke too; it reads no instance and
/// needs no topology.
#[test]
fn show_renders_a_saved_plan_exactly_as_plan_printed_it() {
    let dir = quickstart_copy();
    let topology = dir.path().join("flagfleet.toml");
    let mut text = std::fs::read_to_string(&topology).unwrap();
    text.push_str("\n[[spokes]]\nname = \"gone\"\nfile = \"gone.json\"\n");
    std::fs::write(&topology, text).unwrap();
    let plan_file = dir.path().join("plan.json");
    let elsewhere = tempfile::tempdir().unwrap();
    for format in ["human", "json", "markdown"] {
        for verbose in [false, true] {
            let mut plan = flagfleet();
            plan.arg("-c")
                .arg(&topology)
                .args(["plan", "--format", format, "--out"]);
            plan.arg(&plan_file);
            if verbose {
                plan.arg("-v");
            }
            let planned = plan.output().unwrap();
            // The unreadable spoke makes the plan exit 1, but it is still planned and saved.
            assert_eq!(planned.status.code(), Some(1));
            let printed = String::from_utf8(planned.stdout).unwrap();
            assert!(printed.contains("gone"), "{printed}");

            // Shown from another folder, with the spokes' files gone: nothing is read.
            for snapshot in ["hub.json", "eu-west.json", "us-east.json"] {
                let _ = std::fs::rename(dir.path().join(snapshot), elsewhere.path().join(snapshot));
            }
            let mut show = flagfleet();
            show.current_dir(elsewhere.path())
                .arg("show")
                .arg(&plan_file)
                .args(["--format", format]);
            if verbose {
                show.arg("-v");
            }
            let shown = show.output().unwrap();
            assert_eq!(shown.status.code(), Some(0), "{shown:?}");
            let shown = String::from_utf8(shown.stdout).unwrap();
            assert!(
                shown == printed,
                "show --format {format} (verbose {verbose}) differs from plan:\n{}",
                similar::TextDiff::from_lines(&printed, &shown).unified_diff()
            );
            if format == "json" {
                assert_eq!(shown, std::fs::read_to_string(&plan_file).unwrap());
            }
            for snapshot in ["hub.json", "eu-west.json", "us-east.json"] {
                std::fs::rename(elsewhere.path().join(snapshot), dir.path().join(snapshot))
                    .unwrap();
            }
        }
    }
}

#[test]
fn show_refuses_what_is_not_a_plan() {
    let dir = fleet("", &[("plan.json", "{\"format_version\": 9}")]);
    let (code, _, stderr) = run(&["show", dir.path().join("plan.json").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stderr.contains("plan format_version 9"), "{stderr}");
}

#[test]
fn schema_prints_the_committed_schema() {
    let (code, stdout, stderr) = run(&["schema"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, flagfleet::topology::json_schema());
}

#[test]
fn init_writes_a_valid_commented_topology_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flagfleet.toml");
    let init = |extra: &[&str]| {
        let mut cmd = flagfleet();
        cmd.arg("-c").arg(&path).arg("init");
        cmd.args(["--hub", "https://unleash.example.com"])
            .args(["--spoke", "eu-west=https://eu.unleash.example.com"])
            .args(["--spoke", "lab=lab.json"])
            .args(extra);
        cmd.output().unwrap()
    };
    let out = init(&[]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("Set HUB_TOKEN, EU_WEST_TOKEN (admin API tokens)"),
        "{stderr}"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let topology = flagfleet::topology::parse(&path, &text).unwrap();
    assert_eq!(topology.hub.environments, ["production"]);
    let names: Vec<&str> = topology
        .spokes
        .iter()
        .map(|s| s.instance.name.as_str())
        .collect();
    assert_eq!(names, ["eu-west", "lab"]);
    assert!(text.contains("token_env = \"EU_WEST_TOKEN\""), "{text}");
    assert!(text.contains("file = \"lab.json\""), "{text}");
    assert!(text.contains("# [[spokes.overrides]]"), "{text}");
    // Every commented-out key is a real key: uncommented, the file still loads.
    let uncommented: String = text
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest) if rest.contains(" = ") || rest.starts_with('[') => rest,
            _ => l,
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(uncommented, text);
    if let Err(e) = flagfleet::topology::parse(&path, &uncommented) {
        panic!("{e}\n{uncommented}");
    }

    // A second run refuses and leaves the file as it was.
    std::fs::write(&path, "# mine\n").unwrap();
    let again = init(&[]);
    assert_eq!(again.status.code(), Some(1));
    let stderr = String::from_utf8(again.stderr).unwrap();
    assert!(stderr.contains("refusing to overwrite"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "# mine\n");
}

#[test]
fn init_refuses_what_validate_would_refuse_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flagfleet.toml");
    let out = flagfleet()
        .arg("-c")
        .arg(&path)
        .args([
            "init",
            "--hub",
            "https://hub.example.com",
            "--spoke",
            "eu west=https://eu.example.com",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("invalid instance name `eu west`"));
    assert!(!path.exists());
}

#[test]
fn completions_and_man_pages_cover_every_command() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let (code, stdout, stderr) = run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {stderr}");
        for word in ["plan", "apply", "show", "init", "detailed-exitcode"] {
            assert!(stdout.contains(word), "{shell} completions lack {word}");
        }
    }
    let (code, page, _) = run(&["man"]);
    assert_eq!(code, 0);
    assert!(
        page.starts_with(".ie \\n(.g .ds Aq"),
        "{}",
        &page[..80.min(page.len())]
    );
    assert!(page.contains(".TH flagfleet 1"), "{page}");
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run(&["man", "--out-dir", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let mut pages: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    assert!(pages.contains(&"flagfleet.1".to_string()), "{pages:?}");
    assert!(pages.contains(&"flagfleet-plan.1".to_string()), "{pages:?}");
    assert!(pages.contains(&"flagfleet-show.1".to_string()), "{pages:?}");
    let plan_page = std::fs::read_to_string(dir.path().join("flagfleet-plan.1")).unwrap();
    assert!(plan_page.contains("detailed\\-exitcode"), "{plan_page}");
}

#[test]
fn hub_snapshot_must_be_a_flagfleet_snapshot_of_the_hub() {
    // The hub's own snapshot stands in for it: the same plan.
    let (code, with, stderr) = run(&[
        "-c",
        QUICKSTART,
        "plan",
        "--format",
        "json",
        "--hub-snapshot",
        "examples/quickstart/hub.json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let (_, without, _) = run(&["-c", QUICKSTART, "plan", "--format", "json"]);
    assert_eq!(with, without);

    let (code, _, stderr) = run(&[
        "-c",
        QUICKSTART,
        "plan",
        "--hub-snapshot",
        "examples/quickstart/us-east.json",
    ]);
    assert_eq!(code, 1);
    assert_eq!(
        stderr,
        "Error: --hub-snapshot examples/quickstart/us-east.json: it is a snapshot of `us-east`, not of the hub `hub`\n\
         Hint: write the hub's snapshot with `flagfleet export HUB --out FILE`, HUB being the hub's name in this topology\n"
    );
    let (code, _, stderr) = run(&[
        "-c",
        QUICKSTART,
        "apply",
        "--hub-snapshot",
        "examples/quickstart/flagfleet.toml",
    ]);
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with(
            "Error: --hub-snapshot examples/quickstart/flagfleet.toml: not a flagfleet snapshot: "
        ),
        "{stderr}"
    );
}
