//! A flag's links: removed where the hub has none, created where the spoke lacks them.

use super::{LiveSpoke, Result};
use crate::api::body::LinkBody;
use crate::api::{wire, Created};
use crate::state::model::Flag;

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
                self.api.delete_link(p, flag, id).await?;
            }
        }
        for link in &want.links {
            if have_links.contains(link) {
                continue;
            }
            let body = LinkBody {
                url: link.url.clone(),
                title: link.title.clone(),
            };
            self.create_checked(
                || self.api.create_link(p, flag, &body),
                || async {
                    let detail = self.api.feature(p, flag).await?;
                    let there = detail.links.iter().any(|l| l.url == link.url);
                    Ok(there.then(Created::default))
                },
            )
            .await?;
        }
        Ok(())
    }
}
