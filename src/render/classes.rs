//! Node classes: kinds of node that need an exporter of their own. Windows nodes run no Linux
//! containers and get windows-exporter instead of node-exporter; NVIDIA GPU nodes get
//! dcgm-exporter beside it. Pure: a caller folds the cluster's nodes into [`NodeClasses`] and the
//! renderer adds what the classes present need.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::model::slim::SlimNode;
use serde::Serialize;

/// The well-known label that names a node's operating system.
pub const OS_LABEL: &str = "kubernetes.io/os";
pub const WINDOWS: &str = "windows";
/// What NVIDIA's GPU feature discovery (and the GPU operator) label GPU nodes with; the GPU
/// exporter runs where it is `"true"`.
pub const GPU_PRESENT_LABEL: &str = "nvidia.com/gpu.present";
/// The extended resource NVIDIA's device plugin advertises.
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";

/// The `app.kubernetes.io/component` of both class exporters, as of node-exporter.
pub const COMPONENT: &str = "exporter";
/// The Windows exporter's DaemonSet, ServiceAccount, Service and ServiceMonitor; its job.
pub const WINDOWS_EXPORTER: &str = "windows-exporter";
/// windows-exporter's registered port, on the node's address.
pub const WINDOWS_EXPORTER_PORT: u16 = 9182;
/// The GPU exporter's DaemonSet, ServiceAccount, Service and ServiceMonitor; its job.
pub const DCGM_EXPORTER: &str = "dcgm-exporter";
/// dcgm-exporter's port, in the pod's network.
pub const DCGM_EXPORTER_PORT: u16 = 9400;

/// Which classes of node the cluster has. The default, none, renders the stack as it was
/// before classes existed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NodeClasses {
    pub windows: bool,
    pub gpu: bool,
}

impl NodeClasses {
    /// Adds one node's classes, from its labels and allocatable resources.
    pub fn add(
        &mut self,
        labels: &BTreeMap<String, String>,
        allocatable: Option<&BTreeMap<String, Quantity>>,
    ) {
        self.windows |= is_windows(labels);
        self.gpu |= is_gpu(labels, allocatable);
    }

    /// The classes of all `nodes`.
    pub fn of_nodes<'a>(nodes: impl IntoIterator<Item = &'a SlimNode>) -> Self {
        let mut classes = NodeClasses::default();
        for node in nodes {
            classes.add(node.labels(), Some(&node.status.allocatable));
        }
        classes
    }

    /// `Windows and GPU nodes`, for messages.
    pub fn describe(&self) -> String {
        match (self.windows, self.gpu) {
            (true, true) => "Windows and GPU nodes".into(),
            (true, false) => "Windows nodes".into(),
            (false, true) => "GPU nodes".into(),
            (false, false) => "no node classes".into(),
        }
    }
}

/// `kubernetes.io/os=windows`.
pub fn is_windows(labels: &BTreeMap<String, String>) -> bool {
    labels.get(OS_LABEL).map(String::as_str) == Some(WINDOWS)
}

/// Labelled `nvidia.com/gpu.present=true`, or advertising at least one `nvidia.com/gpu` (a
/// device plugin without feature discovery labels nothing).
pub fn is_gpu(
    labels: &BTreeMap<String, String>,
    allocatable: Option<&BTreeMap<String, Quantity>>,
) -> bool {
    labels.get(GPU_PRESENT_LABEL).map(String::as_str) == Some("true")
        || allocatable
            .and_then(|a| a.get(GPU_RESOURCE))
            .is_some_and(|q| positive(&q.0))
}

