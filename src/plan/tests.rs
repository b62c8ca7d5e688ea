//! Unit cases for every action and skip reason, on states built in memory.

use std::path::Path;

use serde_json::json;

use super::*;
use crate::render::{self, human, markdown};
use crate::state::State;
use crate::topology::{self, Topology};

#[track_caller]
fn state(v: serde_json::Value) -> State {
    let mut base = json!({
        "project": "default", "environments": ["production"], "flags": {},
        "context_fields": {}, "segments": {}, "strategies": {
            "flexibleRollout": {"builtin": true}, "default": {"builtin": true}
        }, "tag_types": {"simple": {"builtin": true}}
    });
    for (k, val) in v.as_object().unwrap() {
        base[k] = val.clone();
    }
    serde_json::from_value(base).unwrap()
}

fn rollout(percent: &str, group: &str) -> serde_json::Value {
    json!({"name": "flexibleRollout", "parameters": {"rollout": percent, "stickiness": "default", "groupId": group}})
}

fn flag(envs: serde_json::Value) -> serde_json::Value {
    json!({"type": "release", "impression_data": false, "stale": false, "environments": envs})
}

fn hub() -> State {
    state(json!({
        "context_fields": {
            "region": {"stickiness": false, "legal_values": [{"value": "eu"}, {"value": "us"}]},
            "tenant": {"stickiness": false},
            "userId": {"builtin": true, "stickiness": false}
        },
        "segments": {
            "beta": {"constraints": [{"context_name": "tenant", "operator": "IN", "values": ["t1"]}]},
            "local": {"constraints": [{"context_name": "userId", "operator": "IN", "values": ["u"]}]}
        },
        "strategies": {
            "flexibleRollout": {"builtin": true}, "default": {"builtin": true},
            "by-tenant": {"parameters": [{"name": "tenants", "type": "list", "required": true}]}
        },
        "tag_types": {"simple": {"builtin": true}, "team": {"description": "owner"}},
        "flags": {
            "new-flag": flag(json!({"production": {"enabled": true, "strategies": [
                {"name": "by-tenant", "parameters": {"tenants": "t1"},
                 "constraints": [{"context_name": "region", "operator": "IN", "values": ["eu"]}]}]}})),
            "drifted": flag(json!({"production": {"enabled": true, "strategies": [rollout("50", "drifted")]}})),
            "same": flag(json!({"production": {"enabled": false}})),
            "archived-there": flag(json!({"production": {"enabled": true, "strategies": [rollout("100", "archived-there")]}})),
            "other-project": flag(json!({"production": {"enabled": false}})),
            "tagged": {"type": "release", "impression_data": false, "stale": false,
                       "tags": [{"type": "team", "value": "a"}], "environments": {"production": {"enabled": false}}},
            "segmented": flag(json!({"production": {"enabled": true, "strategies": [
                {"name": "flexibleRollout", "parameters": {"rollout": "100", "stickiness": "default", "groupId": "segmented"}, "segments": ["beta"]}]}})),
            "uses-local": flag(json!({"production": {"enabled": true, "strategies": [
                {"name": "default", "segments": ["local"]}]}})),
            "child-of-archived": {"type": "release", "impression_data": false, "stale": false,
                "dependencies": [{"feature": "archived-there", "enabled": true}],
                "environments": {"production": {"enabled": false}}},
            "child-of-unselected": {"type": "release", "impression_data": false, "stale": false,
                "dependencies": [{"feature": "excluded-parent", "enabled": true}],
                "environments": {"production": {"enabled": false}}},
            "excluded-parent": flag(json!({"production": {"enabled": false}})),
            "enabled-bare": flag(json!({"production": {"enabled": true}}))
        }
    }))
}

fn spoke() -> State {
    state(json!({
        "context_fields": {
            "region": {"stickiness": false, "legal_values": [{"value": "apac"}, {"value": "eu"}]},
            "tenant": {"stickiness": false}
        },
        "segments": {"beta": {"constraints": [{"context_name": "tenant", "operator": "IN", "values": ["t2"]}]}},
        "flags": {
            "drifted": flag(json!({"production": {"enabled": true, "strategies": [rollout("20", "drifted")]}})),
            "same": flag(json!({"production": {"enabled": false}})),
            "spoke-only": flag(json!({"production": {"enabled": true}})),
            "enabled-bare": flag(json!({"production": {"enabled": true, "strategies": [rollout("100", "enabled-bare")]}}))
        },
        "elsewhere": {
            "archived-there": {"project": "default", "archived": true},
            "other-project": {"project": "payments", "archived": false}
        }
    }))
}

const TOPOLOGY: &str = r#"
[hub]
file = "hub.json"

[select]
exclude = ["excluded-*"]

[[spokes]]
name = "dc1"
file = "dc1.json"
scaffolding = { segments = "create-only", tag_types = "ignore" }

[[spokes.overrides]]
flags = ["drifted"]
parameters = { rollout = "10" }
"#;

