//! What the cluster holds that a plan depends on, read at once.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams};

use crate::{
    cluster::{
        Cluster, crds,
        error::ClusterError,
        inventory::{self, InventoryError},
    },
    plan::{ClusterState, InstalledCrd},
    render,
};

/// Reads what the plan depends on: the namespace, the inventory in it (its CRDs by their
/// metadata: what the plan needs of them), the prometheus-operator CRDs (metadata only), the
/// nodes' classes and count. What preflight finds beside the stack
/// joins later ([`super::found_by_preflight`]).
pub async fn cluster_state(cluster: &Cluster, namespace: &str) -> anyhow::Result<ClusterState> {
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(cluster.client.clone());
    let here = Cluster {
        namespace: namespace.to_string(),
        ..cluster.clone()
    };
    // All at once: the namespace, the inventory in it, the CRDs, the nodes' classes.
    let (namespace_meta, inventory, crds, nodes) = futures::try_join!(
        async {
            namespaces
                .get_metadata_opt(namespace)
                .await
                .map_err(|e| anyhow::Error::new(cluster.target.classify(e)))
        },
        async {
            match inventory::read(&here, inventory::Crds::Metadata).await {
                Ok(i) => Ok(Some(i)),
                Err(InventoryError::NotInstalled { .. }) => Ok(None),
                Err(e) => Err(anyhow::Error::new(e)),
            }
        },
        async { installed_crds(cluster).await.map_err(anyhow::Error::new) },
        async {
            crate::cluster::list_nodes(&cluster.client, &ListParams::default())
                .await
                .map_err(|e| anyhow::Error::new(cluster.target.classify(e)))
        },
    )?;
    Ok(ClusterState {
        namespace_exists: namespace_meta.is_some(),
        namespace_terminating: namespace_meta
            .as_ref()
            .is_some_and(|n| n.metadata.deletion_timestamp.is_some()),
        namespace: namespace_meta
            .map(|n| crate::model::metadata_only("v1", "Namespace", n.metadata)),
        inventory,
        existing: None,
        crds,
        exporter: None,
        classes: render::NodeClasses::of_nodes(&nodes),
        nodes: u32::try_from(nodes.len()).unwrap_or(u32::MAX),
    })
}

/// The prometheus-operator CRDs in the cluster, metadata only.
async fn installed_crds(cluster: &Cluster) -> Result<BTreeMap<String, InstalledCrd>, ClusterError> {
    let api: Api<CustomResourceDefinition> = Api::all(cluster.client.clone());
    let list = api
        .list_metadata(&ListParams::default())
        .await
        .map_err(|e| cluster.target.classify(e))?;
    Ok(list
        .items
        .iter()
        .filter_map(|m| {
            let name = m.metadata.name.clone()?;
            name.ends_with(&format!(".{}", crds::GROUP))
                .then(|| (name, InstalledCrd::of(&m.metadata)))
        })
        .collect())
}
