//! `flagfleet apply`: execute a plan on the spokes.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use comfy_table::{presets, CellAlignment, Table};

use super::error::PlanFileProblem;
use super::{progress, CliError, Context, HubArgs};
use crate::apply::lock::{self, Locks};
use crate::apply::{self, Outcome, Progress, SpokeReport};
use crate::pipeline;
use crate::plan::{self, Action, Plan, SpokeError, SpokePlan};
use crate::render::{self, human, Review, ReviewCopy};
use crate::topology::Location;

/// Execute a plan on the spokes, in dependency order.
///
/// Without PLAN_FILE: plans, prints the plan, and asks for confirmation on a terminal
/// (type `yes`), or goes ahead with --auto-approve; without a terminal and without
/// --auto-approve it refuses and changes nothing.
///
/// With PLAN_FILE (from `flagfleet plan --out`): re-reads the hub and every spoke first and
/// refuses, before changing anything, if any state differs from when the plan was made or
/// if the actions planned now differ from the saved ones. With --hub-snapshot, the hub is
/// that snapshot: take it right before applying (docs/state.md, sharded pipelines).
///
/// Each spoke is locked for the whole apply (a second apply fails, or waits up to
/// --lock-timeout). Right before its first write, a spoke is read again and refused if it
/// changed since the plan. Then apply saves the spoke's full state as a snapshot in the
/// backup folder (to restore, use that snapshot as the hub of an ordinary run), writes
/// and drops it: no spoke's state is kept from planning, and --read-parallelism spokes
/// are applied at once.
///
/// Spokes go in waves (`wave` in the topology): wave 1 first, the spokes of a wave at once,
/// and a wave only after every spoke of the one before succeeded, --wave-pause has passed
/// and --gate exited 0. When a wave fails, later waves are reported as not started (exit
/// code 1). A later wave's spokes are re-read when it starts and refused if they changed
/// since the plan. --wave N applies wave N alone (a pipeline with an approval per stage).
///
/// On SIGINT or SIGTERM apply starts no new action, lets requests in flight finish, prints
/// its report and exits 130; a second signal stops it at once.
///
/// Examples:
///   flagfleet apply
///   flagfleet plan --out plan.json && flagfleet apply plan.json
///   flagfleet apply --auto-approve --spoke eu-west --parallelism 8
///   flagfleet apply --auto-approve --wave-pause 600 --gate ./check-error-rates.sh
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
    /// Spokes read at once, to plan them and again to apply them (each holds its whole
    /// state in memory meanwhile; a spoke is read again right before its first write,
    /// backed up, written and dropped) [default: 32 when every spoke is a live server; the
    /// machine's cores, at most 4, when one is a snapshot file]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    read_parallelism: Option<u16>,
    /// Archive more flags than a pruning spoke's `max_archive` (default: 10 flags or 10 %
    /// of its selected flags), for this run only.
    #[arg(long)]
    allow_mass_archive: bool,
    /// Where pre-apply snapshots are saved.
    #[arg(long, value_name = "DIR", default_value_os_t = apply::default_backup_dir())]
    backup_dir: PathBuf,
    /// Seconds to wait for a spoke that another apply holds locked (0: fail at once).
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    lock_timeout: u64,
    /// Apply the spokes that can be read and report the others (exit code 1), instead of
    /// refusing the whole run when a spoke cannot be read.
    #[arg(long)]
    skip_unreachable: bool,
    /// Apply only the spokes of this wave (`wave` in the topology; default 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    wave: Option<u32>,
    /// Seconds to wait after a wave succeeded, before the next one starts.
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    wave_pause: u64,
    /// A shell command run after a wave succeeded (and after --wave-pause), before the
    /// next one starts; a non-zero exit stops the rollout there. It gets FLAGFLEET_WAVE
    /// (the wave done), FLAGFLEET_NEXT_WAVE, FLAGFLEET_SPOKES (the spokes of the wave
    /// done, comma-separated) and FLAGFLEET_NEXT_SPOKES; its output goes to stderr.
    #[arg(long, value_name = "CMD")]
    gate: Option<String>,
    #[command(flatten)]
    hub: HubArgs,
}

