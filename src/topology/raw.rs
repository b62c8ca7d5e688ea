//! The topology file exactly as written: serde types with spans, before any checking.
//!
//! These types are also the source of the topology's JSON Schema ([`super::json_schema`],
//! `flagfleet schema`): a key added here is in the schema too, with its doc comment as its
//! description. Spans are invisible in the file, so each `Spanned` field tells schemars
//! the plain type it holds (`#[schemars(with = ...)]`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use super::Policy;

/// A flagfleet topology file (`flagfleet.toml`): one hub, the spokes kept in line with it,
/// which hub flags are synced, and what happens to the scaffolding they need.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
// `spokes` is required, but read with a default so that its absence gets the checker's
// own message: schemars marks no defaulted key required, so the list is given here.
#[schemars(title = "flagfleet topology", extend("required" = ["hub", "spokes"]))]
pub(super) struct RawTopology {
    /// The hub: the Unleash instance that is the source of truth.
    #[schemars(with = "RawHub", required)]
    pub hub: Option<Spanned<RawHub>>,
    /// Which hub flags are synced to every spoke: flags carrying any of `tags` or matching
    /// any of `names`, minus `exclude`. With neither `tags` nor `names`, every flag.
    #[serde(default)]
    pub select: RawSelect,
    /// What a sync does with each kind of scaffolding, fleet-wide (default `sync` for
    /// each); a spoke's own `scaffolding` overrides single kinds.
    #[serde(default)]
    pub scaffolding: RawScaffolding,
    /// The spokes: Unleash instances kept in line with the hub, at least one.
    #[serde(default)]
    #[schemars(with = "Vec<RawSpoke>", length(min = 1))]
    pub spokes: Vec<Spanned<RawSpoke>>,
}

/// Keys shared by the hub and every spoke.
#[derive(Debug, Default, Deserialize)]
pub(super) struct RawEndpoint {
    pub url: Option<Spanned<String>>,
    pub file: Option<Spanned<String>>,
    pub token_env: Option<Spanned<String>>,
    pub token_file: Option<Spanned<String>>,
    pub project: Option<Spanned<String>>,
    pub allow_insecure_http: Option<Spanned<bool>>,
    pub ca_file: Option<Spanned<String>>,
}

/// The hub: a live Unleash server (`url` with `token_env` or `token_file`) or a snapshot
/// `file`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Hub")]
pub(super) struct RawHub {
    /// The hub's name in reports and on the command line (letters, digits, `-`, `_`, `.`).
    #[schemars(with = "Option<String>", pattern(r"^[A-Za-z0-9._-]+$"))]
    #[schemars(extend("default" = "hub"))]
    pub name: Option<Spanned<String>>,
    /// Base URL of a live Unleash server (http or https, no credentials); needs
    /// `token_env` or `token_file`. Not with `file`.
    #[schemars(with = "Option<String>", url)]
    pub url: Option<Spanned<String>>,
    /// A snapshot file (`flagfleet export`) or a raw Unleash export, relative to this
    /// file's folder. Not with `url`, and takes no token.
    #[schemars(with = "Option<String>")]
    pub file: Option<Spanned<String>>,
    /// The NAME of the environment variable holding the admin API token (never the token
    /// itself). Not with `token_file`.
    #[schemars(with = "Option<String>", pattern(r"^[^.:* ]+$"))]
    pub token_env: Option<Spanned<String>>,
    /// A file holding the admin API token (e.g. a mounted secret), relative to this
    /// file's folder. Not with `token_env`.
    #[schemars(with = "Option<String>")]
    pub token_file: Option<Spanned<String>>,
    /// The Unleash project synced.
    #[schemars(with = "Option<String>", extend("default" = "default"))]
    pub project: Option<Spanned<String>>,
    /// With `url`: allow plain `http://` to a host that is not a loopback address (the
    /// token then crosses the network in clear). Not with `file`.
    #[schemars(with = "Option<bool>", extend("default" = false))]
    pub allow_insecure_http: Option<Spanned<bool>>,
    /// With `url`: a PEM file of CA certificates trusted in addition to the system's (a
    /// private CA), relative to this file's folder. Not with `file`.
    #[schemars(with = "Option<String>")]
    pub ca_file: Option<Spanned<String>>,
    /// Hub environments synced, each named once.
    #[schemars(with = "Option<Vec<String>>", length(min = 1), extend("default" = ["production"], "uniqueItems" = true))]
    pub environments: Option<Spanned<Vec<Spanned<String>>>>,
}

