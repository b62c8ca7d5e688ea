//! `--hub-snapshot FILE`: plan and apply against a snapshot of the hub instead of the
//! live hub. A sharded pipeline exports the hub once and every shard job reads that file,
//! so the hub serves one read however many shards there are (docs/state.md).

use std::path::Path;

use super::CliError;
use crate::topology::{Location, Topology};

/// Points the topology's hub at `path`, after checking that it is a flagfleet snapshot of
/// that hub (by name: a snapshot of a spoke, used by mistake, would make every spoke equal
/// to that spoke). Its project and environments are checked as any file's when read.
pub(super) fn use_for_hub(topology: &mut Topology, path: &Path) -> Result<(), CliError> {
    let problem = |what: String| CliError::HubSnapshot {
        path: path.display().to_string(),
        problem: what,
    };
    let bytes = std::fs::read(path).map_err(|e| problem(e.to_string()))?;
    let head: Head = serde_json::from_slice(&bytes)
        .map_err(|e| problem(format!("not a flagfleet snapshot: {e}")))?;
    let hub = &topology.hub.instance.name;
    match head.source {
        None => Err(problem(
            "not a flagfleet snapshot (it names no source instance)".into(),
        )),
        Some(source) if &source.instance != hub => Err(problem(format!(
            "it is a snapshot of `{}`, not of the hub `{hub}`",
            source.instance
        ))),
        Some(_) => {
            topology.hub.instance.location = Location::File(path.to_path_buf());
            Ok(())
        }
    }
}

/// What is checked before the file is read as the hub; the state is skipped over unread.
#[derive(serde::Deserialize)]
struct Head {
    source: Option<Source>,
}

#[derive(serde::Deserialize)]
struct Source {
    instance: String,
}
