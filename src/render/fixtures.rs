//! Test fixtures for the component modules: rendered objects as JSON, found by kind.

use serde_json::Value;

use crate::{config::Config, model::Object};

/// The default configuration with each of `sets` applied, as `--set` would.
pub fn config(sets: &[&str]) -> Config {
    sets.iter().fold(Config::default(), |c, s| {
        c.with_set(s).unwrap_or_else(|e| panic!("--set {s}: {e}"))
    })
}

pub fn as_json(objects: Vec<Object>) -> Vec<Value> {
    objects
        .into_iter()
        .map(|o| serde_json::to_value(o).expect("objects serialise"))
        .collect()
}

pub fn find<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

/// The arguments of the first container of the Deployment among `objects`.
pub fn deployment_args(objects: &[Value]) -> Vec<String> {
    find(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("the container's arguments")
        .iter()
        .map(|a| a.as_str().expect("an argument is text").to_string())
        .collect()
}
