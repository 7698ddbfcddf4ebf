//! What `render` prints, read as a test reads it: its objects (and the node classes' reviewed
//! snapshots), their names, the dashboards and the queries in them, the rule groups as a
//! Prometheus rule file; and objects written back as a List for kubectl.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::{automon, repo_root, run, write_temp};

/// The objects `kubectl automon render -o json <args>` prints, in order.
pub fn rendered_objects(args: &[&str]) -> Vec<Value> {
    let out = run(automon().args(["render", "-o", "json"]).args(args)).success();
    let list: Value = serde_json::from_str(&out.stdout).expect("render -o json is JSON");
    assert_eq!(list["kind"], "List", "{}", out.stdout);
    list["items"].as_array().expect("a List has items").clone()
}

/// `--set <s>` for each of `sets`, as `render`'s and `enable`'s arguments.
pub fn set_args<'a>(sets: &[&'a str]) -> Vec<&'a str> {
    sets.iter().flat_map(|s| ["--set", s]).collect()
}

/// `Kind/name` of an object, as the tests name them in messages.
pub fn kind_name(o: &Value) -> String {
    format!(
        "{}/{}",
        o["kind"].as_str().unwrap(),
        o["metadata"]["name"].as_str().unwrap()
    )
}

/// These objects as one `v1/List` in a fresh file, which lives as long as the guard.
pub fn write_list(name: &str, items: &[Value]) -> (tempfile::TempDir, PathBuf) {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
    write_temp(name, &list.to_string())
}

/// The objects the renderer adds or changes for a cluster with every node class (Windows and
/// GPU nodes), from their reviewed snapshots (`tests/snapshots/classes__*.snap`). `render` has
/// no flag for node classes (the commands detect them from the nodes), so the tests that check
/// rules and dashboards with real tools read these; the renderer's own snapshot test
/// (`render::tests::node_classes_snapshot`) fails whenever they differ from what it renders.
pub fn node_class_objects() -> Vec<Value> {
    let dir = repo_root().join("tests/snapshots");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("classes__") && n.ends_with(".snap"))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no classes__*.snap in {}", dir.display());
    files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            // insta's header (`---`, `source: ...`, `---`), then the object's YAML.
            let body = text
                .splitn(3, "---\n")
                .nth(2)
                .unwrap_or_else(|| panic!("{} has no insta header", f.display()));
            serde_saphyr::from_str(body).unwrap_or_else(|e| panic!("{}: {e}", f.display()))
        })
        .collect()
}

/// The Grafana dashboards these objects hold (the ConfigMaps Grafana's sidecar loads), parsed.
pub fn dashboards_in(objects: &[Value]) -> Vec<Value> {
    objects
        .iter()
        .filter(|o| o["kind"] == "ConfigMap" && o["metadata"]["labels"]["grafana_dashboard"] == "1")
        .flat_map(|o| {
            o["data"]
                .as_object()
                .expect("data")
                .values()
                .cloned()
                .collect::<Vec<_>>()
        })
        .map(|text| serde_json::from_str(text.as_str().expect("a string")).expect("dashboard JSON"))
        .collect()
}

/// One PromQL query a rendered dashboard runs: a panel's target, or the series selector of a
/// template variable (`label_values(selector, label)`), whose `panel_title` is `variable <name>`.
#[derive(Debug, Clone)]
pub struct DashboardQuery {
    pub dashboard_uid: String,
    pub panel_title: String,
    pub expr: String,
}

impl DashboardQuery {
    /// Where the query is, for messages: `uid / panel title`.
    pub fn at(&self) -> String {
        format!("{} / {}", self.dashboard_uid, self.panel_title)
    }
}

/// Every query of every dashboard these objects hold (see [`dashboards_in`]): each panel
/// target's expr, then each query variable's series selector. Variables of other types (the
/// datasource picker) run no PromQL.
pub fn dashboard_queries(objects: &[Value]) -> Vec<DashboardQuery> {
    let mut out = Vec::new();
    for d in dashboards_in(objects) {
        let uid = d["uid"].as_str().expect("uid").to_string();
        let query = |panel_title: String, expr: &str| DashboardQuery {
            dashboard_uid: uid.clone(),
            panel_title,
            expr: expr.to_string(),
        };
        for p in d["panels"].as_array().expect("panels") {
            for t in p["targets"].as_array().expect("targets") {
                let title = p["title"].as_str().expect("title").to_string();
                out.push(query(title, t["expr"].as_str().expect("expr")));
            }
        }
        for v in d["templating"]["list"].as_array().expect("variables") {
            if v["type"] != "query" {
                continue;
            }
            let definition = v["query"]["query"].as_str().expect("variable query");
            let selector = definition
                .strip_prefix("label_values(")
                .and_then(|s| s.strip_suffix(")"))
                .and_then(|s| s.rsplit_once(", "))
                .map(|(selector, _label)| selector)
                .unwrap_or_else(|| panic!("not label_values(selector, label): {definition}"));
            out.push(query(
                format!("variable {}", v["name"].as_str().expect("name")),
                selector,
            ));
        }
    }
    out
}

/// `expr` with Grafana's variables replaced as Grafana would before sending it: `$name`,
/// `${name}` and `${name:format}` take `values[name]`. A variable missing from `values` stays as
/// it is, so that PromQL checks fail on it rather than pass on a guess.
pub fn substitute(expr: &str, values: &std::collections::BTreeMap<&str, &str>) -> String {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, len) = match after.strip_prefix('{') {
            Some(braced) => match braced.find('}') {
                Some(end) => {
                    let inner = &braced[..end];
                    (inner.split(':').next().unwrap_or(inner), end + 2)
                }
                None => ("", 0),
            },
            None => {
                let end = after.find(|c: char| !ident(c)).unwrap_or(after.len());
                (&after[..end], end)
            }
        };
        match values.get(name) {
            Some(value) if !name.is_empty() => {
                out.push_str(value);
                rest = &after[len..];
            }
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The rule groups of the PrometheusRules in `objects`.
pub fn rule_groups(objects: &[Value]) -> Vec<Value> {
    objects
        .iter()
        .filter(|o| o["kind"] == "PrometheusRule")
        .flat_map(|o| o["spec"]["groups"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// A Prometheus rule file of these groups.
pub fn rule_file(groups: Vec<Value>) -> String {
    serde_saphyr::to_string(&json!({ "groups": groups })).unwrap()
}

/// The rule groups of the PrometheusRules in `objects`, as one Prometheus rule file.
pub fn rendered_rule_file(objects: &[Value]) -> String {
    rule_file(rule_groups(objects))
}
