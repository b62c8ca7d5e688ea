//! Reading an instance's state: from a live server (through [`crate::client`]) or from a
//! snapshot file, into one typed model ([`model`]).

pub mod model;
pub(crate) mod normalize;
pub mod prints;
mod read;
pub mod snapshot;
pub use crate::api::names;
pub(crate) use crate::api::wire;
mod checked;

use std::io::Write;
use std::path::PathBuf;

use xxhash_rust::xxh3::Xxh3;

pub use model::State;
pub use read::{look_up_taken, read_server_info, read_version, ServerInfo, Taken};

use crate::client::{Client, ClientError, ClientOptions, Token};
use crate::topology::{Instance, Location, TokenSource};
use normalize::NormalizeError;
use snapshot::{FileContents, ParseError, Snapshot, SnapshotSource};

/// Why an instance's state could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The token's environment variable is not set.
    #[error("{instance}: environment variable {var} is not set (token_env at {at})")]
    TokenEnvUnset {
        /// Instance name.
        instance: String,
        /// Variable name.
        var: String,
        /// `file:line` in the topology.
        at: String,
    },
    /// The token file could not be read.
    #[error("{instance}: cannot read token file {} (token_file at {at}): {source}", path.display())]
    TokenFile {
        /// Instance name.
        instance: String,
        /// The file.
        path: PathBuf,
        /// `file:line` in the topology.
        at: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The server could not be read.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A live instance was to be read without a client (a caller's mistake: every live
    /// instance is connected before it is read).
    #[error("{instance}: {url} was not connected before being read")]
    NotConnected {
        /// Instance name.
        instance: String,
        /// Its URL.
        url: String,
    },
    /// A name read from the instance is not one Unleash allows.
    #[error("{instance}: {location}: {source}")]
    BadName {
        /// Instance name.
        instance: String,
        /// The URL or file it was read from.
        location: String,
        /// The name and the rule.
        source: names::BadName,
    },
    /// The server's answers did not fit together.
    #[error("{instance}: {source}")]
    Normalize {
        /// Instance name.
        instance: String,
        /// What did not fit.
        source: NormalizeError,
    },
    /// The snapshot file does not exist.
    #[error("{instance}: snapshot file {} does not exist", path.display())]
    SnapshotMissing {
        /// Instance name.
        instance: String,
        /// The file.
        path: PathBuf,
    },
    /// The snapshot file could not be read.
    #[error("{instance}: cannot read {}: {source}", path.display())]
    SnapshotIo {
        /// Instance name.
        instance: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The snapshot file is not a snapshot (or export) this build understands.
    #[error("{instance}: {}: {source}", path.display())]
    SnapshotParse {
        /// Instance name.
        instance: String,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: ParseError,
    },
    /// The file holds another project than the topology names.
    #[error("{instance}: {} holds project `{found}`, but the topology names project `{expected}`", path.display())]
    ProjectMismatch {
        /// Instance name.
        instance: String,
        /// The file.
        path: PathBuf,
        /// Project in the topology.
        expected: String,
        /// Project in the file.
        found: String,
    },
    /// An environment the topology syncs is not in the file or on the server.
    #[error("{instance}: environment `{environment}` does not exist here (has: {})", available.join(", "))]
    MissingEnvironment {
        /// Instance name.
        instance: String,
        /// The missing environment.
        environment: String,
        /// Environments that do exist.
        available: Vec<String>,
    },
    /// The export lists another number of the project's flags than the project list.
    #[error("{instance}: the export of project `{project}` ({environment}) holds {exported} active flags, but the server lists {listed}; the answer is incomplete or the flags changed while being read")]
    CountMismatch {
        /// Instance name.
        instance: String,
        /// The project.
        project: String,
        /// The environment exported.
        environment: String,
        /// Active flags in the export.
        exported: u64,
        /// `featureCount` of the project list.
        listed: u64,
    },
    /// The hub was read as holding no flags at all.
    #[error("{instance}: the hub holds no flags in project `{project}` ({environments}); an empty hub is refused, as it is far likelier a wrong answer (a proxy, a maintenance page) than a fleet to empty")]
    EmptyHub {
        /// Instance name.
        instance: String,
        /// The project.
        project: String,
        /// Environments read.
        environments: String,
    },
    /// A raw Unleash export is only accepted as the hub.
    #[error("{instance}: {} is a raw Unleash export; only the hub may be one (spokes need a flagfleet snapshot: `flagfleet export`)", path.display())]
    RawExportNotHub {
        /// Instance name.
        instance: String,
        /// The file.
        path: PathBuf,
    },
}

impl ReadError {
    /// The fix, where we know it.
    pub fn hint(&self) -> Option<String> {
        match self {
        ReadError::TokenEnvUnset { var, instance, .. } => Some(format!(
            "set {var} to an admin API token (or personal access token) of `{instance}`"
        )),
        ReadError::Client(ClientError::Unauthorized { .. }) => Some(
            "the token must be an admin API token, a personal access token or a service account token with admin rights on this instance".into(),
        ),
        ReadError::Client(ClientError::RateLimited { .. }) => Some(
            "the server limits how often this endpoint may be called (docs/state.md lists which); try again in a minute, raise --max-wait, or plan a sharded fleet against one hub snapshot (docs/state.md)".into(),
        ),
        ReadError::Client(ClientError::Unreachable { .. }) => {
            Some("check that the server is running and that `url` in the topology is right".into())
        }
        ReadError::SnapshotMissing { .. } => Some(
            "paths in the topology are relative to the topology file; `flagfleet export INSTANCE --out FILE` writes a snapshot".into(),
        ),
        ReadError::MissingEnvironment { .. } => Some(
            "check `environments` of the hub (or the spoke's mapping) in the topology".into(),
        ),
        ReadError::CountMismatch { .. } => Some("run again; if it persists, check what answers in front of the server (a proxy, a load balancer)".into()),
        ReadError::EmptyHub { .. } => Some("check the hub's `url`, `project` and token in the topology, and what answers at that URL".into()),
        _ => None,
    }
    }
}

/// Reads the API token of a live instance from where the topology says it is.
pub fn token(instance: &Instance, source: &TokenSource) -> Result<Token, ReadError> {
    match source {
        TokenSource::Env { var, at } => match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => {
                crate::redact::register(v.trim());
                Ok(Token::new(v))
            }
            _ => Err(ReadError::TokenEnvUnset {
                instance: instance.name.clone(),
                var: var.clone(),
                at: at.clone(),
            }),
        },
        TokenSource::File { path, at } => std::fs::read_to_string(path)
            .map(|v| {
                crate::redact::register(v.trim());
                Token::new(v)
            })
            .map_err(|source| ReadError::TokenFile {
                instance: instance.name.clone(),
                path: path.clone(),
                at: at.clone(),
                source,
            }),
    }
}

/// A client for a live instance (`None` for a file instance).
pub fn connect(instance: &Instance, options: &ClientOptions) -> Result<Option<Client>, ReadError> {
    match &instance.location {
        Location::Live {
            url,
            token: source,
            transport,
        } => {
            let token = token(instance, source)?;
            let options = ClientOptions {
                allow_insecure_http: transport.allow_insecure_http,
                ca_file: transport.ca_file.clone(),
                ..options.clone()
            };
            Ok(Some(Client::new(&instance.name, url, &token, options)?))
        }
        Location::File(_) => Ok(None),
    }
}

/// Reads `environments` of an instance in full, as a snapshot holds it: live through
/// `client`, or from its file.
///
/// `allow_raw_export` accepts a raw Unleash export file (the hub only).
pub async fn read(
    instance: &Instance,
    client: Option<&Client>,
    environments: &[String],
    allow_raw_export: bool,
) -> Result<State, ReadError> {
    read_with(instance, client, environments, allow_raw_export, Taken::All).await
}

/// Reads `environments` of an instance, finding out about names taken outside the
/// project's active flags as `taken` says (live instances; a file holds what it holds).
pub async fn read_with(
    instance: &Instance,
    client: Option<&Client>,
    environments: &[String],
    allow_raw_export: bool,
    taken: Taken,
) -> Result<State, ReadError> {
    let mut state = match (&instance.location, client) {
        (Location::Live { .. }, Some(client)) => {
            read::read_live(client, &instance.project, environments, taken).await?
        }
        (Location::File(path), _) => read_file(instance, path, allow_raw_export)?,
        (Location::Live { .. }, None) => {
            return Err(ReadError::NotConnected {
                instance: instance.name.clone(),
                url: instance.location.to_string(),
            })
        }
    };
    checked::check_state(&mut state).map_err(|source| ReadError::BadName {
        instance: instance.name.clone(),
        location: instance.location.to_string(),
        source,
    })?;
    for env in environments {
        if !state.environments.contains(env) {
            return Err(ReadError::MissingEnvironment {
                instance: instance.name.clone(),
                environment: env.clone(),
                available: state.environments.clone(),
            });
        }
    }
    Ok(state)
}

fn read_file(
    instance: &Instance,
    path: &std::path::Path,
    allow_raw_export: bool,
) -> Result<State, ReadError> {
    let text = std::fs::read_to_string(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ReadError::SnapshotMissing {
                instance: instance.name.clone(),
                path: path.to_path_buf(),
            }
        } else {
            ReadError::SnapshotIo {
                instance: instance.name.clone(),
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    let contents =
        snapshot::parse(&text, &instance.project).map_err(|source| ReadError::SnapshotParse {
            instance: instance.name.clone(),
            path: path.to_path_buf(),
            source,
        })?;
    let state = match contents {
        FileContents::Snapshot(s) => {
            let version = s.source.unleash_version.as_deref();
            State {
                unleash_version: version.and_then(crate::api::version::Version::parse),
                ..s.state
            }
        }
        FileContents::RawExport { state, .. } if allow_raw_export => *state,
        FileContents::RawExport { .. } => {
            return Err(ReadError::RawExportNotHub {
                instance: instance.name.clone(),
                path: path.to_path_buf(),
            })
        }
    };
    if state.project != instance.project {
        return Err(ReadError::ProjectMismatch {
            instance: instance.name.clone(),
            path: path.to_path_buf(),
            expected: instance.project.clone(),
            found: state.project,
        });
    }
    Ok(state)
}

/// A stable fingerprint of a state: any change to what was read changes it. It detects
/// change (a stale plan), it is no security measure: a 128-bit XXH3 of the state's
/// canonical JSON, hashed as it is serialized (states of 50,000 flags are large, and a
/// cryptographic hash of them costs more than planning them).
pub fn fingerprint(state: &State) -> String {
    hash_json(state)
}

fn hash_json(value: &impl serde::Serialize) -> String {
    // serde_json writes token by token (a quote, a key, a colon); gathering the bytes in a
    // buffer first feeds the hash in large blocks, which halves the cost.
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, HashWriter(Xxh3::new()));
    // Serializing plain structs and string-keyed maps into a hasher cannot fail.
    let _ = serde_json::to_writer(&mut out, value);
    let _ = out.flush();
    let (HashWriter(hasher), _) = out.into_parts();
    format!("xxh3:{:032x}", hasher.digest128())
}

/// The fingerprint of a hub's state, which leaves out the names taken outside its
/// project's active flags: they change no action of a plan (a plan reads a live hub
/// without them, a snapshot holds them), so a plan made against a hub snapshot can be
/// applied against the live hub, and the other way round, as long as its flags and
/// scaffolding are the same.
pub fn hub_fingerprint(state: &State) -> String {
    if state.elsewhere.is_empty() {
        return fingerprint(state);
    }
    hash_json(&model::WithoutElsewhere::from(state))
}

/// Feeds serialized bytes straight into the hash, without building a string.
struct HashWriter(Xxh3);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A snapshot of `state` as read from `instance`.
pub fn snapshot_of(instance: &Instance, state: State, version: Option<String>) -> Snapshot {
    Snapshot::new(
        state,
        SnapshotSource {
            instance: instance.name.clone(),
            location: instance.location.to_string(),
            unleash_version: version,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::Flag;

    fn state_of(flags: usize) -> State {
        State {
            project: "default".into(),
            environments: vec!["production".into()],
            flags: (0..flags)
                .map(|i| {
                    let flag = Flag {
                        kind: "release".into(),
                        description: Some(format!("flag number {i}")),
                        ..Flag::default()
                    };
                    (format!("flag-{i:05}"), std::sync::Arc::new(flag))
                })
                .collect(),
            ..State::default()
        }
    }

    #[test]
    fn the_fingerprint_is_the_hash_of_the_whole_canonical_json() {
        // Large enough to cross the hashing buffer several times.
        let mut state = state_of(3_000);
        let json = serde_json::to_vec(&state).unwrap();
        assert!(json.len() > 3 * 64 * 1024, "{}", json.len());
        let expected = format!("xxh3:{:032x}", xxhash_rust::xxh3::xxh3_128(&json));
        assert_eq!(fingerprint(&state), expected);

        std::sync::Arc::make_mut(state.flags.get_mut("flag-02999").unwrap()).stale = true;
        assert_ne!(fingerprint(&state), expected, "a change in the last flag");
    }

    #[test]
    fn a_hubs_fingerprint_is_that_of_its_state_without_the_names_taken_elsewhere() {
        let mut state = state_of(3);
        let without = fingerprint(&state);
        state.elsewhere.insert(
            "old".into(),
            model::Elsewhere {
                project: "default".into(),
                archived: true,
            },
        );
        assert_ne!(fingerprint(&state), without);
        assert_eq!(hub_fingerprint(&state), without);
        std::sync::Arc::make_mut(state.flags.get_mut("flag-00001").unwrap()).stale = true;
        assert_ne!(hub_fingerprint(&state), without, "flags still count");
    }
}
