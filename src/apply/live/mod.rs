//! Applying actions to a live spoke through Unleash's fine-grained admin API (admin
//! tokens are accepted there; the batch import endpoint refuses them).
//!
//! Ids are resolved on the spoke: a strategy that uses segment `beta-users` gets the
//! spoke's id for it, which may have been created a moment ago in the same apply.
//! Creates are sent once; after an ambiguous failure the object is looked up before the
//! create is repeated, so a flaky network never leaves a duplicate.

mod create;
mod dependencies;
mod flags;
mod links;
mod scaffolding;
mod strategies;
mod tags;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde_json::Value;
use tokio::sync::OnceCell;

use super::target::Target;
use crate::client::{Client, ClientError, Path};
use crate::plan::{Action, Kind, Verb};
use crate::state::wire;
use scaffolding::{context_field_body, segment_body, strategy_definition_body, tag_type_body};

/// A live spoke being written.
pub(super) struct LiveSpoke<'a> {
    pub client: &'a Client,
    pub project: &'a str,
    pub target: &'a Target<'a>,
    segment_ids: Mutex<HashMap<String, i64>>,
    /// Tags (type, value) that exist on the spoke, read when the first flag is created.
    tags: OnceCell<HashSet<TagKey>>,
    /// One create per tag the spoke lacks, shared by every flag that needs it (single
    /// flight: concurrent flag creates wait for the same tag create instead of racing it).
    tag_creates: Mutex<HashMap<TagKey, Arc<OnceCell<()>>>>,
}

/// A tag as (type, value).
type TagKey = (String, String);

type Result<T> = std::result::Result<T, ClientError>;

impl<'a> LiveSpoke<'a> {
    /// Reads the spoke's segment ids (the only ids flag bodies need).
    pub async fn new(client: &'a Client, project: &'a str, target: &'a Target<'a>) -> Result<Self> {
        let segments: wire::Segments = client.get(Path::new(&["api", "admin", "segments"])).await?;
        Ok(Self {
            client,
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
        })
    }

    /// Executes one action.
    pub async fn execute(&self, a: &Action) -> std::result::Result<(), String> {
        self.run(a).await.map_err(|e| e.to_string())
    }

    async fn run(&self, a: &Action) -> Result<()> {
        let name = a.name.as_str();
        let t = self.target;
        let missing = || ClientError::Decode {
            instance: self.client.instance().to_string(),
            method: Method::GET,
            path: String::new(),
            detail: format!("{} {name} is not defined on the hub", a.kind),
        };
        match (a.kind, a.action) {
            (Kind::ContextField, verb) => {
                let c = t.context_field(name).ok_or_else(missing)?;
                self.write_named("context", name, &context_field_body(name, &c), verb)
                    .await?;
            }
            (Kind::TagType, verb) => {
                let body = tag_type_body(name, t.tag_type(name).ok_or_else(missing)?);
                self.write_named("tag-types", name, &body, verb).await?;
            }
            (Kind::Strategy, verb) => {
                let body = strategy_definition_body(name, t.strategy(name).ok_or_else(missing)?);
                self.write_named("strategies", name, &body, verb).await?;
            }
            (Kind::Segment, verb) => {
                let body = segment_body(name, t.segment(name).ok_or_else(missing)?);
                self.write_segment(name, &body, verb).await?;
            }
            (Kind::Flag, Verb::Archive) => self.archive_flag(name).await?,
            (Kind::Flag, Verb::Create) => {
                self.create_flag(name, t.flag(name).ok_or_else(missing)?)
                    .await?
            }
            (Kind::Flag, _) => {
                self.overwrite_flag(name, t.flag(name).ok_or_else(missing)?, &a.environments)
                    .await?
            }
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
            .ok_or_else(|| ClientError::Decode {
                instance: self.client.instance().to_string(),
                method: Method::GET,
                path: "/api/admin/segments".into(),
                detail: format!("segment `{name}` does not exist on the spoke"),
            })
    }

    async fn put(&self, path: Path<'_>, body: &Value) -> Result<Value> {
        self.client
            .write_idempotent(Method::PUT, path, Some(body))
            .await
    }

    /// `Some(body)` when GET answers, `None` on 404.
    async fn exists(&self, path: Path<'_>) -> Result<Option<Value>> {
        match self.client.get::<Value>(path).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
