//! Applying a plan to a snapshot-file spoke: the same actions, on the model, and the new
//! snapshot written atomically (temporary file, then rename).

use std::path::Path;

use super::target::Target;
use super::{Outcome, SpokeError};
use crate::plan::{Action, Kind};
use crate::state::model::State;
use crate::state::snapshot::{self, Snapshot, SnapshotSource};

/// Applies `actions` (the changing, unblocked ones) to `target.actual` and writes the file.
pub(super) fn apply(
    path: &Path,
    spoke: &str,
    target: &Target<'_>,
    actions: &[&Action],
) -> Result<Vec<(String, Outcome)>, SpokeError> {
    let mut state: State = target.actual.clone();
    let mut outcomes = Vec::new();
    for a in actions {
        let done = apply_one(&mut state, target, a);
        let outcome = if done {
            Outcome::Applied
        } else {
            Outcome::Failed(format!("{} {} is not defined on the hub", a.kind, a.name))
        };
        outcomes.push((label(a), outcome));
    }
    // The version the file recorded stays: a later plan blocks by it.
    let source = SnapshotSource {
        instance: spoke.to_string(),
        location: path.display().to_string(),
        unleash_version: state.unleash_version.map(|v| v.to_string()),
    };
    snapshot::write_atomic(path, &Snapshot::new(state, source).to_json())
        .map_err(|e| SpokeError(format!("cannot write {}: {e}", path.display())))?;
    Ok(outcomes)
}

fn apply_one(state: &mut State, target: &Target<'_>, a: &Action) -> bool {
    let name = a.name.clone();
    match a.kind {
        Kind::ContextField => target
            .context_field(&name)
            .map(|c| state.context_fields.insert(name, c))
            .is_some(),
        Kind::TagType => target
            .tag_type(&name)
            .map(|t| state.tag_types.insert(name, t.clone()))
            .is_some(),
        Kind::Strategy => target
            .strategy(&name)
            .map(|s| state.strategies.insert(name, s.clone()))
            .is_some(),
        Kind::Segment => target
            .segment(&name)
            .map(|s| state.segments.insert(name, s.clone()))
            .is_some(),
        Kind::Flag if a.action == crate::plan::Verb::Archive => {
            state.flags.remove(&name);
            state.elsewhere.insert(
                name,
                crate::state::model::Elsewhere {
                    project: state.project.clone(),
                    archived: true,
                },
            );
            true
        }
        Kind::Flag => target
            .whole_flag(&name)
            .map(|f| state.flags.insert(name, f))
            .is_some(),
    }
}

pub(super) fn label(a: &Action) -> String {
    format!("{}:{}", a.kind, a.name)
}