/// The plan of the hub and one spoke, `dc1`, as the pipeline makes it.
fn plan_with(topology: &Topology, hub: State, spoke: State) -> Plan {
    let fingerprint = crate::state::fingerprint(&spoke);
    let dc1 = topology.spoke("dc1").unwrap();
    Plan {
        format_version: FORMAT_VERSION,
        topology_fingerprint: "xxh3:topology".into(),
        hub: hub_info(topology, crate::state::fingerprint(&hub)),
        spokes: vec![plan_one(topology, &hub, dc1, Ok(&spoke), Some(fingerprint))],
    }
}

fn plan_of(hub: State, spoke: State) -> Plan {
    let topology = topology::parse(Path::new("fleet/flagfleet.toml"), TOPOLOGY).unwrap();
    plan_with(&topology, hub, spoke)
}

fn find<'p>(plan: &'p Plan, kind: Kind, name: &str) -> &'p Action {
    plan.spokes[0]
        .actions
        .iter()
        .find(|a| a.kind == kind && a.name == name)
        .unwrap_or_else(|| panic!("no action for {kind}:{name}"))
}

#[track_caller]
fn assert_action(plan: &Plan, kind: Kind, name: &str, verb: Verb, reason: &str, blocked: bool) {
    let a = find(plan, kind, name);
    assert_eq!(
        (a.action, a.reason.to_string().as_str(), a.blocked),
        (verb, reason, blocked),
        "{kind}:{name}"
    );
}

#[test]
fn every_action_and_skip_reason() {
    let plan = plan_of(hub(), spoke());
    use Kind::*;
    let expected = [
        (Flag, "new-flag", Verb::Create, "missing on spoke", false),
        (
            Flag,
            "drifted",
            Verb::Overwrite,
            "differs: production: strategies",
            false,
        ),
        (Flag, "same", Verb::Skip, "unchanged", false),
        (
            Flag,
            "archived-there",
            Verb::Skip,
            "archived on spoke",
            true,
        ),
        (
            Flag,
            "other-project",
            Verb::Skip,
            "exists in project payments on spoke",
            true,
        ),
        (
            Flag,
            "child-of-archived",
            Verb::Skip,
            "parent blocked: archived-there",
            true,
        ),
        (
            Flag,
            "child-of-unselected",
            Verb::Skip,
            "parent excluded-parent is not selected and missing on spoke",
            true,
        ),
        (
            Segment,
            "beta",
            Verb::Skip,
            "create-only policy, spoke differs",
            false,
        ),
        (Flag, "segmented", Verb::Create, "missing on spoke", false),
        (TagType, "team", Verb::Skip, "ignored by policy", false),
        (
            Flag,
            "tagged",
            Verb::Skip,
            "needs tag_type team (ignored by policy; missing on spoke)",
            true,
        ),
        (
            ContextField,
            "region",
            Verb::Overwrite,
            "differs from the hub",
            false,
        ),
        (ContextField, "tenant", Verb::Skip, "unchanged", false),
        (
            Strategy,
            "by-tenant",
            Verb::Create,
            "missing on spoke",
            false,
        ),
        // The server's default strategy on an enabled flag without strategies is no drift.
        (Flag, "enabled-bare", Verb::Skip, "unchanged", false),
    ];
    for (kind, name, verb, reason, blocked) in expected {
        assert_action(&plan, kind, name, verb, reason, blocked);
    }
    assert!(
        find(&plan, Segment, "beta").diff.is_some(),
        "create-only differences are shown"
    );
    assert_eq!(
        find(&plan, ContextField, "region").notes,
        ["legal values only the spoke has are kept: apac"]
    );
    // Built-ins need no action; spoke-only flags are never touched; excluded flags absent.
    assert!(plan.spokes[0]
        .actions
        .iter()
        .all(|a| a.name != "userId" && a.name != "spoke-only" && a.name != "excluded-parent"));
    assert_eq!(
        plan.spokes[0].summary,
        Summary {
            create: 5,
            overwrite: 2,
            archive: 0,
            skip: 10,
            blocked: 5
        }
    );
}

#[test]
fn overrides_change_what_the_spoke_gets() {
    let plan = plan_of(hub(), spoke());
    let diff = find(&plan, Kind::Flag, "drifted").diff.clone().unwrap();
    assert!(
        diff.contains("-            \"rollout\": \"20\",\n+            \"rollout\": \"10\","),
        "{diff}"
    );
}

#[test]
fn actions_come_after_what_they_depend_on() {
    let plan = plan_of(hub(), spoke());
    let actions = &plan.spokes[0].actions;
    for (i, a) in actions.iter().enumerate() {
        for dep in &a.depends_on {
            let j = actions
                .iter()
                .position(|b| (b.kind, &b.name) == (dep.0, &dep.1))
                .unwrap();
            assert!(
                j < i,
                "{}:{} listed before its dependency {}:{}",
                a.kind,
                a.name,
                dep.0,
                dep.1
            );
        }
    }
    let segmented = find(&plan, Kind::Flag, "segmented");
    assert_eq!(segmented.depends_on, [(Kind::Segment, "beta".to_string())]);
    let segment = find(&plan, Kind::Segment, "beta");
    assert_eq!(
        segment.depends_on,
        [(Kind::ContextField, "tenant".to_string())]
    );
}

