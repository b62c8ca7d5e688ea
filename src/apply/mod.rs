//! Executes a plan: per spoke, the actions that change something, in dependency order,
//! independent ones concurrently (bounded by `parallelism`), several spokes at once. A
//! failing action marks everything that depends on it as not attempted while independent
//! actions go on. An [`Interrupt`] stops it from starting new actions.
//!
//! Apply keeps no spoke's state from planning. Right before its first write to a spoke it
//! reads the spoke again and refuses it if the state's fingerprint is not the plan's; that
//! state, the one the plan was made from, is saved as a snapshot in the backup folder,
//! written to, and dropped: read, back up, write, drop, a few spokes at a time
//! ([`Options::spokes_at_once`]), so memory does not grow with the fleet.
//!
//! Spokes go in waves (`waves`): ascending, the spokes of a wave together, a wave only
//! after every spoke of the one before succeeded (and the pause and gate between them).

mod error;
mod file;
mod live;
pub mod lock;
mod target;
mod waves;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};

use crate::client::Client;
use crate::plan::{Action, Kind, SpokePlan, Verb};
use crate::state::prints::{self, ObjectKey, ObjectPrints};
use crate::state::snapshot::{Snapshot, SnapshotSource};
use crate::state::State;
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
    /// Spokes of a wave applied at once (each holds its whole state while it is applied).
    pub spokes_at_once: usize,
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
    /// What apply does for `spoke` after its actions (new flags switched on in bulk).
    fn spoke_note(&self, _spoke: &str, _message: &str) {}
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

/// A spoke to apply: its plan (as reviewed) and, for a live spoke, the client that read it
/// for the plan.
#[derive(Debug, Clone, Copy)]
pub struct Planned<'a> {
    /// The spoke's plan; only its changing actions are needed.
    pub plan: &'a SpokePlan,
    /// The client that read the spoke (live spokes).
    pub client: Option<&'a Client>,
}

/// Applies the planned `spokes` wave by wave, telling `progress` how it goes. Reports come
/// in wave order.
///
/// No state is kept from planning: each spoke is read again right before its first write
/// (refused unless its fingerprint is the plan's), backed up, written and dropped, at
/// most `options.spokes_at_once` at a time, so memory grows with that, not with the
/// fleet. `hub` is the hub as read for the plan; a live spoke's read looks up the hub
/// flags it lacks, as planning did, so it must be given when a spoke is live.
pub async fn apply(
    topology: &Topology,
    hub: Option<&State>,
    spokes: &[Planned<'_>],
    options: &Options,
    progress: &dyn Progress,
) -> Vec<SpokeReport> {
    let timestamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second].[subsecond digits:3]Z"
        ))
        .unwrap_or_default();
    let plans: Vec<&SpokePlan> = spokes
        .iter()
        .map(|s| s.plan)
        .filter(|s| s.error.is_none())
        .collect();
    let client = |name: &str| spokes.iter().find(|s| s.plan.name == name)?.client;
    let sharing = Sharing::new(
        plans
            .iter()
            .filter_map(|p| topology.spoke(&p.name))
            .map(|s| s.instance.place()),
    );
    let sharing = &sharing;
    waves::in_waves(&plans, options, progress, |wave| {
        let jobs: Vec<SpokeJob<'_>> = wave
            .into_iter()
            .filter_map(|sp| {
                let spoke = topology.spoke(&sp.name)?;
                Some(SpokeJob {
                    topology,
                    hub,
                    place: spoke.instance.place(),
                    sharing,
                    spoke,
                    plan: sp,
                    client: client(&sp.name),
                    actions: sp
                        .actions
                        .iter()
                        .filter(|a| a.changes() && !a.blocked)
                        .collect(),
                    backup_stem: format!("{}-{timestamp}", sp.name),
                })
            })
            .collect();
        apply_spokes(jobs, options, progress)
    })
    .await
}

