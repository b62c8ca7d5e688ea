//! The plan as a pull-request comment: a summary table first, then one collapsible
//! section per spoke with its actions and diffs. It always fits in one GitHub comment
//! (65,536 characters): past that, details are cut step by step (diffs first, then rows)
//! with a note pointing to the full plan.

use std::fmt::Write as _;

use super::human::abbreviate;
use super::{counts, mapping, Options, View};
use crate::plan::{Mark, SpokePlan};

/// GitHub's limit for one comment.
pub const COMMENT_LIMIT: usize = 65_536;

/// How much detail a rendering attempt includes.
#[derive(Clone, Copy)]
struct Detail {
    diffs: bool,
    max_rows: usize,
}

/// Renders a plan (a whole [`crate::plan::Plan`] or a [`super::Review`]) as Markdown no
/// longer than `limit` characters.
pub fn render<'a>(plan: impl Into<View<'a>>, options: Options, limit: usize) -> String {
    let plan = &plan.into();
    let attempts = [
        Detail {
            diffs: true,
            max_rows: usize::MAX,
        },
        Detail {
            diffs: false,
            max_rows: usize::MAX,
        },
        Detail {
            diffs: false,
            max_rows: 200,
        },
        Detail {
            diffs: false,
            max_rows: 50,
        },
        Detail {
            diffs: false,
            max_rows: 10,
        },
        Detail {
            diffs: false,
            max_rows: 0,
        },
    ];
    for (i, detail) in attempts.iter().enumerate() {
        let text = attempt(plan, options, *detail, i > 0);
        if text.chars().count() <= limit {
            return text;
        }
    }
    // Even the summary table alone is too long (thousands of spokes): cut it too.
    let mut text = attempt(plan, options, attempts[attempts.len() - 1], true);
    let note = "\n\n> **Truncated** to fit one comment; see the full plan.\n";
    let keep = limit.saturating_sub(note.chars().count());
    text = text.chars().take(keep).collect();
    text.push_str(note);
    text
}

