//! flagfleet keeps a fleet of Unleash servers in line with one hub.
//!
//! # Layout
//! The code is one pipeline; each stage is a module and data flows forward through plain
//! types. Each module uses only the ones listed before it (`tests/module_graph.rs`
//! checks it):
//!
//! - [`redact`], [`files`]: helpers for every stage: server text made safe to print
//!   (tokens removed, escapes shown); private, atomic files (plans, snapshots, backups,
//!   locks).
//! - [`client`]: the only code that speaks HTTP: transport policy, retries, rate-limit
//!   waits, errors that mean HTTP ([`client::ClientError`]).
//! - [`api`]: Unleash's admin API as flagfleet uses it: one typed function per endpoint
//!   ([`api::Admin`]), the request bodies and the answers, and Unleash's name rules.
//! - [`topology`]: the TOML topology file, checked into one [`topology::Topology`].
//! - [`state`]: reads an instance (live or snapshot file) into the typed model.
//! - [`capability`]: what each Unleash version can hold; plans block the rest.
//! - [`desired`]: what each spoke should hold: selected, mapped, overridden hub flags,
//!   with the fields a spoke keeps as it has them.
//! - [`graph`]: the dependency order of a spoke's actions.
//! - [`plan`]: desired vs actual, per spoke: creates, overwrites, skips with typed
//!   reasons ([`plan::Reason`]), and how each action is marked ([`plan::Mark`]).
//! - [`drift`]: who changed an overwritten flag or segment since flagfleet last wrote it:
//!   reads the instances' event logs and fills in the action's [`plan::Drift`].
//! - [`pipeline`]: the run every command shares: reads the hub and the spokes at once and
//!   plans each spoke as it is read, keeping only what the caller asks for.
//! - [`apply`]: executes a plan on the spokes, in dependency order, with backups and a
//!   lock per spoke: each create or overwrite writes the object its action carries
//!   ([`plan::Object`]), derived once by the planner (the live writer is in `apply/live/`,
//!   a module per object kind); it
//!   reports progress through [`apply::Progress`], which the command line provides, and
//!   failures as [`apply::ApplyError`].
//! - [`render`]: a plan as terminal text, Markdown or Graphviz DOT (JSON is the plan's
//!   own format, [`plan::JsonWriter`]).
//! - [`cli`]: the command line: argument parsing, commands, output, and in
//!   [`cli::CliError`] the one place errors become messages, hints and exit codes.

pub mod api;
pub mod apply;
pub mod capability;
pub mod cli;
pub mod client;
pub mod desired;
pub mod drift;
pub mod files;
pub mod graph;
pub mod pipeline;
pub mod plan;
pub mod redact;
pub mod render;
pub mod state;
#[cfg(test)]
mod stub;
pub mod topology;
mod ui;
