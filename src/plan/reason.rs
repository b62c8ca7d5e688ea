//! Why an action is what it is ([`Reason`]), and how each action is marked ([`Mark`]).
//!
//! A plan's JSON carries reasons as the texts of docs/plan-format.md; in code they are
//! typed, so that nothing decides by comparing strings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Action, Kind, Verb};
use crate::capability::{Capability, Version};

/// Why an action was planned the way it was. `Display` gives the exact text of
/// docs/plan-format.md, which is also what the plan JSON holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Create: the object is not on the spoke.
    MissingOnSpoke,
    /// Overwrite of scaffolding: the spoke's definition differs.
    DiffersFromHub,
    /// Overwrite of a flag: the synced fields that differ, in words.
    Differs(Vec<String>),
    /// Archive (pruning spokes): the hub has the flag archived.
    ArchivedOnHub,
    /// Archive (pruning spokes): the hub does not have the flag.
    AbsentOnHub,
    /// Skip: nothing to do.
    Unchanged,
    /// Skip: the kind's scaffolding policy is `ignore`.
    IgnoredByPolicy,
    /// Skip: policy `create-only`, and the spoke's differs.
    CreateOnlyDiffers,
    /// Skip: a raw-export hub names it without defining it; the spoke has one.
    SpokeDefinitionKept,
    /// Skip: the flag differs from the hub only in fields the spoke keeps (`keep`).
    KeptBySpoke(Vec<String>),
    /// Blocked (`on_drift = "block"`): changed on the spoke by this identity since
    /// flagfleet last wrote it.
    DriftedOnSpoke(String),
    /// Blocked: the flag is archived on the spoke.
    ArchivedOnSpoke,
    /// Blocked: another project on the spoke has a flag of this name.
    InOtherProject(String),
    /// Blocked: a parent flag is neither selected nor on the spoke.
    ParentNotSelected(String),
    /// Blocked: the parent flag is blocked itself.
    ParentBlocked(String),
    /// Blocked: scaffolding it uses will not exist on the spoke.
    Needs {
        /// The kind of what is needed.
        kind: Kind,
        /// Its name.
        name: String,
        /// Why it will not exist: its own action's reason.
        why: Box<Reason>,
        /// Whether it is also missing on the spoke now.
        missing: bool,
    },
    /// Blocked: the hub uses it but neither side defines it.
    Undefined,
    /// Blocked: a built-in strategy of the hub's Unleash the spoke's lacks.
    BuiltinMissing,
    /// Blocked: the spoke's Unleash version cannot hold what the object needs
    /// ([`crate::capability`]).
    Unsupported {
        /// The spoke's version.
        version: Version,
        /// What it lacks, in table order.
        missing: Vec<Capability>,
    },
    /// Blocked: a dependency cycle, as `kind:name` in order.
    Cycle(Vec<String>),
    /// A reason this build does not know (a plan file of another version), kept as text.
    Other(String),
}

const MISSING_ON_SPOKE: &str = "missing on spoke";
const DIFFERS_FROM_HUB: &str = "differs from the hub";
const ARCHIVED_ON_HUB: &str = "archived on the hub (prune)";
const ABSENT_ON_HUB: &str = "absent on the hub (prune)";
const UNCHANGED: &str = "unchanged";
const IGNORED_BY_POLICY: &str = "ignored by policy";
const CREATE_ONLY_DIFFERS: &str = "create-only policy, spoke differs";
const SPOKE_DEFINITION_KEPT: &str = "not defined on the hub; the spoke's is kept";
const ARCHIVED_ON_SPOKE: &str = "archived on spoke";
const UNDEFINED: &str = "used by the hub but defined neither on the hub nor on the spoke";
const UNSUPPORTED: &str = "the spoke's Unleash ";
const BUILTIN_MISSING: &str =
    "built-in strategy of the hub's Unleash that the spoke's Unleash does not have";

