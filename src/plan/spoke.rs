//! Planning one spoke: an action per needed object, then blocking propagated along the
//! dependency graph, in the order apply will follow.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::Value;

use super::compare::{diff, env_matches, expected_flag, flag_differences, flag_view, view};
use super::{Action, Kind, Verb};
use crate::desired::{desired, flag_uses, merge_context_field, segment_uses, Uses};
use crate::graph;
use crate::state::model::{Flag, State, BUILTIN_CONTEXT_FIELDS, BUILTIN_TAG_TYPES};

use crate::topology::{Policy, Spoke, Topology};

type Key = (Kind, String);

/// Plans `spoke` (whose state is `actual`) against the hub state `hub`.
pub fn plan_spoke(topology: &Topology, hub: &State, spoke: &Spoke, actual: &State) -> Vec<Action> {
    let desired = desired(topology, hub, spoke);
    let mut environments: Vec<String> = spoke.environments.values().cloned().collect();
    environments.sort();
    let uses: BTreeMap<&String, Uses> = desired
        .flags
        .iter()
        .map(|(name, flag)| (name, flag_uses(flag)))
        .collect();

    let mut b = Builder {
        spoke,
        hub,
        actual,
        actions: BTreeMap::new(),
    };
    let segments: BTreeSet<&String> = uses.values().flat_map(|u| &u.segments).collect();
    let mut context_fields: BTreeSet<String> = uses
        .values()
        .flat_map(|u| u.context_fields.iter().cloned())
        .collect();
    for s in &segments {
        if let Some(def) = hub.segments.get(*s) {
            context_fields.extend(segment_uses(def));
        }
    }
    for name in &context_fields {
        b.context_field(name);
    }
    for name in uses
        .values()
        .flat_map(|u| &u.tag_types)
        .collect::<BTreeSet<_>>()
    {
        b.tag_type(name);
    }
    for name in uses
        .values()
        .flat_map(|u| &u.strategies)
        .collect::<BTreeSet<_>>()
    {
        b.strategy(name);
    }
    for name in &segments {
        b.segment(name);
    }
    for (name, flag) in &desired.flags {
        b.flag(name, flag, &uses[name], &desired.flags, &environments);
    }
    if spoke.prune {
        b.prune(topology);
    }
    let mut actions = b.finish();
    // Archives first: nothing synced depends on a flag the hub does not have.
    actions.sort_by_key(|a| a.action != Verb::Archive);
    actions
}

struct Builder<'a> {
    spoke: &'a Spoke,
    hub: &'a State,
    actual: &'a State,
    actions: BTreeMap<Key, Action>,
}

fn action(kind: Kind, name: &str, verb: Verb, reason: impl Into<String>) -> Action {
    Action {
        kind,
        name: name.to_string(),
        action: verb,
        reason: reason.into(),
        blocked: false,
        depends_on: Vec::new(),
        diff: None,
        environments: Vec::new(),
        notes: Vec::new(),
    }
}

fn blocked(kind: Kind, name: &str, reason: impl Into<String>) -> Action {
    Action {
        blocked: true,
        ..action(kind, name, Verb::Skip, reason)
    }
}

