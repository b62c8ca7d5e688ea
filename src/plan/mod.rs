//! The plan: for each spoke, one action per object the selected flags need, each a
//! create, an overwrite (with a diff) or a skip (with a precise reason), in the order
//! apply will follow.
//!
//! [`plan_one`] compares the desired state ([`crate::desired`]) with the spoke's state
//! semantically: orderings Unleash gives no meaning to were already normalized away when
//! reading, and the server's own additions (a default strategy when a flag is enabled
//! with none) are expected rather than reported.

mod compare;
mod digest;
mod drift;
mod json;
mod reason;
mod spoke;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::state::prints::ObjectPrints;

pub use digest::{actions_digest, first_difference};
pub use drift::{Change, Drift, Origin};
pub use json::{spoke_json, JsonWriter};
pub use reason::{Mark, Reason};
pub use spoke::{check_archives, plan_spoke, MassArchive};

/// The version of the plan JSON format (`docs/plan-format.md`).
pub const FORMAT_VERSION: u32 = 1;

/// What kind of object an action touches. The order is the order of a plan's sections
/// when nothing else orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A context field.
    ContextField,
    /// A tag type.
    TagType,
    /// A custom strategy definition.
    Strategy,
    /// A segment.
    Segment,
    /// A feature flag.
    Flag,
}

impl Kind {
    /// The name used in plans and graphs.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ContextField => "context_field",
            Kind::TagType => "tag_type",
            Kind::Strategy => "strategy",
            Kind::Segment => "segment",
            Kind::Flag => "flag",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What apply does with one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verb {
    /// Missing on the spoke: create it.
    Create,
    /// Exists but differs: overwrite the synced fields.
    Overwrite,
    /// On a pruning spoke, matches the selection but is absent (or archived) on the hub:
    /// archive it (never delete).
    Archive,
    /// Leave it as it is (see the reason).
    Skip,
}

impl Verb {
    /// The name used in plans (as serialized).
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Create => "create",
            Verb::Overwrite => "overwrite",
            Verb::Archive => "archive",
            Verb::Skip => "skip",
        }
    }
}

/// One planned action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// Object kind.
    pub kind: Kind,
    /// Object name.
    pub name: String,
    /// What apply does.
    pub action: Verb,
    /// Why (in JSON, the texts of docs/plan-format.md).
    pub reason: Reason,
    /// Whether the skip is a problem that stops this object from being synced.
    #[serde(default)]
    pub blocked: bool,
    /// Objects that must exist first, as `[kind, name]`.
    #[serde(default)]
    pub depends_on: Vec<(Kind, String)>,
    /// Unified diff of the normalized JSON, spoke now -> after apply (overwrites and
    /// create-only differences).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// Spoke environments the action writes (flags only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environments: Vec<String>,
    /// What else a reviewer should know (e.g. spoke-only legal values kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Of an overwrite: the fields the spoke keeps (`keep`) that differ from the hub and
    /// are left as the spoke has them, e.g. `production.enabled`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<String>,
    /// Of a create or an overwrite: the object as the spoke should hold it, which apply
    /// writes. Not part of the plan's text (see [`Carried`]).
    #[serde(skip)]
    pub object: Carried,
    /// Of an overwrite on a live spoke: who changed it since flagfleet last
    /// wrote it, from the event logs (filled in by `crate::drift`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<Drift>,
}

/// An object a spoke should hold, as the planner derived it (for a flag: selected,
/// mapped, overridden, with the fields the spoke keeps as it has them; for a context
/// field: the hub's, with the legal values only the spoke has).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Object {
    /// A context field.
    ContextField(crate::state::model::ContextField),
    /// A tag type.
    TagType(crate::state::model::TagType),
    /// A strategy definition.
    Strategy(crate::state::model::StrategyDefinition),
    /// A segment.
    Segment(crate::state::model::Segment),
    /// A flag.
    Flag(Arc<crate::state::model::Flag>),
}

/// The object an action writes, carried from the planner to apply so that apply writes
/// exactly what was planned instead of deriving it again. It is not part of the plan's
/// text: a plan read from a file carries none, and two actions that say the same are
/// equal whether they carry it or not.
#[derive(Debug, Clone, Default)]
pub struct Carried(pub Option<Arc<Object>>);

impl Carried {
    /// The object, if carried.
    pub fn get(&self) -> Option<&Object> {
        self.0.as_deref()
    }
}

