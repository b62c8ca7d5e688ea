//! `flagfleet validate`: check the topology and that every instance can be read.

use std::process::ExitCode;

use comfy_table::{presets, ContentArrangement, Table};
use futures::future::join_all;

use super::export::environments_of;
use super::{CliError, Context};
use crate::client::ClientOptions;
use crate::state::{self, ReadError};
use crate::topology::{Instance, Location, Topology};

/// Check the topology file and every instance it names.
///
/// Parses the topology, reaches every instance, checks that its token is accepted, that
/// the project and each synced environment exist, and reads its state. Prints one row per
/// instance and then every problem found (not just the first). Exit code 0 when all is
/// well, 1 otherwise.
///
/// Example:
///   flagfleet -c examples/quickstart/flagfleet.toml validate
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {}

/// What validate found about one instance.
struct Row {
    name: String,
    kind: &'static str,
    version: Option<String>,
    project: String,
    environments: Vec<String>,
    flags: Option<usize>,
    problems: Vec<(String, Option<String>)>,
}

pub(crate) async fn run(ctx: &mut Context, _args: Args) -> Result<ExitCode, CliError> {
    let topology = ctx.topology()?;
    let options = ctx.client.clone();
    let rows = join_all(topology.instances().map(|i| check(&topology, i, &options))).await;
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header([
            "instance",
            "kind",
            "version",
            "project",
            "environments",
            "flags",
            "status",
        ]);
    for r in &rows {
        table.add_row([
            r.name.clone(),
            r.kind.to_string(),
            r.version.clone().unwrap_or_else(|| "-".into()),
            r.project.clone(),
            r.environments.join(", "),
            r.flags.map_or_else(|| "-".into(), |n| n.to_string()),
            if r.problems.is_empty() {
                "ok".to_string()
            } else {
                format!("{} problem(s)", r.problems.len())
            },
        ]);
    }
    ctx.ui.out(&format!("{table}\n"))?;
    let problems: Vec<_> = rows.iter().flat_map(|r| r.problems.iter()).collect();
    if problems.is_empty() {
        ctx.ui.out(&format!(
            "{} is valid: all {} instances read.\n",
            topology.path.display(),
            rows.len()
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut text = String::new();
    for (message, hint) in &problems {
        text.push_str(&format!("Error: {message}\n"));
        if let Some(h) = hint {
            text.push_str(&format!("Hint: {h}\n"));
        }
    }
    ctx.ui.err(&text)?;
    Ok(ExitCode::FAILURE)
}

async fn check(topology: &Topology, instance: &Instance, options: &ClientOptions) -> Row {
    let environments = environments_of(topology, &instance.name);
    let is_hub = instance.name == topology.hub.instance.name;
    let mut row = Row {
        name: instance.name.clone(),
        kind: match instance.location {
            Location::Live { .. } => "live",
            Location::File(_) => "file",
        },
        version: None,
        project: instance.project.clone(),
        environments: environments.clone(),
        flags: None,
        problems: Vec::new(),
    };
    let fail = |row: &mut Row, e: ReadError| {
        let hint = e.hint();
        row.problems.push((e.to_string(), hint));
    };
    let client = match state::connect(instance, options) {
        Ok(c) => c,
        Err(e) => {
            fail(&mut row, e);
            return row;
        }
    };
    if let Some(client) = &client {
        let info = match state::read_server_info(client).await {
            Ok(info) => info,
            Err(e) => {
                fail(&mut row, e.into());
                return row;
            }
        };
        row.version = info.version.clone();
        let mut missing = false;
        if !info.projects.contains(&instance.project) {
            missing = true;
            row.problems.push((
                format!(
                    "{}: project `{}` does not exist (has: {})",
                    instance.name,
                    instance.project,
                    info.projects.join(", ")
                ),
                Some("set `project` of this instance in the topology".into()),
            ));
        }
        let names: Vec<String> = info.environments.iter().map(|e| e.0.clone()).collect();
        for env in &environments {
            if !names.contains(env) {
                missing = true;
                fail(
                    &mut row,
                    ReadError::MissingEnvironment {
                        instance: instance.name.clone(),
                        environment: env.clone(),
                        available: names.clone(),
                    },
                );
            }
        }
        if missing {
            return row;
        }
    }
    // Read as a plan reads, without the names taken elsewhere (whose search is
    // rate-limited): validate proves what plan needs.
    let read = state::read_with(
        instance,
        client.as_ref(),
        &environments,
        is_hub,
        state::Taken::Later,
    );
    match read.await {
        Ok(state) => row.flags = Some(state.flags.len()),
        Err(e) => fail(&mut row, e),
    }
    row
}
