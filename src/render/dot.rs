//! A planned spoke's dependency graph as Graphviz DOT (`flagfleet graph`).

use std::fmt::Write as _;

use crate::plan::{Action, Mark};

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
        let mark = Mark::of(a);
        let id = format!("{}:{}", a.kind, a.name);
        let _ = writeln!(
            out,
            "  \"{}\" [fillcolor={}, tooltip=\"{}: {}\"];",
            escape(&id),
            mark.fill(),
            mark.verb(),
            escape(&a.reason.to_string())
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

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
