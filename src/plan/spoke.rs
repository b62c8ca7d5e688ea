//! Planning one spoke: an action per needed object, then blocking propagated along the
//! dependency graph, in the order apply will follow.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;

use super::compare::{
    diff, diff_texts, env_matches, expected_flag, flag_differences, flag_text, view,
};
use super::{Action, Carried, Kind, Object, Reason, Verb};
use crate::capability::{self, Version};
use crate::desired::{desired, flag_uses, merge_context_field, segment_uses, Uses};
use crate::graph;
use crate::state::model::{Flag, State, BUILTIN_CONTEXT_FIELDS, BUILTIN_TAG_TYPES};

use crate::topology::{Policy, Spoke, Topology};

/// An object, by kind and name (borrowed from the states being compared).
type Key<'a> = (Kind, &'a str);

/// Plans `spoke` (whose state is `actual`) against the hub state `hub`.
pub fn plan_spoke(topology: &Topology, hub: &State, spoke: &Spoke, actual: &State) -> Vec<Action> {
    let desired = desired(topology, hub, spoke, actual);
    let environments = spoke.synced_environments();
    let uses: Vec<Uses> = desired.flags.values().map(|flag| flag_uses(flag)).collect();

    let mut b = Builder {
        spoke,
        hub,
        actual,
        actions: Vec::with_capacity(desired.flags.len() + 64),
        needs: Vec::with_capacity(desired.flags.len() + 64),
    };
    // Each kind of scaffolding once, by name, whichever flags use it.
    let segments = union(uses.iter().flat_map(|u| u.segments.iter().copied()));
    let context_fields = union(
        uses.iter()
            .flat_map(|u| u.context_fields.iter().copied())
            .chain(
                segments
                    .iter()
                    .filter_map(|s| hub.segments.get(*s))
                    .flat_map(segment_uses),
            ),
    );
    for name in context_fields {
        b.context_field(name);
    }
    for name in union(uses.iter().flat_map(|u| u.tag_types.iter().copied())) {
        b.tag_type(name);
    }
    for name in union(uses.iter().flat_map(|u| u.strategies.iter().copied())) {
        b.strategy(name);
    }
    for name in segments {
        b.segment(name);
    }
    for ((name, flag), uses) in desired.flags.iter().zip(&uses) {
        let kept = desired.kept.get(name).map_or(&[][..], Vec::as_slice);
        b.flag(name, flag, uses, &desired.flags, &environments, kept);
    }
    if spoke.prune {
        b.prune(topology);
    }
    b.finish()
}

/// A pruning plan that would archive more flags than the spoke allows in one run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refusing to archive {count} flags, more than this spoke's limit of {limit} ({why}); nothing is planned for it")]
pub struct MassArchive {
    /// Flags the plan would archive.
    pub count: usize,
    /// The limit.
    pub limit: usize,
    /// Where the limit comes from.
    pub why: String,
}

/// Checks the archives of a spoke's plan against its limit (`max_archive`, or 10 flags or
/// 10 % of the flags its selection selects on the spoke, whichever is larger).
pub fn check_archives(
    topology: &Topology,
    spoke: &Spoke,
    actual: &State,
    actions: &[Action],
) -> Result<(), MassArchive> {
    let count = actions.iter().filter(|a| a.action == Verb::Archive).count();
    if count <= crate::topology::default_archive_limit(0) && spoke.max_archive.is_none() {
        return Ok(());
    }
    let selected = || {
        actual
            .flags
            .iter()
            .filter(|(name, flag)| crate::desired::selected(topology, spoke, name, flag))
            .count()
    };
    let (limit, why) = match spoke.max_archive {
        Some(limit) => (limit, "max_archive".to_string()),
        None => {
            let selected = selected();
            (
                crate::topology::default_archive_limit(selected),
                format!("the default: 10 flags or 10 % of its {selected} selected flags"),
            )
        }
    };
    if count > limit {
        return Err(MassArchive { count, limit, why });
    }
    Ok(())
}

/// The names, sorted, each once. Inserted one by one: the flags of a spoke name the
/// same few objects many times over, and a set of those few beats sorting every mention.
fn union<'a>(names: impl Iterator<Item = &'a str>) -> BTreeSet<&'a str> {
    let mut set = BTreeSet::new();
    set.extend(names);
    set
}