pub(crate) async fn run(ctx: &mut Context, args: Args) -> Result<ExitCode, CliError> {
    let (mut topology, topology_fp) = ctx.topology_for_plan(&args.hub)?;
    if args.allow_mass_archive {
        super::lift_archive_limits(&mut topology);
    }
    let saved = args.plan_file.as_deref().map(read_plan).transpose()?;
    let mut spokes = spokes_to_apply(saved.as_ref(), &args.spokes, &topology_fp)?;
    if let Some(wave) = args.wave {
        spokes = super::in_wave(&topology, spokes, wave)?;
    }
    let locked = pipeline::select_spokes(&topology, &spokes)?;
    let locks = Locks::acquire(
        &locked,
        &lock::default_lock_dir(),
        Duration::from_secs(args.lock_timeout),
    )
    .await?;
    let interrupt = apply::Interrupt::default();
    let applying = Arc::new(AtomicBool::new(false));
    let signals = tokio::spawn(on_signals(
        interrupt.clone(),
        applying.clone(),
        locks.clone(),
    ));
    let _stop_signals = AbortOnDrop(signals);

    // Each spoke's task keeps no state (apply reads a spoke again right before its first
    // write), only its plan without the unchanged actions a rendering counts (the objects
    // it writes held once across spokes), the client that read it and, with a saved plan,
    // how the actions planned now differ from it.
    let reading = ctx.reading(args.read_parallelism, &topology, &spokes);
    let topology = Arc::new(topology);
    let render_options = render::Options {
        color: ctx.color,
        verbose: ctx.verbose,
    };
    let saved = saved.map(Arc::new);
    let shared = Arc::new(plan::SharedObjects::default());
    let mut running = pipeline::start(topology.clone(), &spokes, &reading, {
        let saved = saved.clone();
        move |read, mut plan| {
            shared.share(&mut plan.actions);
            Reviewed::new(read, plan, saved.as_deref(), render_options)
        }
    })
    .await?;
    let mut review = Review {
        hub: running.hub.info.clone(),
        spokes: Vec::new(),
    };
    let mut clients = Vec::new();
    let mut edited = None;
    while let Some(spoke) = running.next().await {
        edited = edited.or(spoke.edited);
        clients.push(spoke.client);
        review.spokes.push(spoke.copy);
    }
    // A live spoke's read before its writes looks up the hub flags it lacks, as planning
    // did; a fleet of files has no use for the hub's state.
    let any_live = review.spokes.iter().any(|c| {
        topology
            .spoke(&c.plan.name)
            .is_some_and(|s| matches!(s.instance.location, Location::Live { .. }))
    });
    let hub = any_live.then(|| running.hub.state.clone());
    drop(running);

    let unreachable: Vec<(&str, &SpokeError)> = review
        .spokes
        .iter()
        .filter_map(|c| Some((c.plan.name.as_str(), c.plan.error.as_ref()?)))
        .collect();
    if let (Some((spoke, error)), false) = (unreachable.first(), args.skip_unreachable) {
        return Err(CliError::SpokeUnreadable {
            spoke: spoke.to_string(),
            error: (*error).clone(),
        });
    }
    match &saved {
        Some(saved) => {
            check_fresh(saved, &review)?;
            if let Some(edited) = edited {
                return Err(edited);
            }
        }
        None => {
            if !ctx.quiet {
                ctx.ui.out(&human::render(&review, render_options))?;
            }
        }
    }
    drop(saved);
    let skipped: Vec<SpokeReport> = unreachable
        .iter()
        .map(|(spoke, error)| SpokeReport {
            error: Some(apply::ApplyError::Unreachable((*error).clone())),
            ..SpokeReport::new(spoke)
        })
        .collect();
    if !review.spokes.iter().any(|c| c.plan.has_changes()) {
        ctx.ui
            .out("No changes: every spoke already matches the plan.\n")?;
        if skipped.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
        ctx.ui.out(&render_report(&skipped))?;
        return Ok(ExitCode::FAILURE);
    }
    if args.plan_file.is_none() && !args.auto_approve {
        confirm(ctx)?;
    }
    // What was shown is no longer needed: apply keeps only what it writes.
    let plans: Vec<SpokePlan> = review
        .spokes
        .into_iter()
        .map(|c| apply::only_what_apply_writes(c.plan))
        .collect();
    let planned: Vec<apply::Planned> = plans
        .iter()
        .zip(&clients)
        .map(|(plan, client)| apply::Planned {
            plan,
            client: client.as_ref(),
        })
        .collect();
    let options = apply::Options {
        parallelism: args.parallelism,
        backup_dir: args.backup_dir,
        interrupt: interrupt.clone(),
        grace: ctx.client.timeout,
        wave_pause: Duration::from_secs(args.wave_pause),
        gate: args.gate,
        spokes_at_once: usize::from(reading.parallelism),
    };
    let progress = progress_for(ctx);
    applying.store(true, Ordering::SeqCst);
    let mut reports = apply::apply(
        &topology,
        hub.as_deref(),
        &planned,
        &options,
        progress.as_ref(),
    )
    .await;
    reports.extend(skipped);
    ctx.ui.out(&render_report(&reports))?;
    drop(locks);
    Ok(if interrupt.is_set() {
        ctx.ui
            .err("Interrupted: the report above says what was done.\n")?;
        ExitCode::from(INTERRUPTED)
    } else if reports.iter().any(SpokeReport::failed) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The spokes to apply: those asked for (all when none), and with a saved plan only
/// those in it, which must come from this topology.
fn spokes_to_apply(
    saved: Option<&Plan>,
    asked: &[String],
    topology_fp: &str,
) -> Result<Vec<String>, CliError> {
    let Some(saved) = saved else {
        return Ok(asked.to_vec());
    };
    if saved.topology_fingerprint != topology_fp {
        return Err(CliError::PlanTopology);
    }
    let in_plan: Vec<String> = saved.spokes.iter().map(|s| s.name.clone()).collect();
    Ok(if asked.is_empty() {
        in_plan
    } else {
        asked
            .iter()
            .filter(|s| in_plan.contains(s))
            .cloned()
            .collect()
    })
}

/// Where apply reports progress: nowhere with `-q`, bars on a terminal, lines otherwise.
fn progress_for(ctx: &Context) -> Box<dyn Progress> {
    if ctx.quiet {
        Box::new(apply::Quiet)
    } else if std::io::stderr().is_terminal() {
        Box::new(progress::Bars::new())
    } else {
        Box::new(progress::Lines)
    }
}

/// The exit code after SIGINT or SIGTERM (128 + SIGINT, as shells report it).
const INTERRUPTED: u8 = 130;

/// Handles SIGINT and SIGTERM. Before any write, the first one stops the run at once
/// (nothing changed). During apply, the first one stops new actions (the report follows);
/// a second one exits at once. Locks are released either way.
async fn on_signals(interrupt: apply::Interrupt, applying: Arc<AtomicBool>, locks: Locks) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    either(&mut int, &mut term).await;
    if applying.load(Ordering::SeqCst) {
        eprintln!(
            "Interrupted: starting no new action, waiting for requests in flight; a second signal stops at once."
        );
        interrupt.set();
        either(&mut int, &mut term).await;
        eprintln!(
            "Interrupted again: stopping now; requests in flight may or may not have taken effect."
        );
    } else {
        eprintln!("Interrupted before any change: nothing was changed.");
    }
    locks.release();
    std::process::exit(i32::from(INTERRUPTED));
}

/// Waits for the next of two signals.
async fn either(a: &mut tokio::signal::unix::Signal, b: &mut tokio::signal::unix::Signal) {
    tokio::select! {
        _ = a.recv() => {},
        _ = b.recv() => {},
    }
}

/// Aborts a task when dropped (the signal handler outlives nothing of the apply).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads a plan saved with `flagfleet plan --out`, refusing other format versions.
pub(super) fn read_plan(path: &std::path::Path) -> Result<Plan, CliError> {
    let refuse = |problem| CliError::PlanFile {
        path: path.to_path_buf(),
        problem,
    };
    let text = std::fs::read_to_string(path).map_err(|e| refuse(PlanFileProblem::Unreadable(e)))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| refuse(PlanFileProblem::NotJson(e)))?;
    let version = value.get("format_version").and_then(|v| v.as_u64());
    if version != Some(u64::from(plan::FORMAT_VERSION)) {
        return Err(refuse(PlanFileProblem::Version(version)));
    }
    serde_json::from_value(value).map_err(|e| refuse(PlanFileProblem::Invalid(e)))
}

