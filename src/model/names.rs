//! The names, labels and annotations automon writes on the objects it installs and reads back:
//! the one list every layer shares, so that the writer and every reader agree.

/// The namespace automon installs into unless `-n` says otherwise.
pub const DEFAULT_NAMESPACE: &str = "automon";

pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "kubectl-automon";
pub const PART_OF_LABEL: &str = "app.kubernetes.io/part-of";
pub const PART_OF: &str = "automon";
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
pub const VERSION_LABEL: &str = "app.kubernetes.io/version";
pub const APPLYSET_ID_LABEL: &str = "applyset.kubernetes.io/id";
pub const APPLYSET_PART_OF_LABEL: &str = "applyset.kubernetes.io/part-of";
pub const APPLYSET_TOOLING: &str = "applyset.kubernetes.io/tooling";
pub const APPLYSET_GROUP_KINDS: &str = "applyset.kubernetes.io/contains-group-kinds";
/// The labels automon sets on its own objects to say what they are; never a selection label of
/// the user's (`prometheus.select`).
pub const OWN_LABELS: &[&str] = &[
    MANAGED_BY_LABEL,
    PART_OF_LABEL,
    NAME_LABEL,
    COMPONENT_LABEL,
    VERSION_LABEL,
    APPLYSET_ID_LABEL,
    APPLYSET_PART_OF_LABEL,
    "automon.io/scope",
];
/// The ApplySet parent, a ConfigMap that also holds the effective configuration.
pub const PARENT_NAME: &str = "automon";
pub const CONFIG_KEY: &str = "config.yaml";

/// The Lease two loops share, in the stack's namespace.
pub const LEASE_NAME: &str = "automon-reconcile";

/// On the ApplySet parent: `<namespace>/<name>` of the DaemonSet whose exporter the stack
/// scrapes instead of deploying its own.
pub const EXPORTER_FROM: &str = "automon.io/node-exporter-from";
