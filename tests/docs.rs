//! The documentation holds together, without a cluster: every relative link in README.md and
//! docs/*.md reaches a file (and a heading there when it names one), the README lists every page
//! of docs/, and every alert's rendered `runbook_url` reaches a heading of docs/runbooks.md.

mod common;

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use common::{automon, node_class_objects, repo_root, run};
use serde_json::Value;

/// README.md and every page of docs/, sorted.
fn pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(repo_root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    pages.sort();
    assert!(!pages.is_empty(), "no docs/*.md");
    pages.insert(0, repo_root().join("README.md"));
    pages
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The anchors GitHub gives a page's headings: the heading in lower case, punctuation other than
/// `-` and `_` removed, spaces made `-`; a repeated one gets `-1`, `-2`...
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut anchors = BTreeSet::new();
    for text in prose(markdown).lines().filter_map(heading) {
        let slug: String = text
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
            .flat_map(char::to_lowercase)
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let mut anchor = slug.clone();
        for n in 1.. {
            if anchors.insert(anchor.clone()) {
                break;
            }
            anchor = format!("{slug}-{n}");
        }
    }
    anchors
}

/// The text of an ATX heading (`## Text`), if the line is one.
fn heading(line: &str) -> Option<&str> {
    let level = line.len() - line.trim_start_matches('#').len();
    if !(1..=6).contains(&level) {
        return None;
    }
    line[level..].strip_prefix(' ').map(str::trim)
}

/// The page without its code blocks, fenced or indented, whose lines are not Markdown.
fn prose(markdown: &str) -> String {
    let mut fenced = false;
    let mut out = String::new();
    for line in markdown.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
            out.push('\n');
            continue;
        }
        if !fenced && !line.starts_with("    ") {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// The targets of a page's inline links (`[text](target)`), outside code.
fn link_targets(markdown: &str) -> Vec<String> {
    let mut targets = Vec::new();
    // A code span never crosses a paragraph; its text is not a link.
    for paragraph in prose(markdown).split("\n\n") {
        let text: String = paragraph.split('`').step_by(2).collect();
        for (_, rest) in text.match_indices("](").map(|(i, _)| text.split_at(i + 2)) {
            let target = rest.split(')').next().unwrap_or_default();
            targets.push(target.to_string());
        }
    }
    targets
}

#[test]
fn every_local_link_reaches_a_file_and_its_heading() {
    let mut checked = 0;
    let mut broken = Vec::new();
    for page in pages() {
        let text = read(&page);
        for target in link_targets(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, anchor) = match target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (target.as_str(), None),
            };
            let file = match path {
                "" => page.clone(),
                path => page.parent().unwrap().join(path),
            };
            let name = page.strip_prefix(repo_root()).unwrap().display();
            if !file.exists() {
                broken.push(format!("{name}: ({target}): no file {}", file.display()));
                continue;
            }
            if let Some(anchor) = anchor {
                let is_page = file.extension().is_some_and(|x| x == "md");
                if !is_page || !anchors(&read(&file)).contains(anchor) {
                    broken.push(format!(
                        "{name}: ({target}): no heading with anchor #{anchor}"
                    ));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(
        checked > 50,
        "only {checked} local links found: is the parser blind?"
    );
}

#[test]
fn the_readme_lists_every_page_of_docs() {
    let readme = read(&repo_root().join("README.md"));
    let targets = link_targets(&readme);
    for page in pages().iter().skip(1) {
        let name = page.strip_prefix(repo_root()).unwrap().to_str().unwrap();
        assert!(
            targets.iter().any(|t| t == name),
            "README.md's documentation table does not link {name}"
        );
    }
}

/// The heading anchors the parser finds are GitHub's, on headings the docs really have.
#[test]
fn anchors_are_githubs() {
    let page = "# Beside an existing stack, and compared with kube-prometheus-stack\n\
                ## `render` and --set\n\
                ```\n# not a heading\n```\n    # nor this\n\
                ### NodeDown\n### NodeDown\n";
    let found: Vec<String> = anchors(page).into_iter().collect();
    assert_eq!(
        found,
        [
            "beside-an-existing-stack-and-compared-with-kube-prometheus-stack",
            "nodedown",
            "nodedown-1",
            "render-and---set",
        ]
    );
    assert_eq!(
        link_targets("see [`disable`](commands.md#disable), `[not](a-link)`\n\n    [nor](this)"),
        ["commands.md#disable"]
    );
}

/// Every alert the plugin renders, with remote write (which adds its two) and for every node class,
/// links a heading of docs/runbooks.md on the project's GitHub page.
#[test]
fn every_runbook_url_reaches_a_heading_of_the_runbooks() {
    let out = run(automon().args([
        "render",
        "-o",
        "json",
        "--set",
        "prometheus.externalLabels={cluster: test}",
        "--set",
        "prometheus.remoteWrite=[{url: \"https://store.example.com/api/v1/write\"}]",
    ]))
    .success();
    let list: Value = serde_json::from_str(&out.stdout).expect("render -o json is JSON");
    let mut objects = list["items"].as_array().expect("a List has items").clone();
    objects.extend(node_class_objects());

    let headings = anchors(&read(&repo_root().join("docs/runbooks.md")));
    let base = concat!(env!("CARGO_PKG_REPOSITORY"), "/blob/main/");
    let mut alerts = BTreeSet::new();
    let rules = objects
        .iter()
        .filter(|o| o["kind"] == "PrometheusRule")
        .flat_map(|o| o["spec"]["groups"].as_array().cloned().unwrap_or_default())
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default());
    for rule in rules {
        let Some(alert) = rule["alert"].as_str() else {
            continue;
        };
        let url = rule["annotations"]["runbook_url"]
            .as_str()
            .unwrap_or_else(|| panic!("{alert}: no runbook_url"));
        let (page, anchor) = url
            .strip_prefix(base)
            .and_then(|u| u.split_once('#'))
            .unwrap_or_else(|| panic!("{alert}: {url} is not a page of {base} with an anchor"));
        assert_eq!(page, "docs/runbooks.md", "{alert}: {url}");
        assert!(
            headings.contains(anchor),
            "{alert}: {url}: docs/runbooks.md has no heading with anchor #{anchor}"
        );
        alerts.insert(alert.to_string());
    }
    // 55 by default, 2 with remote write, and the Windows and GPU classes' own.
    assert!(alerts.len() > 57, "only {} alerts found", alerts.len());
}
