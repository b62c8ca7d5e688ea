//! Executes a plan: per spoke, the actions that change something, in dependency order,
//! independent ones concurrently (bounded by `parallelism`), spokes concurrently with each
//! other. A failing action marks everything that depends on it as not attempted while
//! independent actions go on. Before its first write to a spoke, apply reads the spoke's
//! state again and refuses it if it changed since the plan, then saves it as a snapshot in
//! the backup folder. An [`Interrupt`] stops it from starting new actions.
//!
//! Spokes go in waves ([`waves`]): ascending, the spokes of a wave at once, a wave only
//! after every spoke of the one before succeeded (and the pause and gate between them).

mod error;
mod file;
mod live;
pub mod lock;
mod target;
mod waves;

use std::collections::{HashMap, HashSet};
use std::future::ready;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::{join_all, Either};
use futures::stream::{FuturesUnordered, StreamExt};

use crate::client::Client;
use crate::pipeline::{Fleet, SpokeState};
use crate::plan::{Action, Kind, Plan, SpokePlan};
use crate::state::snapshot::{Snapshot, SnapshotSource};
use crate::topology::{Location, Spoke, Topology};
pub use error::ApplyError;
use target::Target;

/// How apply runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Actions of one spoke in flight at once.
    pub parallelism: usize,
    /// Folder for the pre-apply snapshots.
    pub backup_dir: PathBuf,
    /// Set on a first SIGINT/SIGTERM: start no new action.
    pub interrupt: Interrupt,
    /// How long requests in flight may still take once interrupted (the request timeout).
    pub grace: Duration,
    /// How long to wait between two waves.
    pub wave_pause: Duration,
    /// A shell command run between two waves; a non-zero exit stops the rollout.
    pub gate: Option<String>,
}

/// A request to stop starting new actions (the first SIGINT or SIGTERM), shared by the
/// signal handler and every spoke's run.
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    set: Arc<AtomicBool>,
    notify: Arc<tokio::sync::Notify>,
}

impl Interrupt {
    /// Asks every run to stop starting actions.
    pub fn set(&self) {
        self.set.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Whether it was asked.
    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }

    /// Waits until it is asked.
    pub(crate) async fn wait(&self) {
        let notified = self.notify.notified();
        if !self.is_set() {
            notified.await;
        }
    }
}

/// Where apply reports its progress as it goes. The command line provides it (bars, lines
/// or nothing), so that the library itself writes nothing.
pub trait Progress: Sync {
    /// Apply to `spoke` begins: `actions` changing actions, its backup first.
    fn spoke_started(&self, _spoke: &str, _actions: usize) {}
    /// One action of `spoke` ended; `elapsed` is how long it ran (none if not attempted).
    fn action_done(
        &self,
        _spoke: &str,
        _action: &Action,
        _outcome: &Outcome,
        _elapsed: Option<Duration>,
    ) {
    }
    /// Apply to a spoke that began ended.
    fn spoke_done(&self, _report: &SpokeReport) {}
    /// Between two waves: what apply waits for (the pause, the gate) or decided.
    fn between_waves(&self, _message: &str) {}
}

/// No progress: only the final report.
pub struct Quiet;

impl Progress for Quiet {}

/// What became of one action.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", content = "message", rename_all = "snake_case")]
pub enum Outcome {
    /// Done.
    Applied,
    /// The server refused it (or it could not be sent, or was interrupted in flight).
    Failed(ApplyError),
    /// Something it depends on failed.
    NotAttempted(String),
}

/// What apply did to one spoke.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SpokeReport {
    /// Spoke name.
    pub name: String,
    /// Where the pre-apply snapshot was saved.
    pub backup: Option<PathBuf>,
    /// Each changing action, `kind:name`, with its outcome, in plan order.
    pub outcomes: Vec<(String, Outcome)>,
    /// Why nothing was applied, if so.
    pub error: Option<ApplyError>,
    /// Why the spoke was not started at all (an earlier wave did not succeed), if so.
    pub not_started: Option<String>,
}