/// Refuses a saved plan when any state it was made from has changed since.
fn check_fresh(saved: &Plan, now: &Review) -> Result<(), CliError> {
    let mut stale = Vec::new();
    if saved.hub.fingerprint != now.hub.fingerprint {
        stale.push(format!("the hub {}", saved.hub.name));
    }
    for s in now
        .spokes
        .iter()
        .map(|c| &c.plan)
        .filter(|s| s.error.is_none())
    {
        let then = saved.spokes.iter().find(|p| p.name == s.name);
        if then.and_then(|p| p.fingerprint.as_ref()) != s.fingerprint.as_ref() {
            stale.push(format!("spoke {}", s.name));
        }
    }
    if stale.is_empty() {
        Ok(())
    } else {
        Err(CliError::StalePlan { stale })
    }
}

/// What apply keeps of one spoke once it is planned (on the spoke's task).
struct Reviewed {
    /// The plan to show and apply, without the unchanged actions a rendering only counts.
    copy: ReviewCopy,
    /// The client that read the spoke (live spokes).
    client: Option<crate::client::Client>,
    /// With a saved plan: the refusal when the actions planned now are not the saved ones.
    edited: Option<CliError>,
}

impl Reviewed {
    fn new(
        read: pipeline::SpokeState,
        plan: SpokePlan,
        saved: Option<&Plan>,
        options: render::Options,
    ) -> Self {
        let edited = saved.and_then(|saved| edited(saved, &plan));
        Reviewed {
            copy: render::for_review(plan, options),
            client: read.client,
            edited,
        }
    }
}