/// Which hub flags are synced: flags carrying any of `tags` or matching any of `names`,
/// minus those matching `exclude`. With neither `tags` nor `names`, every flag.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Select")]
pub(super) struct RawSelect {
    /// Tags as `type:value`, e.g. `sync:global`; a flag carrying any of them is selected.
    #[serde(default)]
    #[schemars(with = "Vec<String>", inner(pattern(r"^[^:]+:.+$")))]
    pub tags: Vec<Spanned<String>>,
    /// Flag name globs (`*`, `?`, `[...]`), e.g. `checkout-*`.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub names: Vec<Spanned<String>>,
    /// Flag name globs never selected, even when a tag or name selects them.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub exclude: Vec<Spanned<String>>,
}

/// What a sync does with each kind of scaffolding. A kind left out is `sync` fleet-wide;
/// in a spoke's `scaffolding`, a kind left out follows the fleet-wide setting.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Scaffolding")]
pub(super) struct RawScaffolding {
    /// Context fields the synced flags' constraints use.
    pub context_fields: Option<Policy>,
    /// Tag types of the synced flags' tags.
    pub tag_types: Option<Policy>,
    /// Segments the synced flags' strategies use.
    pub segments: Option<Policy>,
    /// Custom strategy definitions the synced flags use.
    pub strategies: Option<Policy>,
}

/// A spoke: a live Unleash server (`url` with `token_env` or `token_file`) or a snapshot
/// `file`, kept in line with the hub.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Spoke")]
pub(super) struct RawSpoke {
    /// The spoke's name, unique in the fleet and different from the hub's (letters,
    /// digits, `-`, `_`, `.`); `--spoke NAME` on the command line.
    #[schemars(with = "String", pattern(r"^[A-Za-z0-9._-]+$"), required)]
    pub name: Option<Spanned<String>>,
    /// Base URL of a live Unleash server (http or https, no credentials); needs
    /// `token_env` or `token_file`. Not with `file`.
    #[schemars(with = "Option<String>", url)]
    pub url: Option<Spanned<String>>,
    /// A snapshot file (`flagfleet export`), relative to this file's folder; apply
    /// rewrites it atomically. Not with `url`, and takes no token.
    #[schemars(with = "Option<String>")]
    pub file: Option<Spanned<String>>,
    /// The NAME of the environment variable holding the admin API token (never the token
    /// itself). Not with `token_file`.
    #[schemars(with = "Option<String>", pattern(r"^[^.:* ]+$"))]
    pub token_env: Option<Spanned<String>>,
    /// A file holding the admin API token (e.g. a mounted secret), relative to this
    /// file's folder. Not with `token_env`.
    #[schemars(with = "Option<String>")]
    pub token_file: Option<Spanned<String>>,
    /// The Unleash project synced.
    #[schemars(with = "Option<String>", extend("default" = "default"))]
    pub project: Option<Spanned<String>>,
    /// With `url`: allow plain `http://` to a host that is not a loopback address (the
    /// token then crosses the network in clear). Not with `file`.
    #[schemars(with = "Option<bool>", extend("default" = false))]
    pub allow_insecure_http: Option<Spanned<bool>>,
    /// With `url`: a PEM file of CA certificates trusted in addition to the system's (a
    /// private CA), relative to this file's folder. Not with `file`.
    #[schemars(with = "Option<String>")]
    pub ca_file: Option<Spanned<String>>,
    /// Hub environment -> spoke environment, e.g. `{ production = "prod" }`. Left out,
    /// every hub environment is synced under its own name.
    #[schemars(with = "Option<BTreeMap<String, String>>", length(min = 1))]
    pub environments: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    /// Narrows the hub selection further for this spoke.
    pub select: Option<RawSelect>,
    /// This spoke's scaffolding policy, kind by kind, over the fleet-wide one.
    pub scaffolding: Option<RawScaffolding>,
    /// Archive (never delete) spoke flags that match the selection but are absent or
    /// archived on the hub. Needs a selection by `tags` or `names`.
    #[serde(default)]
    pub prune: bool,
    /// With `prune = true`: the most flags one run may archive on this spoke; a plan that
    /// would archive more is refused for it (`--allow-mass-archive` lifts the limit for one
    /// run). Default: 10 flags or 10 % of the spoke's selected flags, whichever is larger.
    #[schemars(with = "Option<u64>")]
    pub max_archive: Option<Spanned<i64>>,
    /// The rollout wave of this spoke (1 or more): `apply` applies wave 1's spokes first,
    /// concurrently, and a wave only once every spoke of the one before succeeded.
    #[schemars(with = "Option<u32>", range(min = 1), extend("default" = 1))]
    pub wave: Option<Spanned<i64>>,
    /// What a plan does with a flag someone other than flagfleet changed on this spoke
    /// since flagfleet last wrote it (from the event logs): `overwrite` it (default), or
    /// `block` it, naming who changed it.
    pub on_drift: Option<super::OnDrift>,
    /// Per-spoke differences from the hub for some flags.
    #[serde(default)]
    #[schemars(with = "Vec<RawOverride>")]
    pub overrides: Vec<Spanned<RawOverride>>,
    /// Fields of some flags that this spoke owns: a sync leaves them as the spoke has them
    /// (`fields = ["*"]`: the flags are created when missing and never overwritten).
    #[serde(default)]
    #[schemars(with = "Vec<RawKeep>")]
    pub keep: Vec<Spanned<RawKeep>>,
}

