//! The typed, instance-independent model of what one Unleash project holds.
//!
//! Everything here is keyed by name, never by a server's id: segment ids and strategy ids
//! differ between instances, names do not. Collections whose order Unleash gives no meaning
//! to are sorted (maps, sets, legal values, tags) so that two states compare and serialize
//! the same way whatever order a server answered in; strategy order is kept, because the
//! first matching strategy's variants win.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::api::wire::unique_map;

/// Context fields every Unleash server has; they are never created or changed by a sync.
pub const BUILTIN_CONTEXT_FIELDS: &[&str] = &[
    "appName",
    "currentTime",
    "environment",
    "remoteAddress",
    "sessionId",
    "userId",
];

/// The tag type every Unleash server has.
pub const BUILTIN_TAG_TYPES: &[&str] = &["simple"];

/// Everything flagfleet knows about one project of one instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// The project the flags were read from.
    pub project: String,
    /// The environments whose flag configuration was read.
    pub environments: Vec<String>,
    /// Active flags of the project, by name.
    #[serde(deserialize_with = "unique_map")]
    pub flags: BTreeMap<String, Arc<Flag>>,
    /// Context fields (built-in ones marked), by name.
    #[serde(deserialize_with = "unique_map")]
    pub context_fields: BTreeMap<String, ContextField>,
    /// Segments, by name.
    #[serde(deserialize_with = "unique_map")]
    pub segments: BTreeMap<String, Segment>,
    /// Strategy definitions (built-in ones marked), by name.
    #[serde(deserialize_with = "unique_map")]
    pub strategies: BTreeMap<String, StrategyDefinition>,
    /// Tag types (built-in ones marked), by name.
    #[serde(deserialize_with = "unique_map")]
    pub tag_types: BTreeMap<String, TagType>,
    /// Flags that exist on the instance but not as active flags of `project`: archived ones
    /// and those of other projects. A sync must never create a flag under one of these names.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "unique_map"
    )]
    pub elsewhere: BTreeMap<String, Elsewhere>,
    /// The instance's Unleash version, when known (a live read asks the server; a snapshot
    /// keeps it in its `source`). Not part of the state's JSON or fingerprint; a plan
    /// blocks by it what the spoke's version cannot hold ([`crate::capability`]).
    #[serde(skip)]
    pub unleash_version: Option<crate::api::version::Version>,
}

/// A [`State`] as it serializes with no names taken elsewhere, without copying it
/// (for [`super::hub_fingerprint`]). Lists every field of [`State`] but `elsewhere`, in
/// its order; a test keeps the two in step.
#[derive(Serialize)]
pub(crate) struct WithoutElsewhere<'a> {
    project: &'a str,
    environments: &'a [String],
    flags: &'a BTreeMap<String, Arc<Flag>>,
    context_fields: &'a BTreeMap<String, ContextField>,
    segments: &'a BTreeMap<String, Segment>,
    strategies: &'a BTreeMap<String, StrategyDefinition>,
    tag_types: &'a BTreeMap<String, TagType>,
}

impl<'a> From<&'a State> for WithoutElsewhere<'a> {
    fn from(s: &'a State) -> Self {
        Self {
            project: &s.project,
            environments: &s.environments,
            flags: &s.flags,
            context_fields: &s.context_fields,
            segments: &s.segments,
            strategies: &s.strategies,
            tag_types: &s.tag_types,
        }
    }
}

/// A flag name taken on the instance outside the synced project's active flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Elsewhere {
    /// The project that holds it.
    pub project: String,
    /// Whether it is archived.
    pub archived: bool,
}

/// One feature flag with its configuration in every environment that was read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flag {
    /// Flag type (`release`, `experiment`, `operational`, `kill-switch`, `permission`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Free-text description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether SDKs emit impression events for this flag (off when a file leaves it out).
    #[serde(default)]
    pub impression_data: bool,
    /// Whether the flag is marked stale (not when a file leaves it out).
    #[serde(default)]
    pub stale: bool,
    /// Tags, as a set: Unleash gives their order no meaning.
    #[serde(default, skip_serializing_if = "TagSet::is_empty")]
    pub tags: TagSet,
    /// Parent flags this flag depends on (one level deep, by Unleash's rules).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Dependency>,
    /// Links shown with the flag.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    /// Per-environment configuration, by environment name.
    pub environments: SmallMap<String, FlagEnvironment>,
}

/// A map of a few entries, sorted by key: a flag's environments, a strategy's
/// parameters. A sorted vector ([`litemap::LiteMap`]), where a `BTreeMap` would allocate
/// a node for eleven entries per map. Serialized as a JSON object always (`LiteMap`
/// writes an empty map as `[]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SmallMap<K, V>(litemap::LiteMap<K, V>);

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        Self(litemap::LiteMap::new_vec())
    }
}

