//! Executes a plan: per spoke, the actions that change something, in dependency order,
//! independent ones concurrently (bounded by `parallelism`), spokes concurrently with each
//! other. A failing action marks everything that depends on it as not attempted while
//! independent actions go on. Before its first write to a spoke, apply saves the spoke's
//! full state as a snapshot in the backup folder.

mod file;
mod live;
mod target;

use std::collections::{HashMap, HashSet};
use std::future::ready;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::future::{join_all, Either};
use futures::stream::{FuturesUnordered, StreamExt};

use crate::client::Client;
use crate::pipeline::Fleet;
use crate::plan::{Action, Kind, Plan};
use crate::state::snapshot::{self, Snapshot, SnapshotSource};
use crate::topology::{Location, Spoke, Topology};
use target::Target;

/// How apply runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Actions of one spoke in flight at once.
    pub parallelism: usize,
    /// Folder for the pre-apply snapshots.
    pub backup_dir: PathBuf,
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
    /// The server refused it (or it could not be sent); the message says why.
    Failed(String),
    /// Something it depends on failed.
    NotAttempted(String),
}

/// Why a spoke could not be applied at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpokeError(pub String);

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
    pub error: Option<String>,
}

impl SpokeReport {
    /// A report of nothing done yet.
    fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            backup: None,
            outcomes: Vec::new(),
            error: None,
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

    /// Whether anything failed or the spoke could not be applied.
    pub fn failed(&self) -> bool {
        self.error.is_some() || self.counts().1 > 0
    }
}

/// Applies `plan`, which must have been made from `fleet`, to every spoke in it, telling
/// `progress` how it goes.
pub async fn apply(
    topology: &Topology,
    fleet: &Fleet,
    plan: &Plan,
    options: &Options,
    progress: &dyn Progress,
) -> Vec<SpokeReport> {
    let timestamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_default();
    let spokes = plan.spokes.iter().filter(|s| s.error.is_none());
    join_all(spokes.filter_map(|sp| {
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
        let target = Target::new(topology, &fleet.hub.state, spoke, actual);
        let job = SpokeJob {
            spoke,
            location: &sp.location,
            client: read.client.as_ref(),
            actions,
            backup: options
                .backup_dir
                .join(format!("{}-{timestamp}.json", sp.name)),
        };
        Some(Either::Right(apply_spoke(job, target, options, progress)))
    }))
    .await
}

/// One spoke's share of an apply.
struct SpokeJob<'a> {
    spoke: &'a Spoke,
    location: &'a str,
    client: Option<&'a Client>,
    actions: Vec<&'a Action>,
    backup: PathBuf,
}

async fn apply_spoke(
    job: SpokeJob<'_>,
    target: Target<'_>,
    options: &Options,
    progress: &dyn Progress,
) -> SpokeReport {
    let name = &job.spoke.instance.name;
    let mut report = SpokeReport::new(name);
    let snapshot = Snapshot::new(
        target.actual.clone(),
        SnapshotSource {
            instance: name.clone(),
            location: job.location.to_string(),
            unleash_version: None,
        },
    );
    if let Err(e) = snapshot::write_atomic(&job.backup, &snapshot.to_json()) {
        report.error = Some(format!(
            "cannot write the backup {}: {e}; nothing was changed",
            job.backup.display()
        ));
        return report;
    }
    report.backup = Some(job.backup.clone());
    match (&job.spoke.instance.location, job.client) {
        (Location::File(path), _) => match file::apply(path, name, &target, &job.actions) {
            Ok(outcomes) => report.outcomes = outcomes,
            Err(SpokeError(e)) => report.error = Some(e),
        },
        (Location::Live { .. }, Some(client)) => {
            match live::LiveSpoke::new(client, &job.spoke.instance.project, &target).await {
                Ok(writer) => {
                    let execute = |a| writer.execute(a);
                    report.outcomes = run(name, &job.actions, options, progress, execute).await;
                }
                Err(e) => report.error = Some(format!("{e}; nothing was changed")),
            }
        }
        (Location::Live { .. }, None) => {
            report.error = Some("no connection to the spoke".into());
        }
    }
    progress.spoke_done(&report);
    report
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
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let keys: HashSet<Key> = actions.iter().map(|a| (a.kind, a.name.clone())).collect();
    let mut outcome: HashMap<Key, Outcome> = HashMap::new();
    let mut started: HashSet<Key> = HashSet::new();
    let mut in_flight = FuturesUnordered::new();
    loop {
        // Start every action whose dependencies are done, in plan order.
        for a in actions {
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
        let Some((a, result, elapsed)) = in_flight.next().await else {
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
            let o = outcome
                .remove(&(a.kind, a.name.clone()))
                .unwrap_or_else(|| Outcome::NotAttempted("not reached".into()));
            (file::label(a), o)
        })
        .collect()
}

/// The default backup folder, `.flagfleet/backups`.
pub fn default_backup_dir() -> PathBuf {
    Path::new(".flagfleet").join("backups")
}
