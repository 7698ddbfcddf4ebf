//! What the loop must be allowed, checked before it starts (pure): the reads of its watches
//! and of enable's plan, the leader's writes, and what a repair re-applies; and the error that
//! names what the credentials lack, one line per resource and scope.

use std::collections::BTreeSet;

use crate::{
    model::{
        Object,
        resources::{Known, Scope},
    },
    preflight::{self, Permission},
};

/// What the loop needs to be allowed, checked before it starts: the reads of its watches and
/// of enable's plan; for the leader's writes, Events and the Lease; and unless `--no-repair`,
/// what `enable` needs for the objects it may re-apply.
pub fn permissions(
    namespace: &str,
    exporter_namespace: &str,
    members: &[&'static Known],
    rendered: &[Object],
    repair: bool,
) -> BTreeSet<Permission> {
    let mut wanted: BTreeSet<Permission> = preflight::required_permissions(rendered, namespace)
        .into_iter()
        // A repair re-applies; it never deletes (that is enable's prune).
        .filter(|p| p.verb != "delete")
        .filter(|p| repair || ["get", "list", "watch"].contains(&p.verb.as_str()))
        .collect();
    let mut read = |group: &str, resource: &str, ns: Option<&str>| {
        for verb in ["list", "watch"] {
            wanted.insert(Permission::new(verb, group, resource, ns));
        }
    };
    read("", "nodes", None);
    read("", "configmaps", Some(namespace));
    read("", "pods", Some(exporter_namespace));
    read("apps", "daemonsets", Some(exporter_namespace));
    read("", "events", Some(exporter_namespace));
    for k in members {
        let ns = (k.scope == Scope::Namespaced).then_some(namespace);
        read(k.group(), k.plural, ns);
    }
    wanted.insert(Permission::new("get", "", "namespaces", None));
    // Node events land in `default` (Nodes have no namespace); a loop taking over reads which
    // the last leader wrote.
    for verb in ["create", "patch", "list"] {
        wanted.insert(Permission::new(
            verb,
            "events.k8s.io",
            "events",
            Some("default"),
        ));
    }
    for verb in ["get", "create", "patch"] {
        wanted.insert(Permission::new(
            verb,
            "coordination.k8s.io",
            "leases",
            Some(namespace),
        ));
    }
    wanted
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::preflight::Denied;

    use super::*;

    fn has(
        wanted: &BTreeSet<Permission>,
        verb: &str,
        group: &str,
        resource: &str,
        ns: Option<&str>,
    ) -> bool {
        wanted.contains(&Permission::new(verb, group, resource, ns))
    }

    #[test]
    fn the_reads_events_and_lease_always_and_the_writes_only_to_repair() {
        let rendered: Vec<Object> = vec![
            serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "dash", "namespace": "mon"},
            }))
            .expect("an object"),
        ];
        let rule = crate::model::resources::by_group_kind("PrometheusRule.monitoring.coreos.com")
            .expect("a known kind");
        for repair in [true, false] {
            let wanted = permissions("mon", "exporters", &[rule], &rendered, repair);
            assert!(has(&wanted, "watch", "", "nodes", None));
            assert!(has(&wanted, "list", "", "pods", Some("exporters")));
            assert!(has(
                &wanted,
                "watch",
                "apps",
                "daemonsets",
                Some("exporters")
            ));
            assert!(has(&wanted, "list", "", "events", Some("exporters")));
            assert!(has(&wanted, "watch", "", "configmaps", Some("mon")));
            assert!(has(
                &wanted,
                "watch",
                "monitoring.coreos.com",
                "prometheusrules",
                Some("mon")
            ));
            assert!(has(&wanted, "get", "", "namespaces", None));
            assert!(has(
                &wanted,
                "create",
                "events.k8s.io",
                "events",
                Some("default")
            ));
            assert!(has(
                &wanted,
                "patch",
                "coordination.k8s.io",
                "leases",
                Some("mon")
            ));
            assert_eq!(has(&wanted, "patch", "", "configmaps", Some("mon")), repair);
            // A repair re-applies; it never deletes.
            assert!(!wanted.iter().any(|p| p.verb == "delete"));
        }
    }

    #[test]
    fn what_is_missing_is_said_by_resource_and_scope() {
        let denied = Denied {
            missing: vec![
                Permission::new("list", "", "nodes", None),
                Permission::new("watch", "", "nodes", None),
                Permission::new("create", "coordination.k8s.io", "leases", Some("mon")),
            ],
            repair: true,
        };
        assert_eq!(
            denied.to_string(),
            "reconcile cannot run with these credentials; nothing was written. Missing:\n  \
             list, watch nodes cluster-wide\n  \
             create leases.coordination.k8s.io in namespace \"mon\"\n\
             (--no-repair needs only the reads, Events and the Lease; an admin grants the rest with a Role or ClusterRole and a binding)"
        );
        let read_only = Denied {
            repair: false,
            ..denied
        };
        assert!(
            read_only
                .to_string()
                .ends_with("\n(an admin grants them with a Role or ClusterRole and a binding)")
        );
    }
}
