//! A state's fingerprint object by object, to tell which objects changed between two
//! reads of one spoke. Apply needs it where spoke entries share a server (or a file):
//! what one entry writes earlier in a run changes what the next one reads, and only
//! those changes may be let through its check against the plan.

use std::collections::BTreeMap;

use xxhash_rust::xxh3::Xxh3;

use super::{HashWriter, State};

/// An object of a state: its kind as plans name it (`flag`, `segment`, ...; `state` for
/// the project and environments read) and its name.
pub type ObjectKey = (&'static str, String);

/// Each object's hash. A flag's name taken outside the project's active flags counts as
/// that flag: archiving or moving it changes the same key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectPrints(BTreeMap<ObjectKey, u64>);

impl ObjectPrints {
    /// The prints of every object of `state`.
    pub fn of(state: &State) -> Self {
        let mut prints = BTreeMap::new();
        let header = (&state.project, &state.environments);
        prints.insert(("state", String::new()), hash(&header));
        let mut add = |kind: &'static str, name: &String, value: u64| {
            prints.insert((kind, name.clone()), value);
        };
        for (name, f) in &state.flags {
            add("flag", name, hash(&("active", f)));
        }
        for (name, e) in &state.elsewhere {
            add("flag", name, hash(&("elsewhere", e)));
        }
        for (name, c) in &state.context_fields {
            add("context_field", name, hash(c));
        }
        for (name, s) in &state.segments {
            add("segment", name, hash(s));
        }
        for (name, s) in &state.strategies {
            add("strategy", name, hash(s));
        }
        for (name, t) in &state.tag_types {
            add("tag_type", name, hash(t));
        }
        ObjectPrints(prints)
    }

    /// The objects that are not the same in `now`: changed, added or gone, in key order.
    pub fn changed(&self, now: &ObjectPrints) -> Vec<ObjectKey> {
        let mut keys: Vec<&ObjectKey> = self.0.keys().chain(now.0.keys()).collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .filter(|k| self.0.get(*k) != now.0.get(*k))
            .cloned()
            .collect()
    }
}

fn hash(value: &impl serde::Serialize) -> u64 {
    let mut out = HashWriter(Xxh3::new());
    // Serializing plain structs and string-keyed maps into a hasher cannot fail.
    let _ = serde_json::to_writer(&mut out, value);
    out.0.digest()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::model::{Elsewhere, Flag, Segment};
    use std::sync::Arc;

    fn state() -> State {
        let mut s = State {
            project: "default".into(),
            environments: vec!["production".into()],
            ..State::default()
        };
        s.flags.insert("a".into(), Arc::new(Flag::default()));
        s.flags.insert("b".into(), Arc::new(Flag::default()));
        s.segments.insert("beta".into(), Segment::default());
        s
    }

    #[test]
    fn only_the_objects_that_differ_are_changed() {
        let then = state();
        let mut now = state();
        Arc::make_mut(now.flags.get_mut("b").unwrap()).description = Some("edited".into());
        now.segments.remove("beta");
        now.tag_types.insert("team".into(), Default::default());
        let changed = ObjectPrints::of(&then).changed(&ObjectPrints::of(&now));
        assert_eq!(
            changed,
            [
                ("flag", "b".to_string()),
                ("segment", "beta".to_string()),
                ("tag_type", "team".to_string())
            ]
        );
        assert!(ObjectPrints::of(&then)
            .changed(&ObjectPrints::of(&state()))
            .is_empty());
    }

    #[test]
    fn a_flag_archived_or_the_environments_read_are_changes_too() {
        let then = state();
        let mut now = state();
        now.flags.remove("a");
        now.elsewhere.insert(
            "a".into(),
            Elsewhere {
                project: "default".into(),
                archived: true,
            },
        );
        now.environments.push("development".into());
        let changed = ObjectPrints::of(&then).changed(&ObjectPrints::of(&now));
        assert_eq!(
            changed,
            [("flag", "a".to_string()), ("state", String::new())]
        );
    }
}
