//! What each Unleash version can hold: the one table ([`TABLE`]) by which a plan blocks,
//! for a spoke of an older (or newer) Unleash, whatever that spoke's server cannot store,
//! instead of failing halfway through apply.
//!
//! Each entry names what flagfleet syncs that not every version has, the first version that
//! has it and, for what was removed, the first version without it. Versions are those of
//! the open-source `unleash-server`; the table was read from its source (tags v6.10.1,
//! v7.6.5 and later) and is checked against the lab's 8.2.0, 7.6.5 and 6.10.1 servers by
//! the end-to-end tests (tests/e2e_versions.rs). docs/compatibility.md is rendered from
//! it ([`markdown_table`]) and a test keeps the two equal.

use std::fmt;

pub use crate::api::version::{export_reports_enabled, Version};
use crate::state::model::{Constraint, Flag, Segment};

/// Something flagfleet syncs that not every Unleash version can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// Links on a flag (`/features/{f}/link`).
    FlagLinks,
    /// The `REGEX` constraint operator.
    RegexOperator,
    /// The flag type `sunset`.
    SunsetFlagType,
    /// The built-in strategy `userWithId`.
    UserWithIdStrategy,
}

/// One row of the capability table.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// The capability.
    pub capability: Capability,
    /// Its name in plans and docs (unique in the table).
    pub label: &'static str,
    /// The first version that has it (`None`: every version flagfleet knows).
    pub since: Option<Version>,
    /// The first version that no longer has it (`None`: still there).
    pub until: Option<Version>,
    /// Notes on the older servers (why, and what they have instead).
    pub note: &'static str,
}

/// What flagfleet syncs that not every Unleash version holds. Everything else flagfleet
/// syncs (strategies with constraints, segments and variants with payloads, the other
/// constraint operators, environment enabled states, tags, dependencies, context fields,
/// custom strategies, tag types) is held alike by 6.10.1, 7.6.5 and 8.2.0.
pub const TABLE: &[Entry] = &[
    Entry {
        capability: Capability::FlagLinks,
        label: "flag links",
        since: Some(Version::new(7, 0, 0)),
        until: None,
        note: "6.x serves the link endpoints only behind the experimental flag `featureLinks` (off by default: HTTP 404), and its export has no `links`",
    },
    Entry {
        capability: Capability::RegexOperator,
        label: "constraint operator REGEX",
        since: Some(Version::new(7, 5, 0)),
        until: None,
        note: "older servers refuse the operator (HTTP 400)",
    },
    Entry {
        capability: Capability::SunsetFlagType,
        label: "flag type sunset",
        since: Some(Version::new(8, 0, 0)),
        until: None,
        note: "older servers refuse the type (HTTP 400)",
    },
    Entry {
        capability: Capability::UserWithIdStrategy,
        label: "built-in strategy userWithId",
        since: None,
        until: Some(Version::new(7, 0, 0)),
        note: "new installs of 7.0 and later lack it (use `flexibleRollout` with a `userId` constraint); a server upgraded from 6.x keeps it, and a spoke that has it is synced whatever its version",
    },
];

impl Capability {
    /// Its row of [`TABLE`].
    pub fn entry(self) -> &'static Entry {
        // Every capability has exactly one row (a test checks it).
        TABLE
            .iter()
            .find(|e| e.capability == self)
            .unwrap_or(&TABLE[0])
    }

    /// Its name in plans and docs.
    pub fn label(self) -> &'static str {
        self.entry().label
    }

    /// The capability a label names.
    pub fn from_label(label: &str) -> Option<Self> {
        TABLE
            .iter()
            .find(|e| e.label == label)
            .map(|e| e.capability)
    }

    /// Whether a server of `version` holds it (as installed new: for a built-in strategy,
    /// the plan asks the spoke's own list first).
    pub fn held_by(self, version: Version) -> bool {
        let e = self.entry();
        e.since.is_none_or(|s| version >= s) && e.until.is_none_or(|u| version < u)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The capabilities a flag (as a spoke would hold it) needs that `version` lacks, in
/// table order, each once.
pub fn missing_for_flag(flag: &Flag, version: Version) -> Vec<Capability> {
    let mut needs = Vec::new();
    if !flag.links.is_empty() {
        needs.push(Capability::FlagLinks);
    }
    if flag.kind == "sunset" {
        needs.push(Capability::SunsetFlagType);
    }
    for env in flag.environments.values() {
        for s in &env.strategies {
            needs.extend(constraint_needs(&s.constraints));
        }
    }
    missing(needs, version)
}

/// The capabilities a segment needs that `version` lacks.
pub fn missing_for_segment(segment: &Segment, version: Version) -> Vec<Capability> {
    missing(constraint_needs(&segment.constraints).collect(), version)
}

/// The capabilities a built-in strategy (by name) needs that `version` lacks. (A flag
/// using it is blocked through the strategy's own action, as for any strategy.)
pub fn missing_for_builtin_strategy(name: &str, version: Version) -> Vec<Capability> {
    let needs = (name == "userWithId").then_some(Capability::UserWithIdStrategy);
    missing(needs.into_iter().collect(), version)
}

fn constraint_needs(constraints: &[Constraint]) -> impl Iterator<Item = Capability> + '_ {
    constraints
        .iter()
        .filter(|c| c.operator == "REGEX")
        .map(|_| Capability::RegexOperator)
}

