//! `flagfleet apply`: execute a plan on the spokes.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use comfy_table::{presets, CellAlignment, Table};

use super::plan::SPOKES_AT_ONCE;
use super::{progress, CliError, Context, HubArgs};
use crate::apply::{self, Outcome, Progress, SpokeReport};
use crate::pipeline;
use crate::plan::{self, Plan, SpokePlan};
use crate::render::{self, human};

/// Execute a plan on the spokes, in dependency order.
///
/// Without PLAN_FILE: plans, prints the plan, and asks for confirmation on a terminal
/// (type `yes`), or goes ahead with --auto-approve; without a terminal and without
/// --auto-approve it refuses and changes nothing.
///
/// With PLAN_FILE (from `flagfleet plan --out`): re-reads the hub and every spoke first and
/// refuses, before changing anything, if any state differs from when the plan was made.
/// With --hub-snapshot, the hub is that snapshot: take it right before applying
/// (docs/state.md, sharded pipelines).
///
/// Before its first write to a spoke, apply saves the spoke's full state as a snapshot in
/// the backup folder; to restore, use that snapshot as the hub of an ordinary run.
///
/// Examples:
///   flagfleet apply
///   flagfleet plan --out plan.json && flagfleet apply plan.json
///   flagfleet apply --auto-approve --spoke eu-west --parallelism 8
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// A plan saved with `flagfleet plan --out`.
    plan_file: Option<PathBuf>,
    /// Apply without asking (required when not on a terminal).
    #[arg(long)]
    auto_approve: bool,
    /// Apply only to this spoke (repeatable).
    #[arg(long = "spoke", value_name = "NAME")]
    spokes: Vec<String>,
    /// Independent actions in flight at once on one spoke.
    #[arg(long, default_value_t = 4, value_name = "N")]
    parallelism: usize,
    /// Spokes read and planned at once before applying (each holds its whole state in
    /// memory meanwhile; afterwards only spokes with changes keep theirs).
    #[arg(long, default_value_t = SPOKES_AT_ONCE, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    read_parallelism: u16,
    /// Where pre-apply snapshots are saved.
    #[arg(long, value_name = "DIR", default_value_os_t = apply::default_backup_dir())]
    backup_dir: PathBuf,
    #[command(flatten)]
    hub: HubArgs,
}

pub(crate) async fn run(ctx: &mut Context, args: Args) -> Result<ExitCode, CliError> {
    let (topology, topology_fp) = ctx.topology_for_plan(&args.hub)?;
    let saved = args.plan_file.as_deref().map(read_plan).transpose()?;
    let mut spokes = args.spokes.clone();
    if let Some(saved) = &saved {
        if saved.topology_fingerprint != topology_fp {
            return Err(CliError::Apply(
                "the plan was made from another topology (or the topology file changed since): run plan again".into(),
            ));
        }
        let in_plan: Vec<String> = saved.spokes.iter().map(|s| s.name.clone()).collect();
        spokes = if spokes.is_empty() {
            in_plan
        } else {
            spokes.into_iter().filter(|s| in_plan.contains(s)).collect()
        };
    }
    // A spoke's state is kept (for its backup and the writes) only if it will change.
    let keep = SpokePlan::has_changes;
    let topology = Arc::new(topology);
    let reading = ctx.reading(args.read_parallelism);
    let (fleet, plan) =
        pipeline::plan_fleet(topology.clone(), topology_fp, &spokes, &reading, keep).await?;
    if let Some(error) = plan
        .spokes
        .iter()
        .find_map(|s| s.error.as_ref().map(|e| (s, e)))
    {
        return Err(CliError::Apply(format!(
            "spoke {} could not be read, so nothing was applied: {}",
            error.0.name, error.1
        )));
    }
    match &saved {
        Some(saved) => check_fresh(saved, &plan)?,
        None => {
            if !ctx.quiet {
                let options = render::Options {
                    color: ctx.color,
                    verbose: ctx.verbose,
                };
                ctx.ui.out(&human::render(&plan, options))?;
            }
        }
    }
    if !plan.has_changes() {
        ctx.ui
            .out("No changes: every spoke already matches the plan.\n")?;
        return Ok(ExitCode::SUCCESS);
    }
    if saved.is_none() && !args.auto_approve {
        confirm(ctx)?;
    }
    let options = apply::Options {
        parallelism: args.parallelism,
        backup_dir: args.backup_dir,
    };
    let progress: Box<dyn Progress> = if ctx.quiet {
        Box::new(apply::Quiet)
    } else if std::io::stderr().is_terminal() {
        Box::new(progress::Bars::new())
    } else {
        Box::new(progress::Lines)
    };
    let reports = apply::apply(&topology, &fleet, &plan, &options, progress.as_ref()).await;
    ctx.ui.out(&render_report(&reports))?;
    Ok(if reports.iter().any(SpokeReport::failed) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Reads a plan saved with `flagfleet plan --out`, refusing other format versions.
pub(super) fn read_plan(path: &std::path::Path) -> Result<Plan, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Apply(format!("cannot read plan file {}: {e}", path.display())))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| CliError::Apply(format!("{} is not a plan file: {e}", path.display())))?;
    let version = value.get("format_version").and_then(|v| v.as_u64());
    if version != Some(u64::from(plan::FORMAT_VERSION)) {
        return Err(CliError::Apply(format!(
            "{} has plan format_version {}, this flagfleet reads version {}: run plan again with this version",
            path.display(),
            version.map_or_else(|| "(none)".to_string(), |v| v.to_string()),
            plan::FORMAT_VERSION
        )));
    }
    serde_json::from_value(value)
        .map_err(|e| CliError::Apply(format!("{} is not a valid plan file: {e}", path.display())))
}

