//! Scaffolding: context fields, tag types, strategy definitions and segments, which
//! Unleash keys by name (segments also by an id the spoke gives them).

use super::strategies::constraint_body;
use super::{LiveSpoke, Result};
use crate::api::body::{
    ContextFieldBody, LegalValueBody, ParameterBody, SegmentBody, StrategyDefinitionBody,
    TagTypeBody,
};
use crate::api::{Created, Named, NamedBody};
use crate::client::ClientError;
use crate::plan::Verb;
use crate::state::model::{ContextField, Segment, StrategyDefinition, TagType};

impl LiveSpoke<'_> {
    /// Creates or overwrites an object that Unleash keys by name.
    pub(super) async fn write_named(
        &self,
        kind: Named,
        name: &str,
        body: &NamedBody,
        verb: Verb,
    ) -> Result<()> {
        if verb == Verb::Create {
            self.create_checked(
                || self.api.create_named(kind, body),
                || self.api.find_named(kind, name),
            )
            .await?;
        } else {
            self.api.update_named(kind, name, body).await?;
        }
        Ok(())
    }

    /// Creates a segment (recording the id the spoke gives it) or overwrites it by its id.
    pub(super) async fn write_segment(
        &self,
        name: &str,
        body: &SegmentBody,
        verb: Verb,
    ) -> Result<()> {
        if verb == Verb::Create {
            let created = self
                .create_checked(|| self.api.create_segment(body), || self.find_segment(name))
                .await?;
            if let Some(id) = created.number_id() {
                self.lock_ids().insert(name.to_string(), id);
            }
        } else {
            let id = self.segment_id(name)?;
            self.api.update_segment(id, body).await?;
        }
        Ok(())
    }

    async fn find_segment(&self, name: &str) -> std::result::Result<Option<Created>, ClientError> {
        let segments = self.api.segments().await?;
        Ok(segments
            .segments
            .into_iter()
            .find(|s| s.name == name)
            .map(|s| Created::found(s.id)))
    }
}

pub(super) fn context_field_body(name: &str, c: &ContextField) -> ContextFieldBody {
    ContextFieldBody {
        name: name.to_string(),
        description: c.description.clone().unwrap_or_default(),
        stickiness: c.stickiness,
        legal_values: c
            .legal_values
            .iter()
            .map(|l| LegalValueBody {
                value: l.value.clone(),
                description: l.description.clone(),
            })
            .collect(),
    }
}

pub(super) fn tag_type_body(name: &str, t: &TagType) -> TagTypeBody {
    TagTypeBody {
        name: name.to_string(),
        description: t.description.clone().unwrap_or_default(),
        icon: t.icon.clone(),
        color: t.color.clone(),
    }
}

pub(super) fn strategy_definition_body(
    name: &str,
    s: &StrategyDefinition,
) -> StrategyDefinitionBody {
    StrategyDefinitionBody {
        name: name.to_string(),
        description: s.description.clone().unwrap_or_default(),
        parameters: s
            .parameters
            .iter()
            .map(|p| ParameterBody {
                name: p.name.clone(),
                kind: p.kind.clone(),
                description: p.description.clone().unwrap_or_default(),
                required: p.required,
            })
            .collect(),
        title: s.title.clone(),
    }
}

pub(super) fn segment_body(name: &str, s: &Segment) -> SegmentBody {
    SegmentBody {
        name: name.to_string(),
        description: s.description.clone().unwrap_or_default(),
        constraints: s.constraints.iter().map(constraint_body).collect(),
    }
}