impl Builder<'_> {
    fn add(&mut self, a: Action) {
        self.actions.insert((a.kind, a.name.clone()), a);
    }

    /// The common decision for scaffolding: create, overwrite, or skip by policy.
    fn scaffold(
        &mut self,
        kind: Kind,
        name: &str,
        hub: Option<Value>,
        spoke: Option<Value>,
        policy: Policy,
        notes: Vec<String>,
    ) -> Action {
        let mut a = match (hub, spoke) {
            (None, Some(_)) => action(
                kind,
                name,
                Verb::Skip,
                "not defined on the hub; the spoke's is kept",
            ),
            (None, None) => blocked(
                kind,
                name,
                "used by the hub but defined neither on the hub nor on the spoke",
            ),
            (Some(_), None) if policy == Policy::Ignore => {
                action(kind, name, Verb::Skip, "ignored by policy")
            }
            (Some(_), None) => action(kind, name, Verb::Create, "missing on spoke"),
            (Some(h), Some(s)) => match diff(&self.spoke.instance.name, &s, &h) {
                None => action(kind, name, Verb::Skip, "unchanged"),
                Some(_) if policy == Policy::Ignore => {
                    action(kind, name, Verb::Skip, "ignored by policy")
                }
                Some(d) if policy == Policy::CreateOnly => Action {
                    diff: Some(d),
                    ..action(kind, name, Verb::Skip, "create-only policy, spoke differs")
                },
                Some(d) => Action {
                    diff: Some(d),
                    ..action(kind, name, Verb::Overwrite, "differs from the hub")
                },
            },
        };
        a.notes = notes;
        a
    }

    fn context_field(&mut self, name: &str) {
        let (hub, spoke) = (
            self.hub.context_fields.get(name),
            self.actual.context_fields.get(name),
        );
        let builtin = BUILTIN_CONTEXT_FIELDS.contains(&name)
            || hub.is_some_and(|c| c.builtin)
            || spoke.is_some_and(|c| c.builtin);
        if builtin {
            return;
        }
        let mut notes = Vec::new();
        let hub_view = hub.map(|h| {
            let (merged, spoke_only) = merge_context_field(h, spoke);
            if !spoke_only.is_empty() {
                notes.push(format!(
                    "legal values only the spoke has are kept: {}",
                    spoke_only.join(", ")
                ));
            }
            view(&merged, &["builtin", "project"])
        });
        let spoke_view = spoke.map(|s| view(s, &["builtin", "project"]));
        let a = self.scaffold(
            Kind::ContextField,
            name,
            hub_view,
            spoke_view,
            self.spoke.scaffolding.context_fields,
            notes,
        );
        self.add(a);
    }

    fn tag_type(&mut self, name: &str) {
        let (hub, spoke) = (
            self.hub.tag_types.get(name),
            self.actual.tag_types.get(name),
        );
        if BUILTIN_TAG_TYPES.contains(&name) || hub.is_some_and(|t| t.builtin) {
            return;
        }
        let a = self.scaffold(
            Kind::TagType,
            name,
            hub.map(|t| view(t, &["builtin"])),
            spoke.map(|t| view(t, &["builtin"])),
            self.spoke.scaffolding.tag_types,
            Vec::new(),
        );
        self.add(a);
    }

    fn strategy(&mut self, name: &str) {
        let (hub, spoke) = (
            self.hub.strategies.get(name),
            self.actual.strategies.get(name),
        );
        if hub.is_some_and(|s| s.builtin) || spoke.is_some_and(|s| s.builtin) {
            if spoke.is_none() && !self.actual.strategies.is_empty() {
                self.add(blocked(
                    Kind::Strategy,
                    name,
                    "built-in strategy of the hub's Unleash that the spoke's Unleash does not have",
                ));
            }
            return;
        }
        let a = self.scaffold(
            Kind::Strategy,
            name,
            hub.map(|s| view(s, &["builtin", "deprecated"])),
            spoke.map(|s| view(s, &["builtin", "deprecated"])),
            self.spoke.scaffolding.strategies,
            Vec::new(),
        );
        self.add(a);
    }

    fn segment(&mut self, name: &str) {
        let (hub, spoke) = (self.hub.segments.get(name), self.actual.segments.get(name));
        let mut notes = Vec::new();
        let hub_view = match hub {
            Some(h) if h.incomplete => {
                notes.push("the hub is a raw Unleash export, which names segments but does not define them".to_string());
                None
            }
            Some(h) => Some(view(h, &["project", "incomplete"])),
            None => None,
        };
        let mut a = self.scaffold(
            Kind::Segment,
            name,
            hub_view,
            spoke.map(|s| view(s, &["project", "incomplete"])),
            self.spoke.scaffolding.segments,
            notes,
        );
        if let Some(h) = hub.filter(|h| !h.incomplete) {
            a.depends_on = segment_uses(h)
                .into_iter()
                .map(|c| (Kind::ContextField, c))
                .collect();
        }
        self.add(a);
    }

    fn flag(
        &mut self,
        name: &str,
        want: &Flag,
        uses: &Uses,
        selected: &BTreeMap<String, std::borrow::Cow<'_, Flag>>,
        environments: &[String],
    ) {
        let mut a = if let Some(have) = self.actual.flags.get(name) {
            // Compare the structs first; only a flag that differs pays for copies, JSON and
            // a diff.
            let what = flag_differences(name, want, have, environments);
            let changed = if what.is_empty() {
                None
            } else {
                let expected = expected_flag(name, want, have);
                let now = flag_view(have, environments);
                let after = flag_view(&expected, environments);
                diff(&self.spoke.instance.name, &now, &after)
            };
            match changed {
                None => action(Kind::Flag, name, Verb::Skip, "unchanged"),
                Some(d) => {
                    let mut a = action(
                        Kind::Flag,
                        name,
                        Verb::Overwrite,
                        format!("differs: {}", what.join(", ")),
                    );
                    a.diff = Some(d);
                    a.environments = environments
                        .iter()
                        .filter(
                            |e| match (want.environments.get(*e), have.environments.get(*e)) {
                                (Some(w), Some(h)) => !env_matches(name, w, h),
                                (w, h) => w.is_some() != h.is_some(),
                            },
                        )
                        .cloned()
                        .collect();
                    a
                }
            }
        } else if let Some(e) = self.actual.elsewhere.get(name) {
            if e.archived {
                blocked(Kind::Flag, name, "archived on spoke")
            } else {
                blocked(
                    Kind::Flag,
                    name,
                    format!("exists in project {} on spoke", e.project),
                )
            }
        } else {
            let mut a = action(Kind::Flag, name, Verb::Create, "missing on spoke");
            a.environments = environments.to_vec();
            a
        };
        for parent in &uses.parents {
            if !selected.contains_key(parent) && !self.actual.flags.contains_key(parent) {
                a = blocked(
                    Kind::Flag,
                    name,
                    format!("parent {parent} is not selected and missing on spoke"),
                );
            }
        }
        let mut deps: Vec<Key> = Vec::new();
        deps.extend(
            uses.context_fields
                .iter()
                .map(|c| (Kind::ContextField, c.clone())),
        );
        deps.extend(uses.tag_types.iter().map(|c| (Kind::TagType, c.clone())));
        deps.extend(uses.strategies.iter().map(|c| (Kind::Strategy, c.clone())));
        deps.extend(uses.segments.iter().map(|c| (Kind::Segment, c.clone())));
        deps.extend(
            uses.parents
                .iter()
                .filter(|p| selected.contains_key(*p))
                .map(|p| (Kind::Flag, p.clone())),
        );
        a.depends_on = deps;
        self.add(a);
    }

    /// Archives spoke flags that match the spoke's selection but that the hub does not have
    /// as active flags (absent, or archived there).
    fn prune(&mut self, topology: &Topology) {
        for (name, flag) in &self.actual.flags {
            if self.hub.flags.contains_key(name)
                || !crate::desired::selected(topology, self.spoke, name, flag)
            {
                continue;
            }
            let reason = match self.hub.elsewhere.get(name) {
                Some(e) if e.archived => "archived on the hub (prune)",
                _ => "absent on the hub (prune)",
            };
            self.add(action(Kind::Flag, name, Verb::Archive, reason));
        }
    }

    /// Drops references to objects that need no action, orders the actions, and blocks
    /// every action whose dependency will not exist on the spoke.
    fn finish(self) -> Vec<Action> {
        let Builder {
            actual,
            mut actions,
            ..
        } = self;
        let keys: HashSet<Key> = actions.keys().cloned().collect();
        for a in actions.values_mut() {
            a.depends_on.retain(|d| keys.contains(d));
        }
        let order = graph::order(&mut actions);
        let mut available: HashSet<Key> = HashSet::new();
        let mut why_missing: HashMap<Key, String> = HashMap::new();
        let mut out = Vec::with_capacity(order.len());
        for key in order {
            let Some(mut a) = actions.remove(&key) else {
                continue;
            };
            if a.changes() || !a.blocked {
                let missing = a
                    .depends_on
                    .iter()
                    .find(|d| !available.contains(*d))
                    .cloned();
                if let Some((kind, name)) = missing {
                    let why = why_missing
                        .get(&(kind, name.clone()))
                        .cloned()
                        .unwrap_or_default();
                    let reason = match kind {
                        Kind::Flag => format!("parent blocked: {name}"),
                        _ => format!("needs {kind} {name} ({why})"),
                    };
                    let (depends_on, environments) = (a.depends_on.clone(), Vec::new());
                    a = Action {
                        depends_on,
                        environments,
                        ..blocked(a.kind, &a.name, reason)
                    };
                }
            }
            let exists_now = match a.kind {
                Kind::ContextField => actual.context_fields.contains_key(&a.name),
                Kind::TagType => actual.tag_types.contains_key(&a.name),
                Kind::Strategy => actual.strategies.contains_key(&a.name),
                Kind::Segment => actual.segments.contains_key(&a.name),
                Kind::Flag => actual.flags.contains_key(&a.name),
            };
            if (a.changes() && !a.blocked) || (a.action == Verb::Skip && exists_now && !a.blocked) {
                available.insert((a.kind, a.name.clone()));
            } else {
                let why = if exists_now {
                    a.reason.clone()
                } else {
                    format!("{}; missing on spoke", a.reason)
                };
                why_missing.insert((a.kind, a.name.clone()), why);
            }
            out.push(a);
        }
        out
    }
}
