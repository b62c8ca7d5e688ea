//! Tags: created once per spoke before the flags that carry them, and a flag's tags
//! added and removed in one request.

use serde_json::{json, Value};

use super::{LiveSpoke, Result};
use crate::client::{ClientError, Path};
use crate::state::model::{Flag, Tag, TagSet};
use crate::state::wire;

impl LiveSpoke<'_> {
    /// Makes sure the tags exist on the spoke as tags (not yet on any flag), so that a
    /// flag can be created with them: Unleash creates a flag's tags with it only if they
    /// exist (otherwise the whole create fails). Each tag is created once per spoke.
    pub(super) async fn ensure_tags(&self, tags: &TagSet) -> Result<()> {
        if tags.is_empty() {
            return Ok(());
        }
        let known = self
            .tags
            .get_or_try_init(|| async {
                let list: wire::TagList = self
                    .client
                    .get(Path::new(&["api", "admin", "tags"]))
                    .await?;
                let known = list.tags.into_iter().map(|t| (t.tag_type, t.tag_value));
                Ok::<_, ClientError>(known.collect())
            })
            .await?;
        for t in tags {
            let key = (t.kind.clone(), t.value.clone());
            if known.contains(&key) {
                continue;
            }
            let once = self
                .tag_creates
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(key)
                .or_default()
                .clone();
            once.get_or_try_init(|| async {
                self.create_checked(Path::new(&["api", "admin", "tags"]), &tag_body(t), || {
                    self.exists(Path::new(&["api", "admin", "tags", &t.kind, &t.value]))
                })
                .await
                .map(drop)
            })
            .await?;
        }
        Ok(())
    }

    pub(super) async fn sync_tags(
        &self,
        flag: &str,
        want: &Flag,
        have: Option<&Flag>,
    ) -> Result<()> {
        let empty = Default::default();
        let have_tags = have.map_or(&empty, |h| &h.tags);
        let added: Vec<Value> = want.tags.difference(have_tags).map(tag_body).collect();
        let removed: Vec<Value> = have_tags.difference(&want.tags).map(tag_body).collect();
        if added.is_empty() && removed.is_empty() {
            return Ok(());
        }
        self.put(
            Path::new(&["api", "admin", "features", flag, "tags"]),
            &json!({"addedTags": added, "removedTags": removed}),
        )
        .await?;
        Ok(())
    }
}

pub(super) fn tag_body(t: &Tag) -> Value {
    json!({"type": t.kind, "value": t.value})
}
