//! Scaffolding: context fields, tag types, strategy definitions and segments, which
//! Unleash keys by name (segments also by an id the spoke gives them).

use serde_json::{json, Value};

use super::strategies::constraint_body;
use super::{LiveSpoke, Result};
use crate::client::Path;
use crate::plan::Verb;
use crate::state::model::{ContextField, Segment, StrategyDefinition, TagType};
use crate::state::wire;

impl LiveSpoke<'_> {
    /// Creates (`POST /api/admin/{collection}`) or overwrites
    /// (`PUT /api/admin/{collection}/{name}`) an object that Unleash keys by name.
    pub(super) async fn write_named(
        &self,
        collection: &str,
        name: &str,
        body: &Value,
        verb: Verb,
    ) -> Result<()> {
        let item = Path::new(&["api", "admin", collection, name]);
        if verb == Verb::Create {
            let list = Path::new(&["api", "admin", collection]);
            self.create_checked(list, body, || self.exists(item.clone()))
                .await?;
        } else {
            self.put(item, body).await?;
        }
        Ok(())
    }

    /// Creates a segment (recording the id the spoke gives it) or overwrites it by its id.
    pub(super) async fn write_segment(&self, name: &str, body: &Value, verb: Verb) -> Result<()> {
        if verb == Verb::Create {
            let created = self
                .create_checked(Path::new(&["api", "admin", "segments"]), body, || {
                    self.find_segment(name)
                })
                .await?;
            if let Some(id) = created.get("id").and_then(Value::as_i64) {
                self.lock_ids().insert(name.to_string(), id);
            }
        } else {
            let id = self.segment_id(name)?;
            let id = id.to_string();
            self.put(Path::new(&["api", "admin", "segments", &id]), body)
                .await?;
        }
        Ok(())
    }

    async fn find_segment(&self, name: &str) -> Result<Option<Value>> {
        let segments: wire::Segments = self
            .client
            .get(Path::new(&["api", "admin", "segments"]))
            .await?;
        Ok(segments
            .segments
            .into_iter()
            .find(|s| s.name == name)
            .map(|s| json!({"id": s.id})))
    }
}

pub(super) fn context_field_body(name: &str, c: &ContextField) -> Value {
    json!({
        "name": name,
        "description": c.description.clone().unwrap_or_default(),
        "stickiness": c.stickiness,
        "legalValues": c.legal_values.iter().map(|l| match &l.description {
            Some(d) => json!({"value": l.value, "description": d}),
            None => json!({"value": l.value}),
        }).collect::<Vec<_>>(),
    })
}

pub(super) fn tag_type_body(name: &str, t: &TagType) -> Value {
    let mut body = json!({"name": name, "description": t.description.clone().unwrap_or_default()});
    if let Some(icon) = &t.icon {
        body["icon"] = json!(icon);
    }
    if let Some(color) = &t.color {
        body["color"] = json!(color);
    }
    body
}

pub(super) fn strategy_definition_body(name: &str, s: &StrategyDefinition) -> Value {
    let mut body = json!({
        "name": name,
        "description": s.description.clone().unwrap_or_default(),
        "parameters": s.parameters.iter().map(|p| json!({
            "name": p.name, "type": p.kind,
            "description": p.description.clone().unwrap_or_default(), "required": p.required,
        })).collect::<Vec<_>>(),
    });
    if let Some(title) = &s.title {
        body["title"] = json!(title);
    }
    body
}

pub(super) fn segment_body(name: &str, s: &Segment) -> Value {
    json!({
        "name": name,
        "description": s.description.clone().unwrap_or_default(),
        "constraints": s.constraints.iter().map(constraint_body).collect::<Vec<_>>(),
    })
}
