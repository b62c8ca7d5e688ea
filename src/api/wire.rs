//! Unleash's own JSON shapes (admin API answers and the batch export). A key that every
//! answer of that kind has (Unleash's OpenAPI `required`, e.g. an export's `features`, a
//! flag's `name`) is required here: an answer without it is an error naming the key, not
//! an empty list (a maintenance page served as `{}` must not read as a hub without flags).
//! Keys some server version leaves out are optional; unknown keys are ignored, for
//! forward compatibility. Only the state reader's `normalize` turns these into the model.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// The answer of `POST /api/admin/features-batch/export` (one environment).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Export {
    pub features: Vec<ExportFeature>,
    pub feature_strategies: Vec<FeatureStrategy>,
    #[serde(default)]
    pub feature_environments: Vec<FeatureEnvironment>,
    #[serde(default)]
    pub context_fields: Vec<ContextField>,
    #[serde(default)]
    pub feature_tags: Vec<FeatureTag>,
    #[serde(default)]
    pub segments: Vec<SegmentRef>,
    pub tag_types: Vec<TagType>,
    #[serde(default)]
    pub dependencies: Vec<FeatureDependencies>,
    #[serde(default)]
    pub links: Vec<FeatureLinks>,
}

/// Only the flags of a batch export (the rest of the answer is skipped unread).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ExportedFlags {
    pub features: Vec<ExportFeature>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportFeature {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub stale: Option<bool>,
    #[serde(default)]
    pub impression_data: Option<bool>,
    #[serde(default)]
    pub archived: Option<bool>,
    /// Environment variants of servers older than 4.x carried here.
    #[serde(default)]
    pub variants: Option<Vec<Variant>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureStrategy {
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    #[serde(default)]
    pub feature_name: Option<String>,
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub disabled: Option<bool>,
    #[serde(default)]
    pub sort_order: Option<f64>,
    #[serde(default, deserialize_with = "string_map")]
    pub parameters: BTreeMap<String, String>,
    #[serde(default)]
    pub constraints: Vec<Constraint>,
    #[serde(default)]
    pub variants: Vec<Variant>,
    #[serde(default)]
    pub segments: Vec<i64>,
}

impl FeatureStrategy {
    /// Orders strategies by `sortOrder` (a missing one as 0): the order Unleash evaluates
    /// them in.
    pub fn by_sort_order(a: &Self, b: &Self) -> std::cmp::Ordering {
        a.sort_order
            .unwrap_or_default()
            .total_cmp(&b.sort_order.unwrap_or_default())
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureEnvironment {
    #[serde(default)]
    pub feature_name: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub environment: Option<String>,
    pub enabled: bool,
    #[serde(default)]
    pub variants: Vec<Variant>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Constraint {
    pub context_name: String,
    pub operator: String,
    #[serde(default)]
    pub inverted: Option<bool>,
    #[serde(default)]
    pub case_insensitive: Option<bool>,
    #[serde(default, deserialize_with = "opt_string")]
    pub value: Option<String>,
    #[serde(default, deserialize_with = "string_vec")]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Variant {
    pub name: String,
    pub weight: f64,
    #[serde(default)]
    pub weight_type: Option<String>,
    #[serde(default)]
    pub stickiness: Option<String>,
    #[serde(default)]
    pub payload: Option<Payload>,
    #[serde(default)]
    pub overrides: Vec<Override>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Payload {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(deserialize_with = "json_text")]
    pub value: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Override {
    pub context_name: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextField {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub stickiness: Option<bool>,
    #[serde(default)]
    pub sort_order: Option<i64>,
    #[serde(default)]
    pub legal_values: Vec<LegalValue>,
    #[serde(default)]
    pub project: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct LegalValue {
    pub value: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// A tag on a flag; older servers say `type`/`value`, newer `tagType`/`tagValue`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureTag {
    /// Always in an export; absent in `GET /api/admin/tags`.
    #[serde(default)]
    pub feature_name: String,
    #[serde(alias = "type")]
    pub tag_type: String,
    #[serde(alias = "value")]
    pub tag_value: String,
}

/// `GET /api/admin/tags` and `GET /api/admin/features/{name}/tags`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TagList {
    pub tags: Vec<FeatureTag>,
}

/// A segment as the export lists it: id and name only.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct SegmentRef {
    pub id: i64,
    pub name: String,
}

/// A full segment from `GET /api/admin/segments`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Segment {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub project: Option<String>,
    pub constraints: Vec<Constraint>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Segments {
    pub segments: Vec<Segment>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct TagType {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub icon: Option<String>,
    #[serde(default)]
    pub color: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TagTypes {
    pub tag_types: Vec<TagType>,
}

/// A strategy definition from `GET /api/admin/strategies`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StrategyDefinition {
    pub name: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub editable: Option<bool>,
    #[serde(default)]
    pub deprecated: Option<bool>,
    pub parameters: Vec<StrategyParameter>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct StrategyParameter {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub required: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Strategies {
    pub strategies: Vec<StrategyDefinition>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct FeatureDependencies {
    pub feature: String,
    pub dependencies: Vec<Dependency>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Dependency {
    pub feature: String,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub variants: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct FeatureLinks {
    pub feature: String,
    pub links: Vec<Link>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Link {
    #[serde(default)]
    pub id: Option<String>,
    pub url: String,
    #[serde(default)]
    pub title: Option<String>,
}

/// The answer of `GET .../environments/{env}/strategies` (ordered by `sortOrder`).
pub type StrategyList = Vec<FeatureStrategy>;

/// The answer of `POST /api/admin/playground`: every flag of the asked projects in one
/// environment, with its strategies in evaluation order (only ids are read).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Playground {
    pub features: Vec<PlaygroundFeature>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PlaygroundFeature {
    pub name: String,
    pub strategies: PlaygroundStrategies,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PlaygroundStrategies {
    pub data: Vec<PlaygroundStrategy>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PlaygroundStrategy {
    #[serde(default)]
    pub id: Option<String>,
}

/// The answer of `GET /api/admin/search/features`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Search {
    pub features: Vec<SearchFeature>,
    #[serde(default)]
    pub total: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchFeature {
    pub name: String,
    pub project: String,
}

/// The answer of `GET /api/admin/ui-config` (only what we use).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UiConfig {
    #[serde(default)]
    pub version: Option<String>,
}

/// The answer of `GET /api/admin/projects/{p}/features` (only what we use): each flag's
/// enabled state per environment (read on Unleash 6.x, whose batch export misreports it).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProjectFeatures {
    pub features: Vec<ProjectFeature>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProjectFeature {
    pub name: String,
    pub environments: Vec<ProjectFeatureEnvironment>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProjectFeatureEnvironment {
    pub name: String,
    pub enabled: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Projects {
    pub projects: Vec<Project>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Project {
    pub id: String,
    /// Active (not archived) flags of the project (absent on some versions: then unknown).
    #[serde(default, rename = "featureCount")]
    pub feature_count: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Environments {
    pub environments: Vec<Environment>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Environment {
    pub name: String,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// Accepts a JSON string, number or boolean as text (Unleash stores parameters as strings,
/// but hand-made exports hold numbers).
fn scalar_text(v: serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

fn string_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    /// A parameter map given twice the same key is refused, not read as its last value.
    #[derive(Deserialize)]
    struct Unique(#[serde(deserialize_with = "unique_map")] BTreeMap<String, serde_json::Value>);
    let raw: Option<Unique> = Option::deserialize(d)?;
    Ok(raw
        .map(|u| u.0)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| scalar_text(v).map(|v| (k, v)))
        .collect())
}

fn string_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let raw: Option<Vec<serde_json::Value>> = Option::deserialize(d)?;
    Ok(raw
        .unwrap_or_default()
        .into_iter()
        .filter_map(scalar_text)
        .collect())
}

fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let raw: Option<serde_json::Value> = Option::deserialize(d)?;
    Ok(raw.and_then(scalar_text))
}

/// A payload value is text; an object (some hand-written exports) is kept as its JSON text.
fn json_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let raw: serde_json::Value = serde_json::Value::deserialize(d)?;
    Ok(scalar_text(raw).unwrap_or_default())
}

/// The answer of `GET /api/admin/projects/{p}/features/{f}` (only what apply needs).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureDetail {
    pub environments: Vec<FeatureDetailEnvironment>,
    #[serde(default)]
    pub links: Vec<Link>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureDetailEnvironment {
    pub name: String,
    pub enabled: bool,
    pub strategies: Vec<FeatureStrategy>,
}

/// A JSON object as a map, refusing a key that occurs twice (serde would keep the last
/// silently; for a hand-edited snapshot that hides a mistake). The error is raised right
/// after the second key, so serde_json reports its line and column.
pub(crate) fn unique_map<'de, D, K, V>(d: D) -> Result<BTreeMap<K, V>, D::Error>
where
    D: serde::Deserializer<'de>,
    K: Ord + std::fmt::Display + Deserialize<'de>,
    V: Deserialize<'de>,
{
    struct Unique<K, V>(std::marker::PhantomData<(K, V)>);

    impl<'de, K, V> serde::de::Visitor<'de> for Unique<K, V>
    where
        K: Ord + std::fmt::Display + Deserialize<'de>,
        V: Deserialize<'de>,
    {
        type Value = BTreeMap<K, V>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(key) = map.next_key::<K>()? {
                if out.contains_key(&key) {
                    let shown = crate::redact::escape_controls(&key.to_string());
                    return Err(serde::de::Error::custom(format!("duplicate key `{shown}`")));
                }
                let value = map.next_value()?;
                out.insert(key, value);
            }
            Ok(out)
        }
    }

    d.deserialize_map(Unique(std::marker::PhantomData))
}

/// `GET /api/admin/search/events`: one page, newest first.
#[derive(Debug, Deserialize)]
pub struct EventPage {
    /// The events.
    pub events: Vec<Event>,
}

/// One event of an instance's log.
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    /// The event's id on that instance.
    pub id: i64,
    /// The event type, e.g. `feature-environment-disabled`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Who made the change.
    #[serde(rename = "createdBy")]
    pub created_by: String,
    /// When (RFC 3339).
    #[serde(rename = "createdAt")]
    pub created_at: String,
    /// The flag it concerns, if any.
    #[serde(rename = "featureName")]
    pub feature_name: Option<String>,
    /// The `name` in the event's `data` (the object as written: a segment's name for
    /// segment events), if it holds one.
    #[serde(default, rename = "data", deserialize_with = "name_in")]
    pub data_name: Option<String>,
    /// The `name` in the event's `preData` (the object before the change), if it holds one.
    #[serde(default, rename = "preData", deserialize_with = "name_in")]
    pub pre_data_name: Option<String>,
}

/// The string `name` of an event's `data` or `preData`, whatever else (or whatever
/// shape) it holds.
fn name_in<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    Ok(value
        .as_ref()
        .and_then(|v| v.get("name"))
        .and_then(serde_json::Value::as_str)
        .map(str::to_string))
}

/// `GET /api/admin/user`: who the token acts as.
#[derive(Debug, Deserialize)]
pub struct Me {
    /// The user (for an admin API token, the token's name as `username`).
    pub user: MeUser,
}

/// The user a token acts as: the names its writes are recorded under (`createdBy`).
#[derive(Debug, Deserialize)]
pub struct MeUser {
    /// The user name.
    pub username: Option<String>,
    /// The e-mail address.
    pub email: Option<String>,
}
