//! Why an action failed, or why a spoke was not applied at all.

use std::path::PathBuf;
use std::sync::Arc;

use crate::client::ClientError;
use crate::plan::{Kind, SpokeError};
use crate::state::ReadError;

/// Why an action failed or a spoke could not be applied. Cheap to clone (reports and
/// progress hold it), serialized as its message.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApplyError {
    /// A request to the spoke failed.
    #[error(transparent)]
    Client(Arc<ClientError>),
    /// The action names an object the desired state does not hold.
    #[error("{kind} {name} is not defined on the hub")]
    NotOnHub {
        /// Its kind.
        kind: Kind,
        /// Its name.
        name: String,
    },
    /// A strategy uses a segment the spoke does not have (nor got in this apply).
    #[error("{instance}: segment `{name}` does not exist on the spoke")]
    MissingSegment {
        /// The spoke's instance name.
        instance: String,
        /// The segment.
        name: String,
    },
    /// The action was in flight when apply was interrupted and its answer never came.
    #[error("interrupted while in flight: it may or may not have taken effect")]
    InterruptedInFlight,
    /// A new flag was created (off) but could not be switched on afterwards.
    #[error("created, but left off in {environment}: {why}; apply again to switch it on")]
    NotEnabled {
        /// The environment where it should be on.
        environment: String,
        /// Why not.
        why: Arc<ApplyError>,
    },
    /// Apply was interrupted before new flags were switched on.
    #[error("interrupted before new flags were switched on")]
    InterruptedBeforeEnabling,
    /// The spoke's segments could not be read before the first write.
    #[error("{0}; nothing was changed")]
    Start(Arc<ClientError>),
    /// The spoke could not be read again right before the first write.
    #[error("cannot read it again before writing: {0}; nothing was changed")]
    Reread(Arc<ReadError>),
    /// The spoke's state changed between the plan and the first write.
    #[error("it changed since the plan was made (its state fingerprint differs now, right before the first write); nothing was changed: run plan again")]
    ChangedSincePlan,
    /// Objects of the spoke changed between the plan and the first write, not by another
    /// spoke of this run that shares its server.
    #[error("it changed since the plan was made ({}), not by this apply; nothing was changed: run plan again", listed(objects))]
    ChangedObjects {
        /// The objects, as `kind name`.
        objects: Vec<String>,
    },
    /// The backup of the spoke could not be written.
    #[error("cannot write the backup in {}: {source}; nothing was changed", dir.display())]
    Backup {
        /// The backup folder.
        dir: PathBuf,
        /// The I/O error.
        source: Arc<std::io::Error>,
    },
    /// A snapshot-file spoke could not be written.
    #[error("cannot write {}: {source}", path.display())]
    WriteFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: Arc<std::io::Error>,
    },
    /// A live spoke without a connection (it was not read).
    #[error("no connection to the spoke")]
    NoConnection,
    /// The spoke could not be read for the plan and `--skip-unreachable` skipped it.
    #[error("could not be read, skipped (--skip-unreachable): {0}")]
    Unreachable(SpokeError),
}

impl From<ClientError> for ApplyError {
    fn from(e: ClientError) -> Self {
        ApplyError::Client(Arc::new(e))
    }
}

/// Two errors are the same when they say the same (the causes are not comparable).
impl PartialEq for ApplyError {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for ApplyError {}

impl serde::Serialize for ApplyError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The first few of `objects`, and how many more.
fn listed(objects: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = objects
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if objects.len() > SHOWN {
        text.push_str(&format!(" and {} more", objects.len() - SHOWN));
    }
    text
}