#[test]
fn a_segment_only_named_by_a_raw_export_is_blocked_with_its_users() {
    let mut hub = hub();
    hub.segments.get_mut("local").unwrap().incomplete = true;
    hub.segments.get_mut("local").unwrap().constraints.clear();
    let plan = plan_of(hub, spoke());
    assert_action(
        &plan,
        Kind::Segment,
        "local",
        Verb::Skip,
        "used by the hub but defined neither on the hub nor on the spoke",
        true,
    );
    assert_action(&plan, Kind::Flag, "uses-local", Verb::Skip, "needs segment local (used by the hub but defined neither on the hub nor on the spoke; missing on spoke)", true);
}

#[test]
fn an_identical_spoke_plans_nothing() {
    let hub = hub();
    let mut spoke = hub.clone();
    spoke.tag_types.clear();
    spoke
        .tag_types
        .insert("team".into(), hub.tag_types["team"].clone());
    // What the override makes of `drifted` on this spoke.
    let strategy = &mut Arc::make_mut(spoke.flags.get_mut("drifted").unwrap())
        .environments
        .get_mut("production")
        .unwrap()
        .strategies[0];
    strategy.parameters.insert("rollout".into(), "10".into());
    let plan = plan_of(hub, spoke);
    assert!(
        !plan.has_changes(),
        "{}",
        human::render(&plan, render::Options::default())
    );
}

#[test]
fn json_is_deterministic_and_renderings_are_pinned() {
    let plan = plan_of(hub(), spoke());
    let again = plan_of(hub(), spoke());
    assert_eq!(plan.to_json(), again.to_json());
    let options = render::Options::default();
    insta::assert_snapshot!("unit_human", human::render(&plan, options));
    insta::assert_snapshot!(
        "unit_markdown",
        markdown::render(&plan, options, markdown::COMMENT_LIMIT)
    );
    insta::assert_snapshot!("unit_json", plan.to_json());
}

#[test]
fn markdown_always_fits_one_comment() {
    let mut hub = hub();
    let template = hub.flags["drifted"].clone();
    for i in 0..3000 {
        hub.flags.insert(format!("bulk-{i:04}"), template.clone());
    }
    let plan = plan_of(hub, spoke());
    let full = markdown::render(&plan, render::Options::default(), usize::MAX);
    assert!(full.chars().count() > markdown::COMMENT_LIMIT);
    let cut = markdown::render(&plan, render::Options::default(), markdown::COMMENT_LIMIT);
    assert!(cut.chars().count() <= markdown::COMMENT_LIMIT);
    assert!(cut.contains("Details truncated"), "says it was cut");
    assert!(
        cut.contains("| dc1 | 3005 |"),
        "the summary table survives: {}",
        &cut[..400]
    );
}

#[test]
fn a_pruning_spoke_archives_selected_flags_the_hub_does_not_have_first() {
    let topology = topology::parse(
        Path::new("flagfleet.toml"),
        "[hub]\nfile = \"hub.json\"\n[select]\nnames = [\"app-*\"]\n[[spokes]]\nname = \"dc1\"\nfile = \"dc1.json\"\nprune = true\n",
    )
    .unwrap();
    let mut hub =
        state(json!({"flags": {"app-kept": flag(json!({"production": {"enabled": false}}))}}));
    hub.elsewhere.insert(
        "app-retired".into(),
        crate::state::model::Elsewhere {
            project: "default".into(),
            archived: true,
        },
    );
    let spoke = state(json!({"flags": {
        "app-kept": flag(json!({"production": {"enabled": false}})),
        "app-retired": flag(json!({"production": {"enabled": true}})),
        "app-stray": flag(json!({"production": {"enabled": false}})),
        "local-only": flag(json!({"production": {"enabled": true}}))
    }}));
    let plan = plan_with(&topology, hub, spoke);
    let lines: Vec<String> = plan.spokes[0]
        .actions
        .iter()
        .map(|a| format!("{} {}: {:?} {}", a.kind, a.name, a.action, a.reason))
        .collect();
    assert_eq!(
        lines,
        [
            "flag app-retired: Archive archived on the hub (prune)",
            "flag app-stray: Archive absent on the hub (prune)",
            "flag app-kept: Skip unchanged",
        ]
    );
    let text = human::render(&plan, render::Options::default());
    assert!(
        text.contains(
            "Plan for dc1: 0 to create, 0 to overwrite, 2 to archive, 1 to skip (0 blocked)."
        ),
        "{text}"
    );
}

