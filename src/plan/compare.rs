//! Semantic comparison and diffs: what counts as "the same" between desired and actual.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;
use similar::{DiffTag, TextDiff};

use super::json::Text;
use crate::state::model::{Dependency, Flag, FlagEnvironment, Link, SmallMap, Strategy, TagSet};

/// The synced fields of an object as JSON, with the named keys removed.
pub(super) fn view<T: Serialize>(value: &T, drop: &[&str]) -> Value {
    let mut v = serde_json::to_value(value).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut v {
        for key in drop {
            map.shift_remove(*key);
        }
    }
    v
}

/// The synced fields of a flag, borrowed: everything but `stale`, only some environments.
/// Field for field [`Flag`]'s serialized form, so a diff reads like a snapshot.
#[derive(Serialize)]
struct FlagView<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: &'a Option<String>,
    impression_data: bool,
    #[serde(skip_serializing_if = "TagSet::is_empty")]
    tags: &'a TagSet,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    dependencies: &'a [Dependency],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    links: &'a [Link],
    environments: BTreeMap<&'a str, &'a FlagEnvironment>,
}

/// The synced view of a flag as pretty JSON: everything but `stale`, and only the given
/// environments.
pub(super) fn flag_text(flag: &Flag, environments: &[String]) -> Text {
    let Flag {
        kind,
        description,
        impression_data,
        stale: _,
        tags,
        dependencies,
        links,
        environments: all,
    } = flag;
    Text::of(&FlagView {
        kind,
        description,
        impression_data: *impression_data,
        tags,
        dependencies,
        links,
        environments: all
            .iter()
            .filter(|(name, _)| environments.contains(name))
            .map(|(name, e)| (name.as_str(), e))
            .collect(),
    })
}

/// A unified diff of two JSON views, spoke now -> after apply; `None` when equal.
pub(super) fn diff(spoke: &str, now: &Value, after: &Value) -> Option<String> {
    diff_texts(spoke, &Text::of(now), &Text::of(after))
}

/// A unified diff of two pretty JSON texts, spoke now -> after apply; `None` when equal.
///
/// The text is what similar's `unified_diff()` with three lines of context prints, written
/// straight into one string: formatting through `Display` was a third of the cost of a
/// drifted flag's diff. The lines come from the serializer, not from splitting the text.
pub(super) fn diff_texts(spoke: &str, old: &Text, new: &Text) -> Option<String> {
    if old.as_str() == new.as_str() {
        return None;
    }
    Some(unified_diff(spoke, &old.lines(), &new.lines()))
}

/// The unified diff of two texts' lines (similar's, three lines of context).
fn unified_diff(spoke: &str, old: &[&str], new: &[&str]) -> String {
    let diff = TextDiff::from_slices(old, new);
    let mut out = String::with_capacity(256);
    for (i, group) in diff.grouped_ops(3).iter().enumerate() {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            continue;
        };
        if i == 0 {
            let _ = writeln!(out, "--- {spoke} (now)\n+++ {spoke} (after apply)");
        }
        out.push_str("@@ -");
        hunk_range(&mut out, first.old_range().start, last.old_range().end);
        out.push_str(" +");
        hunk_range(&mut out, first.new_range().start, last.new_range().end);
        out.push_str(" @@\n");
        for op in group {
            let (tag, old_range, new_range) = op.as_tag_tuple();
            let (removed, added) = match tag {
                DiffTag::Equal => {
                    push_lines(&mut out, ' ', &old[old_range]);
                    continue;
                }
                DiffTag::Delete => (old_range, 0..0),
                DiffTag::Insert => (0..0, new_range),
                DiffTag::Replace => (old_range, new_range),
            };
            push_lines(&mut out, '-', &old[removed]);
            push_lines(&mut out, '+', &new[added]);
        }
    }
    out
}

