//! The request bodies flagfleet sends, as Unleash's admin API documents them. Optional
//! keys are left out when unset, as the server's defaults are what an unset key means.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// `POST /api/admin/features-batch/export`: a project's flags in one environment
/// (`project`), or flags by name in any project (`features`; empty for all projects).
#[derive(Debug, Clone, Serialize)]
pub struct ExportRequest<'a> {
    /// The environment whose strategies and enabled state are exported.
    pub environment: &'a str,
    /// The project exported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<&'a str>,
    /// The flags exported by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features: Option<&'a [&'a str]>,
}

/// `POST /api/admin/playground`.
#[derive(Debug, Clone, Serialize)]
pub struct PlaygroundRequest<'a> {
    /// The environment evaluated.
    pub environment: &'a str,
    /// The projects evaluated.
    pub projects: [&'a str; 1],
    /// The evaluation context.
    pub context: PlaygroundContext,
}

/// The context of a playground evaluation (only the required `appName`).
#[derive(Debug, Clone, Serialize)]
pub struct PlaygroundContext {
    /// The application name evaluated as.
    #[serde(rename = "appName")]
    pub app_name: &'static str,
}

/// A context field.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextFieldBody {
    /// Its name.
    pub name: String,
    /// Its description (empty for none).
    pub description: String,
    /// Whether it may be used for stickiness.
    pub stickiness: bool,
    /// Its legal values.
    pub legal_values: Vec<LegalValueBody>,
}

/// A legal value of a context field.
#[derive(Debug, Clone, Serialize)]
pub struct LegalValueBody {
    /// The value.
    pub value: String,
    /// Its description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A tag type.
#[derive(Debug, Clone, Serialize)]
pub struct TagTypeBody {
    /// Its name.
    pub name: String,
    /// Its description (empty for none).
    pub description: String,
    /// Its icon.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    /// Its colour.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

/// A strategy definition (a custom strategy).
#[derive(Debug, Clone, Serialize)]
pub struct StrategyDefinitionBody {
    /// Its name.
    pub name: String,
    /// Its description (empty for none).
    pub description: String,
    /// Its parameters.
    pub parameters: Vec<ParameterBody>,
    /// Its title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// A parameter of a strategy definition.
#[derive(Debug, Clone, Serialize)]
pub struct ParameterBody {
    /// Its name.
    pub name: String,
    /// Its type (`string`, `percentage`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// Its description (empty for none).
    pub description: String,
    /// Whether it is required.
    pub required: bool,
}

/// A segment.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentBody {
    /// Its name.
    pub name: String,
    /// Its description (empty for none).
    pub description: String,
    /// Its constraints.
    pub constraints: Vec<ConstraintBody>,
}

/// A constraint (of a segment or a strategy).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConstraintBody {
    /// The context field constrained.
    pub context_name: String,
    /// The operator (`IN`, `STR_CONTAINS`, ...).
    pub operator: String,
    /// Whether the result is inverted.
    pub inverted: bool,
    /// Whether text compares without case.
    pub case_insensitive: bool,
    /// The values (list operators).
    pub values: Vec<String>,
    /// The value (single-value operators).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A variant (of a strategy or an environment).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VariantBody {
    /// Its name.
    pub name: String,
    /// Its weight.
    pub weight: u32,
    /// `variable` or `fix`.
    pub weight_type: String,
    /// Its stickiness (`default` for none).
    pub stickiness: String,
    /// Its payload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<PayloadBody>,
    /// Its overrides.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<OverrideBody>,
}

/// A variant's payload.
#[derive(Debug, Clone, Serialize)]
pub struct PayloadBody {
    /// `string`, `json`, `csv` or `number`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The payload, as text.
    pub value: String,
}

/// A variant override: the context values that always get the variant.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OverrideBody {
    /// The context field.
    pub context_name: String,
    /// Its values.
    pub values: Vec<String>,
}

/// A strategy of a flag in one environment; segments by the spoke's ids.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StrategyBody {
    /// The strategy definition's name.
    pub name: String,
    /// Its title (empty for none).
    pub title: String,
    /// Whether it is disabled.
    pub disabled: bool,
    /// Its parameters.
    pub parameters: BTreeMap<String, String>,
    /// Its constraints.
    pub constraints: Vec<ConstraintBody>,
    /// Its variants.
    pub variants: Vec<VariantBody>,
    /// The ids of its segments on the spoke.
    pub segments: Vec<i64>,
    /// Its sort order: the one the spoke holds (as the same JSON number) or its position.
    pub sort_order: Value,
}

/// A tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagBody {
    /// The tag type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The value.
    pub value: String,
}

/// A flag's tags added and removed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TagChanges {
    /// Tags added.
    pub added_tags: Vec<TagBody>,
    /// Tags removed.
    pub removed_tags: Vec<TagBody>,
}

/// A flag created with its tags (which must exist as tags already).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureCreate<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its description (empty for none).
    pub description: &'a str,
    /// Its type (`release`, `experiment`, ...).
    #[serde(rename = "type")]
    pub kind: &'a str,
    /// Whether impression events are emitted.
    pub impression_data: bool,
    /// Its tags.
    pub tags: Vec<TagBody>,
}

/// Flags switched on (or off) in one environment in one request.
#[derive(Debug, Clone, Serialize)]
pub struct BulkToggle<'a> {
    /// The flags' names.
    pub features: &'a [String],
}

/// A flag's metadata overwritten.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureUpdate<'a> {
    /// Its description (empty for none).
    pub description: &'a str,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: &'a str,
    /// Whether impression events are emitted.
    pub impression_data: bool,
    /// Whether it is stale (as the spoke has it: not the hub's to decide).
    pub stale: bool,
}

/// A flag's dependency on a parent flag.
#[derive(Debug, Clone, Serialize)]
pub struct DependencyBody<'a> {
    /// The parent flag.
    pub feature: &'a str,
    /// Whether the parent must be enabled (or disabled).
    pub enabled: bool,
    /// The parent's variants that satisfy it.
    pub variants: &'a [String],
}

/// A flag's link.
#[derive(Debug, Clone, Serialize)]
pub struct LinkBody {
    /// The URL.
    pub url: String,
    /// Its title (`null` for none).
    pub title: Option<String>,
}

/// One strategy's place in a re-ordering.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SortOrder<'a> {
    /// The strategy's id.
    pub id: &'a str,
    /// Its new sort order.
    pub sort_order: usize,
}
