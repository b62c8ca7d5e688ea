//! The dependency graph of a spoke's actions: context fields before the segments and flags
//! that use them; segments, custom strategies and tag types before the flags that use
//! them; parent flags before their children.
//!
//! [`order`] gives the one order in which a plan lists its actions and apply runs them:
//! topological, ties broken by kind and name so the same plan always reads the same.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::fmt::Write as _;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::plan::{Action, Kind, Verb};

type Key = (Kind, String);

/// The graph of `actions`, an edge from each dependency to its dependent. Node `i` is the
/// `i`-th action in key order (kind, then name), so node order is the tie-break order.
fn build(actions: &BTreeMap<Key, Action>) -> DiGraph<(), ()> {
    let index: HashMap<&Key, usize> = actions.keys().enumerate().map(|(i, k)| (k, i)).collect();
    let mut g = DiGraph::with_capacity(actions.len(), actions.len() * 2);
    for _ in 0..actions.len() {
        g.add_node(());
    }
    for (i, a) in actions.values().enumerate() {
        for dep in &a.depends_on {
            if let Some(&from) = index.get(dep) {
                g.add_edge(NodeIndex::new(from), NodeIndex::new(i), ());
            }
        }
    }
    g
}

/// Orders `actions` so every action comes after what it depends on. Actions caught in a
/// dependency cycle are turned into blocked skips naming the cycle, and their cycle edges
/// dropped, so the rest of the plan still holds.
pub fn order(actions: &mut BTreeMap<Key, Action>) -> Vec<Key> {
    let mut g = build(actions);
    let cycles: Vec<Vec<usize>> = tarjan_scc(&g)
        .into_iter()
        .filter(|c| c.len() > 1 || c.first().is_some_and(|&n| g.contains_edge(n, n)))
        .map(|c| c.into_iter().map(NodeIndex::index).collect())
        .collect();
    if !cycles.is_empty() {
        let keys: Vec<Key> = actions.keys().cloned().collect();
        for cycle in &cycles {
            let mut members: Vec<Key> = cycle.iter().map(|&i| keys[i].clone()).collect();
            members.sort();
            let names: Vec<String> = members.iter().map(|(k, n)| format!("{k}:{n}")).collect();
            let reason = format!("dependency cycle: {}", names.join(" -> "));
            for key in &members {
                if let Some(a) = actions.get_mut(key) {
                    a.action = Verb::Skip;
                    a.blocked = true;
                    a.reason.clone_from(&reason);
                    a.diff = None;
                    a.environments.clear();
                    a.depends_on.retain(|d| !members.contains(d));
                }
            }
        }
        g = build(actions);
    }
    let mut indegree: Vec<usize> = g
        .node_indices()
        .map(|n| g.neighbors_directed(n, petgraph::Incoming).count())
        .collect();
    // Smallest node first: node order is key order, so ties break by kind, then name.
    let mut ready: BinaryHeap<Reverse<NodeIndex>> = g
        .node_indices()
        .filter(|n| indegree[n.index()] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(g.node_count());
    while let Some(Reverse(n)) = ready.pop() {
        order.push(n.index());
        for m in g.neighbors_directed(n, petgraph::Outgoing) {
            indegree[m.index()] -= 1;
            if indegree[m.index()] == 0 {
                ready.push(Reverse(m));
            }
        }
    }
    let keys: Vec<&Key> = actions.keys().collect();
    order.into_iter().map(|i| keys[i].clone()).collect()
}

/// The actions of one spoke as a Graphviz DOT graph: nodes `kind:name`, coloured by action.
pub fn to_dot(spoke: &str, actions: &[Action]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph \"{}\" {{", escape(spoke));
    let _ = writeln!(out, "  rankdir=LR;");
    let _ = writeln!(
        out,
        "  node [shape=box, style=filled, fontname=\"Helvetica\"];"
    );
    for a in actions {
        let colour = match (a.action, a.blocked) {
            (Verb::Create, _) => "palegreen",
            (Verb::Overwrite, _) => "khaki",
            (Verb::Archive, _) => "lightblue",
            (Verb::Skip, true) => "lightcoral",
            (Verb::Skip, false) => "lightgrey",
        };
        let id = format!("{}:{}", a.kind, a.name);
        let _ = writeln!(
            out,
            "  \"{}\" [fillcolor={colour}, tooltip=\"{}: {}\"];",
            escape(&id),
            verb(a),
            escape(&a.reason)
        );
    }
    for a in actions {
        for (kind, name) in &a.depends_on {
            let _ = writeln!(
                out,
                "  \"{}\" -> \"{}\";",
                escape(&format!("{kind}:{name}")),
                escape(&format!("{}:{}", a.kind, a.name))
            );
        }
    }
    out.push_str("}\n");
    out
}

fn verb(a: &Action) -> &'static str {
    match (a.action, a.blocked) {
        (Verb::Create, _) => "create",
        (Verb::Overwrite, _) => "overwrite",
        (Verb::Archive, _) => "archive",
        (Verb::Skip, true) => "blocked",
        (Verb::Skip, false) => "skip",
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(kind: Kind, name: &str, deps: &[(Kind, &str)]) -> (Key, Action) {
        let action = Action {
            kind,
            name: name.into(),
            action: Verb::Create,
            reason: "missing on spoke".into(),
            blocked: false,
            depends_on: deps.iter().map(|(k, n)| (*k, n.to_string())).collect(),
            diff: None,
            environments: vec![],
            notes: vec![],
        };
        ((kind, name.into()), action)
    }

    #[test]
    fn dependencies_come_first_and_ties_break_by_kind_then_name() {
        let mut actions: BTreeMap<Key, Action> = [
            a(
                Kind::Flag,
                "child",
                &[(Kind::Flag, "parent"), (Kind::Segment, "beta")],
            ),
            a(Kind::Flag, "parent", &[]),
            a(Kind::Segment, "beta", &[(Kind::ContextField, "tenant")]),
            a(Kind::ContextField, "tenant", &[]),
            a(Kind::Flag, "alpha", &[]),
        ]
        .into_iter()
        .collect();
        let order: Vec<String> = order(&mut actions)
            .into_iter()
            .map(|(k, n)| format!("{k}:{n}"))
            .collect();
        assert_eq!(
            order,
            [
                "context_field:tenant",
                "segment:beta",
                "flag:alpha",
                "flag:parent",
                "flag:child"
            ]
        );
    }

    #[test]
    fn a_cycle_is_blocked_and_named_while_the_rest_is_ordered() {
        let mut actions: BTreeMap<Key, Action> = [
            a(Kind::Flag, "a", &[(Kind::Flag, "b")]),
            a(Kind::Flag, "b", &[(Kind::Flag, "a")]),
            a(Kind::Flag, "c", &[(Kind::Flag, "a")]),
        ]
        .into_iter()
        .collect();
        let order = order(&mut actions);
        assert_eq!(order.len(), 3);
        let a_action = &actions[&(Kind::Flag, "a".to_string())];
        assert!(a_action.blocked);
        assert_eq!(a_action.reason, "dependency cycle: flag:a -> flag:b");
        assert_eq!(order.last().unwrap().1, "c");
    }
}
