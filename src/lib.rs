//! flagfleet keeps a fleet of Unleash servers in line with one hub.
//!
//! # Layout
//! The code is one pipeline; each stage is a module and data flows forward through plain
//! types:
//!
//! - [`topology`]: the TOML topology file, checked into one [`topology::Topology`].
//! - [`client`]: the only code that speaks HTTP to Unleash.
//! - [`state`]: reads an instance (live or snapshot file) into the typed model.
//! - [`cli`]: the command line: argument parsing, commands, output, exit codes.

pub mod cli;
pub mod client;
pub mod state;
pub mod topology;
mod ui;
