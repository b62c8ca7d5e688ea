//! Turns Unleash's answers into the instance-independent [`State`] model: ids become names,
//! unordered lists are sorted, strategy order comes from the per-flag reads, empty strings
//! and absent values mean the same.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::model::{
    default_stickiness, Constraint, ContextField, Dependency, Elsewhere, Flag, FlagEnvironment,
    LegalValue, Link, Payload, Segment, State, Strategy, StrategyDefinition, StrategyParameter,
    Tag, TagType, Variant, VariantOverride, BUILTIN_CONTEXT_FIELDS, BUILTIN_TAG_TYPES,
};
use super::wire;

/// Why answers could not be turned into a state.
#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    /// A strategy references a segment id the instance did not list.
    #[error("flag `{flag}` ({environment}): a strategy references segment id {id}, which the instance does not list")]
    UnknownSegment {
        /// The flag.
        flag: String,
        /// The environment.
        environment: String,
        /// The segment id.
        id: i64,
    },
    /// The per-flag strategy list did not match the export (the flag changed in between).
    #[error("flag `{flag}` ({environment}): its strategies changed while being read; read again")]
    OrderMismatch {
        /// The flag.
        flag: String,
        /// The environment.
        environment: String,
    },
}

/// Everything read from one instance, still in Unleash's shapes.
#[derive(Debug, Default)]
pub struct Parts {
    /// The project read.
    pub project: String,
    /// One batch export per environment.
    pub exports: Vec<(String, wire::Export)>,
    /// Strategy ids in evaluation order, for (flag, environment) pairs with 2+ strategies.
    pub order: HashMap<(String, String), Vec<String>>,
    /// Full segment definitions; `None` when only the export's id/name pairs are known.
    pub segments: Option<Vec<wire::Segment>>,
    /// Strategy definitions (built-in and custom).
    pub strategies: Vec<wire::StrategyDefinition>,
    /// Context field definitions.
    pub context_fields: Vec<wire::ContextField>,
    /// Tag types.
    pub tag_types: Vec<wire::TagType>,
    /// Flag names in use outside the project's active flags.
    pub elsewhere: BTreeMap<String, Elsewhere>,
}

/// Builds the model from an instance's answers.
pub fn normalize(parts: Parts) -> Result<State, NormalizeError> {
    let segment_names: HashMap<i64, String> = match &parts.segments {
        Some(full) => full.iter().map(|s| (s.id, s.name.clone())).collect(),
        None => parts
            .exports
            .iter()
            .flat_map(|(_, e)| e.segments.iter().map(|s| (s.id, s.name.clone())))
            .collect(),
    };
    let mut environments: Vec<String> = parts.exports.iter().map(|(env, _)| env.clone()).collect();
    environments.sort();
    let mut state = State {
        project: parts.project.clone(),
        environments,
        elsewhere: parts.elsewhere,
        ..State::default()
    };
    for (env, export) in &parts.exports {
        flags(&mut state, env, export);
        flag_environments(&mut state, env, export);
        flag_strategies(&mut state, env, export, &parts.order, &segment_names)?;
        tags_dependencies_links(&mut state, export);
    }
    context_fields(&mut state, &parts.context_fields, &parts.exports);
    segments(&mut state, parts.segments.as_deref(), segment_names);
    strategy_definitions(&mut state, &parts.strategies);
    tag_types(&mut state, &parts.tag_types, &parts.exports);
    for name in state.flags.keys() {
        state.elsewhere.remove(name);
    }
    Ok(state)
}

/// The export's flags in `env`: the project's active ones into the model (metadata and
/// the environment's legacy variants), the others as names taken elsewhere.
fn flags(state: &mut State, env: &str, export: &wire::Export) {
    for f in &export.features {
        let archived = f.archived.unwrap_or(false);
        let project = f.project.clone().unwrap_or_else(|| state.project.clone());
        if archived || project != state.project {
            state
                .elsewhere
                .insert(f.name.clone(), Elsewhere { project, archived });
            continue;
        }
        let flag = Arc::make_mut(state.flags.entry(f.name.clone()).or_insert_with(|| {
            Arc::new(Flag {
                kind: f.kind.clone().unwrap_or_else(|| "release".to_string()),
                description: text(&f.description),
                impression_data: f.impression_data.unwrap_or(false),
                stale: f.stale.unwrap_or(false),
                ..Flag::default()
            })
        }));
        let mut environment = FlagEnvironment::default();
        if let Some(legacy) = &f.variants {
            environment.variants = legacy.iter().map(variant).collect();
        }
        flag.environments.insert(env.to_string(), environment);
    }
}

/// Each flag's enabled state and environment variants in `env`.
fn flag_environments(state: &mut State, env: &str, export: &wire::Export) {
    for fe in &export.feature_environments {
        let Some(name) = fe.feature_name.as_ref().or(fe.name.as_ref()) else {
            continue;
        };
        if let Some(e) = state
            .flags
            .get_mut(name)
            .and_then(|f| Arc::make_mut(f).environments.get_mut(env))
        {
            e.enabled = fe.enabled;
            if !fe.variants.is_empty() {
                e.variants = fe.variants.iter().map(variant).collect();
            }
        }
    }
}

