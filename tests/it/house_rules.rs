//! The rules of the house as a test: which top-level module of `src/` may
//! import which, as ARCHITECTURE.md §2 states them in its `house-rules`
//! block, and SQL only in `db/`. A failure names the file, the line and
//! the import. The rules themselves must have no loop, and neither may the
//! imports the tree really makes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The module a file of `src/` belongs to: `src/xfr/wire.rs` → `xfr`,
/// `src/time.rs` → `time`; `lib.rs` and `main.rs` (which declare and run
/// everything) belong to none.
fn module_of(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!["lib", "main"].contains(&name)).then(|| name.to_owned())
}

/// The rules: module → the modules it may import. Read from the fenced
/// block that follows the line naming `house-rules` in ARCHITECTURE.md;
/// each line `module: other other …` (`-` for none); `sql: db` names where
/// SQL may be written.
fn parse_rules(markdown: &str) -> Result<BTreeMap<String, BTreeSet<String>>, String> {
    let after = markdown.split_once("house-rules").ok_or("ARCHITECTURE.md has no `house-rules` block")?.1;
    let block = after.split_once("```").and_then(|(_, rest)| rest.split_once('\n')).map(|(_, rest)| rest);
    let body = block.and_then(|b| b.split_once("```")).ok_or("the `house-rules` block is not a fenced block")?.0;
    let mut rules = BTreeMap::new();
    for (n, line) in body.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (module, allowed) = line.split_once(':').ok_or_else(|| format!("house-rules line {}: `{line}`", n + 1))?;
        let allowed = allowed.split_whitespace().filter(|m| *m != "-").map(str::to_owned).collect();
        if rules.insert(module.trim().to_owned(), allowed).is_some() {
            return Err(format!("house-rules: `{}` is stated twice", module.trim()));
        }
    }
    Ok(rules)
}

/// One import of one file: `crate::X` (or `signet::X` in the binary's
/// modules) found at `line`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Import {
    file: PathBuf,
    line: usize,
    from: String,
    to: String,
    text: String,
}

/// Every `crate::X` and `signet::X` path in `source` (a file of module
/// `from`), in `use` lines and in code alike: a path written inline is an
/// import too. Comments are skipped.
fn imports_of(file: &Path, from: &str, source: &str) -> Vec<Import> {
    let mut found = Vec::new();
    for (n, line) in source.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for prefix in ["crate::", "signet::"] {
            for (at, _) in code.match_indices(prefix) {
                let preceded = code[..at].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_');
                let to: String =
                    code[at + prefix.len()..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
                if !preceded && !to.is_empty() && to != from {
                    let text = line.trim().to_owned();
                    found.push(Import { file: file.to_owned(), line: n + 1, from: from.to_owned(), to, text });
                }
            }
        }
    }
    found
}

/// SQL written outside the modules allowed to: a string that starts a
/// statement, or the database crate named.
fn sql_of(file: &Path, source: &str) -> Vec<String> {
    const STARTS: [&str; 7] =
        ["SELECT ", "INSERT INTO", "UPDATE ", "DELETE FROM", "CREATE TABLE", "ALTER TABLE", "PRAGMA "];
    let mut found = Vec::new();
    for (n, line) in source.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let quoted = code.split('"').skip(1).step_by(2);
        let sql = quoted.map(str::trim_start).any(|q| STARTS.iter().any(|s| q.starts_with(s)));
        if sql || code.contains("sqlx::") || code.trim_start().starts_with("use sqlx") {
            found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
        }
    }
    found
}

/// Every file of `src/` with its module and text.
fn sources(root: &Path) -> Vec<(PathBuf, String, String)> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(root).expect("below src").to_owned();
                let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                if let Some(module) = module_of(&relative) {
                    files.push((Path::new("src").join(relative), module, text));
                }
            }
        }
    }
    files.sort();
    files
}

