//! The plan for a terminal: a legend, per spoke a header, one line per action with its
//! symbol and reason, a unified diff under every overwrite, a summary line, and a table
//! of all spokes at the end.

use comfy_table::{presets, CellAlignment, Table};

use super::{counts, listed, mapping, shown, Options, View};
use crate::plan::{Mark, SpokePlan};

const RESET: &str = "\x1b[0m";

fn paint(text: &str, code: &str, options: Options) -> String {
    if options.color {
        format!("\x1b[{code}m{text}{RESET}")
    } else {
        text.to_string()
    }
}

fn painted(mark: Mark, options: Options) -> String {
    paint(&mark.symbol().to_string(), mark.ansi(), options)
}

/// Renders a plan (a whole [`crate::plan::Plan`] or a [`super::Review`]) for a terminal.
pub fn render<'a>(plan: impl Into<View<'a>>, options: Options) -> String {
    let plan = plan.into();
    let mut out = String::new();
    let mut marks: Vec<Mark> = plan
        .spokes
        .iter()
        .flat_map(|(s, _)| s.actions.iter().map(Mark::of))
        .collect();
    marks.sort();
    marks.dedup();
    if !marks.is_empty() {
        let legend: Vec<String> = marks
            .iter()
            .map(|m| format!("{} {}", painted(*m, options), m.label()))
            .collect();
        out.push_str(&format!("Legend: {}\n\n", legend.join("   ")));
    }
    out.push_str(&format!(
        "Hub {} ({}, project {}, environments {})\n\n",
        plan.hub.name,
        plan.hub.location,
        plan.hub.project,
        plan.hub.environments.join(", ")
    ));
    for (i, (spoke, omitted)) in plan.spokes.iter().enumerate() {
        if let Some(heading) = plan.wave_heading(i) {
            out.push_str(&paint(&format!("== {heading}"), "1", options));
            out.push_str("\n\n");
        }
        spoke_section(&mut out, spoke, *omitted, options);
    }
    out.push_str(&summary_table(&plan));
    out
}

fn spoke_section(out: &mut String, spoke: &SpokePlan, omitted: usize, options: Options) {
    out.push_str(&paint(&format!("Spoke {}", spoke.name), "1", options));
    let version = spoke
        .unleash_version
        .as_ref()
        .map(|v| format!(", Unleash {v}"))
        .unwrap_or_default();
    out.push_str(&format!(
        " ({}{version}, project {}, {}{})\n",
        spoke.location,
        spoke.project,
        mapping(&spoke.environments, "->"),
        super::same_place(spoke).map_or(String::new(), |s| format!("; {s}"))
    ));
    if let Some(error) = &spoke.error {
        out.push_str(&format!(
            "  {} {}\n\n",
            paint("error:", "31;1", options),
            super::shown(&error.to_string()).replace('\n', "\n  ")
        ));
        return;
    }
    let width = spoke
        .actions
        .iter()
        .filter(|a| listed(a, options))
        .map(|a| a.kind.as_str().len() + 1 + a.name.chars().count())
        .max()
        .unwrap_or(0)
        .min(48);
    let mut unchanged = Vec::new();
    for a in &spoke.actions {
        if !listed(a, options) {
            unchanged.push(format!("{}:{}", a.kind, a.name));
            continue;
        }
        let label = format!("{} {}", a.kind, a.name);
        out.push_str(&format!(
            "  {} {label:<width$}  {}\n",
            painted(Mark::of(a), options),
            shown(&a.reason.to_string())
        ));
        for note in &a.notes {
            out.push_str(&format!("      note: {}\n", shown(note)));
        }
        if !a.kept.is_empty() {
            let kept = shown(&a.kept.join(", "));
            out.push_str(&format!("      kept by spoke: {kept}\n"));
        }
        if let Some(drift) = &a.drift {
            out.push_str(&format!("      {}\n", shown(&drift.summary())));
        }
        if let Some(diff) = &a.diff {
            for line in diff.lines() {
                let colour = match line.as_bytes().first() {
                    Some(b'+') if !line.starts_with("+++") => "32",
                    Some(b'-') if !line.starts_with("---") => "31",
                    Some(b'@') => "36",
                    _ => "",
                };
                out.push_str("      ");
                if colour.is_empty() || !options.color {
                    out.push_str(line);
                } else {
                    out.push_str(&paint(line, colour, options));
                }
                out.push('\n');
            }
        }
    }
    if !unchanged.is_empty() {
        out.push_str(&format!(
            "  {} {} unchanged (-v lists them): {}\n",
            painted(Mark::Unchanged, options),
            unchanged.len() + omitted,
            abbreviate(&unchanged, unchanged.len() + omitted, 6)
        ));
    }
    out.push_str(&format!(
        "Plan for {}: {}.\n\n",
        spoke.name,
        counts(&spoke.summary)
    ));
}

/// The first `n` of `total` names (`names` holds at least the first `n`), then
/// `and N more`.
pub(crate) fn abbreviate(names: &[String], total: usize, n: usize) -> String {
    let shown = n.min(names.len());
    if total <= shown {
        names[..shown].join(", ")
    } else {
        format!("{}, and {} more", names[..shown].join(", "), total - shown)
    }
}

fn summary_table(plan: &View<'_>) -> String {
    let prunes = plan.spokes.iter().any(|(s, _)| s.summary.archive > 0);
    let mut header = vec!["spoke", "create", "overwrite"];
    if prunes {
        header.push("archive");
    }
    header.extend(["skip", "blocked"]);
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_header(header.clone());
    for (s, _) in &plan.spokes {
        let mut row = vec![s.name.clone()];
        if s.error.is_some() {
            row.extend(std::iter::repeat_n("error".to_string(), header.len() - 1));
        } else {
            row.extend([
                s.summary.create.to_string(),
                s.summary.overwrite.to_string(),
            ]);
            if prunes {
                row.push(s.summary.archive.to_string());
            }
            row.extend([s.summary.skip.to_string(), s.summary.blocked.to_string()]);
        }
        table.add_row(row);
    }
    for i in 1..header.len() {
        if let Some(c) = table.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    format!("{table}\n")
}
