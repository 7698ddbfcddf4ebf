//! The `restricted` Pod Security profile, once: every component that allows it runs as a
//! non-root user with no privilege escalation, no capabilities, a read-only root filesystem and
//! the runtime's seccomp profile.

use k8s_openapi::api::core::v1::{
    Capabilities, PodSecurityContext, SeccompProfile, SecurityContext,
};

fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".into(),
        ..Default::default()
    }
}

/// Pod level: non-root as `user` (also its group), files owned by `fs_group` where given.
pub fn restricted_pod(user: i64, fs_group: Option<i64>) -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(user),
        run_as_group: Some(user),
        fs_group,
        seccomp_profile: Some(runtime_default()),
        ..Default::default()
    }
}

/// Container level, running as `user`.
pub fn restricted_container(user: i64) -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(user),
        run_as_group: Some(user),
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Default::default()
        }),
        seccomp_profile: Some(runtime_default()),
        ..Default::default()
    }
}

/// The pod security context of the operator's operands (Prometheus, Alertmanager): restricted,
/// as nobody, with the volume group the operator's own examples use.
pub fn operand_pod() -> PodSecurityContext {
    restricted_pod(65534, Some(2000))
}