impl SpokeReport {
    /// A report of nothing done yet.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            backup: None,
            outcomes: Vec::new(),
            error: None,
            not_started: None,
        }
    }

    /// (applied, failed, not attempted).
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for (_, o) in &self.outcomes {
            match o {
                Outcome::Applied => c.0 += 1,
                Outcome::Failed(_) => c.1 += 1,
                Outcome::NotAttempted(_) => c.2 += 1,
            }
        }
        c
    }

    /// Whether anything failed, or the spoke could not be applied or was not started.
    pub fn failed(&self) -> bool {
        self.error.is_some() || self.not_started.is_some() || self.counts().1 > 0
    }
}

/// Applies `plan`, which must have been made from `fleet`, to every spoke in it, wave by
/// wave, telling `progress` how it goes. Reports come in wave order.
pub async fn apply(
    topology: &Topology,
    fleet: &Fleet,
    plan: &Plan,
    options: &Options,
    progress: &dyn Progress,
) -> Vec<SpokeReport> {
    let timestamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second].[subsecond digits:3]Z"
        ))
        .unwrap_or_default();
    let spokes: Vec<&SpokePlan> = plan.spokes.iter().filter(|s| s.error.is_none()).collect();
    waves::in_waves(&spokes, options, progress, |wave| {
        apply_spokes(topology, fleet, wave, &timestamp, options, progress)
    })
    .await
}

/// Applies `spokes` (one wave) at once.
async fn apply_spokes(
    topology: &Topology,
    fleet: &Fleet,
    spokes: Vec<&SpokePlan>,
    timestamp: &str,
    options: &Options,
    progress: &dyn Progress,
) -> Vec<SpokeReport> {
    join_all(spokes.into_iter().filter_map(|sp| {
        let spoke = topology.spoke(&sp.name)?;
        let actions: Vec<&Action> = sp
            .actions
            .iter()
            .filter(|a| a.changes() && !a.blocked)
            .collect();
        if actions.is_empty() {
            // Nothing to write, so no backup either: the spoke's state is not needed.
            return Some(Either::Left(ready(SpokeReport::new(&sp.name))));
        }
        let read = fleet.spokes.iter().find(|r| r.name == sp.name)?;
        let actual = read.state.as_ref().ok()?;
        progress.spoke_started(&sp.name, actions.len());
        let target = Target::new(spoke, actual);
        let job = SpokeJob {
            topology,
            hub: &fleet.hub.state,
            spoke,
            location: &sp.location,
            read,
            client: read.client.as_ref(),
            actions,
            backup_stem: format!("{}-{timestamp}", sp.name),
        };
        Some(Either::Right(apply_spoke(job, target, options, progress)))
    }))
    .await
}

/// One spoke's share of an apply.
struct SpokeJob<'a> {
    topology: &'a Topology,
    /// The hub as read for the plan (the re-check before the first write needs it).
    hub: &'a crate::state::State,
    spoke: &'a Spoke,
    location: &'a str,
    /// The spoke as read for the plan.
    read: &'a SpokeState,
    client: Option<&'a Client>,
    actions: Vec<&'a Action>,
    /// The backup's name before its counter: `{spoke}-{time with milliseconds}`.
    backup_stem: String,
}

