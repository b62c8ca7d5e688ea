//! Names as Unleash allows them: the state reader checks everything it reads against
//! them before any of it is used, the topology checker the names a topology file gives.
//!
//! Names end up in URL paths (`.../features/{name}/...`) and in the plan on a terminal. A
//! name Unleash itself would refuse (`..`, `a/b`, an escape sequence) can only come from a
//! broken server, a proxy or a hand-edited file; it is refused with the object it names.
//! The rules are Unleash 8's (`routes/util.js`, `isUrlFriendly`: what `encodeURIComponent`
//! leaves as it is, and not `.` or `..`).

/// What a name names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// A project.
    Project,
    /// An environment.
    Environment,
    /// A feature flag.
    Flag,
    /// A context field.
    ContextField,
    /// A strategy (definition or use).
    Strategy,
    /// A segment.
    Segment,
    /// A tag type.
    TagType,
    /// A tag value.
    TagValue,
}

impl NameKind {
    /// The name of the kind in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            NameKind::Project => "project",
            NameKind::Environment => "environment",
            NameKind::Flag => "flag",
            NameKind::ContextField => "context field",
            NameKind::Strategy => "strategy",
            NameKind::Segment => "segment",
            NameKind::TagType => "tag type",
            NameKind::TagValue => "tag value",
        }
    }

    /// The rule a name of this kind follows, as the message states it.
    pub fn rule(self) -> &'static str {
        match self {
            NameKind::TagType => "2 to 50 characters from A-Z a-z 0-9 - _ . ~ ! * ' ( )",
            NameKind::TagValue => "2 to 50 characters, no control characters",
            NameKind::Segment => "1 to 255 characters, no control characters",
            _ => "1 to 100 characters from A-Z a-z 0-9 - _ . ~ ! * ' ( ), not `.` or `..`",
        }
    }

    /// Whether `name` is a name of this kind Unleash allows.
    pub fn allows(self, name: &str) -> bool {
        let chars = name.chars().count();
        match self {
            NameKind::TagType => (2..=50).contains(&chars) && url_friendly(name),
            NameKind::TagValue => (2..=50).contains(&chars) && !has_controls(name),
            NameKind::Segment => (1..=255).contains(&chars) && !has_controls(name),
            _ => (1..=100).contains(&chars) && url_friendly(name),
        }
    }
}

/// A name Unleash does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} `{name}` is not a name Unleash allows ({})", kind.as_str(), kind.rule())]
pub struct BadName {
    /// What it names.
    pub kind: NameKind,
    /// The name, control characters escaped, cut to 120 characters.
    pub name: String,
}

/// Checks a name.
pub fn check(kind: NameKind, name: &str) -> Result<(), BadName> {
    if kind.allows(name) {
        Ok(())
    } else {
        Err(BadName {
            kind,
            name: crate::redact::clean(name, 120),
        })
    }
}

/// What `encodeURIComponent` leaves unchanged, and not a dot segment.
fn url_friendly(name: &str) -> bool {
    name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.!~*'()".contains(c))
}

fn has_controls(text: &str) -> bool {
    text.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_unleash_rules() {
        for ok in ["checkout-v2", "a", "x.y_z~(1)!*'", &"a".repeat(100)] {
            assert!(NameKind::Flag.allows(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a b",
            "é",
            "a\u{1b}[2J",
            &"a".repeat(101),
        ] {
            assert!(!NameKind::Flag.allows(bad), "{bad}");
        }
        assert!(!NameKind::TagType.allows("x"));
        assert!(NameKind::TagValue.allows("eu west"));
        assert!(!NameKind::TagValue.allows("eu\nwest"));
        assert!(NameKind::Segment.allows("beta users"));
    }

    #[test]
    fn a_bad_name_is_shown_escaped() {
        let err = check(NameKind::Flag, "x\u{1b}[2J").unwrap_err();
        assert_eq!(
            err.to_string(),
            "flag `x\\u{1b}[2J` is not a name Unleash allows (1 to 100 characters from A-Z a-z 0-9 - _ . ~ ! * ' ( ), not `.` or `..`)"
        );
    }
}
