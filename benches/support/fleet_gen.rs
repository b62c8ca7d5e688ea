//! Synthetic, deterministic fleets for the planner benchmark and `examples/gen_fleet.rs`:
//! a hub of N flags of realistic shape (1-3 strategies with constraints, segments, tags,
//! a few dependencies) and spokes on which 10 % of the flags have drifted, in memory or
//! as snapshot files.

use flagfleet::state::model::{
    Constraint, ContextField, Dependency, Flag, FlagEnvironment, LegalValue, Segment, SmallMap,
    State, Strategy, StrategyDefinition, Tag, TagType, Variant,
};

const SEGMENTS: usize = 20;

/// Writes `hub.json`, `spoke-00.json`... and a `flagfleet.toml` naming them into `dir`:
/// a hub of `flags` flags and `spokes` spokes.
#[allow(dead_code)] // Not every user of this module writes files.
pub fn write_fleet(dir: &std::path::Path, flags: usize, spokes: usize) -> std::io::Result<()> {
    use flagfleet::state::snapshot::{write_atomic, Snapshot, SnapshotSource};
    let write = |name: &str, state| {
        let source = SnapshotSource {
            instance: name.into(),
            location: "generated".into(),
            unleash_version: None,
        };
        write_atomic(
            &dir.join(format!("{name}.json")),
            &Snapshot::new(state, source).to_json(),
        )
    };
    std::fs::create_dir_all(dir)?;
    let hub = hub(flags);
    for i in 0..spokes {
        write(&format!("spoke-{i:02}"), spoke(&hub, i))?;
    }
    write("hub", hub)?;
    std::fs::write(dir.join("flagfleet.toml"), topology(spokes))
}

/// A hub with `n` flags.
pub fn hub(n: usize) -> State {
    let mut s = State {
        project: "default".into(),
        environments: vec!["production".into()],
        ..State::default()
    };
    for name in ["flexibleRollout", "default"] {
        s.strategies.insert(
            name.into(),
            StrategyDefinition {
                builtin: true,
                ..Default::default()
            },
        );
    }
    s.strategies.insert(
        "by-tenant".into(),
        StrategyDefinition {
            title: Some("By tenant".into()),
            ..Default::default()
        },
    );
    s.tag_types.insert(
        "simple".into(),
        TagType {
            builtin: true,
            ..Default::default()
        },
    );
    s.tag_types.insert("team".into(), TagType::default());
    for field in ["region", "tenant", "plan"] {
        s.context_fields.insert(
            field.into(),
            ContextField {
                legal_values: (0..10)
                    .map(|i| LegalValue {
                        value: format!("{field}-{i}"),
                        description: None,
                    })
                    .collect(),
                ..Default::default()
            },
        );
    }
    for i in 0..SEGMENTS {
        s.segments.insert(
            format!("segment-{i:02}"),
            Segment {
                constraints: vec![constraint("plan", &[&format!("plan-{}", i % 10)])],
                ..Default::default()
            },
        );
    }
    for i in 0..n {
        let name = format!("flag-{i:06}");
        let mut strategies = vec![Strategy {
            name: "flexibleRollout".into(),
            parameters: SmallMap::from_iter([
                ("groupId".to_string(), name.clone()),
                ("rollout".to_string(), format!("{}", i % 100)),
                ("stickiness".to_string(), "default".to_string()),
            ]),
            constraints: vec![constraint("region", &["region-1", "region-2"])],
            segments: vec![format!("segment-{:02}", i % SEGMENTS)],
            variants: if i % 4 == 0 {
                vec![
                    Variant {
                        name: "a".into(),
                        weight: 500,
                        weight_type: "variable".into(),
                        ..Default::default()
                    },
                    Variant {
                        name: "b".into(),
                        weight: 500,
                        weight_type: "variable".into(),
                        ..Default::default()
                    },
                ]
            } else {
                vec![]
            },
            ..Default::default()
        }];
        if i % 3 != 0 {
            strategies.push(Strategy {
                name: "by-tenant".into(),
                parameters: SmallMap::from_iter([("tenants".to_string(), "t1,t2".to_string())]),
                constraints: vec![constraint("tenant", &["tenant-3"])],
                ..Default::default()
            });
        }
        if i % 5 == 0 {
            strategies.push(Strategy {
                name: "default".into(),
                disabled: true,
                ..Default::default()
            });
        }
        let flag = Flag {
            kind: "release".into(),
            description: Some(format!("flag number {i}")),
            tags: [Tag {
                kind: "team".into(),
                value: format!("team-{}", i % 12),
            }]
            .into(),
            // Every 50th flag depends on the flag before its block (a parent without parents).
            dependencies: if i % 50 == 49 {
                vec![Dependency {
                    feature: format!("flag-{:06}", i - 49),
                    enabled: true,
                    variants: vec![],
                }]
            } else {
                vec![]
            },
            environments: SmallMap::from_iter([(
                "production".to_string(),
                FlagEnvironment {
                    enabled: i % 2 == 0,
                    strategies,
                    variants: vec![],
                },
            )]),
            ..Default::default()
        };
        s.flags.insert(name, std::sync::Arc::new(flag));
    }
    s
}

/// A spoke holding the hub's state with every tenth flag drifted (another rollout).
pub fn spoke(hub: &State, seed: usize) -> State {
    let mut s = hub.clone();
    for (i, flag) in s.flags.values_mut().enumerate() {
        if (i + seed) % 10 == 0 {
            if let Some(env) = std::sync::Arc::make_mut(flag)
                .environments
                .get_mut("production")
            {
                env.strategies[0]
                    .parameters
                    .insert("rollout".into(), "7".into());
            }
        }
    }
    s
}

/// A topology of file instances: `hub.json` and `spoke-NN.json`.
pub fn topology(spokes: usize) -> String {
    let mut t = String::from("[hub]\nfile = \"hub.json\"\n");
    for i in 0..spokes {
        t.push_str(&format!(
            "[[spokes]]\nname = \"spoke-{i:02}\"\nfile = \"spoke-{i:02}.json\"\n"
        ));
    }
    t
}

fn constraint(field: &str, values: &[&str]) -> Constraint {
    Constraint {
        context_name: field.into(),
        operator: "IN".into(),
        values: values.iter().map(|v| v.to_string()).collect(),
        ..Default::default()
    }
}
