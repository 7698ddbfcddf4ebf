//! The one place where the versions and images of everything automon installs are pinned.
//! The renderer, `version` and the CRD source all read from here; `images.registry` in the
//! configuration rewrites the registry part for mirrors and air-gapped clusters.

use serde::Serialize;

/// The oldest Kubernetes minor version the stack is supported on, and the newest tested.
pub const MIN_KUBERNETES_MINOR: u32 = 30;
pub const MAX_TESTED_KUBERNETES_MINOR: u32 = 36;

/// One pinned component: its name as `status` shows it, its version and its default image.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Component {
    pub name: &'static str,
    pub version: &'static str,
    /// Registry host of the default image; replaced by `images.registry` when set.
    pub registry: &'static str,
    /// Repository path below the registry.
    pub repository: &'static str,
}

impl Component {
    /// The full image reference, optionally under a mirror registry.
    pub fn image(&self, registry_override: Option<&str>) -> String {
        let registry = registry_override
            .unwrap_or(self.registry)
            .trim_end_matches('/');
        format!("{registry}/{}:{}", self.repository, self.version)
    }
}

pub const PROMETHEUS_OPERATOR: Component = Component {
    name: "prometheus-operator",
    version: "v0.94.1",
    registry: "quay.io",
    repository: "prometheus-operator/prometheus-operator",
};
pub const PROMETHEUS_CONFIG_RELOADER: Component = Component {
    name: "prometheus-config-reloader",
    version: PROMETHEUS_OPERATOR.version,
    registry: "quay.io",
    repository: "prometheus-operator/prometheus-config-reloader",
};
pub const PROMETHEUS: Component = Component {
    name: "prometheus",
    version: "v3.16.0",
    registry: "quay.io",
    repository: "prometheus/prometheus",
};
pub const ALERTMANAGER: Component = Component {
    name: "alertmanager",
    version: "v0.35.0",
    registry: "quay.io",
    repository: "prometheus/alertmanager",
};
pub const GRAFANA: Component = Component {
    name: "grafana",
    version: "13.2.3",
    registry: "docker.io",
    repository: "grafana/grafana",
};
pub const NODE_EXPORTER: Component = Component {
    name: "node-exporter",
    version: "v1.12.1",
    registry: "quay.io",
    repository: "prometheus/node-exporter",
};
pub const KUBE_STATE_METRICS: Component = Component {
    name: "kube-state-metrics",
    version: "v2.20.0",
    registry: "registry.k8s.io",
    repository: "kube-state-metrics/kube-state-metrics",
};
/// Windows nodes' node-exporter. A HostProcess image: the same one runs on every Windows
/// Server version that supports HostProcess containers. 0.31.6, of the 0.31 line, whose memory
/// collector reports `windows_memory_physical_total_bytes` (the old `cs` collector is gone) and
/// whose system collector reports `windows_system_boot_time_timestamp_seconds`, both of which
/// the rules and dashboards use. Its image tags carry no `v`.
pub const WINDOWS_EXPORTER: Component = Component {
    name: "windows-exporter",
    version: "0.31.6",
    registry: "ghcr.io",
    repository: "prometheus-community/windows-exporter",
};
/// NVIDIA's GPU exporter (DCGM 4.6.1, exporter 4.8.4): the tag NVIDIA's own example DaemonSet
/// runs. The distroless variant: no shell or package manager in a pod that holds SYS_ADMIN.
pub const DCGM_EXPORTER: Component = Component {
    name: "dcgm-exporter",
    version: "4.6.1-4.8.4-distroless",
    registry: "nvcr.io",
    repository: "nvidia/k8s/dcgm-exporter",
};
/// Grafana's dashboard sidecar: copies ConfigMaps labelled `grafana_dashboard: "1"` into
/// the folder Grafana's file provider reads.
pub const GRAFANA_SIDECAR: Component = Component {
    name: "grafana-sidecar",
    version: "1.30.10",
    registry: "quay.io",
    repository: "kiwigrid/k8s-sidecar",
};
/// Thanos: the sidecar beside each Prometheus (with `prometheus.thanos`, or more than one shard)
/// and Thanos Query over the shards; the release the pinned operator (v0.94.1) defaults to and
/// is tested with.
pub const THANOS: Component = Component {
    name: "thanos",
    version: "v0.42.4",
    registry: "quay.io",
    repository: "thanos/thanos",
};

/// Every pinned component, in the order `version` and `status` list them.
pub const COMPONENTS: &[Component] = &[
    PROMETHEUS_OPERATOR,
    PROMETHEUS_CONFIG_RELOADER,
    PROMETHEUS,
    ALERTMANAGER,
    GRAFANA,
    NODE_EXPORTER,
    KUBE_STATE_METRICS,
    GRAFANA_SIDECAR,
    WINDOWS_EXPORTER,
    DCGM_EXPORTER,
    THANOS,
];

/// The plugin's own version, from Cargo.toml.
pub const PLUGIN_VERSION: &str = concat!("v", env!("CARGO_PKG_VERSION"));

