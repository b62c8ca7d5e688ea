//! The dependency graph of a spoke's actions: context fields before the segments and flags
//! that use them; segments, custom strategies and tag types before the flags that use
//! them; parent flags before their children.
//!
//! [`order`] gives the one order in which a plan lists its actions and apply runs them:
//! topological, ties broken by kind and name so the same plan always reads the same.
//! The graph is drawn by [`crate::render::dot`].

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

/// The order of a graph's nodes, from [`order`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Every node once, each after the nodes it depends on.
    pub nodes: Vec<usize>,
    /// Groups of nodes that depend on each other, each group sorted; the edges within a
    /// group are left out of the order.
    pub cycles: Vec<Vec<usize>>,
}

/// Orders the nodes `0..deps.len()`, where `deps[i]` lists the nodes node `i` depends on:
/// each node after its dependencies, ties broken by the smaller index (callers number
/// nodes in kind-then-name order, so the same plan always reads the same). Dependency
/// cycles are reported in [`Order::cycles`], and the rest of the graph is still ordered.
pub fn order(deps: &[Vec<usize>]) -> Order {
    let nodes = topological(deps, |_, _| true);
    if nodes.len() == deps.len() {
        return Order {
            nodes,
            cycles: Vec::new(),
        };
    }
    // Only a graph with a cycle pays for finding it.
    let mut g: DiGraph<(), ()> = DiGraph::with_capacity(deps.len(), deps.len());
    for _ in deps {
        g.add_node(());
    }
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            g.add_edge(NodeIndex::new(d), NodeIndex::new(i), ());
        }
    }
    let mut group = vec![usize::MAX; deps.len()];
    let mut cycles: Vec<Vec<usize>> = tarjan_scc(&g)
        .into_iter()
        .filter(|c| c.len() > 1 || c.first().is_some_and(|&n| g.contains_edge(n, n)))
        .map(|c| {
            let mut c: Vec<usize> = c.into_iter().map(NodeIndex::index).collect();
            c.sort_unstable();
            c
        })
        .collect();
    cycles.sort();
    for (k, c) in cycles.iter().enumerate() {
        for &n in c {
            group[n] = k;
        }
    }
    let nodes = topological(deps, |from, to| {
        group[from] == usize::MAX || group[from] != group[to]
    });
    Order { nodes, cycles }
}

/// Kahn's algorithm over the edges `keep` accepts, smallest ready node first.
fn topological(deps: &[Vec<usize>], keep: impl Fn(usize, usize) -> bool) -> Vec<usize> {
    let mut indegree = vec![0usize; deps.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); deps.len()];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds.iter().filter(|&&d| keep(d, i)) {
            indegree[i] += 1;
            dependents[d].push(i);
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..deps.len())
        .filter(|&i| indegree[i] == 0)
        .map(Reverse)
        .collect();
    let mut out = Vec::with_capacity(deps.len());
    while let Some(Reverse(n)) = ready.pop() {
        out.push(n);
        for &m in &dependents[n] {
            indegree[m] -= 1;
            if indegree[m] == 0 {
                ready.push(Reverse(m));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_come_first_and_ties_break_by_index() {
        // 0 context_field:tenant, 1 segment:beta, 2 flag:alpha, 3 flag:child, 4 flag:parent
        let deps = vec![vec![], vec![0], vec![], vec![4, 1], vec![]];
        let o = order(&deps);
        assert_eq!(o.nodes, [0, 1, 2, 4, 3]);
        assert!(o.cycles.is_empty());
    }

    #[test]
    fn a_cycle_is_reported_while_the_rest_is_ordered() {
        // a <-> b, c depends on a; d depends on itself.
        let deps = vec![vec![1], vec![0], vec![0], vec![3]];
        let o = order(&deps);
        assert_eq!(o.cycles, [vec![0, 1], vec![3]]);
        assert_eq!(o.nodes.len(), 4);
        let at = |n: usize| o.nodes.iter().position(|&x| x == n).unwrap();
        assert!(at(2) > at(0), "c still comes after a: {:?}", o.nodes);
    }
}