#[test]
fn colour_only_when_asked() {
    let plan = plan_of(hub(), spoke());
    let plain = human::render(&plan, render::Options::default());
    assert!(!plain.contains('\x1b'));
    let coloured = human::render(
        &plan,
        render::Options {
            color: true,
            verbose: false,
        },
    );
    assert!(
        coloured.contains("\x1b[32m+\x1b[0m flag new-flag"),
        "create in green"
    );
    assert!(
        coloured.contains("\x1b[31m!\x1b[0m flag archived-there"),
        "blocked in red"
    );
}

#[test]
fn json_written_spoke_by_spoke_is_serde_json_pretty_byte_for_byte() {
    let mut plan = plan_of(hub(), spoke());
    // Diffs and reasons carry newlines, quotes and non-ASCII text.
    assert!(plan.spokes[0].actions.iter().any(|a| a.diff.is_some()));
    plan.spokes[0].actions[0].reason = Reason::Other("line\nbreak \"quoted\" → ünïcode".into());
    // Every optional part of an action and of a spoke, set and unset, every kind and verb.
    let kinds = [
        Kind::ContextField,
        Kind::TagType,
        Kind::Strategy,
        Kind::Segment,
        Kind::Flag,
    ];
    let verbs = [Verb::Create, Verb::Overwrite, Verb::Archive, Verb::Skip];
    for (i, (kind, verb)) in kinds
        .iter()
        .flat_map(|k| verbs.map(|v| (*k, v)))
        .enumerate()
    {
        plan.spokes[0].actions.push(Action {
            kind,
            name: format!("n\\{i} \"x\""),
            action: verb,
            reason: Reason::Other("r".into()),
            blocked: i % 2 == 0,
            depends_on: (0..i % 3).map(|j| (kinds[j], format!("d{j}"))).collect(),
            diff: (i % 4 == 1).then(|| "--- a\n+++ b\n@@ -1 +1 @@\n-\t1\n+2\n".into()),
            environments: (0..i % 3).map(|j| format!("env{j}")).collect(),
            notes: (0..(i + 1) % 3).map(|j| format!("note {j}")).collect(),
            kept: (0..i % 2).map(|j| format!("production.f{j}")).collect(),
            object: Default::default(),
            drift: (i % 3 == 1).then(|| crate::plan::Drift {
                origin: crate::plan::Origin::Spoke,
                spoke_changes: vec![crate::plan::Change {
                    by: format!("u\\{i}@example.com"),
                    at: "2026-11-30T14:02:11.123Z".into(),
                    event: i as i64,
                    kind: "feature-updated".into(),
                }],
                hub_changes: vec![],
            }),
        });
    }
    let mut failed = plan.spokes[0].clone();
    failed.name = "down".into();
    failed.fingerprint = None;
    failed.actions.clear();
    failed.error = Some(SpokeError {
        message: "unreachable:\n\"refused\"".into(),
        hint: Some("start it".into()),
    });
    plan.spokes.push(failed);
    let whole = |p: &Plan| format!("{}\n", serde_json::to_string_pretty(p).unwrap());
    for spokes in [0, 1, 3] {
        let mut p = plan.clone();
        p.spokes = plan.spokes.iter().cycle().take(spokes).cloned().collect();
        assert_eq!(p.to_json(), whole(&p), "{spokes} spokes");
        let back: Plan = serde_json::from_str(&p.to_json()).unwrap();
        assert_eq!(back, p);
    }
}

#[test]
fn a_dependency_cycle_in_a_hub_file_blocks_its_members_and_names_them() {
    let dep = |parent: &str| json!([{"feature": parent, "enabled": true}]);
    let mut a = flag(json!({"production": {"enabled": true, "strategies": [rollout("50", "a")]}}));
    a["dependencies"] = dep("b");
    let mut b = flag(json!({"production": {"enabled": true, "strategies": [rollout("50", "b")]}}));
    b["dependencies"] = dep("a");
    let mut c = flag(json!({"production": {"enabled": true, "strategies": [rollout("50", "c")]}}));
    c["dependencies"] = dep("a");
    let hub = state(json!({"flags": {"a": a, "b": b, "c": c}}));
    let plan = plan_of(hub, state(json!({})));
    for name in ["a", "b"] {
        assert_action(
            &plan,
            Kind::Flag,
            name,
            Verb::Skip,
            "dependency cycle: flag:a -> flag:b",
            true,
        );
    }
    assert_action(
        &plan,
        Kind::Flag,
        "c",
        Verb::Skip,
        "parent blocked: a",
        true,
    );
}

