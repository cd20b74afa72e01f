//! The layers of the node (the core crate `node/core` and the runtime `node`), checked: a module may use modules of its own layer or of
//! lower ones, never of a higher one, and no modules use each other in a cycle. The
//! picture is in docs/architecture.md ("Layers"); a new module gets a line in [`LAYERS`].
//!
//! What counts as a use: a `crate::<module>` path or a `use crate::{…}` list outside
//! comments and outside the test module at the end of a file (tests may reach anything).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The node crate's top-level modules by layer, lowest first.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "foundations: text, reference data, ids and keys, bounded decoding",
        &[
            "text",
            "reference",
            "durable",
            "parallel",
            "automerge_bounds",
            "automerge_guard",
            "identity",
            "ids",
        ],
    ),
    (
        "the domain: records, signed changes, documents, membership, referrals, formats",
        &[
            "model",
            "envelope",
            "automerge_de",
            "directory",
            "membership",
            "referral",
            "cartography",
            "document",
            "protocol",
            "status",
        ],
    ),
    (
        "storage and configuration",
        &["store", "vault", "keys", "config"],
    ),
    (
        "the documents actor and what it writes",
        &["node", "backup"],
    ),
    (
        "services around the actor",
        &["network", "api", "control", "archive", "repair"],
    ),
    ("wiring", &["runtime"]),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read source folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`None` for the crate root).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).expect("under src");
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_owned())
}

/// The modules a source text uses, with the line of each use.
fn uses(text: &str) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    let mut in_list = false;
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with("#[cfg(test)]") {
            // The test module closes the file.
            break;
        }
        if line.starts_with("//") {
            continue;
        }
        let mut rest = line;
        if in_list {
            // Inside a multi-line `use crate::{ … }`: each item's first segment.
            for item in rest.split(',') {
                let item = item.trim().trim_end_matches("};").trim_end_matches('}');
                let head: String = item
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !head.is_empty() && head != "self" {
                    found.push((head, number + 1));
                }
            }
            if line.contains('}') {
                in_list = false;
            }
            continue;
        }
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(list) = rest.strip_prefix('{') {
                let close = list.find('}');
                let inside = &list[..close.unwrap_or(list.len())];
                for item in inside.split(',') {
                    let head: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !head.is_empty() && head != "self" {
                        found.push((head, number + 1));
                    }
                }
                if close.is_none() {
                    in_list = true;
                }
            } else {
                let head: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !head.is_empty() {
                    found.push((head, number + 1));
                }
            }
        }
    }
    found
}

/// A cycle in `graph`, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, graph, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

#[test]
fn no_module_of_the_node_uses_a_higher_layer_or_a_cycle() {
    // The core crate holds the two lowest layers but for the runtime's own helpers
    // (durable writes, parallel work), and nothing above them.
    let core = Path::new(env!("CARGO_MANIFEST_DIR")).join("../node/core/src");
    let mut in_core = Vec::new();
    sources(&core, &mut in_core);
    for file in &in_core {
        if let Some(module) = module_of(&core, file) {
            assert!(
                layer_of(&module).is_some_and(|layer| layer <= 1),
                "the core crate holds `{module}`, which is not of its layers"
            );
        }
    }
    // The core crate's modules and the runtime's share one namespace: the runtime
    // re-exports every core module under its own name.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for src in [root.join("node/core/src"), root.join("node/src")] {
        let mut found = Vec::new();
        sources(&src, &mut found);
        files.extend(found.into_iter().map(|file| (src.clone(), file)));
    }
    files.sort();
    let mut problems = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (src, file) in &files {
        let src = src.as_path();
        let Some(module) = module_of(src, file) else {
            continue;
        };
        let Some(layer) = layer_of(&module) else {
            problems.push(format!(
                "module `{module}` is in no layer: add it to LAYERS in tests/tests/layering.rs and to docs/architecture.md"
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).expect("read source");
        for (used, line) in uses(&text) {
            if used == module || used == "unix_now" {
                continue;
            }
            let Some(used_layer) = layer_of(&used) else {
                continue;
            };
            graph
                .entry(module.clone())
                .or_default()
                .insert(used.clone());
            if used_layer > layer {
                problems.push(format!(
                    "{}:{line}: `{module}` ({}) uses `{used}`, of a higher layer ({})",
                    file.strip_prefix(&root).unwrap_or(file).display(),
                    LAYERS[layer].0,
                    LAYERS[used_layer].0
                ));
            }
        }
    }
    if let Some(cycle) = find_cycle(&graph) {
        problems.push(format!(
            "modules use each other in a cycle: {}",
            cycle.join(" → ")
        ));
    }
    assert!(
        problems.is_empty(),
        "{} layering problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn uses_are_read_from_paths_and_lists() {
    let text = "use crate::a::B;\nuse crate::{b, c::D};\nuse crate::{\n    d::E,\n    e,\n};\n// crate::f\nfn x() { crate::g::h(); }\n#[cfg(test)]\nmod tests { use crate::z; }\n";
    let found: Vec<String> = uses(text).into_iter().map(|(m, _)| m).collect();
    assert_eq!(found, ["a", "b", "c", "d", "e", "g"]);
    let mut graph = BTreeMap::new();
    graph.insert("a".to_owned(), BTreeSet::from(["b".to_owned()]));
    graph.insert("b".to_owned(), BTreeSet::from(["a".to_owned()]));
    assert!(find_cycle(&graph).is_some());
    graph.remove("b");
    assert!(find_cycle(&graph).is_none());
}
