//! The topology file exactly as written: serde types with spans, before any checking.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::Policy;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTopology {
    pub hub: Option<Spanned<RawHub>>,
    #[serde(default)]
    pub select: RawSelect,
    #[serde(default)]
    pub scaffolding: RawScaffolding,
    #[serde(default)]
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHub {
    pub name: Option<Spanned<String>>,
    pub url: Option<Spanned<String>>,
    pub file: Option<Spanned<String>>,
    pub token_env: Option<Spanned<String>>,
    pub token_file: Option<Spanned<String>>,
    pub project: Option<Spanned<String>>,
    pub allow_insecure_http: Option<Spanned<bool>>,
    pub ca_file: Option<Spanned<String>>,
    pub environments: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSelect {
    #[serde(default)]
    pub tags: Vec<Spanned<String>>,
    #[serde(default)]
    pub names: Vec<Spanned<String>>,
    #[serde(default)]
    pub exclude: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScaffolding {
    pub context_fields: Option<Policy>,
    pub tag_types: Option<Policy>,
    pub segments: Option<Policy>,
    pub strategies: Option<Policy>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSpoke {
    pub name: Option<Spanned<String>>,
    pub url: Option<Spanned<String>>,
    pub file: Option<Spanned<String>>,
    pub token_env: Option<Spanned<String>>,
    pub token_file: Option<Spanned<String>>,
    pub project: Option<Spanned<String>>,
    pub allow_insecure_http: Option<Spanned<bool>>,
    pub ca_file: Option<Spanned<String>>,
    pub environments: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    pub select: Option<RawSelect>,
    pub scaffolding: Option<RawScaffolding>,
    #[serde(default)]
    pub prune: bool,
    pub max_archive: Option<Spanned<i64>>,
    #[serde(default)]
    pub overrides: Vec<Spanned<RawOverride>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOverride {
    #[serde(default)]
    pub flags: Vec<Spanned<String>>,
    pub environment: Option<Spanned<String>>,
    pub enabled: Option<bool>,
    #[serde(default)]
    pub parameters: BTreeMap<String, Spanned<ParamValue>>,
}

/// A parameter value: Unleash stores strings, but `rollout = 10` is a natural thing to write.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
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