/// Objects carried by the plans of several spokes, each held once: the spokes' plans are
/// made apart, so a flag that every spoke gets the same way (a hub change, say) is
/// otherwise held once per spoke until apply writes it.
#[derive(Debug, Default)]
pub struct SharedObjects(std::sync::Mutex<HashMap<(Kind, String), Variants>>);

/// The different objects held for one kind and name.
type Variants = Vec<Arc<Object>>;

impl SharedObjects {
    /// Makes each action of `actions` carry the object held here when it is equal to its
    /// own, and holds the others from now on.
    pub fn share(&self, actions: &mut [Action]) {
        let mut held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for a in actions {
            let Some(object) = &mut a.object.0 else {
                continue;
            };
            let same = held.entry((a.kind, a.name.clone())).or_default();
            match same.iter().find(|o| ***o == **object) {
                Some(o) => *object = o.clone(),
                None => same.push(object.clone()),
            }
        }
    }
}

impl PartialEq for Carried {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Carried {}

impl Action {
    /// Whether apply will change the spoke for this action.
    pub fn changes(&self) -> bool {
        self.action != Verb::Skip
    }
}

/// Counts of a spoke's actions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Creates.
    pub create: usize,
    /// Overwrites.
    pub overwrite: usize,
    /// Archives (pruning spokes only).
    #[serde(default)]
    pub archive: usize,
    /// Skips, blocked ones included.
    pub skip: usize,
    /// Blocked skips.
    pub blocked: usize,
}

impl Summary {
    /// Counts `actions`.
    pub fn of(actions: &[Action]) -> Self {
        let mut s = Summary::default();
        for a in actions {
            match a.action {
                Verb::Create => s.create += 1,
                Verb::Overwrite => s.overwrite += 1,
                Verb::Archive => s.archive += 1,
                Verb::Skip => s.skip += 1,
            }
            if a.blocked {
                s.blocked += 1;
            }
        }
        s
    }
}

/// The plan for one spoke.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpokePlan {
    /// Spoke name.
    pub name: String,
    /// URL or file.
    pub location: String,
    /// Project synced.
    pub project: String,
    /// Rollout wave (`wave` in the topology; apply goes wave by wave).
    #[serde(default = "first_wave")]
    pub wave: u32,
    /// The other spokes of the plan that write the same server (or file): apply takes
    /// them in turn, and what one of them creates the next one updates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub same_place_as: Vec<String>,
    /// Hub environment -> spoke environment.
    pub environments: BTreeMap<String, String>,
    /// Fingerprint of the spoke's state the plan was made from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// The same, object by object: made only when another spoke of the run shares the
    /// spoke's server or file, so that apply can tell that spoke's writes from anyone
    /// else's. Not part of the plan's text.
    #[serde(skip)]
    pub prints: Option<Arc<ObjectPrints>>,
    /// The spoke's Unleash version, when known (what blocks by version were planned by,
    /// docs/compatibility.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unleash_version: Option<String>,
    /// Counts.
    pub summary: Summary,
    /// Actions in the order apply follows.
    pub actions: Vec<Action>,
    /// Why the spoke could not be planned (unreachable, refused token, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<SpokeError>,
}

/// The wave of a spoke in a plan file that names none.
fn first_wave() -> u32 {
    1
}

/// Why a spoke could not be planned: what went wrong and, where known, the fix. In JSON
/// (and shown) as one text: the message, then a line `Hint: ` and the hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpokeError {
    /// What went wrong.
    pub message: String,
    /// The fix, where known.
    pub hint: Option<String>,
}

impl From<&crate::state::ReadError> for SpokeError {
    fn from(e: &crate::state::ReadError) -> Self {
        Self {
            message: e.to_string(),
            hint: e.hint(),
        }
    }
}

impl fmt::Display for SpokeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        match &self.hint {
            Some(hint) => write!(f, "\nHint: {hint}"),
            None => Ok(()),
        }
    }
}

impl Serialize for SpokeError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SpokeError {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(match text.split_once("\nHint: ") {
            Some((message, hint)) => Self {
                message: message.to_string(),
                hint: Some(hint.to_string()),
            },
            None => Self {
                message: text,
                hint: None,
            },
        })
    }
}

impl SpokePlan {
    /// Whether apply will change this spoke (a create, overwrite or archive).
    pub fn has_changes(&self) -> bool {
        self.actions.iter().any(Action::changes)
    }
}