/// The git commit the plugin was built from (build.rs), or "unknown" outside a checkout.
pub const GIT_COMMIT: &str = env!("AUTOMON_GIT_COMMIT");

/// What `--version` prints: the version, and the commit that makes it findable.
pub const LONG_VERSION: &str = concat!(
    "v",
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("AUTOMON_GIT_COMMIT"),
    ")"
);

/// A version as automon and the components write them (`v0.2.0`, `0.10.0-rc.1`, `v1.2.3+build`),
/// for comparing by semantic-versioning precedence; `None` when it is not one.
pub fn parse(version: &str) -> Option<semver::Version> {
    semver::Version::parse(version.trim().trim_start_matches('v')).ok()
}

/// How two versions order by precedence: numerically field by field (0.10.0 after 0.9.0), a
/// pre-release before its release (0.3.0-rc.1 before 0.3.0), build metadata ignored; `None`
/// when either is not a version.
pub fn compare(a: &str, b: &str) -> Option<std::cmp::Ordering> {
    Some(parse(a)?.cmp_precedence(&parse(b)?))
}

/// The plugin against the stack installed in a namespace, as `helm` puts a chart's version
/// against the release's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Skew {
    /// This plugin installed it (or one of the same version).
    Same,
    /// An older plugin installed it: `enable` upgrades it.
    PluginNewer,
    /// A newer plugin installed it: this one should be upgraded before it changes the stack.
    PluginOlder,
    /// The stack does not say which version installed it, or not as a version.
    Unknown,
}

/// How [`PLUGIN_VERSION`] stands against the version that installed the stack.
pub fn skew(installed: Option<&str>) -> Skew {
    skew_of(PLUGIN_VERSION, installed)
}

fn skew_of(plugin: &str, installed: Option<&str>) -> Skew {
    use std::cmp::Ordering;
    match installed.and_then(|i| compare(plugin, i)) {
        Some(Ordering::Equal) => Skew::Same,
        Some(Ordering::Greater) => Skew::PluginNewer,
        Some(Ordering::Less) => Skew::PluginOlder,
        None => Skew::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_by_precedence_not_as_text() {
        use std::cmp::Ordering::{Equal, Greater, Less};
        let cases = [
            ("v0.10.0", "v0.9.0", Some(Greater)),
            ("0.2.0", "v0.2.0", Some(Equal)),
            ("v0.2.0", "v0.2.0+build.7", Some(Equal)),
            ("v1.0.0", "v0.99.99", Some(Greater)),
            ("v0.3.0-rc.1", "v0.3.0", Some(Less)),
            ("v0.3.0-rc.2", "v0.3.0-rc.10", Some(Less)),
            ("v0.3.0-alpha", "v0.3.0-alpha.1", Some(Less)),
            ("v0.3.0-beta", "v0.3.0-alpha.1", Some(Greater)),
            ("v0.3.0-rc.1", "v0.2.9", Some(Greater)),
            ("v0.2", "v0.2.0", None),
            ("", "v0.2.0", None),
            ("v0.2.0", "latest", None),
        ];
        for (a, b, want) in cases {
            assert_eq!(compare(a, b), want, "{a} against {b}");
        }
    }

    #[test]
    fn the_plugin_against_the_stack() {
        let cases = [
            ("v0.2.0", Some("v0.2.0"), Skew::Same),
            ("v0.10.0", Some("v0.9.0"), Skew::PluginNewer),
            ("v0.9.0", Some("v0.10.0"), Skew::PluginOlder),
            ("v0.3.0", Some("v0.3.0-rc.1"), Skew::PluginNewer),
            ("v0.3.0-rc.1", Some("v0.3.0"), Skew::PluginOlder),
            ("v0.2.0", Some("0.2.0"), Skew::Same),
            ("v0.2.0", Some("dev"), Skew::Unknown),
            ("v0.2.0", None, Skew::Unknown),
        ];
        for (plugin, installed, want) in cases {
            assert_eq!(
                skew_of(plugin, installed),
                want,
                "{plugin} against {installed:?}"
            );
        }
        assert_eq!(skew(Some(PLUGIN_VERSION)), Skew::Same);
    }

    #[test]
    fn image_uses_default_registry() {
        assert_eq!(
            NODE_EXPORTER.image(None),
            "quay.io/prometheus/node-exporter:v1.12.1"
        );
    }

    #[test]
    fn image_uses_mirror_registry_without_double_slash() {
        assert_eq!(
            GRAFANA.image(Some("mirror.example.com:5000/")),
            "mirror.example.com:5000/grafana/grafana:13.2.3"
        );
    }

    #[test]
    fn class_exporters_follow_a_mirror_too() {
        assert_eq!(
            WINDOWS_EXPORTER.image(None),
            "ghcr.io/prometheus-community/windows-exporter:0.31.6"
        );
        assert_eq!(
            DCGM_EXPORTER.image(Some("mirror.example.com")),
            "mirror.example.com/nvidia/k8s/dcgm-exporter:4.6.1-4.8.4-distroless"
        );
    }

    #[test]
    fn component_names_are_unique() {
        let mut names: Vec<_> = COMPONENTS.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), COMPONENTS.len());
    }
}