impl<K, V> std::ops::Deref for SmallMap<K, V> {
    type Target = litemap::LiteMap<K, V>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<K, V> std::ops::DerefMut for SmallMap<K, V> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl<K, V> SmallMap<K, V> {
    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for SmallMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl<K: Serialize, V: Serialize> Serialize for SmallMap<K, V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter())
    }
}

impl<'de, K, V> Deserialize<'de> for SmallMap<K, V>
where
    K: Ord + std::fmt::Display + Deserialize<'de>,
    V: Deserialize<'de>,
{
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(unique_map::<D, K, V>(d)?.into_iter().collect())
    }
}

/// A flag's tags: a set (Unleash gives their order no meaning), kept as a sorted vector
/// without duplicates for the same reason as [`SmallMap`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct TagSet(Vec<Tag>);

impl TagSet {
    /// Whether there are no tags.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The number of tags.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The tags, sorted.
    pub fn iter(&self) -> std::slice::Iter<'_, Tag> {
        self.0.iter()
    }

    /// Whether `tag` is in the set.
    pub fn contains(&self, tag: &Tag) -> bool {
        self.0.binary_search(tag).is_ok()
    }

    /// The tags of this set that `other` does not have.
    pub fn difference<'a>(&'a self, other: &'a TagSet) -> impl Iterator<Item = &'a Tag> {
        self.0.iter().filter(|t| !other.contains(t))
    }

    /// Adds `tag`; false when it was there already.
    pub fn insert(&mut self, tag: Tag) -> bool {
        match self.0.binary_search(&tag) {
            Ok(_) => false,
            Err(i) => {
                self.0.insert(i, tag);
                true
            }
        }
    }
}

impl FromIterator<Tag> for TagSet {
    fn from_iter<I: IntoIterator<Item = Tag>>(iter: I) -> Self {
        let mut tags: Vec<Tag> = iter.into_iter().collect();
        tags.sort();
        tags.dedup();
        Self(tags)
    }
}

impl<const N: usize> From<[Tag; N]> for TagSet {
    fn from(tags: [Tag; N]) -> Self {
        tags.into_iter().collect()
    }
}

impl<'a> IntoIterator for &'a TagSet {
    type Item = &'a Tag;
    type IntoIter = std::slice::Iter<'a, Tag>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<'de> Deserialize<'de> for TagSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<Tag>::deserialize(d)?.into_iter().collect())
    }
}

/// A tag on a flag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tag {
    /// Tag type name.
    #[serde(rename = "type")]
    pub kind: String,
    /// Tag value.
    pub value: String,
}

impl std::fmt::Display for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

/// A dependency on a parent flag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dependency {
    /// The parent flag's name.
    pub feature: String,
    /// Whether the parent must be enabled (`true`, also when a file leaves it out, as in
    /// Unleash) or disabled (`false`).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Parent variants that satisfy the dependency (empty: any), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<String>,
}

fn yes() -> bool {
    true
}

/// A link attached to a flag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// Target URL.
    pub url: String,
    /// Optional title shown instead of the URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// A flag's configuration in one environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagEnvironment {
    /// Whether the flag is on in this environment (off when a file leaves it out).
    #[serde(default)]
    pub enabled: bool,
    /// Activation strategies, in evaluation order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub strategies: Vec<Strategy>,
    /// Environment-level variants (deprecated in Unleash 8, still carried by older servers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<Variant>,
}

/// One activation strategy of a flag in one environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Strategy {
    /// Strategy name: a built-in (`flexibleRollout`, `default`, ...) or a custom definition.
    pub name: String,
    /// Optional title shown in the UI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Whether the strategy is disabled (kept but not evaluated).
    #[serde(default, skip_serializing_if = "is_false")]
    pub disabled: bool,
    /// Strategy parameters; Unleash stores every value as a string.
    #[serde(default, skip_serializing_if = "SmallMap::is_empty")]
    pub parameters: SmallMap<String, String>,
    /// Constraints, in the order they were defined.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<Constraint>,
    /// Segment names, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<String>,
    /// Strategy variants.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<Variant>,
}

/// A constraint on a context field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Constraint {
    /// The context field the constraint reads.
    pub context_name: String,
    /// Operator (`IN`, `NOT_IN`, `STR_CONTAINS`, `NUM_GT`, `DATE_AFTER`, `SEMVER_EQ`, ...).
    pub operator: String,
    /// Whether the result is negated.
    #[serde(default, skip_serializing_if = "is_false")]
    pub inverted: bool,
    /// Whether string comparison ignores case.
    #[serde(default, skip_serializing_if = "is_false")]
    pub case_insensitive: bool,
    /// The single value of single-value operators (numbers, dates, semver).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The values of multi-value operators, sorted: their order carries no meaning.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// A variant: of a strategy, or (older servers) of a flag environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Variant name.
    pub name: String,
    /// Weight out of 1000.
    pub weight: u32,
    /// `variable` (re-weighted by the server) or `fix`.
    pub weight_type: String,
    /// Stickiness context field (`default` for Unleash's own choice). Unleash stores
    /// `default` where none is given, so a variant read without one has `default`.
    #[serde(
        default = "default_stickiness",
        skip_serializing_if = "Option::is_none"
    )]
    pub stickiness: Option<String>,
    /// Optional payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Payload>,
    /// Per-context overrides (environment variants of older servers only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<VariantOverride>,
}

