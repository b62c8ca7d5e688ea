//! Flags: created (with their tags), overwritten (metadata, then each synced
//! environment, tags, dependencies and links) or archived.

use reqwest::Method;
use serde_json::{json, Value};

use super::tags::tag_body;
use super::{LiveSpoke, Result};
use crate::client::Path;
use crate::state::model::{Flag, FlagEnvironment, Tag};
use crate::state::wire;

impl LiveSpoke<'_> {
    /// Archives a flag (Unleash's DELETE on a project flag archives; it never deletes).
    pub(super) async fn archive_flag(&self, name: &str) -> Result<()> {
        self.client
            .write_idempotent::<Value, Value>(
                Method::DELETE,
                Path::new(&["api", "admin", "projects", self.project, "features", name]),
                None,
            )
            .await?;
        Ok(())
    }

    pub(super) async fn create_flag(&self, name: &str, flag: &Flag) -> Result<()> {
        let p = self.project;
        // The tags go with the create: one write per flag fewer than tagging it after,
        // for one write per distinct tag.
        self.ensure_tags(&flag.tags).await?;
        let tags: Vec<Value> = flag.tags.iter().map(tag_body).collect();
        let (_, found) = self
            .create_or_find(
                Path::new(&["api", "admin", "projects", p, "features"]),
                &json!({"name": name, "description": flag.description.clone().unwrap_or_default(),
                        "type": flag.kind, "impressionData": flag.impression_data, "tags": tags}),
                || {
                    self.exists(Path::new(&[
                        "api", "admin", "projects", p, "features", name,
                    ]))
                },
            )
            .await?;
        if found && !flag.tags.is_empty() {
            // Created by an attempt whose answer was lost: the flag and its tags are
            // created together, but look rather than assume.
            let have: wire::TagList = self
                .client
                .get(Path::new(&["api", "admin", "features", name, "tags"]))
                .await?;
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
            self.sync_environment(name, env, want, &[], false, None)
                .await?;
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
        let actual = self.target.actual.flags.get(name);
        if let Some(have) = actual {
            if have.kind != flag.kind
                || have.description != flag.description
                || have.impression_data != flag.impression_data
            {
                self.put(
                    Path::new(&["api", "admin", "projects", p, "features", name]),
                    &json!({"description": flag.description.clone().unwrap_or_default(), "type": flag.kind,
                            "impressionData": flag.impression_data, "stale": have.stale}),
                )
                .await?;
            }
        }
        let detail: wire::FeatureDetail = self
            .client
            .get(Path::new(&[
                "api", "admin", "projects", p, "features", name,
            ]))
            .await?;
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
