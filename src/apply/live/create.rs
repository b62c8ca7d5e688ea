//! Creates that happen once: after an ambiguous failure the object is looked up before
//! the create is repeated, so a flaky network never leaves a duplicate.

use serde_json::Value;

use super::{LiveSpoke, Result};
use crate::client::Path;

impl LiveSpoke<'_> {
    /// POSTs a create; after an ambiguous failure, looks the object up with `check` and
    /// repeats the create only if it is not there.
    pub(super) async fn create_checked<F, Fut>(
        &self,
        path: Path<'_>,
        body: &Value,
        check: F,
    ) -> Result<Value>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Option<Value>>>,
    {
        Ok(self.create_or_find(path, body, check).await?.0)
    }

    /// [`Self::create_checked`], also telling whether the object was found by a lookup
    /// (`true`) rather than created by this call's answer (`false`).
    ///
    /// The client repeats a create that surely was not processed (429, 503). After an
    /// ambiguous failure (no answer, reset, 502, 504) the object is looked up and the
    /// create sent again only if it is not there, up to the client's retry budget. A
    /// refusal because the object exists (409, or Unleash's 500 for a duplicate key) is
    /// checked by the same lookup and counts as done when the object is there.
    pub(super) async fn create_or_find<F, Fut>(
        &self,
        path: Path<'_>,
        body: &Value,
        check: F,
    ) -> Result<(Value, bool)>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Option<Value>>>,
    {
        let mut repeat = 0;
        loop {
            let e = match self.client.create::<Value, _>(path.clone(), body).await {
                Ok(v) => return Ok((v, false)),
                Err(e) => e,
            };
            let instance = self.client.instance();
            if e.is_already_exists() {
                tracing::info!(%instance, "{e}; looking it up");
                return match check().await? {
                    Some(v) => Ok((v, true)),
                    None => Err(e),
                };
            }
            if !e.is_ambiguous() || repeat >= self.client.retries() {
                return Err(e);
            }
            repeat += 1;
            tracing::warn!(%instance, "{e}; checking whether the create took effect (lookup {repeat})");
            if let Some(v) = check().await? {
                return Ok((v, true));
            }
        }
    }
}
