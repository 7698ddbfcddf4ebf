//! Exit codes, decided here and nowhere else: every command returns its [`Verdict`] (or the
//! error that stopped it), and [`code`] turns that into the number the README's table
//! documents.

use crate::cluster::error::OpenError;
use crate::{
    cluster::{
        apply::ApplyError,
        error::{ClusterError, NotInstalled},
    },
    config::{ConfigError, UnreadableFile},
    migrate::release::ReleaseError,
    preflight,
    status::Health,
};

pub const FAILURE: u8 = 1;
/// A bad flag or configuration; clap's own usage errors exit with it too.
pub const USAGE: u8 = 2;
pub const KUBECONFIG: u8 = 3;
pub const UNREACHABLE: u8 = 4;
pub const UNAUTHORIZED: u8 = 5;
pub const FORBIDDEN: u8 = 6;
pub const CONFLICT: u8 = 7;
/// `status`/`doctor`: installed, but something does not work (a node without an exporter,
/// a component not ready, a failed check).
pub const DEGRADED: u8 = 8;
/// `status`, `doctor`, `reconcile`, `open`, `history`, `rollback`, `diff --revision`: automon
/// is not installed in the namespace ([`NotInstalled`]).
pub const NOT_INSTALLED: u8 = 9;
/// `status`: nothing is wrong as far as the API server shows, but Prometheus did not answer
/// (or was not asked), so scrape health and firing alerts are unknown.
pub const UNVERIFIED: u8 = 10;
/// `test-alert`: a receiver failed to notify (or had no outcome within `--timeout`).
pub const NOT_DELIVERED: u8 = 11;
/// `test-alert`: the alert reached no receiver that notifies anyone.
pub const NOT_ROUTED: u8 = 12;

/// What `test-alert` comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Every receiver it went to notified.
    Delivered,
    Failed,
    NotRouted,
}

/// What doctor's checks come to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checks {
    Passed,
    Failed,
    NotInstalled,
}

/// What a command that ran to its end found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It did what was asked, or found nothing wrong.
    Done,
    /// `diff`: the cluster differs from what `enable` would leave.
    Differences,
    /// `status`, and `reconcile`: how the stack is.
    Health(Health),
    /// `doctor`: what its checks came to.
    Doctor(Checks),
    /// `preflight`, and `enable`/`rollback`, which stop on it: what stands in enable's way.
    Preflight(preflight::Outcome),
    /// The command line asks for what cannot be done here: clap refused it, or `disable` has
    /// no terminal to confirm on and no `--yes`.
    Usage,
    /// `reconcile --loop`: its watches ended by themselves.
    Stopped,
    /// `test-alert`: how the receivers did.
    TestAlert(Delivery),
    /// `status`/`doctor` across contexts: the [`worst`] of each context's code.
    Worst(u8),
}

/// Whose numbering a command's errors follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Convention {
    /// The README's table.
    Automon,
    /// `diff`: as `kubectl diff`, 1 means "there are differences", so an error that would
    /// exit 1 exits 2.
    KubectlDiff,
}

/// The exit code for what a command returned.
pub fn code(result: &anyhow::Result<Verdict>, convention: Convention) -> u8 {
    match (result, convention) {
        (Ok(verdict), _) => verdict_code(*verdict),
        (Err(e), Convention::KubectlDiff) if error_code(e) == FAILURE => USAGE,
        (Err(e), _) => error_code(e),
    }
}

fn verdict_code(verdict: Verdict) -> u8 {
    use Checks as Doctor;
    use preflight::Outcome as Preflight;
    match verdict {
        Verdict::Done
        | Verdict::Health(Health::Healthy)
        | Verdict::Doctor(Doctor::Passed)
        | Verdict::Preflight(Preflight::Passed)
        | Verdict::TestAlert(Delivery::Delivered) => 0,
        Verdict::TestAlert(Delivery::Failed) => NOT_DELIVERED,
        Verdict::TestAlert(Delivery::NotRouted) => NOT_ROUTED,
        Verdict::Differences | Verdict::Stopped | Verdict::Preflight(Preflight::Failed) => FAILURE,
        Verdict::Usage => USAGE,
        Verdict::Preflight(Preflight::MissingPermissions) => FORBIDDEN,
        Verdict::Preflight(Preflight::ExporterConflict) => CONFLICT,
        Verdict::Health(Health::Degraded) | Verdict::Doctor(Doctor::Failed) => DEGRADED,
        Verdict::Health(Health::NotInstalled) | Verdict::Doctor(Doctor::NotInstalled) => {
            NOT_INSTALLED
        }
        Verdict::Health(Health::Unverified) => UNVERIFIED,
        Verdict::Worst(code) => code,
    }
}

