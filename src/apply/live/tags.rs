//! Tags: created once per spoke before the flags that carry them, and a flag's tags
//! added and removed in one request.

use super::{LiveSpoke, Result};
use crate::api::body::{TagBody, TagChanges};
use crate::apply::ApplyError;
use crate::state::model::{Flag, Tag, TagSet};

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
                let list = self.api.tags().await?;
                let known = list.tags.into_iter().map(|t| (t.tag_type, t.tag_value));
                Ok::<_, ApplyError>(known.collect())
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
                let body = tag_body(t);
                self.create_checked(|| self.api.create_tag(&body), || self.api.find_tag(&body))
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
        let changes = TagChanges {
            added_tags: want.tags.difference(have_tags).map(tag_body).collect(),
            removed_tags: have_tags.difference(&want.tags).map(tag_body).collect(),
        };
        if changes.added_tags.is_empty() && changes.removed_tags.is_empty() {
            return Ok(());
        }
        Ok(self.api.update_feature_tags(flag, &changes).await?)
    }
}

pub(super) fn tag_body(t: &Tag) -> TagBody {
    TagBody {
        kind: t.kind.clone(),
        value: t.value.clone(),
    }
}