/// The actions of one spoke as they are found, each with what it needs first.
struct Builder<'a> {
    spoke: &'a Spoke,
    hub: &'a State,
    actual: &'a State,
    actions: Vec<Action>,
    /// What each action needs, by key; keys without an action are dropped in `finish`.
    needs: Vec<Vec<Key<'a>>>,
}

fn action(kind: Kind, name: &str, verb: Verb, reason: Reason) -> Action {
    Action {
        kind,
        name: name.to_string(),
        action: verb,
        reason,
        blocked: false,
        depends_on: Vec::new(),
        diff: None,
        environments: Vec::new(),
        notes: Vec::new(),
        kept: Vec::new(),
        object: Default::default(),
        drift: None,
    }
}

fn carry(object: Option<Object>) -> Carried {
    Carried(object.map(std::sync::Arc::new))
}

fn blocked(kind: Kind, name: &str, reason: Reason) -> Action {
    Action {
        blocked: true,
        ..action(kind, name, Verb::Skip, reason)
    }
}

impl<'a> Builder<'a> {
    /// A blocked skip of `name` when the spoke's Unleash version is known and `lacking`
    /// finds what it cannot hold ([`capability`]); `None` otherwise.
    fn unsupported(
        &self,
        kind: Kind,
        name: &str,
        lacking: impl FnOnce(Version) -> Vec<capability::Capability>,
    ) -> Option<Action> {
        let version = self.actual.unleash_version?;
        let missing = lacking(version);
        (!missing.is_empty()).then(|| blocked(kind, name, Reason::Unsupported { version, missing }))
    }

    fn add(&mut self, a: Action, needs: Vec<Key<'a>>) {
        self.actions.push(a);
        self.needs.push(needs);
    }