impl Reason {
    /// Whether this reason stops the object from being synced (`blocked: true`).
    pub fn blocks(&self) -> bool {
        matches!(
            self,
            Reason::ArchivedOnSpoke
                | Reason::InOtherProject(_)
                | Reason::ParentNotSelected(_)
                | Reason::ParentBlocked(_)
                | Reason::Needs { .. }
                | Reason::Undefined
                | Reason::BuiltinMissing
                | Reason::Unsupported { .. }
                | Reason::Cycle(_)
                | Reason::DriftedOnSpoke(_)
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::MissingOnSpoke => f.write_str(MISSING_ON_SPOKE),
            Reason::DiffersFromHub => f.write_str(DIFFERS_FROM_HUB),
            Reason::Differs(what) => write!(f, "differs: {}", what.join(", ")),
            Reason::ArchivedOnHub => f.write_str(ARCHIVED_ON_HUB),
            Reason::AbsentOnHub => f.write_str(ABSENT_ON_HUB),
            Reason::Unchanged => f.write_str(UNCHANGED),
            Reason::IgnoredByPolicy => f.write_str(IGNORED_BY_POLICY),
            Reason::CreateOnlyDiffers => f.write_str(CREATE_ONLY_DIFFERS),
            Reason::SpokeDefinitionKept => f.write_str(SPOKE_DEFINITION_KEPT),
            Reason::KeptBySpoke(fields) => write!(f, "kept by spoke: {}", fields.join(", ")),
            Reason::DriftedOnSpoke(by) => write!(
                f,
                "changed on the spoke by {by} since flagfleet last wrote it (on_drift = block)"
            ),
            Reason::ArchivedOnSpoke => f.write_str(ARCHIVED_ON_SPOKE),
            Reason::InOtherProject(project) => write!(f, "exists in project {project} on spoke"),
            Reason::ParentNotSelected(parent) => {
                write!(f, "parent {parent} is not selected and missing on spoke")
            }
            Reason::ParentBlocked(parent) => write!(f, "parent blocked: {parent}"),
            Reason::Needs {
                kind,
                name,
                why,
                missing,
            } => {
                let missing = if *missing { "; missing on spoke" } else { "" };
                write!(f, "needs {kind} {name} ({why}{missing})")
            }
            Reason::Undefined => f.write_str(UNDEFINED),
            Reason::BuiltinMissing => f.write_str(BUILTIN_MISSING),
            Reason::Unsupported { version, missing } => {
                let missing: Vec<&str> = missing.iter().map(|c| c.label()).collect();
                write!(
                    f,
                    "{UNSUPPORTED}{version} cannot hold: {}",
                    missing.join(", ")
                )
            }
            Reason::Cycle(members) => write!(f, "dependency cycle: {}", members.join(" -> ")),
            Reason::Other(text) => f.write_str(text),
        }
    }
}

impl FromStr for Reason {
    type Err = std::convert::Infallible;

    /// The reason a text names; [`Reason::Other`] when it names none this build knows.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(parse(text).unwrap_or_else(|| Reason::Other(text.to_string())))
    }
}

