//! The module graph of each crate in the workspace, read from the sources:
//! which module refers to which (`use` trees and `crate::`, `super::`,
//! `self::` paths), and whether any modules other than a parent and its
//! child refer to each other in a circle. The lint step holds every crate
//! of the workspace to that.
//!
//! Only what the rule needs is parsed: `mod` declarations (files and
//! inline blocks), paths that start at the crate, the parent or the
//! module itself, and `macro_rules!` definitions: an exported macro is
//! named from the crate root but refers to the module that defines it. Comments, strings and character literals are blanked
//! first so that nothing in them counts.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// A module by its path from the crate root; the root is empty.
pub type ModulePath = Vec<String>;

/// One crate's modules and the references between them.
#[derive(Debug, Default)]
pub struct Graph {
    /// Every module, with the file it is in.
    pub modules: BTreeMap<ModulePath, PathBuf>,
    /// Macros by name, with the module that defines them.
    pub macros: BTreeMap<String, ModulePath>,
    /// `from -> to` for every reference to another module.
    pub edges: BTreeSet<(ModulePath, ModulePath)>,
}

/// `text` as blanks, its line breaks kept.
fn blank(text: &str) -> impl Iterator<Item = char> + '_ {
    text.chars().map(|c| if c == '\n' { '\n' } else { ' ' })
}