/// Refuses a saved plan whose actions for `now`'s spoke are not the ones planned now from
/// the same states (an edited plan file, or another flagfleet that plans differently):
/// what runs must be what was reviewed.
fn edited(saved: &Plan, now: &SpokePlan) -> Option<CliError> {
    if now.error.is_some() {
        return None;
    }
    let then = saved
        .spokes
        .iter()
        .find(|p| p.name == now.name)
        .map_or(&[][..], |p| &p.actions[..]);
    if plan::actions_digest(then) == plan::actions_digest(&now.actions) {
        return None;
    }
    let (i, was, is) = plan::first_difference(then, &now.actions).unwrap_or((0, None, None));
    let show = |a: Option<&Action>| {
        a.map_or("nothing".to_string(), |a| {
            format!("`{} {} {}`", a.action.as_str(), a.kind, a.name)
        })
    };
    Some(CliError::EditedPlan {
        spoke: now.name.clone(),
        position: i + 1,
        same_object: was.is_some() && is.is_some() && show(was) == show(is),
        saved: show(was),
        now: show(is),
    })
}

fn confirm(ctx: &mut Context) -> Result<(), CliError> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(CliError::NoTerminal);
    }
    ctx.ui
        .err("\nApply these changes? Only 'yes' is accepted: ")?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        return Err(CliError::Cancelled);
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
        if let Some(why) = &r.not_started {
            out.push_str(&format!("Apply to {}: not started: {why}.\n", r.name));
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
        } else if r.not_started.is_some() {
            table.add_row([r.name.as_str(), "not started", "-", "-"]);
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