/// Applies the spokes of one wave, `options.spokes_at_once` at a time; reports in the
/// order given.
async fn apply_spokes(
    jobs: Vec<SpokeJob<'_>>,
    options: &Options,
    progress: &dyn Progress,
) -> Vec<SpokeReport> {
    futures::stream::iter(jobs)
        .map(|job| async move {
            if job.actions.is_empty() {
                // Nothing to write, so no read and no backup either.
                return SpokeReport::new(&job.plan.name);
            }
            progress.spoke_started(&job.plan.name, job.actions.len());
            let report = apply_spoke(job, options, progress).await;
            // Also when the spoke was refused before its first write (changed since the
            // plan, no backup): its progress bar ends with the rest.
            progress.spoke_done(&report);
            report
        })
        .buffered(options.spokes_at_once.max(1))
        .collect()
        .await
}

/// `plan` with only what apply uses: its changing, unblocked actions and the objects they
/// write (no diffs, notes or drift, which were for review).
pub fn only_what_apply_writes(mut plan: SpokePlan) -> SpokePlan {
    plan.actions.retain(|a| a.changes() && !a.blocked);
    for a in &mut plan.actions {
        a.diff = None;
        a.notes = Vec::new();
        a.kept = Vec::new();
        a.drift = None;
    }
    plan.actions.shrink_to_fit();
    plan
}

/// One spoke's share of an apply.
struct SpokeJob<'a> {
    topology: &'a Topology,
    /// The hub as read for the plan (a live spoke's read before the first write needs it).
    hub: Option<&'a State>,
    spoke: &'a Spoke,
    /// The spoke's plan (its fingerprint, location).
    plan: &'a SpokePlan,
    client: Option<&'a Client>,
    /// The server or file it writes to ([`crate::topology::Instance::place`]).
    place: String,
    /// What the spokes of the run that share a place know of each other.
    sharing: &'a Sharing,
    /// The changing, unblocked actions, in plan order.
    actions: Vec<&'a Action>,
    /// The backup's name before its counter: `{spoke}-{time with milliseconds}`.
    backup_stem: String,
}

