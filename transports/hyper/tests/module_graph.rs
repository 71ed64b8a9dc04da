//! The shape of the crate, checked from its sources: its modules import each other without a
//! cycle, an endpoint never imports the router or the raw path, and no file is over 600 lines
//! (tests aside).
//!
//! An edge is a path that names another module of the crate outside `#[cfg(test)]` items:
//! `crate::x`, `super::x`, `self::x`, or a child module by its name, in a `use` or in code. A
//! path to an item names the module that holds it. `cargo test -p roomcast-hyper --test
//! module_graph -- --nocapture` prints the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// A module's path from the crate root: `[]` for `lib.rs`, `["raw", "sse"]` for `raw/sse.rs`.
type Module = Vec<String>;

const MAX_LINES: usize = 600;

#[test]
fn the_modules_import_each_other_without_a_cycle() {
    let graph = graph();
    let printed: Vec<String> = graph
        .iter()
        .map(|(module, uses)| {
            let uses: Vec<String> = uses.iter().map(name).collect();
            format!("{} -> {}", name(module), uses.join(", "))
        })
        .collect();
    println!("{}", printed.join("\n"));
    if let Some(cycle) = find_cycle(&graph) {
        let cycle: Vec<String> = cycle.iter().map(name).collect();
        panic!(
            "an import cycle: {}\nthe graph:\n{}",
            cycle.join(" -> "),
            printed.join("\n")
        );
    }
    // What the check stands on: the modules are found, and so are the edges of each kind.
    let edge = |from: &str, to: &str| {
        let (from, to) = (module(from), module(to));
        graph.get(&from).is_some_and(|uses| uses.contains(&to))
    };
    assert!(edge("", "service"), "`pub use service::...` in lib.rs");
    assert!(
        edge("endpoints", "endpoints::poll"),
        "`poll::serve` in code"
    );
    assert!(
        edge("raw::first_request", "raw::rewind"),
        "`use crate::raw::...`"
    );
    assert!(edge("raw::sse", "endpoints::sse"), "a path to an item");
}

#[test]
fn an_endpoint_never_imports_the_router_or_the_raw_path() {
    let above = ["service", "raw", "conn"].map(module);
    for (module, uses) in graph() {
        if module.first().is_some_and(|first| first == "endpoints") {
            for used in uses {
                assert!(
                    !above.iter().any(|a| used.starts_with(a)),
                    "{} imports {}",
                    name(&module),
                    name(&used)
                );
            }
        }
    }
}

#[test]
fn no_file_is_over_600_lines_tests_aside() {
    for (path, _) in sources() {
        let text = fs::read_to_string(&path).expect("read");
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
        let lines = code.lines().count();
        assert!(lines <= MAX_LINES, "{}: {lines} lines", path.display());
    }
}

#[test]
fn the_scanner_sees_paths_and_not_comments_strings_or_tests() {
    let text = r##"
        //! `crate::a` in a comment
        use crate::{b::{self, B}, c as see};
        use super::*;
        /* crate::d /* nested */ crate::d */
        fn f() -> char { let _ = "crate::e"; let _ = r#"crate::e"#; x::f(); '{' }
        fn g<'a>(_: &'a str) { crate::g::G::new(); }
        #[cfg(test)]
        mod tests { use crate::h; }
        #[cfg(test)]
        use crate::i;
    "##;
    let paths = paths(&strip(text));
    let expected: Vec<Vec<&str>> = vec![
        vec!["crate", "b", "self"],
        vec!["crate", "b", "B"],
        vec!["crate", "c"],
        vec!["super"],
        vec!["x", "f"],
        vec!["crate", "g", "G", "new"],
    ];
    assert_eq!(paths, expected);
}

/// Every module's imports of the crate's other modules.
fn graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let sources = sources();
    let modules: BTreeSet<Module> = sources.iter().map(|(_, module)| module.clone()).collect();
    assert!(modules.len() > 10, "the sources are found: {modules:?}");
    let mut graph = BTreeMap::new();
    for (path, module) in &sources {
        let text = fs::read_to_string(path).expect("read");
        let uses: BTreeSet<Module> = paths(&strip(&text))
            .iter()
            .filter_map(|path| resolve(&modules, module, path))
            .filter(|used| used != module)
            .collect();
        graph.insert(module.clone(), uses);
    }
    graph
}

/// The crate's source files and their modules.
fn sources() -> Vec<(PathBuf, Module)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(&root).expect("under src");
                let mut module: Module = relative
                    .with_extension("")
                    .iter()
                    .map(|part| part.to_string_lossy().into_owned())
                    .collect();
                if matches!(module.last().map(String::as_str), Some("lib" | "mod")) {
                    module.pop();
                }
                files.push((path, module));
            }
        }
    }
    files.sort();
    files
}

/// The module a path names, seen from `from`; `None` outside the crate.
fn resolve(modules: &BTreeSet<Module>, from: &Module, path: &[String]) -> Option<Module> {
    let (mut base, mut rest) = match path.first()?.as_str() {
        "crate" => (Vec::new(), &path[1..]),
        "self" => (from.clone(), &path[1..]),
        "super" => (from.clone(), path),
        first => {
            let mut child = from.clone();
            child.push(first.to_owned());
            if !modules.contains(&child) {
                return None; // another crate, a type, an enum's variant
            }
            (from.clone(), path)
        }
    };
    while rest.first().is_some_and(|s| s == "super") {
        base.pop();
        rest = &rest[1..];
    }
    let mut target = base;
    let mut found = target.clone();
    for segment in rest {
        target.push(segment.clone());
        if modules.contains(&target) {
            found = target.clone();
        } else {
            break;
        }
    }
    Some(found)
}