#[test]
fn renderings_of_the_review_copy_equal_those_of_the_whole_plan() {
    let mut plan = plan_of(hub(), spoke());
    for i in 0..25 {
        plan.spokes[0].actions.push(Action {
            kind: Kind::Flag,
            name: format!("same-{i:02}"),
            action: Verb::Skip,
            reason: Reason::Unchanged,
            blocked: false,
            depends_on: vec![],
            diff: None,
            environments: vec![],
            notes: vec![],
            kept: vec![],
            object: Default::default(),
            drift: None,
        });
    }
    for verbose in [false, true] {
        let options = render::Options {
            color: false,
            verbose,
        };
        let review = render::Review {
            hub: plan.hub.clone(),
            spokes: plan
                .spokes
                .iter()
                .map(|s| render::for_review(s.clone(), options))
                .collect(),
        };
        if !verbose {
            assert!(review.spokes[0].plan.actions.len() < plan.spokes[0].actions.len());
        }
        assert_eq!(
            human::render(&review, options),
            human::render(&plan, options)
        );
        assert_eq!(
            markdown::render(&review, options, markdown::COMMENT_LIMIT),
            markdown::render(&plan, options, markdown::COMMENT_LIMIT)
        );
    }
}

#[test]
fn a_hub_variant_without_stickiness_matches_the_default_the_server_stores() {
    let with = |stickiness: Option<&str>| {
        let mut strategy = rollout("50", "v");
        let mut variant = json!({"name": "a", "weight": 1000, "weight_type": "variable"});
        if let Some(s) = stickiness {
            variant["stickiness"] = json!(s);
        }
        strategy["variants"] = json!([variant]);
        state(
            json!({"flags": {"v": flag(json!({"production": {"enabled": true, "strategies": [strategy]}}))}}),
        )
    };
    let plan = plan_of(with(None), with(Some("default")));
    assert_action(&plan, Kind::Flag, "v", Verb::Skip, "unchanged", false);
    let plan = plan_of(with(None), with(Some("userId")));
    assert_eq!(find(&plan, Kind::Flag, "v").action, Verb::Overwrite);
}

/// A pruning fleet whose spoke holds `strays` selected flags the hub lacks, besides the one
/// flag both have (unless `hub_has_a_flag` is false: then the hub holds no flags at all).
fn pruning_fleet(extra: &str, strays: usize, hub_has_a_flag: bool) -> Plan {
    let topology = topology::parse(
        Path::new("flagfleet.toml"),
        &format!("[hub]\nfile = \"hub.json\"\n[select]\nnames = [\"app-*\"]\n[[spokes]]\nname = \"dc1\"\nfile = \"dc1.json\"\nprune = true\n{extra}"),
    )
    .unwrap();
    let kept = flag(json!({"production": {"enabled": false}}));
    let hub_flags = if hub_has_a_flag {
        json!({"app-kept": kept.clone()})
    } else {
        json!({})
    };
    let mut spoke_flags = serde_json::Map::new();
    spoke_flags.insert("app-kept".into(), kept.clone());
    for i in 0..strays {
        spoke_flags.insert(format!("app-stray-{i:03}"), kept.clone());
    }
    plan_with(
        &topology,
        state(json!({ "flags": hub_flags })),
        state(json!({ "flags": spoke_flags })),
    )
}

#[test]
fn a_plan_archiving_more_than_the_limit_is_refused_for_the_spoke() {
    // The default: 10 flags, or 10 % of the selected flags when that is more.
    assert_eq!(pruning_fleet("", 10, true).spokes[0].summary.archive, 10);
    let refused = &pruning_fleet("", 11, true).spokes[0];
    assert!(refused.actions.is_empty());
    assert_eq!(
        refused.error.as_ref().unwrap().message.lines().next(),
        Some("refusing to archive 11 flags, more than this spoke's limit of 10 (the default: 10 flags or 10 % of its 12 selected flags); nothing is planned for it")
    );
    assert_eq!(pruning_fleet("", 120, true).spokes[0].summary.archive, 0);
    assert!(pruning_fleet("", 120, true).spokes[0].error.is_some());

    // An explicit limit, lower or higher.
    let low = &pruning_fleet("max_archive = 2\n", 3, true).spokes[0];
    assert_eq!(
        low.error.as_ref().unwrap().message.lines().next(),
        Some("refusing to archive 3 flags, more than this spoke's limit of 2 (max_archive); nothing is planned for it")
    );
    assert_eq!(
        pruning_fleet("max_archive = 50\n", 40, true).spokes[0]
            .summary
            .archive,
        40
    );
}

#[test]
fn nothing_is_pruned_against_an_empty_hub() {
    let plan = pruning_fleet("max_archive = 1000\n", 5, false);
    assert_eq!(plan.spokes[0].summary.archive, 0);
    assert!(plan.spokes[0].error.is_none());
}

// Capability blocks: a hub of what not every Unleash version holds, planned against
// empty spokes of each lab version: what the spoke's version lacks is a blocked skip
// naming the version and the capability, what uses it is blocked in turn, and nothing is
// blocked when the spoke's version is unknown.