fn missing(mut needs: Vec<Capability>, version: Version) -> Vec<Capability> {
    needs.retain(|c| !c.held_by(version));
    needs.sort_unstable();
    needs.dedup();
    needs
}

/// The versions the lab runs and the compatibility table shows.
pub const LAB_VERSIONS: [Version; 3] = [
    Version::new(8, 2, 0),
    Version::new(7, 6, 5),
    Version::new(6, 10, 1),
];

/// The capability table as the Markdown table of docs/compatibility.md: one row per
/// capability, a column per lab version.
pub fn markdown_table() -> String {
    let mut out = String::from("| what flagfleet syncs | since | until |");
    for v in LAB_VERSIONS {
        out.push_str(&format!(" {v} |"));
    }
    out.push_str(" notes |\n| --- | --- | --- |");
    for _ in LAB_VERSIONS {
        out.push_str(" --- |");
    }
    out.push_str(" --- |\n");
    let shown = |v: Option<Version>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    for e in TABLE {
        out.push_str(&format!(
            "| {} | {} | {} |",
            e.label,
            shown(e.since),
            shown(e.until)
        ));
        for v in LAB_VERSIONS {
            out.push_str(if e.capability.held_by(v) {
                " yes |"
            } else {
                " **no** |"
            });
        }
        out.push_str(&format!(" {} |\n", e.note));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_as_unleash_reports_them() {
        assert_eq!(Version::parse("8.2.0"), Some(Version::new(8, 2, 0)));
        assert_eq!(Version::parse("v7.6.5"), Some(Version::new(7, 6, 5)));
        assert_eq!(
            Version::parse("6.10.1+enterprise"),
            Some(Version::new(6, 10, 1))
        );
        assert_eq!(Version::parse("5.12"), Some(Version::new(5, 12, 0)));
        assert_eq!(Version::parse("unknown"), None);
        assert_eq!(Version::parse(""), None);
        assert!(Version::new(6, 10, 1) < Version::new(7, 0, 0));
        assert!(Version::new(7, 6, 5) < Version::new(7, 10, 0));
    }

    #[test]
    fn every_capability_has_one_row_and_labels_are_unique() {
        for c in [
            Capability::FlagLinks,
            Capability::RegexOperator,
            Capability::SunsetFlagType,
            Capability::UserWithIdStrategy,
        ] {
            assert_eq!(TABLE.iter().filter(|e| e.capability == c).count(), 1);
            assert_eq!(Capability::from_label(c.label()), Some(c));
        }
        assert_eq!(TABLE.len(), 4);
    }

    #[test]
    fn the_lab_versions_hold_what_their_source_says() {
        let [v8, v7, v6] = LAB_VERSIONS;
        let held = |v| {
            TABLE
                .iter()
                .filter(|e| e.capability.held_by(v))
                .map(|e| e.label)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            held(v8),
            [
                "flag links",
                "constraint operator REGEX",
                "flag type sunset"
            ]
        );
        assert_eq!(held(v7), ["flag links", "constraint operator REGEX"]);
        assert_eq!(held(v6), ["built-in strategy userWithId"]);
    }

    #[test]
    fn docs_compatibility_md_holds_the_table() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/compatibility.md"
        ))
        .unwrap();
        let table = markdown_table();
        assert!(
            doc.contains(&table),
            "docs/compatibility.md does not hold the capability table; replace its table with:\n{table}"
        );
    }
}