fn attempt(plan: &View<'_>, options: Options, detail: Detail, truncated: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### flagfleet plan\n");
    let _ = writeln!(
        out,
        "Hub **{}** (`{}`, project `{}`, environments {})\n",
        md(&plan.hub.name),
        md(&plan.hub.location),
        md(&plan.hub.project),
        plan.hub
            .environments
            .iter()
            .map(|e| format!("`{}`", md(e)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let prunes = plan.spokes.iter().any(|(s, _)| s.summary.archive > 0);
    let archive_head = if prunes { " archive |" } else { "" };
    let _ = writeln!(
        out,
        "| spoke | create | overwrite |{archive_head} skip | blocked |"
    );
    let _ = writeln!(
        out,
        "| --- | ---: | ---: |{} ---: | ---: |",
        if prunes { " ---: |" } else { "" }
    );
    for (s, _) in &plan.spokes {
        if s.error.is_some() {
            let cells = if prunes { 5 } else { 4 };
            let _ = writeln!(out, "| {} |{}", md(&s.name), " error |".repeat(cells));
        } else {
            let archive = if prunes {
                format!(" {} |", s.summary.archive)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} |{archive} {} | {} |",
                md(&s.name),
                s.summary.create,
                s.summary.overwrite,
                s.summary.skip,
                s.summary.blocked
            );
        }
    }
    if truncated {
        let _ = writeln!(
            out,
            "\n> **Details truncated** to fit one GitHub comment ({} characters): {}. The full plan is in the plan file (`flagfleet plan --out plan.json`, e.g. a CI artifact).",
            super::markdown::COMMENT_LIMIT,
            if detail.diffs { "some rows omitted" } else if detail.max_rows == usize::MAX { "diffs omitted" } else { "diffs and some rows omitted" }
        );
    }
    out.push('\n');
    for (i, (s, omitted)) in plan.spokes.iter().enumerate() {
        if let Some(heading) = plan.wave_heading(i) {
            let _ = writeln!(out, "#### {}\n", md(&heading));
        }
        spoke_section(&mut out, s, *omitted, options, detail);
    }
    out
}

fn spoke_section(
    out: &mut String,
    spoke: &SpokePlan,
    omitted: usize,
    options: Options,
    detail: Detail,
) {
    let headline = match &spoke.error {
        Some(_) => "could not be planned".to_string(),
        None => counts(&spoke.summary),
    };
    let _ = writeln!(
        out,
        "<details><summary><b>{}</b>: {headline}</summary>\n",
        html(&spoke.name)
    );
    let version = spoke
        .unleash_version
        .as_ref()
        .map(|v| format!(" · Unleash {}", md(v)))
        .unwrap_or_default();
    let same_place = super::same_place(spoke).map_or(String::new(), |s| format!(" · {}", md(&s)));
    let _ = writeln!(
        out,
        "`{}`{version} · project `{}` · {}{same_place}\n",
        md(&spoke.location),
        md(&spoke.project),
        md(&mapping(&spoke.environments, "→"))
    );
    if let Some(error) = &spoke.error {
        let _ = writeln!(
            out,
            "**Error:** {}\n\n</details>\n",
            md_text(&error.to_string())
        );
        return;
    }
    let (listed, unchanged): (Vec<_>, Vec<_>) = spoke
        .actions
        .iter()
        .partition(|a| super::listed(a, options));
    if !listed.is_empty() && detail.max_rows > 0 {
        let _ = writeln!(out, "| | kind | name | reason |");
        let _ = writeln!(out, "| --- | --- | --- | --- |");
        for a in listed.iter().take(detail.max_rows) {
            let mut reason = md_text(&a.reason.to_string());
            for note in &a.notes {
                reason.push_str(&format!("<br>_{}_", md_text(note)));
            }
            if !a.kept.is_empty() {
                let kept = md_text(&a.kept.join(", "));
                reason.push_str(&format!("<br>_kept by spoke: {kept}_"));
            }
            if let Some(drift) = &a.drift {
                reason.push_str(&format!("<br>_{}_", md_text(&drift.summary())));
            }
            let _ = writeln!(
                out,
                "| `{}` | {} | `{}` | {} |",
                Mark::of(a).symbol(),
                a.kind,
                md(&a.name),
                reason
            );
        }
        if listed.len() > detail.max_rows {
            let _ = writeln!(
                out,
                "\n_… and {} more actions (see the full plan)._",
                listed.len() - detail.max_rows
            );
        }
        out.push('\n');
    }
    if !unchanged.is_empty() || omitted > 0 {
        let names: Vec<String> = unchanged
            .iter()
            .map(|a| format!("{}:{}", a.kind, a.name))
            .collect();
        let _ = writeln!(
            out,
            "{} unchanged: {}\n",
            unchanged.len() + omitted,
            md(&abbreviate(
                &names,
                unchanged.len() + omitted,
                super::UNCHANGED_NAMED
            ))
        );
    }
    if detail.diffs {
        for a in listed.iter().filter(|a| a.diff.is_some()) {
            let diff = a.diff.as_deref().unwrap_or_default();
            let fence = fence_for(diff);
            let _ = writeln!(
                out,
                "**{} `{}`**\n\n{fence}diff\n{diff}{fence}\n",
                a.kind,
                md(&a.name)
            );
        }
    }
    let _ = writeln!(out, "</details>\n");
}

/// A code fence longer than any run of backticks in `text`.
fn fence_for(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

/// Escapes text for a Markdown table cell.
fn md(text: &str) -> String {
    super::shown(text).replace('|', "\\|").replace('\n', " ")
}

/// Escapes free text from a server (a note, a reason, an error) for a table cell: what
/// [`md`] does, and the characters that would make it a link, an image, HTML, a
/// character reference or code rather than text.
fn md_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in super::shown(text).chars() {
        match c {
            '\n' => out.push(' '),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '|' | '`' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// Escapes text for HTML.
fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
