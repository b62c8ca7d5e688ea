//! Waves: a fleet is applied canary first. The spokes of a wave go at once; the next wave
//! starts only when every spoke of this one succeeded, after `--wave-pause` and once the
//! `--gate` command exits 0. When a wave fails (or its gate, or an interrupt), every later
//! spoke is reported as not started.
//!
//! A later wave's spokes are re-read right before their first write, as every spoke is
//! ([`super::unchanged_since_plan`]): that read happens when their wave starts, after the
//! pause and the gate, so a plan gone stale meanwhile is refused.

use std::future::Future;

use super::{Options, Progress, SpokeReport};
use crate::plan::SpokePlan;

/// Runs `apply` on each wave of `spokes` in ascending order, stopping as described above.
pub(super) async fn in_waves<'p, F, Fut>(
    spokes: &[&'p SpokePlan],
    options: &Options,
    progress: &dyn Progress,
    mut apply: F,
) -> Vec<SpokeReport>
where
    F: FnMut(Vec<&'p SpokePlan>) -> Fut,
    Fut: Future<Output = Vec<SpokeReport>>,
{
    let mut waves: Vec<u32> = spokes.iter().map(|s| s.wave).collect();
    waves.sort_unstable();
    waves.dedup();
    let of = |wave: u32| -> Vec<&'p SpokePlan> {
        spokes.iter().copied().filter(|s| s.wave == wave).collect()
    };
    let mut reports = Vec::new();
    let mut stopped: Option<String> = None;
    for (i, &wave) in waves.iter().enumerate() {
        if let Some(why) = &stopped {
            reports.extend(of(wave).iter().map(|s| SpokeReport {
                not_started: Some(why.clone()),
                ..SpokeReport::new(&s.name)
            }));
            continue;
        }
        let done = apply(of(wave)).await;
        let failed = done.iter().any(SpokeReport::failed);
        reports.extend(done);
        let Some(&next) = waves.get(i + 1) else {
            break;
        };
        let finished: Vec<String> = of(wave).iter().map(|s| s.name.clone()).collect();
        stopped = if failed {
            Some(format!("wave {wave} did not succeed"))
        } else if options.interrupt.is_set() {
            Some(super::INTERRUPTED.to_string())
        } else {
            between(wave, next, &finished, &of(next), options, progress)
                .await
                .err()
        };
        if let Some(why) = &stopped {
            progress.between_waves(&format!("not starting wave {next}: {why}"));
        }
    }
    reports
}

/// The pause and the gate between wave `wave` (done, its spokes `finished`) and `next`.
async fn between(
    wave: u32,
    next: u32,
    finished: &[String],
    next_spokes: &[&SpokePlan],
    options: &Options,
    progress: &dyn Progress,
) -> Result<(), String> {
    if !options.wave_pause.is_zero() {
        progress.between_waves(&format!(
            "wave {wave} done; waiting {} s before wave {next}",
            options.wave_pause.as_secs()
        ));
        tokio::select! {
            () = tokio::time::sleep(options.wave_pause) => {}
            () = options.interrupt.wait() => return Err(super::INTERRUPTED.to_string()),
        }
    }
    if let Some(gate) = &options.gate {
        progress.between_waves(&format!(
            "wave {wave} done; running the gate before wave {next}"
        ));
        let names: Vec<&str> = next_spokes.iter().map(|s| s.name.as_str()).collect();
        let child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(gate)
            .env("FLAGFLEET_WAVE", wave.to_string())
            .env("FLAGFLEET_NEXT_WAVE", next.to_string())
            .env("FLAGFLEET_SPOKES", finished.join(","))
            .env("FLAGFLEET_NEXT_SPOKES", names.join(","))
            // The report is apply's stdout: the gate's output goes to stderr.
            .stdout(std::io::stderr())
            // An interrupted apply does not leave its gate running.
            .kill_on_drop(true)
            .spawn();
        let command = match child {
            Ok(mut child) => tokio::select! {
                status = child.wait() => status,
                () = options.interrupt.wait() => return Err(super::INTERRUPTED.to_string()),
            },
            Err(e) => Err(e),
        };
        match command {
            Ok(status) if status.success() => {}
            Ok(status) => {
                return Err(format!(
                    "the gate after wave {wave} exited with {}",
                    status
                        .code()
                        .map_or_else(|| "a signal".to_string(), |c| format!("status {c}"))
                ))
            }
            Err(e) => return Err(format!("the gate after wave {wave} could not run: {e}")),
        }
    }
    Ok(())
}
