//! Rendering a plan: pure functions from a [`Plan`] to text, for a terminal
//! ([`human`]), for a pull-request comment ([`markdown`]) or for machines (JSON,
//! [`Plan::to_json`]).

pub mod dot;
pub mod human;
pub mod markdown;

use crate::plan::{Action, HubInfo, Mark, Plan, SpokePlan};

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

/// A spoke's plan kept for review ([`for_review`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewCopy {
    /// The plan, without the unchanged actions a rendering only counts.
    pub plan: SpokePlan,
    /// How many unchanged actions were left out of `plan`.
    pub unchanged_omitted: usize,
}

/// A plan kept for review: the hub and each spoke's [`ReviewCopy`], in plan order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    /// The hub the plan was made from.
    pub hub: HubInfo,
    /// The spokes' review copies.
    pub spokes: Vec<ReviewCopy>,
}

/// What the renderings take: a whole [`Plan`] or a [`Review`], borrowed.
#[derive(Debug, Clone)]
pub struct View<'a> {
    hub: &'a HubInfo,
    /// Each spoke's plan with the number of unchanged actions left out of it, by wave
    /// (then in plan order).
    spokes: Vec<(&'a SpokePlan, usize)>,
    /// Whether the spokes are in more than one wave (then shown grouped under headings).
    waves: bool,
}

impl<'a> View<'a> {
    fn new(hub: &'a HubInfo, mut spokes: Vec<(&'a SpokePlan, usize)>) -> Self {
        spokes.sort_by_key(|(s, _)| s.wave);
        let waves = spokes.first().map(|(s, _)| s.wave) != spokes.last().map(|(s, _)| s.wave);
        View { hub, spokes, waves }
    }

    /// The heading to print before spoke `i` (the first of its wave), when the plan has
    /// more than one wave: `Wave 2: us-east, us-west`.
    pub(crate) fn wave_heading(&self, i: usize) -> Option<String> {
        let wave = self.spokes.get(i)?.0.wave;
        if !self.waves || (i > 0 && self.spokes[i - 1].0.wave == wave) {
            return None;
        }
        let names: Vec<&str> = self
            .spokes
            .iter()
            .filter(|(s, _)| s.wave == wave)
            .map(|(s, _)| s.name.as_str())
            .collect();
        Some(format!("Wave {wave}: {}", names.join(", ")))
    }
}

impl<'a> From<&'a Plan> for View<'a> {
    fn from(plan: &'a Plan) -> Self {
        View::new(&plan.hub, plan.spokes.iter().map(|s| (s, 0)).collect())
    }
}

impl<'a> From<&'a Review> for View<'a> {
    fn from(review: &'a Review) -> Self {
        View::new(
            &review.hub,
            review
                .spokes
                .iter()
                .map(|s| (&s.plan, s.unchanged_omitted))
                .collect(),
        )
    }
}

/// A spoke's plan with what a rendering only counts left out: unchanged actions past the
/// first `UNCHANGED_NAMED` (ten; unless verbose). A large fleet's plan is then reviewed
/// without holding every unchanged object of every spoke.
pub fn for_review(mut spoke: SpokePlan, options: Options) -> ReviewCopy {
    if options.verbose {
        return ReviewCopy {
            plan: spoke,
            unchanged_omitted: 0,
        };
    }
    let mut named = 0;
    spoke.actions.retain(|a| {
        if listed(a, options) {
            return true;
        }
        named += 1;
        named <= UNCHANGED_NAMED
    });
    spoke.actions.shrink_to_fit();
    ReviewCopy {
        plan: spoke,
        unchanged_omitted: named.saturating_sub(UNCHANGED_NAMED),
    }
}

/// Whether an action is shown one by one (everything but unchanged items, unless verbose).
pub(crate) fn listed(a: &Action, options: Options) -> bool {
    options.verbose || Mark::of(a) != Mark::Unchanged
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

/// Text from a spoke or the hub (a note, a reason naming who changed something, an error)
/// as a terminal shows it: controls, escape sequences and bidirectional marks written out
/// (`\u{1b}`), line by line, so a hostile server cannot redraw or reorder the plan.
pub(crate) fn shown(text: &str) -> String {
    text.split('\n')
        .map(crate::redact::escape_controls)
        .collect::<Vec<_>>()
        .join("\n")
}

/// `same server as staging, prod (in turn)` for a spoke that shares its server (or file)
/// with others of the plan.
pub(crate) fn same_place(spoke: &SpokePlan) -> Option<String> {
    if spoke.same_place_as.is_empty() {
        return None;
    }
    let what = if spoke.location.starts_with("http") {
        "server"
    } else {
        "file"
    };
    Some(format!(
        "same {what} as {} (applied in turn)",
        spoke.same_place_as.join(", ")
    ))
}
