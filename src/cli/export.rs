//! `flagfleet export`: write an instance's state as a snapshot file.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{CliError, Context};
use crate::state::{self, snapshot};
use crate::topology::Topology;

/// Write one instance's state as a snapshot file.
///
/// Reads the instance named in the topology (hub or spoke, live or file) in the
/// environments the topology syncs for it, and writes a flagfleet snapshot: versioned,
/// pretty, stably ordered JSON that diffs well in git and can serve as any instance's
/// `file = ...`.
///
/// Examples:
///   flagfleet export hub --out snapshots/hub.json
///   flagfleet -c fleet.toml export eu-west > eu-west.json
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// Instance name from the topology (the hub's name, or a spoke's).
    instance: String,
    /// Write to this file (atomically) instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub(crate) async fn run(ctx: &mut Context, args: Args) -> Result<ExitCode, CliError> {
    let topology = ctx.topology()?;
    let (instance, environments, is_hub) = resolve(&topology, &args.instance)?;
    let client = state::connect(instance, &ctx.client)?;
    let (state, version) = match &client {
        Some(c) => {
            let (state, version) = tokio::try_join!(
                state::read(instance, Some(c), &environments, is_hub),
                async { Ok(state::read_version(c).await?) },
            )?;
            (state, version)
        }
        None => (
            state::read(instance, None, &environments, is_hub).await?,
            None,
        ),
    };
    let flags = state.flags.len();
    let text = state::snapshot_of(instance, state, version).to_json();
    match &args.out {
        Some(path) => {
            snapshot::write_atomic(path, &text).map_err(|source| CliError::Write {
                path: path.display().to_string(),
                source,
            })?;
            let requests = client.as_ref().map_or(0, |c| c.requests());
            tracing::info!(instance = %instance.name, flags, requests, "snapshot written");
            ctx.ui.err(&format!(
                "Wrote {} ({flags} flags from {}).\n",
                path.display(),
                instance.name
            ))?;
        }
        None => ctx.ui.out(&text)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The instance, the environments synced on it, and whether it is the hub.
fn resolve<'t>(
    topology: &'t Topology,
    name: &str,
) -> Result<(&'t crate::topology::Instance, Vec<String>, bool), CliError> {
    if topology.hub.instance.name == name {
        return Ok((
            &topology.hub.instance,
            topology.hub.environments.clone(),
            true,
        ));
    }
    if let Some(spoke) = topology.spoke(name) {
        return Ok((&spoke.instance, spoke.synced_environments(), false));
    }
    Err(CliError::UnknownInstance {
        name: name.to_string(),
        topology: topology.path.display().to_string(),
        known: topology.instances().map(|i| i.name.clone()).collect(),
    })
}

/// The environments read on an instance: the hub's synced ones, or a spoke's mapped ones.
pub(crate) fn environments_of(topology: &Topology, name: &str) -> Vec<String> {
    resolve(topology, name).map(|r| r.1).unwrap_or_default()
}
