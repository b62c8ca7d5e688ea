//! The topology file: which hub, which spokes, what to sync and how.
//!
//! Loading happens in two steps, like ripgrep's arguments: `raw` mirrors the TOML with
//! spans; [`load`] checks every rule, collects every problem it finds (not just the first)
//! and returns one validated [`Topology`] before anything touches the network.

mod diagnostic;
mod keep;
mod raw;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::api::names::NameKind;
pub use diagnostic::Diagnostic;
use diagnostic::{suggest, Locator};
pub use keep::{Keep, KeptField};
use raw::{RawEndpoint, RawOverride, RawScaffolding, RawSelect, RawTopology};

/// The default topology file name.
pub const DEFAULT_PATH: &str = "flagfleet.toml";

/// A validated topology.
#[derive(Debug, Clone)]
pub struct Topology {
    /// The file it was read from.
    pub path: PathBuf,
    /// The hub: the source of truth.
    pub hub: Hub,
    /// Which hub flags are synced.
    pub select: Selection,
    /// What to do with each kind of scaffolding, fleet-wide.
    pub scaffolding: Scaffolding,
    /// The spokes, in file order.
    pub spokes: Vec<Spoke>,
}

/// The hub instance and the environments synced from it.
#[derive(Debug, Clone)]
pub struct Hub {
    /// Where the hub is.
    pub instance: Instance,
    /// Hub environments to sync.
    pub environments: Vec<String>,
}

/// A spoke instance and how the hub is mapped onto it.
#[derive(Debug, Clone)]
pub struct Spoke {
    /// Where the spoke is.
    pub instance: Instance,
    /// Hub environment -> spoke environment.
    pub environments: BTreeMap<String, String>,
    /// Further narrowing of the hub selection for this spoke.
    pub select: Option<Selection>,
    /// Scaffolding policy after this spoke's overrides.
    pub scaffolding: Scaffolding,
    /// Whether flags absent from the hub are archived on this spoke.
    pub prune: bool,
    /// The most flags one run may archive on this spoke (`max_archive`); `None` is the
    /// default, [`Spoke::archive_limit`].
    pub max_archive: Option<usize>,
    /// Per-spoke differences from the hub.
    pub overrides: Vec<Override>,
    /// Fields of some flags that the spoke owns (`[[spokes.keep]]`).
    pub keep: Vec<Keep>,
    /// Rollout wave (1 or more): apply goes wave by wave, in ascending order.
    pub wave: u32,
    /// What a plan does with spoke-originated drift.
    pub on_drift: OnDrift,
}

/// What a plan does with a flag changed on the spoke by someone other than flagfleet
/// since flagfleet last wrote it (`on_drift`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum OnDrift {
    /// Overwrite it with the hub's, as any difference (the plan says who changed it).
    #[default]
    Overwrite,
    /// Leave it: a blocked skip that names who changed it.
    Block,
}

impl Spoke {
    /// The spoke environments it syncs, sorted (what is read from it and written to it).
    pub fn synced_environments(&self) -> Vec<String> {
        let mut environments: Vec<String> = self.environments.values().cloned().collect();
        environments.sort();
        environments
    }
}

/// One Unleash instance: a live server or a snapshot file.
#[derive(Debug, Clone)]
pub struct Instance {
    /// Name used in reports and on the command line.
    pub name: String,
    /// Where its state comes from.
    pub location: Location,
    /// The Unleash project synced.
    pub project: String,
    /// Line of its table in the topology file, for messages.
    pub line: usize,
}

impl Instance {
    /// What the instance writes to, to tell entries that share it: a server's URL (its
    /// projects share the server's context fields, segments, strategies, tag types and
    /// flag names) or a file's path.
    pub fn place(&self) -> String {
        match &self.location {
            Location::Live { url, .. } => normalize_url(url),
            Location::File(path) => std::fs::canonicalize(path)
                .unwrap_or_else(|_| path.clone())
                .display()
                .to_string(),
        }
    }
}

/// Where an instance's state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A running Unleash server.
    Live {
        /// Base URL, without a trailing slash.
        url: String,
        /// Where its API token comes from.
        token: TokenSource,
        /// How it may be reached.
        transport: Transport,
    },
    /// A snapshot file (or, for the hub, a raw Unleash export), path resolved against the
    /// topology file's folder.
    File(PathBuf),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Live { url, .. } => f.write_str(url),
            Location::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Per-instance transport settings of a live instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transport {
    /// `allow_insecure_http = true`: plain http to a host that is not loopback is allowed.
    pub allow_insecure_http: bool,
    /// `ca_file`: PEM certificates trusted in addition to the system's, path resolved
    /// against the topology file's folder.
    pub ca_file: Option<PathBuf>,
}