/// Refuses a saved plan when any state it was made from has changed since.
fn check_fresh(saved: &Plan, now: &Plan) -> Result<(), CliError> {
    let mut stale = Vec::new();
    if saved.hub.fingerprint != now.hub.fingerprint {
        stale.push(format!("the hub {}", saved.hub.name));
    }
    for s in &now.spokes {
        let then = saved.spokes.iter().find(|p| p.name == s.name);
        if then.and_then(|p| p.fingerprint.as_ref()) != s.fingerprint.as_ref() {
            stale.push(format!("spoke {}", s.name));
        }
    }
    if stale.is_empty() {
        Ok(())
    } else {
        Err(CliError::Apply(format!(
            "plan is stale for {}: it changed since the plan was made; run plan again (nothing was changed)",
            stale.join(", ")
        )))
    }
}

fn confirm(ctx: &mut Context) -> Result<(), CliError> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(CliError::Apply(
            "refusing to apply without confirmation: there is no terminal to ask on; review the plan and pass --auto-approve (nothing was changed)".into(),
        ));
    }
    ctx.ui
        .err("\nApply these changes? Only 'yes' is accepted: ")?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        return Err(CliError::Apply(
            "apply cancelled; nothing was changed".into(),
        ));
    }
    Ok(())
}

fn render_report(reports: &[SpokeReport]) -> String {
    let mut out = String::from("\n");
    for r in reports {
        let (applied, failed, skipped) = r.counts();
        if let Some(e) = &r.error {
            out.push_str(&format!("Apply to {}: error: {e}\n", r.name));
            continue;
        }
        if r.outcomes.is_empty() {
            out.push_str(&format!("Apply to {}: nothing to do.\n", r.name));
            continue;
        }
        out.push_str(&format!(
            "Apply to {}: {applied} applied, {failed} failed, {skipped} not attempted.\n",
            r.name
        ));
        if let Some(b) = &r.backup {
            out.push_str(&format!("  backup: {}\n", b.display()));
        }
        for (label, o) in &r.outcomes {
            match o {
                Outcome::Applied => {}
                Outcome::Failed(m) => out.push_str(&format!("  failed: {label}: {m}\n")),
                Outcome::NotAttempted(m) => {
                    out.push_str(&format!("  not attempted: {label}: {m}\n"))
                }
            }
        }
    }
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED).set_header([
        "spoke",
        "applied",
        "failed",
        "not attempted",
    ]);
    for r in reports {
        let (a, f, n) = r.counts();
        if r.error.is_some() {
            table.add_row([r.name.as_str(), "error", "-", "-"]);
        } else {
            table.add_row([r.name.clone(), a.to_string(), f.to_string(), n.to_string()]);
        }
    }
    for i in 1..4 {
        if let Some(c) = table.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    out.push_str(&format!("{table}\n"));
    out
}