impl Default for Variant {
    fn default() -> Self {
        Self {
            name: String::new(),
            weight: 0,
            weight_type: String::new(),
            stickiness: default_stickiness(),
            payload: None,
            overrides: Vec::new(),
        }
    }
}

/// What Unleash stores as a variant's stickiness when none is given.
pub fn default_stickiness() -> Option<String> {
    Some("default".to_string())
}

/// A variant payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payload {
    /// `string`, `json`, `csv` or `number`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The payload text.
    pub value: String,
}

/// A legacy variant override: context values that always get this variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantOverride {
    /// The context field.
    pub context_name: String,
    /// Values, sorted.
    pub values: Vec<String>,
}

/// A context field definition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextField {
    /// Whether every Unleash server has this field.
    #[serde(default, skip_serializing_if = "is_false")]
    pub builtin: bool,
    /// Free-text description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether the field may be used for stickiness (not when a file leaves it out).
    #[serde(default)]
    pub stickiness: bool,
    /// The project that owns it, for project-scoped fields (Unleash 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Legal values, sorted by value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub legal_values: Vec<LegalValue>,
}

/// One legal value of a context field.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegalValue {
    /// The value.
    pub value: String,
    /// Optional description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A segment: a named, reusable list of constraints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    /// Free-text description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The project it is scoped to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Constraints, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<Constraint>,
    /// True when only the name is known: a raw Unleash export carries no segment
    /// definitions, so such a segment can be referenced but never written.
    #[serde(default, skip_serializing_if = "is_false")]
    pub incomplete: bool,
}

/// A strategy definition: built-in or custom.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyDefinition {
    /// Whether the server ships it (not editable).
    #[serde(default, skip_serializing_if = "is_false")]
    pub builtin: bool,
    /// Name shown in the UI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Free-text description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether it is deprecated.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deprecated: bool,
    /// Parameter definitions, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<StrategyParameter>,
}

/// One parameter of a strategy definition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyParameter {
    /// Parameter name.
    pub name: String,
    /// `string`, `percentage`, `list`, `number` or `boolean`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Free-text description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether a value must be given.
    pub required: bool,
}

/// A tag type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagType {
    /// Whether every Unleash server has it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub builtin: bool,
    /// Free-text description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Icon name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    /// Colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[cfg(test)]
mod small_collection_tests {
    use super::*;

    #[test]
    fn maps_and_tag_sets_read_in_any_order_are_sorted_and_deduplicated() {
        let flag: Flag = serde_json::from_str(
            r#"{"type": "release", "impression_data": false, "stale": false,
                "tags": [{"type": "b", "value": "2"}, {"type": "a", "value": "1"}, {"type": "b", "value": "2"}],
                "environments": {"production": {"enabled": true, "strategies": [
                    {"name": "flexibleRollout", "parameters": {"stickiness": "default", "rollout": "5", "groupId": "g"}}
                ]}, "development": {"enabled": false}}}"#,
        )
        .unwrap();
        let keys: Vec<&String> = flag.environments.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["development", "production"]);
        let params: Vec<&String> = flag.environments.get("production").unwrap().strategies[0]
            .parameters
            .iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(params, ["groupId", "rollout", "stickiness"]);
        let tags: Vec<String> = flag.tags.iter().map(ToString::to_string).collect();
        assert_eq!(tags, ["a:1", "b:2"]);
        assert!(flag.tags.contains(&Tag {
            kind: "b".into(),
            value: "2".into()
        }));
        // Written back sorted, as a BTreeMap/BTreeSet would be, and an empty map as {}.
        let empty: SmallMap<String, String> = SmallMap::default();
        assert_eq!(serde_json::to_string(&empty).unwrap(), "{}");
        let text = serde_json::to_string(&flag).unwrap();
        assert!(text.find("development").unwrap() < text.find("production").unwrap());
        assert!(text.find("\"a\"").unwrap() < text.find("\"b\"").unwrap());
    }
}

#[cfg(test)]
mod variant_tests {
    use super::*;

    #[test]
    fn a_variant_without_stickiness_has_the_one_unleash_stores() {
        // A hand-written or generated snapshot may leave stickiness out; Unleash stores
        // `default` then, so reading it otherwise would plan an overwrite after every apply.
        let v: Variant =
            serde_json::from_str(r#"{"name": "a", "weight": 500, "weight_type": "variable"}"#)
                .unwrap();
        assert_eq!(v.stickiness.as_deref(), Some("default"));
        assert_eq!(Variant::default().stickiness.as_deref(), Some("default"));
    }
}
