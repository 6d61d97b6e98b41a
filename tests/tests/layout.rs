//! The layers of `common/` as the README's layout table names them: the domain depends on
//! nothing outside itself, nothing below the use cases reaches up into them or into the wiring,
//! and no two modules depend on each other (the domain's modules counted one by one). Read from
//! the source: every `crate::…` path outside comments and test modules, and `super::…` between
//! the domain's modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use kincode_tests::repo_root;

/// A module's unit: its top-level module, or `domain::<name>` for the domain's modules.
fn unit_of(path: &[&str]) -> String {
    match path {
        ["domain", sub, ..] if sub.chars().next().is_some_and(char::is_lowercase) => {
            format!("domain::{sub}")
        }
        [top, ..] => (*top).to_owned(),
        [] => "lib".to_owned(),
    }
}

/// The code of a source file without its comments and its `#[cfg(test)]` module.
fn production_code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path that follows `prefix` in `code`, as its segments.
fn paths_after<'a>(code: &'a str, prefix: &str) -> Vec<Vec<&'a str>> {
    code.match_indices(prefix)
        .filter(|(at, _)| {
            !code[..*at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
        .map(|(at, _)| {
            let rest = &code[at + prefix.len()..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            rest[..end].split("::").filter(|s| !s.is_empty()).collect()
        })
        .collect()
}

fn collect_sources(dir: &Path, into: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            collect_sources(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

/// Unit → the units its production code names.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let src = repo_root().join("common/src");
    let mut files = Vec::new();
    collect_sources(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file
            .strip_prefix(&src)
            .expect("under src")
            .with_extension("");
        let mut module: Vec<&str> = relative.iter().map(|s| s.to_str().unwrap()).collect();
        if matches!(module.last(), Some(&"mod") | Some(&"lib")) {
            module.pop();
        }
        let unit = unit_of(&module);
        let code = production_code(&std::fs::read_to_string(&file).expect("readable source"));
        let mut targets: Vec<String> = paths_after(&code, "crate::")
            .iter()
            .map(|path| unit_of(path))
            .collect();
        if module.len() == 2 && module[0] == "domain" {
            targets.extend(
                paths_after(&code, "super::")
                    .iter()
                    .filter_map(|path| path.first())
                    .map(|sub| unit_of(&["domain", sub])),
            );
        }
        let entry = graph.entry(unit.clone()).or_default();
        entry.extend(targets.into_iter().filter(|target| *target != unit));
    }
    graph
}

/// A cycle through `start`, if there is one.
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    fn walk(
        graph: &BTreeMap<String, BTreeSet<String>>,
        start: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        let here = path.last().expect("non-empty path").clone();
        for next in graph.get(&here).into_iter().flatten() {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(graph, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_owned()];
    walk(graph, start, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn no_two_modules_of_common_depend_on_each_other() {
    let graph = dependencies();
    assert!(graph.contains_key("usecases") && graph.contains_key("domain::nucleic"));
    let cycles: Vec<_> = graph
        .keys()
        .filter_map(|unit| cycle_from(&graph, unit))
        .map(|cycle| cycle.join(" → "))
        .collect();
    assert!(cycles.is_empty(), "module cycles:\n{}", cycles.join("\n"));
}

#[test]
fn each_layer_reaches_only_down() {
    let graph = dependencies();
    let mut violations = Vec::new();
    for (unit, targets) in &graph {
        for target in targets {
            let domain_leaves = unit.starts_with("domain") && !target.starts_with("domain");
            let reaches_up = !matches!(unit.as_str(), "usecases" | "wiring" | "lib")
                && matches!(target.as_str(), "usecases" | "wiring");
            let use_case_wires = unit == "usecases" && target == "wiring";
            if domain_leaves || reaches_up || use_case_wires {
                violations.push(format!("{unit} → {target}"));
            }
        }
    }
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn the_reader_finds_a_cycle_and_a_path_inside_a_line() {
    let graph = BTreeMap::from([
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::from(["c".to_owned()])),
        ("c".to_owned(), BTreeSet::from(["a".to_owned()])),
        ("d".to_owned(), BTreeSet::from(["a".to_owned()])),
    ]);
    assert_eq!(cycle_from(&graph, "a").unwrap(), ["a", "b", "c", "a"]);
    assert_eq!(cycle_from(&graph, "d"), None);
    let code = production_code(
        "use crate::domain::nucleic::{Tube};\nlet x = crate::store::Store::new(); // crate::wiring\n#[cfg(test)]\nmod tests { use crate::usecases; }",
    );
    let units: Vec<_> = paths_after(&code, "crate::")
        .iter()
        .map(|p| unit_of(p))
        .collect();
    assert_eq!(units, ["domain::nucleic", "store"]);
    assert!(paths_after("mycrate::x", "crate::").is_empty());
}

/// The README's layout table names paths that exist, and every module directory of
/// `common/src` and every workspace member has its row.
#[test]
fn the_readme_layout_table_matches_the_tree() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let section = readme
        .split("\n## Layout\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Layout section");
    let paths: Vec<&str> = section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .collect();
    assert!(paths.len() > 10, "{paths:?}");
    for path in &paths {
        let existing = path.split("<").next().unwrap_or(path);
        assert!(
            repo_root().join(existing).exists(),
            "the layout table names {path}, which is not in the tree"
        );
    }
    let mut expected: Vec<String> = std::fs::read_dir(repo_root().join("common/src"))
        .expect("common/src")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.is_dir())
        .map(|path| {
            format!(
                "common/src/{}/",
                path.file_name().unwrap().to_string_lossy()
            )
        })
        .collect();
    expected.extend(["functions/<op>/", "localdev/", "tests/", "tools/"].map(String::from));
    for row in expected {
        assert!(paths.contains(&row.as_str()), "no layout row for {row}");
    }
}
