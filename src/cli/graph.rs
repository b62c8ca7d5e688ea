//! `flagfleet graph`: the dependency graph of each spoke's plan, as Graphviz DOT.

use std::process::ExitCode;
use std::sync::Arc;

use super::{CliError, Context, HubArgs};
use crate::pipeline;

/// Print each spoke's dependency graph as Graphviz DOT.
///
/// Nodes are `kind:name`, coloured by action (green create, yellow overwrite, grey skip,
/// red blocked); an edge points from what must exist first to what uses it.
///
/// Examples:
///   flagfleet graph --spoke eu-west | dot -Tsvg > eu-west.svg
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// Only this spoke (repeatable).
    #[arg(long = "spoke", value_name = "NAME")]
    spokes: Vec<String>,
    #[command(flatten)]
    hub: HubArgs,
}

pub(crate) async fn run(ctx: &mut Context, args: Args) -> Result<ExitCode, CliError> {
    let (topology, fingerprint) = ctx.topology_for_plan(&args.hub)?;
    let reading = ctx.reading(None, &topology, &args.spokes);
    let (_, plan) = pipeline::plan_fleet(
        Arc::new(topology),
        fingerprint,
        &args.spokes,
        &reading,
        |_| false,
    )
    .await?;
    let mut out = String::new();
    for spoke in &plan.spokes {
        match &spoke.error {
            Some(e) => ctx.ui.err(&format!("Error: {}\n", e))?,
            None => out.push_str(&crate::render::dot::to_dot(&spoke.name, &spoke.actions)),
        }
    }
    ctx.ui.out(&out)?;
    Ok(if plan.has_errors() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
