//! Unleash's own JSON shapes (admin API answers and the batch export), as loosely typed as
//! the API is: every field optional where some server version leaves it out, unknown fields
//! ignored. Only [`super::normalize`] turns these into the model.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// The answer of `POST /api/admin/features-batch/export` (one environment).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Export {
    pub features: Vec<ExportFeature>,
    pub feature_strategies: Vec<FeatureStrategy>,
    pub feature_environments: Vec<FeatureEnvironment>,
    pub context_fields: Vec<ContextField>,
    pub feature_tags: Vec<FeatureTag>,
    pub segments: Vec<SegmentRef>,
    pub tag_types: Vec<TagType>,
    pub dependencies: Vec<FeatureDependencies>,
    pub links: Vec<FeatureLinks>,
}

/// Only the flags of a batch export (the rest of the answer is skipped unread).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ExportedFlags {
    pub features: Vec<ExportFeature>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExportFeature {
    pub name: String,
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub project: Option<String>,
    pub stale: Option<bool>,
    pub impression_data: Option<bool>,
    pub archived: Option<bool>,
    /// Environment variants of servers older than 4.x carried here.
    pub variants: Option<Vec<Variant>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FeatureStrategy {
    pub id: Option<String>,
    pub name: String,
    pub feature_name: Option<String>,
    pub environment: Option<String>,
    pub title: Option<String>,
    pub disabled: Option<bool>,
    pub sort_order: Option<f64>,
    #[serde(deserialize_with = "string_map")]
    pub parameters: BTreeMap<String, String>,
    pub constraints: Vec<Constraint>,
    pub variants: Vec<Variant>,
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
#[serde(rename_all = "camelCase", default)]
pub struct FeatureEnvironment {
    pub feature_name: Option<String>,
    pub name: Option<String>,
    pub environment: Option<String>,
    pub enabled: bool,
    pub variants: Vec<Variant>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Constraint {
    pub context_name: String,
    pub operator: String,
    pub inverted: Option<bool>,
    pub case_insensitive: Option<bool>,
    #[serde(deserialize_with = "opt_string")]
    pub value: Option<String>,
    #[serde(deserialize_with = "string_vec")]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Variant {
    pub name: String,
    pub weight: f64,
    pub weight_type: Option<String>,
    pub stickiness: Option<String>,
    pub payload: Option<Payload>,
    pub overrides: Vec<Override>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Payload {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(deserialize_with = "json_text")]
    pub value: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Override {
    pub context_name: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContextField {
    pub name: String,
    pub description: Option<String>,
    pub stickiness: Option<bool>,
    pub sort_order: Option<i64>,
    pub legal_values: Vec<LegalValue>,
    pub project: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct LegalValue {
    pub value: String,
    pub description: Option<String>,
}

/// A tag on a flag; older servers say `type`/`value`, newer `tagType`/`tagValue`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FeatureTag {
    pub feature_name: String,
    #[serde(alias = "type")]
    pub tag_type: String,
    #[serde(alias = "value")]
    pub tag_value: String,
}

/// `GET /api/admin/tags` and `GET /api/admin/features/{name}/tags`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TagList {
    pub tags: Vec<FeatureTag>,
}

/// A segment as the export lists it: id and name only.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct SegmentRef {
    pub id: i64,
    pub name: String,
}

/// A full segment from `GET /api/admin/segments`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Segment {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub project: Option<String>,
    pub constraints: Vec<Constraint>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Segments {
    pub segments: Vec<Segment>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct TagType {
    pub name: String,
    pub description: Option<String>,
    pub icon: Option<String>,
    pub color: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TagTypes {
    pub tag_types: Vec<TagType>,
}

/// A strategy definition from `GET /api/admin/strategies`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StrategyDefinition {
    pub name: String,
    pub title: Option<String>,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub editable: Option<bool>,
    pub deprecated: Option<bool>,
    pub parameters: Vec<StrategyParameter>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct StrategyParameter {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub description: Option<String>,
    pub required: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Strategies {
    pub strategies: Vec<StrategyDefinition>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct FeatureDependencies {
    pub feature: String,
    pub dependencies: Vec<Dependency>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Dependency {
    pub feature: String,
    pub enabled: Option<bool>,
    pub variants: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct FeatureLinks {
    pub feature: String,
    pub links: Vec<Link>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Link {
    pub id: Option<String>,
    pub url: String,
    pub title: Option<String>,
}

/// The answer of `GET .../environments/{env}/strategies` (ordered by `sortOrder`).
pub type StrategyList = Vec<FeatureStrategy>;

/// The answer of `POST /api/admin/playground`: every flag of the asked projects in one
/// environment, with its strategies in evaluation order (only ids are read).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Playground {
    pub features: Vec<PlaygroundFeature>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PlaygroundFeature {
    pub name: String,
    pub strategies: PlaygroundStrategies,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PlaygroundStrategies {
    pub data: Vec<PlaygroundStrategy>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PlaygroundStrategy {
    pub id: Option<String>,
}

/// The answer of `GET /api/admin/search/features`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Search {
    pub features: Vec<SearchFeature>,
    pub total: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SearchFeature {
    pub name: String,
    pub project: String,
    pub archived_at: Option<String>,
}

/// The answer of `GET /api/admin/ui-config` (only what we use).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UiConfig {
    pub version: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Projects {
    pub projects: Vec<Project>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Project {
    pub id: String,
    /// Active flags in the project (absent on some versions: then unknown).
    #[serde(rename = "featureCount")]
    pub feature_count: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Environments {
    pub environments: Vec<Environment>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Environment {
    pub name: String,
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
    let raw: Option<BTreeMap<String, serde_json::Value>> = Option::deserialize(d)?;
    Ok(raw
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
#[serde(rename_all = "camelCase", default)]
pub struct FeatureDetail {
    pub environments: Vec<FeatureDetailEnvironment>,
    pub links: Vec<Link>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FeatureDetailEnvironment {
    pub name: String,
    pub enabled: bool,
    pub strategies: Vec<FeatureStrategy>,
}
