//! The house has floors: src/main.rs declares the top-level modules lowest first, and a module
//! may import only from the modules declared before it (never from a higher floor), and no two
//! files import each other, directly or round a circle. Read from the source, without building
//! anything; the test code of each file (its `mod tests`) is left out.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::repo_root;

/// Every module of src/ (`render::rules`, `cluster`, …) and the text of its file, less its tests.
fn modules() -> BTreeMap<String, String> {
    let src = repo_root().join("src");
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into()).collect();
            if matches!(parts.last().map(String::as_str), Some("mod" | "main")) {
                parts.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            out.insert(parts.join("::"), without_test_modules(&text));
        }
    }
    out
}

/// The text less every `#[cfg(test)] mod … { … }`.
fn without_test_modules(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        let after = &rest[at + "#[cfg(test)]".len()..];
        let head = after.trim_start();
        let is_mod = ["mod ", "pub mod ", "pub(super) mod ", "pub(crate) mod "]
            .iter()
            .any(|p| head.starts_with(p));
        let open = after.find('{');
        match (is_mod, open) {
            (true, Some(open)) if !after[..open].contains(';') => {
                out.push_str(&rest[..at]);
                let mut depth = 0;
                let mut end = after.len();
                for (i, c) in after[open..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = open + i + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                rest = &after[end..];
            }
            _ => {
                out.push_str(&rest[..at + "#[cfg(test)]".len()]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `a::{b, c::{d, self}}` as its leaves: `a::b`, `a::c::d`, `a::c`.
fn leaves(tree: &str) -> Vec<String> {
    let tree: String = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap_or_default().trim();
        return vec![path.trim_end_matches("::self").to_string()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let (mut parts, mut depth, mut current) = (Vec::new(), 0, String::new());
    for c in inner.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts
        .iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(|p| leaves(&format!("{prefix}{}", p.trim())))
        .map(|l| l.trim_end_matches("::self").to_string())
        .collect()
}

/// The paths `text` names from the crate: its `use crate::…`/`use super::…` trees and every
/// `crate::…` path written inline, made absolute (without `crate::`).
fn paths(module: &str, text: &str) -> Vec<String> {
    // `super` is the module's parent, for a folder's mod.rs as for a file.
    let mut parent: Vec<&str> = module.split("::").filter(|s| !s.is_empty()).collect();
    parent.pop();
    let mut out = Vec::new();
    for (at, _) in text.match_indices("use ") {
        let word_start = text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        let tree = &text[at + 4..];
        if !word_start || !(tree.starts_with("crate::") || tree.starts_with("super::")) {
            continue;
        }
        let tree = &tree[..tree.find(';').unwrap_or(tree.len())];
        for leaf in leaves(tree) {
            if let Some(p) = leaf.strip_prefix("crate::") {
                out.push(p.to_string());
            } else if let Some(p) = leaf.strip_prefix("super::") {
                let mut base = parent.clone();
                base.push(p);
                out.push(base.join("::"));
            }
        }
    }
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        let tail = &rest[at + "crate::".len()..];
        let end = tail
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        out.push(tail[..end].trim_end_matches(':').to_string());
        rest = &tail[end..];
    }
    out
}

/// Which module a path lands in: the longest of `modules` it starts with.
fn module_of<'a>(path: &str, modules: &'a BTreeMap<String, String>) -> Option<&'a str> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find_map(|m| modules.get_key_value(&m).map(|(k, _)| k.as_str()))
}

fn top(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
}

/// Module → the modules it imports, leaving out its own ancestors and descendants (a file and
/// the folder it declares are one unit).
fn imports(modules: &BTreeMap<String, String>) -> BTreeMap<&str, BTreeSet<&str>> {
    let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (module, text) in modules {
        let entry = graph.entry(module.as_str()).or_default();
        for path in paths(module, text) {
            let Some(to) = module_of(&path, modules) else {
                continue;
            };
            let related = to == module
                || module.starts_with(&format!("{to}::"))
                || to.starts_with(&format!("{module}::"));
            if !related && !to.is_empty() {
                entry.insert(to);
            }
        }
    }
    graph
}

/// The floors of src/main.rs, lowest first: each a run of `mod` lines (a comment or a blank
/// line ends a floor).
fn floors() -> Vec<Vec<String>> {
    let main = std::fs::read_to_string(repo_root().join("src/main.rs")).unwrap();
    let mut floors: Vec<Vec<String>> = vec![Vec::new()];
    for line in main.lines() {
        match line.strip_prefix("mod ").and_then(|l| l.strip_suffix(';')) {
            Some(module) => floors.last_mut().unwrap().push(module.to_string()),
            None if !floors.last().unwrap().is_empty() => floors.push(Vec::new()),
            None => {}
        }
    }
    floors.retain(|f| !f.is_empty());
    floors
}

#[test]
fn no_module_imports_from_a_higher_floor() {
    let modules = modules();
    let floors = floors();
    assert!(
        floors.len() > 5,
        "src/main.rs declares its modules: {floors:?}"
    );
    let floor = |m: &str| floors.iter().position(|f| f.iter().any(|n| n == top(m)));
    let mut upward = Vec::new();
    for (from, tos) in imports(&modules) {
        for to in tos {
            if top(from) != top(to) && floor(to) >= floor(from) {
                upward.push(format!("{from} imports {to}"));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports from the same floor or a higher one (src/main.rs lists the floors, lowest first: {floors:?}):\n{}",
        upward.join("\n")
    );
}

#[test]
fn no_files_import_each_other_round_a_circle() {
    let modules = modules();
    let graph = imports(&modules);
    // Depth-first search; a grey node met again closes a circle.
    fn visit<'a>(
        node: &'a str,
        graph: &BTreeMap<&'a str, BTreeSet<&'a str>>,
        colour: &mut BTreeMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
        circles: &mut Vec<String>,
    ) {
        colour.insert(node, 1);
        stack.push(node);
        for &next in graph.get(node).into_iter().flatten() {
            match colour.get(next).copied().unwrap_or(0) {
                0 => visit(next, graph, colour, stack, circles),
                1 => {
                    let from = stack.iter().position(|n| *n == next).unwrap_or(0);
                    circles.push(format!("{} -> {next}", stack[from..].join(" -> ")));
                }
                _ => {}
            }
        }
        stack.pop();
        colour.insert(node, 2);
    }
    let (mut colour, mut circles) = (BTreeMap::new(), Vec::new());
    for &node in graph.keys() {
        if !colour.contains_key(node) {
            visit(node, &graph, &mut colour, &mut Vec::new(), &mut circles);
        }
    }
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

#[test]
fn the_reader_sees_use_trees_and_inline_paths() {
    assert_eq!(
        leaves("crate::{a::{self, B}, c::d as e}"),
        ["crate::a", "crate::a::B", "crate::c::d"]
    );
    let text = "use super::{x, y::Z};\nfn f() { crate::render::kind(o); }";
    assert_eq!(
        paths("render::meta", text),
        ["render::x", "render::y::Z", "render::kind"]
    );
    assert_eq!(paths("render", "use super::cluster;"), ["cluster"]);
    let cut = without_test_modules("a\n#[cfg(test)]\nmod tests {\n fn x() { {} }\n}\nb");
    assert_eq!(cut, "a\n\nb");
}
