//! New flags switched on: after every action of the spoke's apply has run, with Unleash's
//! bulk endpoint, one request per environment and chunk of flags instead of one per flag
//! and environment.
//!
//! A new flag is created off and stays off until then (the safe side). A chunk the server
//! refuses is switched on flag by flag, so a refusal costs only the flag it concerns, and
//! the report names it. An apply stopped in between (interrupted, killed) leaves new flags
//! off that should be on: the next plan shows `enable` for them, and applying it converges.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::LiveSpoke;
use crate::api::FlagEnv;
use crate::apply::{ApplyError, Outcome};
use crate::plan::Kind;

/// Flags per bulk request: short transactions on the server, a small body.
const CHUNK: usize = 250;

/// New flags waiting to be switched on, by environment, in the order they were created.
#[derive(Debug, Default)]
pub(super) struct Waiting(Mutex<BTreeMap<String, Vec<String>>>);

impl LiveSpoke<'_> {
    /// Switches `flag` on in `environment` once every action has run
    /// ([`Self::enable_new_flags`]).
    pub(super) fn enable_later(&self, environment: &str, flag: &str) {
        let mut waiting = self.waiting.0.lock().unwrap_or_else(|p| p.into_inner());
        waiting
            .entry(environment.to_string())
            .or_default()
            .push(flag.to_string());
    }

    /// How many (flag, environment) pairs wait to be switched on.
    pub fn waiting_to_be_enabled(&self) -> usize {
        let waiting = self.waiting.0.lock().unwrap_or_else(|p| p.into_inner());
        waiting.values().map(Vec::len).sum()
    }

    /// Switches on the new flags that wait for it, and marks the create of each one that
    /// could not be switched on as failed in `outcomes` (`interrupted`: none is sent, all
    /// are marked). Returns how many (flag, environment) pairs were left off.
    pub async fn enable_new_flags(
        &self,
        outcomes: &mut [(String, Outcome)],
        interrupted: bool,
    ) -> usize {
        let waiting =
            std::mem::take(&mut *self.waiting.0.lock().unwrap_or_else(|p| p.into_inner()));
        let mut left = 0;
        for (environment, flags) in waiting {
            for chunk in flags.chunks(CHUNK) {
                for (flag, why) in self.enable_chunk(&environment, chunk, interrupted).await {
                    left += 1;
                    let error = ApplyError::NotEnabled {
                        environment: environment.clone(),
                        why,
                    };
                    let label = format!("{}:{flag}", Kind::Flag);
                    if let Some((_, o)) = outcomes.iter_mut().find(|(l, _)| *l == label) {
                        if *o == Outcome::Applied {
                            *o = Outcome::Failed(error);
                        }
                    }
                }
            }
        }
        left
    }

    /// Switches `flags` on in `environment`: in one request, or one by one when that is
    /// refused. Returns the flags left off, each with why.
    async fn enable_chunk(
        &self,
        environment: &str,
        flags: &[String],
        interrupted: bool,
    ) -> Vec<(String, Arc<ApplyError>)> {
        if interrupted {
            let why = Arc::new(ApplyError::InterruptedBeforeEnabling);
            return flags.iter().map(|f| (f.clone(), why.clone())).collect();
        }
        let Err(e) = self.api.enable_many(self.project, environment, flags).await else {
            return Vec::new();
        };
        let instance = self.client.instance();
        tracing::warn!(%instance, "{e}; switching the {} flags on one by one", flags.len());
        let mut left_off = Vec::new();
        for flag in flags {
            let at = FlagEnv {
                project: self.project,
                flag,
                environment,
            };
            if let Err(e) = self.api.set_enabled(at, true).await {
                left_off.push((flag.clone(), Arc::new(e.into())));
            }
        }
        left_off
    }
}