/// Each flag's strategies in `env`, in evaluation order, segments by name.
fn flag_strategies(
    state: &mut State,
    env: &str,
    export: &wire::Export,
    order: &HashMap<(String, String), Vec<String>>,
    segment_names: &HashMap<i64, String>,
) -> Result<(), NormalizeError> {
    let mut by_flag: BTreeMap<&str, Vec<&wire::FeatureStrategy>> = BTreeMap::new();
    for s in &export.feature_strategies {
        if let Some(flag) = &s.feature_name {
            by_flag.entry(flag).or_default().push(s);
        }
    }
    for (flag, mut strategies) in by_flag {
        let Some(e) = state
            .flags
            .get_mut(flag)
            .and_then(|f| Arc::make_mut(f).environments.get_mut(env))
        else {
            continue;
        };
        order_strategies(
            flag,
            env,
            &mut strategies,
            order.get(&(flag.to_string(), env.to_string())),
        )?;
        e.strategies = strategies
            .into_iter()
            .map(|s| strategy(flag, env, s, segment_names))
            .collect::<Result<_, _>>()?;
    }
    Ok(())
}

/// The flags' tags, dependencies and links (the same in every environment's export).
fn tags_dependencies_links(state: &mut State, export: &wire::Export) {
    for t in &export.feature_tags {
        if let Some(f) = state.flags.get_mut(&t.feature_name).map(Arc::make_mut) {
            f.tags.insert(Tag {
                kind: t.tag_type.clone(),
                value: t.tag_value.clone(),
            });
        }
    }
    for d in &export.dependencies {
        if let Some(f) = state.flags.get_mut(&d.feature).map(Arc::make_mut) {
            for dep in &d.dependencies {
                let dep = dependency(dep);
                if !f.dependencies.contains(&dep) {
                    f.dependencies.push(dep);
                }
            }
            f.dependencies.sort();
        }
    }
    for l in &export.links {
        if let Some(f) = state.flags.get_mut(&l.feature).map(Arc::make_mut) {
            for link in &l.links {
                let link = Link {
                    url: link.url.clone(),
                    title: text(&link.title),
                };
                if !f.links.contains(&link) {
                    f.links.push(link);
                }
            }
            f.links.sort();
        }
    }
}

/// Context fields: the full list when read live; the exports' (used) fields otherwise.
fn context_fields(
    state: &mut State,
    full: &[wire::ContextField],
    exports: &[(String, wire::Export)],
) {
    let mut context: Vec<&wire::ContextField> = full.iter().collect();
    if context.is_empty() {
        context = exports
            .iter()
            .flat_map(|(_, e)| e.context_fields.iter())
            .collect();
    }
    for c in context {
        state
            .context_fields
            .insert(c.name.clone(), context_field(c));
    }
}

/// Segments: defined in full when read live, only named (incomplete) from an export.
fn segments(
    state: &mut State,
    full: Option<&[wire::Segment]>,
    segment_names: HashMap<i64, String>,
) {
    match full {
        Some(full) => {
            for s in full {
                state.segments.insert(
                    s.name.clone(),
                    Segment {
                        description: text(&s.description),
                        project: s.project.clone(),
                        constraints: s.constraints.iter().map(constraint).collect(),
                        incomplete: false,
                    },
                );
            }
        }
        None => {
            for name in segment_names.into_values() {
                state.segments.insert(
                    name,
                    Segment {
                        incomplete: true,
                        ..Segment::default()
                    },
                );
            }
        }
    }
}

/// Strategy definitions, built-in and custom.
fn strategy_definitions(state: &mut State, definitions: &[wire::StrategyDefinition]) {
    for s in definitions {
        state.strategies.insert(
            s.name.clone(),
            StrategyDefinition {
                builtin: s.editable == Some(false),
                title: text(&s.title).or_else(|| text(&s.display_name)),
                description: text(&s.description),
                deprecated: s.deprecated.unwrap_or(false),
                parameters: s
                    .parameters
                    .iter()
                    .map(|p| StrategyParameter {
                        name: p.name.clone(),
                        kind: p.kind.clone(),
                        description: text(&p.description),
                        required: p.required.unwrap_or(false),
                    })
                    .collect(),
            },
        );
    }
}

/// Tag types: the full list when read live; the exports' (used) types otherwise.
fn tag_types(state: &mut State, full: &[wire::TagType], exports: &[(String, wire::Export)]) {
    let mut tag_types: Vec<&wire::TagType> = full.iter().collect();
    if tag_types.is_empty() {
        tag_types = exports
            .iter()
            .flat_map(|(_, e)| e.tag_types.iter())
            .collect();
    }
    for t in tag_types {
        state.tag_types.insert(
            t.name.clone(),
            TagType {
                builtin: BUILTIN_TAG_TYPES.contains(&t.name.as_str()),
                description: text(&t.description),
                icon: text(&t.icon),
                color: text(&t.color),
            },
        );
    }
}

