//! `flagfleet init`: write a commented starter topology file.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use super::{CliError, Context};

/// Write a commented starter topology file.
///
/// Writes the file named by -c/--config (default flagfleet.toml) with the hub and spokes
/// given, each a live server (an http(s) URL, its token read from a variable named after
/// it) or a snapshot file (any other value), and the other keys commented out with what
/// they do. Refuses to overwrite an existing file; the result is checked as `validate`
/// checks a topology before it is written.
///
/// Examples:
///   flagfleet init --hub https://unleash.example.com --spoke eu-west=https://eu.example.com
///   flagfleet -c fleet/flagfleet.toml init --hub hub.json --spoke staging=staging.json
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// The hub: an http(s) URL or a snapshot file.
    #[arg(long, value_name = "URL")]
    hub: String,
    /// A spoke as NAME=URL (or NAME=FILE); repeat for each spoke.
    #[arg(long = "spoke", value_name = "NAME=URL", required = true, value_parser = parse_spoke)]
    spokes: Vec<(String, String)>,
    /// Hub environment to sync (repeatable).
    #[arg(long = "environment", value_name = "ENV", default_values_t = ["production".to_string()])]
    environments: Vec<String>,
}

fn parse_spoke(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, url)) if !name.is_empty() && !url.is_empty() => {
            Ok((name.to_string(), url.to_string()))
        }
        _ => Err("expected NAME=URL, e.g. eu-west=https://eu.unleash.example.com".into()),
    }
}

pub(crate) fn run(ctx: &mut Context, args: Args) -> Result<ExitCode, CliError> {
    let path = ctx.config.clone();
    let text = starter(&args);
    // The same checks as `flagfleet validate`, before anything is written.
    crate::topology::parse(&path, &text)?;
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(CliError::Exists {
                path: path.display().to_string(),
            })
        }
        Err(source) => {
            return Err(CliError::Write {
                path: path.display().to_string(),
                source,
            })
        }
    }
    let vars: Vec<String> = std::iter::once(&args.hub)
        .chain(args.spokes.iter().map(|(_, url)| url))
        .zip(std::iter::once("hub").chain(args.spokes.iter().map(|(n, _)| n.as_str())))
        .filter(|(url, _)| is_url(url))
        .map(|(_, name)| token_env(name))
        .collect();
    let mut next = format!("Wrote {}.", path.display());
    if !vars.is_empty() {
        let _ = write!(next, " Set {} (admin API tokens),", vars.join(", "));
    }
    let _ = writeln!(next, " then run `flagfleet validate`.");
    ctx.ui.err(&next)?;
    Ok(ExitCode::SUCCESS)
}

/// Whether an instance given on the command line is a live server rather than a file.
fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// The variable an instance's token is read from: `eu-west` -> `EU_WEST_TOKEN`.
fn token_env(name: &str) -> String {
    let upper: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{upper}_TOKEN")
}

/// A TOML string literal.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// `url` + `token_env`, or `file`, for one instance.
fn location(out: &mut String, name: &str, value: &str) {
    if is_url(value) {
        let _ = writeln!(out, "url = {}", quoted(value));
        let _ = writeln!(
            out,
            "token_env = {}  # the NAME of the variable holding its admin API token",
            quoted(&token_env(name))
        );
    } else {
        let _ = writeln!(out, "file = {}  # a snapshot file", quoted(value));
    }
}

/// The starter topology text.
fn starter(args: &Args) -> String {
    let mut out = String::from(
        "# flagfleet topology: one hub (the source of truth) and the spokes kept in line with it.\n\
         # Every key, its type and default: `flagfleet schema`. For editor checks (taplo, Even\n\
         # Better TOML), save it with `flagfleet schema > flagfleet.schema.json` and put\n\
         # `#:schema ./flagfleet.schema.json` on this file's first line.\n\n[hub]\n",
    );
    location(&mut out, "hub", &args.hub);
    let envs: Vec<String> = args.environments.iter().map(|e| quoted(e)).collect();
    let _ = writeln!(
        out,
        "environments = [{}]  # hub environments synced",
        envs.join(", ")
    );
    out.push_str(
        "# project = \"default\"  # the Unleash project synced\n\n\
         # Which hub flags are synced: flags with any of `tags` or matching any of `names`,\n\
         # minus `exclude`. With neither `tags` nor `names`, every flag is synced.\n\
         [select]\n\
         # tags = [\"sync:global\"]\n\
         # names = [\"checkout-*\"]\n\
         # exclude = [\"*-local\"]\n\n\
         # What a sync does with the scaffolding flags need: \"sync\" (create and overwrite,\n\
         # the default), \"create-only\" or \"ignore\".\n\
         # [scaffolding]\n\
         # context_fields = \"sync\"\n\
         # tag_types = \"sync\"\n\
         # segments = \"create-only\"\n\
         # strategies = \"sync\"\n",
    );
    for (i, (name, value)) in args.spokes.iter().enumerate() {
        let _ = writeln!(out, "\n[[spokes]]\nname = {}", quoted(name));
        location(&mut out, name, value);
        if i == 0 {
            out.push_str(
                "# environments = { production = \"production\" }  # hub environment -> spoke environment\n\
                 # prune = false  # archive (never delete) selected flags the hub no longer has\n\
                 #\n\
                 # [[spokes.overrides]]  # this spoke runs checkout at 10 %\n\
                 # flags = [\"checkout-*\"]\n\
                 # parameters = { rollout = \"10\" }\n",
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_variables_are_named_after_the_instance() {
        assert_eq!(token_env("eu-west"), "EU_WEST_TOKEN");
        assert_eq!(token_env("dc1.prod"), "DC1_PROD_TOKEN");
    }

    #[test]
    fn spokes_must_be_name_equals_url() {
        assert_eq!(
            parse_spoke("eu=https://eu.example.com"),
            Ok(("eu".into(), "https://eu.example.com".into()))
        );
        assert!(parse_spoke("https://eu.example.com").is_err());
        assert!(parse_spoke("=x").is_err());
    }
}
