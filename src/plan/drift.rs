//! Who changed an overwritten object, as a plan carries it: the types drift attribution
//! ([`crate::drift`]) fills in from the instances' event logs.

use serde::{Deserialize, Serialize};

/// Where a flag's or segment's difference from the hub comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Changed on the hub since flagfleet last wrote the spoke's copy.
    Hub,
    /// Changed on the spoke by someone else since flagfleet last wrote it.
    Spoke,
    /// Both.
    Both,
    /// The event log cannot tell.
    Unknown,
}

/// One change from an event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Who made it (`createdBy`).
    pub by: String,
    /// When (RFC 3339, as the server wrote it).
    pub at: String,
    /// The event's id on that instance.
    pub event: i64,
    /// The event type, e.g. `feature-environment-disabled`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// Who changed an overwritten object, from the event logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    /// Where the difference comes from.
    pub origin: Origin,
    /// Changes on the spoke by others since flagfleet's last write there, newest first.
    pub spoke_changes: Vec<Change>,
    /// Changes on the hub since then, newest first.
    pub hub_changes: Vec<Change>,
}

impl Drift {
    /// Whether someone other than flagfleet changed the object on the spoke.
    pub fn on_spoke(&self) -> bool {
        matches!(self.origin, Origin::Spoke | Origin::Both)
    }

    /// One line for a reviewer: `drifted on spoke: 2 changes by alice@example.com, last
    /// 2026-11-30 14:02 UTC`.
    pub fn summary(&self) -> String {
        let side = |what: &str, changes: &[Change]| {
            let mut by: Vec<&str> = changes.iter().map(|c| c.by.as_str()).collect();
            by.sort_unstable();
            by.dedup();
            let n = changes.len();
            format!(
                "{what}: {n} change{} by {}, last {}",
                if n == 1 { "" } else { "s" },
                by.join(", "),
                changes.first().map_or(String::new(), |c| short_time(&c.at))
            )
        };
        match self.origin {
            Origin::Spoke => side("drifted on spoke", &self.spoke_changes),
            Origin::Hub => side("changed on hub", &self.hub_changes),
            Origin::Both => format!(
                "{}; {}",
                side("drifted on spoke", &self.spoke_changes),
                side("changed on hub", &self.hub_changes)
            ),
            Origin::Unknown if self.spoke_changes.is_empty() => {
                "drift origin unknown: the event logs do not show who changed it since flagfleet last wrote it".to_string()
            }
            // Others' changes on the spoke are known; the hub's side, or since when, is not.
            Origin::Unknown => side(
                "drift origin unknown: the logs do not tell both sides since flagfleet last wrote it; on spoke",
                &self.spoke_changes,
            ),
        }
    }
}

/// `2026-11-30T14:02:11.123Z` as `2026-11-30 14:02 UTC`.
fn short_time(at: &str) -> String {
    match (at.get(..10), at.get(11..16)) {
        (Some(day), Some(time)) if at.ends_with('Z') => format!("{day} {time} UTC"),
        _ => at.to_string(),
    }
}
