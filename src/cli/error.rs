//! Errors as the user sees them: `Error: ...`, the cause chain, and a `Hint:` where we
//! know the fix.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::plan::SpokeError;
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
    /// A saved plan file cannot be used.
    #[error("{}", plan_file_message(path, problem))]
    PlanFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: PlanFileProblem,
    },
    /// The saved plan was made from another topology.
    #[error("the plan was made from another topology (or the topology file changed since): run plan again")]
    PlanTopology,
    /// A state the saved plan was made from changed since.
    #[error("plan is stale for {}: it changed since the plan was made; run plan again (nothing was changed)", stale.join(", "))]
    StalePlan {
        /// `the hub NAME`, `spoke NAME`.
        stale: Vec<String>,
    },
    /// The saved plan's actions are not the ones planned now from the same states.
    #[error("the saved plan's actions for spoke {spoke} differ from the ones planned now from the same states, first at action {position}: saved {saved}, now {now}{}; the plan file was edited or made by another flagfleet: run plan again (nothing was changed)", if *same_object { " (same object and verb, other details)" } else { "" })]
    EditedPlan {
        /// The spoke.
        spoke: String,
        /// The first action that differs, from 1.
        position: usize,
        /// That action in the saved plan (`` `verb kind name` `` or `nothing`).
        saved: String,
        /// That action planned now.
        now: String,
        /// Whether both name the same object and verb.
        same_object: bool,
    },
    /// A spoke could not be read, so apply refused the whole run.
    #[error("spoke {spoke} could not be read, so nothing was applied: {error}")]
    SpokeUnreadable {
        /// The spoke.
        spoke: String,
        /// Why (with its hint).
        error: SpokeError,
    },
    /// Apply needs a confirmation and there is no terminal to ask on.
    #[error("refusing to apply without confirmation: there is no terminal to ask on; review the plan and pass --auto-approve (nothing was changed)")]
    NoTerminal,
    /// `--wave N` selects no spoke.
    #[error("no spoke in wave {wave} (the topology's waves: {}); nothing was changed", waves.iter().map(u32::to_string).collect::<Vec<_>>().join(", "))]
    EmptyWave {
        /// The wave asked for.
        wave: u32,
        /// The topology's waves, sorted.
        waves: Vec<u32>,
    },
    /// The user did not confirm.
    #[error("apply cancelled; nothing was changed")]
    Cancelled,
}

/// What is wrong with a saved plan file.
#[derive(Debug)]
pub enum PlanFileProblem {
    /// It cannot be read.
    Unreadable(std::io::Error),
    /// It is not JSON.
    NotJson(serde_json::Error),
    /// It has another format version (or none).
    Version(Option<u64>),
    /// It is JSON but not a plan.
    Invalid(serde_json::Error),
}

fn plan_file_message(path: &std::path::Path, problem: &PlanFileProblem) -> String {
    let path = path.display();
    match problem {
        PlanFileProblem::Unreadable(e) => format!("cannot read plan file {path}: {e}"),
        PlanFileProblem::NotJson(e) => format!("{path} is not a plan file: {e}"),
        PlanFileProblem::Version(found) => format!(
            "{path} has plan format_version {}, this flagfleet reads version {}: run plan again with this version",
            found.map_or_else(|| "(none)".to_string(), |v| v.to_string()),
            crate::plan::FORMAT_VERSION
        ),
        PlanFileProblem::Invalid(e) => format!("{path} is not a valid plan file: {e}"),
    }
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

    /// The exit code of a command that failed with this error: 0 for a closed stdout
    /// (`flagfleet plan | head` is not an error), 1 otherwise. (2, "changes present",
    /// and 130, "interrupted", are outcomes, not errors: the commands return them.)
    pub fn exit_code(&self) -> ExitCode {
        if self.is_broken_pipe() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
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
