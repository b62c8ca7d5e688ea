//! The module graph follows the pipeline: each top-level module of `src/` uses only
//! modules of earlier stages (topology -> state -> desired -> graph -> plan -> apply ->
//! render, with the HTTP client and the Unleash API below the state reader and the
//! command line on top), so there is no cycle. Edges are the `crate::` paths in the code;
//! comments and test code (`tests.rs` files, `#[cfg(test)] mod tests` blocks, the test
//! stub) are left out: a test may render what it planned.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every top-level module, lowest first. A module may use the modules before it.
const LAYERS: &[&[&str]] = &[
    // Helpers every layer may use: server text made safe to print, private atomic files.
    &["redact", "files"],
    &["client"],
    &["api"],
    &["topology"],
    &["state"],
    // What each Unleash version can hold (on the model), which plans block.
    &["capability"],
    &["desired"],
    &["graph"],
    &["plan"],
    // Drift attribution: fills in the plan's `Drift` from the instances' event logs.
    &["drift"],
    &["pipeline"],
    &["apply"],
    &["render"],
    &["ui"],
    &["cli"],
];

/// Modules only tests use, and the crate roots.
const NOT_LAYERED: &[&str] = &["stub", "lib", "main"];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The code of a file without comments and test modules (`#[cfg(test)] mod tests {`
/// up to its closing brace, which rustfmt puts alone at the start of a line).
fn code(text: &str) -> String {
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line == "#[cfg(test)]" && lines.peek() == Some(&"mod tests {") {
            lines.by_ref().find(|l| *l == "}");
            continue;
        }
        if !line.trim_start().starts_with("//") {
            out.push(line.split(" // ").next().unwrap_or(line));
        }
    }
    out.join("\n")
}

/// The top-level modules named by `crate::` paths in `code`, `use crate::{a, b}` included.
fn used(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            out.extend(group.split(',').map(|s| ident(s.trim())));
        } else {
            out.insert(ident(rest));
        }
    }
    out.retain(|m| !m.is_empty());
    out
}

/// (module, file) -> modules it uses, for every file under `src/`.
fn edges() -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut out: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        if rel.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let top = top.trim_end_matches(".rs").to_string();
        let mut uses = used(&code(&std::fs::read_to_string(&file).unwrap()));
        uses.remove(&top);
        out.entry(top)
            .or_default()
            .insert(rel.display().to_string(), uses);
    }
    out
}

#[test]
fn every_module_uses_only_earlier_stages() {
    let mut wrong = Vec::new();
    for (module, files) in edges() {
        if NOT_LAYERED.contains(&module.as_str()) {
            continue;
        }
        let Some(own) = rank(&module) else {
            wrong.push(format!(
                "{module}: not in LAYERS; place it in its pipeline stage"
            ));
            continue;
        };
        for (file, uses) in files {
            for other in uses {
                match rank(&other) {
                    Some(r) if r < own || LAYERS[own].contains(&other.as_str()) => {}
                    Some(_) => {
                        wrong.push(format!("src/{file}: {module} uses {other}, a later stage"))
                    }
                    None if NOT_LAYERED.contains(&other.as_str()) => {
                        wrong.push(format!("src/{file}: {module} uses {other} outside tests"))
                    }
                    None => wrong.push(format!("src/{file}: {module} uses {other}, not in LAYERS")),
                }
            }
        }
    }
    assert!(wrong.is_empty(), "module graph:\n{}", wrong.join("\n"));
}

#[test]
fn the_check_sees_use_lists_paths_and_skips_comments_and_tests() {
    let text = "//! [`crate::render`]\nuse crate::{api, plan::Plan};\nfn f() { crate::state::read(); }\n#[cfg(test)]\nmod tests {\n    use crate::cli;\n}\nuse crate::desired;\n";
    let found: Vec<String> = used(&code(text)).into_iter().collect();
    assert_eq!(found, ["api", "desired", "plan", "state"]);
}