/// The codes of one command's answers across contexts, the worst first: an error about a
/// context (its kubeconfig entry 3, credentials refused 5, forbidden 6, unreachable 4, another
/// error 1: what stops the question being asked at all), then degraded 8 (something known to
/// be wrong), unverified 10 (perhaps wrong: Prometheus did not answer), not installed 9 (a
/// cluster without the stack: a choice as often as a fault), and healthy 0 last. `status
/// --help` and the README say the same.
pub const WORST_FIRST: [u8; 9] = [
    KUBECONFIG,
    UNAUTHORIZED,
    FORBIDDEN,
    UNREACHABLE,
    FAILURE,
    DEGRADED,
    UNVERIFIED,
    NOT_INSTALLED,
    0,
];

/// The worst of several contexts' exit codes, by [`WORST_FIRST`] (a code it does not list
/// ranks with the errors, after them); 0 when there are none (pure).
pub fn worst(codes: impl IntoIterator<Item = u8>) -> u8 {
    // Listed codes at even ranks; any other between FAILURE and DEGRADED.
    let failure = WORST_FIRST.iter().position(|w| *w == FAILURE).unwrap_or(0);
    let rank = |c: &u8| match WORST_FIRST.iter().position(|w| w == c) {
        Some(i) => 2 * i,
        None => 2 * failure + 1,
    };
    codes.into_iter().min_by_key(rank).unwrap_or(0)
}

/// An error's code: that of the first cause in its chain that has one, else 1.
pub fn error_code(err: &anyhow::Error) -> u8 {
    err.chain().find_map(cause_code).unwrap_or(FAILURE)
}

