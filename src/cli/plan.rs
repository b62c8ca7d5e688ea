//! `flagfleet plan`: show what apply would change on each spoke.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{CliError, Context};
use crate::plan::{self, Plan};
use crate::render::{self, human, markdown};
use crate::state::snapshot::write_atomic;

/// Show what apply would change on each spoke.
///
/// Reads the hub and every spoke concurrently, derives what each spoke should hold (the
/// selected hub flags with the spoke's mappings and overrides, and the scaffolding they
/// need), and prints one action per object: + create, ~ overwrite (with a diff),
/// = unchanged, ! blocked (with the reason), - other skips. Actions are listed in the
/// dependency order apply follows. An unreachable spoke is reported for itself while the
/// others are still planned (exit code 1).
///
/// Examples:
///   flagfleet plan
///   flagfleet plan --format markdown > plan.md          # a pull-request comment
///   flagfleet plan --out plan.json --detailed-exitcode  # CI: 0 no changes, 2 changes
///   flagfleet plan --spoke eu-west --spoke us-east
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Also save the plan (JSON, no tokens) for `flagfleet apply PLAN_FILE`.
    #[arg(long, value_name = "PLAN_FILE")]
    out: Option<PathBuf>,
    /// Plan only this spoke (repeatable), e.g. to shard a large fleet across CI runners.
    #[arg(long = "spoke", value_name = "NAME")]
    spokes: Vec<String>,
    /// Exit 0 when nothing would change, 2 when something would, 1 on error.
    #[arg(long)]
    detailed_exitcode: bool,
}

/// How the plan is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// For a terminal (colour when it is one).
    Human,
    /// The stable format of docs/plan-format.md.
    Json,
    /// For a pull-request comment; always fits in one GitHub comment.
    Markdown,
}

pub(crate) async fn run(ctx: &mut Context, args: Args) -> Result<ExitCode, CliError> {
    let plan = make_plan(ctx, &args.spokes).await?;
    let options = render::Options {
        color: ctx.color,
        verbose: ctx.verbose,
    };
    let text = match args.format {
        Format::Human => human::render(&plan, options),
        Format::Json => plan.to_json(),
        Format::Markdown => markdown::render(&plan, options, markdown::COMMENT_LIMIT),
    };
    ctx.ui.out(&text)?;
    if let Some(path) = &args.out {
        write_atomic(path, &plan.to_json()).map_err(|source| CliError::Write {
            path: path.display().to_string(),
            source,
        })?;
        ctx.ui
            .err(&format!("Saved the plan to {}.\n", path.display()))?;
    }
    Ok(exit_code(&plan, args.detailed_exitcode))
}

/// Reads the fleet and plans it.
pub(crate) async fn make_plan(ctx: &Context, spokes: &[String]) -> Result<Plan, CliError> {
    let (topology, fingerprint) = ctx.topology_with_fingerprint()?;
    let fleet = crate::fleet::read(&topology, spokes, &ctx.client).await?;
    Ok(plan::plan_fleet(&topology, fingerprint, &fleet))
}

fn exit_code(plan: &Plan, detailed: bool) -> ExitCode {
    if plan.has_errors() {
        ExitCode::FAILURE
    } else if detailed && plan.has_changes() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}
