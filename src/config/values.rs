//! The values a user gave: the sparse tree of a file merged with each `--set` (Helm's rules:
//! maps merge key by key, lists replace), never the defaults. The ApplySet parent stores them,
//! and every reader gets the running binary's defaults with them on top, so a default a newer
//! plugin changes reaches a stack an older one installed (unlike Helm's `--reuse-values`).
//!
//! v0.1.0 stored the whole effective configuration instead: read from a parent it wrote, every
//! value equal to v0.1.0's default (`defaults/v0.1.0.yaml`) is that default, not a choice.

use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value};

use super::{Config, ConfigError};
use crate::versions::PLUGIN_VERSION;

/// The defaults of v0.1.0, the last version that stored its whole configuration.
const V0_1_0_DEFAULTS: &str = include_str!("defaults/v0.1.0.yaml");
/// The first version whose parent holds only the user's values.
const VALUES_SINCE: &str = "v0.2.0";

/// The user's values: a YAML mapping, keys sorted (serde_json's map is ordered by key).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Values(Map<String, Value>);

/// Where the values start before each `--set` changes them.
pub enum Base<'a> {
    /// `-f`: the file is the whole set of values, as with `kubectl apply -f`.
    File { path: &'a Path, text: &'a str },
    /// The values the last `enable` stored (in `origin`, named in errors).
    Stored { values: Values, origin: String },
    /// Nothing given, nothing stored.
    Defaults,
}

/// A v0.1.0 parent read as values: what was recognised, for `enable` and `history` to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recognised {
    /// The automon version the parent names (`v0.1.0`), when it names one.
    pub version: Option<String>,
    /// How many of the user's values were found (the namespace aside).
    pub values: usize,
}

impl Recognised {
    /// `recognised 1 value of yours in the configuration v0.1.0 stored; …`, and why a parent
    /// that names no version, or another, was read as v0.1.0's.
    pub fn describe(&self) -> String {
        let read_as = match self.version.as_deref() {
            None => {
                "the stored configuration names no plugin version, so it was read as v0.1.0's: "
                    .to_string()
            }
            Some("v0.1.0") => String::new(),
            Some(v) => {
                format!("the stored configuration was written by automon {v}, read as v0.1.0's: ")
            }
        };
        let found = match self.values {
            0 => "found none of your own values".to_string(),
            1 => "recognised 1 value of yours".to_string(),
            n => format!("recognised {n} values of yours"),
        };
        format!(
            "{read_as}{found} in the configuration v0.1.0 stored; the rest were v0.1.0's defaults and now follow {PLUGIN_VERSION}'s"
        )
    }
}

/// One of the user's values next to the running binary's default for its key.
#[derive(Debug, Clone, PartialEq)]
pub struct Compared {
    /// The dotted key, e.g. `prometheus.retention`.
    pub key: String,
    pub value: Value,
    /// Today's default there; `None` where the defaults have nothing (an optional section).
    pub default: Option<Value>,
}

impl Compared {
    pub fn differs(&self) -> bool {
        !self.default.as_ref().is_some_and(|d| same(&self.value, d))
    }

    /// `prometheus.retention=30d (default 15d)`; a list or a section is only counted, since it
    /// may carry a receiver's URL.
    pub fn describe(&self) -> String {
        let default = match &self.default {
            Some(d) if self.differs() => format!(" (default {})", shown(d)),
            _ => String::new(),
        };
        format!("{}={}{default}", self.key, shown(&self.value))
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => crate::output::plural(a.len(), "item"),
        Value::Object(_) => "{…}".into(),
        other => other.to_string(),
    }
}

impl super::Config {
    /// The configuration a command runs with: the values given ([`Values::given`], the one
    /// place they are made, which also checks the literal credentials), sealed (every literal
    /// credential moved out, a reference to `automon-credentials` in its place), over the
    /// running binary's defaults; and the credentials taken out, for that Secret.
    pub fn configured(
        base: Base<'_>,
        sets: &[String],
        namespace: Option<&str>,
    ) -> Result<(super::Config, super::credentials::Credentials), ConfigError> {
        let (values, credentials) = Values::given(base, sets, namespace)?.sealed();
        Ok((
            super::Config::from_values(values, "the values given")?,
            credentials,
        ))
    }
}