/// A hunk's line range as unified diffs print it: `start,len`, just `start` for one line,
/// and the line before for an empty range.
fn hunk_range(out: &mut String, start: usize, end: usize) {
    let len = end.saturating_sub(start);
    let _ = match len {
        1 => write!(out, "{}", start + 1),
        0 => write!(out, "{start},0"),
        _ => write!(out, "{},{len}", start + 1),
    };
}

fn push_lines(out: &mut String, sign: char, lines: &[&str]) {
    for line in lines {
        out.push(sign);
        out.push_str(line);
        out.push('\n');
    }
}

/// The strategy Unleash adds when a flag is enabled in an environment where it has no
/// enabled strategy (see `updateEnabled` in Unleash's feature-toggle service).
fn server_default_strategy(flag: &str) -> Strategy {
    Strategy {
        name: "flexibleRollout".into(),
        parameters: SmallMap::from_iter([
            ("groupId".to_string(), flag.to_string()),
            ("rollout".to_string(), "100".to_string()),
            ("stickiness".to_string(), "default".to_string()),
        ]),
        ..Strategy::default()
    }
}

/// Whether `actual` is what a spoke holds after writing `desired` in one environment:
/// equal, or equal but for the default strategy the server adds on enabling a flag that
/// has no enabled strategy.
pub(super) fn env_matches(flag: &str, desired: &FlagEnvironment, actual: &FlagEnvironment) -> bool {
    if desired == actual {
        return true;
    }
    let server_adds = desired.enabled && desired.strategies.iter().all(|s| s.disabled);
    if !server_adds || actual.strategies.len() != desired.strategies.len() + 1 {
        return false;
    }
    let default = server_default_strategy(flag);
    (0..actual.strategies.len()).any(|i| {
        if actual.strategies[i] != default {
            return false;
        }
        let mut rest = actual.clone();
        rest.strategies.remove(i);
        &rest == desired
    })
}

/// The flag as it will be on the spoke after apply, for comparison with `actual`: the
/// desired flag, but where an environment already matches semantically, the actual one
/// (so that no diff is shown for a server-side normalization).
pub(super) fn expected_flag(name: &str, desired: &Flag, actual: &Flag) -> Flag {
    let mut expected = desired.clone();
    for (env, want) in expected.environments.iter_mut() {
        if let Some(have) = actual.environments.get(env) {
            if env_matches(name, want, have) {
                want.clone_from(have);
            }
        }
    }
    expected.stale = actual.stale;
    expected
}

