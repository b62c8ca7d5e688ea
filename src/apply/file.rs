//! Applying a plan to a snapshot-file spoke: the same actions, on the model, and the new
//! snapshot written atomically (temporary file, then rename).

use std::path::Path;

use super::target::whole_flag;
use super::{ApplyError, Outcome};
use crate::plan::{Action, Kind, Object};
use crate::state::model::State;
use crate::state::snapshot::{AtomicFile, Snapshot, SnapshotSource};

/// Applies `actions` (the changing, unblocked ones) to `state`, the spoke as read, and
/// writes the file as it is serialized.
pub(super) fn apply(
    path: &Path,
    spoke: &str,
    mut state: State,
    actions: &[&Action],
) -> Result<Vec<(String, Outcome)>, ApplyError> {
    let mut outcomes = Vec::new();
    for a in actions {
        let done = apply_one(&mut state, a);
        let outcome = if done {
            Outcome::Applied
        } else {
            Outcome::Failed(ApplyError::NotOnHub {
                kind: a.kind,
                name: a.name.clone(),
            })
        };
        outcomes.push((label(a), outcome));
    }
    // The version the file recorded stays: a later plan blocks by it.
    let source = SnapshotSource {
        instance: spoke.to_string(),
        location: path.display().to_string(),
        unleash_version: state.unleash_version.map(|v| v.to_string()),
    };
    let snapshot = Snapshot::new(state, source);
    AtomicFile::create(path)
        .and_then(|mut file| {
            snapshot.write_json(&mut file)?;
            file.commit()
        })
        .map_err(|e| ApplyError::WriteFile {
            path: path.to_path_buf(),
            source: std::sync::Arc::new(e),
        })?;
    Ok(outcomes)
}

/// Applies one action to `state`; `false` when the action carries nothing to write.
fn apply_one(state: &mut State, a: &Action) -> bool {
    let name = a.name.clone();
    if a.kind == Kind::Flag && a.action == crate::plan::Verb::Archive {
        state.flags.remove(&name);
        state.elsewhere.insert(
            name,
            crate::state::model::Elsewhere {
                project: state.project.clone(),
                archived: true,
            },
        );
        return true;
    }
    let Ok(object) = super::target::object(a) else {
        return false;
    };
    match object {
        Object::ContextField(c) => {
            state.context_fields.insert(name, c.clone());
        }
        Object::TagType(t) => {
            state.tag_types.insert(name, t.clone());
        }
        Object::Strategy(s) => {
            state.strategies.insert(name, s.clone());
        }
        Object::Segment(s) => {
            state.segments.insert(name, s.clone());
        }
        Object::Flag(f) => {
            // The spoke's own version of the flag is still the one read: one action per
            // object.
            let whole = whole_flag(state, &name, f);
            state.flags.insert(name, std::sync::Arc::new(whole));
        }
    }
    true
}

pub(super) fn label(a: &Action) -> String {
    format!("{}:{}", a.kind, a.name)
}