/// Module source text, with comments and literals blanked out.
fn code_only(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            let end = rest.find('\n').map_or(text.len(), |n| i + n);
            out.push_str(&" ".repeat(end - i));
            i = end;
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(text.len(), |n| i + n + 2);
            out.extend(blank(&text[i..end]));
            i = end;
        } else if let Some(len) = raw_string_len(rest) {
            out.extend(blank(&text[i..i + len]));
            i += len;
        } else if bytes[i] == b'"' {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != b'"' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(bytes.len());
            out.extend(blank(&text[i..end]));
            i = end;
        } else if let Some(len) = char_literal_len(rest) {
            out.push_str(&" ".repeat(len));
            i += len;
        } else {
            let c = rest.chars().next().expect("not at the end");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The length of a raw string literal (`r"..."`, `r#"..."#`, `br"..."`)
/// starting `text`.
fn raw_string_len(text: &str) -> Option<usize> {
    let after_b = text.strip_prefix('b').unwrap_or(text);
    let after_r = after_b.strip_prefix('r')?;
    let hashes = after_r.len() - after_r.trim_start_matches('#').len();
    let body = after_r[hashes..].strip_prefix('"')?;
    let close = format!("\"{}", "#".repeat(hashes));
    let end = body.find(&close)?;
    Some(text.len() - body.len() + end + close.len())
}

/// The length of a character literal starting `text` (not a lifetime).
fn char_literal_len(text: &str) -> Option<usize> {
    let rest = text.strip_prefix('\'')?;
    if let Some(escaped) = rest.strip_prefix('\\') {
        return Some(2 + escaped.find('\'')? + 1);
    }
    let c = rest.chars().next()?;
    rest[c.len_utf8()..]
        .starts_with('\'')
        .then(|| 2 + c.len_utf8())
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Words and punctuation, for the little parsing needed.
fn tokens(code: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut chars = code.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if is_ident_char(c) {
            let mut end = start;
            while let Some(&(i, c)) = chars.peek() {
                if !is_ident_char(c) {
                    break;
                }
                end = i + c.len_utf8();
                chars.next();
            }
            out.push(&code[start..end]);
        } else if code[start..].starts_with("::") {
            out.push("::");
            chars.next();
            chars.next();
        } else {
            out.push(&code[start..start + c.len_utf8()]);
            chars.next();
        }
    }
    out
}

/// Expands the use tree at `tokens[*at..]` into full paths.
fn use_tree(tokens: &[&str], at: &mut usize, prefix: &[String], out: &mut Vec<Vec<String>>) {
    let mut path = prefix.to_vec();
    loop {
        match tokens.get(*at) {
            Some(&"{") => {
                *at += 1;
                while tokens.get(*at).is_some_and(|&t| t != "}") {
                    use_tree(tokens, at, &path, out);
                    if tokens.get(*at) == Some(&",") {
                        *at += 1;
                    }
                }
                *at += 1;
                return;
            }
            Some(&"*") => {
                *at += 1;
                out.push(path);
                return;
            }
            Some(word) if word.chars().all(is_ident_char) => {
                path.push(word.to_string());
                *at += 1;
                if tokens.get(*at) == Some(&"::") {
                    *at += 1;
                    continue;
                }
                if tokens.get(*at) == Some(&"as") {
                    *at += 2;
                }
                out.push(path);
                return;
            }
            _ => {
                out.push(path);
                return;
            }
        }
    }
}

/// What one file declares and refers to: child modules (`mod x;`) and
/// paths, each with the inline module it appears in.
#[derive(Debug, Default, PartialEq)]
struct FileScan {
    /// `mod x;` declarations, with the inline module they are in.
    out_of_line: Vec<(Vec<String>, String)>,
    /// Inline `mod x { ... }` blocks, as paths inside the file.
    inline: Vec<Vec<String>>,
    /// Paths starting with `crate`, `super` or `self`, with the inline
    /// module they appear in.
    paths: Vec<(Vec<String>, Vec<String>)>,
    /// Macros defined, with the inline module they are in.
    macros: Vec<(Vec<String>, String)>,
}

fn scan(text: &str) -> FileScan {
    let code = code_only(text);
    let tokens = tokens(&code);
    let mut scan = FileScan::default();
    // The inline modules open around the current token, with the brace
    // depth at which each closes.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    let here =
        |inline: &[(String, usize)]| inline.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    while i < tokens.len() {
        let token = tokens[i];
        match token {
            "{" => depth += 1,
            "}" => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|&(_, d)| d == depth) {
                    inline.pop();
                }
            }
            "mod"
                if tokens
                    .get(i + 1)
                    .is_some_and(|t| t.chars().all(is_ident_char)) =>
            {
                let name = tokens[i + 1].to_string();
                match tokens.get(i + 2) {
                    Some(&";") => scan.out_of_line.push((here(&inline), name)),
                    Some(&"{") => {
                        let mut path = here(&inline);
                        path.push(name.clone());
                        scan.inline.push(path);
                        inline.push((name, depth));
                        depth += 1;
                        i += 3;
                        continue;
                    }
                    _ => {}
                }
            }
            "macro_rules" if tokens.get(i + 1) == Some(&"!") => {
                if let Some(name) = tokens.get(i + 2) {
                    scan.macros.push((here(&inline), name.to_string()));
                }
            }
            "use" => {
                let mut at = i + 1;
                let mut paths = Vec::new();
                if tokens.get(at) == Some(&"::") {
                    at += 1;
                }
                use_tree(&tokens, &mut at, &[], &mut paths);
                for path in paths {
                    if matches!(
                        path.first().map(String::as_str),
                        Some("crate" | "super" | "self")
                    ) {
                        scan.paths.push((here(&inline), path));
                    }
                }
                i = at;
                continue;
            }
            "crate" | "super" | "self"
                if tokens.get(i + 1) == Some(&"::") && (i == 0 || tokens[i - 1] != "::") =>
            {
                let mut path = vec![token.to_string()];
                let mut at = i + 1;
                while tokens.get(at) == Some(&"::")
                    && tokens
                        .get(at + 1)
                        .is_some_and(|t| t.chars().all(is_ident_char))
                {
                    path.push(tokens[at + 1].to_string());
                    at += 2;
                }
                scan.paths.push((here(&inline), path));
                i = at;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    scan
}

/// The file that holds module `name`, declared in a module whose children
/// live in `dir`.
fn child_file(dir: &Path, name: &str) -> Option<PathBuf> {
    [
        dir.join(format!("{name}.rs")),
        dir.join(name).join("mod.rs"),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

/// Reads the crate whose root file is `root`.
pub fn read_crate(root: &Path) -> Result<Graph, String> {
    let mut graph = Graph::default();
    let mut references = Vec::new();
    let mut pending = vec![(Vec::<String>::new(), root.to_path_buf())];
    while let Some((module, file)) = pending.pop() {
        let text = fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let scan = scan(&text);
        // A root file or `mod.rs` keeps its children beside it; `x.rs`
        // keeps them in `x/`.
        let is_dir_owner = module.is_empty() || file.file_name().is_some_and(|n| n == "mod.rs");
        let dir = if is_dir_owner {
            file.parent().expect("a file has a directory").to_path_buf()
        } else {
            file.with_extension("")
        };
        graph.modules.insert(module.clone(), file.clone());
        for inline in &scan.inline {
            graph
                .modules
                .insert([module.clone(), inline.clone()].concat(), file.clone());
        }
        for (inside, name) in scan.out_of_line {
            let mut child_dir = dir.clone();
            child_dir.extend(&inside);
            let child = [module.clone(), inside.clone(), vec![name.clone()]].concat();
            match child_file(&child_dir, &name) {
                Some(path) => pending.push((child, path)),
                None => return Err(format!("{}: no file for `mod {name};`", file.display())),
            }
        }
        for (inside, name) in scan.macros {
            graph.macros.insert(name, [module.clone(), inside].concat());
        }
        for (inside, path) in scan.paths {
            references.push(([module.clone(), inside].concat(), path));
        }
    }
    for (from, path) in references {
        if let Some(to) = resolve(&graph, &from, &path)
            && to != from
        {
            graph.edges.insert((from, to));
        }
    }
    Ok(graph)
}

/// The module a path refers to: the longest prefix that is a module.
fn resolve(graph: &Graph, from: &[String], path: &[String]) -> Option<ModulePath> {
    let mut base: Vec<String> = from.to_vec();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
            if let [name] = rest
                && let Some(module) = graph.macros.get(name)
            {
                return Some(module.clone());
            }
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    let mut target = base;
    for segment in rest {
        target.push(segment.clone());
        if !graph.modules.contains_key(&target) {
            target.pop();
            break;
        }
    }
    Some(target)
}

/// The reference `from -> to` as one between the two siblings that
/// contain them (a reference into a module's child is one to the module);
/// `None` between a module and what it contains.
fn between_siblings(from: &[String], to: &[String]) -> Option<(ModulePath, ModulePath)> {
    let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
    if common == from.len() || common == to.len() {
        return None;
    }
    Some((from[..=common].to_vec(), to[..=common].to_vec()))
}

/// Groups of sibling modules that refer to each other (or to what the
/// others contain) in a circle. References between a module and the
/// modules inside it do not count.
pub fn cycles(graph: &Graph) -> Vec<Vec<ModulePath>> {
    let nodes: Vec<&ModulePath> = graph.modules.keys().collect();
    let index: BTreeMap<&ModulePath, usize> =
        nodes.iter().enumerate().map(|(i, m)| (*m, i)).collect();
    let mut next = vec![Vec::new(); nodes.len()];
    for (from, to) in &graph.edges {
        if let Some((a, b)) = between_siblings(from, to) {
            next[index[&a]].push(index[&b]);
        }
    }
    strongly_connected(&next)
        .into_iter()
        .filter(|group| group.len() > 1)
        .map(|group| group.into_iter().map(|i| nodes[i].clone()).collect())
        .collect()
}

/// Tarjan's algorithm, iteratively.
fn strongly_connected(next: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = next.len();
    let (mut order, mut low) = (vec![usize::MAX; n], vec![0; n]);
    let mut on_stack = vec![false; n];
    let (mut stack, mut groups, mut counter) = (Vec::new(), Vec::new(), 0);
    for start in 0..n {
        if order[start] != usize::MAX {
            continue;
        }
        let mut work = vec![(start, 0usize)];
        while let Some(&mut (node, ref mut child)) = work.last_mut() {
            if *child == 0 {
                order[node] = counter;
                low[node] = counter;
                counter += 1;
                stack.push(node);
                on_stack[node] = true;
            }
            if let Some(&to) = next[node].get(*child) {
                *child += 1;
                if order[to] == usize::MAX {
                    work.push((to, 0));
                } else if on_stack[to] {
                    low[node] = low[node].min(order[to]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[node]);
            }
            if low[node] == order[node] {
                let mut group = Vec::new();
                while let Some(member) = stack.pop() {
                    on_stack[member] = false;
                    group.push(member);
                    if member == node {
                        break;
                    }
                }
                groups.push(group);
            }
        }
    }
    groups
}

/// The root files of every crate in the workspace, library and binaries.
pub fn crate_roots(workspace: &Path) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    let mut dirs = vec![workspace.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() && name != "target" && !name.to_string_lossy().starts_with('.') {
                dirs.push(path);
            } else if name == "Cargo.toml" && dir != workspace {
                roots.extend(package_roots(&dir));
            }
        }
    }
    roots.sort();
    roots
}

/// A package's library, its main binary and the files in `src/bin/`.
fn package_roots(package: &Path) -> Vec<PathBuf> {
    let manifest = fs::read_to_string(package.join("Cargo.toml")).unwrap_or_default();
    let mut roots: Vec<PathBuf> = ["src/lib.rs", "src/main.rs"]
        .iter()
        .map(|p| package.join(p))
        .filter(|p| p.is_file())
        .collect();
    // `[[bin]] path = "..."` entries.
    for line in manifest.lines() {
        if let Some(value) = line.trim().strip_prefix("path = ") {
            let path = package.join(value.trim_matches('"'));
            if path.extension().is_some_and(|e| e == "rs") && path.is_file() {
                roots.push(path);
            }
        }
    }
    // `src/bin/x.rs` and `src/bin/x/main.rs`.
    if let Ok(entries) = fs::read_dir(package.join("src/bin")) {
        for path in entries.flatten().map(|e| e.path()) {
            if path.extension().is_some_and(|e| e == "rs") {
                roots.push(path);
            } else if path.join("main.rs").is_file() {
                roots.push(path.join("main.rs"));
            }
        }
    }
    roots.sort();
    roots.dedup();
    roots
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &str) -> Vec<String> {
        s.split("::")
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    #[test]
    fn comments_and_literals_do_not_count() {
        let scan = scan(
            "// use crate::a;\n/* crate::b */ let s = \"crate::c\"; let r = r#\"super::d\"#;\n\
             let c = '\"'; fn f<'a>() {} use crate::e;",
        );
        let paths: Vec<_> = scan.paths.into_iter().map(|(_, p)| p).collect();
        assert_eq!(paths, [path("crate::e")]);
    }

    #[test]
    fn use_trees_expand_and_inline_modules_are_tracked() {
        let scan = scan(
            "use crate::{a::{b, c as d}, e::*};\nuse super::f;\nmod g;\n\
             mod tests { use super::*; fn x() { crate::h::i(); } }\nuse self::j;",
        );
        let found: Vec<_> = scan
            .paths
            .iter()
            .map(|(inside, p)| (inside.join("::"), p.join("::")))
            .collect();
        let expected = [
            ("", "crate::a::b"),
            ("", "crate::a::c"),
            ("", "crate::e"),
            ("", "super::f"),
            ("tests", "super"),
            ("tests", "crate::h::i"),
            ("", "self::j"),
        ];
        assert_eq!(found, expected.map(|(a, b)| (a.to_string(), b.to_string())));
        assert_eq!(scan.out_of_line, [(vec![], "g".to_string())]);
        assert_eq!(scan.inline, [path("tests")]);
    }

    fn graph(modules: &[&str], edges: &[(&str, &str)]) -> Graph {
        Graph {
            modules: modules.iter().map(|m| (path(m), PathBuf::new())).collect(),
            edges: edges.iter().map(|(a, b)| (path(a), path(b))).collect(),
            ..Graph::default()
        }
    }

    #[test]
    fn circles_between_siblings_are_found_and_parent_child_ones_are_not() {
        let ok = graph(
            &["", "a", "a::x", "b"],
            &[("a", "a::x"), ("a::x", "a"), ("a", "b"), ("b", "")],
        );
        assert!(cycles(&ok).is_empty());
        let bad = graph(
            &["", "a", "b", "c", "a::x"],
            &[("a", "b"), ("b", "c"), ("c", "a::x")],
        );
        let found = cycles(&bad);
        assert_eq!(found.len(), 1, "c refers into a: {found:?}");
        let mut members: Vec<String> = found[0].iter().map(|m| m.join("::")).collect();
        members.sort();
        assert_eq!(members, ["a", "b", "c"]);
    }

    #[test]
    fn paths_resolve_to_the_deepest_module() {
        let g = graph(&["", "task", "task::sched", "console"], &[]);
        let from = path("task::sched");
        assert_eq!(resolve(&g, &from, &path("super::wait")), Some(path("task")));
        assert_eq!(
            resolve(&g, &from, &path("crate::console::print")),
            Some(path("console"))
        );
        assert_eq!(resolve(&g, &from, &path("super::super")), Some(path("")));
        assert_eq!(
            resolve(&g, &from, &path("self::Scheduler")),
            Some(from.clone())
        );
    }

    #[test]
    fn a_crate_is_read_from_its_files() {
        let dir = std::env::temp_dir().join(format!("modgraph-{}", std::process::id()));
        let files = [
            ("lib.rs", "mod a;\nmod b;\npub mod c;\nmod d;\n"),
            ("a.rs", "use crate::b::Thing;\nmod inner;\n"),
            ("a/inner.rs", "pub fn f() { super::super::c::g(); }\n"),
            (
                "b.rs",
                "pub struct Thing; fn h() { crate::a::inner::f(); }\n",
            ),
            ("c/mod.rs", "pub fn g() { crate::say!(); }\n"),
            ("d.rs", "#[macro_export]\nmacro_rules! say { () => {} }\n"),
        ];
        for (name, text) in files {
            let path = dir.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        let graph = read_crate(&dir.join("lib.rs")).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        let modules: Vec<String> = graph.modules.keys().map(|m| m.join("::")).collect();
        assert_eq!(modules, ["", "a", "a::inner", "b", "c", "d"]);
        assert!(graph.edges.contains(&(path("a::inner"), path("c"))));
        assert!(
            graph.edges.contains(&(path("c"), path("d"))),
            "a macro is where it is defined"
        );
        let found = cycles(&graph);
        assert_eq!(found.len(), 1, "a <-> b through a::inner: {found:?}");
    }
}
