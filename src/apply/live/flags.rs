//! Flags: created (with their tags; switched on later, see [`super::enable`]), overwritten (metadata, then each synced
//! environment, tags, dependencies and links) or archived.

use super::tags::tag_body;
use super::{LiveSpoke, Result};
use crate::api::body::{FeatureCreate, FeatureUpdate};
use crate::api::{wire, FlagEnv};
use crate::state::model::{Flag, FlagEnvironment, Tag};

impl LiveSpoke<'_> {
    /// Archives a flag (Unleash's DELETE on a project flag archives; it never deletes).
    pub(super) async fn archive_flag(&self, name: &str) -> Result<()> {
        Ok(self.api.archive_feature(self.project, name).await?)
    }

    pub(super) async fn create_flag(&self, name: &str, flag: &Flag) -> Result<()> {
        let p = self.project;
        // The tags go with the create: one write per flag fewer than tagging it after,
        // for one write per distinct tag.
        self.ensure_tags(&flag.tags).await?;
        let body = FeatureCreate {
            name,
            description: flag.description.as_deref().unwrap_or_default(),
            kind: &flag.kind,
            impression_data: flag.impression_data,
            tags: flag.tags.iter().map(tag_body).collect(),
        };
        let (_, found) = self
            .create_or_find(
                || self.api.create_feature(p, &body),
                || self.api.find_feature(p, name),
            )
            .await?;
        if found && !flag.tags.is_empty() {
            // Created by an attempt whose answer was lost: the flag and its tags are
            // created together, but look rather than assume.
            let have = self.api.feature_tags(name).await?;
            let have = Flag {
                tags: have
                    .tags
                    .into_iter()
                    .map(|t| Tag {
                        kind: t.tag_type,
                        value: t.tag_value,
                    })
                    .collect(),
                ..Flag::default()
            };
            self.sync_tags(name, flag, Some(&have)).await?;
        }
        let empty = FlagEnvironment::default();
        for env in &self.target.environments {
            let want = flag.environments.get(env).unwrap_or(&empty);
            let at = FlagEnv {
                project: p,
                flag: name,
                environment: env,
            };
            self.sync_contents(at, want, &[], None).await?;
            // Created off; switched on with the spoke's other new flags, in one request
            // per environment, once every action has run.
            if want.enabled {
                self.enable_later(env, name);
            }
        }
        self.sync_dependencies(name, flag, None).await?;
        self.sync_links(name, flag, None, &[]).await?;
        Ok(())
    }

    pub(super) async fn overwrite_flag(
        &self,
        name: &str,
        flag: &Flag,
        environments: &[String],
    ) -> Result<()> {
        let p = self.project;
        let actual = self.target.actual.flags.get(name).map(|f| &**f);
        if let Some(have) = actual {
            if have.kind != flag.kind
                || have.description != flag.description
                || have.impression_data != flag.impression_data
            {
                let body = FeatureUpdate {
                    description: flag.description.as_deref().unwrap_or_default(),
                    kind: &flag.kind,
                    impression_data: flag.impression_data,
                    stale: have.stale,
                };
                self.api.update_feature(p, name, &body).await?;
            }
        }
        let detail = self.api.feature(p, name).await?;
        let empty = FlagEnvironment::default();
        for env in environments {
            let want = flag.environments.get(env).unwrap_or(&empty);
            let current = detail.environments.iter().find(|e| &e.name == env);
            let mut have: Vec<wire::FeatureStrategy> =
                current.map(|e| e.strategies.clone()).unwrap_or_default();
            have.sort_by(wire::FeatureStrategy::by_sort_order);
            let enabled_now = current.is_some_and(|e| e.enabled);
            // Environment variants as read when apply began (what the plan compared).
            let variants_now = actual
                .and_then(|f| f.environments.get(env))
                .map(|e| &e.variants);
            self.sync_environment(name, env, want, &have, enabled_now, variants_now)
                .await?;
        }
        self.sync_tags(name, flag, actual).await?;
        self.sync_dependencies(name, flag, actual).await?;
        self.sync_links(name, flag, actual, &detail.links).await?;
        Ok(())
    }
}
