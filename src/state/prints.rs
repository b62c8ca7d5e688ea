//! A state's fingerprint object by object, to tell which objects changed between two
//! reads of one spoke. Apply needs it where spoke entries share a server (or a file):
//! what one entry writes earlier in a run changes what the next one reads, and only
//! those changes may be let through its check against the plan.
//!
//! A flag is printed in parts: its own fields (`flag`) and each environment read
//! (`flag_env`), so that an entry writing the `development` environment of a flag does not
//! vouch for a change to its `production` environment.

use std::collections::BTreeMap;

use xxhash_rust::xxh3::Xxh3;

use super::model::Flag;
use super::{HashWriter, State};

/// An object (or part of one) of a state: its kind and its name. Kinds: `state` (the
/// project and environments read), `flag` (a flag's fields but its environments),
/// `flag_env` (`NAME\nENVIRONMENT`), `taken` (a flag name taken outside the project's
/// active flags), and the scaffolding kinds as plans name them.
pub type ObjectKey = (&'static str, String);

/// Each object's hash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectPrints(BTreeMap<ObjectKey, u64>);

impl ObjectPrints {
    /// The prints of every object of `state`.
    pub fn of(state: &State) -> Self {
        let mut prints = BTreeMap::new();
        let header = (&state.project, &state.environments);
        prints.insert(("state", String::new()), hash(&header));
        let mut add = |kind: &'static str, name: String, value: u64| {
            prints.insert((kind, name), value);
        };
        for (name, f) in &state.flags {
            let own = Flag {
                environments: Default::default(),
                ..Flag::clone(f)
            };
            add("flag", name.clone(), hash(&own));
            for (env, e) in f.environments.iter() {
                add("flag_env", flag_env(name, env), hash(e));
            }
        }
        for (name, e) in &state.elsewhere {
            add("taken", name.clone(), hash(e));
        }
        for (name, c) in &state.context_fields {
            add("context_field", name.clone(), hash(c));
        }
        for (name, s) in &state.segments {
            add("segment", name.clone(), hash(s));
        }
        for (name, s) in &state.strategies {
            add("strategy", name.clone(), hash(s));
        }
        for (name, t) in &state.tag_types {
            add("tag_type", name.clone(), hash(t));
        }
        ObjectPrints(prints)
    }

    /// The print of `key`; `None` when the state does not hold it.
    pub fn get(&self, key: &ObjectKey) -> Option<u64> {
        self.0.get(key).copied()
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

/// The print of a flag's environment as Unleash creates it with the flag: disabled, no
/// strategies, no variants.
pub fn new_environment() -> u64 {
    hash(&super::model::FlagEnvironment::default())
}

/// The key of one environment of a flag.
pub fn flag_env(flag: &str, environment: &str) -> String {
    format!("{flag}\n{environment}")
}

/// `key` as a message names it: `flag checkout`, `flag checkout in production`.
pub fn shown(key: &ObjectKey) -> String {
    match key {
        ("state", _) => "its environments".to_string(),
        ("flag_env", name) => match name.split_once('\n') {
            Some((flag, env)) => format!("flag {flag} in {env}"),
            None => format!("flag {name}"),
        },
        ("taken", name) => format!("flag name {name} (taken outside the project)"),
        (kind, name) => format!("{kind} {name}"),
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
    use crate::state::model::{Elsewhere, FlagEnvironment, Segment};
    use std::sync::Arc;

    fn state() -> State {
        let mut s = State {
            project: "default".into(),
            environments: vec!["development".into(), "production".into()],
            ..State::default()
        };
        let mut flag = Flag::default();
        for env in ["development", "production"] {
            flag.environments
                .insert(env.into(), FlagEnvironment::default());
        }
        s.flags.insert("a".into(), Arc::new(flag.clone()));
        s.flags.insert("b".into(), Arc::new(flag));
        s.segments.insert("beta".into(), Segment::default());
        s
    }

    fn key(kind: &'static str, name: &str) -> ObjectKey {
        (kind, name.to_string())
    }

    #[test]
    fn only_the_objects_that_differ_are_changed_a_flag_by_part() {
        let then = state();
        let mut now = state();
        let b = Arc::make_mut(now.flags.get_mut("b").unwrap());
        b.description = Some("edited".into());
        let prod = b.environments.get_mut(&"production".to_string()).unwrap();
        prod.enabled = true;
        now.segments.remove("beta");
        now.tag_types.insert("team".into(), Default::default());
        let changed = ObjectPrints::of(&then).changed(&ObjectPrints::of(&now));
        assert_eq!(
            changed,
            [
                key("flag", "b"),
                key("flag_env", "b\nproduction"),
                key("segment", "beta"),
                key("tag_type", "team"),
            ]
        );
        assert_eq!(shown(&changed[1]), "flag b in production");
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
        now.environments.pop();
        let changed = ObjectPrints::of(&then).changed(&ObjectPrints::of(&now));
        assert_eq!(
            changed,
            [
                key("flag", "a"),
                key("flag_env", "a\ndevelopment"),
                key("flag_env", "a\nproduction"),
                key("state", ""),
                key("taken", "a"),
            ]
        );
        let now = ObjectPrints::of(&now);
        assert_eq!(now.get(&key("flag", "a")), None);
        assert!(now.get(&key("taken", "a")).is_some());
    }
}