/// Fields of some flags that a spoke owns: plan and apply leave them as the spoke has
/// them (a flag missing on the spoke is still created with the hub's).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Keep", extend("required" = ["flags", "fields"]))]
pub(super) struct RawKeep {
    /// Flag name globs the rule applies to (at least one).
    #[serde(default)]
    #[schemars(with = "Vec<String>", length(min = 1))]
    pub flags: Vec<Spanned<String>>,
    /// The spoke environment it applies to; left out, every synced environment. Only for
    /// the per-environment fields (`enabled`, `strategies`, `variants`, `parameters.<name>`).
    #[schemars(with = "Option<String>")]
    pub environment: Option<Spanned<String>>,
    /// The fields kept: `enabled`, `strategies`, `variants`, `parameters.<name>` (one
    /// strategy parameter, e.g. `parameters.rollout`), `description`, `tags`, `links`,
    /// `dependencies`, or `*` (the whole flag: create-only).
    #[serde(default)]
    #[schemars(
        with = "Vec<String>",
        length(min = 1),
        inner(pattern(r"^(enabled|strategies|variants|description|tags|links|dependencies|\*|parameters\..+)$"))
    )]
    pub fields: Vec<Spanned<String>>,
}

/// A per-spoke difference from the hub: the named flags' enabled state and/or strategy
/// parameters on this spoke.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Override", extend("required" = ["flags"]))]
pub(super) struct RawOverride {
    /// Flag name globs the override applies to (at least one).
    #[serde(default)]
    #[schemars(with = "Vec<String>", length(min = 1))]
    pub flags: Vec<Spanned<String>>,
    /// The spoke environment it applies to; left out, every synced environment.
    #[schemars(with = "Option<String>")]
    pub environment: Option<Spanned<String>>,
    /// Forced enabled state of the flags.
    pub enabled: Option<bool>,
    /// Strategy parameters set on every strategy of the flags that has them, e.g.
    /// `{ rollout = "10" }` (numbers and booleans are written as text).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, ParamValue>")]
    pub parameters: BTreeMap<String, Spanned<ParamValue>>,
}

/// A parameter value: Unleash stores strings, but `rollout = 10` is a natural thing to write.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "ParameterValue")]
pub(super) enum ParamValue {
    Text(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
}

impl ParamValue {
    pub fn into_text(self) -> String {
        match self {
            ParamValue::Text(s) => s,
            ParamValue::Integer(i) => i.to_string(),
            ParamValue::Float(f) => f.to_string(),
            ParamValue::Bool(b) => b.to_string(),
        }
    }
}

impl RawHub {
    pub fn endpoint(&self) -> RawEndpoint {
        RawEndpoint {
            url: self.url.clone(),
            file: self.file.clone(),
            token_env: self.token_env.clone(),
            token_file: self.token_file.clone(),
            project: self.project.clone(),
            allow_insecure_http: self.allow_insecure_http.clone(),
            ca_file: self.ca_file.clone(),
        }
    }
}

impl RawSpoke {
    pub fn endpoint(&self) -> RawEndpoint {
        RawEndpoint {
            url: self.url.clone(),
            file: self.file.clone(),
            token_env: self.token_env.clone(),
            token_file: self.token_file.clone(),
            project: self.project.clone(),
            allow_insecure_http: self.allow_insecure_http.clone(),
            ca_file: self.ca_file.clone(),
        }
    }
}
