//! The command line: arguments, dispatch, and the one place that turns errors into
//! messages and exit codes.
//!
//! Exit codes: 0 success; 1 error; 2 changes present (`plan --detailed-exitcode`); 130
//! apply interrupted by SIGINT or SIGTERM.

mod apply;
mod completions;
mod error;
mod export;
mod graph;
mod hub_snapshot;
mod init;
mod plan;
mod progress;
mod schema;
mod show;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::client::{ClientOptions, RateLimitWait, Wait, DEFAULT_MAX_WAIT};
use crate::topology::{self, Topology};
use crate::ui::Ui;
pub use error::CliError;

/// Keep a fleet of Unleash servers in line with one hub.
///
/// flagfleet reads a topology file (`flagfleet.toml`) naming one hub and several spokes,
/// each a live Unleash server or a snapshot file, and keeps the spokes' feature flags and
/// the scaffolding they need in line with the hub.
#[derive(Debug, Parser)]
#[command(name = "flagfleet", version, max_term_width = 100)]
#[command(
    after_help = "Examples:\n  flagfleet -c examples/quickstart/flagfleet.toml validate\n  flagfleet export hub --out hub.json\n\n\
Exit codes: 0 success, 1 error, 2 changes present (plan --detailed-exitcode), 130 apply\n\
interrupted (SIGINT/SIGTERM).\n\
Environment: NO_COLOR disables colour; FLAGFLEET_LOG sets the log filter (e.g. debug)."
)]
pub struct Cli {
    /// Topology file.
    #[arg(short = 'c', long = "config", global = true, default_value = topology::DEFAULT_PATH, value_name = "PATH")]
    config: PathBuf,
    /// Never colour output (also: NO_COLOR set, or output not a terminal).
    #[arg(long, global = true)]
    no_color: bool,
    /// More detail: -v shows progress logs, -vv each HTTP request.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors and final results.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Seconds allowed for one HTTP request.
    #[arg(long, global = true, default_value_t = 30, value_name = "SECONDS")]
    timeout: u64,
    /// Largest answer read from a server (bytes, or with KiB, MiB, GiB); larger answers
    /// fail as they stream in.
    #[arg(long, global = true, default_value = "256MiB", value_name = "SIZE", value_parser = parse_size)]
    max_response_size: u64,
    /// Ignore HTTP_PROXY, HTTPS_PROXY and ALL_PROXY (a proxy in use is logged at -v).
    #[arg(long, global = true)]
    no_proxy: bool,
    /// Seconds the whole run may spend waiting on servers that answer 429 (rate-limited);
    /// each wait is announced on stderr, even with -q. Past it, the run fails.
    #[arg(long, global = true, default_value_t = DEFAULT_MAX_WAIT.as_secs(), value_name = "SECONDS")]
    max_wait: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Validate(validate::Args),
    Plan(plan::Args),
    Apply(apply::Args),
    Show(show::Args),
    Graph(graph::Args),
    Export(export::Args),
    Init(init::Args),
    Schema(schema::Args),
    Completions(completions::CompletionsArgs),
    Man(completions::ManArgs),
}

/// Everything a command needs besides its own arguments.
pub(crate) struct Context {
    pub ui: Ui,
    pub config: PathBuf,
    pub client: ClientOptions,
    /// Colour on stdout: a terminal, no `--no-color`, no `NO_COLOR`.
    pub color: bool,
    /// `-v` given: list every item.
    pub verbose: bool,
    /// `-q` given: only the final report.
    pub quiet: bool,
}

impl Context {
    /// Loads and checks the topology file.
    pub fn topology(&self) -> Result<Topology, CliError> {
        Ok(topology::load(&self.config)?)
    }

    /// How the pipeline reads the spokes `only` names (all when empty): `parallelism`
    /// spokes at once, by default [`spokes_at_once`].
    pub fn reading(
        &self,
        parallelism: Option<u16>,
        topology: &Topology,
        only: &[String],
    ) -> crate::pipeline::Options {
        crate::pipeline::Options {
            client: self.client.clone(),
            parallelism: parallelism.unwrap_or_else(|| spokes_at_once(topology, only)),
        }
    }

    /// Loads the topology and fingerprints its text (plans record which topology made them).
    pub fn topology_with_fingerprint(&self) -> Result<(Topology, String), CliError> {
        let topology = self.topology()?;
        let bytes = std::fs::read(&self.config).unwrap_or_default();
        Ok((topology, crate::plan::fingerprint_bytes(&bytes)))
    }

    /// [`Self::topology_with_fingerprint`], with the hub read from `hub.snapshot` when given.
    pub fn topology_for_plan(&self, hub: &HubArgs) -> Result<(Topology, String), CliError> {
        let (mut topology, fingerprint) = self.topology_with_fingerprint()?;
        if let Some(path) = &hub.hub_snapshot {
            hub_snapshot::use_for_hub(&mut topology, path)?;
        }
        Ok((topology, fingerprint))
    }
}

/// Where `plan`, `apply` and `graph` read the hub.
#[derive(Debug, clap::Args)]
pub(crate) struct HubArgs {
    /// Read the hub from this snapshot of it (`flagfleet export HUB --out FILE`) instead
    /// of its server, so that the jobs of a sharded pipeline read the hub once between
    /// them; apply refuses a plan made from another hub state (docs/state.md).
    #[arg(long, value_name = "FILE")]
    hub_snapshot: Option<PathBuf>,
}

