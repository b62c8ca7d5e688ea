//! What a spoke should hold: the selected hub flags in the spoke's environment names, with
//! the spoke's overrides applied, and the scaffolding those flags use.
//!
//! The spoke's state is looked at for one thing only: the fields a `[[spokes.keep]]` rule
//! says the spoke owns are taken from it, as it has them.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::state::model::{ContextField, Flag, LegalValue, Segment, State, Strategy};
use crate::topology::{KeptField, Spoke, Topology};

/// The selected, mapped and overridden hub flags for one spoke.
#[derive(Debug, Clone, Default)]
pub struct Desired<'h> {
    /// Flags by name, environments renamed to the spoke's and limited to synced ones:
    /// the hub's own flag where that changes nothing (no copy), a changed copy otherwise.
    /// Fields the spoke keeps are as the spoke has them.
    pub flags: BTreeMap<&'h str, Arc<Flag>>,
    /// For flags with kept fields that differ from the hub's: those fields, as
    /// `environment.field` (`production.enabled`) or the flag's own (`description`), or
    /// `*` for a whole flag kept.
    pub kept: BTreeMap<&'h str, Vec<String>>,
}

/// Selects, maps and overrides the hub's flags for `spoke`, and keeps the fields the
/// spoke owns as `actual` (the spoke's state) has them.
pub fn desired<'h>(
    topology: &Topology,
    hub: &'h State,
    spoke: &Spoke,
    actual: &State,
) -> Desired<'h> {
    // Built from the hub's name order in one go rather than by inserting each flag.
    let mut flags = Vec::new();
    let mut kept = BTreeMap::new();
    for (name, flag) in &hub.flags {
        if !selected(topology, spoke, name, flag) {
            continue;
        }
        let as_is = flag.environments.len() == spoke.environments.len()
            && spoke
                .environments
                .iter()
                .all(|(h, s)| h == s && flag.environments.contains_key(h))
            && !spoke.overrides.iter().any(|o| o.matches(name));
        let have = actual
            .flags
            .get(name)
            .filter(|_| spoke.keep.iter().any(|k| k.matches(name)));
        if as_is && have.is_none() {
            flags.push((name.as_str(), Arc::clone(flag)));
            continue;
        }
        let mut mapped = Flag::clone(flag);
        mapped.environments = spoke
            .environments
            .iter()
            .filter_map(|(hub_env, spoke_env)| {
                flag.environments
                    .get(hub_env)
                    .map(|e| (spoke_env.clone(), e.clone()))
            })
            .collect();
        apply_overrides(spoke, name, &mut mapped);
        if let Some(have) = have {
            let fields = keep_spoke_fields(spoke, name, &mut mapped, have);
            if !fields.is_empty() {
                kept.insert(name.as_str(), fields);
            }
        }
        flags.push((name.as_str(), Arc::new(mapped)));
    }
    Desired {
        flags: BTreeMap::from_iter(flags),
        kept,
    }
}

