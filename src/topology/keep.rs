//! `[[spokes.keep]]`: fields of some flags that a spoke owns, and the checks that keep
//! them apart from the spoke's `overrides`.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;

use globset::{Glob, GlobSet};
use toml::Spanned;

use super::raw::RawKeep;
use super::{Checker, Override};

/// Fields of some flags that a spoke owns: a sync leaves them as the spoke has them.
#[derive(Debug, Clone)]
pub struct Keep {
    /// Flag name globs as written.
    pub flags: Vec<String>,
    flags_set: GlobSet,
    /// Spoke environment it applies to (per-environment fields only); `None` is every
    /// synced environment.
    pub environment: Option<String>,
    /// The fields kept.
    pub fields: Vec<KeptField>,
    /// Line of the rule in the topology file.
    pub line: usize,
    span: Range<usize>,
}

impl Keep {
    /// Whether this rule applies to the named flag.
    pub fn matches(&self, flag: &str) -> bool {
        self.flags_set.is_match(flag)
    }

    /// Whether this rule applies in spoke environment `env`.
    pub fn in_environment(&self, env: &str) -> bool {
        self.environment.as_deref().is_none_or(|e| e == env)
    }
}

/// One field a `keep` rule names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeptField {
    /// The enabled state in an environment.
    Enabled,
    /// The strategies of an environment (with their parameters).
    Strategies,
    /// The environment's variants.
    Variants,
    /// One strategy parameter, on every strategy of an environment that has it.
    Parameter(String),
    /// The description.
    Description,
    /// The tags.
    Tags,
    /// The links.
    Links,
    /// The parent flags.
    Dependencies,
    /// The whole flag: created when missing, never overwritten after.
    All,
}

impl KeptField {
    /// The field a `fields` entry names.
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "enabled" => Self::Enabled,
            "strategies" => Self::Strategies,
            "variants" => Self::Variants,
            "description" => Self::Description,
            "tags" => Self::Tags,
            "links" => Self::Links,
            "dependencies" => Self::Dependencies,
            "*" => Self::All,
            _ => match text.strip_prefix("parameters.") {
                Some(name) if !name.is_empty() => Self::Parameter(name.to_string()),
                _ => return None,
            },
        })
    }

    /// Whether the field is per environment (the others are the flag's own).
    pub fn per_environment(&self) -> bool {
        matches!(
            self,
            Self::Enabled | Self::Strategies | Self::Variants | Self::Parameter(_)
        )
    }

    /// Whether an override that sets these fields (`enabled`, parameter names) writes
    /// this field.
    fn overridden_by(&self, o: &Override) -> bool {
        match self {
            Self::Enabled => o.enabled.is_some(),
            Self::Parameter(p) => o.parameters.contains_key(p),
            Self::Strategies => !o.parameters.is_empty(),
            Self::All => true,
            _ => false,
        }
    }
}

impl fmt::Display for KeptField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Enabled => f.write_str("enabled"),
            Self::Strategies => f.write_str("strategies"),
            Self::Variants => f.write_str("variants"),
            Self::Parameter(p) => write!(f, "parameters.{p}"),
            Self::Description => f.write_str("description"),
            Self::Tags => f.write_str("tags"),
            Self::Links => f.write_str("links"),
            Self::Dependencies => f.write_str("dependencies"),
            Self::All => f.write_str("*"),
        }
    }
}

const FIELDS_HINT: &str = "fields: enabled, strategies, variants, parameters.<name>, description, tags, links, dependencies, or \"*\" (create-only)";

/// Whether two flag globs can name the same flag, as far as it can be told from their
/// text: equal, or one matches the other's text (`kill-*` and `kill-eu`, or `kill-eu-*`).
fn globs_overlap(a: &str, b: &str) -> bool {
    let matches =
        |glob: &str, text: &str| Glob::new(glob).is_ok_and(|g| g.compile_matcher().is_match(text));
    a == b || matches(a, b) || matches(b, a)
}

impl Checker<'_> {
    /// Checks one `[[spokes.keep]]` rule of spoke `spoke`.
    pub(super) fn keep(
        &mut self,
        spoke: &str,
        span: Range<usize>,
        raw: RawKeep,
        spoke_envs: &BTreeSet<&String>,
    ) -> Option<Keep> {
        if raw.flags.is_empty() {
            self.problem(
                Some(span.clone()),
                format!("keep rule of spoke `{spoke}` names no `flags`"),
                Some("add flags = [\"glob\", ...] naming the flags whose fields the spoke owns"),
            );
        }
        if raw.fields.is_empty() {
            self.problem(
                Some(span.clone()),
                format!("keep rule of spoke `{spoke}` keeps no `fields`"),
                Some(FIELDS_HINT),
            );
        }
        self.synced_environment("keep rule", raw.environment.as_ref(), spoke, spoke_envs);
        let mut fields = Vec::new();
        for f in &raw.fields {
            match KeptField::parse(f.get_ref()) {
                Some(field) if raw.environment.is_some() && !field.per_environment() => {
                    self.problem(
                        Some(f.span()),
                        format!("`{field}` is not per environment, but this keep rule names an `environment`"),
                        Some("keep it in a rule without `environment`"),
                    );
                }
                Some(field) => fields.push(field),
                None => self.problem(
                    Some(f.span()),
                    format!(
                        "unknown field `{}` in keep rule of spoke `{spoke}`",
                        crate::redact::escape_controls(f.get_ref())
                    ),
                    Some(FIELDS_HINT),
                ),
            }
        }
        fields.sort();
        fields.dedup();
        let flags_set = self.globs(&raw.flags)?;
        Some(Keep {
            flags: raw.flags.iter().map(|f| f.get_ref().clone()).collect(),
            flags_set,
            environment: raw.environment.map(Spanned::into_inner),
            fields,
            line: self.loc.line(span.start),
            span,
        })
    }

    /// A field both kept and overridden for the same flags is a contradiction: reported
    /// with both lines.
    pub(super) fn keep_against_overrides(
        &mut self,
        spoke: &str,
        keeps: &[Keep],
        overrides: &[Override],
    ) {
        for k in keeps {
            for o in overrides {
                let same_env = match (&k.environment, &o.environment) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                };
                let same_flags = k
                    .flags
                    .iter()
                    .any(|a| o.flags.iter().any(|b| globs_overlap(a, b)));
                let Some(field) = k.fields.iter().find(|f| f.overridden_by(o)) else {
                    continue;
                };
                if same_env && same_flags {
                    self.problem(
                        Some(k.span.clone()),
                        format!(
                            "spoke `{spoke}` both keeps (line {}) and overrides (line {}) `{field}` of the same flags",
                            k.line, o.line
                        ),
                        Some("a field is either the spoke's own (keep) or set by the topology (overrides); remove it from one of them"),
                    );
                }
            }
        }
    }
}
