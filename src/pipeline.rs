//! The one pipeline `plan`, `apply` and `graph` run: read the hub and the selected spokes
//! at once (a spoke's read does not wait for the hub's), plan each spoke as soon as it and
//! the hub are read, and hand each planned spoke to the caller, who keeps what it needs
//! (the JSON, a review copy, the state apply writes to). A spoke's state is dropped once
//! planned unless the caller keeps it, so memory grows with the spokes read at once, not
//! with the fleet; an unreachable spoke is planned as an error while the others go on.

use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinError;

use crate::client::{Client, ClientOptions};
use crate::drift;
use crate::plan::{self, HubInfo, Plan, SpokePlan};
use crate::state::{self, ReadError, State};
use crate::topology::{Instance, Spoke, Topology};

/// Why a fleet could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The hub could not be read: nothing can be planned.
    #[error("cannot read the hub: {0}")]
    Hub(#[source] ReadError),
    /// `--spoke` named a spoke the topology does not have.
    #[error("no spoke named `{name}` in the topology")]
    UnknownSpoke {
        /// What was asked for.
        name: String,
        /// Spokes that exist.
        known: Vec<String>,
    },
}

/// The hub as read.
#[derive(Debug)]
pub struct Hub {
    /// Its state (shared with the spokes' planning).
    pub state: Arc<State>,
    /// What a plan says about it, its state's fingerprint included.
    pub info: HubInfo,
    /// The client used (live hubs), for request counts.
    pub client: Option<Client>,
}

/// One spoke as read.
#[derive(Debug)]
pub struct SpokeState {
    /// The spoke's name in the topology.
    pub name: String,
    /// Its state, or why it could not be read.
    pub state: Result<State, ReadError>,
    /// The state's fingerprint (when it was read).
    pub fingerprint: Option<String>,
    /// The client used (live spokes), for apply and request counts.
    pub client: Option<Client>,
}

impl SpokeState {
    /// Finds out which hub flags synced to `spoke` that the spoke lacks are taken there
    /// outside its project's active flags (archived, or in another project): the plan
    /// blocks those instead of creating them. Live spokes only (a snapshot holds every
    /// such name); a failure makes the spoke unreadable. Fingerprints the state again.
    pub async fn look_up_hub_flags(&mut self, topology: &Topology, spoke: &Spoke, hub: &State) {
        let (Ok(state), Some(client)) = (&mut self.state, &self.client) else {
            return;
        };
        match state::look_up_taken(client, state, synced_hub_flags(topology, spoke, hub)).await {
            Ok(()) => self.fingerprint = Some(state::fingerprint(state)),
            Err(e) => {
                self.state = Err(ReadError::Client(e));
                self.fingerprint = None;
            }
        }
    }
}

/// The other spokes among `sharing` that write where `spoke` does, in topology order.
fn same_place(
    topology: &Topology,
    sharing: &std::collections::HashSet<String>,
    spoke: &Spoke,
) -> Vec<String> {
    let place = spoke.instance.place();
    topology
        .spokes
        .iter()
        .filter(|s| s.instance.name != spoke.instance.name && sharing.contains(&s.instance.name))
        .filter(|s| s.instance.place() == place)
        .map(|s| s.instance.name.clone())
        .collect()
}

/// The names of the hub flags synced to `spoke`.
fn synced_hub_flags<'h>(
    topology: &'h Topology,
    spoke: &'h Spoke,
    hub: &'h State,
) -> impl Iterator<Item = &'h str> + 'h {
    hub.flags
        .iter()
        .filter(|(name, flag)| crate::desired::selected(topology, spoke, name, flag))
        .map(|(name, _)| name.as_str())
}

/// Reads `spoke` again exactly as the pipeline read it for its plan (its state, then, for
/// a live spoke, the flags of `hub` it lacks looked up): what apply checks against the
/// plan's fingerprint right before its first write, and then writes to. `hub` may be
/// `None` for a file spoke, which has nothing to look up.
pub async fn read_again(
    topology: &Topology,
    spoke: &Spoke,
    hub: Option<&State>,
    client: Option<&Client>,
) -> Result<State, ReadError> {
    let environments = spoke.synced_environments();
    let mut state = state::read_with(
        &spoke.instance,
        client,
        &environments,
        false,
        state::Taken::Later,
    )
    .await?;
    if let (Some(client), Some(hub)) = (client, hub) {
        state::look_up_taken(client, &mut state, synced_hub_flags(topology, spoke, hub))
            .await
            .map_err(ReadError::Client)?;
    }
    Ok(state)
}

/// The hub and the spokes a caller kept, with the plan made from them.
#[derive(Debug)]
pub struct Fleet {
    /// The hub as read.
    pub hub: Hub,
    /// The spokes kept, in topology order.
    pub spokes: Vec<SpokeState>,
}

/// How the pipeline reads.
#[derive(Debug, Clone)]
pub struct Options {
    /// How live instances are reached.
    pub client: ClientOptions,
    /// Spokes read and planned at once (each holds its whole state meanwhile).
    pub parallelism: u16,
}

