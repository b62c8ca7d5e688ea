//! Executes a plan: per spoke, the actions that change something, in dependency order,
//! independent ones concurrently (bounded by `parallelism`), spokes concurrently with each
//! other. A failing action marks everything that depends on it as not attempted while
//! independent actions go on. Before its first write to a spoke, apply saves the spoke's
//! full state as a snapshot in the backup folder.

mod file;
mod live;
mod target;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::future::join_all;
use futures::stream::{FuturesUnordered, StreamExt};

use crate::fleet::FleetState;
use crate::plan::{Action, Kind, Plan};
use crate::state::snapshot::{self, Snapshot, SnapshotSource};
use crate::topology::{Location, Topology};
use target::Target;

/// How apply runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Actions of one spoke in flight at once.
    pub parallelism: usize,
    /// Folder for the pre-apply snapshots.
    pub backup_dir: PathBuf,
    /// Where progress goes.
    pub progress: Progress,
}

/// Progress reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// One line per action on stderr.
    Lines,
    /// Nothing until the final report.
    Quiet,
}

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

/// Applies `plan`, which must have been made from `fleet`, to every spoke in it.
pub async fn apply(
    topology: &Topology,
    fleet: &FleetState,
    plan: &Plan,
    options: &Options,
) -> Vec<SpokeReport> {
    let timestamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_default();
    join_all(
        plan.spokes
            .iter()
            .filter(|s| s.error.is_none())
            .filter_map(|sp| {
                let spoke = topology.spoke(&sp.name)?;
                let read = fleet.spokes.iter().find(|r| r.name == sp.name)?;
                let actual = read.state.as_ref().ok()?;
                let actions: Vec<&Action> = sp
                    .actions
                    .iter()
                    .filter(|a| a.changes() && !a.blocked)
                    .collect();
                let timestamp = timestamp.clone();
                Some(async move {
                    let mut report = SpokeReport {
                        name: sp.name.clone(),
                        backup: None,
                        outcomes: Vec::new(),
                        error: None,
                    };
                    if actions.is_empty() {
                        return report;
                    }
                    let backup = options
                        .backup_dir
                        .join(format!("{}-{timestamp}.json", sp.name));
                    let snapshot = Snapshot::new(
                        actual.clone(),
                        SnapshotSource {
                            instance: sp.name.clone(),
                            location: sp.location.clone(),
                            unleash_version: None,
                        },
                    );
                    if let Err(e) = snapshot::write_atomic(&backup, &snapshot.to_json()) {
                        report.error = Some(format!(
                            "cannot write the backup {}: {e}; nothing was changed",
                            backup.display()
                        ));
                        return report;
                    }
                    report.backup = Some(backup);
                    let target = Target::new(topology, &fleet.hub, spoke, actual);
                    match (&spoke.instance.location, &read.client) {
                        (Location::File(path), _) => {
                            match file::apply(path, &sp.name, &target, &actions) {
                                Ok(outcomes) => report.outcomes = outcomes,
                                Err(SpokeError(e)) => report.error = Some(e),
                            }
                        }
                        (Location::Live { .. }, Some(client)) => {
                            match live::LiveSpoke::new(client, &spoke.instance.project, &target)
                                .await
                            {
                                Ok(writer) => {
                                    report.outcomes =
                                        run(&sp.name, &actions, options, |a| writer.execute(a))
                                            .await;
                                }
                                Err(e) => report.error = Some(format!("{e}; nothing was changed")),
                            }
                        }
                        (Location::Live { .. }, None) => {
                            report.error = Some("no connection to the spoke".into());
                        }
                    }
                    report
                })
            }),
    )
    .await
}

type Key = (Kind, String);

/// Runs `actions` in dependency order, up to `parallelism` at once; returns the outcome
/// of each in plan order.
async fn run<'a, F, Fut>(
    spoke: &str,
    actions: &[&'a Action],
    options: &Options,
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
                progress(options, spoke, a, "not attempted", &why);
                outcome.insert(key, Outcome::NotAttempted(why));
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
        let key = (a.kind, a.name.clone());
        match result {
            Ok(()) => {
                progress(
                    options,
                    spoke,
                    a,
                    "ok",
                    &format!("{} ms", elapsed.as_millis()),
                );
                outcome.insert(key, Outcome::Applied);
            }
            Err(e) => {
                progress(options, spoke, a, "FAILED", &e);
                outcome.insert(key, Outcome::Failed(e));
            }
        }
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

fn progress(options: &Options, spoke: &str, a: &Action, status: &str, detail: &str) {
    if options.progress == Progress::Lines {
        let verb = match a.action {
            crate::plan::Verb::Create => "create",
            crate::plan::Verb::Overwrite => "overwrite",
            crate::plan::Verb::Archive => "archive",
            crate::plan::Verb::Skip => "skip",
        };
        eprintln!("{spoke}: {verb} {} {}: {status} ({detail})", a.kind, a.name);
    }
}

/// The default backup folder, `.flagfleet/backups`.
pub fn default_backup_dir() -> PathBuf {
    Path::new(".flagfleet").join("backups")
}