fn parse(text: &str) -> Option<Reason> {
    let fixed = [
        (MISSING_ON_SPOKE, Reason::MissingOnSpoke),
        (DIFFERS_FROM_HUB, Reason::DiffersFromHub),
        (ARCHIVED_ON_HUB, Reason::ArchivedOnHub),
        (ABSENT_ON_HUB, Reason::AbsentOnHub),
        (UNCHANGED, Reason::Unchanged),
        (IGNORED_BY_POLICY, Reason::IgnoredByPolicy),
        (CREATE_ONLY_DIFFERS, Reason::CreateOnlyDiffers),
        (SPOKE_DEFINITION_KEPT, Reason::SpokeDefinitionKept),
        (ARCHIVED_ON_SPOKE, Reason::ArchivedOnSpoke),
        (UNDEFINED, Reason::Undefined),
        (BUILTIN_MISSING, Reason::BuiltinMissing),
    ];
    if let Some((_, reason)) = fixed.into_iter().find(|(t, _)| *t == text) {
        return Some(reason);
    }
    let list = |s: &str, sep: &str| s.split(sep).map(str::to_string).collect();
    if let Some(what) = text.strip_prefix("differs: ") {
        return Some(Reason::Differs(list(what, ", ")));
    }
    if let Some(by) = text
        .strip_prefix("changed on the spoke by ")
        .and_then(|t| t.strip_suffix(" since flagfleet last wrote it (on_drift = block)"))
    {
        return Some(Reason::DriftedOnSpoke(by.to_string()));
    }
    if let Some(fields) = text.strip_prefix("kept by spoke: ") {
        return Some(Reason::KeptBySpoke(list(fields, ", ")));
    }
    if let Some(members) = text.strip_prefix("dependency cycle: ") {
        return Some(Reason::Cycle(list(members, " -> ")));
    }
    if let Some(project) = text
        .strip_prefix("exists in project ")
        .and_then(|t| t.strip_suffix(" on spoke"))
    {
        return Some(Reason::InOtherProject(project.to_string()));
    }
    if let Some(parent) = text
        .strip_prefix("parent ")
        .and_then(|t| t.strip_suffix(" is not selected and missing on spoke"))
    {
        return Some(Reason::ParentNotSelected(parent.to_string()));
    }
    if let Some((version, missing)) = text
        .strip_prefix(UNSUPPORTED)
        .and_then(|t| t.split_once(" cannot hold: "))
    {
        let reason = Reason::Unsupported {
            version: Version::parse(version)?,
            missing: missing
                .split(", ")
                .map(Capability::from_label)
                .collect::<Option<_>>()?,
        };
        return (reason.to_string() == text).then_some(reason);
    }
    if let Some(parent) = text.strip_prefix("parent blocked: ") {
        return Some(Reason::ParentBlocked(parent.to_string()));
    }
    let needs = text.strip_prefix("needs ")?.strip_suffix(')')?;
    let (kind, rest) = needs.split_once(' ')?;
    let (name, why) = rest.split_once(" (")?;
    let (why, missing) = match why.strip_suffix("; missing on spoke") {
        Some(why) => (why, true),
        None => (why, false),
    };
    let reason = Reason::Needs {
        kind: serde_json::from_value(serde_json::Value::String(kind.to_string())).ok()?,
        name: name.to_string(),
        why: Box::new(parse(why)?),
        missing,
    };
    // Only a reading that gives the text back is the text's meaning.
    (reason.to_string() == text).then_some(reason)
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let Ok(reason) = text.parse();
        Ok(reason)
    }
}

/// How an action is shown: its symbol, its label and its colour, the one place that
/// says so for the terminal, Markdown, the graph and apply's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mark {
    /// `+` create.
    Create,
    /// `~` overwrite.
    Overwrite,
    /// `-` archive.
    Archive,
    /// `=` unchanged.
    Unchanged,
    /// `!` blocked.
    Blocked,
    /// `.` any other skip (policy, the spoke's definition kept).
    Skip,
}

impl Mark {
    /// Every mark, in the order of a legend.
    pub const ALL: [Mark; 6] = [
        Mark::Create,
        Mark::Overwrite,
        Mark::Archive,
        Mark::Unchanged,
        Mark::Blocked,
        Mark::Skip,
    ];

    /// The mark of an action.
    pub fn of(a: &Action) -> Mark {
        match (a.action, a.blocked) {
            (Verb::Create, _) => Mark::Create,
            (Verb::Overwrite, _) => Mark::Overwrite,
            (Verb::Archive, _) => Mark::Archive,
            (Verb::Skip, true) => Mark::Blocked,
            (Verb::Skip, false) if a.reason == Reason::Unchanged => Mark::Unchanged,
            (Verb::Skip, false) => Mark::Skip,
        }
    }