/// Puts `strategies` in evaluation order: by the per-flag read where there was one, else by
/// `sortOrder` where the source carries it, else as listed.
fn order_strategies(
    flag: &str,
    env: &str,
    strategies: &mut [&wire::FeatureStrategy],
    order: Option<&Vec<String>>,
) -> Result<(), NormalizeError> {
    match order {
        Some(ids) => {
            let position: HashMap<&str, usize> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| (id.as_str(), i))
                .collect();
            let mut keyed = Vec::with_capacity(strategies.len());
            for s in strategies.iter() {
                let p =
                    s.id.as_deref()
                        .and_then(|id| position.get(id))
                        .ok_or_else(|| NormalizeError::OrderMismatch {
                            flag: flag.to_string(),
                            environment: env.to_string(),
                        })?;
                keyed.push(*p);
            }
            if keyed.len() != ids.len() {
                return Err(NormalizeError::OrderMismatch {
                    flag: flag.to_string(),
                    environment: env.to_string(),
                });
            }
            let mut paired: Vec<(usize, &wire::FeatureStrategy)> =
                keyed.into_iter().zip(strategies.iter().copied()).collect();
            paired.sort_by_key(|(p, _)| *p);
            for (slot, (_, s)) in strategies.iter_mut().zip(paired) {
                *slot = s;
            }
        }
        None => {
            if strategies.iter().all(|s| s.sort_order.is_some()) {
                strategies.sort_by(|a, b| wire::FeatureStrategy::by_sort_order(a, b));
            }
        }
    }
    Ok(())
}

fn strategy(
    flag: &str,
    env: &str,
    s: &wire::FeatureStrategy,
    segment_names: &HashMap<i64, String>,
) -> Result<Strategy, NormalizeError> {
    let segments = s
        .segments
        .iter()
        .map(|id| {
            segment_names
                .get(id)
                .cloned()
                .ok_or_else(|| NormalizeError::UnknownSegment {
                    flag: flag.to_string(),
                    environment: env.to_string(),
                    id: *id,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(strategy_with_segments(s, segments))
}

/// A strategy as the model holds it, given the names of its segments.
pub(crate) fn strategy_with_segments(
    s: &wire::FeatureStrategy,
    mut segments: Vec<String>,
) -> Strategy {
    segments.sort();
    segments.dedup();
    Strategy {
        name: s.name.clone(),
        title: text(&s.title),
        disabled: s.disabled.unwrap_or(false),
        parameters: s
            .parameters
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        constraints: s.constraints.iter().map(constraint).collect(),
        segments,
        variants: s.variants.iter().map(variant).collect(),
    }
}

/// Converts a constraint; multi-value lists are sorted since their order carries no meaning.
pub(crate) fn constraint(c: &wire::Constraint) -> Constraint {
    let mut values = c.values.clone();
    values.sort();
    Constraint {
        context_name: c.context_name.clone(),
        operator: c.operator.clone(),
        inverted: c.inverted.unwrap_or(false),
        case_insensitive: c.case_insensitive.unwrap_or(false),
        value: text(&c.value),
        values,
    }
}

fn variant(v: &wire::Variant) -> Variant {
    Variant {
        name: v.name.clone(),
        weight: v.weight.round().clamp(0.0, 1000.0) as u32,
        weight_type: v
            .weight_type
            .clone()
            .unwrap_or_else(|| "variable".to_string()),
        stickiness: text(&v.stickiness).or_else(default_stickiness),
        payload: v.payload.as_ref().map(|p| Payload {
            kind: p.kind.clone(),
            value: p.value.clone(),
        }),
        overrides: v
            .overrides
            .iter()
            .map(|o| {
                let mut values = o.values.clone();
                values.sort();
                VariantOverride {
                    context_name: o.context_name.clone(),
                    values,
                }
            })
            .collect(),
    }
}

fn dependency(d: &wire::Dependency) -> Dependency {
    let mut variants = d.variants.clone().unwrap_or_default();
    variants.sort();
    variants.dedup();
    Dependency {
        feature: d.feature.clone(),
        enabled: d.enabled.unwrap_or(true),
        variants,
    }
}

fn context_field(c: &wire::ContextField) -> ContextField {
    let mut legal_values: Vec<LegalValue> = c
        .legal_values
        .iter()
        .map(|l| LegalValue {
            value: l.value.clone(),
            description: text(&l.description),
        })
        .collect();
    legal_values.sort();
    legal_values.dedup_by(|a, b| a.value == b.value);
    ContextField {
        builtin: BUILTIN_CONTEXT_FIELDS.contains(&c.name.as_str()),
        description: text(&c.description),
        stickiness: c.stickiness.unwrap_or(false),
        project: c.project.clone(),
        legal_values,
    }
}

/// `None` for absent and empty text alike: Unleash answers either for "not set".
fn text(s: &Option<String>) -> Option<String> {
    s.as_ref().filter(|s| !s.is_empty()).cloned()
}
