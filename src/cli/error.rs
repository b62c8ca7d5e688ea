//! Errors as the user sees them: `Error: ...`, the cause chain, and a `Hint:` where we
//! know the fix.

use std::fmt::Write as _;

use crate::state::ReadError;
use crate::topology::TopologyError;

/// Anything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The topology file is unreadable or invalid.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// An instance could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The fleet could not be read or planned.
    #[error(transparent)]
    Fleet(#[from] crate::pipeline::FleetError),
    /// An instance name on the command line is not in the topology.
    #[error("no instance named `{name}` in {topology}")]
    UnknownInstance {
        /// What was asked for.
        name: String,
        /// The topology file.
        topology: String,
        /// Names that exist.
        known: Vec<String>,
    },
    /// Writing output failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A spoke is locked by another apply.
    #[error(transparent)]
    Lock(#[from] crate::apply::lock::LockError),
    /// A file that must not be overwritten exists.
    #[error("refusing to overwrite {path}: it exists")]
    Exists {
        /// The file.
        path: String,
    },
    /// `--hub-snapshot` names a file that is not a snapshot of the hub.
    #[error("--hub-snapshot {path}: {problem}")]
    HubSnapshot {
        /// The file.
        path: String,
        /// What is wrong with it.
        problem: String,
    },
    /// Apply refused or could not start.
    #[error("{0}")]
    Apply(String),
}

impl CliError {
    /// Whether this is stdout closed by the reader (`flagfleet plan | head`): not an error.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, CliError::Io(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// The fix, where we know it.
    pub fn hint(&self) -> Option<String> {
        match self {
            CliError::Topology(TopologyError::Read { .. }) => Some(
                "pass the topology file with -c/--config PATH; docs/topology.md describes it"
                    .into(),
            ),
            CliError::Read(e) => e.hint(),
            CliError::Fleet(crate::pipeline::FleetError::Hub(e)) => e.hint(),
            CliError::Fleet(crate::pipeline::FleetError::UnknownSpoke { known, .. }) => {
                Some(format!("spokes: {}", known.join(", ")))
            }
            CliError::Lock(crate::apply::lock::LockError::Held { .. }) => Some(
                "wait for that apply to finish, or pass --lock-timeout SECONDS to wait for it; remove the lock file only if that apply surely no longer runs"
                    .into(),
            ),
            CliError::Exists { .. } => {
                Some("move it away, or write elsewhere with -c/--config PATH".into())
            }
            CliError::HubSnapshot { .. } => Some(
                "write the hub's snapshot with `flagfleet export HUB --out FILE`, HUB being the hub's name in this topology".into(),
            ),
            CliError::UnknownInstance { known, .. } => {
                Some(format!("instances: {}", known.join(", ")))
            }
            _ => None,
        }
    }

    /// The full text shown on stderr.
    pub fn render(&self) -> String {
        let mut out = format!("Error: {self}\n");
        let mut source = std::error::Error::source(self);
        // `transparent` variants would repeat their own message as the first cause.
        let mut last = self.to_string();
        while let Some(s) = source {
            let text = s.to_string();
            if text != last && !last.contains(&text) {
                let _ = writeln!(out, "  caused by: {text}");
            }
            last = text;
            source = s.source();
        }
        if let Some(hint) = self.hint() {
            let _ = writeln!(out, "Hint: {hint}");
        }
        out
    }
}
