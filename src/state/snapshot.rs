//! Snapshot files: a [`State`] as versioned, pretty, stably ordered JSON, so that a
//! snapshot in git diffs line by line and reads back equal to what was written.
//!
//! A file instance may also be a raw Unleash batch export (`features`,
//! `featureStrategies`, ...): that is recognised here and normalized like a live read,
//! with the limits a raw export has (no segment definitions, no strategy definitions).

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use super::model::State;
use super::normalize::{normalize, NormalizeError, Parts};
use super::wire;

/// The value of the `format` key of every snapshot.
pub const FORMAT: &str = "flagfleet-snapshot";
/// The snapshot format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// A snapshot file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`FORMAT_VERSION`] for files this build writes.
    pub format_version: u32,
    /// Where the state was read from.
    pub source: SnapshotSource,
    /// The state.
    pub state: State,
}

/// Where a snapshot's state was read from (informational; never compared).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSource {
    /// Instance name in the topology.
    pub instance: String,
    /// URL or file it was read from.
    pub location: String,
    /// Unleash version, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unleash_version: Option<String>,
}

impl Snapshot {
    /// Wraps a state.
    pub fn new(state: State, source: SnapshotSource) -> Self {
        Self {
            format: FORMAT.to_string(),
            format_version: FORMAT_VERSION,
            source,
            state,
        }
    }

    /// The snapshot as pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        // Serializing plain structs and string-keyed maps cannot fail.
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Writes [`Snapshot::to_json`]'s text to `out` as it is made (a large state is never
    /// held twice, as a state and as its text).
    pub fn write_json(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, self)?;
        out.write_all(b"\n")
    }
}

/// What a file instance holds.
#[derive(Debug)]
pub enum FileContents {
    /// A flagfleet snapshot.
    Snapshot(Box<Snapshot>),
    /// A raw Unleash batch export (one environment), already normalized.
    RawExport {
        /// The state built from it.
        state: Box<State>,
        /// The environment it holds.
        environment: String,
    },
}

/// Why a file could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not JSON, or JSON of the wrong shape.
    #[error("line {line}, column {column}: {message}")]
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What serde said.
        message: String,
    },
    /// A snapshot of another format version.
    #[error("snapshot format_version {found} is not supported (this flagfleet reads version {FORMAT_VERSION})")]
    Version {
        /// The version in the file.
        found: u64,
    },
    /// Neither a snapshot nor an Unleash export.
    #[error("neither a flagfleet snapshot (\"format\": \"{FORMAT}\") nor an Unleash batch export (\"features\", \"featureStrategies\")")]
    Unrecognised,
    /// The raw export's contents contradict themselves.
    #[error(transparent)]
    Normalize(#[from] NormalizeError),
}

impl From<serde_json::Error> for ParseError {
    fn from(e: serde_json::Error) -> Self {
        let message = e.to_string();
        // serde_json appends " at line L column C"; we report those separately.
        let message = match message.rfind(" at line ") {
            Some(i) => message[..i].to_string(),
            None => message,
        };
        ParseError::Json {
            line: e.line(),
            column: e.column(),
            message,
        }
    }
}

/// The top-level keys that tell a snapshot from a raw export; the rest is skipped.
#[derive(Deserialize)]
struct Probe {
    #[serde(default, deserialize_with = "string_or_skip")]
    format: Option<String>,
    #[serde(default, deserialize_with = "u64_or_skip")]
    format_version: Option<u64>,
    #[serde(default)]
    features: Option<IgnoredAny>,
    #[serde(default, rename = "featureStrategies")]
    feature_strategies: Option<IgnoredAny>,
}

/// A string value, or `None` for any other JSON value (the format sniffing must not fail
/// on a file that merely uses the key differently).
fn string_or_skip<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    })
}

fn u64_or_skip<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(serde_json::Value::deserialize(d)?.as_u64())
}

