//! flagfleet keeps a fleet of Unleash servers in line with one hub.
//!
//! # Layout
//! The code is one pipeline; each stage is a module and data flows forward through plain
//! types:
//!
//! - [`topology`]: the TOML topology file, checked into one [`topology::Topology`].
//! - [`client`]: the only code that speaks HTTP to Unleash.
//! - [`state`]: reads an instance (live or snapshot file) into the typed model.
//! - [`fleet`]: reads the hub and the spokes concurrently.
//! - [`desired`]: what each spoke should hold: selected, mapped, overridden hub flags.
//! - [`graph`]: the dependency order of a spoke's actions.
//! - [`plan`]: desired vs actual, per spoke: creates, overwrites, skips with reasons.
//! - [`apply`]: executes a plan on the spokes, in dependency order, with backups.
//! - [`files`]: private, atomic files (plans, snapshots, backups, locks).
//! - [`render`]: a plan as terminal text, JSON or Markdown.
//! - [`redact`]: server text made safe to print (tokens removed, escapes shown).
//! - [`cli`]: the command line: argument parsing, commands, output, exit codes.

pub mod apply;
pub mod cli;
pub mod client;
pub mod desired;
pub mod files;
pub mod fleet;
pub mod graph;
pub mod plan;
pub mod redact;
pub mod render;
pub mod state;
#[cfg(test)]
mod stub;
pub mod topology;
mod ui;