fn cause_code(e: &(dyn std::error::Error + 'static)) -> Option<u8> {
    if let Some(e) = e.downcast_ref::<ClusterError>() {
        return Some(cluster_code(e));
    }
    if e.is::<ConfigError>() || e.is::<UnreadableFile>() {
        return Some(USAGE);
    }
    if let Some(e) = e.downcast_ref::<OpenError>() {
        return Some(open_code(e));
    }
    if e.is::<NotInstalled>() {
        return Some(NOT_INSTALLED);
    }
    if e.is::<crate::alertmanager::NotFound>() {
        return Some(USAGE);
    }
    if let Some(e) = e.downcast_ref::<crate::alertmanager::Unanswered>() {
        return match e.kind {
            crate::alertmanager::Why::Unavailable => Some(DEGRADED),
            crate::alertmanager::Why::Forbidden => Some(FORBIDDEN),
            crate::alertmanager::Why::Other => None,
        };
    }
    if e.is::<crate::preflight::Denied>() {
        return Some(FORBIDDEN);
    }
    // `migrate` names a release of another chart: the command line asks what cannot be done.
    if let Some(ReleaseError::NotThisChart { .. }) = e.downcast_ref::<ReleaseError>() {
        return Some(USAGE);
    }
    match e.downcast_ref::<ApplyError>()? {
        ApplyError::Conflict { .. } => Some(CONFLICT),
        ApplyError::Cluster { source, .. } => Some(cluster_code(source)),
        _ => None,
    }
}

/// The exit code of an error reaching or asking the cluster.
pub fn cluster_code(e: &ClusterError) -> u8 {
    match e {
        ClusterError::NoKubeconfig { .. }
        | ClusterError::ReadKubeconfig { .. }
        | ClusterError::NotInKubeconfig { .. }
        | ClusterError::NoCurrentContext { .. }
        | ClusterError::InvalidKubeconfig(_) => KUBECONFIG,
        ClusterError::Unreachable { .. } | ClusterError::Timeout { .. } => UNREACHABLE,
        ClusterError::Unauthorized { .. }
        | ClusterError::Credentials { .. }
        | ClusterError::CredentialPluginTimeout { .. } => UNAUTHORIZED,
        ClusterError::Forbidden(_) => FORBIDDEN,
        ClusterError::Api { .. } => FAILURE,
    }
}

fn open_code(e: &OpenError) -> u8 {
    match e {
        OpenError::NotInstalled { .. } => NOT_INSTALLED,
        OpenError::NoQuery { .. } => USAGE,
        OpenError::NoService { .. }
        | OpenError::BadService { .. }
        | OpenError::NoReadyPod { .. }
        | OpenError::BadPod { .. } => DEGRADED,
        OpenError::Cluster(e) => cluster_code(e),
        OpenError::RefusedBehindApiServer { .. } => FORBIDDEN,
        OpenError::PortInUse { .. } | OpenError::Listen { .. } | OpenError::PodSaid { .. } => {
            FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_worst_code_across_contexts_is_by_the_documented_order() {
        let cases: [(&[u8], u8); 10] = [
            (&[], 0),
            (&[0, 0], 0),
            (&[0, NOT_INSTALLED], NOT_INSTALLED),
            (&[NOT_INSTALLED, UNVERIFIED, 0], UNVERIFIED),
            (&[UNVERIFIED, DEGRADED, NOT_INSTALLED], DEGRADED),
            (&[DEGRADED, UNREACHABLE, 0], UNREACHABLE),
            (&[UNREACHABLE, FORBIDDEN], FORBIDDEN),
            (&[FORBIDDEN, UNAUTHORIZED, UNREACHABLE], UNAUTHORIZED),
            (&[UNAUTHORIZED, KUBECONFIG, DEGRADED], KUBECONFIG),
            // Not a code of status or doctor: with the errors, after those listed.
            (&[DEGRADED, NOT_DELIVERED, FAILURE], FAILURE),
        ];
        for (codes, want) in cases {
            assert_eq!(worst(codes.iter().copied()), want, "{codes:?}");
            assert_eq!(
                worst(codes.iter().rev().copied()),
                want,
                "{codes:?} reversed"
            );
        }
        assert_eq!(worst([NOT_DELIVERED, DEGRADED]), NOT_DELIVERED);
        assert_eq!(
            code(&Ok(Verdict::Worst(UNREACHABLE)), Convention::Automon),
            4
        );
    }

    #[test]
    fn each_verdict_has_its_code() {
        use Checks as Doctor;
        use preflight::Outcome as Preflight;
        let cases = [
            (Verdict::Done, 0),
            (Verdict::Differences, 1),
            (Verdict::Usage, 2),
            (Verdict::Stopped, 1),
            (Verdict::Health(Health::Healthy), 0),
            (Verdict::Health(Health::Degraded), 8),
            (Verdict::Health(Health::NotInstalled), 9),
            (Verdict::Health(Health::Unverified), 10),
            (Verdict::Doctor(Doctor::Passed), 0),
            (Verdict::Doctor(Doctor::Failed), 8),
            (Verdict::Doctor(Doctor::NotInstalled), 9),
            (Verdict::Preflight(Preflight::Passed), 0),
            (Verdict::Preflight(Preflight::Failed), 1),
            (Verdict::Preflight(Preflight::MissingPermissions), 6),
            (Verdict::Preflight(Preflight::ExporterConflict), 7),
            (Verdict::TestAlert(Delivery::Delivered), 0),
            (Verdict::TestAlert(Delivery::Failed), 11),
            (Verdict::TestAlert(Delivery::NotRouted), 12),
        ];
        for (verdict, want) in cases {
            for convention in [Convention::Automon, Convention::KubectlDiff] {
                assert_eq!(code(&Ok(verdict), convention), want, "{verdict:?}");
            }
        }
    }

    fn cluster_errors() -> Vec<(ClusterError, u8)> {
        let server = || "https://127.0.0.1:6443".to_string();
        vec![
            (
                ClusterError::NoKubeconfig {
                    looked_at: "~/.kube/config".into(),
                },
                3,
            ),
            (
                ClusterError::ReadKubeconfig {
                    path: "k".into(),
                    reason: "gone".into(),
                },
                3,
            ),
            (
                ClusterError::NotInKubeconfig {
                    what: "context",
                    name: "prod".into(),
                    available: Vec::new(),
                    sources: "k".into(),
                },
                3,
            ),
            (
                ClusterError::NoCurrentContext {
                    available: Vec::new(),
                    sources: "k".into(),
                },
                3,
            ),
            (ClusterError::InvalidKubeconfig("x".into()), 3),
            (
                ClusterError::Unreachable {
                    server: server(),
                    reason: "refused".into(),
                },
                4,
            ),
            (
                ClusterError::Timeout {
                    server: server(),
                    timeout: Duration::from_secs(5),
                },
                4,
            ),
            (
                ClusterError::Unauthorized {
                    server: server(),
                    user: "me".into(),
                },
                5,
            ),
            (
                ClusterError::Credentials {
                    user: "me".into(),
                    reason: "expired".into(),
                },
                5,
            ),
            (
                ClusterError::CredentialPluginTimeout {
                    command: "aws".into(),
                    at: "users[0]".into(),
                    timeout: Duration::from_secs(30),
                },
                5,
            ),
            (
                ClusterError::Forbidden(Box::new(crate::cluster::error::Forbidden {
                    user: "me".into(),
                    verb: "list".into(),
                    resource: "nodes".into(),
                    group: String::new(),
                    namespace: None,
                    message: "no".into(),
                })),
                6,
            ),
            (
                ClusterError::Api {
                    server: server(),
                    code: 500,
                    reason: "InternalError".into(),
                    message: "m".into(),
                },
                1,
            ),
        ]
    }

    #[test]
    fn each_cluster_error_has_its_code_alone_or_inside_another() {
        for (e, want) in cluster_errors() {
            let text = e.to_string();
            let apply = ApplyError::Cluster {
                object: "deployment automon/grafana".into(),
                source: e,
            };
            assert_eq!(error_code(&anyhow::Error::new(apply)), want, "{text}");
        }
        for (e, want) in cluster_errors() {
            let text = e.to_string();
            assert_eq!(error_code(&anyhow::Error::new(e)), want, "{text}");
        }
        for (e, want) in cluster_errors() {
            let text = e.to_string();
            let open = OpenError::Cluster(e);
            assert_eq!(error_code(&anyhow::Error::new(open)), want, "{text}");
        }
    }

    #[test]
    fn each_error_kind_has_its_code() {
        let addr: std::net::SocketAddr = "127.0.0.1:80".parse().unwrap();
        let pod = || ("automon".to_string(), "grafana-0".to_string());
        let cases: Vec<(anyhow::Error, u8)> = vec![
            (
                ConfigError {
                    origin: "automon.yaml line 3".into(),
                    key: "prometheus.replicas".into(),
                    problem: "0 is out of range (1 to 10)".into(),
                }
                .into(),
                2,
            ),
            (
                UnreadableFile {
                    path: "automon.yaml".into(),
                    reason: std::io::ErrorKind::NotFound.into(),
                }
                .into(),
                2,
            ),
            (
                NotInstalled {
                    namespace: "automon".into(),
                }
                .into(),
                9,
            ),
            (
                crate::preflight::Denied {
                    missing: Vec::new(),
                    repair: true,
                }
                .into(),
                6,
            ),
            (
                ReleaseError::NotThisChart {
                    name: "grafana".into(),
                    namespace: "monitoring".into(),
                    chart: "grafana".into(),
                    version: "12.11.1".into(),
                }
                .into(),
                2,
            ),
            (
                ReleaseError::NotFound {
                    name: "kps".into(),
                    namespace: "monitoring".into(),
                    others: Vec::new(),
                }
                .into(),
                1,
            ),
            (
                ApplyError::Conflict {
                    object: "o".into(),
                    conflicts: Vec::new(),
                }
                .into(),
                7,
            ),
            (
                ApplyError::Invalid {
                    object: "o".into(),
                    message: "m".into(),
                }
                .into(),
                1,
            ),
            (
                OpenError::NotInstalled {
                    namespace: "automon".into(),
                }
                .into(),
                9,
            ),
            (
                OpenError::NoService {
                    namespace: "automon".into(),
                    service: "grafana",
                }
                .into(),
                8,
            ),
            (
                OpenError::NoQuery {
                    namespace: "automon".into(),
                }
                .into(),
                2,
            ),
            (
                OpenError::BadService {
                    namespace: "automon".into(),
                    service: "grafana",
                    problem: "p".into(),
                }
                .into(),
                8,
            ),
            (
                OpenError::NoReadyPod {
                    component: "grafana",
                    namespace: "automon".into(),
                    pods: "none".into(),
                }
                .into(),
                8,
            ),
            (
                OpenError::BadPod {
                    namespace: pod().0,
                    pod: pod().1,
                    problem: "p".into(),
                }
                .into(),
                8,
            ),
            (
                OpenError::RefusedBehindApiServer {
                    user: "me".into(),
                    namespace: pod().0,
                    pod: pod().1,
                    message: "m".into(),
                }
                .into(),
                6,
            ),
            (OpenError::PortInUse { addr }.into(), 1),
            (
                OpenError::Listen {
                    addr,
                    source: std::io::ErrorKind::PermissionDenied.into(),
                }
                .into(),
                1,
            ),
            (
                OpenError::PodSaid {
                    namespace: pod().0,
                    pod: pod().1,
                    port: 3000,
                    message: "m".into(),
                }
                .into(),
                1,
            ),
            (anyhow::anyhow!("anything else"), 1),
        ];
        for (e, want) in cases {
            let text = e.to_string();
            // Wherever it is in the chain.
            let e = e.context("rollback").context("the command");
            assert_eq!(error_code(&e), want, "{text}");
            assert_eq!(code(&Err(e), Convention::Automon), want, "{text}");
        }
    }

    #[test]
    fn diff_errors_that_would_be_1_are_2() {
        let cases: [(anyhow::Error, u8); 3] = [
            (anyhow::anyhow!("a broken manifest"), 2),
            (
                NotInstalled {
                    namespace: "automon".into(),
                }
                .into(),
                9,
            ),
            (
                ClusterError::Unreachable {
                    server: "https://127.0.0.1:6443".into(),
                    reason: "refused".into(),
                }
                .into(),
                4,
            ),
        ];
        for (e, want) in cases {
            let text = e.to_string();
            assert_eq!(code(&Err(e), Convention::KubectlDiff), want, "{text}");
        }
    }
}
