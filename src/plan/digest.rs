//! A canonical digest of a spoke's actions: what apply would do (objects, verbs, order,
//! dependencies, environments, diffs), not how a plan is worded or rendered. `apply
//! PLAN_FILE` compares the saved plan's digest with the one of the plan made again from
//! the same states.

use serde::Serialize;

use super::{Action, Kind, Verb};

/// What of an action decides what apply does.
#[derive(Serialize, PartialEq, Eq)]
struct Canonical<'a> {
    kind: Kind,
    name: &'a str,
    action: Verb,
    blocked: bool,
    depends_on: &'a [(Kind, String)],
    environments: &'a [String],
    diff: Option<&'a str>,
}

impl<'a> Canonical<'a> {
    fn of(a: &'a Action) -> Self {
        Canonical {
            kind: a.kind,
            name: &a.name,
            action: a.action,
            blocked: a.blocked,
            depends_on: &a.depends_on,
            environments: &a.environments,
            diff: a.diff.as_deref(),
        }
    }
}

/// The digest of `actions`, in order.
pub fn actions_digest(actions: &[Action]) -> String {
    let mut bytes = Vec::new();
    for a in actions {
        // Serializing plain data to memory cannot fail.
        let _ = serde_json::to_writer(&mut bytes, &Canonical::of(a));
        bytes.push(b'\n');
    }
    super::fingerprint_bytes(&bytes)
}

/// The first position where two action lists differ, with the action at that position
/// in each (`None` past the end of a list); `None` when they are equal.
pub fn first_difference<'a>(
    a: &'a [Action],
    b: &'a [Action],
) -> Option<(usize, Option<&'a Action>, Option<&'a Action>)> {
    (0..a.len().max(b.len())).find_map(|i| {
        let (x, y) = (a.get(i), b.get(i));
        let same = match (x, y) {
            (Some(x), Some(y)) => Canonical::of(x) == Canonical::of(y),
            _ => false,
        };
        (!same).then_some((i, x, y))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(name: &str, verb: Verb) -> Action {
        Action {
            kind: Kind::Flag,
            name: name.into(),
            action: verb,
            reason: crate::plan::Reason::MissingOnSpoke,
            blocked: false,
            depends_on: vec![],
            diff: None,
            environments: vec!["production".into()],
            notes: vec![],
            kept: vec![],
            object: Default::default(),
            drift: None,
        }
    }

    #[test]
    fn the_digest_follows_what_apply_does_not_the_wording() {
        let plan = vec![action("a", Verb::Create), action("b", Verb::Skip)];
        let mut reworded = plan.clone();
        reworded[0].reason = crate::plan::Reason::DiffersFromHub;
        reworded[0].notes = vec!["a note".into()];
        assert_eq!(actions_digest(&plan), actions_digest(&reworded));
        assert_eq!(first_difference(&plan, &reworded), None);

        let mut edited = plan.clone();
        edited[1].action = Verb::Overwrite;
        assert_ne!(actions_digest(&plan), actions_digest(&edited));
        assert_eq!(
            first_difference(&plan, &edited).map(|(i, _, b)| (i, b.map(|b| b.action))),
            Some((1, Some(Verb::Overwrite)))
        );
        let mut diff = plan.clone();
        diff[0].diff = Some("+ x".into());
        assert_ne!(actions_digest(&plan), actions_digest(&diff));
        let shorter = &plan[..1];
        assert_eq!(
            first_difference(&plan, shorter).map(|(i, a, b)| (i, a.is_some(), b.is_some())),
            Some((1, true, false))
        );
    }
}
