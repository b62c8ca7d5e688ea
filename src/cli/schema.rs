//! `flagfleet schema`: print the JSON Schema of the topology file.

use std::process::ExitCode;

use super::{CliError, Context};

/// Print the JSON Schema of the topology file.
///
/// Every key of `flagfleet.toml` with its type, default, allowed values and description,
/// for editors that validate TOML (taplo, Even Better TOML): save it and name it on the
/// topology's first line with `#:schema ./flagfleet.schema.json`. The schema checks the
/// file's shape; rules across keys (`url` or `file`, not both) are `flagfleet validate`'s.
///
/// Examples:
///   flagfleet schema > flagfleet.schema.json
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {}

pub(crate) fn run(ctx: &mut Context, _args: Args) -> Result<ExitCode, CliError> {
    ctx.ui.out(&crate::topology::json_schema())?;
    Ok(ExitCode::SUCCESS)
}