/// A hub with something each older Unleash cannot hold: links, a sunset flag, REGEX in a
/// flag and in a segment, the built-in `userWithId`.
fn version_hub() -> State {
    state(json!({
        "context_fields": {"userId": {"builtin": true, "stickiness": false}},
        "segments": {
            "by-regex": {"constraints": [{"context_name": "userId", "operator": "REGEX", "value": "^a"}]}
        },
        "strategies": {
            "flexibleRollout": {"builtin": true}, "default": {"builtin": true},
            "userWithId": {"builtin": true}
        },
        "flags": {
            "linked": {"type": "release", "impression_data": false, "stale": false,
                       "links": [{"url": "https://tracker.example.invalid/1"}],
                       "environments": {"production": {"enabled": false}}},
            "child-of-linked": {"type": "release", "impression_data": false, "stale": false,
                "dependencies": [{"feature": "linked", "enabled": true}],
                "environments": {"production": {"enabled": false}}},
            "sunny": {"type": "sunset", "impression_data": false, "stale": false,
                      "environments": {"production": {"enabled": false}}},
            "regex-flag": flag(json!({"production": {"enabled": true, "strategies": [
                {"name": "default", "constraints": [{"context_name": "userId", "operator": "REGEX", "value": "^a"}]}]}})),
            "regex-segment": flag(json!({"production": {"enabled": true, "strategies": [
                {"name": "default", "segments": ["by-regex"]}]}})),
            "by-user": flag(json!({"production": {"enabled": true, "strategies": [
                {"name": "userWithId", "parameters": {"userIds": "a,b"}}]}})),
            "plain": flag(json!({"production": {"enabled": true, "strategies": [rollout("5", "plain")]}}))
        }
    }))
}

/// The plan of an empty spoke of `version` against `hub`; a 6.x spoke has `userWithId`.
fn plan_for_version(hub: &State, version: Option<crate::capability::Version>) -> Plan {
    let mut spoke = state(json!({}));
    if version.is_some_and(|v| v.major < 7) {
        spoke
            .strategies
            .insert("userWithId".into(), hub.strategies["userWithId"].clone());
    }
    spoke.unleash_version = version;
    plan_of(hub.clone(), spoke)
}

fn cannot_hold(v: &str, what: &str) -> String {
    format!("the spoke's Unleash {v} cannot hold: {what}")
}

fn blocked(plan: &Plan, kind: Kind, name: &str, reason: &str) {
    assert_action(plan, kind, name, Verb::Skip, reason, true);
}

/// A 6.x spoke: links, REGEX (and what uses a REGEX segment) and sunset flags are blocked
/// at plan time; the rest is created.
#[test]
fn a_6x_spoke_blocks_links_regex_and_sunset_at_plan_time() {
    use crate::capability::Version;
    let hub = version_hub();
    let v6 = plan_for_version(&hub, Some(Version::new(6, 10, 1)));
    assert_eq!(v6.spokes[0].unleash_version.as_deref(), Some("6.10.1"));
    blocked(
        &v6,
        Kind::Flag,
        "linked",
        &cannot_hold("6.10.1", "flag links"),
    );
    blocked(&v6, Kind::Flag, "child-of-linked", "parent blocked: linked");
    blocked(
        &v6,
        Kind::Flag,
        "sunny",
        &cannot_hold("6.10.1", "flag type sunset"),
    );
    let regex = cannot_hold("6.10.1", "constraint operator REGEX");
    blocked(&v6, Kind::Flag, "regex-flag", &regex);
    blocked(&v6, Kind::Segment, "by-regex", &regex);
    blocked(
        &v6,
        Kind::Flag,
        "regex-segment",
        &format!("needs segment by-regex ({regex}; missing on spoke)"),
    );
    assert_action(
        &v6,
        Kind::Flag,
        "by-user",
        Verb::Create,
        "missing on spoke",
        false,
    );
    assert_action(
        &v6,
        Kind::Flag,
        "plain",
        Verb::Create,
        "missing on spoke",
        false,
    );
}

/// A 7.x spoke: sunset flags and the built-in `userWithId` (and what uses it) are blocked.
#[test]
fn a_7x_spoke_blocks_sunset_and_user_with_id() {
    use crate::capability::Version;
    let hub = version_hub();
    let v7 = plan_for_version(&hub, Some(Version::new(7, 6, 5)));
    blocked(
        &v7,
        Kind::Flag,
        "sunny",
        &cannot_hold("7.6.5", "flag type sunset"),
    );
    let userid = cannot_hold("7.6.5", "built-in strategy userWithId");
    blocked(&v7, Kind::Strategy, "userWithId", &userid);
    blocked(
        &v7,
        Kind::Flag,
        "by-user",
        &format!("needs strategy userWithId ({userid}; missing on spoke)"),
    );
    for name in ["linked", "child-of-linked", "regex-flag", "regex-segment"] {
        assert_action(
            &v7,
            Kind::Flag,
            name,
            Verb::Create,
            "missing on spoke",
            false,
        );
    }
}

/// A 7.x server upgraded from 6.x that kept `userWithId`: nothing blocks it.
#[test]
fn a_7x_spoke_upgraded_from_6x_keeps_user_with_id() {
    use crate::capability::Version;
    let hub = version_hub();
    let mut upgraded = state(json!({}));
    upgraded
        .strategies
        .insert("userWithId".into(), hub.strategies["userWithId"].clone());
    upgraded.unleash_version = Some(Version::new(7, 6, 5));
    let upgraded = plan_of(hub.clone(), upgraded);
    assert_action(
        &upgraded,
        Kind::Flag,
        "by-user",
        Verb::Create,
        "missing on spoke",
        false,
    );
    assert!(upgraded.spokes[0]
        .actions
        .iter()
        .all(|a| a.name != "userWithId"));
}