/// Where an API token is read from: never the topology file itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// The name of an environment variable.
    Env {
        /// Variable name.
        var: String,
        /// `file:line` of `token_env` in the topology, for messages.
        at: String,
    },
    /// A file holding the token (e.g. a mounted secret).
    File {
        /// Path, resolved against the topology file's folder.
        path: PathBuf,
        /// `file:line` of `token_file` in the topology, for messages.
        at: String,
    },
}

/// Which flags are synced: a union of tag and name matches, minus exclusions.
#[derive(Debug, Clone)]
pub struct Selection {
    /// `type:value` tags; a flag carrying any of them is selected.
    pub tags: Vec<String>,
    /// Name globs as written.
    pub names: Vec<String>,
    /// Exclusion globs as written.
    pub exclude: Vec<String>,
    names_set: GlobSet,
    exclude_set: GlobSet,
}

impl Selection {
    /// Whether neither tags nor names narrow the selection (every flag is selected).
    pub fn selects_everything(&self) -> bool {
        self.tags.is_empty() && self.names.is_empty()
    }

    /// Whether a flag with this name and these `(type, value)` tags is selected.
    pub fn matches<'t>(
        &self,
        name: &str,
        mut tags: impl Iterator<Item = (&'t str, &'t str)>,
    ) -> bool {
        // An empty glob set still prepares the name for matching: skip it, as most
        // selections have no excludes.
        if !self.exclude_set.is_empty() && self.exclude_set.is_match(name) {
            return false;
        }
        self.selects_everything()
            || (!self.names_set.is_empty() && self.names_set.is_match(name))
            || tags.any(|(kind, value)| {
                self.tags.iter().any(|s| {
                    s.split_once(':')
                        .is_some_and(|(k, v)| k == kind && v == value)
                })
            })
    }
}

/// What a sync does with one kind of scaffolding.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Create missing items and overwrite differing ones.
    #[default]
    Sync,
    /// Create missing items, never change existing ones.
    CreateOnly,
    /// Leave this kind alone.
    Ignore,
}

/// The policy for each kind of scaffolding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scaffolding {
    /// Context fields.
    pub context_fields: Policy,
    /// Tag types.
    pub tag_types: Policy,
    /// Segments.
    pub segments: Policy,
    /// Custom strategy definitions.
    pub strategies: Policy,
}

/// A per-spoke difference from the hub for some flags.
#[derive(Debug, Clone)]
pub struct Override {
    /// Flag name globs as written.
    pub flags: Vec<String>,
    flags_set: GlobSet,
    /// Spoke environment it applies to; `None` is every synced environment.
    pub environment: Option<String>,
    /// Forced enabled state.
    pub enabled: Option<bool>,
    /// Parameters set on every strategy of the flag that has them.
    pub parameters: BTreeMap<String, String>,
    /// Line of the override in the topology file.
    pub line: usize,
}

impl Override {
    /// Whether this override applies to the named flag.
    pub fn matches(&self, flag: &str) -> bool {
        self.flags_set.is_match(flag)
    }
}

/// The default archive limit of a spoke with `selected` selected flags: 10 flags or 10 %
/// of them, whichever is larger.
pub fn default_archive_limit(selected: usize) -> usize {
    (selected / 10).max(10)
}

impl Spoke {
    /// The most flags one run may archive here, given how many flags it selects.
    pub fn archive_limit(&self, selected: usize) -> usize {
        self.max_archive
            .unwrap_or_else(|| default_archive_limit(selected))
    }
}

impl Topology {
    /// Every instance: the hub first, then the spokes in file order.
    pub fn instances(&self) -> impl Iterator<Item = &Instance> {
        std::iter::once(&self.hub.instance).chain(self.spokes.iter().map(|s| &s.instance))
    }

    /// The instance with this name.
    pub fn instance(&self, name: &str) -> Option<&Instance> {
        self.instances().find(|i| i.name == name)
    }

    /// The spoke with this name.
    pub fn spoke(&self, name: &str) -> Option<&Spoke> {
        self.spokes.iter().find(|s| s.instance.name == name)
    }

