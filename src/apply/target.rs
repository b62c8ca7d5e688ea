//! The objects apply writes to one spoke: the desired state the plan was made from,
//! looked up by the plan's action names.

use std::collections::BTreeMap;

use crate::desired::{desired, merge_context_field};
use crate::state::model::{ContextField, Flag, Segment, State, StrategyDefinition, TagType};
use crate::topology::{Spoke, Topology};

/// What one spoke should hold, by name.
pub(crate) struct Target<'a> {
    pub hub: &'a State,
    pub actual: &'a State,
    pub flags: BTreeMap<String, Flag>,
    /// Spoke environments synced, sorted.
    pub environments: Vec<String>,
}

impl<'a> Target<'a> {
    pub fn new(topology: &Topology, hub: &'a State, spoke: &Spoke, actual: &'a State) -> Self {
        let environments = spoke.synced_environments();
        Self {
            hub,
            actual,
            flags: desired(topology, hub, spoke, actual)
                .flags
                .into_iter()
                .map(|(name, flag)| (name.to_string(), flag.into_owned()))
                .collect(),
            environments,
        }
    }

    /// The hub's field with the spoke's extra legal values kept.
    pub fn context_field(&self, name: &str) -> Option<ContextField> {
        let hub = self.hub.context_fields.get(name)?;
        Some(merge_context_field(hub, self.actual.context_fields.get(name)).0)
    }

    pub fn tag_type(&self, name: &str) -> Option<&TagType> {
        self.hub.tag_types.get(name)
    }

    pub fn strategy(&self, name: &str) -> Option<&StrategyDefinition> {
        self.hub.strategies.get(name)
    }

    pub fn segment(&self, name: &str) -> Option<&Segment> {
        self.hub.segments.get(name).filter(|s| !s.incomplete)
    }

    pub fn flag(&self, name: &str) -> Option<&Flag> {
        self.flags.get(name)
    }

    /// The flag as the spoke should hold it as a whole: synced environments from the hub,
    /// the others and `stale` as the spoke has them.
    pub fn whole_flag(&self, name: &str) -> Option<Flag> {
        let mut flag = self.flag(name)?.clone();
        if let Some(actual) = self.actual.flags.get(name) {
            flag.stale = actual.stale;
            for (env, e) in actual.environments.iter() {
                flag.environments
                    .entry(env.clone())
                    .or_insert_with(|| e.clone());
            }
        } else {
            flag.stale = false;
            for env in &self.actual.environments {
                flag.environments.entry(env.clone()).or_default();
            }
        }
        Some(flag)
    }
}
