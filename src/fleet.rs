//! Reads a whole fleet at once: the hub and every selected spoke concurrently, so one
//! unreachable spoke is reported for itself while the others are still planned.

use futures::future::join_all;

use crate::client::{Client, ClientOptions};
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
    /// A spoke as read, fingerprinted.
    pub fn new(name: String, state: Result<State, ReadError>, client: Option<Client>) -> Self {
        let fingerprint = state.as_ref().ok().map(state::fingerprint);
        Self {
            name,
            state,
            fingerprint,
            client,
        }
    }

    /// Finds out which hub flags synced to `spoke` that the spoke lacks are taken there
    /// outside its project's active flags (archived, or in another project): the plan
    /// blocks those instead of creating them. Live spokes only (a snapshot holds every
    /// such name); a failure makes the spoke unreadable. Fingerprints the state again.
    pub async fn look_up_hub_flags(&mut self, topology: &Topology, spoke: &Spoke, hub: &State) {
        let (Ok(state), Some(client)) = (&mut self.state, &self.client) else {
            return;
        };
        let names = hub
            .flags
            .iter()
            .filter(|(name, flag)| crate::desired::selected(topology, spoke, name, flag))
            .map(|(name, _)| name.as_str());
        match state::look_up_taken(client, state, names).await {
            Ok(()) => self.fingerprint = Some(state::fingerprint(state)),
            Err(e) => {
                self.state = Err(ReadError::Client(e));
                self.fingerprint = None;
            }
        }
    }
}

/// The hub and the selected spokes as read.
#[derive(Debug)]
pub struct FleetState {
    /// The hub's state.
    pub hub: State,
    /// The hub state's fingerprint.
    pub hub_fingerprint: String,
    /// The hub's client (live hubs).
    pub hub_client: Option<Client>,
    /// The spokes, in topology order.
    pub spokes: Vec<SpokeState>,
}

impl FleetState {
    /// A fleet as read, fingerprinted.
    pub fn new(hub: State, hub_client: Option<Client>, spokes: Vec<SpokeState>) -> Self {
        Self {
            hub_fingerprint: state::hub_fingerprint(&hub),
            hub,
            hub_client,
            spokes,
        }
    }
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

/// Reads the hub and the spokes `only` names (all when empty), concurrently; then looks
/// up, on each spoke, the hub flags it lacks ([`SpokeState::look_up_hub_flags`]).
pub async fn read(
    topology: &Topology,
    only: &[String],
    options: &ClientOptions,
) -> Result<FleetState, FleetError> {
    let selected = select_spokes(topology, only)?;
    let spoke_reads = join_all(selected.iter().map(|s| read_spoke(s, options)));
    let ((hub, hub_client), mut spokes) = tokio::join!(read_hub(topology, options), spoke_reads);
    let hub = hub.map_err(FleetError::Hub)?;
    join_all(
        spokes
            .iter_mut()
            .zip(&selected)
            .map(|(read, spoke)| read.look_up_hub_flags(topology, spoke, &hub)),
    )
    .await;
    Ok(FleetState::new(hub, hub_client, spokes))
}

/// Reads the hub alone, for planning: its names taken outside its project's active
/// flags are not read (they change no action). A hub read as holding no flags is an error
/// ([`ReadError::EmptyHub`]): nothing is planned, let alone pruned, from it.
pub async fn read_hub(
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
pub async fn read_spoke(spoke: &Spoke, options: &ClientOptions) -> SpokeState {
    let mut envs: Vec<String> = spoke.environments.values().cloned().collect();
    envs.sort();
    let (state, client) = read_one(&spoke.instance, &envs, false, options).await;
    SpokeState::new(spoke.instance.name.clone(), state, client)
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