/// Sets the fields of `flag` that the spoke's keep rules name to what the spoke has
/// (`have`); returns those that differed, as [`Desired::kept`] names them.
fn keep_spoke_fields(spoke: &Spoke, name: &str, flag: &mut Flag, have: &Flag) -> Vec<String> {
    let mut kept = Vec::new();
    let mut keep = |label: String, differs: bool| {
        if differs && !kept.contains(&label) {
            kept.push(label);
        }
    };
    for rule in spoke.keep.iter().filter(|k| k.matches(name)) {
        for field in &rule.fields {
            match field {
                KeptField::All => {
                    let mut same = flag.clone();
                    same.stale = have.stale;
                    keep("*".to_string(), &same != have);
                    *flag = have.clone();
                }
                KeptField::Description => {
                    keep(field.to_string(), flag.description != have.description);
                    flag.description.clone_from(&have.description);
                }
                KeptField::Tags => {
                    keep(field.to_string(), flag.tags != have.tags);
                    flag.tags.clone_from(&have.tags);
                }
                KeptField::Links => {
                    keep(field.to_string(), flag.links != have.links);
                    flag.links.clone_from(&have.links);
                }
                KeptField::Dependencies => {
                    keep(field.to_string(), flag.dependencies != have.dependencies);
                    flag.dependencies.clone_from(&have.dependencies);
                }
                KeptField::Enabled
                | KeptField::Strategies
                | KeptField::Variants
                | KeptField::Parameter(_) => {
                    for (env_name, env) in flag.environments.iter_mut() {
                        let Some(theirs) = have.environments.get(env_name) else {
                            continue;
                        };
                        if !rule.in_environment(env_name) {
                            continue;
                        }
                        let label = format!("{env_name}.{field}");
                        match field {
                            KeptField::Enabled => {
                                keep(label, env.enabled != theirs.enabled);
                                env.enabled = theirs.enabled;
                            }
                            KeptField::Strategies => {
                                keep(label, env.strategies != theirs.strategies);
                                env.strategies.clone_from(&theirs.strategies);
                            }
                            KeptField::Variants => {
                                keep(label, env.variants != theirs.variants);
                                env.variants.clone_from(&theirs.variants);
                            }
                            KeptField::Parameter(p) => {
                                // Strategy by strategy at the same place and of the same
                                // kind: the spoke's value where both have the parameter.
                                let mut differs = false;
                                for (ours, theirs) in
                                    env.strategies.iter_mut().zip(&theirs.strategies)
                                {
                                    if ours.name != theirs.name {
                                        continue;
                                    }
                                    if let (Some(slot), Some(value)) =
                                        (ours.parameters.get_mut(p), theirs.parameters.get(p))
                                    {
                                        differs |= slot != value;
                                        slot.clone_from(value);
                                    }
                                }
                                keep(label, differs);
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
    }
    kept
}

/// Where spokes that write one server (or file) and project would write a flag
/// differently into one of its environments (their overrides or mappings differ): each
/// apply undoes what the other wrote, and neither plan is ever empty. One text per pair of
/// spokes, naming the first flags.
pub fn disagreements(topology: &Topology, hub: &State, spokes: &[&Spoke]) -> Vec<String> {
    let sharing = Topology::sharing_a_place(spokes.iter().copied());
    let empty = State::default();
    let shared: Vec<(&Spoke, Desired<'_>)> = spokes
        .iter()
        .filter(|s| sharing.contains(&s.instance.name))
        .map(|s| (*s, desired(topology, hub, s, &empty)))
        .collect();
    let mut found = Vec::new();
    for (i, (a, wants_a)) in shared.iter().enumerate() {
        for (b, wants_b) in &shared[i + 1..] {
            let place = a.instance.place();
            if place != b.instance.place() || a.instance.project != b.instance.project {
                continue;
            }
            let flags: Vec<&str> = wants_a
                .flags
                .iter()
                .filter(|(name, fa)| {
                    wants_b.flags.get(*name).is_some_and(|fb| {
                        fa.environments
                            .iter()
                            .any(|(env, ea)| fb.environments.get(env).is_some_and(|eb| eb != ea))
                            // A flag's own fields are one per project: they disagree
                            // when the two keep different ones as the spoke has them.
                            || own_fields_kept(a, name) != own_fields_kept(b, name)
                    })
                })
                .map(|(name, _)| *name)
                .collect();
            if flags.is_empty() {
                continue;
            }
            let shown = flags.len().min(3);
            let more = match flags.len() - shown {
                0 => String::new(),
                n => format!(" and {n} more"),
            };
            found.push(format!(
                "spokes {} and {} write {}{more} differently on {} (project {}): other overrides in one environment, or other fields kept as the spoke has them; each apply undoes what the other wrote: give them disjoint `select`s, or the same overrides and `keep` rules",
                a.instance.name,
                b.instance.name,
                flags[..shown].join(", "),
                a.instance.location,
                a.instance.project,
            ));
        }
    }
    found
}

/// The flag's own fields (not an environment's) that `spoke` keeps as it has them.
fn own_fields_kept<'s>(spoke: &'s Spoke, name: &str) -> Vec<&'s KeptField> {
    let mut fields: Vec<&KeptField> = spoke
        .keep
        .iter()
        .filter(|k| k.matches(name))
        .flat_map(|k| k.fields.iter())
        .filter(|f| {
            matches!(
                f,
                KeptField::Description
                    | KeptField::Tags
                    | KeptField::Links
                    | KeptField::Dependencies
                    | KeptField::All
            )
        })
        .collect();
    fields.sort();
    fields.dedup();
    fields
}

/// Whether the hub flag `name` is synced to `spoke` (hub selection, then the spoke's).
pub fn selected(topology: &Topology, spoke: &Spoke, name: &str, flag: &Flag) -> bool {
    let tags = || {
        flag.tags
            .iter()
            .map(|t| (t.kind.as_str(), t.value.as_str()))
    };
    topology.select.matches(name, tags())
        && spoke
            .select
            .as_ref()
            .is_none_or(|s| s.matches(name, tags()))
}

fn apply_overrides(spoke: &Spoke, name: &str, flag: &mut Flag) {
    for o in spoke.overrides.iter().filter(|o| o.matches(name)) {
        for (env_name, env) in flag.environments.iter_mut() {
            if o.environment.as_ref().is_some_and(|e| e != env_name) {
                continue;
            }
            if let Some(enabled) = o.enabled {
                env.enabled = enabled;
            }
            for strategy in &mut env.strategies {
                for (key, value) in &o.parameters {
                    if let Some(slot) = strategy.parameters.get_mut(key) {
                        slot.clone_from(value);
                    }
                }
            }
        }
    }
}

/// The scaffolding and parent flags one flag (or segment) needs on a spoke, by name
/// (borrowed from the flag); each list sorted, without repeats.
///
/// Sorted vectors rather than sets: a flag uses a handful of names, and a plan computes
/// this for every flag of every spoke.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uses<'a> {
    /// Context fields named in constraints, stickiness and variant stickiness.
    pub context_fields: Vec<&'a str>,
    /// Segments used by strategies.
    pub segments: Vec<&'a str>,
    /// Strategy definitions used.
    pub strategies: Vec<&'a str>,
    /// Tag types of the flag's tags.
    pub tag_types: Vec<&'a str>,
    /// Parent flags.
    pub parents: Vec<&'a str>,
}

/// The names, sorted, each once.
pub fn sorted_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut names: Vec<&str> = names.into_iter().collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Stickiness values that are not context fields.
const NOT_CONTEXT: &[&str] = &["default", "random", ""];

/// What `flag` uses (context fields used only inside segments are the segments' own use).
pub fn flag_uses(flag: &Flag) -> Uses<'_> {
    let mut uses = Uses::default();
    for env in flag.environments.values() {
        for s in &env.strategies {
            strategy_uses(s, &mut uses);
        }
        for v in &env.variants {
            stickiness(v.stickiness.as_deref(), &mut uses.context_fields);
            for o in &v.overrides {
                uses.context_fields.push(&o.context_name);
            }
        }
    }
    Uses {
        context_fields: sorted_names(uses.context_fields),
        segments: sorted_names(uses.segments),
        strategies: sorted_names(uses.strategies),
        tag_types: sorted_names(flag.tags.iter().map(|t| t.kind.as_str())),
        parents: sorted_names(flag.dependencies.iter().map(|d| d.feature.as_str())),
    }
}

fn strategy_uses<'a>(s: &'a Strategy, uses: &mut Uses<'a>) {
    uses.strategies.push(&s.name);
    uses.segments.extend(s.segments.iter().map(String::as_str));
    for c in &s.constraints {
        uses.context_fields.push(&c.context_name);
    }
    stickiness(
        s.parameters.get("stickiness").map(String::as_str),
        &mut uses.context_fields,
    );
    for v in &s.variants {
        stickiness(v.stickiness.as_deref(), &mut uses.context_fields);
    }
}

fn stickiness<'a>(value: Option<&'a str>, out: &mut Vec<&'a str>) {
    if let Some(v) = value.filter(|v| !NOT_CONTEXT.contains(v)) {
        out.push(v);
    }
}

/// Context fields a segment's constraints use.
pub fn segment_uses(segment: &Segment) -> Vec<&str> {
    sorted_names(segment.constraints.iter().map(|c| c.context_name.as_str()))
}

/// The hub's definition of a context field with the spoke's extra legal values kept
/// (legal values are extended, never narrowed); also returns those spoke-only values.
pub fn merge_context_field(
    hub: &ContextField,
    spoke: Option<&ContextField>,
) -> (ContextField, Vec<String>) {
    let mut merged = hub.clone();
    let mut spoke_only = Vec::new();
    if let Some(spoke) = spoke {
        for lv in &spoke.legal_values {
            if !merged.legal_values.iter().any(|h| h.value == lv.value) {
                spoke_only.push(lv.value.clone());
                merged.legal_values.push(LegalValue {
                    value: lv.value.clone(),
                    description: lv.description.clone(),
                });
            }
        }
        merged.legal_values.sort();
        merged.builtin = spoke.builtin;
        merged.project.clone_from(&spoke.project);
    }
    (merged, spoke_only)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legal_values_are_extended_never_narrowed() {
        let lv = |v: &str| LegalValue {
            value: v.into(),
            description: None,
        };
        let hub = ContextField {
            legal_values: vec![lv("eu"), lv("us")],
            ..ContextField::default()
        };
        let spoke = ContextField {
            legal_values: vec![lv("emea"), lv("eu")],
            ..ContextField::default()
        };
        let (merged, spoke_only) = merge_context_field(&hub, Some(&spoke));
        let values: Vec<&str> = merged
            .legal_values
            .iter()
            .map(|l| l.value.as_str())
            .collect();
        assert_eq!(values, ["emea", "eu", "us"]);
        assert_eq!(spoke_only, ["emea"]);
    }

    #[test]
    fn spokes_of_one_server_that_would_write_a_flag_differently_are_named() {
        use crate::state::model::{FlagEnvironment, Strategy};
        let topology = |b_extra: &str| {
            let text = format!(
                "[hub]\nfile = \"hub.json\"\n\
                 [[spokes]]\nname = \"a\"\nurl = \"https://eu.unleash.invalid\"\ntoken_env = \"T\"\n\
                 [[spokes]]\nname = \"b\"\nurl = \"https://eu.unleash.invalid\"\ntoken_env = \"T\"\n{b_extra}\n\
                 [[spokes]]\nname = \"c\"\nurl = \"https://us.unleash.invalid\"\ntoken_env = \"T\"\n\
                 [[spokes.overrides]]\nflags = [\"*\"]\nenabled = false\n"
            );
            crate::topology::parse(std::path::Path::new("flagfleet.toml"), &text).unwrap()
        };
        let mut hub = State {
            project: "default".into(),
            environments: vec!["production".into()],
            ..State::default()
        };
        for name in ["checkout", "search"] {
            let mut flag = Flag::default();
            flag.environments.insert(
                "production".into(),
                FlagEnvironment {
                    enabled: true,
                    strategies: vec![Strategy {
                        name: "default".into(),
                        ..Strategy::default()
                    }],
                    ..FlagEnvironment::default()
                },
            );
            hub.flags.insert(name.into(), Arc::new(flag));
        }
        let found = |t: &Topology| {
            let spokes: Vec<&Spoke> = t.spokes.iter().collect();
            disagreements(t, &hub, &spokes)
        };
        // The same writes (c, on another server, differs): nothing to say.
        assert!(found(&topology("")).is_empty());
        // b switches checkout off where a switches it on.
        let t = topology("[[spokes.overrides]]\nflags = [\"checkout\"]\nenabled = false");
        assert_eq!(
            found(&t),
            ["spokes a and b write checkout differently on https://eu.unleash.invalid (project default): other overrides in one environment, or other fields kept as the spoke has them; each apply undoes what the other wrote: give them disjoint `select`s, or the same overrides and `keep` rules"]
        );
        // Disjoint selections, or other environments, do not meet.
        let t = topology("select = { names = [\"search\"] }\n[[spokes.overrides]]\nflags = [\"checkout\"]\nenabled = false");
        assert!(found(&t).is_empty());
        let t = topology("environments = { production = \"development\" }\n[[spokes.overrides]]\nflags = [\"checkout\"]\nenabled = false");
        assert!(found(&t).is_empty());
        // The flag's own fields are shared whatever the environments: b keeps the
        // description of search as the spoke has it, a writes the hub's.
        let t = topology("environments = { production = \"development\" }\n[[spokes.keep]]\nflags = [\"search\"]\nfields = [\"description\"]");
        assert_eq!(found(&t).len(), 1);
        assert!(found(&t)[0].starts_with("spokes a and b write search differently"));
    }
}
