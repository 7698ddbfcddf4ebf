//! Validation against schemas, for what a server-side dry run cannot judge before the first
//! write: an object whose namespace does not exist yet is checked against the schema the API
//! server publishes for its type (OpenAPI v3, as `kubectl --validate` reads it), and a custom
//! resource whose CRD is about to be applied against that CRD's own `openAPIV3Schema`. What is
//! checked is what the server checks of a schema: types, unknown and required fields, enums,
//! patterns, lengths and bounds (defaults, admission and quotas are the dry run's).
//!
//! [`check`] is pure; [`Published`] fetches the server's documents, cached like kubectl's.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::cluster::Cluster;

/// One way an object breaks its schema, as the API server words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `spec.retentionSize`
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Checks `value` against `schema`; `doc` resolves `$ref`s (`#/components/schemas/…`) of the
/// server's documents. `root` skips what the server validates apart at the top of a custom
/// resource (`apiVersion`, `kind`, `metadata`).
pub fn check(value: &Value, schema: &Value, doc: Option<&Value>, root: bool) -> Vec<Problem> {
    let mut out = Vec::new();
    Checker { doc }.check(value, schema, "", root, &mut out);
    out
}

struct Checker<'a> {
    doc: Option<&'a Value>,
}

fn push(out: &mut Vec<Problem>, path: &str, message: String) {
    out.push(Problem {
        path: path.to_string(),
        message,
    });
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `x-kubernetes-int-or-string`: an integer or a string, nothing else.
fn int_or_string(v: &Value, path: &str, out: &mut Vec<Problem>) {
    if !(v.is_string() || type_name(v) == "integer") {
        push(
            out,
            path,
            format!(
                "Invalid value: \"{}\": must be an integer or a string",
                type_name(v)
            ),
        );
    }
}

/// `enum`: one of the values listed.
fn enumeration(v: &Value, schema: &Value, path: &str, out: &mut Vec<Problem>) {
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(v)
    {
        let shown: Vec<String> = allowed.iter().map(Value::to_string).collect();
        push(
            out,
            path,
            format!(
                "Unsupported value: {v}: supported values: {}",
                shown.join(", ")
            ),
        );
    }
}

/// `maxLength`, `minLength` (in characters) and `pattern`.
fn string_bounds(s: &str, schema: &Value, path: &str, out: &mut Vec<Problem>) {
    let len = s.chars().count() as u64;
    if let Some(max) = schema["maxLength"].as_u64().filter(|m| len > *m) {
        push(
            out,
            path,
            format!("Too long: may not be more than {max} characters"),
        );
    }
    if let Some(min) = schema["minLength"].as_u64().filter(|m| len < *m) {
        push(
            out,
            path,
            format!("Invalid value: \"{s}\": must be at least {min} characters"),
        );
    }
    if let Some(pattern) = schema["pattern"].as_str() {
        match regex::Regex::new(pattern) {
            Ok(re) if !re.is_match(s) => push(
                out,
                path,
                format!("Invalid value: \"{s}\": should match '{pattern}'"),
            ),
            // A pattern this engine cannot read judges nothing.
            _ => {}
        }
    }
}

/// `minimum` and `maximum`.
fn number_bounds(v: &Value, schema: &Value, path: &str, out: &mut Vec<Problem>) {
    let n = v.as_f64().unwrap_or_default();
    if let Some(min) = schema["minimum"].as_f64().filter(|m| n < *m) {
        push(
            out,
            path,
            format!("Invalid value: {v}: should be greater than or equal to {min}"),
        );
    }
    if let Some(max) = schema["maximum"].as_f64().filter(|m| n > *m) {
        push(
            out,
            path,
            format!("Invalid value: {v}: should be less than or equal to {max}"),
        );
    }
}

impl Checker<'_> {
    fn resolve<'s>(&'s self, schema: &'s Value) -> &'s Value {
        match schema["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
        {
            Some(name) => self
                .doc
                .map(|d| &d["components"]["schemas"][name])
                .filter(|s| !s.is_null())
                .unwrap_or(&Value::Null),
            None => schema,
        }
    }

    fn check(&self, v: &Value, schema: &Value, path: &str, root: bool, out: &mut Vec<Problem>) {
        let schema = self.resolve(schema);
        // An unknown schema (a reference not published) judges nothing; null is "unset".
        if schema.is_null() || v.is_null() {
            return;
        }
        self.combinations(v, schema, path, root, out);
        if schema["x-kubernetes-int-or-string"] == true || schema["format"] == "int-or-string" {
            int_or_string(v, path, out);
            return;
        }
        enumeration(v, schema, path, out);
        let Some(want) = schema["type"].as_str() else {
            if v.is_object() && schema.get("properties").is_some() {
                self.object(v, schema, path, root, out);
            }
            return;
        };
        let got = type_name(v);
        let fits = got == want || (want == "number" && got == "integer");
        if !fits {
            push(
                out,
                path,
                format!("Invalid value: \"{got}\": must be of type {want}"),
            );
            return;
        }
        match want {
            "object" => self.object(v, schema, path, root, out),
            "array" => {
                for (i, item) in v.as_array().into_iter().flatten().enumerate() {
                    self.check(item, &schema["items"], &format!("{path}[{i}]"), false, out);
                }
            }
            "string" => string_bounds(v.as_str().unwrap_or_default(), schema, path, out),
            "integer" | "number" => number_bounds(v, schema, path, out),
            _ => {}
        }
    }

    /// `allOf`: every part applies; `anyOf`, `oneOf`: at least one of the forms must fit.
    fn combinations(
        &self,
        v: &Value,
        schema: &Value,
        path: &str,
        root: bool,
        out: &mut Vec<Problem>,
    ) {
        for part in schema["allOf"].as_array().into_iter().flatten() {
            self.check(v, part, path, root, out);
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(options) = schema[key].as_array() {
                let fits = options.iter().any(|o| {
                    let mut inner = Vec::new();
                    self.check(v, o, path, root, &mut inner);
                    inner.is_empty()
                });
                if !fits {
                    push(
                        out,
                        path,
                        format!("Invalid value: {v}: matches none of the allowed forms"),
                    );
                }
            }
        }
    }

    fn object(&self, v: &Value, schema: &Value, path: &str, root: bool, out: &mut Vec<Problem>) {
        let Some(fields) = v.as_object() else {
            return;
        };
        let properties = schema["properties"].as_object();
        let additional = &schema["additionalProperties"];
        let open = schema["x-kubernetes-preserve-unknown-fields"] == true || additional == true;
        for (key, value) in fields {
            if root && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            let at = join(path, key);
            match properties.and_then(|p| p.get(key)) {
                Some(s) => self.check(value, s, &at, false, out),
                None if additional.is_object() => self.check(value, additional, &at, false, out),
                None if open || (properties.is_none() && additional.is_null()) => {}
                None => out.push(Problem {
                    path: at,
                    message: "field not declared in schema (unknown field)".to_string(),
                }),
            }
        }
        for key in schema["required"].as_array().into_iter().flatten() {
            let Some(key) = key.as_str() else { continue };
            let defaulted = properties
                .and_then(|p| p.get(key))
                .is_some_and(|s| s.get("default").is_some());
            if !fields.contains_key(key) && !defaulted {
                out.push(Problem {
                    path: join(path, key),
                    message: "Required value".to_string(),
                });
            }
        }
    }
}

/// The `openAPIV3Schema` of each served version of the CRDs in `crds`, by (group, version,
/// kind).
pub fn crd_schemas(crds: &[&crate::model::Object]) -> HashMap<(String, String, String), Value> {
    let mut out = HashMap::new();
    for crd in crds {
        let spec = &crd.data["spec"];
        let (Some(group), Some(kind)) = (spec["group"].as_str(), spec["names"]["kind"].as_str())
        else {
            continue;
        };
        for v in spec["versions"].as_array().into_iter().flatten() {
            if let Some(name) = v["name"].as_str() {
                let schema = v["schema"]["openAPIV3Schema"].clone();
                if !schema.is_null() {
                    out.insert((group.into(), name.into(), kind.into()), schema);
                }
            }
        }
    }
    out
}

/// The OpenAPI v3 documents the server publishes, one per group-version, fetched when first
/// needed. A document is cached under `~/.kube/cache/kubectl-automon/openapi/<server>/` by the
/// hash the server puts in its URL (as kubectl caches them), so only the small index is asked
/// again. Documents are megabytes: each schema stays text until a check reaches it.
pub struct Published {
    /// `api/v1` → its URL (with `?hash=`).
    index: BTreeMap<String, String>,
    docs: HashMap<String, Schemas>,
}

/// One document's schemas, by name, unparsed.
#[derive(serde::Deserialize)]
struct Document {
    components: Schemas,
}

#[derive(serde::Deserialize)]
struct Schemas {
    schemas: HashMap<String, Box<serde_json::value::RawValue>>,
}

/// `api/v1` for the core group, `apis/apps/v1` for the others.
pub fn group_version_path(api_version: &str) -> String {
    if api_version.contains('/') {
        format!("apis/{api_version}")
    } else {
        format!("api/{api_version}")
    }
}

fn cache_dir(cluster: &Cluster) -> Option<std::path::PathBuf> {
    let home = std::env::var_os("KUBECACHEDIR")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".kube/cache"))
        })?;
    let server: String = cluster
        .target
        .server
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Some(home.join("kubectl-automon/openapi").join(server))
}