/// An 8.x spoke holds sunset flags; it lacks `userWithId`.
#[test]
fn an_8x_spoke_holds_sunset_flags() {
    use crate::capability::Version;
    let hub = version_hub();
    let v8 = plan_for_version(&hub, Some(Version::new(8, 2, 0)));
    assert_action(
        &v8,
        Kind::Flag,
        "sunny",
        Verb::Create,
        "missing on spoke",
        false,
    );
    blocked(
        &v8,
        Kind::Strategy,
        "userWithId",
        &cannot_hold("8.2.0", "built-in strategy userWithId"),
    );
}

/// Unknown version: planned as before (the built-in strategy the spoke lacks is still
/// found by name).
#[test]
fn a_spoke_of_unknown_version_is_planned_as_before() {
    let hub = version_hub();
    let unknown = plan_for_version(&hub, None);
    assert_eq!(unknown.spokes[0].unleash_version, None);
    for name in ["linked", "sunny", "regex-flag", "regex-segment"] {
        assert_action(
            &unknown,
            Kind::Flag,
            name,
            Verb::Create,
            "missing on spoke",
            false,
        );
    }
    blocked(
        &unknown,
        Kind::Strategy,
        "userWithId",
        "built-in strategy of the hub's Unleash that the spoke's Unleash does not have",
    );
}

/// A hub and a spoke for the `keep` cases: the spoke turned `kill-search` off, runs
/// `checkout` at its own rollout and `welcome` with its own description and rollout.
fn kept_states() -> (State, State) {
    let hub = state(json!({"flags": {
        "kill-search": flag(json!({"production": {"enabled": true}})),
        "checkout": {"type": "release", "impression_data": false, "stale": false,
            "description": "hub text",
            "environments": {"production": {"enabled": true, "strategies": [rollout("50", "checkout")]}}},
        "welcome": flag(json!({"production": {"enabled": true, "strategies": [rollout("100", "welcome")]}})),
        "welcome-new": flag(json!({"production": {"enabled": false}}))
    }}));
    let spoke = state(json!({"flags": {
        "kill-search": flag(json!({"production": {"enabled": false}})),
        "checkout": {"type": "release", "impression_data": false, "stale": false,
            "description": "spoke text",
            "environments": {"production": {"enabled": true, "strategies": [rollout("10", "checkout")]}}},
        "welcome": {"type": "release", "impression_data": false, "stale": false,
            "description": "ours",
            "environments": {"production": {"enabled": false, "strategies": [rollout("5", "welcome")]}}}
    }}));
    (hub, spoke)
}

const KEEP_TOPOLOGY: &str = r#"
[hub]
file = "hub.json"

[[spokes]]
name = "dc1"
file = "dc1.json"

[[spokes.keep]]
flags = ["kill-*"]
environment = "production"
fields = ["enabled"]

[[spokes.keep]]
flags = ["checkout"]
fields = ["parameters.rollout"]

[[spokes.keep]]
flags = ["welcome*"]
fields = ["*"]
"#;

#[test]
fn kept_fields_are_left_as_the_spoke_has_them() {
    let topology = topology::parse(Path::new("fleet/flagfleet.toml"), KEEP_TOPOLOGY).unwrap();
    let (hub, spoke) = kept_states();
    let plan = plan_with(&topology, hub, spoke);
    // Differs only in a kept field: a skip that says so, not blocked.
    assert_action(
        &plan,
        Kind::Flag,
        "kill-search",
        Verb::Skip,
        "kept by spoke: production.enabled",
        false,
    );
    // Differs in a kept field and another: an overwrite of the other only.
    let checkout = find(&plan, Kind::Flag, "checkout");
    assert_eq!(checkout.action, Verb::Overwrite);
    assert_eq!(checkout.reason.to_string(), "differs: description");
    assert_eq!(checkout.kept, ["production.parameters.rollout"]);
    let diff = checkout.diff.as_deref().unwrap();
    assert!(!diff.contains("\"50\""), "{diff}");
    assert!(diff.contains("+  \"description\": \"hub text\""), "{diff}");
    // `*`: created when missing, never overwritten.
    assert_action(
        &plan,
        Kind::Flag,
        "welcome",
        Verb::Skip,
        "kept by spoke: *",
        false,
    );
    assert_action(
        &plan,
        Kind::Flag,
        "welcome-new",
        Verb::Create,
        "missing on spoke",
        false,
    );
    // The JSON carries the kept fields, and reads back as it was written.
    let json = plan.to_json();
    assert!(
        json.contains("\"kept\": [\n            \"production.parameters.rollout\"\n          ]"),
        "{json}"
    );
    let back: Plan = serde_json::from_str(&json).unwrap();
    assert_eq!(back, plan);
}