/// Whether a quantity is above zero. Its number is what comes before the suffix (`2`, `1.5`,
/// `500m`, `1e3`, `1Ki`); the suffix only scales it, so the sign and zero-ness are the number's.
fn positive(quantity: &str) -> bool {
    let number: String = quantity
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | '+' | '-'))
        .collect();
    number.parse::<f64>().is_ok_and(|n| n > 0.0)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::{
        api::core::v1::{Node, NodeStatus},
        apimachinery::pkg::apis::meta::v1::ObjectMeta,
    };

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    fn gpus(n: &str) -> BTreeMap<String, Quantity> {
        BTreeMap::from([
            ("cpu".to_string(), Quantity("8".into())),
            (GPU_RESOURCE.to_string(), Quantity(n.into())),
        ])
    }

    #[test]
    fn windows_is_the_os_label() {
        for (pairs, windows) in [
            (&[("kubernetes.io/os", "windows")][..], true),
            (&[("kubernetes.io/os", "linux")][..], false),
            // The deprecated beta label is not what the kubelet sets since 1.14+; ignore it.
            (&[("beta.kubernetes.io/os", "windows")][..], false),
            (&[("kubernetes.io/os", "Windows")][..], false),
            (&[][..], false),
        ] {
            assert_eq!(is_windows(&labels(pairs)), windows, "{pairs:?}");
        }
    }

    #[test]
    fn gpu_is_the_feature_label_or_allocatable_gpus() {
        let present = labels(&[("nvidia.com/gpu.present", "true")]);
        let absent = labels(&[("nvidia.com/gpu.present", "false")]);
        let none = labels(&[]);
        for (labels, allocatable, gpu) in [
            (&present, None, true),
            (&absent, None, false),
            (&none, None, false),
            (&none, Some(gpus("1")), true),
            (&none, Some(gpus("8")), true),
            (&none, Some(gpus("0")), false),
            (&none, Some(gpus(" 2 ")), true),
            (&none, Some(gpus("1k")), true),
            (&none, Some(gpus("0.0")), false),
            (&none, Some(gpus("-1")), false),
            (&none, Some(gpus("")), false),
            (&none, Some(BTreeMap::new()), false),
            // The label wins even when the device plugin has not advertised any yet.
            (&present, Some(gpus("0")), true),
            // Advertised GPUs count even when feature discovery says otherwise.
            (&absent, Some(gpus("4")), true),
        ] {
            assert_eq!(
                is_gpu(labels, allocatable.as_ref()),
                gpu,
                "{labels:?} {allocatable:?}"
            );
        }
    }

    fn node(pairs: &[(&str, &str)], allocatable: Option<BTreeMap<String, Quantity>>) -> SlimNode {
        SlimNode::from(&Node {
            metadata: ObjectMeta {
                labels: Some(labels(pairs)),
                ..Default::default()
            },
            status: allocatable.map(|a| NodeStatus {
                allocatable: Some(a),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    #[test]
    fn a_list_of_nodes_folds_into_its_classes() {
        let linux = node(&[("kubernetes.io/os", "linux")], None);
        let windows = node(&[("kubernetes.io/os", "windows")], None);
        let gpu = node(&[("kubernetes.io/os", "linux")], Some(gpus("2")));
        let bare = SlimNode::default();

        assert_eq!(NodeClasses::of_nodes([]), NodeClasses::default());
        assert_eq!(
            NodeClasses::of_nodes([&linux, &bare]),
            NodeClasses::default()
        );
        assert_eq!(
            NodeClasses::of_nodes([&linux, &windows]),
            NodeClasses {
                windows: true,
                gpu: false
            }
        );
        assert_eq!(
            NodeClasses::of_nodes([&gpu, &linux, &windows]),
            NodeClasses {
                windows: true,
                gpu: true
            }
        );

        // `add` is the same fold from labels and allocatable the caller already has.
        let mut classes = NodeClasses::default();
        classes.add(&labels(&[("nvidia.com/gpu.present", "true")]), None);
        assert_eq!(
            classes,
            NodeClasses {
                windows: false,
                gpu: true
            }
        );
        // Classes only accumulate: a later plain node removes nothing.
        classes.add(&labels(&[("kubernetes.io/os", "linux")]), None);
        assert!(classes.gpu);
    }
}