async fn get_text(cluster: &Cluster, uri: &str) -> anyhow::Result<String> {
    let request = http::Request::get(uri).body(Vec::new())?;
    Ok(cluster
        .client
        .request_text(request)
        .await
        .map_err(|e| cluster.target.classify(e))?)
}

/// The `$ref`s a schema makes, by schema name.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(name) = m
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
            {
                out.push(name.to_string());
            }
            m.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

impl Published {
    /// Reads the index (`/openapi/v3`).
    pub async fn index(cluster: &Cluster) -> anyhow::Result<Published> {
        let index: Value = serde_json::from_str(&get_text(cluster, "/openapi/v3").await?)?;
        let index = index["paths"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v["serverRelativeURL"].as_str()?.to_string())))
            .collect();
        Ok(Published {
            index,
            docs: HashMap::new(),
        })
    }

    /// Fetches (or reads from the cache) the documents of these group-versions, at once.
    pub async fn load(&mut self, cluster: &Cluster, paths: impl IntoIterator<Item = String>) {
        let dir = cache_dir(cluster);
        let mut wanted: Vec<(String, String)> = paths
            .into_iter()
            .filter(|p| !self.docs.contains_key(p))
            .filter_map(|p| Some((p.clone(), self.index.get(&p)?.clone())))
            .collect();
        wanted.sort();
        wanted.dedup();
        let fetched = futures::future::join_all(wanted.into_iter().map(|(path, url)| {
            let file = dir.as_ref().map(|d| {
                let key: String = url
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .collect();
                d.join(format!("{key}.json"))
            });
            async move {
                let parse = |text: &str| serde_json::from_str::<Document>(text).ok();
                if let Some(doc) = file
                    .as_ref()
                    .and_then(|f| std::fs::read_to_string(f).ok())
                    .and_then(|t| parse(&t))
                {
                    return (path, Some(doc));
                }
                let text = get_text(cluster, &url).await.ok();
                let doc = text.as_deref().and_then(parse);
                if let (Some(text), Some(_), Some(file)) = (&text, &doc, &file) {
                    // A cache that cannot be written is only slower next time.
                    let _ = std::fs::create_dir_all(file.parent().expect("a file in a dir"))
                        .and_then(|_| std::fs::write(file, text));
                }
                (path, doc)
            }
        }))
        .await;
        for (path, doc) in fetched {
            if let Some(doc) = doc {
                self.docs.insert(path, doc.components);
            }
        }
    }

    /// The schema of `api_version`/`kind` and a document holding every schema it reaches, when
    /// the server publishes them. Only those schemas are parsed.
    pub fn schema(&self, api_version: &str, kind: &str) -> Option<(Value, Value)> {
        let schemas = &self.docs.get(&group_version_path(api_version))?.schemas;
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let parse =
            |name: &str| -> Option<Value> { serde_json::from_str(schemas.get(name)?.get()).ok() };
        // Schema names end in the kind (`io.k8s.api.apps.v1.Deployment`); the extension says
        // which group and version each is.
        let (name, schema) = schemas
            .keys()
            .filter(|n| n.rsplit('.').next() == Some(kind))
            .filter_map(|n| Some((n.clone(), parse(n)?)))
            .find(|(_, s)| {
                s["x-kubernetes-group-version-kind"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|g| g["group"] == group && g["version"] == version && g["kind"] == kind)
            })?;
        let mut reached: serde_json::Map<String, Value> = serde_json::Map::new();
        let mut pending = Vec::new();
        refs(&schema, &mut pending);
        reached.insert(name, schema.clone());
        while let Some(next) = pending.pop() {
            if reached.contains_key(&next) {
                continue;
            }
            if let Some(s) = parse(&next) {
                refs(&s, &mut pending);
                reached.insert(next, s);
            }
        }
        let doc = serde_json::json!({"components": {"schemas": reached}});
        Some((doc, schema))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn doc() -> Value {
        json!({"components": {"schemas": {
            "Quantity": {"type": "string"},
            "Container": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string"},
                "ports": {"type": "array", "items": {"type": "object", "properties": {
                    "containerPort": {"type": "integer", "format": "int32"},
                    "protocol": {"type": "string", "default": "TCP", "enum": ["TCP", "UDP", "SCTP"]}
                }}},
                "resources": {"type": "object", "properties": {
                    "limits": {"type": "object", "additionalProperties": {"allOf": [{"$ref": "#/components/schemas/Quantity"}]}}
                }}
            }},
            "Pod": {"type": "object", "properties": {
                "apiVersion": {"type": "string"},
                "spec": {"type": "object", "properties": {
                    "containers": {"type": "array", "items": {"allOf": [{"$ref": "#/components/schemas/Container"}]}},
                    "port": {"x-kubernetes-int-or-string": true}
                }}
            }}
        }}})
    }

    fn pod_schema(d: &Value) -> Value {
        d["components"]["schemas"]["Pod"].clone()
    }

    #[test]
    fn a_well_formed_object_has_no_problem() {
        let d = doc();
        let pod = json!({"apiVersion": "v1", "spec": {"port": "web", "containers": [
            {"name": "a", "ports": [{"containerPort": 80}], "resources": {"limits": {"cpu": "1"}}}
        ]}});
        assert_eq!(check(&pod, &pod_schema(&d), Some(&d), false), []);
    }

    #[test]
    fn types_unknown_and_required_fields_and_enums_are_named_by_path() {
        let d = doc();
        let pod = json!({"spec": {"port": 1.5, "containers": [
            {"ports": [{"containerPort": "80", "protocol": "HTTP"}], "resourcez": {}},
        ]}});
        let problems: Vec<String> = check(&pod, &pod_schema(&d), Some(&d), false)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            problems,
            [
                "spec.containers[0].ports[0].containerPort: Invalid value: \"string\": must be of type integer",
                "spec.containers[0].ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"TCP\", \"UDP\", \"SCTP\"",
                "spec.containers[0].resourcez: field not declared in schema (unknown field)",
                "spec.containers[0].name: Required value",
                "spec.port: Invalid value: \"number\": must be an integer or a string",
            ]
        );
    }

    #[test]
    fn a_crd_schema_checks_patterns_and_bounds_and_leaves_metadata_to_the_server() {
        let schema = json!({"type": "object", "properties": {
            "apiVersion": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {"type": "object", "properties": {
                "retentionSize": {"type": "string", "pattern": "(^0|([0-9]*[.])?[0-9]+((K|M|G|T|E|P)i?)?B)$"},
                "replicas": {"type": "integer", "minimum": 0},
                "podMetadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
            }}
        }});
        let cr = json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
            "metadata": {"name": "x", "labels": {"a": "b"}},
            "spec": {"retentionSize": "40 gigs", "replicas": -1, "podMetadata": {"anything": 1}}});
        let problems: Vec<String> = check(&cr, &schema, None, true)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            problems,
            [
                "spec.replicas: Invalid value: -1: should be greater than or equal to 0",
                "spec.retentionSize: Invalid value: \"40 gigs\": should match '(^0|([0-9]*[.])?[0-9]+((K|M|G|T|E|P)i?)?B)$'",
            ]
        );
    }

    #[test]
    fn a_published_type_comes_with_exactly_the_schemas_it_reaches() {
        let text = json!({"components": {"schemas": {
            "io.k8s.api.apps.v1.Deployment": {"type": "object",
                "x-kubernetes-group-version-kind": [{"group": "apps", "version": "v1", "kind": "Deployment"}],
                "properties": {"spec": {"allOf": [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}]}}},
            "io.k8s.api.apps.v1.DeploymentSpec": {"type": "object", "required": ["selector"],
                "properties": {"selector": {"type": "object"}}},
            "io.k8s.api.apps.v1beta1.Deployment": {"type": "object",
                "x-kubernetes-group-version-kind": [{"group": "apps", "version": "v1beta1", "kind": "Deployment"}]},
            "io.k8s.api.core.v1.Unrelated": {"type": "object"}
        }}})
        .to_string();
        let doc: Document = serde_json::from_str(&text).unwrap();
        let published = Published {
            index: BTreeMap::new(),
            docs: HashMap::from([("apis/apps/v1".to_string(), doc.components)]),
        };
        let (doc, schema) = published.schema("apps/v1", "Deployment").unwrap();
        let reached: Vec<&String> = doc["components"]["schemas"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(
            reached,
            [
                "io.k8s.api.apps.v1.Deployment",
                "io.k8s.api.apps.v1.DeploymentSpec"
            ]
        );
        let problems = check(&json!({"spec": {}}), &schema, Some(&doc), false);
        assert_eq!(problems[0].to_string(), "spec.selector: Required value");
        assert!(published.schema("apps/v1", "StatefulSet").is_none());
        assert!(published.schema("v1", "Deployment").is_none());
    }

    #[test]
    fn crd_schemas_are_found_by_group_version_and_kind() {
        let crd = crate::render::custom(json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "probes.monitoring.coreos.com"},
            "spec": {"group": "monitoring.coreos.com", "names": {"kind": "Probe"},
                     "versions": [{"name": "v1", "schema": {"openAPIV3Schema": {"type": "object"}}}]}
        }));
        let schemas = crd_schemas(&[&crd]);
        assert_eq!(
            schemas[&("monitoring.coreos.com".into(), "v1".into(), "Probe".into())],
            json!({"type": "object"})
        );
        assert_eq!(group_version_path("v1"), "api/v1");
        assert_eq!(group_version_path("apps/v1"), "apis/apps/v1");
    }
}