/// Parses the command line, runs the command, and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    let mut ctx = Context {
        ui: Ui::stdio(),
        color: !cli.no_color
            && std::io::IsTerminal::is_terminal(&std::io::stdout())
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        verbose: cli.verbose > 0,
        quiet: cli.quiet,
        config: cli.config,
        client: ClientOptions {
            timeout: Duration::from_secs(cli.timeout.max(1)),
            max_response_size: cli.max_response_size,
            no_proxy: cli.no_proxy,
            // A wait is never silent: the run seems hung otherwise (-q included).
            rate_limit: RateLimitWait::new(Duration::from_secs(cli.max_wait))
                .with_notice(std::sync::Arc::new(|wait: &Wait| eprintln!("{wait}"))),
            ..ClientOptions::default()
        },
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return report(&mut ctx.ui, &CliError::Io(e)),
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Validate(args) => validate::run(&mut ctx, args).await,
            Command::Plan(args) => plan::run(&mut ctx, args).await,
            Command::Apply(args) => apply::run(&mut ctx, args).await,
            Command::Graph(args) => graph::run(&mut ctx, args).await,
            Command::Show(args) => show::run(&mut ctx, args),
            Command::Export(args) => export::run(&mut ctx, args).await,
            Command::Init(args) => init::run(&mut ctx, args),
            Command::Schema(args) => schema::run(&mut ctx, args),
            Command::Completions(args) => completions::completions(&mut ctx, args),
            Command::Man(args) => completions::man(&mut ctx, args),
        }
    });
    match outcome {
        Ok(code) => code,
        Err(e) => report(&mut ctx.ui, &e),
    }
}

/// How many of the spokes `only` names (all when empty) are read at once by default:
/// `plan::LIVE_SPOKES_AT_ONCE` when all of them are live servers (their reads wait on the
/// network); when one is a snapshot file, the machine's cores, at most
/// `plan::SPOKES_AT_ONCE` (parsing is CPU-bound, so more at once only hold more states: on
/// two cores, 50,000 flags x 20 file spokes planned 4 at once peaked about 60 MiB higher
/// than 2 at once, in the same time).
fn spokes_at_once(topology: &Topology, only: &[String]) -> u16 {
    let all_live = topology
        .spokes
        .iter()
        .filter(|s| only.is_empty() || only.contains(&s.instance.name))
        .all(|s| matches!(s.instance.location, topology::Location::Live { .. }));
    if all_live {
        plan::LIVE_SPOKES_AT_ONCE
    } else {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        u16::try_from(cores).map_or(plan::SPOKES_AT_ONCE, |c| c.clamp(1, plan::SPOKES_AT_ONCE))
    }
}

/// `--allow-mass-archive`: no archive limit on any spoke for this run (pruning still never
/// runs against an empty hub).
fn lift_archive_limits(topology: &mut Topology) {
    for spoke in &mut topology.spokes {
        spoke.max_archive = Some(usize::MAX);
    }
}

/// A size in bytes: `1048576`, `512KiB`, `256MiB`, `1GiB`.
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        other => return Err(format!("unknown unit `{other}`: use B, KiB, MiB or GiB")),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a size, e.g. 256MiB"))?;
    match n.checked_mul(factor) {
        Some(0) => Err("the size must be at least 1 byte".into()),
        Some(bytes) => Ok(bytes),
        None => Err(format!("`{text}` is too large")),
    }
}

/// Prints an error with its causes and hint (nothing for a closed stdout); returns its
/// exit code.
fn report(ui: &mut Ui, e: &CliError) -> ExitCode {
    if !e.is_broken_pipe() {
        let _ = ui.err(&e.render());
    }
    e.exit_code()
}

fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "flagfleet=info",
        (false, _) => "flagfleet=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLAGFLEET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .try_init();
}

/// The spokes of wave `wave` among `spokes` (every spoke when empty), in topology order.
pub(super) fn in_wave(
    topology: &crate::topology::Topology,
    spokes: Vec<String>,
    wave: u32,
) -> Result<Vec<String>, CliError> {
    let chosen: Vec<String> = topology
        .spokes
        .iter()
        .filter(|s| s.wave == wave)
        .map(|s| s.instance.name.clone())
        .filter(|name| spokes.is_empty() || spokes.contains(name))
        .collect();
    if chosen.is_empty() {
        let mut waves: Vec<u32> = topology.spokes.iter().map(|s| s.wave).collect();
        waves.sort_unstable();
        waves.dedup();
        return Err(CliError::EmptyWave { wave, waves });
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_spokes_are_read_more_at_once_than_files() {
        let text = r#"
[hub]
file = "hub.json"
[[spokes]]
name = "eu"
url = "https://eu.unleash.invalid"
token_env = "EU_TOKEN"
[[spokes]]
name = "us"
url = "https://us.unleash.invalid"
token_env = "US_TOKEN"
[[spokes]]
name = "archive"
file = "archive.json"
"#;
        let t = topology::parse(std::path::Path::new("flagfleet.toml"), text).unwrap();
        let only = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(spokes_at_once(&t, &only(&["eu", "us"])), 32);
        assert_eq!(spokes_at_once(&t, &only(&["eu"])), 32);
        // With a file: the machine's cores, at most 4.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let files = u16::try_from(cores.min(4)).unwrap();
        assert_eq!(spokes_at_once(&t, &only(&["eu", "archive"])), files);
        assert_eq!(
            spokes_at_once(&t, &[]),
            files,
            "every spoke, one of them a file"
        );
        assert!((1..=4).contains(&files));
    }
}