/// What breaks the rules in `files`: one line per forbidden import, per
/// module without a rule, per line of SQL outside its place.
fn violations(rules: &BTreeMap<String, BTreeSet<String>>, files: &[(PathBuf, String, String)]) -> Vec<String> {
    let mut broken = Vec::new();
    let sql_allowed = rules.get("sql").cloned().unwrap_or_default();
    let modules: BTreeSet<&String> = files.iter().map(|(_, module, _)| module).collect();
    for module in modules.iter().filter(|m| !rules.contains_key(**m)) {
        broken.push(format!("src/{module}: no line in ARCHITECTURE.md's house-rules says what it may import"));
    }
    for (file, module, text) in files {
        let allowed = rules.get(module).cloned().unwrap_or_default();
        for import in imports_of(file, module, text).into_iter().filter(|i| !allowed.contains(&i.to)) {
            broken.push(format!(
                "{}:{}: {} may not import {} (`{}`)",
                import.file.display(),
                import.line,
                import.from,
                import.to,
                import.text
            ));
        }
        if !sql_allowed.contains(module) {
            broken.extend(sql_of(file, text).into_iter().map(|l| format!("{l}  <- SQL outside db/")));
        }
    }
    broken
}

/// A loop in `graph`, as the path that closes it.
fn find_loop(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
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
    graph.keys().find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn house_rules() -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(repository().join("ARCHITECTURE.md")).expect("read ARCHITECTURE.md");
    parse_rules(&text).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_import_of_src_is_one_the_rules_allow() {
    let rules = house_rules();
    let files = sources(&repository().join("src"));
    assert!(files.len() > 50, "the tree was not read: {} files", files.len());
    let broken = violations(&rules, &files);
    assert!(broken.is_empty(), "imports the rules of ARCHITECTURE.md §2 do not allow:\n{}", broken.join("\n"));
}

#[test]
fn neither_the_rules_nor_the_tree_have_an_import_loop() {
    let mut rules = house_rules();
    rules.remove("sql");
    assert_eq!(find_loop(&rules), None, "the rules of ARCHITECTURE.md allow a loop");
    let mut real: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, module, text) in sources(&repository().join("src")) {
        let entry = real.entry(module.clone()).or_default();
        entry.extend(imports_of(&file, &module, &text).into_iter().map(|i| i.to));
    }
    let layers: Vec<String> =
        real.iter().map(|(m, to)| format!("{m} -> {}", to.iter().cloned().collect::<Vec<_>>().join(" "))).collect();
    eprintln!("the modules' imports:\n{}", layers.join("\n"));
    assert_eq!(find_loop(&real), None, "the tree imports in a loop");
}

/// The checker itself: a forbidden import, a module with no rule and SQL
/// outside db/ are each named with file and line.
#[test]
fn a_forbidden_import_is_named_with_file_and_line() {
    let rules = parse_rules("## 2\nhouse-rules:\n```text\nzone: -\nxfr: zone  # a comment\ndb: zone\nsql: db\n```\n")
        .expect("rules");
    let file = |path: &str, module: &str, text: &str| (PathBuf::from(path), module.to_owned(), text.to_owned());
    let files = vec![
        file("src/xfr/wire.rs", "xfr", "use crate::zone::Name;\n\nuse crate::db::Database; // the bug\n"),
        file("src/xfr/server.rs", "xfr", "fn f() { let _ = crate::db::open(); let s = \"SELECT 1\"; }\n"),
        file("src/zone/name.rs", "zone", "// crate::db in a comment is no import\nuse std::fmt;\n"),
        file("src/db/mod.rs", "db", "use crate::zone::Name;\nconst Q: &str = \"SELECT * FROM zones\";\n"),
        file("src/child.rs", "child", "use crate::zone::Name;\n"),
    ];
    let broken = violations(&rules, &files);
    assert_eq!(broken.len(), 5, "{broken:#?}");
    assert!(broken[0].contains("src/child: no line"), "{broken:#?}");
    assert!(
        broken[1].starts_with("src/xfr/wire.rs:3: xfr may not import db (`use crate::db::Database;"),
        "{broken:#?}"
    );
    assert!(broken[2].starts_with("src/xfr/server.rs:1: xfr may not import db"), "{broken:#?}");
    assert!(broken[3].contains("src/xfr/server.rs:1:") && broken[3].ends_with("SQL outside db/"), "{broken:#?}");
    assert!(broken[4].starts_with("src/child.rs:1: child may not import zone"), "{broken:#?}");
    let mut looped = rules.clone();
    looped.get_mut("zone").expect("zone").insert("xfr".to_owned());
    assert_eq!(find_loop(&looped), Some(vec!["zone".into(), "xfr".into(), "zone".into()]));
}
