//! A flag's parent dependencies: upserted where missing or different, removed where
//! the hub has none.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{json, Value};

use super::{LiveSpoke, Result};
use crate::client::Path;
use crate::state::model::Flag;

impl LiveSpoke<'_> {
    pub(super) async fn sync_dependencies(
        &self,
        flag: &str,
        want: &Flag,
        have: Option<&Flag>,
    ) -> Result<()> {
        let p = self.project;
        let have_deps: BTreeMap<&str, _> = have
            .map(|h| {
                h.dependencies
                    .iter()
                    .map(|d| (d.feature.as_str(), d))
                    .collect()
            })
            .unwrap_or_default();
        for d in &want.dependencies {
            if have_deps.get(d.feature.as_str()) == Some(&d) {
                continue;
            }
            // The endpoint upserts: repeating it is harmless.
            self.client
                .write_idempotent::<Value, Value>(
                    Method::POST,
                    Path::new(&["api", "admin", "projects", p, "features", flag, "dependencies"]),
                    Some(&json!({"feature": d.feature, "enabled": d.enabled, "variants": d.variants})),
                )
                .await?;
        }
        for parent in have_deps.keys() {
            if !want.dependencies.iter().any(|d| d.feature == *parent) {
                self.client
                    .write_idempotent::<Value, Value>(
                        Method::DELETE,
                        Path::new(&[
                            "api",
                            "admin",
                            "projects",
                            p,
                            "features",
                            flag,
                            "dependencies",
                            parent,
                        ]),
                        None,
                    )
                    .await?;
            }
        }
        Ok(())
    }
}