    /// The names of the spokes among `spokes` that write where another of them writes
    /// (the same server or file, [`Instance::place`]).
    pub fn sharing_a_place<'a>(spokes: impl IntoIterator<Item = &'a Spoke>) -> HashSet<String> {
        let mut by_place: HashMap<String, Vec<&str>> = HashMap::new();
        for s in spokes {
            by_place
                .entry(s.instance.place())
                .or_default()
                .push(&s.instance.name);
        }
        by_place
            .into_values()
            .filter(|names| names.len() > 1)
            .flatten()
            .map(str::to_string)
            .collect()
    }
}

/// Why a topology could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// The file could not be read.
    #[error("cannot read topology file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file was read but breaks one or more rules.
    #[error("{}", render_all(.diagnostics))]
    Invalid {
        /// Every problem found.
        diagnostics: Vec<Diagnostic>,
    },
}

fn render_all(diagnostics: &[Diagnostic]) -> String {
    let n = diagnostics.len();
    let mut out = format!(
        "invalid topology ({n} problem{}):",
        if n == 1 { "" } else { "s" }
    );
    for d in diagnostics {
        out.push_str("\n  ");
        out.push_str(&d.to_string().replace('\n', "\n  "));
    }
    out
}

/// The JSON Schema of the topology file (`flagfleet schema`, `docs/flagfleet.schema.json`),
/// pretty, with a trailing newline. It describes the file's shape (keys, types, defaults,
/// enums); rules across keys, such as `url` or `file` but not both, are checked by
/// [`load`] alone.
pub fn json_schema() -> String {
    let mut schema = schemars::schema_for!(RawTopology).to_value();
    tidy_schema(&mut schema);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// Fits schemars' output to a TOML file: TOML has no null, so a key that may be left out
/// is only not required (`Option<T>` is `T`, not `T or null`); and the lines of doc
/// comments are joined, so that editors wrap descriptions (a blank line stays a break).
fn tidy_schema(value: &mut serde_json::Value) {
    use serde_json::Value;
    let Value::Object(map) = value else {
        if let Value::Array(items) = value {
            items.iter_mut().for_each(tidy_schema);
        }
        return;
    };
    if let Some(Value::Array(types)) = map.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            map.insert("type".into(), only);
        }
    }
    if let Some(Value::Array(any)) = map.get_mut("anyOf") {
        any.retain(|s| s.get("type").is_none_or(|t| t != "null"));
        if any.len() == 1 {
            if let Value::Object(only) = any.remove(0) {
                map.remove("anyOf");
                map.extend(only);
            }
        }
    }
    if let Some(Value::String(text)) = map.get_mut("description") {
        *text = text
            .split("\n\n")
            .map(|p| p.split('\n').collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join("\n\n");
    }
    for (key, v) in map.iter_mut() {
        if key != "description" {
            tidy_schema(v);
        }
    }
}

/// Reads and validates the topology file at `path`.
pub fn load(path: &Path) -> Result<Topology, TopologyError> {
    let source = std::fs::read_to_string(path).map_err(|source| TopologyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &source)
}

/// Validates topology `source` as if read from `path` (relative paths resolve against its
/// folder).
pub fn parse(path: &Path, source: &str) -> Result<Topology, TopologyError> {
    let loc = Locator::new(path, source);
    let raw: RawTopology = toml::from_str(source).map_err(|e| TopologyError::Invalid {
        diagnostics: vec![toml_diagnostic(&loc, &e)],
    })?;
    let base = path.parent().unwrap_or(Path::new("")).to_path_buf();
    let mut checker = Checker {
        loc: &loc,
        path: path.to_path_buf(),
        base,
        problems: Vec::new(),
    };
    let topology = checker.topology(raw);
    match topology {
        Some(t) if checker.problems.is_empty() => Ok(t),
        _ => {
            let mut diagnostics = checker.problems;
            diagnostics.sort_by_key(|d| (d.line, d.column));
            Err(TopologyError::Invalid { diagnostics })
        }
    }
}

