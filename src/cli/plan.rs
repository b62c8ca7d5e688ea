//! `flagfleet plan`: show what apply would change on each spoke.

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use super::{CliError, Context, HubArgs};
use crate::pipeline;
use crate::plan::{self, JsonWriter, Plan, SpokePlan};
use crate::render::{self, human, markdown, Review, ReviewCopy};
use crate::state::snapshot::AtomicFile;

/// Show what apply would change on each spoke.
///
/// Reads the hub and the spokes (several at once, see --parallelism), derives what each
/// spoke should hold (the selected hub flags with the spoke's mappings and overrides, and
/// the scaffolding they need), and prints one action per object: + create, ~ overwrite
/// (with a diff), - archive (pruning spokes), = unchanged, ! blocked (with the reason),
/// . other skips (policy, the spoke's definition kept). Actions are
/// listed in the dependency order apply follows. An unreachable spoke is reported for
/// itself while the others are still planned (exit code 1). Each spoke's state is
/// dropped once it is planned, so memory grows with --parallelism, not with the fleet.
///
/// Examples:
///   flagfleet plan
///   flagfleet plan --format markdown > plan.md          # a pull-request comment
///   flagfleet plan --out plan.json --detailed-exitcode  # CI: 0 no changes, 2 changes
///   flagfleet plan --spoke eu-west --spoke us-east
///   flagfleet plan --wave 2 --out wave2.json            # one stage of a rollout
///   flagfleet plan --drift-only --format markdown      # who changed spokes by hand
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
    /// Plan only the spokes of this wave (`wave` in the topology; with --spoke, those of
    /// them in it): the plan of one stage of a rollout approved stage by stage, for
    /// `apply --wave N` or `apply PLAN_FILE`.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    wave: Option<u32>,
    /// Exit 0 when nothing would change, 2 when something would, 1 on error.
    #[arg(long)]
    detailed_exitcode: bool,
    /// Spokes read and planned at once (each holds its whole state in memory meanwhile)
    /// [default: 32 when every spoke planned is a live server, whose reads wait on the
    /// network; the machine's cores, at most 4, when one is a snapshot file, whose reading is
    /// CPU-bound]; also `--read-parallelism`, as apply names it
    #[arg(long, visible_alias = "read-parallelism", value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    parallelism: Option<u16>,
    /// Plan archiving more flags than a pruning spoke's `max_archive` (default: 10 flags
    /// or 10 % of its selected flags), for this run only.
    #[arg(long)]
    allow_mass_archive: bool,
    /// List only objects changed on a spoke by someone other than flagfleet
    /// since it last wrote them (from the event logs; docs/plan-format.md): a scheduled
    /// drift report.
    #[arg(long)]
    drift_only: bool,
    #[command(flatten)]
    hub: HubArgs,
}

/// At most how many spokes are read and planned at once unless told otherwise, when one of
/// them is a snapshot file: parsing one is CPU-bound, so no more than the machine's cores,
/// and each holds its whole state in memory meanwhile (docs/performance.md, "Memory").
pub(super) const SPOKES_AT_ONCE: u16 = 4;

/// The same when every spoke is a live server: a read mostly waits on the network, so
/// more at once cost little CPU (docs/performance.md, "Reading many live spokes").
pub(super) const LIVE_SPOKES_AT_ONCE: u16 = 32;

/// How the plan is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Format {
    /// For a terminal (colour when it is one).
    Human,
    /// The stable format of docs/plan-format.md.
    Json,
    /// For a pull-request comment; always fits in one GitHub comment.
    Markdown,
}