/// What differs between two flags' synced fields, in words (for the action's reason);
/// empty when they are the same, the server's default strategy on enable included.
pub(super) fn flag_differences(
    name: &str,
    desired: &Flag,
    actual: &Flag,
    environments: &[String],
) -> Vec<String> {
    let mut out = Vec::new();
    if desired.kind != actual.kind {
        out.push("type".to_string());
    }
    if desired.description != actual.description {
        out.push("description".to_string());
    }
    if desired.impression_data != actual.impression_data {
        out.push("impression data".to_string());
    }
    if desired.tags != actual.tags {
        out.push("tags".to_string());
    }
    if desired.dependencies != actual.dependencies {
        out.push("dependencies".to_string());
    }
    if desired.links != actual.links {
        out.push("links".to_string());
    }
    for env in environments {
        let (d, a) = (desired.environments.get(env), actual.environments.get(env));
        let (Some(d), Some(a)) = (d, a) else {
            if d != a {
                out.push(format!("{env}: environment"));
            }
            continue;
        };
        if env_matches(name, d, a) {
            continue;
        }
        if d.enabled != a.enabled {
            out.push(format!(
                "{env}: {}",
                if d.enabled { "enable" } else { "disable" }
            ));
        }
        if d.strategies != a.strategies {
            out.push(format!("{env}: strategies"));
        }
        if d.variants != a.variants {
            out.push(format!("{env}: variants"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_are_what_similar_prints() {
        let base: Vec<String> = (0..40).map(|i| format!("  \"line {i}\": {i},")).collect();
        let text = |lines: &[String]| lines.iter().map(|l| format!("{l}\n")).collect::<String>();
        let mut cases = vec![];
        // One change, changes far apart (two hunks), changes near each other (one hunk),
        // insertions and deletions at both ends, everything replaced.
        for edits in [
            vec![(20, Some("changed"))],
            vec![(2, Some("a")), (30, Some("b"))],
            vec![(10, Some("a")), (14, None), (15, Some("c"))],
            vec![(0, None), (39, None)],
            vec![(0, Some("first")), (39, Some("last"))],
        ] {
            let mut new = base.clone();
            for (at, edit) in edits.iter().rev() {
                match edit {
                    Some(v) => new[*at] = v.to_string(),
                    None => {
                        new.remove(*at);
                    }
                }
            }
            cases.push((text(&base), text(&new)));
        }
        cases.push((text(&base), text(&base[..5])));
        cases.push((text(&base[..5]), text(&base)));
        cases.push((String::new(), text(&base[..2])));
        cases.push((text(&base[..2]), String::new()));
        cases.push(("x\n".into(), "y\n".into()));
        // Repetitive lines, as pretty JSON has (closing brackets, repeated objects), where
        // a change could be placed in more than one way: random edits, fixed seed.
        let vocab = ["{", "}", "},", "\"a\": 1,", "\"b\": [", "],", "]"];
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..500 {
            let old: Vec<String> = (0..rng.usize(0..30))
                .map(|_| vocab[rng.usize(..vocab.len())].to_string())
                .collect();
            let mut new = old.clone();
            for _ in 0..rng.usize(1..4) {
                let at = rng.usize(0..=new.len());
                let line = vocab[rng.usize(..vocab.len())].to_string();
                match rng.u8(0..3) {
                    0 => new.insert(at, line),
                    1 if at < new.len() => {
                        new.remove(at);
                    }
                    _ if at < new.len() => new[at] = line,
                    _ => {}
                }
            }
            cases.push((text(&old), text(&new)));
        }
        for (old, new) in cases {
            let expected = TextDiff::from_lines(&old, &new)
                .unified_diff()
                .context_radius(3)
                .header("s (now)", "s (after apply)")
                .to_string();
            let (old_lines, new_lines): (Vec<&str>, Vec<&str>) =
                (old.lines().collect(), new.lines().collect());
            let ours = unified_diff("s", &old_lines, &new_lines);
            assert_eq!(ours, expected, "{old:?} -> {new:?}");
        }
    }

    #[test]
    fn json_diffs_are_what_similar_prints_for_the_pretty_texts() {
        let now = serde_json::json!({"name": "f", "strategies": [{"rollout": "50"}], "n": 1});
        let after = serde_json::json!({"name": "f", "strategies": [{"rollout": "7"}, {}]});
        let text = |v: &Value| format!("{}\n", serde_json::to_string_pretty(v).unwrap());
        let expected = TextDiff::from_lines(&text(&now), &text(&after))
            .unified_diff()
            .header("s (now)", "s (after apply)")
            .to_string();
        assert_eq!(diff("s", &now, &after), Some(expected));
        assert_eq!(diff("s", &now, &now), None);
    }

    fn env(enabled: bool, strategies: Vec<Strategy>) -> FlagEnvironment {
        FlagEnvironment {
            enabled,
            strategies,
            variants: vec![],
        }
    }

    #[test]
    fn the_servers_default_strategy_on_enable_is_expected() {
        let want = env(true, vec![]);
        let have = env(true, vec![server_default_strategy("f")]);
        assert!(env_matches("f", &want, &have));
        // ...but only when the server would add it, and only that strategy.
        assert!(!env_matches("f", &env(false, vec![]), &have));
        let mut other = server_default_strategy("f");
        other.parameters.insert("rollout".into(), "50".into());
        assert!(!env_matches("f", &want, &env(true, vec![other])));
        let disabled = Strategy {
            name: "default".into(),
            disabled: true,
            ..Strategy::default()
        };
        assert!(env_matches(
            "f",
            &env(true, vec![disabled.clone()]),
            &env(true, vec![disabled, server_default_strategy("f")])
        ));
    }
}
