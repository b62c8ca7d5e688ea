//! A flag's links: removed where the hub has none, created where the spoke lacks them.

use serde_json::{json, Value};

use reqwest::Method;

use super::{LiveSpoke, Result};
use crate::client::Path;
use crate::state::model::Flag;
use crate::state::wire;

impl LiveSpoke<'_> {
    pub(super) async fn sync_links(
        &self,
        flag: &str,
        want: &Flag,
        have: Option<&Flag>,
        ids: &[wire::Link],
    ) -> Result<()> {
        let p = self.project;
        let have_links = have.map(|h| h.links.as_slice()).unwrap_or_default();
        for link in ids {
            let wanted = want.links.iter().any(|l| {
                l.url == link.url && l.title == link.title.clone().filter(|t| !t.is_empty())
            });
            if let (false, Some(id)) = (wanted, &link.id) {
                self.client
                    .write_idempotent::<Value, Value>(
                        Method::DELETE,
                        Path::new(&["api", "admin", "projects", p, "features", flag, "link", id]),
                        None,
                    )
                    .await?;
            }
        }
        for link in &want.links {
            if have_links.contains(link) {
                continue;
            }
            let path = ["api", "admin", "projects", p, "features", flag, "link"];
            self.create_checked(
                Path::new(&path),
                &json!({"url": link.url, "title": link.title}),
                || async {
                    let detail: wire::FeatureDetail = self
                        .client
                        .get(Path::new(&[
                            "api", "admin", "projects", p, "features", flag,
                        ]))
                        .await?;
                    Ok(detail
                        .links
                        .iter()
                        .any(|l| l.url == link.url)
                        .then(|| json!({})))
                },
            )
            .await?;
        }
        Ok(())
    }
}