/// Reads the spoke, checks it against the plan, backs it up and writes to it; its state is
/// dropped when this returns.
async fn apply_spoke(job: SpokeJob<'_>, options: &Options, progress: &dyn Progress) -> SpokeReport {
    let name = &job.spoke.instance.name;
    let mut report = SpokeReport::new(name);
    // Spokes that share a server or file take turns; each one's check below lets through
    // what the ones before it wrote.
    let _turn = match job.sharing.turns.get(&job.place) {
        Some(turn) => Some(turn.lock().await),
        None => None,
    };
    // Also when the interrupt came while this spoke waited for its turn.
    if options.interrupt.is_set() {
        report.outcomes = not_started(&job.actions, INTERRUPTED);
        return report;
    }
    let (actual, by_others) = match unchanged_since_plan(&job).await {
        Ok(read) => read,
        Err(e) => {
            report.error = Some(e);
            return report;
        }
    };
    // What another spoke of this run did here already is brought in line with this
    // spoke's plan: a create of what it created becomes an update (a second create would
    // fail, or add the flag's strategies twice); an archive of what it archived is done.
    let mut updates: Vec<Action> = Vec::new();
    let mut done_already: HashSet<Key> = HashSet::new();
    for a in job.actions.iter().filter(|a| by_others.touches(a)) {
        match a.action {
            Verb::Create if holds(&actual, a.kind, &a.name) => updates.push(Action {
                action: Verb::Overwrite,
                environments: if a.kind == Kind::Flag {
                    job.spoke.synced_environments()
                } else {
                    a.environments.clone()
                },
                ..(*a).clone()
            }),
            Verb::Archive if !actual.flags.contains_key(&a.name) => {
                done_already.insert((a.kind, a.name.clone()));
            }
            _ => {}
        }
    }
    if !updates.is_empty() || !done_already.is_empty() {
        let message = format!(
            "{} written already by {} (same server) in this run: {}",
            plural(updates.len() + done_already.len(), "object"),
            by_others.writers().join(", "),
            if done_already.is_empty() {
                "updated instead of created"
            } else {
                "updated instead of created, or already archived"
            }
        );
        progress.spoke_note(name, &message);
    }
    let actions: Vec<&Action> = job
        .actions
        .iter()
        .map(|a| {
            updates
                .iter()
                .find(|u| (u.kind, &u.name) == (a.kind, &a.name))
                .unwrap_or(a)
        })
        .collect();
    // The backup is written from the snapshot as it is serialized; the state then goes on
    // to be written to, without a copy.
    let source = SnapshotSource {
        instance: name.clone(),
        location: job.plan.location.clone(),
        unleash_version: actual.unleash_version.map(|v| v.to_string()),
    };
    let snapshot = Snapshot::new(actual, source);
    let backup =
        crate::files::write_unique_with(&options.backup_dir, &job.backup_stem, "json", |out| {
            snapshot.write_json(out)
        });
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
    let actual = snapshot.state;
    match (&job.spoke.instance.location, job.client) {
        (Location::File(path), _) => match file::apply(path, name, actual, &actions) {
            Ok(outcomes) => report.outcomes = outcomes,
            Err(e) => report.error = Some(e),
        },
        (Location::Live { .. }, Some(client)) => {
            let target = Target::new(job.spoke, &actual);
            match live::LiveSpoke::new(client, &job.spoke.instance.project, &target).await {
                Ok(writer) => {
                    let (writer, done_already) = (&writer, &done_already);
                    report.outcomes = run(name, &actions, options, progress, |a| {
                        let done = done_already.contains(&(a.kind, a.name.clone()));
                        async move {
                            if done {
                                return Ok(());
                            }
                            writer.execute(a).await
                        }
                    })
                    .await;
                    let interrupted = options.interrupt.is_set();
                    let waiting = writer.waiting_to_be_enabled();
                    if waiting > 0 && !interrupted {
                        let message = format!("switching {waiting} new flag environments on");
                        progress.spoke_note(name, &message);
                    }
                    let left_off = writer
                        .enable_new_flags(&mut report.outcomes, interrupted)
                        .await;
                    if left_off > 0 {
                        let message = format!("{left_off} new flag environments left off");
                        progress.spoke_note(name, &message);
                    }
                }
                Err(e) => report.error = Some(ApplyError::Start(Arc::new(e))),
            }
        }
        (Location::Live { .. }, None) => {
            report.error = Some(ApplyError::NoConnection);
        }
    }
    if job.sharing.turns.contains_key(&job.place) {
        job.sharing.record(&job, &actions, &report.outcomes).await;
    }
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
/// one the plan was made from (another apply, on another runner say, or a person may have
/// changed it since): that state is then what apply backs up and writes to.
///
/// Where spokes of this run share the server or file, what the ones before left is let
/// through, object by object and part by part (a flag's own fields, each environment):
/// an object changed since the plan passes only if another spoke of this run wrote it and
/// it is still as that spoke left it. Any other change refuses the spoke, naming the
/// objects. Returns the state and what the others did.
async fn unchanged_since_plan(job: &SpokeJob<'_>) -> Result<(State, ByOthers), ApplyError> {
    let now = crate::pipeline::read_again(job.topology, job.spoke, job.hub, job.client)
        .await
        .map_err(|e| ApplyError::Reread(Arc::new(e)))?;
    if Some(crate::state::fingerprint(&now)) == job.plan.fingerprint {
        return Ok((now, ByOthers::default()));
    }
    let Some(then) = &job.plan.prints else {
        return Err(ApplyError::ChangedSincePlan);
    };
    let prints = ObjectPrints::of(&now);
    let changed = then.changed(&prints);
    let left = job.sharing.left_at(&job.place);
    let (by_others, elsewise): (Vec<ObjectKey>, Vec<ObjectKey>) = changed
        .into_iter()
        .partition(|k| left.explains(k, prints.get(k)));
    if !elsewise.is_empty() {
        // A flag changed as a whole (created, archived) is named once, not per part.
        let whole = |k: &&ObjectKey| match k {
            ("flag_env", part) => {
                let flag = part.split_once('\n').map_or(part.as_str(), |(f, _)| f);
                !elsewise.contains(&("flag", flag.to_string()))
            }
            _ => true,
        };
        return Err(ApplyError::ChangedObjects {
            objects: elsewise.iter().filter(whole).map(prints::shown).collect(),
        });
    }
    if by_others.is_empty() {
        return Err(ApplyError::ChangedSincePlan);
    }
    let mut writers: Vec<String> = by_others
        .iter()
        .filter_map(|k| left.writer(k))
        .map(str::to_string)
        .collect();
    writers.sort_unstable();
    writers.dedup();
    Ok((
        now,
        ByOthers {
            keys: by_others.into_iter().collect(),
            writers,
        },
    ))
}

/// What other spokes of this run changed of a spoke before its turn.
#[derive(Debug, Default)]
struct ByOthers {
    /// The objects (parts) they changed.
    keys: HashSet<ObjectKey>,
    /// Who, sorted.
    writers: Vec<String>,
}

impl ByOthers {
    /// Whether they changed what `a` writes.
    fn touches(&self, a: &Action) -> bool {
        match a.kind {
            Kind::Flag => {
                self.keys.contains(&("flag", a.name.clone()))
                    || self.keys.contains(&("taken", a.name.clone()))
            }
            kind => self.keys.contains(&(kind.as_str(), a.name.clone())),
        }
    }

    fn writers(&self) -> Vec<&str> {
        self.writers.iter().map(String::as_str).collect()
    }
}

/// What the spokes of one run that share a server or file know of each other: whose turn
/// it is, and how each left the objects it wrote.
#[derive(Debug, Default)]
struct Sharing {
    /// A turn per shared place.
    turns: HashMap<String, tokio::sync::Mutex<()>>,
    /// By shared place: how the spokes of this run left what they wrote.
    left: std::sync::Mutex<HashMap<String, Left>>,
}

/// How the spokes of this run left the objects they wrote at one place: each part's print
/// as read right after the writer's turn (`None`: gone), with the writer.
#[derive(Debug, Clone, Default)]
struct Left {
    parts: HashMap<ObjectKey, (Option<u64>, String)>,
    /// Flags a spoke created (`true`) or archived (`false`) here: their environments it
    /// does not sync are new (disabled, no strategies) or gone, as another spoke reads them.
    flags: HashMap<String, bool>,
}

impl Left {
    /// Whether the change of `key` to `now` (its print; `None`: gone) is what a spoke of
    /// this run left.
    fn explains(&self, key: &ObjectKey, now: Option<u64>) -> bool {
        if let Some((left, _)) = self.parts.get(key) {
            return *left == now;
        }
        let ("flag_env", part) = key else {
            return false;
        };
        let flag = part.split_once('\n').map_or(part.as_str(), |(f, _)| f);
        match self.flags.get(flag) {
            Some(true) => now == Some(prints::new_environment()),
            Some(false) => now.is_none(),
            None => false,
        }
    }

    fn writer(&self, key: &ObjectKey) -> Option<&str> {
        if let Some((_, writer)) = self.parts.get(key) {
            return Some(writer);
        }
        let flag = key.1.split_once('\n').map_or(key.1.as_str(), |(f, _)| f);
        self.parts
            .get(&("flag", flag.to_string()))
            .map(|(_, w)| w.as_str())
    }
}

impl Sharing {
    /// For the spokes' places (one per spoke).
    fn new(places: impl Iterator<Item = String>) -> Self {
        let mut count: HashMap<String, usize> = HashMap::new();
        for place in places {
            *count.entry(place).or_default() += 1;
        }
        Sharing {
            turns: count
                .into_iter()
                .filter(|(_, n)| *n > 1)
                .map(|(place, _)| (place, tokio::sync::Mutex::new(())))
                .collect(),
            left: Default::default(),
        }
    }

    /// After `job`'s writes (`outcomes` of `actions`, in order), at the end of its turn:
    /// reads the spoke again and notes how the objects it attempted are now. A read that
    /// fails notes them as unknown, which explains no change: the next spoke is refused
    /// if it finds them changed.
    async fn record(
        &self,
        job: &SpokeJob<'_>,
        actions: &[&Action],
        outcomes: &[(String, Outcome)],
    ) {
        let attempted: Vec<&Action> = actions
            .iter()
            .zip(outcomes)
            .filter(|(_, (_, o))| !matches!(o, Outcome::NotAttempted(_)))
            .map(|(a, _)| *a)
            .collect();
        if attempted.is_empty() {
            return;
        }
        // Read again once if the first read fails: without it, the next spoke is refused.
        let mut after = None;
        for _ in 0..2 {
            let read = crate::pipeline::read_again(job.topology, job.spoke, job.hub, job.client);
            if let Ok(state) = read.await {
                after = Some(ObjectPrints::of(&state));
                break;
            }
        }
        let writer = &job.spoke.instance.name;
        let environments = job.spoke.synced_environments();
        let mut all = self.lock();
        let left = all.entry(job.place.clone()).or_default();
        let mut note = |key: ObjectKey| {
            // Unknown (no read after): a value no print has, so it explains nothing.
            let now = after.as_ref().map_or(Some(u64::MAX), |p| p.get(&key));
            left.parts.insert(key, (now, writer.clone()));
        };
        for a in &attempted {
            match a.kind {
                Kind::Flag => {
                    note(("flag", a.name.clone()));
                    note(("taken", a.name.clone()));
                    // The environments it wrote: all for a create or an archive, the
                    // differing ones for an overwrite. What else changed meanwhile
                    // stays unexplained.
                    let written = match a.action {
                        Verb::Overwrite => &a.environments,
                        _ => &environments,
                    };
                    for env in written {
                        note(("flag_env", prints::flag_env(&a.name, env)));
                    }
                }
                kind => note((kind.as_str(), a.name.clone())),
            }
        }
        for a in attempted.iter().filter(|a| a.kind == Kind::Flag) {
            let exists = after
                .as_ref()
                .map(|p| p.get(&("flag", a.name.clone())).is_some());
            match (a.action, exists) {
                (Verb::Create, Some(true)) => {
                    left.flags.insert(a.name.clone(), true);
                }
                (Verb::Archive, Some(false)) => {
                    left.flags.insert(a.name.clone(), false);
                }
                _ => {}
            }
        }
    }

    /// How the spokes of this run left `place` so far.
    fn left_at(&self, place: &str) -> Left {
        self.lock().get(place).cloned().unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Left>> {
        self.left.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Whether `state` holds an object of this kind and name.
fn holds(state: &State, kind: Kind, name: &str) -> bool {
    match kind {
        Kind::ContextField => state.context_fields.contains_key(name),
        Kind::TagType => state.tag_types.contains_key(name),
        Kind::Strategy => state.strategies.contains_key(name),
        Kind::Segment => state.segments.contains_key(name),
        Kind::Flag => state.flags.contains_key(name),
    }
}

/// `n thing` or `n things`.
fn plural(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
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

    #[test]
    fn only_what_another_spoke_left_explains_a_change() {
        let key = |kind: &'static str, name: &str| (kind, name.to_string());
        let mut left = Left::default();
        left.parts
            .insert(key("flag", "x"), (Some(7), "staging".into()));
        left.parts.insert(
            key("flag_env", "x\ndevelopment"),
            (Some(8), "staging".into()),
        );
        left.parts
            .insert(key("segment", "beta"), (None, "staging".into()));
        // As the other spoke left it, and nothing else.
        assert!(left.explains(&key("flag", "x"), Some(7)));
        assert!(!left.explains(&key("flag", "x"), Some(9)));
        assert!(left.explains(&key("segment", "beta"), None));
        assert!(!left.explains(&key("segment", "beta"), Some(1)));
        assert!(!left.explains(&key("context_field", "region"), Some(1)));
        // An environment the other spoke does not sync: only if it created the flag (the
        // environment as Unleash creates it) or archived it (gone).
        let production = key("flag_env", "x\nproduction");
        let new = prints::new_environment();
        assert!(!left.explains(&production, Some(new)));
        left.flags.insert("x".into(), true);
        assert!(left.explains(&production, Some(new)));
        assert!(
            !left.explains(&production, Some(new ^ 1)),
            "switched on meanwhile"
        );
        left.flags.insert("x".into(), false);
        assert!(left.explains(&production, None));
        assert!(!left.explains(&production, Some(new)));
        assert_eq!(left.writer(&production), Some("staging"));
    }

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
            spokes_at_once: 1,
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