pub(crate) async fn run(ctx: &mut Context, args: Args) -> Result<ExitCode, CliError> {
    let (mut topology, topology_fingerprint) = ctx.topology_for_plan(&args.hub)?;
    if args.allow_mass_archive {
        super::lift_archive_limits(&mut topology);
    }
    let options = render::Options {
        color: ctx.color,
        verbose: ctx.verbose,
    };
    let finish = Finish {
        json: args.format == Format::Json || args.out.is_some(),
        options,
    };
    let drift_only = args.drift_only;
    let spokes = match args.wave {
        Some(wave) => super::in_wave(&topology, args.spokes, wave)?,
        None => args.spokes,
    };
    let reading = ctx.reading(args.parallelism, &topology, &spokes);
    let mut running = pipeline::start(Arc::new(topology), &spokes, &reading, move |read, plan| {
        drop(read);
        finish.finish(if drift_only {
            plan::only_spoke_drift(plan)
        } else {
            plan
        })
    })
    .await?;
    let hub_info = running.hub.info.clone();

    // Where each spoke's plan goes as soon as it is made: JSON to stdout and/or the plan
    // file, and a review copy (unchanged objects only counted) for the text renderings.
    let mut file = match &args.out {
        Some(path) => Some(
            AtomicFile::create(path)
                .and_then(|f| JsonWriter::begin(f, &topology_fingerprint, &hub_info))
                .map_err(|source| write_error(path, source))?,
        ),
        None => None,
    };
    let mut stdout_json = match args.format {
        Format::Json => Some(JsonWriter::begin(
            BufWriter::new(ctx.ui.out_writer()),
            &topology_fingerprint,
            &hub_info,
        )?),
        _ => None,
    };
    let mut review = Review {
        hub: hub_info,
        spokes: Vec::new(),
    };
    while let Some(spoke) = running.next().await {
        let Finished { json, review: copy } = spoke?;
        if let (Some(w), Some(json)) = (&mut stdout_json, &json) {
            w.spoke_json(json)?;
        }
        if let (Some(w), Some(path), Some(json)) = (&mut file, &args.out, &json) {
            w.spoke_json(json)
                .map_err(|source| write_error(path, source))?;
        }
        review.spokes.push(copy);
    }

    stdout_json.map(JsonWriter::finish).transpose()?;
    print_review(ctx, &review, args.format, options)?;
    if let (Some(w), Some(path)) = (file, &args.out) {
        w.finish()
            .and_then(AtomicFile::commit)
            .map_err(|source| write_error(path, source))?;
        ctx.ui
            .err(&format!("Saved the plan to {}.\n", path.display()))?;
    }
    Ok(exit_code(&review, args.detailed_exitcode))
}

/// Prints a plan's review copy ([`render::for_review`]) as text; JSON is written as the
/// plan is made, so `Format::Json` prints nothing here.
fn print_review(
    ctx: &mut Context,
    review: &Review,
    format: Format,
    options: render::Options,
) -> std::io::Result<()> {
    match format {
        Format::Json => Ok(()),
        Format::Human => ctx.ui.out(&human::render(review, options)),
        Format::Markdown => ctx
            .ui
            .out(&markdown::render(review, options, markdown::COMMENT_LIMIT)),
    }
}

/// Prints a whole plan (a saved one, say) exactly as `flagfleet plan` printed it in
/// `format` when it made it.
pub(super) fn render_plan(
    ctx: &mut Context,
    plan: Plan,
    format: Format,
    options: render::Options,
) -> Result<(), CliError> {
    if format == Format::Json {
        ctx.ui.out(&plan.to_json())?;
        return Ok(());
    }
    let review = Review {
        hub: plan.hub,
        spokes: plan
            .spokes
            .into_iter()
            .map(|s| render::for_review(s, options))
            .collect(),
    };
    print_review(ctx, &review, format, options)?;
    Ok(())
}

/// What each spoke's task makes of its plan, so that the main task only writes.
#[derive(Debug, Clone, Copy)]
struct Finish {
    /// Serialize the plan as JSON.
    json: bool,
    /// For the review copy.
    options: render::Options,
}

impl Finish {
    /// The spoke's JSON (when asked for) and its review copy.
    fn finish(self, plan: SpokePlan) -> std::io::Result<Finished> {
        let json = self.json.then(|| plan::spoke_json(&plan)).transpose()?;
        let review = render::for_review(plan, self.options);
        Ok(Finished { json, review })
    }
}

/// One spoke's plan, ready to print.
struct Finished {
    /// The spoke's part of the plan JSON ([`plan::spoke_json`]), when asked for.
    json: Option<Vec<u8>>,
    /// The review copy ([`render::for_review`]).
    review: ReviewCopy,
}

fn write_error(path: &Path, source: std::io::Error) -> CliError {
    CliError::Write {
        path: path.display().to_string(),
        source,
    }
}

fn exit_code(review: &Review, detailed: bool) -> ExitCode {
    let spokes = review.spokes.iter().map(|s| &s.plan);
    if spokes.clone().any(|s| s.error.is_some()) {
        ExitCode::FAILURE
    } else if detailed && spokes.clone().any(SpokePlan::has_changes) {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}
