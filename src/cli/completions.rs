//! `flagfleet completions` and `flagfleet man`: shell completions and man pages, both
//! generated from the clap definition, so they follow every flag as it is added.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::CommandFactory;

use super::{CliError, Context};

/// Print a shell completion script.
///
/// Examples:
///   flagfleet completions bash > ~/.local/share/bash-completion/completions/flagfleet
///   flagfleet completions zsh > "${fpath[1]}/_flagfleet"
///   flagfleet completions fish > ~/.config/fish/completions/flagfleet.fish
///   flagfleet completions powershell >> $PROFILE
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

pub(crate) fn completions(ctx: &mut Context, args: CompletionsArgs) -> Result<ExitCode, CliError> {
    let mut script = Vec::new();
    clap_complete::generate(
        args.shell,
        &mut super::Cli::command(),
        "flagfleet",
        &mut script,
    );
    ctx.ui.out(&String::from_utf8_lossy(&script))?;
    Ok(ExitCode::SUCCESS)
}

/// Print or write man pages.
///
/// Without --out-dir, prints flagfleet(1) (for `man -l -`); with it, writes flagfleet.1
/// and one page per command (flagfleet-plan.1, ...) into that folder.
///
/// Examples:
///   flagfleet man | man -l -
///   flagfleet man --out-dir ~/.local/share/man/man1
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct ManArgs {
    /// Write every page into this folder instead.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

pub(crate) fn man(ctx: &mut Context, args: ManArgs) -> Result<ExitCode, CliError> {
    let mut cli = super::Cli::command();
    cli.build();
    let Some(dir) = args.out_dir else {
        ctx.ui.out(&String::from_utf8_lossy(&page(cli)?))?;
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(&dir).map_err(|source| CliError::Write {
        path: dir.display().to_string(),
        source,
    })?;
    let mut pages = vec![("flagfleet".to_string(), cli.clone())];
    for sub in cli.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("flagfleet-{}", sub.get_name());
        pages.push((name.clone(), sub.clone().name(name)));
    }
    for (name, cmd) in pages {
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, page(cmd)?).map_err(|source| CliError::Write {
            path: path.display().to_string(),
            source,
        })?;
    }
    ctx.ui
        .err(&format!("Wrote the man pages to {}.\n", dir.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// One command's man page (roff).
fn page(cmd: clap::Command) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut out)?;
    Ok(out)
}
