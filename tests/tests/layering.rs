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
            "sealing",
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
            "sync",
            "audit",
            "backup_seal",
        ],
    ),
    (
        "storage and configuration",
        &[
            "store",
            "audit_log",
            "vault",
            "case_backup",
            "accounts",
            "keys",
            "config",
        ],
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

/// The command line's modules by layer, lowest first: the shared modules, the commands
/// (`cmd::<command>`, one file each), the demo (which shows the other commands at work),
/// and `main` (the dispatch).
const CLI_LAYERS: &[(&str, &[&str])] = &[
    (
        "shared: output, argument values, the client of the node, how records read, the messages' catalogue",
        &[
            "output",
            "flags",
            "client",
            "present",
            "messages",
            "passphrase",
        ],
    ),
    ("the commands", &["cmd::*"]),
    ("the demo", &["cmd::demo"]),
    (
        "the dispatch, and the help it reads with",
        &["main", "help"],
    ),
];

/// The CLI module a file is (`cmd::<file>` under `cmd/`; `None` for `cmd/mod.rs`).
fn cli_module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).expect("under src");
    let parts: Vec<&str> = relative
        .components()
        .filter_map(|c| c.as_os_str().to_str())
        .collect();
    match parts.as_slice() {
        ["cmd", "mod.rs"] => None,
        ["cmd", file] => Some(format!("cmd::{}", file.strip_suffix(".rs")?)),
        [file] => Some(file.strip_suffix(".rs")?.to_owned()),
        _ => None,
    }
}

fn cli_layer_of(module: &str) -> Option<usize> {
    let exact = CLI_LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module));
    exact.or_else(|| {
        module
            .starts_with("cmd::")
            .then(|| CLI_LAYERS.iter().position(|(_, m)| m.contains(&"cmd::*")))
            .flatten()
    })
}

/// The CLI modules a source text uses: `crate::cmd::<command>` is the command's module,
/// `crate::<module>` a shared one.
fn cli_uses(text: &str) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    for (module, line) in uses(text) {
        if module == "cmd" {
            // `crate::cmd::<command>`: read the command's name on that line.
            let source = text.lines().nth(line - 1).unwrap_or("");
            for (at, _) in source.match_indices("crate::cmd::") {
                let name: String = source[at + "crate::cmd::".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                found.push((format!("cmd::{name}"), line));
            }
        } else {
            found.push((module, line));
        }
    }
    found
}

#[test]
fn no_command_of_the_cli_uses_another_or_a_higher_layer() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let src = root.join("cli/src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut commands = 0;
    for file in &files {
        let Some(module) = cli_module_of(&src, file) else {
            continue;
        };
        let Some(layer) = cli_layer_of(&module) else {
            problems.push(format!(
                "CLI module `{module}` is in no layer: add it to CLI_LAYERS in tests/tests/layering.rs"
            ));
            continue;
        };
        let is_command = CLI_LAYERS[layer].1.contains(&"cmd::*");
        commands += usize::from(is_command);
        let text = std::fs::read_to_string(file).expect("read source");
        for (used, line) in cli_uses(&text) {
            if used == module {
                continue;
            }
            let Some(used_layer) = cli_layer_of(&used) else {
                continue;
            };
            graph
                .entry(module.clone())
                .or_default()
                .insert(used.clone());
            let place = file.strip_prefix(&root).unwrap_or(file).display();
            if used_layer > layer {
                problems.push(format!(
                    "{place}:{line}: `{module}` ({}) uses `{used}`, of a higher layer ({})",
                    CLI_LAYERS[layer].0, CLI_LAYERS[used_layer].0
                ));
            } else if is_command && used_layer == layer {
                problems.push(format!(
                    "{place}:{line}: the command `{module}` uses another command, `{used}`: move what they share to a shared module"
                ));
            }
        }
        let outside_tests = text.split("#[cfg(test)]").next().unwrap_or("");
        if outside_tests.contains("super::") && module.starts_with("cmd::") {
            problems.push(format!(
                "{}: `{module}` uses `super::` outside its tests: name the shared module instead",
                file.strip_prefix(&root).unwrap_or(file).display()
            ));
        }
    }
    assert!(
        commands >= 15,
        "found only {commands} command modules in cli/src/cmd"
    );
    if let Some(cycle) = find_cycle(&graph) {
        problems.push(format!(
            "CLI modules use each other in a cycle: {}",
            cycle.join(" → ")
        ));
    }
    assert!(
        problems.is_empty(),
        "{} layering problem(s) in the CLI:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