async fn apply_spoke(
    job: SpokeJob<'_>,
    target: Target<'_>,
    options: &Options,
    progress: &dyn Progress,
) -> SpokeReport {
    let name = &job.spoke.instance.name;
    let mut report = SpokeReport::new(name);
    if options.interrupt.is_set() {
        report.outcomes = not_started(&job.actions, INTERRUPTED);
        return report;
    }
    if let Err(e) = unchanged_since_plan(job.topology, job.hub, &job).await {
        report.error = Some(e);
        return report;
    }
    let snapshot = Snapshot::new(
        target.actual.clone(),
        SnapshotSource {
            instance: name.clone(),
            location: job.location.to_string(),
            unleash_version: target.actual.unleash_version.map(|v| v.to_string()),
        },
    );
    let backup = crate::files::write_unique(
        &options.backup_dir,
        &job.backup_stem,
        "json",
        &snapshot.to_json(),
    );
    match backup {
        Ok(path) => report.backup = Some(path),
        Err(e) => {
            report.error = Some(ApplyError::Backup {
                dir: options.backup_dir.clone(),
                source: Arc::new(e),
            });
            return report;
        }
    }
    match (&job.spoke.instance.location, job.client) {
        (Location::File(path), _) => match file::apply(path, name, &target, &job.actions) {
            Ok(outcomes) => report.outcomes = outcomes,
            Err(e) => report.error = Some(e),
        },
        (Location::Live { .. }, Some(client)) => {
            match live::LiveSpoke::new(client, &job.spoke.instance.project, &target).await {
                Ok(writer) => {
                    let execute = |a| writer.execute(a);
                    report.outcomes = run(name, &job.actions, options, progress, execute).await;
                    let interrupted = options.interrupt.is_set();
                    writer
                        .enable_new_flags(&mut report.outcomes, interrupted)
                        .await;
                }
                Err(e) => report.error = Some(ApplyError::Start(Arc::new(e))),
            }
        }
        (Location::Live { .. }, None) => {
            report.error = Some(ApplyError::NoConnection);
        }
    }
    progress.spoke_done(&report);
    report
}

/// Why an action was not started after an interrupt.
const INTERRUPTED: &str = "interrupted before it started";

/// Every action as not attempted, for `why`.
fn not_started(actions: &[&Action], why: &str) -> Vec<(String, Outcome)> {
    actions
        .iter()
        .map(|a| (file::label(a), Outcome::NotAttempted(why.into())))
        .collect()
}

/// Reads the spoke again right before its first write and checks that its state is the
/// one the plan was made from: another apply (on another runner, say) or a person may
/// have changed it since.
async fn unchanged_since_plan(
    topology: &Topology,
    hub: &crate::state::State,
    job: &SpokeJob<'_>,
) -> Result<(), ApplyError> {
    let now = crate::pipeline::fingerprint_again(topology, job.spoke, hub, job.client)
        .await
        .map_err(|e| ApplyError::Reread(Arc::new(e)))?;
    if Some(now) != job.read.fingerprint {
        return Err(ApplyError::ChangedSincePlan);
    }
    Ok(())
}

type Key = (Kind, String);

