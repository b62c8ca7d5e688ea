//! How `flagfleet apply` shows its progress on stderr: a bar per spoke on a terminal,
//! a line per action otherwise, nothing with `--quiet`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::apply::{Outcome, Progress, SpokeReport};
use crate::plan::Action;

/// `status (detail)` of an action's outcome, as a line or a bar's message shows it.
fn status(outcome: &Outcome, elapsed: Option<Duration>) -> (&'static str, String) {
    match outcome {
        Outcome::Applied => (
            "ok",
            format!("{} ms", elapsed.unwrap_or_default().as_millis()),
        ),
        Outcome::Failed(e) => ("FAILED", e.to_string()),
        Outcome::NotAttempted(why) => ("not attempted", why.clone()),
    }
}

/// One line per action on stderr.
pub(super) struct Lines;

impl Progress for Lines {
    fn between_waves(&self, message: &str) {
        eprintln!("{message}");
    }

    fn spoke_note(&self, spoke: &str, message: &str) {
        eprintln!("{spoke}: {message}");
    }

    fn action_done(&self, spoke: &str, a: &Action, outcome: &Outcome, elapsed: Option<Duration>) {
        let (status, detail) = status(outcome, elapsed);
        eprintln!(
            "{spoke}: {} {} {}: {status} ({detail})",
            a.action.as_str(),
            a.kind,
            a.name
        );
    }
}

/// A progress bar per spoke on stderr (a terminal).
pub(super) struct Bars {
    bars: MultiProgress,
    style: ProgressStyle,
    by_spoke: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    pub(super) fn new() -> Self {
        Self {
            bars: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            style: ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos}/{len} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            by_spoke: Mutex::new(HashMap::new()),
        }
    }

    fn bar(&self, spoke: &str) -> Option<ProgressBar> {
        let bars = self.by_spoke.lock().unwrap_or_else(|p| p.into_inner());
        bars.get(spoke).cloned()
    }
}

impl Progress for Bars {
    fn between_waves(&self, message: &str) {
        let _ = self.bars.println(message);
    }

    fn spoke_started(&self, spoke: &str, actions: usize) {
        let bar = self.bars.add(ProgressBar::new(actions as u64));
        bar.set_style(self.style.clone());
        bar.set_prefix(spoke.to_string());
        let mut bars = self.by_spoke.lock().unwrap_or_else(|p| p.into_inner());
        bars.insert(spoke.to_string(), bar);
    }

    fn action_done(&self, spoke: &str, a: &Action, outcome: &Outcome, elapsed: Option<Duration>) {
        if let Some(bar) = self.bar(spoke) {
            bar.inc(1);
            bar.set_message(format!(
                "{} {}: {}",
                a.kind,
                a.name,
                status(outcome, elapsed).0
            ));
        }
    }

    fn spoke_note(&self, spoke: &str, message: &str) {
        if let Some(bar) = self.bar(spoke) {
            bar.set_message(message.to_string());
        }
    }

    fn spoke_done(&self, report: &SpokeReport) {
        if let Some(bar) = self.bar(&report.name) {
            if let Some(e) = &report.error {
                // Refused before its first write, or stopped: the report says more.
                bar.abandon_with_message(format!("FAILED: {e}"));
                return;
            }
            let (applied, failed, skipped) = report.counts();
            bar.finish_with_message(format!(
                "{applied} applied, {failed} failed, {skipped} not attempted"
            ));
        }
    }
}