/// Parses a file instance's text; `project` is used for raw exports, which do not say.
pub fn parse(text: &str, project: &str) -> Result<FileContents, ParseError> {
    // A snapshot of this version, the common case, is parsed in one pass. Anything else
    // fails that pass (a raw export at its first key: snapshots allow no unknown keys) and
    // is probed, to read it as what it is or to report the right error.
    if let Ok(snapshot) = serde_json::from_str::<Snapshot>(text) {
        if snapshot.format == FORMAT && snapshot.format_version == FORMAT_VERSION {
            return Ok(FileContents::Snapshot(Box::new(snapshot)));
        }
    }
    // A first pass that skips over everything but the keys telling the formats apart
    // (far cheaper than a serde_json::Value of a large file).
    let probe: Probe = match serde_json::from_str(text) {
        Ok(p) => p,
        // A key given twice is refused where it is, whatever the file is.
        Err(e) if e.to_string().starts_with("duplicate field") => return Err(e.into()),
        // Valid JSON of another shape (an array, say).
        Err(e) if e.classify() == serde_json::error::Category::Data => {
            return Err(ParseError::Unrecognised)
        }
        Err(e) => return Err(e.into()),
    };
    if probe.format.as_deref() == Some(FORMAT) {
        let Some(version) = probe.format_version else {
            // Missing or not a number: the full parse says which, and where.
            serde_json::from_str::<Snapshot>(text)?;
            return Err(ParseError::Unrecognised);
        };
        if version != u64::from(FORMAT_VERSION) {
            return Err(ParseError::Version { found: version });
        }
        let snapshot: Snapshot = serde_json::from_str(text)?;
        return Ok(FileContents::Snapshot(Box::new(snapshot)));
    }
    if probe.features.is_some() && probe.feature_strategies.is_some() {
        let export: wire::Export = serde_json::from_str(text)?;
        let environment = export
            .feature_environments
            .iter()
            .find_map(|e| e.environment.clone())
            .unwrap_or_else(|| "production".to_string());
        let state = normalize(Parts {
            project: project.to_string(),
            exports: vec![(environment.clone(), export)],
            ..Parts::default()
        })?;
        return Ok(FileContents::RawExport {
            state: Box::new(state),
            environment,
        });
    }
    Err(ParseError::Unrecognised)
}

pub use crate::files::{write_atomic, AtomicFile};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::model::Flag;

    #[test]
    fn files_are_told_apart_without_failing_on_other_shapes() {
        for text in ["[1, 2]", "{}", r#"{"format": 3}"#, r#"{"features": []}"#] {
            assert!(
                matches!(parse(text, "default"), Err(ParseError::Unrecognised)),
                "{text}"
            );
        }
        let newer = r#"{"format": "flagfleet-snapshot", "format_version": 9}"#;
        assert!(matches!(
            parse(newer, "default"),
            Err(ParseError::Version { found: 9 })
        ));
    }

    #[test]
    fn broken_json_is_reported_at_its_line_and_column() {
        let text = "{\n  \"format\": \"flagfleet-snapshot\",\n  oops\n}";
        let Err(ParseError::Json { line, column, .. }) = parse(text, "default") else {
            panic!("expected a JSON error");
        };
        assert_eq!((line, column), (3, 3));
    }

    #[test]
    fn a_hand_written_snapshot_may_leave_out_switches_that_default_off() {
        // What someone writing a hub file by hand leaves out: a flag's impression data,
        // stale mark and environment switch, a context field's stickiness, a dependency's
        // "parent enabled".
        let text = r#"{"format": "flagfleet-snapshot", "format_version": 1,
            "source": {"instance": "hub", "location": "hand-written"},
            "state": {"project": "default", "environments": ["production"],
                "flags": {
                    "parent": {"type": "release", "environments": {"production": {}}},
                    "child": {"type": "release", "dependencies": [{"feature": "parent"}],
                              "environments": {"production": {"enabled": true}}}},
                "context_fields": {"region": {}},
                "segments": {}, "strategies": {}, "tag_types": {}}}"#;
        let Ok(FileContents::Snapshot(s)) = parse(text, "default") else {
            panic!("expected a snapshot");
        };
        let (parent, child) = (&s.state.flags["parent"], &s.state.flags["child"]);
        assert!(!parent.impression_data && !parent.stale);
        let production = |f: &Flag| f.environments.get("production").map(|e| e.enabled);
        assert_eq!(production(parent), Some(false));
        assert_eq!(production(child), Some(true));
        assert!(
            child.dependencies[0].enabled,
            "a dependency is on an enabled parent"
        );
        assert!(!s.state.context_fields["region"].stickiness);
    }

    #[test]
    fn a_snapshot_survives_a_round_trip() {
        let mut state = State {
            project: "default".into(),
            ..State::default()
        };
        state.flags.insert("f".into(), Default::default());
        let source = SnapshotSource {
            instance: "hub".into(),
            location: "test".into(),
            unleash_version: None,
        };
        let snapshot = Snapshot::new(state.clone(), source);
        let text = snapshot.to_json();
        let Ok(FileContents::Snapshot(back)) = parse(&text, "default") else {
            panic!("expected a snapshot");
        };
        assert_eq!(back.state, state);
        let mut written = Vec::new();
        snapshot.write_json(&mut written).unwrap();
        assert_eq!(
            String::from_utf8(written).unwrap(),
            text,
            "written as it is made, the same text"
        );
    }
}