/// Runs `actions` in dependency order, up to `parallelism` at once; returns the outcome
/// of each in plan order.
async fn run<'a, F, Fut>(
    spoke: &str,
    actions: &[&'a Action],
    options: &Options,
    progress: &dyn Progress,
    execute: F,
) -> Vec<(String, Outcome)>
where
    F: Fn(&'a Action) -> Fut,
    Fut: std::future::Future<Output = Result<(), ApplyError>>,
{
    let keys: HashSet<Key> = actions.iter().map(|a| (a.kind, a.name.clone())).collect();
    let mut outcome: HashMap<Key, Outcome> = HashMap::new();
    let mut started: HashSet<Key> = HashSet::new();
    let mut in_flight = FuturesUnordered::new();
    let interrupt = &options.interrupt;
    let mut deadline = None;
    loop {
        // Start every action whose dependencies are done, in plan order.
        for a in actions.iter().filter(|_| !interrupt.is_set()) {
            let key = (a.kind, a.name.clone());
            if started.contains(&key) || in_flight.len() >= options.parallelism.max(1) {
                continue;
            }
            let deps: Vec<&Key> = a.depends_on.iter().filter(|d| keys.contains(*d)).collect();
            if let Some(bad) = deps.iter().find(|d| {
                matches!(
                    outcome.get(**d),
                    Some(Outcome::Failed(_) | Outcome::NotAttempted(_))
                )
            }) {
                started.insert(key.clone());
                let why = format!("depends on {}:{}, which was not applied", bad.0, bad.1);
                let not_attempted = Outcome::NotAttempted(why);
                progress.action_done(spoke, a, &not_attempted, None);
                outcome.insert(key, not_attempted);
                continue;
            }
            if deps
                .iter()
                .all(|d| outcome.get(*d) == Some(&Outcome::Applied))
            {
                started.insert(key.clone());
                let fut = execute(a);
                in_flight.push(async move {
                    let t = Instant::now();
                    (a, fut.await, t.elapsed())
                });
            }
        }
        if in_flight.is_empty() {
            break;
        }
        // Once interrupted, what is in flight may finish, within the grace period.
        let next = if interrupt.is_set() {
            let end = *deadline.get_or_insert_with(|| tokio::time::Instant::now() + options.grace);
            match tokio::time::timeout_at(end, in_flight.next()).await {
                Ok(next) => next,
                Err(_) => break,
            }
        } else {
            tokio::select! {
                next = in_flight.next() => next,
                () = interrupt.wait() => continue,
            }
        };
        let Some((a, result, elapsed)) = next else {
            break;
        };
        let done = match result {
            Ok(()) => Outcome::Applied,
            Err(e) => Outcome::Failed(e),
        };
        progress.action_done(spoke, a, &done, Some(elapsed));
        outcome.insert((a.kind, a.name.clone()), done);
    }
    actions
        .iter()
        .map(|a| {
            let key = (a.kind, a.name.clone());
            let o = outcome.remove(&key).unwrap_or_else(|| {
                if started.contains(&key) {
                    Outcome::Failed(ApplyError::InterruptedInFlight)
                } else if interrupt.is_set() {
                    Outcome::NotAttempted(INTERRUPTED.into())
                } else {
                    Outcome::NotAttempted("not reached".into())
                }
            });
            (file::label(a), o)
        })
        .collect()
}

/// The default backup folder, `.flagfleet/backups`.
pub fn default_backup_dir() -> PathBuf {
    Path::new(".flagfleet").join("backups")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Verb;

    fn create(name: &str) -> Action {
        Action {
            kind: Kind::Flag,
            name: name.into(),
            action: Verb::Create,
            reason: crate::plan::Reason::MissingOnSpoke,
            blocked: false,
            depends_on: vec![],
            diff: None,
            environments: vec![],
            notes: vec![],
            kept: vec![],
            object: Default::default(),
            drift: None,
        }
    }

    fn options(parallelism: usize, grace: Duration) -> Options {
        Options {
            parallelism,
            backup_dir: PathBuf::new(),
            interrupt: Interrupt::default(),
            grace,
            wave_pause: Duration::ZERO,
            gate: None,
        }
    }

    #[tokio::test]
    async fn an_interrupt_starts_no_new_action_and_lets_the_running_one_finish() {
        let actions: Vec<Action> = ["a", "b", "c"].map(create).into();
        let refs: Vec<&Action> = actions.iter().collect();
        let options = options(1, Duration::from_secs(5));
        let interrupt = options.interrupt.clone();
        let outcomes = run("eu", &refs, &options, &Quiet, |a: &Action| {
            let interrupt = interrupt.clone();
            let first = a.name == "a";
            async move {
                if first {
                    // The signal arrives while the first action is in flight.
                    interrupt.set();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(())
            }
        })
        .await;
        assert_eq!(
            outcomes,
            [
                ("flag:a".to_string(), Outcome::Applied),
                ("flag:b".into(), Outcome::NotAttempted(INTERRUPTED.into())),
                ("flag:c".into(), Outcome::NotAttempted(INTERRUPTED.into())),
            ]
        );
    }

    #[tokio::test]
    async fn an_action_still_in_flight_after_the_grace_period_is_reported_unknown() {
        let actions = [create("slow")];
        let refs: Vec<&Action> = actions.iter().collect();
        let options = options(1, Duration::from_millis(100));
        let interrupt = options.interrupt.clone();
        let outcomes = run("eu", &refs, &options, &Quiet, |_| {
            let interrupt = interrupt.clone();
            async move {
                interrupt.set();
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(())
            }
        })
        .await;
        assert!(
            matches!(
                &outcomes[0].1,
                Outcome::Failed(ApplyError::InterruptedInFlight)
            ),
            "{outcomes:?}"
        );
    }
}