    /// The common decision for scaffolding: create, overwrite, or skip by policy. A create
    /// or an overwrite carries `object`, what apply writes.
    #[allow(clippy::too_many_arguments)]
    fn scaffold(
        &mut self,
        kind: Kind,
        name: &str,
        hub: Option<Value>,
        spoke: Option<Value>,
        policy: Policy,
        notes: Vec<String>,
        object: Option<Object>,
    ) -> Action {
        let mut a = match (hub, spoke) {
            (None, Some(_)) => action(kind, name, Verb::Skip, Reason::SpokeDefinitionKept),
            (None, None) => blocked(kind, name, Reason::Undefined),
            (Some(_), None) if policy == Policy::Ignore => {
                action(kind, name, Verb::Skip, Reason::IgnoredByPolicy)
            }
            (Some(_), None) => action(kind, name, Verb::Create, Reason::MissingOnSpoke),
            (Some(h), Some(s)) => match diff(&self.spoke.instance.name, &s, &h) {
                None => action(kind, name, Verb::Skip, Reason::Unchanged),
                Some(_) if policy == Policy::Ignore => {
                    action(kind, name, Verb::Skip, Reason::IgnoredByPolicy)
                }
                Some(d) if policy == Policy::CreateOnly => Action {
                    diff: Some(d),
                    ..action(kind, name, Verb::Skip, Reason::CreateOnlyDiffers)
                },
                Some(d) => Action {
                    diff: Some(d),
                    ..action(kind, name, Verb::Overwrite, Reason::DiffersFromHub)
                },
            },
        };
        a.notes = notes;
        if a.changes() {
            a.object = carry(object);
        }
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
        let merged = hub.map(|h| {
            let (merged, spoke_only) = merge_context_field(h, spoke);
            if !spoke_only.is_empty() {
                notes.push(format!(
                    "legal values only the spoke has are kept: {}",
                    spoke_only.join(", ")
                ));
            }
            merged
        });
        let hub_view = merged.as_ref().map(|m| view(m, &["builtin", "project"]));
        let spoke_view = spoke.map(|s| view(s, &["builtin", "project"]));
        let a = self.scaffold(
            Kind::ContextField,
            name,
            hub_view,
            spoke_view,
            self.spoke.scaffolding.context_fields,
            notes,
            merged.map(Object::ContextField),
        );
        self.add(a, Vec::new());
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
            hub.cloned().map(Object::TagType),
        );
        self.add(a, Vec::new());
    }

    fn strategy(&mut self, name: &str) {
        let (hub, spoke) = (
            self.hub.strategies.get(name),
            self.actual.strategies.get(name),
        );
        if hub.is_some_and(|s| s.builtin) || spoke.is_some_and(|s| s.builtin) {
            // A spoke that has it holds it whatever its version (a server upgraded from
            // 6.x keeps `userWithId`); only one that lacks it is blocked, by version when
            // known.
            let lacking = |v| capability::missing_for_builtin_strategy(name, v);
            let unsupported = spoke
                .is_none()
                .then(|| self.unsupported(Kind::Strategy, name, lacking))
                .flatten();
            if let Some(a) = unsupported {
                self.add(a, Vec::new());
            } else if spoke.is_none() && !self.actual.strategies.is_empty() {
                self.add(
                    blocked(Kind::Strategy, name, Reason::BuiltinMissing),
                    Vec::new(),
                );
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
            hub.cloned().map(Object::Strategy),
        );
        self.add(a, Vec::new());
    }

    fn segment(&mut self, name: &'a str) {
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
        let a = self.scaffold(
            Kind::Segment,
            name,
            hub_view,
            spoke.map(|s| view(s, &["project", "incomplete"])),
            self.spoke.scaffolding.segments,
            notes,
            hub.filter(|h| !h.incomplete).cloned().map(Object::Segment),
        );
        let a = match hub {
            Some(h) if a.changes() => self
                .unsupported(Kind::Segment, name, |v| {
                    capability::missing_for_segment(h, v)
                })
                .unwrap_or(a),
            _ => a,
        };
        let needs = hub
            .filter(|h| !h.incomplete)
            .map(|h| {
                segment_uses(h)
                    .into_iter()
                    .map(|c| (Kind::ContextField, c))
                    .collect()
            })
            .unwrap_or_default();
        self.add(a, needs);
    }

    fn flag(
        &mut self,
        name: &'a str,
        want: &Arc<Flag>,
        uses: &Uses<'a>,
        selected: &BTreeMap<&str, Arc<Flag>>,
        environments: &[String],
        kept: &[String],
    ) {
        let mut a = if let Some(have) = self.actual.flags.get(name) {
            // Compare the structs first; only a flag that differs pays for copies, JSON and
            // a diff.
            let what = flag_differences(name, want, have, environments);
            let changed = if what.is_empty() {
                None
            } else {
                let expected = expected_flag(name, want, have);
                let now = flag_text(have, environments);
                let after = flag_text(&expected, environments);
                diff_texts(&self.spoke.instance.name, &now, &after)
            };
            match changed {
                None if kept.is_empty() => action(Kind::Flag, name, Verb::Skip, Reason::Unchanged),
                None => action(
                    Kind::Flag,
                    name,
                    Verb::Skip,
                    Reason::KeptBySpoke(kept.to_vec()),
                ),
                Some(d) => {
                    let mut a = action(Kind::Flag, name, Verb::Overwrite, Reason::Differs(what));
                    a.diff = Some(d);
                    a.kept = kept.to_vec();
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
                blocked(Kind::Flag, name, Reason::ArchivedOnSpoke)
            } else {
                blocked(Kind::Flag, name, Reason::InOtherProject(e.project.clone()))
            }
        } else {
            let mut a = action(Kind::Flag, name, Verb::Create, Reason::MissingOnSpoke);
            a.environments = environments.to_vec();
            a
        };
        for parent in &uses.parents {
            if !selected.contains_key(parent) && !self.actual.flags.contains_key(*parent) {
                a = blocked(
                    Kind::Flag,
                    name,
                    Reason::ParentNotSelected(parent.to_string()),
                );
            }
        }
        if a.changes() {
            let lacking = |v| capability::missing_for_flag(want, v);
            if let Some(b) = self.unsupported(Kind::Flag, name, lacking) {
                a = b;
            }
        }
        if a.changes() && a.action != Verb::Archive {
            a.object = carry(Some(Object::Flag(Arc::clone(want))));
        }
        let needs = (uses.context_fields.iter().map(|c| (Kind::ContextField, *c)))
            .chain(uses.tag_types.iter().map(|c| (Kind::TagType, *c)))
            .chain(uses.strategies.iter().map(|c| (Kind::Strategy, *c)))
            .chain(uses.segments.iter().map(|c| (Kind::Segment, *c)))
            .chain(
                uses.parents
                    .iter()
                    .filter(|p| selected.contains_key(*p))
                    .map(|p| (Kind::Flag, *p)),
            )
            .collect();
        self.add(a, needs);
    }

    /// Archives spoke flags that match the spoke's selection but that the hub does not have
    /// as active flags (absent, or archived there).
    fn prune(&mut self, topology: &Topology) {
        // A hub read as empty is far likelier a broken answer than a fleet to wipe.
        if self.hub.flags.is_empty() {
            return;
        }
        for (name, flag) in &self.actual.flags {
            if self.hub.flags.contains_key(name)
                || !crate::desired::selected(topology, self.spoke, name, flag)
            {
                continue;
            }
            let reason = match self.hub.elsewhere.get(name) {
                Some(e) if e.archived => Reason::ArchivedOnHub,
                _ => Reason::AbsentOnHub,
            };
            self.add(action(Kind::Flag, name, Verb::Archive, reason), Vec::new());
        }
    }

    /// Orders the actions (dependencies first, then by kind and name), keeps only the
    /// dependencies that have an action, blocks the members of a dependency cycle, and
    /// blocks every action whose dependency will not exist on the spoke. Archives come
    /// first: nothing synced depends on a flag the hub does not have.
    fn finish(self) -> Vec<Action> {
        let Builder {
            actual,
            actions,
            needs,
            ..
        } = self;
        // Node i of the graph is the i-th action in (kind, name) order.
        let mut by_key: Vec<usize> = (0..actions.len()).collect();
        by_key.sort_unstable_by(|&x, &y| {
            (actions[x].kind, &actions[x].name).cmp(&(actions[y].kind, &actions[y].name))
        });
        let mut actions: Vec<Action> = {
            let mut slots: Vec<Option<Action>> = actions.into_iter().map(Some).collect();
            by_key
                .iter()
                .map(|&i| slots[i].take().expect("each action once"))
                .collect()
        };
        // Actions are sorted by key: a binary search finds a key's node.
        let node = |key: &Key| {
            actions
                .binary_search_by(|a| (a.kind, a.name.as_str()).cmp(key))
                .ok()
        };
        let mut deps: Vec<Vec<usize>> = by_key
            .iter()
            .map(|&i| needs[i].iter().filter_map(node).collect())
            .collect();
        let order = graph::order(&deps);
        for cycle in &order.cycles {
            let names: Vec<String> = cycle
                .iter()
                .map(|&n| format!("{}:{}", actions[n].kind, actions[n].name))
                .collect();
            let reason = Reason::Cycle(names);
            for &n in cycle {
                let a = &mut actions[n];
                a.action = Verb::Skip;
                a.blocked = true;
                a.reason.clone_from(&reason);
                a.diff = None;
                a.environments.clear();
                deps[n].retain(|d| !cycle.contains(d));
            }
        }
        for (n, ds) in deps.iter().enumerate() {
            let depends_on = ds
                .iter()
                .map(|&d| (actions[d].kind, actions[d].name.clone()))
                .collect();
            actions[n].depends_on = depends_on;
        }

        // Walk in order: an action is available once it will exist on the spoke.
        let mut available = vec![false; actions.len()];
        // Why an action's object will not exist, and whether it is missing now.
        let mut why_missing: Vec<Option<(Reason, bool)>> = vec![None; actions.len()];
        let mut slots: Vec<Option<Action>> = actions.into_iter().map(Some).collect();
        let mut out = Vec::with_capacity(slots.len());
        for n in order.nodes {
            let mut a = slots[n].take().expect("each node once");
            if a.changes() || !a.blocked {
                // depends_on[j] is node deps[n][j].
                if let Some(j) = deps[n].iter().position(|&d| !available[d]) {
                    let (kind, name) = &a.depends_on[j];
                    let (why, missing) = why_missing[deps[n][j]]
                        .clone()
                        .unwrap_or((Reason::Other(String::new()), false));
                    let reason = match kind {
                        Kind::Flag => Reason::ParentBlocked(name.clone()),
                        _ => Reason::Needs {
                            kind: *kind,
                            name: name.clone(),
                            why: Box::new(why),
                            missing,
                        },
                    };
                    let depends_on = std::mem::take(&mut a.depends_on);
                    a = Action {
                        depends_on,
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
                available[n] = true;
            } else {
                why_missing[n] = Some((a.reason.clone(), !exists_now));
            }
            out.push(a);
        }
        out.sort_by_key(|a| a.action != Verb::Archive);
        out
    }
}
