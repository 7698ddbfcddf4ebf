//! The loop's own metrics (`--metrics-addr`), with the official Prometheus client, and its
//! probes: `/metrics` (OpenMetrics text), `/healthz` (the process answers), `/readyz` (ready
//! after the first full sync of every watch).

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use http_body_util::Full;
use hyper::{Request, Response, StatusCode, body::Bytes, service::service_fn};
use prometheus_client::{
    encoding::text::encode,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

type Labels = Vec<(String, String)>;

/// Every metric of the loop, registered once.
pub struct Metrics {
    registry: Registry,
    /// Nodes by state: monitored, not_monitored, excluded.
    pub nodes: Family<Labels, Gauge>,
    /// Nodes not monitored, by cause (taint, podNotReady, ...).
    pub not_monitored: Family<Labels, Gauge>,
    /// Events published, by reason and type.
    pub events: Family<Labels, Counter>,
    /// Objects re-applied after drift, by kind.
    pub repairs: Family<Labels, Counter>,
    /// API requests that failed (event publishing, repairs, watches), by what was asked.
    pub api_errors: Family<Labels, Counter>,
    /// Watches that failed and were started again (after backoff), by resource.
    pub watch_restarts: Family<Labels, Counter>,
    /// From an exporter pod turning Ready to the loop's verdict on its node.
    pub verdict_latency: Histogram,
    /// 1 while this loop holds the Lease.
    pub leader: Gauge,
    ready: AtomicBool,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("automon_reconcile");
        let m = Metrics {
            nodes: Family::default(),
            not_monitored: Family::default(),
            events: Family::default(),
            repairs: Family::default(),
            api_errors: Family::default(),
            watch_restarts: Family::default(),
            // 50ms .. ~100s.
            verdict_latency: Histogram::new(exponential_buckets(0.05, 2.0, 12)),
            leader: Gauge::default(),
            ready: AtomicBool::new(false),
            registry: Registry::default(),
        };
        registry.register("nodes", "Nodes by monitoring state", m.nodes.clone());
        registry.register(
            "nodes_not_monitored",
            "Nodes without a working exporter, by cause",
            m.not_monitored.clone(),
        );
        registry.register("events", "Events published on Nodes", m.events.clone());
        registry.register(
            "repairs",
            "Managed objects re-applied after drift",
            m.repairs.clone(),
        );
        registry.register(
            "api_errors",
            "API requests that failed",
            m.api_errors.clone(),
        );
        registry.register(
            "watch_restarts",
            "Watches restarted after an error",
            m.watch_restarts.clone(),
        );
        registry.register(
            "verdict_latency_seconds",
            "From an exporter pod turning Ready to the verdict on its node",
            m.verdict_latency.clone(),
        );
        registry.register(
            "leader",
            "Whether this loop holds the Lease",
            m.leader.clone(),
        );
        Arc::new(Metrics { registry, ..m })
    }

    pub fn label(key: &str, value: &str) -> Labels {
        vec![(key.to_string(), value.to_string())]
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The exposition text.
    pub fn text(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String does not fail");
        out
    }
}

/// Binds `addr` now (a port in use is an error at start, not later), then serves until the
/// process ends.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let metrics = metrics.clone();
                    async move { Ok::<_, Infallible>(answer(&req, &metrics)) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((bound, task))
}

fn answer<B>(req: &Request<B>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let reply = |code: StatusCode, content_type: &str, body: String| {
        Response::builder()
            .status(code)
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body)))
            .expect("a response of constant parts")
    };
    const PLAIN: &str = "text/plain; charset=utf-8";
    match (req.method().as_str(), req.uri().path()) {
        ("GET", "/metrics") => reply(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.text(),
        ),
        ("GET", "/healthz") => reply(StatusCode::OK, PLAIN, "ok\n".into()),
        ("GET", "/readyz") if metrics.is_ready() => reply(StatusCode::OK, PLAIN, "ok\n".into()),
        ("GET", "/readyz") => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            PLAIN,
            "not ready: the first sync has not finished\n".into(),
        ),
        ("GET", _) => reply(StatusCode::NOT_FOUND, PLAIN, "not found\n".into()),
        _ => reply(
            StatusCode::METHOD_NOT_ALLOWED,
            PLAIN,
            "only GET is served\n".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_every_metric() {
        let m = Metrics::new();
        m.nodes
            .get_or_create(&Metrics::label("state", "monitored"))
            .set(3);
        m.events
            .get_or_create(&Metrics::label("reason", "ExporterReady"))
            .inc();
        m.verdict_latency.observe(0.2);
        let text = m.text();
        for want in [
            "automon_reconcile_nodes{state=\"monitored\"} 3",
            "automon_reconcile_events_total{reason=\"ExporterReady\"} 1",
            "automon_reconcile_verdict_latency_seconds_bucket{le=\"0.4\"} 1",
            "automon_reconcile_leader 0",
            "# EOF",
        ] {
            assert!(text.contains(want), "{want} not in\n{text}");
        }
    }

    #[test]
    fn readyz_waits_for_the_first_sync() {
        let m = Metrics::new();
        let req = Request::get("/readyz").body(()).unwrap();
        assert_eq!(answer(&req, &m).status(), StatusCode::SERVICE_UNAVAILABLE);
        m.set_ready();
        assert_eq!(answer(&req, &m).status(), StatusCode::OK);
        let req = Request::get("/healthz").body(()).unwrap();
        assert_eq!(answer(&req, &m).status(), StatusCode::OK);
    }
}