/// Turns a TOML/serde error into a diagnostic, with a "did you mean" for unknown keys.
fn toml_diagnostic(loc: &Locator<'_>, e: &toml::de::Error) -> Diagnostic {
    let message = e.message().trim().to_string();
    let hint = unknown_field_hint(&message);
    let message = message
        .replace("unknown field", "unknown key")
        .replace("missing field", "missing key");
    loc.at(e.span(), message, hint)
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" message, suggests the closest.
fn unknown_field_hint(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, expected) = rest.split_once('`')?;
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect::<Vec<_>>();
    match suggest(unknown, candidates.iter().copied()) {
        Some(best) => Some(format!("did you mean `{best}`?")),
        None if !candidates.is_empty() => {
            Some(format!("expected one of: {}", candidates.join(", ")))
        }
        None => None,
    }
}

struct Checker<'a> {
    loc: &'a Locator<'a>,
    path: PathBuf,
    base: PathBuf,
    problems: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn problem(
        &mut self,
        span: Option<Range<usize>>,
        message: impl Into<String>,
        hint: Option<&str>,
    ) {
        let d = self.loc.at(span, message, hint.map(str::to_string));
        self.problems.push(d);
    }

    fn topology(&mut self, raw: RawTopology) -> Option<Topology> {
        let Some(raw_hub) = raw.hub else {
            self.problem(
                None,
                "missing [hub] table",
                Some("add a [hub] table with `url` and `token_env`, or `file`"),
            );
            return None;
        };
        let hub_span = raw_hub.span();
        let raw_hub = raw_hub.into_inner();
        let hub_name = raw_hub
            .name
            .as_ref()
            .map_or_else(|| "hub".to_string(), |n| n.get_ref().clone());
        if let Some(name) = &raw_hub.name {
            self.check_name(name);
        }
        let hub_instance = self.instance(&hub_name, hub_span.clone(), raw_hub.endpoint(), "[hub]");
        let environments: Vec<String> = match &raw_hub.environments {
            None => vec!["production".to_string()],
            Some(envs) => {
                if envs.get_ref().is_empty() {
                    self.problem(
                        Some(envs.span()),
                        "`environments` is empty",
                        Some("name at least one hub environment, e.g. [\"production\"]"),
                    );
                }
                let mut seen = BTreeSet::new();
                for env in envs.get_ref() {
                    self.check_unleash_name(NameKind::Environment, env);
                    if !seen.insert(env.get_ref().clone()) {
                        self.problem(
                            Some(env.span()),
                            format!("environment `{}` is listed twice", env.get_ref()),
                            None,
                        );
                    }
                }
                envs.get_ref().iter().map(|e| e.get_ref().clone()).collect()
            }
        };
        let select = self.selection(&raw.select);
        let scaffolding = merge_scaffolding(Scaffolding::default(), &raw.scaffolding);

        if raw.spokes.is_empty() {
            self.problem(
                None,
                "no spokes: the topology needs at least one [[spokes]] table",
                Some("add [[spokes]] with `name` and `url` + `token_env`, or `file`"),
            );
        }
        let mut spokes = Vec::new();
        let mut names: BTreeMap<String, usize> = BTreeMap::new();
        names.insert(hub_name.clone(), self.loc.line(hub_span.start));
        for raw_spoke in raw.spokes {
            let span = raw_spoke.span();
            let raw_spoke = raw_spoke.into_inner();
            let Some(name) = raw_spoke.name.clone() else {
                self.problem(
                    Some(span),
                    "spoke without `name`",
                    Some("every [[spokes]] table needs a unique `name`, e.g. name = \"eu-west\""),
                );
                continue;
            };
            self.check_name(&name);
            let line = self.loc.line(name.span().start);
            if let Some(first) = names.insert(name.get_ref().clone(), line) {
                self.problem(
                    Some(name.span()),
                    format!(
                        "duplicate instance name `{}` (first used on line {first})",
                        name.get_ref()
                    ),
                    Some("every spoke needs a name of its own, different from the hub's"),
                );
            }
            if let Some(spoke) = self.spoke(
                name.get_ref(),
                span,
                raw_spoke,
                &hub_instance,
                &environments,
                &select,
                scaffolding,
            ) {
                spokes.push(spoke);
            }
        }
        Some(Topology {
            path: self.path.clone(),
            hub: Hub {
                instance: hub_instance?,
                environments,
            },
            select: select?,
            scaffolding,
            spokes,
        })
    }

    fn check_name(&mut self, name: &Spanned<String>) {
        let n = name.get_ref();
        let ok = !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            self.problem(
                Some(name.span()),
                format!("invalid instance name `{}`", crate::redact::escape_controls(n)),
                Some("use letters, digits, `-`, `_` and `.` only: the name is used in file names and on the command line"),
            );
        }
    }

    /// A project or environment name must be one Unleash allows: it goes into URLs.
    fn check_unleash_name(&mut self, kind: NameKind, name: &Spanned<String>) {
        if let Err(e) = crate::api::names::check(kind, name.get_ref()) {
            self.problem(Some(name.span()), e.to_string(), None);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn spoke(
        &mut self,
        name: &str,
        span: Range<usize>,
        raw: raw::RawSpoke,
        hub: &Option<Instance>,
        hub_envs: &[String],
        hub_select: &Option<Selection>,
        fleet: Scaffolding,
    ) -> Option<Spoke> {
        let instance = self.instance(
            name,
            span.clone(),
            raw.endpoint(),
            &format!("spoke `{name}`"),
        );
        let environments = self.spoke_environments(name, &raw.environments, hub_envs);
        let select = raw.select.as_ref().and_then(|s| self.selection(s));
        let scaffolding = match &raw.scaffolding {
            Some(s) => merge_scaffolding(fleet, s),
            None => fleet,
        };
        if raw.prune {
            let everything = hub_select.as_ref().is_some_and(|s| s.selects_everything())
                && select.as_ref().is_none_or(|s| s.selects_everything());
            if everything {
                self.problem(
                    Some(span.clone()),
                    format!("spoke `{name}` has `prune = true` but selects every flag"),
                    Some("pruning archives spoke flags that are not on the hub; with no `tags` or `names` in [select] or the spoke's `select` it would archive every spoke-local flag"),
                );
            }
        }
        let max_archive = self.max_archive(name, &raw);
        let spoke_envs: BTreeSet<&String> = environments.values().collect();
        let mut overrides = Vec::new();
        for o in raw.overrides {
            let o_span = o.span();
            if let Some(o) = self.override_(name, o_span, o.into_inner(), &spoke_envs) {
                overrides.push(o);
            }
        }
        let mut keep = Vec::new();
        for k in raw.keep {
            let k_span = k.span();
            if let Some(k) = self.keep(name, k_span, k.into_inner(), &spoke_envs) {
                keep.push(k);
            }
        }
        self.keep_against_overrides(name, &keep, &overrides);
        let instance = instance?;
        if let Some(hub) = hub {
            self.check_not_the_hub(name, span, hub, hub_envs, &instance, &environments);
        }
        Some(Spoke {
            instance,
            environments,
            select,
            scaffolding,
            prune: raw.prune,
            max_archive,
            overrides,
            keep,
            wave: self.wave(name, &raw.wave),
            on_drift: raw.on_drift.unwrap_or_default(),
        })
    }

    /// The spoke's `wave`, checked (a whole number from 1; 1 when left out).
    fn wave(&mut self, name: &str, raw: &Option<Spanned<i64>>) -> u32 {
        let Some(w) = raw else {
            return 1;
        };
        match u32::try_from(*w.get_ref()) {
            Ok(w) if w >= 1 => w,
            _ => {
                self.problem(
                    Some(w.span()),
                    format!("`wave` of spoke `{name}` must be a whole number from 1"),
                    Some("wave 1 is applied first (e.g. a canary), then 2, and so on"),
                );
                1
            }
        }
    }

    /// The spoke's environment mapping (hub environment -> spoke environment): as
    /// written, or every hub environment under its own name.
    fn spoke_environments(
        &mut self,
        name: &str,
        raw: &Option<Spanned<BTreeMap<String, Spanned<String>>>>,
        hub_envs: &[String],
    ) -> BTreeMap<String, String> {
        match raw {
            None => hub_envs.iter().map(|e| (e.clone(), e.clone())).collect(),
            Some(map) => {
                let mut targets: BTreeMap<&str, &str> = BTreeMap::new();
                for (hub_env, spoke_env) in map.get_ref() {
                    self.check_unleash_name(NameKind::Environment, spoke_env);
                    if !hub_envs.contains(hub_env) {
                        self.problem(
                            Some(spoke_env.span()),
                            format!(
                                "spoke `{name}` maps hub environment `{hub_env}`, which the hub does not sync"
                            ),
                            Some(&format!(
                                "the hub syncs: {}; add it to [hub] environments or remove the mapping",
                                hub_envs.join(", ")
                            )),
                        );
                    }
                    if let Some(other) = targets.insert(spoke_env.get_ref(), hub_env) {
                        self.problem(
                            Some(spoke_env.span()),
                            format!(
                                "spoke `{name}` maps both `{other}` and `{hub_env}` onto environment `{}`",
                                spoke_env.get_ref()
                            ),
                            Some("each spoke environment can receive one hub environment"),
                        );
                    }
                }
                if map.get_ref().is_empty() {
                    self.problem(
                        Some(map.span()),
                        format!("spoke `{name}` maps no environments"),
                        Some("leave `environments` out to sync every hub environment under its own name"),
                    );
                }
                map.get_ref()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.get_ref().clone()))
                    .collect()
            }
        }
    }

    /// The spoke's `max_archive`, checked (not negative, only with `prune = true`).
    fn max_archive(&mut self, name: &str, raw: &raw::RawSpoke) -> Option<usize> {
        let max_archive = match &raw.max_archive {
            Some(n) if *n.get_ref() < 0 => {
                self.problem(
                    Some(n.span()),
                    format!("`max_archive` of spoke `{name}` is negative"),
                    Some("the most flags one run may archive: 0 or more"),
                );
                None
            }
            Some(n) => usize::try_from(*n.get_ref()).ok(),
            None => None,
        };
        if let (Some(n), false) = (&raw.max_archive, raw.prune) {
            self.problem(
                Some(n.span()),
                format!("spoke `{name}` sets `max_archive` but not `prune = true`"),
                Some("`max_archive` limits pruning; without `prune = true` nothing is archived"),
            );
        }
        max_archive
    }

    /// Reports a spoke that is the hub itself (same place and a shared environment).
    fn check_not_the_hub(
        &mut self,
        name: &str,
        span: Range<usize>,
        hub: &Instance,
        hub_envs: &[String],
        instance: &Instance,
        environments: &BTreeMap<String, String>,
    ) {
        if same_place(hub, instance)
            && hub_envs
                .iter()
                .any(|e| environments.values().any(|s| s == e))
        {
            self.problem(
                Some(span),
                format!(
                    "spoke `{name}` is the hub itself (same {}, project and environment)",
                    match instance.location {
                        Location::Live { .. } => "url",
                        Location::File(_) => "file",
                    }
                ),
                Some("a spoke must be another instance, another project or another environment"),
            );
        }
    }

    /// Checks that the `environment` a rule (`what`: "override", "keep rule") of spoke
    /// `spoke` names, if any, is one the spoke syncs.
    fn synced_environment(
        &mut self,
        what: &str,
        environment: Option<&Spanned<String>>,
        spoke: &str,
        spoke_envs: &BTreeSet<&String>,
    ) {
        let Some(env) = environment else { return };
        if !spoke_envs.contains(env.get_ref()) {
            let known: Vec<&str> = spoke_envs.iter().map(|s| s.as_str()).collect();
            self.problem(
                Some(env.span()),
                format!(
                    "{what} names environment `{}`, which spoke `{spoke}` does not sync",
                    env.get_ref()
                ),
                Some(&format!("spoke environments synced: {}", known.join(", "))),
            );
        }
    }

    fn override_(
        &mut self,
        spoke: &str,
        span: Range<usize>,
        raw: RawOverride,
        spoke_envs: &BTreeSet<&String>,
    ) -> Option<Override> {
        if raw.flags.is_empty() {
            self.problem(
                Some(span.clone()),
                format!("override of spoke `{spoke}` names no `flags`"),
                Some("add flags = [\"glob\", ...] naming the flags it changes"),
            );
        }
        if raw.enabled.is_none() && raw.parameters.is_empty() {
            self.problem(
                Some(span.clone()),
                format!("override of spoke `{spoke}` changes nothing"),
                Some("set `enabled` and/or `parameters`"),
            );
        }
        self.synced_environment("override", raw.environment.as_ref(), spoke, spoke_envs);
        let flags_set = self.globs(&raw.flags)?;
        Some(Override {
            flags: raw.flags.iter().map(|f| f.get_ref().clone()).collect(),
            flags_set,
            environment: raw.environment.map(|e| e.into_inner()),
            enabled: raw.enabled,
            parameters: raw
                .parameters
                .into_iter()
                .map(|(k, v)| (k, v.into_inner().into_text()))
                .collect(),
            line: self.loc.line(span.start),
        })
    }

    /// Where a live instance's token comes from, checked: one of `token_env` (naming a
    /// variable, never holding a token) and `token_file`.
    fn token_source(&mut self, raw: &RawEndpoint, what: &str) -> Option<TokenSource> {
        let token = match (&raw.token_env, &raw.token_file) {
            (Some(var), None) => Some(TokenSource::Env {
                var: var.get_ref().clone(),
                at: format!(
                    "{}:{}",
                    self.path.display(),
                    self.loc.line(var.span().start)
                ),
            }),
            (None, Some(file)) => Some(TokenSource::File {
                path: self.base.join(file.get_ref()),
                at: format!(
                    "{}:{}",
                    self.path.display(),
                    self.loc.line(file.span().start)
                ),
            }),
            (Some(_), Some(file)) => {
                self.problem(
                    Some(file.span()),
                    format!("{what} has both `token_env` and `token_file`"),
                    Some("keep one of them"),
                );
                None
            }
            (None, None) => None,
        };
        if let Some(var) = &raw.token_env {
            let v = var.get_ref();
            if v.is_empty() || v.contains(['.', ':', '*', ' ']) {
                self.problem(
                    Some(var.span()),
                    format!("`token_env` of {what} must name an environment variable"),
                    Some("put the token itself in that variable, never in this file, e.g. token_env = \"EU_WEST_TOKEN\""),
                );
            }
        }
        token
    }

    fn instance(
        &mut self,
        name: &str,
        span: Range<usize>,
        mut raw: RawEndpoint,
        what: &str,
    ) -> Option<Instance> {
        let line = self.loc.line(span.start);
        if let Some(p) = &raw.project {
            self.check_unleash_name(NameKind::Project, p);
        }
        let token = self.token_source(&raw, what);
        let project = raw
            .project
            .take()
            .map_or_else(|| "default".to_string(), |p| p.into_inner());
        let allow_insecure_http = raw
            .allow_insecure_http
            .as_ref()
            .is_some_and(|a| *a.get_ref());
        let ca_file = raw.ca_file.as_ref().map(|f| self.base.join(f.get_ref()));
        match (raw.url.take(), raw.file.take()) {
            (Some(url), None) => {
                self.check_url(&url, what, allow_insecure_http);
                let Some(token) = token else {
                    if raw.token_env.is_none() && raw.token_file.is_none() {
                        self.problem(
                            Some(span),
                            format!("{what} has a `url` but no `token_env`"),
                            Some("name the environment variable that holds its admin API token: token_env = \"...\""),
                        );
                    }
                    return None;
                };
                Some(Instance {
                    name: name.to_string(),
                    location: Location::Live {
                        url: url.get_ref().trim_end_matches('/').to_string(),
                        token,
                        transport: Transport {
                            allow_insecure_http,
                            ca_file,
                        },
                    },
                    project,
                    line,
                })
            }
            (None, Some(file)) => {
                self.check_file_keys(&raw, what);
                Some(Instance {
                    name: name.to_string(),
                    location: Location::File(self.base.join(file.get_ref())),
                    project,
                    line,
                })
            }
            (Some(url), Some(_)) => {
                self.problem(
                    Some(url.span()),
                    format!("{what} has both `url` and `file`"),
                    Some("an instance is either a live server (`url`) or a snapshot (`file`)"),
                );
                None
            }
            (None, None) => {
                self.problem(
                    Some(span),
                    format!("{what} has neither `url` nor `file`"),
                    Some("set url = \"https://...\" with token_env, or file = \"snapshot.json\""),
                );
                None
            }
        }
    }

    /// Reports a `url` that carries credentials, is plain http to a host that is not
    /// loopback (without `allow_insecure_http`), or is not an http(s) URL.
    fn check_url(&mut self, url: &Spanned<String>, what: &str, allow_insecure_http: bool) {
        let parsed = url::Url::parse(url.get_ref());
        match parsed {
            Ok(u) if !u.username().is_empty() || u.password().is_some() => {
                self.problem(
                    Some(url.span()),
                    format!("`url` of {what} carries credentials"),
                    Some("remove the user name and password from the URL; the token goes in the variable named by `token_env`"),
                );
            }
            Ok(u)
                if u.scheme() == "http"
                    && !allow_insecure_http
                    && !crate::client::is_loopback(&u) =>
            {
                self.problem(
                    Some(url.span()),
                    format!(
                        "`url` of {what} is plain http to {}, which is not a loopback address",
                        u.host_str().unwrap_or_default()
                    ),
                    Some("use https; or, if the network is trusted, set allow_insecure_http = true (the token crosses it in clear)"),
                );
            }
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => {}
            _ => {
                self.problem(
                    Some(url.span()),
                    format!(
                        "`url` of {what} is not an http(s) URL: `{}`",
                        crate::redact::escape_controls(url.get_ref())
                    ),
                    Some("e.g. url = \"https://unleash.example.com\""),
                );
            }
        }
    }

    /// Reports keys a snapshot `file` does not take (a token, transport settings).
    fn check_file_keys(&mut self, raw: &RawEndpoint, what: &str) {
        if let Some(t) = raw.token_env.as_ref().or(raw.token_file.as_ref()) {
            self.problem(
                Some(t.span()),
                format!("{what} is a snapshot `file`: it takes no token"),
                Some("remove `token_env`/`token_file`, or use `url` for a live server"),
            );
        }
        let transport_key = match (&raw.allow_insecure_http, &raw.ca_file) {
            (Some(a), _) => Some(("allow_insecure_http", a.span())),
            (None, Some(c)) => Some(("ca_file", c.span())),
            (None, None) => None,
        };
        if let Some((key, span)) = transport_key {
            self.problem(
                Some(span),
                format!("{what} is a snapshot `file`: `{key}` applies only to a `url`"),
                Some("remove it, or use `url` for a live server"),
            );
        }
    }

    fn selection(&mut self, raw: &RawSelect) -> Option<Selection> {
        for tag in &raw.tags {
            let ok = tag
                .get_ref()
                .split_once(':')
                .is_some_and(|(t, v)| !t.is_empty() && !v.is_empty());
            if !ok {
                self.problem(
                    Some(tag.span()),
                    format!("tag `{}` is not of the form `type:value`", tag.get_ref()),
                    Some("e.g. tags = [\"sync:global\"]"),
                );
            }
        }
        let names_set = self.globs(&raw.names);
        let exclude_set = self.globs(&raw.exclude);
        Some(Selection {
            tags: raw.tags.iter().map(|t| t.get_ref().clone()).collect(),
            names: raw.names.iter().map(|t| t.get_ref().clone()).collect(),
            exclude: raw.exclude.iter().map(|t| t.get_ref().clone()).collect(),
            names_set: names_set?,
            exclude_set: exclude_set?,
        })
    }

    fn globs(&mut self, patterns: &[Spanned<String>]) -> Option<GlobSet> {
        let mut builder = GlobSetBuilder::new();
        let mut ok = true;
        for p in patterns {
            match Glob::new(p.get_ref()) {
                Ok(g) => {
                    builder.add(g);
                }
                Err(e) => {
                    ok = false;
                    self.problem(
                        Some(p.span()),
                        format!("invalid glob `{}`: {}", p.get_ref(), e.kind()),
                        Some("`*` matches any run of characters, `?` one, `[abc]` a set"),
                    );
                }
            }
        }
        if !ok {
            return None;
        }
        builder.build().ok()
    }
}

