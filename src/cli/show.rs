//! `flagfleet show`: print a saved plan without reading any instance.

use std::path::PathBuf;
use std::process::ExitCode;

use super::apply::read_plan;
use super::plan::{render_plan, Format};
use super::{CliError, Context};
use crate::render;

/// Print a saved plan without reading any instance.
///
/// Renders a plan saved with `flagfleet plan --out` exactly as plan printed it in the same
/// format, for an apply job's log or a reviewer who has only the plan artifact. Nothing is
/// read from the hub or the spokes, and the topology file is not needed.
///
/// Examples:
///   flagfleet show plan.json
///   flagfleet show plan.json --format markdown > plan.md
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// A plan saved with `flagfleet plan --out`.
    plan_file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

pub(crate) fn run(ctx: &mut Context, args: Args) -> Result<ExitCode, CliError> {
    let plan = read_plan(&args.plan_file)?;
    let options = render::Options {
        color: ctx.color,
        verbose: ctx.verbose,
    };
    render_plan(ctx, plan, args.format, options)?;
    Ok(ExitCode::SUCCESS)
}