#[test]
fn without_keep_the_same_states_are_overwritten() {
    let topology = topology::parse(
        Path::new("fleet/flagfleet.toml"),
        "[hub]\nfile = \"hub.json\"\n[[spokes]]\nname = \"dc1\"\nfile = \"dc1.json\"\n",
    )
    .unwrap();
    let (hub, spoke) = kept_states();
    let plan = plan_with(&topology, hub, spoke);
    for name in ["kill-search", "checkout", "welcome"] {
        let a = find(&plan, Kind::Flag, name);
        assert_eq!((a.action, a.kept.len()), (Verb::Overwrite, 0), "{name}");
    }
}

#[test]
fn creates_and_overwrites_carry_what_apply_writes_and_nothing_else_does() {
    let plan = plan_of(hub(), spoke());
    for a in &plan.spokes[0].actions {
        let writes = a.changes() && a.action != Verb::Archive;
        let carried = a.object.get().map(|o| match o {
            Object::ContextField(_) => Kind::ContextField,
            Object::TagType(_) => Kind::TagType,
            Object::Strategy(_) => Kind::Strategy,
            Object::Segment(_) => Kind::Segment,
            Object::Flag(_) => Kind::Flag,
        });
        let expected = writes.then_some(a.kind);
        assert_eq!(carried, expected, "{}:{} {:?}", a.kind, a.name, a.action);
    }
    // The flag as the spoke should hold it: the spoke's override applied, not the hub's.
    let Some(Object::Flag(drifted)) = find(&plan, Kind::Flag, "drifted").object.get() else {
        panic!("the overwrite of `drifted` carries no flag");
    };
    let rollouts: Vec<&str> = drifted
        .environments
        .iter()
        .flat_map(|(_, e)| &e.strategies)
        .filter_map(|s| s.parameters.get("rollout").map(String::as_str))
        .collect();
    assert_eq!(rollouts, ["10"]);
}

#[test]
fn equal_objects_of_several_spokes_plans_are_held_once() {
    let shared = SharedObjects::default();
    let actions = || plan_of(hub(), spoke()).spokes.remove(0).actions;
    let (mut first, mut second, mut other) = (actions(), actions(), actions());
    fn drifted(actions: &mut [Action]) -> &mut Carried {
        let a = actions.iter_mut().find(|a| a.name == "drifted");
        &mut a.expect("an action for `drifted`").object
    }
    // Another spoke may get the flag otherwise (an override of its own, say).
    let Some(Object::Flag(flag)) = drifted(&mut other).get().cloned() else {
        panic!("the overwrite of `drifted` carries no flag");
    };
    let mut flag = crate::state::model::Flag::clone(&flag);
    flag.description = Some("another spoke's".into());
    *drifted(&mut other) = Carried(Some(Arc::new(Object::Flag(Arc::new(flag)))));
    let same = |a: &Carried, b: &Carried| match (&a.0, &b.0) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        _ => false,
    };
    // Planned apart, the same flag is two objects until shared.
    assert!(!same(drifted(&mut first), drifted(&mut second)));
    for actions in [&mut first, &mut second, &mut other] {
        shared.share(actions);
    }
    let carried = first.iter().filter(|a| a.object.0.is_some()).count();
    assert!(carried > 1, "{first:?}");
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(a.object.0.is_some(), same(&a.object, &b.object), "{a:?}");
    }
    assert!(!same(drifted(&mut first), drifted(&mut other)));
    assert_ne!(drifted(&mut first).get(), drifted(&mut other).get());
}

#[test]
fn a_flag_written_as_the_hub_has_it_is_the_hubs_own_not_a_copy() {
    // Holding a copy per changing flag doubled apply's memory on large fleets: a flag the
    // spoke gets unchanged from the hub is carried as the hub's own allocation.
    let topology = topology::parse(Path::new("fleet/flagfleet.toml"), TOPOLOGY).unwrap();
    let (hub, spoke) = (hub(), spoke());
    let fingerprint = crate::state::fingerprint(&spoke);
    let dc1 = topology.spoke("dc1").unwrap();
    let plan = plan_one(&topology, &hub, dc1, Ok(&spoke), Some(fingerprint));
    let carried = |name: &str| {
        let a = plan
            .actions
            .iter()
            .find(|a| a.kind == Kind::Flag && a.name == name);
        match a.and_then(|a| a.object.get()) {
            Some(Object::Flag(f)) => f.clone(),
            other => panic!("`{name}` carries {other:?}"),
        }
    };
    assert!(Arc::ptr_eq(&carried("new-flag"), &hub.flags["new-flag"]));
    // `drifted` has an override on dc1: the spoke's own version is a copy.
    let drifted = carried("drifted");
    assert!(!Arc::ptr_eq(&drifted, &hub.flags["drifted"]));
    assert_ne!(*drifted, *hub.flags["drifted"]);
}
