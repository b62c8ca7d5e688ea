//! What apply writes to one spoke: the objects the plan's actions carry (derived once, by
//! the planner), and the spoke's state as read right before the first write (the state
//! the plan was made from: its fingerprint is the plan's).

use super::ApplyError;
use crate::plan::{Action, Object};
use crate::state::model::{Flag, State};
use crate::topology::Spoke;

/// One spoke being applied.
pub(crate) struct Target<'a> {
    /// The spoke's state as read right before the first write.
    pub actual: &'a State,
    /// Spoke environments synced, sorted.
    pub environments: Vec<String>,
}

impl<'a> Target<'a> {
    pub fn new(spoke: &Spoke, actual: &'a State) -> Self {
        Self {
            actual,
            environments: spoke.synced_environments(),
        }
    }
}

/// The flag as a snapshot-file spoke should hold it as a whole: `flag` (the synced
/// environments), the other environments and `stale` as the spoke `actual` has them.
pub(crate) fn whole_flag(actual: &State, name: &str, flag: &Flag) -> Flag {
    let mut flag = flag.clone();
    if let Some(have) = actual.flags.get(name) {
        flag.stale = have.stale;
        for (env, e) in have.environments.iter() {
            flag.environments
                .entry(env.clone())
                .or_insert_with(|| e.clone());
        }
    } else {
        flag.stale = false;
        for env in &actual.environments {
            flag.environments.entry(env.clone()).or_default();
        }
    }
    flag
}

/// The object a create or an overwrite writes; an action that carries none (or another
/// kind than it names) has nothing to write.
pub(crate) fn object(a: &Action) -> Result<&Object, ApplyError> {
    let kind_matches = |o: &Object| {
        use crate::plan::Kind;
        matches!(
            (o, a.kind),
            (Object::ContextField(_), Kind::ContextField)
                | (Object::TagType(_), Kind::TagType)
                | (Object::Strategy(_), Kind::Strategy)
                | (Object::Segment(_), Kind::Segment)
                | (Object::Flag(_), Kind::Flag)
        )
    };
    a.object
        .get()
        .filter(|o| kind_matches(o))
        .ok_or_else(|| ApplyError::NotOnHub {
            kind: a.kind,
            name: a.name.clone(),
        })
}