    /// The symbol in plans.
    pub fn symbol(self) -> char {
        match self {
            Mark::Create => '+',
            Mark::Overwrite => '~',
            Mark::Archive => '-',
            Mark::Unchanged => '=',
            Mark::Blocked => '!',
            Mark::Skip => '.',
        }
    }

    /// What the symbol means, for legends.
    pub fn label(self) -> &'static str {
        match self {
            Mark::Create => "create",
            Mark::Overwrite => "overwrite",
            Mark::Archive => "archive",
            Mark::Unchanged => "unchanged",
            Mark::Blocked => "blocked",
            Mark::Skip => "skip",
        }
    }

    /// What apply does, as the graph's tooltips and apply's progress say it: the verb, or
    /// `blocked`.
    pub fn verb(self) -> &'static str {
        match self {
            Mark::Unchanged => Mark::Skip.label(),
            other => other.label(),
        }
    }

    /// The ANSI colour (SGR parameters) of the symbol on a terminal.
    pub fn ansi(self) -> &'static str {
        match self {
            Mark::Create => "32",
            Mark::Overwrite => "33",
            Mark::Blocked => "31",
            Mark::Archive | Mark::Unchanged | Mark::Skip => "2",
        }
    }

    /// The Graphviz fill colour of the action's node.
    pub fn fill(self) -> &'static str {
        match self {
            Mark::Create => "palegreen",
            Mark::Overwrite => "khaki",
            Mark::Archive => "lightblue",
            Mark::Blocked => "lightcoral",
            Mark::Unchanged | Mark::Skip => "lightgrey",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_reads_back_from_its_text() {
        let needs = |why: Reason, missing| Reason::Needs {
            kind: Kind::Segment,
            name: "beta users".into(),
            why: Box::new(why),
            missing,
        };
        let reasons = [
            Reason::MissingOnSpoke,
            Reason::DiffersFromHub,
            Reason::Differs(vec!["description".into(), "production".into()]),
            Reason::ArchivedOnHub,
            Reason::AbsentOnHub,
            Reason::Unchanged,
            Reason::IgnoredByPolicy,
            Reason::CreateOnlyDiffers,
            Reason::SpokeDefinitionKept,
            Reason::ArchivedOnSpoke,
            Reason::InOtherProject("other".into()),
            Reason::ParentNotSelected("p".into()),
            Reason::ParentBlocked("p".into()),
            needs(Reason::IgnoredByPolicy, true),
            needs(needs(Reason::Undefined, true), false),
            Reason::Undefined,
            Reason::BuiltinMissing,
            Reason::Unsupported {
                version: Version::new(6, 10, 1),
                missing: vec![Capability::FlagLinks, Capability::RegexOperator],
            },
            Reason::Cycle(vec!["flag:a".into(), "flag:b".into()]),
        ];
        for reason in reasons {
            let text = reason.to_string();
            assert_eq!(text.parse::<Reason>(), Ok(reason), "{text}");
        }
        assert_eq!(
            "some future reason".parse::<Reason>(),
            Ok(Reason::Other("some future reason".into()))
        );
    }

    #[test]
    fn the_texts_are_those_of_the_plan_format() {
        let needs = Reason::Needs {
            kind: Kind::ContextField,
            name: "tenant".into(),
            why: Box::new(Reason::IgnoredByPolicy),
            missing: true,
        };
        assert_eq!(
            needs.to_string(),
            "needs context_field tenant (ignored by policy; missing on spoke)"
        );
        assert_eq!(
            Reason::InOtherProject("X".into()).to_string(),
            "exists in project X on spoke"
        );
        assert_eq!(
            Reason::Cycle(vec!["a".into(), "b".into()]).to_string(),
            "dependency cycle: a -> b"
        );
        assert_eq!(
            Reason::Unsupported {
                version: Version::new(7, 6, 5),
                missing: vec![Capability::SunsetFlagType],
            }
            .to_string(),
            "the spoke's Unleash 7.6.5 cannot hold: flag type sunset"
        );
    }
}
