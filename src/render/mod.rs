//! Rendering a plan: pure functions from a [`Plan`] to text, for a terminal
//! ([`human`]), for a pull-request comment ([`markdown`]) or for machines (JSON,
//! [`Plan::to_json`]).

pub mod human;
pub mod markdown;

use crate::plan::{Action, SpokePlan, Verb};

/// How many unchanged objects a rendering names before it only counts them.
pub(crate) const UNCHANGED_NAMED: usize = 10;

/// How a plan is shown.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// ANSI colours.
    pub color: bool,
    /// List unchanged items one by one instead of summarizing them.
    pub verbose: bool,
}

/// The symbol of an action: `+` create, `~` overwrite, `-` archive, `=` unchanged, `!`
/// blocked, `.` any other skip (policy, definition kept).
pub fn symbol(a: &Action) -> char {
    match (a.action, a.blocked) {
        (Verb::Create, _) => '+',
        (Verb::Overwrite, _) => '~',
        (Verb::Archive, _) => '-',
        (Verb::Skip, true) => '!',
        (Verb::Skip, false) if a.reason == "unchanged" => '=',
        (Verb::Skip, false) => '.',
    }
}

/// What a symbol means, for legends.
pub fn meaning(symbol: char) -> &'static str {
    match symbol {
        '+' => "create",
        '~' => "overwrite",
        '-' => "archive",
        '=' => "unchanged",
        '!' => "blocked",
        _ => "skip",
    }
}

/// A spoke's plan with what a rendering only counts left out: unchanged actions past the
/// first [`UNCHANGED_NAMED`] (unless verbose). A large fleet's plan is then reviewed
/// without holding every unchanged object of every spoke.
pub fn for_review(mut spoke: SpokePlan, options: Options) -> SpokePlan {
    if options.verbose {
        return spoke;
    }
    let mut named = 0;
    spoke.actions.retain(|a| {
        if listed(a, options) {
            return true;
        }
        named += 1;
        named <= UNCHANGED_NAMED
    });
    spoke.unchanged_omitted += named.saturating_sub(UNCHANGED_NAMED);
    spoke.actions.shrink_to_fit();
    spoke
}

/// Whether an action is shown one by one (everything but unchanged items, unless verbose).
pub(crate) fn listed(a: &Action, options: Options) -> bool {
    options.verbose || symbol(a) != '='
}

/// `N to create, N to overwrite, N to skip (N blocked)`, with `N to archive` on pruning
/// spokes that archive something.
pub(crate) fn counts(s: &crate::plan::Summary) -> String {
    let archive = if s.archive > 0 {
        format!("{} to archive, ", s.archive)
    } else {
        String::new()
    };
    format!(
        "{} to create, {} to overwrite, {archive}{} to skip ({} blocked)",
        s.create, s.overwrite, s.skip, s.blocked
    )
}

/// `hub -> spoke` environment pairs, as `production -> prod, dev -> dev`.
pub(crate) fn mapping(envs: &std::collections::BTreeMap<String, String>, arrow: &str) -> String {
    envs.iter()
        .map(|(h, s)| format!("{h} {arrow} {s}"))
        .collect::<Vec<_>>()
        .join(", ")
}