/// The hub a plan was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubInfo {
    /// Hub name.
    pub name: String,
    /// URL or file.
    pub location: String,
    /// Project synced.
    pub project: String,
    /// Environments synced.
    pub environments: Vec<String>,
    /// Fingerprint of the hub's state.
    pub fingerprint: String,
}

/// A whole plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Always [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Fingerprint of the topology file's contents.
    pub topology_fingerprint: String,
    /// The hub.
    pub hub: HubInfo,
    /// One entry per planned spoke, in topology order.
    pub spokes: Vec<SpokePlan>,
}

impl Plan {
    /// Whether any spoke has a create or overwrite.
    pub fn has_changes(&self) -> bool {
        self.spokes.iter().any(SpokePlan::has_changes)
    }

    /// Whether any spoke could not be planned.
    pub fn has_errors(&self) -> bool {
        self.spokes.iter().any(|s| s.error.is_some())
    }

    /// The plan as pretty JSON with a trailing newline (the `--format json` output and
    /// the plan file).
    pub fn to_json(&self) -> String {
        let mut out = Vec::new();
        let written =
            JsonWriter::begin(&mut out, &self.topology_fingerprint, &self.hub).and_then(|mut w| {
                self.spokes.iter().try_for_each(|s| w.spoke(s))?;
                w.finish()
            });
        // Writing to memory cannot fail, and serde_json only writes valid UTF-8.
        debug_assert!(written.is_ok());
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The fingerprint of some bytes (e.g. the topology file).
pub fn fingerprint_bytes(bytes: &[u8]) -> String {
    format!("xxh3:{:032x}", xxhash_rust::xxh3::xxh3_128(bytes))
}

/// What a plan says about the hub.
pub fn hub_info(topology: &crate::topology::Topology, fingerprint: String) -> HubInfo {
    let hub = &topology.hub;
    HubInfo {
        name: hub.instance.name.clone(),
        location: hub.instance.location.to_string(),
        project: hub.instance.project.clone(),
        environments: hub.environments.clone(),
        fingerprint,
    }
}

/// The spoke's plan with only the objects someone other than flagfleet changed
/// on the spoke since flagfleet last wrote them (origin `spoke` or `both`), blocked ones
/// included (`plan --drift-only`).
pub fn only_spoke_drift(mut spoke: SpokePlan) -> SpokePlan {
    spoke
        .actions
        .retain(|a| a.drift.as_ref().is_some_and(Drift::on_spoke));
    for a in &mut spoke.actions {
        // Their dependencies are no longer in the list.
        a.depends_on.clear();
    }
    spoke.summary = Summary::of(&spoke.actions);
    spoke
}

/// Plans `spoke` as read: its state `actual` (fingerprinted `fingerprint`) against the
/// hub's, or why it could not be read (pure: no I/O).
pub fn plan_one(
    topology: &crate::topology::Topology,
    hub: &crate::state::State,
    spoke: &crate::topology::Spoke,
    actual: Result<&crate::state::State, &crate::state::ReadError>,
    fingerprint: Option<String>,
) -> SpokePlan {
    let unleash_version = actual
        .ok()
        .and_then(|a| a.unleash_version)
        .map(|v| v.to_string());
    let (fingerprint, actions, error) = match actual {
        Ok(actual) => {
            let actions = plan_spoke(topology, hub, spoke, actual);
            match check_archives(topology, spoke, actual, &actions) {
                Ok(()) => (fingerprint, actions, None),
                Err(e) => (
                    fingerprint,
                    Vec::new(),
                    Some(SpokeError {
                        message: e.to_string(),
                        hint: Some("check that the hub holds what it should; if these archives are meant, raise `max_archive` or pass --allow-mass-archive for one run".into()),
                    }),
                ),
            }
        }
        Err(e) => (None, Vec::new(), Some(SpokeError::from(e))),
    };
    SpokePlan {
        name: spoke.instance.name.clone(),
        location: spoke.instance.location.to_string(),
        project: spoke.instance.project.clone(),
        wave: spoke.wave,
        same_place_as: Vec::new(),
        environments: spoke.environments.clone(),
        fingerprint,
        prints: None,
        unleash_version,
        summary: Summary::of(&actions),
        actions,
        error,
    }
}

#[cfg(test)]
mod tests;
