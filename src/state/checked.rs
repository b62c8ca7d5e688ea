//! Every name of a state read from an instance checked against what Unleash allows
//! ([`crate::api::names`]) before any of it is used.

use super::model::State;
use crate::api::names::{check, BadName, NameKind};

/// Checks every name in a state read from an instance: the project, environments, flags
/// (with their tags, parents and the strategies, segments and context fields they use),
/// and the scaffolding. Names of flags outside the project (`elsewhere`) that Unleash
/// would not allow are dropped: no flag of the hub can bear them.
pub fn check_state(state: &mut State) -> Result<(), BadName> {
    check(NameKind::Project, &state.project)?;
    for env in &state.environments {
        check(NameKind::Environment, env)?;
    }
    for (name, flag) in &state.flags {
        check(NameKind::Flag, name)?;
        for tag in flag.tags.iter() {
            check(NameKind::TagType, &tag.kind)?;
            check(NameKind::TagValue, &tag.value)?;
        }
        for parent in &flag.dependencies {
            check(NameKind::Flag, &parent.feature)?;
        }
        for (env, fe) in flag.environments.iter() {
            check(NameKind::Environment, env)?;
            for strategy in &fe.strategies {
                check(NameKind::Strategy, &strategy.name)?;
                for segment in &strategy.segments {
                    check(NameKind::Segment, segment)?;
                }
                for c in &strategy.constraints {
                    check(NameKind::ContextField, &c.context_name)?;
                }
            }
        }
    }
    for name in state.context_fields.keys() {
        check(NameKind::ContextField, name)?;
    }
    for (name, segment) in &state.segments {
        check(NameKind::Segment, name)?;
        for c in &segment.constraints {
            check(NameKind::ContextField, &c.context_name)?;
        }
    }
    for name in state.strategies.keys() {
        check(NameKind::Strategy, name)?;
    }
    for name in state.tag_types.keys() {
        check(NameKind::TagType, name)?;
    }
    state
        .elsewhere
        .retain(|name, _| NameKind::Flag.allows(name));
    Ok(())
}
