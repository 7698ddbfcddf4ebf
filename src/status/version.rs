//! Which version of automon installed the stack, beside this plugin's, and what to do when they
//! differ: a newer plugin upgrades the stack with `enable`, an older one is upgraded first, as
//! `helm` tells a chart's version from the release's (pure).

use k8s_openapi::api::core::v1::ConfigMap;
use serde::Serialize;

use crate::{
    cluster::inventory::installed_version,
    model::names::{APPLYSET_TOOLING, PARENT_NAME},
    versions::{self, PLUGIN_VERSION, Skew},
};

/// `status -o json|yaml`'s `version`, `version -o json|yaml`'s `stack`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StackVersion {
    /// The version of automon that last applied the stack; `None` when its parent does not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub installed: Option<String>,
    /// This plugin's version.
    pub plugin: &'static str,
    pub skew: Skew,
}

impl StackVersion {
    pub fn of_parent(parent: &ConfigMap) -> StackVersion {
        StackVersion::of(installed_version(&parent.metadata))
    }

    pub fn of(installed: Option<String>) -> StackVersion {
        StackVersion {
            skew: versions::skew(installed.as_deref()),
            installed,
            plugin: PLUGIN_VERSION,
        }
    }

    /// What is wrong and what to run, when the plugin is not the version that installed the
    /// stack in `ns`; `None` when it is.
    pub fn advice(&self, ns: &str) -> Option<(String, String)> {
        let plugin = self.plugin;
        let installed = self.installed.as_deref().unwrap_or_default();
        match self.skew {
            Skew::Same => None,
            Skew::PluginNewer => Some((
                format!(
                    "the stack was installed by automon {installed}, older than this plugin ({plugin})"
                ),
                format!(
                    "run `kubectl automon enable -n {ns}` to upgrade it (`kubectl automon diff -n {ns}` shows what changes)"
                ),
            )),
            Skew::PluginOlder => Some((
                format!(
                    "the stack was installed by automon {installed}, newer than this plugin ({plugin}); this plugin's checks and its enable know only {plugin}'s stack"
                ),
                "upgrade the plugin: kubectl krew upgrade automon".to_string(),
            )),
            Skew::Unknown => Some((
                match &self.installed {
                    Some(v) => format!(
                        "cannot tell which automon installed the stack: its parent ConfigMap {ns}/{PARENT_NAME} records {v:?}, not a version"
                    ),
                    None => format!(
                        "cannot tell which automon installed the stack: its parent ConfigMap {ns}/{PARENT_NAME} has no {APPLYSET_TOOLING} annotation"
                    ),
                },
                format!(
                    "run `kubectl automon enable -n {ns}` to record this plugin's version ({plugin})"
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advice_names_the_versions_and_the_command() {
        let same = StackVersion::of(Some(PLUGIN_VERSION.to_string()));
        assert_eq!(same.advice("automon"), None);
        let newer = StackVersion {
            installed: Some("v0.1.0".into()),
            plugin: "v0.2.0",
            skew: Skew::PluginNewer,
        };
        let (what, fix) = newer.advice("mon").unwrap();
        assert!(
            what.contains("v0.1.0, older than this plugin (v0.2.0)"),
            "{what}"
        );
        assert!(
            fix.starts_with("run `kubectl automon enable -n mon` to upgrade it"),
            "{fix}"
        );
        let older = StackVersion {
            installed: Some("v0.10.0".into()),
            plugin: "v0.9.0",
            skew: Skew::PluginOlder,
        };
        let (what, fix) = older.advice("mon").unwrap();
        assert!(
            what.contains("v0.10.0, newer than this plugin (v0.9.0)"),
            "{what}"
        );
        assert_eq!(fix, "upgrade the plugin: kubectl krew upgrade automon");
        let (what, _) = StackVersion::of(None).advice("mon").unwrap();
        assert!(
            what.contains("mon/automon has no applyset.kubernetes.io/tooling"),
            "{what}"
        );
        let (what, _) = StackVersion::of(Some("dev".into())).advice("mon").unwrap();
        assert!(what.contains("records \"dev\""), "{what}");
    }
}
