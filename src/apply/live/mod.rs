//! Applying actions to a live spoke through Unleash's fine-grained admin API (admin
//! tokens are accepted there; the batch import endpoint refuses them).
//!
//! Ids are resolved on the spoke: a strategy that uses segment `beta-users` gets the
//! spoke's id for it, which may have been created a moment ago in the same apply.
//! Creates are sent once; after an ambiguous failure the object is looked up before the
//! create is repeated, so a flaky network never leaves a duplicate.

mod create;
mod dependencies;
mod enable;
mod flags;
mod links;
mod scaffolding;
mod strategies;
mod tags;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use super::target::{object, Target};
use super::ApplyError;
use crate::api::{Admin, Named, NamedBody};
use crate::client::{Client, ClientError};
use crate::plan::{Action, Kind, Object, Verb};
use scaffolding::{context_field_body, segment_body, strategy_definition_body, tag_type_body};

/// A live spoke being written.
pub(super) struct LiveSpoke<'a> {
    pub client: &'a Client,
    pub api: Admin<'a>,
    pub project: &'a str,
    pub target: &'a Target<'a>,
    segment_ids: Mutex<HashMap<String, i64>>,
    /// Tags (type, value) that exist on the spoke, read when the first flag is created.
    tags: OnceCell<HashSet<TagKey>>,
    /// One create per tag the spoke lacks, shared by every flag that needs it (single
    /// flight: concurrent flag creates wait for the same tag create instead of racing it).
    tag_creates: Mutex<HashMap<TagKey, Arc<OnceCell<()>>>>,
    /// New flags to switch on once every action has run.
    waiting: enable::Waiting,
}

/// A tag as (type, value).
type TagKey = (String, String);

type Result<T> = std::result::Result<T, ApplyError>;

impl<'a> LiveSpoke<'a> {
    /// Reads the spoke's segment ids (the only ids flag bodies need).
    pub async fn new(
        client: &'a Client,
        project: &'a str,
        target: &'a Target<'a>,
    ) -> std::result::Result<Self, ClientError> {
        let api = Admin::new(client);
        let segments = api.segments().await?;
        Ok(Self {
            client,
            api,
            project,
            target,
            segment_ids: Mutex::new(
                segments
                    .segments
                    .into_iter()
                    .map(|s| (s.name, s.id))
                    .collect(),
            ),
            tags: OnceCell::new(),
            tag_creates: Mutex::default(),
            waiting: enable::Waiting::default(),
        })
    }

    /// Executes one action.
    pub async fn execute(&self, a: &Action) -> Result<()> {
        self.run(a).await
    }

    async fn run(&self, a: &Action) -> Result<()> {
        let name = a.name.as_str();
        let verb = a.action;
        if (a.kind, verb) == (Kind::Flag, Verb::Archive) {
            return self.archive_flag(name).await;
        }
        match object(a)? {
            Object::ContextField(c) => {
                let body = NamedBody::ContextField(context_field_body(name, c));
                self.write_named(Named::ContextField, name, &body, verb)
                    .await?;
            }
            Object::TagType(t) => {
                let body = NamedBody::TagType(tag_type_body(name, t));
                self.write_named(Named::TagType, name, &body, verb).await?;
            }
            Object::Strategy(s) => {
                let body = NamedBody::StrategyDefinition(strategy_definition_body(name, s));
                self.write_named(Named::StrategyDefinition, name, &body, verb)
                    .await?;
            }
            Object::Segment(s) => {
                self.write_segment(name, &segment_body(name, s), verb)
                    .await?;
            }
            Object::Flag(f) if verb == Verb::Create => self.create_flag(name, f).await?,
            Object::Flag(f) => self.overwrite_flag(name, f, &a.environments).await?,
        }
        Ok(())
    }

    fn lock_ids(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.segment_ids.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The spoke's segment names by id.
    fn segment_names(&self) -> HashMap<i64, String> {
        self.lock_ids()
            .iter()
            .map(|(n, id)| (*id, n.clone()))
            .collect()
    }

    fn segment_id(&self, name: &str) -> Result<i64> {
        self.lock_ids()
            .get(name)
            .copied()
            .ok_or_else(|| ApplyError::MissingSegment {
                instance: self.client.instance().to_string(),
                name: name.to_string(),
            })
    }
}