impl Values {
    /// The one place the final values are made: the base (a file, the stored values, or
    /// nothing), each `--set` over it, and `-n` (`namespace`) last. Each step is validated as
    /// it is taken, so an error names the file and line, the flag, or the stored ConfigMap.
    pub fn given(
        base: Base<'_>,
        sets: &[String],
        namespace: Option<&str>,
    ) -> Result<Values, ConfigError> {
        let mut config = match base {
            Base::File { path, text } => Config::from_yaml(text, &path.display().to_string())?,
            Base::Stored { values, origin } => Config::from_values(values, &origin)?,
            Base::Defaults => Config::default(),
        };
        for set in sets {
            config = config.with_set(set)?;
        }
        if let Some(ns) = namespace {
            config = config
                .with_set(&format!("namespace={ns}"))
                .map_err(|e| ConfigError {
                    origin: "-n/--namespace".into(),
                    ..e
                })?;
        }
        Ok(config.given)
    }

    /// A parsed YAML document as values; anything but a mapping (an empty file) is none.
    pub fn from_tree(tree: Value) -> Values {
        match tree {
            Value::Object(map) => Values(map),
            _ => Values::default(),
        }
    }

    /// Sets one dotted key as `--set` does: the sections on the way are made, a value that is
    /// in the way is replaced.
    pub fn set(&mut self, path: &str, value: Value) {
        let mut map = &mut self.0;
        let mut parts = path.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                map.insert(part.to_string(), value);
                return;
            }
            let slot = map
                .entry(part.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            let Value::Object(next) = slot else {
                unreachable!("made a section just above")
            };
            map = next;
        }
    }

    /// These values less one top-level key.
    pub fn without(&self, key: &str) -> Values {
        let mut v = self.clone();
        v.0.remove(key);
        v
    }

    /// These values with the stack's namespace: what the parent stores, so that a plugin that
    /// reads them over its own defaults (v0.1.0 does) finds the stack where it is.
    pub fn with_namespace(&self, namespace: &str) -> Values {
        let mut v = self.clone();
        v.0.insert("namespace".into(), Value::String(namespace.into()));
        v
    }

    /// These values with every literal credential moved out ([`super::credentials::seal`]): a
    /// reference to `automon-credentials` in its place; and the credentials, for that Secret.
    pub fn sealed(self) -> (Values, super::credentials::Credentials) {
        let mut tree = Value::Object(self.0);
        let credentials = super::credentials::seal(&mut tree);
        (Values::from_tree(tree), credentials)
    }

    /// Deterministic YAML, keys sorted; `{}` when there are none.
    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(&self.0).expect("values serialise")
    }

    /// Every value given (the namespace aside: it says where the stack is), with today's
    /// default for its key; lists and sections whose defaults are not sections are one value.
    pub fn compared(&self) -> Vec<Compared> {
        let defaults = serde_json::to_value(Config::default()).expect("defaults serialise");
        let mut out = Vec::new();
        for (key, value) in &self.0 {
            if key != "namespace" {
                compare(key, value, defaults.get(key), &mut out);
            }
        }
        out
    }

    /// The values in a parent's `config.yaml`, by the automon `version` the parent names
    /// (`cluster::inventory::installed_version`):
    /// values as they are from v0.2.0 on; before (or with no version), v0.1.0's whole
    /// configuration, whose values equal to v0.1.0's defaults are dropped.
    pub fn stored(
        text: &str,
        version: Option<&str>,
        origin: &str,
    ) -> Result<(Values, Option<Recognised>), ConfigError> {
        let tree: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_saphyr::from_str(text).map_err(|e| super::located(text, origin, e))?
        };
        if version
            .and_then(|v| crate::versions::compare(v, VALUES_SINCE))
            .is_some_and(|o| o.is_ge())
        {
            return Ok((Values::from_tree(tree), None));
        }
        let defaults: Value = serde_saphyr::from_str(V0_1_0_DEFAULTS).expect("v0.1.0's defaults");
        let values = Values::from_tree(chosen(&tree, Some(&defaults)).unwrap_or(Value::Null));
        let count = values.compared().len();
        Ok((
            values,
            Some(Recognised {
                version: version.map(str::to_string),
                values: count,
            }),
        ))
    }
}