/// The running pipeline: the hub as read, and the spokes as they are planned.
pub struct Running<T> {
    /// The hub as read.
    pub hub: Hub,
    spokes: mpsc::Receiver<Result<Option<T>, JoinError>>,
    /// The task reading and planning the spokes: stopped when the caller stops listening.
    _driver: AbortOnDrop,
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A spoke's task, aborted when dropped unfinished: when the hub cannot be read or the
/// caller stops listening, spokes still being read stop at once instead of retrying (and
/// logging) on their own while the run ends.
struct Task<R>(tokio::task::JoinHandle<R>);

impl<R> std::future::Future for Task<R> {
    type Output = Result<R, JoinError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

impl<R> Drop for Task<R> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Running<T> {
    /// The next spoke's result, in topology order; `None` after the last.
    pub async fn next(&mut self) -> Option<T> {
        loop {
            match self.spokes.recv().await? {
                Ok(Some(t)) => return Some(t),
                // Not a spoke of the topology (cannot happen for checked names).
                Ok(None) => continue,
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            }
        }
    }
}

/// Starts reading the hub and the spokes `only` names (all when empty), and returns once
/// the hub is read. Meanwhile the first `parallelism` spokes are being read; each spoke is
/// planned against the hub on its own task, and `finish` turns the spoke as read and its
/// plan into what the caller keeps.
pub async fn start<T, F>(
    topology: Arc<Topology>,
    only: &[String],
    options: &Options,
    finish: F,
) -> Result<Running<T>, FleetError>
where
    T: Send + 'static,
    F: Fn(SpokeState, SpokePlan) -> T + Clone + Send + 'static,
{
    let names: Vec<String> = select_spokes(&topology, only)?
        .iter()
        .map(|s| s.instance.name.clone())
        .collect();
    // The spokes' tasks wait here for the hub: `Some(None)` when it could not be read.
    let (hub_ready, hub_state) = watch::channel::<Option<Option<Arc<State>>>>(None);
    let hub_task = tokio::spawn({
        let (topology, client) = (topology.clone(), options.client.clone());
        async move {
            let (state, client) = read_hub(&topology, &client).await;
            let state = state.map(|s| {
                let fingerprint = state::hub_fingerprint(&s);
                (Arc::new(s), fingerprint)
            });
            hub_ready.send_replace(Some(state.as_ref().ok().map(|(s, _)| s.clone())));
            (state, client)
        }
    });
    let (receiver, driver) = spawn_spokes(topology.clone(), names, options, hub_state, finish);

    let (state, client) = match hub_task.await {
        Ok(hub) => hub,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    let (state, fingerprint) = match state {
        Ok(hub) => hub,
        Err(e) => {
            // Stop the spokes' reads before reporting, so that none of them goes on
            // retrying (and logging) while the run ends: the driver's end drops their
            // tasks, which aborts them; then let the runtime reap them.
            driver.abort();
            let _ = driver.await;
            tokio::task::yield_now().await;
            return Err(FleetError::Hub(e));
        }
    };
    let spokes = select_spokes(&topology, only)?;
    for text in crate::desired::disagreements(&topology, &state, &spokes) {
        tracing::warn!("{text}");
    }
    Ok(Running {
        hub: Hub {
            info: plan::hub_info(&topology, fingerprint),
            state,
            client,
        },
        spokes: receiver,
        _driver: AbortOnDrop(driver.abort_handle()),
    })
}

/// Reads and plans the spokes `names`, `parallelism` at a time, each on a task of its
/// own; their results come out of the channel in order. Driven by a task of its own, so
/// that spokes are read while the caller waits for the hub; at most one planned spoke
/// waits in the channel.
fn spawn_spokes<T, F>(
    topology: Arc<Topology>,
    names: Vec<String>,
    options: &Options,
    hub: watch::Receiver<Option<Option<Arc<State>>>>,
    finish: F,
) -> (
    mpsc::Receiver<Result<Option<T>, JoinError>>,
    tokio::task::JoinHandle<()>,
)
where
    T: Send + 'static,
    F: Fn(SpokeState, SpokePlan) -> T + Clone + Send + 'static,
{
    let client = options.client.clone();
    // Read once, by the first spoke with a flag or segment overwrite to attribute.
    let hub_log = Arc::new(drift::HubLog::new(
        topology.hub.instance.clone(),
        client.clone(),
    ));
    // Spokes that share a server or file with another: their plans keep each object's
    // print, for apply to tell what the other wrote before them.
    let sharing = Arc::new(Topology::sharing_a_place(
        names.iter().filter_map(|n| topology.spoke(n)),
    ));
    let spokes = futures::stream::iter(names)
        .map(move |name| {
            let (topology, client, finish) = (topology.clone(), client.clone(), finish.clone());
            let (hub_log, sharing) = (hub_log.clone(), sharing.clone());
            let mut hub = hub.clone();
            Task(tokio::spawn(async move {
                let spoke = topology.spoke(&name)?;
                let mut read = read_spoke(spoke, &client).await;
                let hub = hub
                    .wait_for(Option::is_some)
                    .await
                    .ok()
                    .and_then(|h| h.clone().flatten())?;
                read.look_up_hub_flags(&topology, spoke, &hub).await;
                let mut plan = plan::plan_one(
                    &topology,
                    &hub,
                    spoke,
                    read.state.as_ref(),
                    read.fingerprint.clone(),
                );
                if let (Some(client), None) = (&read.client, &plan.error) {
                    drift::attribute(&mut plan, spoke, client, &hub_log).await;
                }
                if sharing.contains(&name) {
                    plan.same_place_as = same_place(&topology, &sharing, spoke);
                    if let Ok(state) = &read.state {
                        plan.prints = Some(Arc::new(state::prints::ObjectPrints::of(state)));
                    }
                }
                Some(finish(read, plan))
            }))
        })
        .buffered(usize::from(options.parallelism.max(1)));
    let (sender, receiver) = mpsc::channel(1);
    let driver = tokio::spawn(async move {
        let mut spokes = std::pin::pin!(spokes);
        while let Some(spoke) = spokes.next().await {
            if sender.send(spoke).await.is_err() {
                break;
            }
        }
    });
    (receiver, driver)
}

/// Runs the pipeline to the end: the whole plan, with the hub and the spokes `keep`
/// chooses by their plan (the others' states are dropped once planned).
pub async fn plan_fleet(
    topology: Arc<Topology>,
    topology_fingerprint: String,
    only: &[String],
    options: &Options,
    keep: fn(&SpokePlan) -> bool,
) -> Result<(Fleet, Plan), FleetError> {
    let mut running = start(topology, only, options, move |read, plan| {
        (keep(&plan).then_some(read), plan)
    })
    .await?;
    let mut plan = Plan {
        format_version: plan::FORMAT_VERSION,
        topology_fingerprint,
        hub: running.hub.info.clone(),
        spokes: Vec::new(),
    };
    let mut kept = Vec::new();
    while let Some((read, spoke)) = running.next().await {
        kept.extend(read);
        plan.spokes.push(spoke);
    }
    let fleet = Fleet {
        hub: running.hub,
        spokes: kept,
    };
    Ok((fleet, plan))
}

/// The spokes `only` names (all when empty), checked against the topology.
pub fn select_spokes<'t>(
    topology: &'t Topology,
    only: &[String],
) -> Result<Vec<&'t Spoke>, FleetError> {
    for name in only {
        if topology.spoke(name).is_none() {
            return Err(FleetError::UnknownSpoke {
                name: name.clone(),
                known: topology
                    .spokes
                    .iter()
                    .map(|s| s.instance.name.clone())
                    .collect(),
            });
        }
    }
    Ok(topology
        .spokes
        .iter()
        .filter(|s| only.is_empty() || only.contains(&s.instance.name))
        .collect())
}

/// Reads the hub alone, for planning: its names taken outside its project's active
/// flags are not read (they change no action). A hub read as holding no flags is an error
/// ([`ReadError::EmptyHub`]): nothing is planned, let alone pruned, from it.
async fn read_hub(
    topology: &Topology,
    options: &ClientOptions,
) -> (Result<State, ReadError>, Option<Client>) {
    let hub = &topology.hub;
    let (state, client) = read_one(&hub.instance, &hub.environments, true, options).await;
    let state = state.and_then(|s| {
        if s.flags.is_empty() {
            Err(ReadError::EmptyHub {
                instance: hub.instance.name.clone(),
                project: hub.instance.project.clone(),
                environments: hub.environments.join(", "),
            })
        } else {
            Ok(s)
        }
    });
    (state, client)
}

/// Reads one spoke, in the environments it syncs; the names a plan needs to know are
/// taken there come after the hub is read ([`SpokeState::look_up_hub_flags`]).
async fn read_spoke(spoke: &Spoke, options: &ClientOptions) -> SpokeState {
    let (state, client) = read_one(
        &spoke.instance,
        &spoke.synced_environments(),
        false,
        options,
    )
    .await;
    let fingerprint = state.as_ref().ok().map(state::fingerprint);
    SpokeState {
        name: spoke.instance.name.clone(),
        state,
        fingerprint,
        client,
    }
}

async fn read_one(
    instance: &Instance,
    environments: &[String],
    is_hub: bool,
    options: &ClientOptions,
) -> (Result<State, ReadError>, Option<Client>) {
    let client = match state::connect(instance, options) {
        Ok(c) => c,
        Err(e) => return (Err(e), None),
    };
    let started = std::time::Instant::now();
    let result = state::read_with(
        instance,
        client.as_ref(),
        environments,
        is_hub,
        state::Taken::Later,
    )
    .await;
    if let Ok(s) = &result {
        tracing::info!(
            instance = %instance.name,
            flags = s.flags.len(),
            requests = client.as_ref().map_or(0, Client::requests),
            ms = started.elapsed().as_millis() as u64,
            "read"
        );
    }
    (result, client)
}