/// The source with comments, strings and character literals blanked, and `#[cfg(test)]` items
/// removed.
fn strip(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let at = |i: usize, s: &str| {
        s.chars()
            .enumerate()
            .all(|(k, c)| chars.get(i + k) == Some(&c))
    };
    while i < chars.len() {
        if at(i, "//") {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if at(i, "/*") {
            let mut depth = 0;
            while i < chars.len() {
                if at(i, "/*") {
                    depth += 1;
                    i += 2;
                } else if at(i, "*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if chars[i] == 'r'
            && (i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_'))
            && (at(i + 1, "\"") || at(i + 1, "#\"") || at(i + 1, "##\""))
        {
            let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
            let close: String = std::iter::once('"')
                .chain("#".repeat(hashes).chars())
                .collect();
            i += 2 + hashes;
            while i < chars.len() && !at(i, &close) {
                i += 1;
            }
            i += close.len();
            out.push_str("\"\"");
        } else if chars[i] == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if chars[i] == '\'' && (at(i + 1, "\\") || chars.get(i + 2) == Some(&'\'')) {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("' '");
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    remove_test_items(&out)
}

/// `text` without the items under `#[cfg(test)]`: each up to its `;` or its matching `}`.
fn remove_test_items(text: &str) -> String {
    const ATTRIBUTE: &str = "#[cfg(test)]";
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find(ATTRIBUTE) {
        out.push_str(&rest[..start]);
        let item = &rest[start + ATTRIBUTE.len()..];
        let end = match item.find(['{', ';']) {
            Some(semicolon) if item.as_bytes()[semicolon] == b';' => semicolon + 1,
            Some(open) => {
                let mut depth = 0;
                let mut end = item.len();
                for (k, byte) in item.bytes().enumerate().skip(open) {
                    depth += match byte {
                        b'{' => 1,
                        b'}' => -1,
                        _ => 0,
                    };
                    if depth == 0 {
                        end = k + 1;
                        break;
                    }
                }
                end
            }
            None => item.len(),
        };
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// The paths in `code`: each `use` tree expanded into its paths, and every other path of two
/// segments or more.
fn paths(code: &str) -> Vec<Vec<String>> {
    let tokens = tokens(code);
    let ident = |t: &str| t.chars().all(|c| c.is_alphanumeric() || c == '_');
    let mut paths = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i] == "use" {
            i += 1;
            use_tree(&tokens, &mut i, Vec::new(), &mut paths);
            continue;
        }
        let starts = ident(&tokens[i])
            && tokens.get(i + 1).is_some_and(|t| t == "::")
            && (i == 0 || tokens[i - 1] != "::");
        if starts {
            let mut path = vec![tokens[i].clone()];
            i += 1;
            while tokens.get(i).is_some_and(|t| t == "::")
                && tokens.get(i + 1).is_some_and(|t| ident(t))
            {
                path.push(tokens[i + 1].clone());
                i += 2;
            }
            paths.push(path);
        } else {
            i += 1;
        }
    }
    paths
}

/// Expands the `use` tree at `tokens[*i]` into `out`, each path behind `prefix`.
fn use_tree(tokens: &[String], i: &mut usize, mut prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    while let Some(token) = tokens.get(*i) {
        *i += 1;
        match token.as_str() {
            "{" => {
                while tokens.get(*i).is_some_and(|t| t != "}") {
                    use_tree(tokens, i, prefix.clone(), out);
                    if tokens.get(*i).is_some_and(|t| t == ",") {
                        *i += 1;
                    }
                }
                *i += 1;
                return;
            }
            "*" => break,
            "::" => {}
            name => {
                prefix.push(name.to_owned());
                if tokens.get(*i).is_some_and(|t| t == "::") {
                    continue;
                }
                if tokens.get(*i).is_some_and(|t| t == "as") {
                    *i += 2;
                }
                break;
            }
        }
    }
    if tokens.get(*i).is_some_and(|t| t == ";") {
        *i += 1;
    }
    out.push(prefix);
}

/// Identifiers, `::`, and every other character but white space as a token of its own.
fn tokens(code: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            let mut word = c.to_string();
            while let Some(&next) = chars.peek().filter(|n| n.is_alphanumeric() || **n == '_') {
                word.push(next);
                chars.next();
            }
            tokens.push(word);
        } else if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            tokens.push("::".to_owned());
        } else if !c.is_whitespace() {
            tokens.push(c.to_string());
        }
    }
    tokens
}

/// A cycle in `graph`, if there is one, as the modules along it.
fn find_cycle(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Option<Vec<Module>> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Open,
        Done,
    }
    fn visit(
        graph: &BTreeMap<Module, BTreeSet<Module>>,
        module: &Module,
        states: &mut BTreeMap<Module, State>,
        stack: &mut Vec<Module>,
    ) -> Option<Vec<Module>> {
        match states.get(module) {
            Some(State::Done) => return None,
            Some(State::Open) => {
                let start = stack.iter().position(|m| m == module).expect("open");
                let mut cycle = stack[start..].to_vec();
                cycle.push(module.clone());
                return Some(cycle);
            }
            None => {}
        }
        states.insert(module.clone(), State::Open);
        stack.push(module.clone());
        for used in graph.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(graph, used, states, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        states.insert(module.clone(), State::Done);
        None
    }
    let mut states = BTreeMap::new();
    graph
        .keys()
        .find_map(|module| visit(graph, module, &mut states, &mut Vec::new()))
}

fn module(name: &str) -> Module {
    name.split("::")
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn name(module: &Module) -> String {
    if module.is_empty() {
        "crate".to_owned()
    } else {
        module.join("::")
    }
}