/// The keys v0.1.0 left out of its YAML when unset (a resource amount, `Option` with
/// `skip_serializing_if`): one its whole configuration lacks where its default has one was
/// unset on purpose.
const LEFT_OUT_WHEN_UNSET: [&str; 2] = ["cpu", "memory"];

/// The part of a stored value that is not `default`: sections leaf by leaf, lists and scalars
/// whole; an amount unset on purpose is a null, which unsets it again.
fn chosen(stored: &Value, default: Option<&Value>) -> Option<Value> {
    match (stored, default) {
        (Value::Object(s), Some(Value::Object(d))) => {
            let mut out: Map<String, Value> = s
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), chosen(v, d.get(k))?)))
                .collect();
            for (k, v) in d {
                if LEFT_OUT_WHEN_UNSET.contains(&k.as_str()) && !s.contains_key(k) && !v.is_null() {
                    out.insert(k.clone(), Value::Null);
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        (s, Some(d)) if same(s, d) => None,
        (Value::Null, None) => None,
        (s, _) => Some(s.clone()),
    }
}

/// Whether two values are the same setting: numbers by value (`80` is `80.0`), lists whole.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// The leaves of `value` at `key`, each beside the default at the same place.
fn compare(key: &str, value: &Value, default: Option<&Value>, out: &mut Vec<Compared>) {
    match (value, default) {
        (Value::Object(m), Some(Value::Object(d))) => {
            for (k, v) in m {
                compare(&format!("{key}.{k}"), v, d.get(k), out);
            }
        }
        (Value::Object(m), None | Some(Value::Null)) => {
            for (k, v) in m {
                compare(&format!("{key}.{k}"), v, None, out);
            }
        }
        _ => out.push(Compared {
            key: key.to_string(),
            value: value.clone(),
            default: default.filter(|d| !d.is_null()).cloned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sets(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    /// v0.1.0's whole configuration for the defaults with `changes` (`--set`s) on top, as that
    /// version stored it.
    fn v0_1_0_with(changes: &[&str]) -> String {
        let mut tree: Value = serde_saphyr::from_str(V0_1_0_DEFAULTS).unwrap();
        for c in changes {
            let (path, value) = super::super::parse_set(c).unwrap();
            let mut node = &mut tree;
            for part in path.split('.') {
                node = &mut node[part];
            }
            *node = value;
        }
        serde_saphyr::to_string(&tree).unwrap()
    }

    #[test]
    fn the_recorded_defaults_are_v0_1_0s_whole_configuration() {
        // Today's defaults equal v0.1.0's: a default changed here does not change the record.
        let recorded: Value = serde_saphyr::from_str(V0_1_0_DEFAULTS).unwrap();
        let v = Config::from_yaml(V0_1_0_DEFAULTS, "v0.1.0.yaml").unwrap();
        assert!(recorded.get("alerts").is_some() && recorded.get("namespace").is_some());
        assert!(v.given.0.len() > 5, "{:?}", v.given);
    }

    #[test]
    fn only_what_the_user_gave_is_kept() {
        let v = Values::given(
            Base::Defaults,
            &sets(&[
                "prometheus.retention=30d",
                "alertmanager.route.groupBy=[alertname]",
            ]),
            None,
        )
        .unwrap();
        assert_eq!(
            v.0,
            *json!({"prometheus": {"retention": "30d"}, "alertmanager": {"route": {"groupBy": ["alertname"]}}})
                .as_object()
                .unwrap()
        );
        assert_eq!(
            v.to_yaml(),
            "alertmanager:\n  route:\n    groupBy:\n    - alertname\nprometheus:\n  retention: 30d\n"
        );
        // A file and sets: maps merge key by key, lists replace, the file's other keys stay.
        let text = "prometheus:\n  replicas: 2\n  retention: 10d\nalertmanager:\n  route:\n    groupBy: [a, b]\n";
        let v = Values::given(
            Base::File {
                path: Path::new("a.yaml"),
                text,
            },
            &sets(&["prometheus.retention=30d", "alertmanager.route.groupBy=[c]"]),
            Some("monitoring"),
        )
        .unwrap();
        assert_eq!(
            Value::Object(v.0.clone()),
            json!({"namespace": "monitoring", "prometheus": {"replicas": 2, "retention": "30d"},
                   "alertmanager": {"route": {"groupBy": ["c"]}}})
        );
        // The configuration made of them is the one the file and sets always made.
        let c = Config::from_values(v.clone(), "values").unwrap();
        let before = Config::from_yaml(text, "a.yaml")
            .unwrap()
            .with_set("prometheus.retention=30d")
            .unwrap()
            .with_set("alertmanager.route.groupBy=[c]")
            .unwrap()
            .with_set("namespace=monitoring")
            .unwrap();
        assert_eq!(c, before);
        assert_eq!(c.given, v);
        assert_eq!(c.prometheus.scrape_interval.0, "30s");
    }

    #[test]
    fn a_value_equal_to_todays_default_is_still_the_users() {
        let v = Values::given(Base::Defaults, &sets(&["prometheus.retention=15d"]), None).unwrap();
        assert_eq!(v.to_yaml(), "prometheus:\n  retention: 15d\n");
        let c = v.compared();
        assert_eq!(c.len(), 1);
        assert!(!c[0].differs());
        assert_eq!(c[0].describe(), "prometheus.retention=15d");
    }

    #[test]
    fn stored_values_and_sets_make_the_next_values() {
        let (stored, recognised) = Values::stored(
            "namespace: ns\nprometheus:\n  retention: 30d\n",
            Some("v0.2.0"),
            "ConfigMap ns/automon key config.yaml",
        )
        .unwrap();
        assert_eq!(recognised, None);
        let v = Values::given(
            Base::Stored {
                values: stored,
                origin: "ConfigMap ns/automon key config.yaml".into(),
            },
            &sets(&["prometheus.replicas=2"]),
            Some("ns"),
        )
        .unwrap();
        assert_eq!(
            v.to_yaml(),
            "namespace: ns\nprometheus:\n  replicas: 2\n  retention: 30d\n"
        );
        // A stored value the running binary refuses is named with the ConfigMap and its line.
        let (bad, _) =
            Values::stored("prometheus:\n  replicas: many\n", Some("v0.2.0"), "x").unwrap();
        let e = Values::given(
            Base::Stored {
                values: bad,
                origin: "ConfigMap ns/automon key config.yaml".into(),
            },
            &[],
            None,
        )
        .unwrap_err();
        assert_eq!(e.origin, "ConfigMap ns/automon key config.yaml line 2");
        assert_eq!(e.key, "prometheus.replicas");
        // -n is named as the flag.
        let e = Values::given(Base::Defaults, &[], Some("Not_A_Label")).unwrap_err();
        assert_eq!(e.origin, "-n/--namespace");
        assert_eq!(e.key, "namespace");
    }

    #[test]
    fn a_v0_1_0_configuration_with_two_changes_gives_those_two_values() {
        let text = v0_1_0_with(&[
            "prometheus.retention=30d",
            "alerts.highCpu.thresholdPercent=90",
        ]);
        for version in [Some("v0.1.0"), None, Some("v0.0.9")] {
            let (v, recognised) = Values::stored(&text, version, "stored").unwrap();
            assert_eq!(
                Value::Object(v.0.clone()),
                json!({"prometheus": {"retention": "30d"}, "alerts": {"highCpu": {"thresholdPercent": 90}}}),
                "{version:?}"
            );
            let recognised = recognised.unwrap();
            assert_eq!(recognised.values, 2);
            let said = recognised.describe();
            assert!(said.contains("recognised 2 values of yours in the configuration v0.1.0 stored; the rest were v0.1.0's defaults and now follow v"), "{said}");
            assert_eq!(
                said.contains("read as v0.1.0's"),
                version != Some("v0.1.0"),
                "{said}"
            );
        }
    }

    #[test]
    fn a_v0_1_0_value_equal_to_its_default_is_a_default() {
        // 80.0 written as 80, the namespace v0.1.0 defaulted to: nothing of the user's.
        let text = v0_1_0_with(&["alerts.highCpu.thresholdPercent=80", "namespace=automon"]);
        let (v, r) = Values::stored(&text, Some("v0.1.0"), "stored").unwrap();
        assert_eq!(v, Values::default());
        assert_eq!(
            r.unwrap().describe().split(" in ").next().unwrap(),
            "found none of your own values"
        );
        // Another namespace is kept (the stack is there) but not counted as a setting.
        let text = v0_1_0_with(&["namespace=monitoring", "prometheus.replicas=2"]);
        let (v, r) = Values::stored(&text, None, "stored").unwrap();
        assert_eq!(
            Value::Object(v.0),
            json!({"namespace": "monitoring", "prometheus": {"replicas": 2}})
        );
        assert_eq!(r.unwrap().values, 1);
    }

    #[test]
    fn v0_1_0_lists_are_compared_whole() {
        // One more item in a list keeps the whole list; the same list is the default.
        let text = v0_1_0_with(&["alertmanager.route.groupBy=[alertname, node, cluster]"]);
        let (v, _) = Values::stored(&text, None, "stored").unwrap();
        assert_eq!(
            Value::Object(v.0),
            json!({"alertmanager": {"route": {"groupBy": ["alertname", "node", "cluster"]}}})
        );
        let text = v0_1_0_with(&[
            "alertmanager.route.groupBy=[alertname, node]",
            "images.pullSecrets=[]",
        ]);
        let (v, _) = Values::stored(&text, None, "stored").unwrap();
        assert_eq!(v, Values::default());
        // A receiver list is the user's whole.
        let text = v0_1_0_with(&[
            "alertmanager.receivers=[{name: team, webhook: {url: 'http://hook.example/x'}}]",
        ]);
        let (v, _) = Values::stored(&text, None, "stored").unwrap();
        assert_eq!(
            Value::Object(v.0),
            json!({"alertmanager": {"receivers": [{"name": "team", "webhook": {"url": "http://hook.example/x"}}]}})
        );
    }

    #[test]
    fn a_v0_1_0_amount_left_out_stays_unset() {
        // A memory limit the user removed (v0.1.0 wrote no key for it) is kept removed.
        let mut tree: Value = serde_saphyr::from_str(&v0_1_0_with(&[])).unwrap();
        tree["grafana"]["resources"]["limits"]
            .as_object_mut()
            .unwrap()
            .remove("memory");
        let text = serde_saphyr::to_string(&tree).unwrap();
        let (v, _) = Values::stored(&text, None, "stored").unwrap();
        assert_eq!(
            Value::Object(v.0.clone()),
            json!({"grafana": {"resources": {"limits": {"memory": null}}}})
        );
        let c = Config::from_values(v, "values").unwrap();
        assert_eq!(c.grafana.resources.limits.memory, None);
        assert_eq!(
            c.grafana.resources.requests,
            Config::default().grafana.resources.requests
        );
    }

    #[test]
    fn a_partial_configuration_without_a_version_keeps_what_it_says() {
        // Read as v0.1.0's: what it leaves out is no choice, what it says is.
        let (v, r) = Values::stored("nodeExporter:\n  excludeLabel: skip\n", None, "s").unwrap();
        assert_eq!(
            Value::Object(v.0),
            json!({"nodeExporter": {"excludeLabel": "skip"}})
        );
        assert_eq!(r.unwrap().values, 1);
        let (v, _) = Values::stored("", None, "s").unwrap();
        assert_eq!(v, Values::default());
    }

    #[test]
    fn what_differs_from_todays_defaults() {
        let v = Values::given(
            Base::Defaults,
            &sets(&[
                "prometheus.retention=30d",
                "prometheus.scrapeInterval=30s",
                "prometheus.storage.size=10Gi",
                "alertmanager.receivers=[{name: a, webhook: {url: 'http://secret.example/t0ken'}}]",
            ]),
            Some("elsewhere"),
        )
        .unwrap();
        let said: Vec<String> = v
            .compared()
            .iter()
            .filter(|c| c.differs())
            .map(Compared::describe)
            .collect();
        assert_eq!(
            said,
            [
                "alertmanager.receivers=1 item (default 0 items)",
                "prometheus.retention=30d (default 15d)",
                "prometheus.storage.size=10Gi",
            ]
        );
        assert!(!said.concat().contains("t0ken"));
    }
}