fn merge_scaffolding(base: Scaffolding, raw: &RawScaffolding) -> Scaffolding {
    Scaffolding {
        context_fields: raw.context_fields.unwrap_or(base.context_fields),
        tag_types: raw.tag_types.unwrap_or(base.tag_types),
        segments: raw.segments.unwrap_or(base.segments),
        strategies: raw.strategies.unwrap_or(base.strategies),
    }
}

/// Whether two instances are the same Unleash project at the same place.
fn same_place(a: &Instance, b: &Instance) -> bool {
    if a.project != b.project {
        return false;
    }
    match (&a.location, &b.location) {
        (Location::Live { url: ua, .. }, Location::Live { url: ub, .. }) => {
            normalize_url(ua) == normalize_url(ub)
        }
        (Location::File(pa), Location::File(pb)) => {
            let ca = std::fs::canonicalize(pa).unwrap_or_else(|_| pa.clone());
            let cb = std::fs::canonicalize(pb).unwrap_or_else(|_| pb.clone());
            ca == cb
        }
        _ => false,
    }
}

/// A server URL as one spelling (`https://H:443/` and `https://h` alike), for telling
/// whether two instances are one server.
pub(crate) fn normalize_url(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(parsed) => parsed.as_str().trim_end_matches('/').to_ascii_lowercase(),
        Err(_) => u.trim_end_matches('/').to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests;
