//! Grafana dashboards, written here in Rust: cluster overview, node detail and alerts overview,
//! and for the node classes a cluster has, GPUs and Windows node detail; beyond the nodes,
//! workloads (cluster -> namespace -> workload -> pod, persistent volumes), Kubernetes (API
//! server, kubelet) and the stack itself, in the submodules. Each is a ConfigMap labelled
//! `grafana_dashboard: "1"` that Grafana's sidecar loads. Every query is chosen so that a
//! healthy stack always answers it: "No data" should mean "broken".

mod kubernetes;
mod stack;
mod workloads;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::{Value, json};

use super::{Context, NodeClasses, object};

use crate::model::Object;
use crate::{config::Config, versions::PLUGIN_VERSION};

pub const COMPONENT: &str = "dashboards";
/// The label (and value) Grafana's dashboard sidecar watches for.
pub const SIDECAR_LABEL: &str = "grafana_dashboard";
pub const SIDECAR_VALUE: &str = "1";
/// The node dashboards name a fixed datasource uid: the Grafana module provisions Prometheus
/// under this uid, so they work without the user picking one. The dashboards beyond the nodes
/// pick it with a `datasource` variable that defaults to it (see [`datasource_variable`]).
pub const PROMETHEUS_UID: &str = "prometheus";
/// The datasource variable's name, and what panels name as their datasource when it is there.
const DATASOURCE_VARIABLE: &str = "datasource";
/// The dashboard JSON model version of current Grafana (12.x).
pub const SCHEMA_VERSION: u32 = 41;
/// The node detail dashboard, which the pod dashboard links to.
const NODE_DETAIL_SLUG: &str = "node-detail";
/// The alerts overview, which the stack dashboards link to.
const ALERTS_OVERVIEW_SLUG: &str = "alerts-overview";
/// Grafana's grid is 24 columns wide.
const GRID_WIDTH: u32 = 24;

/// Every node-exporter series carries `job="node-exporter"` and `node="<node name>"` (the
/// ServiceMonitor relabels the pod's node name into `node`).
const NODE_EXPORTER: &str = r#"job="node-exporter""#;
/// One node, as picked by the node dashboard's `node` variable.
const ONE_NODE: &str = r#"job="node-exporter", node="$node""#;
/// Real filesystems: node-exporter already drops the pseudo ones; memory-backed ones fill
/// and empty with the workload, not with the disk.
const REAL_FS: &str = r#"fstype!~"tmpfs|ramfs", mountpoint!="""#;
/// windows-exporter's series, labelled like node-exporter's; one Windows node of them.
const WINDOWS_EXPORTER: &str = r#"job="windows-exporter""#;
/// kube-state-metrics' series: beside another stack's, its node labels are automon's and
/// the rest theirs, which only a selector that names the job can be pointed at.
const KUBE_STATE_METRICS: &str = r#"job="kube-state-metrics""#;
const ONE_WINDOWS_NODE: &str = r#"job="windows-exporter", node="$node""#;
/// Windows volumes with a drive letter (not the boot and recovery partitions).
const WINDOWS_VOLUMES: &str = r#"volume!~"HarddiskVolume.*""#;
const DCGM_EXPORTER: &str = r#"job="dcgm-exporter""#;
/// dcgm-exporter's series on the nodes the GPU dashboard's `node` variable picks (one, several
/// or all).
const GPU_NODES: &str = r#"job="dcgm-exporter", node=~"$node""#;
/// A GPU's series carry the pod that holds it and so change with each pod: panels keep only
/// node and GPU index.
const BY_GPU: &str = "max by (node, gpu)";
/// Firing alerts other than the always-firing Watchdog, which proves the pipeline works.
const FIRING: &str = r#"ALERTS{alertstate="firing", alertname!="Watchdog"}"#;

/// The ConfigMaps of the enabled dashboards.
pub fn objects(ctx: &Context) -> Vec<Object> {
    dashboards(ctx.config, ctx.classes)
        .iter()
        .map(|d| {
            let mut labels = ctx.labels(
                &format!("grafana-dashboard-{}", d.slug),
                COMPONENT,
                PLUGIN_VERSION,
            );
            labels.insert(SIDECAR_LABEL.into(), SIDECAR_VALUE.into());
            let json =
                serde_json::to_string_pretty(&d.to_json()).expect("dashboard JSON serialises");
            object(ConfigMap {
                metadata: ctx.meta(&d.config_map_name(), &labels),
                data: Some(BTreeMap::from([(format!("{}.json", d.uid()), json)])),
                ..Default::default()
            })
        })
        .collect()
}

/// One panel query of a rendered dashboard.
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanelQuery {
    pub dashboard_uid: String,
    pub panel_title: String,
    pub expr: String,
}

/// Every panel's PromQL of the enabled dashboards, from the same definitions as [`objects`].
#[cfg(test)]
pub fn panel_queries(config: &Config, classes: NodeClasses) -> Vec<PanelQuery> {
    dashboards(config, classes)
        .iter()
        .flat_map(|d| {
            d.panels.iter().flat_map(move |p| {
                p.queries.iter().map(move |q| PanelQuery {
                    dashboard_uid: d.uid(),
                    panel_title: p.title.clone(),
                    expr: q.expr.clone(),
                })
            })
        })
        .collect()
}

/// The enabled dashboards, in a fixed order. A node class brings its dashboard along with its
/// exporter; the Windows one is a node detail and follows that switch.
fn dashboards(config: &Config, classes: NodeClasses) -> Vec<Dashboard> {
    let enabled = &config.dashboards;
    let mut out = Vec::new();
    if enabled.cluster_overview {
        out.push(cluster_overview(config, classes.windows));
    }
    if enabled.node_detail {
        out.push(node_detail(config));
    }
    if enabled.node_detail && classes.windows {
        out.push(windows_node_detail(config));
    }
    if classes.gpu {
        out.push(gpus());
    }
    if enabled.alerts_overview {
        out.push(alerts_overview());
    }
    if enabled.workloads {
        out.extend(workloads::dashboards(config));
    }
    if enabled.kubernetes {
        out.extend(kubernetes::dashboards(config));
    }
    if enabled.stack {
        out.extend(stack::dashboards(config));
    }
    // A links row leads only to dashboards that are installed.
    let installed: Vec<&str> = out.iter().map(|d| d.slug).collect();
    for d in &mut out {
        d.links.retain(|l| installed.contains(&l.slug));
    }
    out
}

struct Dashboard {
    slug: &'static str,
    title: &'static str,
    description: &'static str,
    /// Template variables, as Grafana's JSON model has them; query variables get the
    /// dashboard's datasource when rendered.
    variables: Vec<Value>,
    panels: Vec<Panel>,
    /// The links row at the top: related dashboards, carrying the variables and time range.
    links: Vec<DashboardLink>,
}

/// A link in a dashboard's links row.
struct DashboardLink {
    title: &'static str,
    slug: &'static str,
    tooltip: &'static str,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Stat,
    TimeSeries,
    BarGauge,
    Table,
}

impl Kind {
    fn grafana_type(self) -> &'static str {
        match self {
            Kind::Stat => "stat",
            Kind::TimeSeries => "timeseries",
            Kind::BarGauge => "bargauge",
            Kind::Table => "table",
        }
    }

    /// Stats, bar gauges and tables show the current value; only time series need a range.
    fn instant(self) -> bool {
        self != Kind::TimeSeries
    }
}

struct Panel {
    kind: Kind,
    title: String,
    description: String,
    unit: &'static str,
    /// Width and height in grid units.
    size: (u32, u32),
    /// Value from which the panel turns red, in the panel's unit.
    red_from: Option<f64>,
    stacked: bool,
    queries: Vec<Query>,
    links: Vec<DataLink>,
}

struct Query {
    expr: String,
    legend: String,
    /// In a table, the unit of this query's column when it differs from the panel's.
    unit: Option<&'static str>,
}

/// A data link: on a series (`field: None`, using `${__field.labels.<label>}`) or on a table
/// column (`${__data.fields.<column>}`).
struct DataLink {
    field: Option<&'static str>,
    title: String,
    url: String,
}

impl Panel {
    fn new(kind: Kind, title: &str, description: &str, unit: &'static str) -> Self {
        let size = match kind {
            Kind::Stat => (3, 4),
            Kind::TimeSeries | Kind::BarGauge => (12, 8),
            Kind::Table => (24, 8),
        };
        Panel {
            kind,
            title: title.into(),
            description: description.into(),
            unit,
            size,
            red_from: None,
            stacked: false,
            queries: Vec::new(),
            links: Vec::new(),
        }
    }

    fn query(mut self, expr: impl Into<String>, legend: &str) -> Self {
        self.queries.push(Query {
            expr: expr.into(),
            legend: legend.into(),
            unit: None,
        });
        self
    }

    /// A table column: the query's value, named `name`, in `unit`.
    fn column(mut self, expr: impl Into<String>, name: &str, unit: &'static str) -> Self {
        self.queries.push(Query {
            expr: expr.into(),
            legend: name.into(),
            unit: Some(unit),
        });
        self
    }

    /// A data link on every series (`field: None`) or on one table column.
    fn link(mut self, field: Option<&'static str>, title: &str, url: String) -> Self {
        self.links.push(DataLink {
            field,
            title: title.into(),
            url,
        });
        self
    }

    fn height(mut self, h: u32) -> Self {
        self.size.1 = h;
        self
    }

    fn width(mut self, w: u32) -> Self {
        self.size.0 = w;
        self
    }

    fn red_from(mut self, v: f64) -> Self {
        self.red_from = Some(v);
        self
    }

    fn stacked(mut self) -> Self {
        self.stacked = true;
        self
    }

    /// A table whose queries name their columns (see [`Panel::column`]) shows their values;
    /// one whose queries do not lists labels only.
    fn has_value_columns(&self) -> bool {
        self.kind == Kind::Table && self.queries.iter().any(|q| !q.legend.is_empty())
    }

    /// The panel's JSON; `id` and position come from its place in the dashboard.
    fn to_json(&self, id: usize, (x, y): (u32, u32), datasource: &Value) -> Value {
        let targets: Vec<Value> = self
            .queries
            .iter()
            .zip('A'..='Z')
            .map(|(q, ref_id)| {
                let mut t = json!({
                    "refId": ref_id.to_string(),
                    "datasource": datasource,
                    "expr": q.expr,
                    "legendFormat": q.legend,
                    "instant": self.kind.instant(),
                    "range": !self.kind.instant(),
                });
                if self.kind == Kind::Table {
                    t["format"] = "table".into();
                }
                t
            })
            .collect();
        let mut steps = vec![json!({"color": "green", "value": null})];
        if let Some(v) = self.red_from {
            steps.push(json!({"color": "red", "value": v}));
        }
        let mut defaults = json!({
            "unit": self.unit,
            "thresholds": {"mode": "absolute", "steps": steps},
        });
        let options = match self.kind {
            Kind::Stat => json!({
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": false},
                "colorMode": "value",
                "graphMode": "area",
                "textMode": "auto",
            }),
            Kind::BarGauge => json!({
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": false},
                "orientation": "horizontal",
                "displayMode": "gradient",
            }),
            Kind::TimeSeries => {
                defaults["custom"] = json!({
                    "drawStyle": "line",
                    "fillOpacity": if self.stacked { 30 } else { 10 },
                    "showPoints": "never",
                    "stacking": {"mode": if self.stacked { "normal" } else { "none" }, "group": "A"},
                    // Thresholds draw as a dashed line, so "how close to the alert" is visible.
                    "thresholdsStyle": {"mode": if self.red_from.is_some() { "dashed" } else { "off" }},
                });
                json!({
                    "legend": {"displayMode": "table", "placement": "right", "showLegend": true, "calcs": ["lastNotNull", "max"]},
                    "tooltip": {"mode": "multi", "sort": "desc"},
                })
            }
            Kind::Table => json!({"showHeader": true, "footer": {"show": false}}),
        };
        let series_links: Vec<Value> = self
            .links
            .iter()
            .filter(|l| l.field.is_none())
            .map(DataLink::to_json)
            .collect();
        if !series_links.is_empty() {
            defaults["links"] = series_links.into();
        }
        let mut panel = json!({
            "id": id,
            "type": self.kind.grafana_type(),
            "title": self.title,
            "description": self.description,
            "datasource": datasource,
            "gridPos": {"x": x, "y": y, "w": self.size.0, "h": self.size.1},
            "fieldConfig": {"defaults": defaults, "overrides": self.overrides()},
            "options": options,
            "targets": targets,
        });
        if self.has_value_columns() {
            panel["transformations"] = self.value_table_transformations();
        } else if self.kind == Kind::Table {
            // One row per alert: drop the sample's time and value, keep the labels.
            panel["transformations"] = json!([{
                "id": "organize",
                "options": {"excludeByName": {"Time": true, "Value": true, "__name__": true}},
            }]);
        }
        panel
    }

    /// Per-column units and links.
    fn overrides(&self) -> Value {
        let units = self.queries.iter().filter_map(|q| {
            let unit = q.unit.filter(|u| *u != self.unit)?;
            Some(json!({
                "matcher": {"id": "byName", "options": q.legend},
                "properties": [{"id": "unit", "value": unit}],
            }))
        });
        let links = self.links.iter().filter_map(|l| {
            let field = l.field?;
            Some(json!({
                "matcher": {"id": "byName", "options": field},
                "properties": [{"id": "links", "value": [l.to_json()]}],
            }))
        });
        units.chain(links).collect::<Vec<_>>().into()
    }

    /// One row per label set: the queries' frames merged on their labels, each value column
    /// named after its query, the sample time dropped.
    fn value_table_transformations(&self) -> Value {
        let rename: serde_json::Map<String, Value> = self
            .queries
            .iter()
            .zip('A'..='Z')
            .map(|(q, ref_id)| {
                let value = if self.queries.len() == 1 {
                    "Value".to_string()
                } else {
                    format!("Value #{ref_id}")
                };
                (value, Value::from(q.legend.clone()))
            })
            .collect();
        json!([
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {
                "excludeByName": {"Time": true, "__name__": true},
                "renameByName": rename,
            }},
        ])
    }
}

impl DataLink {
    fn to_json(&self) -> Value {
        json!({"title": self.title, "url": self.url})
    }
}

impl DashboardLink {
    fn to_json(&self) -> Value {
        json!({
            "title": self.title,
            "type": "link",
            "url": format!("/d/{}", uid(self.slug)),
            "tooltip": self.tooltip,
            "icon": "dashboard",
            "tags": [],
            "asDropdown": false,
            "targetBlank": false,
            // The chain keeps its place: namespace, workload and pod carry over.
            "includeVars": true,
            "keepTime": true,
        })
    }
}

fn datasource() -> Value {
    json!({"type": "prometheus", "uid": PROMETHEUS_UID})
}

/// What panels of a dashboard with a `datasource` variable name as their datasource.
fn chosen_datasource() -> Value {
    json!({"type": "prometheus", "uid": format!("${{{DATASOURCE_VARIABLE}}}")})
}

/// The `datasource` variable, first on every dashboard beyond the nodes: any Prometheus, the
/// provisioned one by default.
fn datasource_variable() -> Value {
    json!({
        "name": DATASOURCE_VARIABLE,
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {"selected": true, "text": "Prometheus", "value": PROMETHEUS_UID},
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "multi": false,
        "includeAll": false,
    })
}

/// The `cluster` variable: the `cluster` label's values, for a datasource that holds several
/// clusters (a remote-write store gets the label from `prometheus.externalLabels.cluster`).
/// "All" matches `.*`, so `cluster=~"$cluster"` also matches series without the label; it is
/// hidden unless this stack labels its series with a cluster.
fn cluster_variable(config: &Config) -> Value {
    let labelled = config
        .prometheus
        .external_labels
        .contains_key(crate::config::CLUSTER_LABEL);
    json!({
        "name": "cluster",
        "label": "Cluster",
        "type": "query",
        "query": {"query": "label_values(up, cluster)", "refId": "cluster"},
        "refresh": 2,
        "sort": 1,
        "multi": false,
        "includeAll": true,
        "allValue": ".*",
        "current": {"selected": true, "text": "All", "value": "$__all"},
        "hide": if labelled { 0 } else { 2 },
    })
}

/// A query variable: `label`'s values on `selector`'s series, one at a time.
fn label_variable(name: &str, title: &str, selector: &str, label: &str) -> Value {
    json!({
        "name": name,
        "label": title,
        "type": "query",
        "query": {"query": format!("label_values({selector}, {label})"), "refId": name},
        "refresh": 2,
        "sort": 1,
        "multi": false,
        "includeAll": false,
    })
}

/// A link to dashboard `slug` that carries the datasource, cluster and time range, plus
/// `params` (`("namespace", "${__data.fields.namespace}")` becomes `var-namespace=...`).
fn dashboard_url(slug: &str, params: &[(&str, &str)]) -> String {
    let mut url = format!(
        "/d/{}?${{{DATASOURCE_VARIABLE}:queryparam}}&${{cluster:queryparam}}&${{__url_time_range}}",
        uid(slug)
    );
    for (name, value) in params {
        url.push_str(&format!("&var-{name}={value}"));
    }
    url
}

/// The node detail dashboard for one node (it has no datasource or cluster variable).
fn node_detail_url(node: &str) -> String {
    format!(
        "/d/{}?var-node={node}&${{__url_time_range}}",
        uid(NODE_DETAIL_SLUG)
    )
}

/// A dashboard's uid: stable, from its slug.
fn uid(slug: &str) -> String {
    format!("automon-{slug}")
}

/// The `node` variable: the `node` label's values on `selector`'s series, one node at a time or
/// (`multi`) any choice of them, all by default.
fn node_variable(selector: &str, multi: bool) -> Value {
    let mut variable = json!({
        "name": "node",
        "label": "Node",
        "type": "query",
        "query": {"query": format!("label_values({selector}, node)"), "refId": "node"},
        "refresh": 2,
        "sort": 1,
        "multi": multi,
        "includeAll": multi,
    });
    if multi {
        variable["current"] = json!({"selected": true, "text": ["All"], "value": ["$__all"]});
        // "All" as one regex rather than every node's name joined: short on any cluster.
        variable["allValue"] = json!(".+");
    }
    variable
}

impl Dashboard {
    fn uid(&self) -> String {
        uid(self.slug)
    }

    fn config_map_name(&self) -> String {
        format!("grafana-dashboard-{}", self.slug)
    }

    /// The datasource panels and query variables use: the `datasource` variable's choice when
    /// the dashboard has one, else the provisioned Prometheus.
    fn datasource(&self) -> Value {
        let chosen = self
            .variables
            .first()
            .is_some_and(|v| v["name"] == DATASOURCE_VARIABLE);
        if chosen {
            chosen_datasource()
        } else {
            datasource()
        }
    }

    /// Panels flow left to right and wrap at the grid's width; ids follow the order, so both
    /// stay stable as long as the definition does.
    fn to_json(&self) -> Value {
        let datasource = self.datasource();
        let (mut x, mut y, mut row_height) = (0, 0, 0);
        let panels: Vec<Value> = self
            .panels
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (w, h) = p.size;
                if x + w > GRID_WIDTH {
                    (x, y, row_height) = (0, y + row_height, 0);
                }
                let json = p.to_json(i + 1, (x, y), &datasource);
                x += w;
                row_height = row_height.max(h);
                json
            })
            .collect();
        let variables: Vec<Value> = self
            .variables
            .iter()
            .map(|v| {
                let mut v = v.clone();
                if v["type"] == "query" {
                    v["datasource"] = datasource.clone();
                }
                v
            })
            .collect();
        let mut dashboard = json!({
            "uid": self.uid(),
            "title": self.title,
            "description": self.description,
            "tags": ["automon"],
            "schemaVersion": SCHEMA_VERSION,
            "editable": false,
            "graphTooltip": 1,
            "refresh": "30s",
            "time": {"from": "now-1h", "to": "now"},
            "timezone": "browser",
            "templating": {"list": variables},
            "panels": panels,
        });
        if !self.links.is_empty() {
            dashboard["links"] = self.links.iter().map(DashboardLink::to_json).collect();
        }
        dashboard
    }
}

/// `label_<key>` as kube-state-metrics names a node label in `kube_node_labels`.
fn ksm_label(key: &str) -> String {
    let sanitized: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("label_{sanitized}")
}

fn cluster_overview(config: &Config, windows: bool) -> Dashboard {
    let cpu_red = config.alerts.high_cpu.threshold_percent / 100.0;
    let memory_red = config.alerts.high_memory.threshold_percent / 100.0;
    let disk_red = 1.0 - config.alerts.disk_space_low.threshold_percent / 100.0;
    // Nodes that should run an exporter (Linux, not opted out) but have no target up: the same
    // gap the coverage alert pages on.
    let expected = |os: &str| {
        format!(
            r#"kube_node_labels{{{KUBE_STATE_METRICS}, label_kubernetes_io_os="{os}", {}!="true"}}"#,
            ksm_label(&config.node_exporter.exclude_label)
        )
    };
    let ne = NODE_EXPORTER;
    let we = WINDOWS_EXPORTER;
    // With Windows nodes, windows-exporter covers them as node-exporter covers Linux ones.
    let (monitored, gaps) = if windows {
        (
            Panel::new(Kind::Stat, "Nodes monitored", "Nodes with a node-exporter (Linux) or windows-exporter (Windows) target that Prometheus scrapes successfully.", "none")
                .query(r#"count(up{job=~"node-exporter|windows-exporter"} == 1) or vector(0)"#, "monitored"),
            Panel::new(Kind::Stat, "Monitoring gaps", "Linux and Windows nodes, not opted out, without a target of their exporter that is up.", "none")
                .query(format!(
                    "count(({} unless on (node) (up{{{ne}}} == 1)) or ({} unless on (node) (up{{{we}}} == 1))) or vector(0)",
                    expected("linux"),
                    expected("windows"),
                ), "gaps"),
        )
    } else {
        (
            Panel::new(
                Kind::Stat,
                "Nodes monitored",
                "Nodes with a node-exporter target that Prometheus scrapes successfully.",
                "none",
            )
            .query(format!("count(up{{{ne}}} == 1) or vector(0)"), "monitored"),
            Panel::new(
                Kind::Stat,
                "Monitoring gaps",
                "Linux nodes, not opted out, without a node-exporter target that is up.",
                "none",
            )
            .query(
                format!(
                    "count({} unless on (node) (up{{{ne}}} == 1)) or vector(0)",
                    expected("linux")
                ),
                "gaps",
            ),
        )
    };
    let panels = vec![
        Panel::new(Kind::Stat, "Nodes", "Nodes the API server knows (kube-state-metrics).", "none")
            .query(format!("count(kube_node_info{{{KUBE_STATE_METRICS}}})"), "nodes"),
        Panel::new(Kind::Stat, "Nodes Ready", "Nodes whose Ready condition is true.", "none")
            .query(format!(r#"sum(kube_node_status_condition{{{KUBE_STATE_METRICS}, condition="Ready", status="true"}})"#), "ready"),
        monitored,
        gaps.red_from(1.0),
        Panel::new(Kind::Stat, "CPU used", "Share of all nodes' CPU time not idle.", "percentunit")
            .query(format!(r#"1 - avg(rate(node_cpu_seconds_total{{{ne}, mode="idle"}}[$__rate_interval]))"#), "cpu")
            .red_from(cpu_red),
        Panel::new(Kind::Stat, "Memory used", "Share of all nodes' memory not available to new work.", "percentunit")
            .query(format!("1 - sum(node_memory_MemAvailable_bytes{{{ne}}}) / sum(node_memory_MemTotal_bytes{{{ne}}})"), "memory")
            .red_from(memory_red),
        Panel::new(Kind::Stat, "Filesystem used", "Share of all nodes' filesystem space in use.", "percentunit")
            .query(format!("1 - sum(node_filesystem_avail_bytes{{{ne}, {REAL_FS}}}) / sum(node_filesystem_size_bytes{{{ne}, {REAL_FS}}})"), "filesystem")
            .red_from(disk_red),
        Panel::new(Kind::Stat, "Firing alerts", "Alerts firing now, not counting the Watchdog.", "none")
            .query(format!("count({FIRING}) or vector(0)"), "firing")
            .red_from(1.0),
        Panel::new(Kind::TimeSeries, "CPU used per node", "Share of each node's CPU time not idle.", "percentunit")
            .query(format!(r#"1 - avg by (node) (rate(node_cpu_seconds_total{{{ne}, mode="idle"}}[$__rate_interval]))"#), "{{node}}")
            .red_from(cpu_red),
        Panel::new(Kind::TimeSeries, "Memory used per node", "Share of each node's memory not available to new work.", "percentunit")
            .query(format!("1 - node_memory_MemAvailable_bytes{{{ne}}} / node_memory_MemTotal_bytes{{{ne}}}"), "{{node}}")
            .red_from(memory_red),
        Panel::new(Kind::TimeSeries, "Fullest filesystem per node", "Each node's fullest real filesystem.", "percentunit")
            .query(format!("max by (node) (1 - node_filesystem_avail_bytes{{{ne}, {REAL_FS}}} / node_filesystem_size_bytes{{{ne}, {REAL_FS}}})"), "{{node}}")
            .red_from(disk_red),
        Panel::new(Kind::TimeSeries, "Load per core", "1-minute load average divided by the node's CPU count; above 1 means work waits.", "none")
            .query(format!(r#"node_load1{{{ne}}} / on (node) count by (node) (node_cpu_seconds_total{{{ne}, mode="idle"}})"#), "{{node}}")
            .red_from(1.0),
    ];
    Dashboard {
        slug: "cluster-overview",
        title: "automon / Cluster overview",
        description: "Nodes, monitoring coverage, cluster resource use and firing alerts.",
        variables: Vec::new(),
        panels,
        links: Vec::new(),
    }
}

fn node_detail(config: &Config) -> Dashboard {
    let cpu_red = config.alerts.high_cpu.threshold_percent / 100.0;
    let memory_red = config.alerts.high_memory.threshold_percent / 100.0;
    let disk_red = 1.0 - config.alerts.disk_space_low.threshold_percent / 100.0;
    let hours = config.alerts.filesystem_filling_up.hours;
    let n = ONE_NODE;
    // node_uname_info has one series per node-exporter, so the list is the monitored nodes.
    let variables = vec![node_variable(
        &format!("node_uname_info{{{NODE_EXPORTER}}}"),
        false,
    )];
    let panels = vec![
        Panel::new(Kind::Stat, "Uptime", "Time since the node booted.", "s")
            .width(4)
            .query(format!("time() - node_boot_time_seconds{{{n}}}"), "uptime"),
        Panel::new(Kind::Stat, "CPU cores", "Logical CPUs.", "none")
            .width(4)
            .query(format!(r#"count(node_cpu_seconds_total{{{n}, mode="idle"}})"#), "cores"),
        Panel::new(Kind::Stat, "Memory total", "Total memory.", "bytes")
            .width(4)
            .query(format!("node_memory_MemTotal_bytes{{{n}}}"), "total"),
        Panel::new(Kind::Stat, "CPU used", "Share of CPU time not idle.", "percentunit")
            .width(4)
            .query(format!(r#"1 - avg(rate(node_cpu_seconds_total{{{n}, mode="idle"}}[$__rate_interval]))"#), "cpu")
            .red_from(cpu_red),
        Panel::new(Kind::Stat, "Memory used", "Share of memory not available to new work.", "percentunit")
            .width(4)
            .query(format!("1 - node_memory_MemAvailable_bytes{{{n}}} / node_memory_MemTotal_bytes{{{n}}}"), "memory")
            .red_from(memory_red),
        Panel::new(Kind::Stat, "Root filesystem used", "Share of / in use.", "percentunit")
            .width(4)
            .query(format!(r#"1 - node_filesystem_avail_bytes{{{n}, mountpoint="/"}} / node_filesystem_size_bytes{{{n}, mountpoint="/"}}"#), "/")
            .red_from(disk_red),
        Panel::new(Kind::TimeSeries, "CPU by mode", "Share of the node's CPU time per mode, idle left out.", "percentunit")
            .stacked()
            .query(format!(r#"sum by (mode) (rate(node_cpu_seconds_total{{{n}, mode!="idle"}}[$__rate_interval])) / scalar(count(node_cpu_seconds_total{{{n}, mode="idle"}}))"#), "{{mode}}"),
        Panel::new(Kind::TimeSeries, "Load average", "Runnable and waiting tasks, against the CPU count.", "none")
            .query(format!("node_load1{{{n}}}"), "1m")
            .query(format!("node_load5{{{n}}}"), "5m")
            .query(format!("node_load15{{{n}}}"), "15m")
            .query(format!(r#"count(node_cpu_seconds_total{{{n}, mode="idle"}})"#), "cores"),
        Panel::new(Kind::TimeSeries, "Memory", "Where the node's memory goes.", "bytes")
            .query(format!("node_memory_MemTotal_bytes{{{n}}} - node_memory_MemAvailable_bytes{{{n}}}"), "used")
            .query(format!("node_memory_Buffers_bytes{{{n}}} + node_memory_Cached_bytes{{{n}}}"), "buffers and cache")
            .query(format!("node_memory_MemAvailable_bytes{{{n}}}"), "available")
            .query(format!("node_memory_MemTotal_bytes{{{n}}}"), "total"),
        Panel::new(Kind::TimeSeries, "Disk space used", "Share of each real filesystem in use.", "percentunit")
            .query(format!("1 - node_filesystem_avail_bytes{{{n}, {REAL_FS}}} / node_filesystem_size_bytes{{{n}, {REAL_FS}}}"), "{{mountpoint}}")
            .red_from(disk_red),
        Panel::new(Kind::TimeSeries, "Disk I/O", "Bytes read and written per second, per device.", "Bps")
            .query(format!("rate(node_disk_read_bytes_total{{{n}}}[$__rate_interval])"), "{{device}} read")
            .query(format!("rate(node_disk_written_bytes_total{{{n}}}[$__rate_interval])"), "{{device}} written"),
        Panel::new(Kind::TimeSeries, "Disk busy", "Share of time each device had I/O in flight.", "percentunit")
            .query(format!("rate(node_disk_io_time_seconds_total{{{n}}}[$__rate_interval])"), "{{device}}"),
        Panel::new(Kind::TimeSeries, "Network received", "Bytes received per second, per interface.", "Bps")
            .query(format!(r#"rate(node_network_receive_bytes_total{{{n}, device!="lo"}}[$__rate_interval])"#), "{{device}}"),
        Panel::new(Kind::TimeSeries, "Network transmitted", "Bytes sent per second, per interface.", "Bps")
            .query(format!(r#"rate(node_network_transmit_bytes_total{{{n}, device!="lo"}}[$__rate_interval])"#), "{{device}}"),
        Panel::new(
            Kind::TimeSeries,
            &format!("Free space in {hours}h (predicted)"),
            "Free space each filesystem will have if the last 6 hours' trend goes on; at 0 it is full.",
            "bytes",
        )
        .width(24)
        .query(format!("predict_linear(node_filesystem_avail_bytes{{{n}, {REAL_FS}}}[6h], {hours} * 3600)"), "{{mountpoint}}"),
    ];
    Dashboard {
        slug: NODE_DETAIL_SLUG,
        title: "automon / Node detail",
        description: "One node at a time, as its node-exporter sees it.",
        variables,
        panels,
        links: Vec::new(),
    }
}

/// Node detail for one Windows node, from windows-exporter: CPU, memory, disks and network, as
/// node detail shows a Linux node.
fn windows_node_detail(config: &Config) -> Dashboard {
    let cpu_red = config.alerts.high_cpu.threshold_percent / 100.0;
    let memory_red = config.alerts.high_memory.threshold_percent / 100.0;
    let disk_red = 1.0 - config.alerts.disk_space_low.threshold_percent / 100.0;
    let n = ONE_WINDOWS_NODE;
    let v = WINDOWS_VOLUMES;
    // windows_os_info has one series per windows-exporter: the list is the monitored nodes.
    let variables = vec![node_variable(
        &format!("windows_os_info{{{WINDOWS_EXPORTER}}}"),
        false,
    )];
    let panels = vec![
        Panel::new(Kind::Stat, "Uptime", "Time since Windows started.", "s")
            .width(4)
            .query(format!("time() - windows_system_boot_time_timestamp_seconds{{{n}}}"), "uptime"),
        Panel::new(Kind::Stat, "Logical processors", "Logical processors Windows schedules on.", "none")
            .width(4)
            .query(format!(r#"count(windows_cpu_time_total{{{n}, mode="idle"}})"#), "processors"),
        Panel::new(Kind::Stat, "Physical memory", "Installed physical memory.", "bytes")
            .width(4)
            .query(format!("windows_memory_physical_total_bytes{{{n}}}"), "total"),
        Panel::new(Kind::Stat, "CPU used", "Share of processor time not idle.", "percentunit")
            .width(4)
            .query(format!(r#"1 - avg(rate(windows_cpu_time_total{{{n}, mode="idle"}}[$__rate_interval]))"#), "cpu")
            .red_from(cpu_red),
        Panel::new(Kind::Stat, "Memory used", "Share of physical memory not available to new work.", "percentunit")
            .width(4)
            .query(format!("1 - windows_memory_available_bytes{{{n}}} / windows_memory_physical_total_bytes{{{n}}}"), "memory")
            .red_from(memory_red),
        Panel::new(Kind::Stat, "Fullest volume", "Share of the fullest lettered volume in use.", "percentunit")
            .width(4)
            .query(format!("max(1 - windows_logical_disk_free_bytes{{{n}, {v}}} / windows_logical_disk_size_bytes{{{n}, {v}}})"), "volume")
            .red_from(disk_red),
        Panel::new(Kind::TimeSeries, "CPU by mode", "Share of processor time per mode (user, privileged, interrupt, DPC), idle left out.", "percentunit")
            .stacked()
            .query(format!(r#"sum by (mode) (rate(windows_cpu_time_total{{{n}, mode!="idle"}}[$__rate_interval])) / scalar(count(windows_cpu_time_total{{{n}, mode="idle"}}))"#), "{{mode}}"),
        Panel::new(Kind::TimeSeries, "Processor queue", "Threads ready to run but waiting for a processor; persistently above the processor count means CPU starvation.", "none")
            .query(format!("windows_system_processor_queue_length{{{n}}}"), "queued")
            .query(format!(r#"count(windows_cpu_time_total{{{n}, mode="idle"}})"#), "processors"),
        Panel::new(Kind::TimeSeries, "Memory", "Physical memory in use, available and in total; the file cache is part of available.", "bytes")
            .query(format!("windows_memory_physical_total_bytes{{{n}}} - windows_memory_available_bytes{{{n}}}"), "used")
            .query(format!("windows_memory_cache_bytes{{{n}}}"), "file cache")
            .query(format!("windows_memory_available_bytes{{{n}}}"), "available")
            .query(format!("windows_memory_physical_total_bytes{{{n}}}"), "total"),
        Panel::new(Kind::TimeSeries, "Volume space used", "Share of each lettered volume in use.", "percentunit")
            .query(format!("1 - windows_logical_disk_free_bytes{{{n}, {v}}} / windows_logical_disk_size_bytes{{{n}, {v}}}"), "{{volume}}")
            .red_from(disk_red),
        Panel::new(Kind::TimeSeries, "Disk I/O", "Bytes read and written per second, per volume.", "Bps")
            .query(format!("rate(windows_logical_disk_read_bytes_total{{{n}, {v}}}[$__rate_interval])"), "{{volume}} read")
            .query(format!("rate(windows_logical_disk_write_bytes_total{{{n}, {v}}}[$__rate_interval])"), "{{volume}} written"),
        Panel::new(Kind::TimeSeries, "Disk busy", "Share of time each volume was not idle.", "percentunit")
            .query(format!("1 - rate(windows_logical_disk_idle_seconds_total{{{n}, {v}}}[$__rate_interval])"), "{{volume}}"),
        Panel::new(Kind::TimeSeries, "Network received", "Bytes received per second, per network interface.", "Bps")
            .query(format!("rate(windows_net_bytes_received_total{{{n}}}[$__rate_interval])"), "{{nic}}"),
        Panel::new(Kind::TimeSeries, "Network sent", "Bytes sent per second, per network interface.", "Bps")
            .query(format!("rate(windows_net_bytes_sent_total{{{n}}}[$__rate_interval])"), "{{nic}}"),
    ];
    Dashboard {
        slug: "windows-node-detail",
        title: "automon / Windows node detail",
        description: "One Windows node at a time, as its windows-exporter sees it.",
        variables,
        panels,
        links: Vec::new(),
    }
}

/// The GPUs of the chosen nodes, each on its own line: how busy, how full, how hot, how much
/// power, and the last XID error each reported.
fn gpus() -> Dashboard {
    let g = GPU_NODES;
    let legend = "{{node}} GPU {{gpu}}";
    // DCGM reports framebuffer memory in MiB.
    let mib = 1024 * 1024;
    let variables = vec![node_variable(
        &format!("DCGM_FI_DEV_GPU_TEMP{{{DCGM_EXPORTER}}}"),
        true,
    )];
    let panels = vec![
        Panel::new(Kind::Stat, "GPUs", "GPUs that dcgm-exporter reports on the chosen nodes.", "none")
            .width(4)
            .query(format!("count({BY_GPU} (DCGM_FI_DEV_GPU_TEMP{{{g}}}))"), "GPUs"),
        Panel::new(Kind::Stat, "Utilisation", "Average share of time the GPUs were running work.", "percent")
            .width(4)
            .query(format!("avg({BY_GPU} (DCGM_FI_DEV_GPU_UTIL{{{g}}}))"), "utilisation"),
        Panel::new(Kind::Stat, "Memory used", "Share of all GPU memory in use.", "percentunit")
            .width(4)
            .query(format!("sum(DCGM_FI_DEV_FB_USED{{{g}}}) / (sum(DCGM_FI_DEV_FB_USED{{{g}}}) + sum(DCGM_FI_DEV_FB_FREE{{{g}}}))"), "memory"),
        Panel::new(Kind::Stat, "Hottest GPU", "Temperature of the hottest GPU.", "celsius")
            .width(4)
            .query(format!("max(DCGM_FI_DEV_GPU_TEMP{{{g}}})"), "hottest")
            .red_from(85.0),
        Panel::new(Kind::Stat, "Power", "Power drawn by all the GPUs.", "watt")
            .width(4)
            .query(format!("sum({BY_GPU} (DCGM_FI_DEV_POWER_USAGE{{{g}}}))"), "power"),
        Panel::new(Kind::Stat, "GPUs with XID errors", "GPUs whose latest XID is not 0.", "none")
            .width(4)
            .query(format!("count({BY_GPU} (DCGM_FI_DEV_XID_ERRORS{{{g}}}) > 0) or vector(0)"), "GPUs")
            .red_from(1.0),
        Panel::new(Kind::TimeSeries, "Utilisation per GPU", "Share of time each GPU was running work.", "percent")
            .query(format!("{BY_GPU} (DCGM_FI_DEV_GPU_UTIL{{{g}}})"), legend),
        Panel::new(Kind::TimeSeries, "Memory used per GPU", "Framebuffer memory in use on each GPU.", "bytes")
            .query(format!("{BY_GPU} (DCGM_FI_DEV_FB_USED{{{g}}}) * {mib}"), legend),
        Panel::new(Kind::TimeSeries, "Temperature per GPU", "Each GPU's temperature; the line is where the alert starts counting.", "celsius")
            .query(format!("{BY_GPU} (DCGM_FI_DEV_GPU_TEMP{{{g}}})"), legend)
            .red_from(85.0),
        Panel::new(Kind::TimeSeries, "Power per GPU", "Power each GPU draws.", "watt")
            .query(format!("{BY_GPU} (DCGM_FI_DEV_POWER_USAGE{{{g}}})"), legend),
        Panel::new(Kind::Table, "Latest XID per GPU", "The latest XID error each GPU reported (0: none since the driver loaded).", "none")
            .query(format!("{BY_GPU} (DCGM_FI_DEV_XID_ERRORS{{{g}}})"), ""),
    ];
    Dashboard {
        slug: "gpus",
        title: "automon / GPUs",
        description: "NVIDIA GPUs per node, as dcgm-exporter reports them.",
        variables,
        panels,
        links: Vec::new(),
    }
}

fn alerts_overview() -> Dashboard {
    let panels = vec![
        Panel::new(Kind::Stat, "Firing", "Alerts firing now, not counting the Watchdog.", "none")
            .width(5)
            .query(format!("count({FIRING}) or vector(0)"), "firing")
            .red_from(1.0),
        Panel::new(Kind::Stat, "Critical", "Critical alerts firing now.", "none")
            .width(5)
            .query(r#"count(ALERTS{alertstate="firing", severity="critical"}) or vector(0)"#, "critical")
            .red_from(1.0),
        Panel::new(Kind::Stat, "Warning", "Warning alerts firing now.", "none")
            .width(5)
            .query(r#"count(ALERTS{alertstate="firing", severity="warning"}) or vector(0)"#, "warning")
            .red_from(1.0),
        Panel::new(Kind::Stat, "Pending", "Alerts whose condition holds but not yet for long enough.", "none")
            .width(5)
            .query(r#"count(ALERTS{alertstate="pending"}) or vector(0)"#, "pending"),
        // The Watchdog fires always; when it does not, the rules or Prometheus are broken.
        Panel::new(Kind::Stat, "Watchdog", "1 when the always-firing Watchdog fires, i.e. the alerting pipeline works.", "none")
            .width(4)
            .query(r#"count(ALERTS{alertstate="firing", alertname="Watchdog"}) or vector(0)"#, "watchdog"),
        // The breakdowns keep the Watchdog: it is what they show when all is well, instead of
        // "No data", which would look the same as a broken pipeline.
        Panel::new(Kind::BarGauge, "Firing by severity", "Alerts firing now, per severity.", "none")
            .query(r#"count by (severity) (ALERTS{alertstate="firing"})"#, "{{severity}}"),
        Panel::new(Kind::BarGauge, "Firing by name", "Alerts firing now, per alert.", "none")
            .query(r#"count by (alertname) (ALERTS{alertstate="firing"})"#, "{{alertname}}"),
        Panel::new(Kind::Table, "Firing alerts", "Every alert firing now with its labels.", "none")
            .query(r#"ALERTS{alertstate="firing"}"#, ""),
        Panel::new(Kind::TimeSeries, "Alert history", "Firing alerts over time, per alert.", "none")
            .width(24)
            .stacked()
            .query(r#"count by (alertname) (ALERTS{alertstate="firing"})"#, "{{alertname}}"),
        Panel::new(Kind::BarGauge, "Fired in the time range", "Alerts that fired at any point of the dashboard's time range.", "none")
            .width(24)
            .query(r#"count by (alertname, severity) (max_over_time(ALERTS{alertstate="firing"}[$__range]))"#, "{{alertname}} ({{severity}})"),
    ];
    Dashboard {
        slug: ALERTS_OVERVIEW_SLUG,
        title: "automon / Alerts overview",
        description: "What is firing now, and what fired before.",
        variables: Vec::new(),
        panels,
        links: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    const NONE: NodeClasses = NodeClasses {
        windows: false,
        gpu: false,
    };
    const ALL: NodeClasses = NodeClasses {
        windows: true,
        gpu: true,
    };

    fn rendered(config: &Config) -> Vec<Value> {
        dashboards(config, ALL)
            .iter()
            .map(Dashboard::to_json)
            .collect()
    }

    #[test]
    fn every_enabled_dashboard_is_a_labelled_config_map() {
        let config = Config::default();
        let objects = objects(&Context::new(&config));
        let names: Vec<_> = objects
            .iter()
            .map(|o| o.metadata.name.clone().unwrap_or_default())
            .collect();
        assert_eq!(
            names,
            [
                "grafana-dashboard-cluster-overview",
                "grafana-dashboard-node-detail",
                "grafana-dashboard-alerts-overview",
                "grafana-dashboard-k8s-compute-cluster",
                "grafana-dashboard-k8s-compute-namespace",
                "grafana-dashboard-k8s-compute-workload",
                "grafana-dashboard-k8s-compute-pod",
                "grafana-dashboard-k8s-persistent-volumes",
                "grafana-dashboard-k8s-apiserver",
                "grafana-dashboard-k8s-kubelet",
                "grafana-dashboard-prometheus",
                "grafana-dashboard-alertmanager",
            ]
        );
        for o in &objects {
            let labels = o.metadata.labels.as_ref().expect("labels");
            assert_eq!(labels.get(SIDECAR_LABEL).map(String::as_str), Some("1"));
            assert_eq!(
                labels
                    .get(crate::model::names::COMPONENT_LABEL)
                    .map(String::as_str),
                Some(COMPONENT)
            );
            assert_eq!(o.metadata.namespace.as_deref(), Some("automon"));
            let data = o.data["data"].as_object().expect("data");
            assert_eq!(data.len(), 1);
            let (key, text) = data.iter().next().expect("one key");
            let dashboard: Value =
                serde_json::from_str(text.as_str().expect("string")).expect("JSON");
            assert_eq!(
                key,
                &format!("{}.json", dashboard["uid"].as_str().expect("uid"))
            );
            assert_eq!(dashboard["tags"], json!(["automon"]));
            assert!(dashboard["schemaVersion"].as_u64().expect("schemaVersion") >= 39);
        }
    }

    /// The node dashboards only: the beyond-nodes switches off.
    fn nodes_only() -> Config {
        let mut config = Config::default();
        config.dashboards.workloads = false;
        config.dashboards.kubernetes = false;
        config.dashboards.stack = false;
        config
    }

    #[test]
    fn disabled_dashboards_are_not_rendered() {
        let mut config = nodes_only();
        config.dashboards.cluster_overview = false;
        config.dashboards.alerts_overview = false;
        let uids: BTreeSet<_> = panel_queries(&config, NONE)
            .into_iter()
            .map(|q| q.dashboard_uid)
            .collect();
        assert_eq!(uids, BTreeSet::from(["automon-node-detail".to_string()]));
        config.dashboards.node_detail = false;
        assert!(objects(&Context::new(&config)).is_empty());
    }

    #[test]
    fn panels_have_unique_ids_a_datasource_and_a_query() {
        for d in rendered(&Config::default()) {
            let panels = d["panels"].as_array().expect("panels");
            let ids: BTreeSet<_> = panels
                .iter()
                .map(|p| p["id"].as_u64().expect("id"))
                .collect();
            assert_eq!(ids.len(), panels.len(), "{}: duplicate panel ids", d["uid"]);
            let titles: BTreeSet<_> = panels.iter().map(|p| p["title"].to_string()).collect();
            assert_eq!(
                titles.len(),
                panels.len(),
                "{}: duplicate panel titles",
                d["uid"]
            );
            // With a datasource variable, panels use its choice; else the provisioned one.
            let uid = if d["templating"]["list"][0]["name"] == DATASOURCE_VARIABLE {
                "${datasource}"
            } else {
                PROMETHEUS_UID
            };
            for p in panels {
                let at = format!("{} / {}", d["uid"], p["title"]);
                assert_eq!(p["datasource"]["uid"], uid, "{at}");
                let targets = p["targets"].as_array().expect("targets");
                assert!(!targets.is_empty(), "{at}: no query");
                for t in targets {
                    assert_eq!(t["datasource"]["uid"], uid, "{at}");
                    assert!(!t["expr"].as_str().unwrap_or_default().is_empty(), "{at}");
                }
            }
        }
    }

    #[test]
    fn panels_do_not_overlap_and_fit_the_grid() {
        for d in rendered(&Config::default()) {
            let mut cells = BTreeSet::new();
            for p in d["panels"].as_array().expect("panels") {
                let g = &p["gridPos"];
                let [x, y, w, h] =
                    ["x", "y", "w", "h"].map(|k| g[k].as_u64().expect("gridPos") as u32);
                assert!(
                    x + w <= GRID_WIDTH,
                    "{}: {} is too wide",
                    d["uid"],
                    p["title"]
                );
                for cx in x..x + w {
                    for cy in y..y + h {
                        assert!(
                            cells.insert((cx, cy)),
                            "{}: {} overlaps",
                            d["uid"],
                            p["title"]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn node_detail_shows_one_node_chosen_by_a_variable() {
        let node = rendered(&Config::default())
            .into_iter()
            .find(|d| d["uid"] == "automon-node-detail")
            .expect("node dashboard");
        let vars = node["templating"]["list"].as_array().expect("variables");
        let var = vars
            .iter()
            .find(|v| v["name"] == "node")
            .expect("node variable");
        assert_eq!(var["type"], "query");
        assert_eq!(var["multi"], false);
        assert_eq!(var["includeAll"], false);
        for q in panel_queries(&Config::default(), ALL)
            .iter()
            .filter(|q| q.dashboard_uid == "automon-node-detail")
        {
            assert!(
                q.expr.contains(r#"node="$node""#),
                "{} shows more than one node: {}",
                q.panel_title,
                q.expr
            );
        }
    }

    #[test]
    fn node_classes_bring_their_dashboards() {
        let uids = |config: &Config, classes| -> Vec<String> {
            dashboards(config, classes)
                .iter()
                .map(Dashboard::uid)
                .collect()
        };
        let config = nodes_only();
        assert_eq!(
            uids(&config, NONE),
            [
                "automon-cluster-overview",
                "automon-node-detail",
                "automon-alerts-overview"
            ]
        );
        assert_eq!(
            uids(&config, ALL),
            [
                "automon-cluster-overview",
                "automon-node-detail",
                "automon-windows-node-detail",
                "automon-gpus",
                "automon-alerts-overview"
            ]
        );
        // Windows node detail is a node detail: off with it.
        let mut no_detail = nodes_only();
        no_detail.dashboards.node_detail = false;
        assert_eq!(
            uids(&no_detail, ALL),
            [
                "automon-cluster-overview",
                "automon-gpus",
                "automon-alerts-overview"
            ]
        );
        let names: Vec<_> = objects(&Context {
            classes: ALL,
            ..Context::new(&config)
        })
        .iter()
        .map(|o| o.metadata.name.clone().unwrap_or_default())
        .collect();
        assert!(names.contains(&"grafana-dashboard-windows-node-detail".to_string()));
        assert!(names.contains(&"grafana-dashboard-gpus".to_string()));
    }

    fn variable(uid: &str) -> Value {
        let d = rendered(&Config::default())
            .into_iter()
            .find(|d| d["uid"] == uid)
            .expect("dashboard");
        d["templating"]["list"][0].clone()
    }

    #[test]
    fn windows_node_detail_shows_one_windows_node() {
        let var = variable("automon-windows-node-detail");
        assert_eq!(var["name"], "node");
        assert_eq!(var["multi"], false);
        assert_eq!(
            var["query"]["query"],
            r#"label_values(windows_os_info{job="windows-exporter"}, node)"#
        );
        let queries: Vec<_> = panel_queries(&Config::default(), ALL)
            .into_iter()
            .filter(|q| q.dashboard_uid == "automon-windows-node-detail")
            .collect();
        assert!(queries.len() >= 10);
        for q in &queries {
            assert!(
                q.expr.contains(ONE_WINDOWS_NODE),
                "{}: {}",
                q.panel_title,
                q.expr
            );
            assert!(q.expr.contains("windows_"), "{}: {}", q.panel_title, q.expr);
        }
        let titles: BTreeSet<_> = queries.iter().map(|q| q.panel_title.as_str()).collect();
        for needed in [
            "CPU used",
            "Memory used",
            "Volume space used",
            "Disk I/O",
            "Network received",
        ] {
            assert!(titles.contains(needed), "{needed}");
        }
    }

    #[test]
    fn gpu_panels_show_each_gpu_of_the_chosen_nodes() {
        let var = variable("automon-gpus");
        assert_eq!(
            (var["multi"].clone(), var["includeAll"].clone()),
            (json!(true), json!(true))
        );
        let gpus: Vec<_> = rendered(&Config::default())
            .into_iter()
            .filter(|d| d["uid"] == "automon-gpus")
            .collect();
        for p in gpus[0]["panels"].as_array().expect("panels") {
            for t in p["targets"].as_array().expect("targets") {
                let expr = t["expr"].as_str().expect("expr");
                assert!(expr.contains(GPU_NODES), "{}: {expr}", p["title"]);
                if p["type"] == "timeseries" {
                    assert_eq!(t["legendFormat"], "{{node}} GPU {{gpu}}", "{}", p["title"]);
                    assert!(expr.starts_with(BY_GPU), "{}: {expr}", p["title"]);
                }
            }
        }
        let titles: Vec<String> = gpus[0]["panels"]
            .as_array()
            .expect("panels")
            .iter()
            .map(|p| p["title"].as_str().unwrap_or_default().to_string())
            .collect();
        for needed in [
            "Utilisation per GPU",
            "Memory used per GPU",
            "Temperature per GPU",
            "Power per GPU",
            "Latest XID per GPU",
        ] {
            assert!(titles.iter().any(|t| t == needed), "{needed}");
        }
    }

    #[test]
    fn windows_nodes_count_in_the_overviews_coverage() {
        let gaps = |classes| {
            panel_queries(&Config::default(), classes)
                .into_iter()
                .find(|q| q.panel_title == "Monitoring gaps")
                .expect("gaps panel")
                .expr
        };
        assert!(!gaps(NONE).contains("windows"));
        let both = gaps(ALL);
        assert!(
            both.contains(r#"label_kubernetes_io_os="windows""#),
            "{both}"
        );
        assert!(
            both.contains(r#"up{job="windows-exporter"} == 1"#),
            "{both}"
        );
    }

    #[test]
    fn rates_use_grafanas_rate_interval() {
        for q in panel_queries(&Config::default(), ALL) {
            if q.expr.contains("rate(") {
                assert!(
                    q.expr.contains("[$__rate_interval]"),
                    "{}: {}",
                    q.panel_title,
                    q.expr
                );
            }
        }
    }

    #[test]
    fn coverage_follows_the_configured_exclude_label() {
        assert_eq!(ksm_label("automon.io/exclude"), "label_automon_io_exclude");
        let mut config = Config::default();
        config.node_exporter.exclude_label = "example.com/no-monitoring".into();
        let gaps = panel_queries(&config, ALL)
            .into_iter()
            .find(|q| q.panel_title == "Monitoring gaps")
            .expect("gaps panel");
        assert!(
            gaps.expr
                .contains(r#"label_example_com_no_monitoring!="true""#),
            "{}",
            gaps.expr
        );
    }

    #[test]
    fn thresholds_follow_the_alert_config() {
        let mut config = Config::default();
        config.alerts.high_cpu.threshold_percent = 90.0;
        let overview = &rendered(&config)[0];
        let cpu = overview["panels"]
            .as_array()
            .expect("panels")
            .iter()
            .find(|p| p["title"] == "CPU used")
            .expect("CPU panel");
        assert_eq!(
            cpu["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"],
            json!(0.9)
        );
    }

    /// A beyond-nodes switch: its name, how to turn it off, the uids it installs.
    type Switch = (&'static str, fn(&mut Config), Vec<String>);

    /// The uids of the dashboards each beyond-nodes switch installs.
    fn switched() -> [Switch; 3] {
        let uids = |slugs: &[&str]| slugs.iter().map(|s| uid(s)).collect::<Vec<_>>();
        [
            (
                "workloads",
                |c| c.dashboards.workloads = false,
                uids(&[
                    workloads::CLUSTER,
                    workloads::NAMESPACE,
                    workloads::WORKLOAD,
                    workloads::POD,
                    workloads::VOLUMES,
                ]),
            ),
            (
                "kubernetes",
                |c| c.dashboards.kubernetes = false,
                uids(&[kubernetes::API_SERVER, kubernetes::KUBELET]),
            ),
            (
                "stack",
                |c| c.dashboards.stack = false,
                uids(&[stack::PROMETHEUS, stack::ALERTMANAGER]),
            ),
        ]
    }

    fn uids_of(config: &Config) -> Vec<String> {
        dashboards(config, NONE)
            .iter()
            .map(Dashboard::uid)
            .collect()
    }

    #[test]
    fn each_switch_removes_its_dashboards_and_only_them() {
        let all = uids_of(&Config::default());
        for (name, off, theirs) in switched() {
            for uid in &theirs {
                assert!(all.contains(uid), "{name}: {uid} not rendered by default");
            }
            let mut config = Config::default();
            off(&mut config);
            let left = uids_of(&config);
            let expected: Vec<_> = all
                .iter()
                .filter(|u| !theirs.contains(u))
                .cloned()
                .collect();
            assert_eq!(left, expected, "dashboards.{name}=false");
        }
    }

    #[test]
    fn new_dashboards_have_the_variables_in_the_agreed_order() {
        let expected: BTreeMap<String, &[&str]> = BTreeMap::from([
            (uid(workloads::CLUSTER), &["datasource", "cluster"][..]),
            (
                uid(workloads::NAMESPACE),
                &["datasource", "cluster", "namespace"][..],
            ),
            (
                uid(workloads::WORKLOAD),
                &["datasource", "cluster", "namespace", "type", "workload"][..],
            ),
            (
                uid(workloads::POD),
                &["datasource", "cluster", "namespace", "pod"][..],
            ),
            (
                uid(workloads::VOLUMES),
                &["datasource", "cluster", "namespace"][..],
            ),
            (uid(kubernetes::API_SERVER), &["datasource", "cluster"][..]),
            (
                uid(kubernetes::KUBELET),
                &["datasource", "cluster", "node"][..],
            ),
            (uid(stack::PROMETHEUS), &["datasource", "cluster"][..]),
            (uid(stack::ALERTMANAGER), &["datasource", "cluster"][..]),
        ]);
        let new: Vec<_> = switched()
            .into_iter()
            .flat_map(|(_, _, uids)| uids)
            .collect();
        assert_eq!(
            new.iter().cloned().collect::<BTreeSet<_>>(),
            expected.keys().cloned().collect()
        );
        for d in rendered(&Config::default()) {
            let uid = d["uid"].as_str().expect("uid");
            let Some(want) = expected.get(uid) else {
                continue;
            };
            check_variables(&d, uid, want);
        }
        // With a cluster label on the stack's series, the variable shows.
        let labelled = Config::default()
            .with_set("prometheus.externalLabels={cluster: prod}")
            .expect("set");
        let d = rendered(&labelled)
            .into_iter()
            .find(|d| d["uid"] == uid(workloads::POD))
            .expect("pod dashboard");
        assert_eq!(d["templating"]["list"][1]["hide"], 0, "{}", d["uid"]);
    }

    /// One new dashboard's variables: `want`, in the agreed order; the datasource first, then
    /// the cluster, hidden while the series have no cluster label; every query and panel names
    /// only variables the dashboard defines before it.
    fn check_variables(d: &Value, uid: &str, want: &[&str]) {
        const ORDER: &[&str] = &[
            "datasource",
            "cluster",
            "namespace",
            "type",
            "workload",
            "pod",
            "node",
        ];
        let vars = d["templating"]["list"].as_array().expect("variables");
        let names: Vec<&str> = vars
            .iter()
            .map(|v| v["name"].as_str().expect("name"))
            .collect();
        assert_eq!(&names, want, "{uid}");
        let places: Vec<_> = names
            .iter()
            .map(|n| ORDER.iter().position(|o| o == n))
            .collect();
        assert!(
            places.is_sorted(),
            "{uid}: {names:?} out of the agreed order"
        );
        let datasource = &vars[0];
        assert_eq!(
            (datasource["type"].as_str(), datasource["query"].as_str()),
            (Some("datasource"), Some("prometheus")),
            "{uid}"
        );
        assert_eq!(datasource["current"]["value"], PROMETHEUS_UID, "{uid}");
        let cluster = &vars[1];
        assert_eq!(
            (
                cluster["includeAll"].as_bool(),
                cluster["allValue"].as_str()
            ),
            (Some(true), Some(".*")),
            "{uid}"
        );
        assert_eq!(cluster["hide"], 2, "{uid}: no cluster label, hidden");
        for v in &vars[1..] {
            assert_eq!(
                v["datasource"]["uid"], "${datasource}",
                "{uid} / {}",
                v["name"]
            );
        }
        // Every query works with and without a cluster label, and names only variables the
        // dashboard defines.
        for p in d["panels"].as_array().expect("panels") {
            for t in p["targets"].as_array().expect("targets") {
                let expr = t["expr"].as_str().expect("expr");
                let at = format!("{uid} / {}", p["title"]);
                assert!(expr.contains(r#"cluster=~"$cluster""#), "{at}: {expr}");
                for used in variables_used(expr) {
                    assert!(
                        names.contains(&used.as_str()),
                        "{at}: ${used} is not a variable: {expr}"
                    );
                }
            }
        }
        for (i, v) in vars.iter().enumerate().skip(1) {
            let query = v["query"]["query"].as_str().expect("query");
            for used in variables_used(query) {
                assert!(
                    names[..i].contains(&used.as_str()),
                    "{uid} / {}: ${used} is not an earlier variable",
                    names[i]
                );
            }
        }
    }

    /// The Grafana variables an expression names (`$x`, `${x}`), built-ins (`$__…`) and
    /// regex groups (`$1`) left out.
    fn variables_used(expr: &str) -> Vec<String> {
        expr.split('$')
            .skip(1)
            .map(|rest| {
                rest.trim_start_matches('{')
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .filter(|name| {
                !name.is_empty()
                    && !name.starts_with("__")
                    && !name.starts_with(|c: char| c.is_ascii_digit())
            })
            .collect()
    }

    /// Every link of a dashboard: its links row, series links and table column links.
    fn link_urls(d: &Value) -> Vec<String> {
        let mut urls: Vec<String> = Vec::new();
        let mut add = |links: &Value| {
            for l in links.as_array().into_iter().flatten() {
                urls.push(l["url"].as_str().expect("url").to_string());
            }
        };
        add(&d["links"]);
        for p in d["panels"].as_array().expect("panels") {
            add(&p["fieldConfig"]["defaults"]["links"]);
            for o in p["fieldConfig"]["overrides"].as_array().expect("overrides") {
                for prop in o["properties"].as_array().expect("properties") {
                    if prop["id"] == "links" {
                        add(&prop["value"]);
                    }
                }
            }
        }
        urls
    }

    /// The uid a `/d/<uid>?…` link leads to.
    fn linked_uid(url: &str) -> &str {
        let path = url
            .strip_prefix("/d/")
            .unwrap_or_else(|| panic!("not a dashboard link: {url}"));
        path.split('?').next().unwrap_or(path)
    }

    #[test]
    fn every_link_leads_to_an_installed_dashboard() {
        let mut configs = vec![Config::default()];
        for (_, off, _) in switched() {
            let mut config = Config::default();
            off(&mut config);
            configs.push(config);
        }
        let mut no_overview = Config::default();
        no_overview.dashboards.alerts_overview = false;
        configs.push(no_overview);
        for config in &configs {
            let dashboards = rendered(config);
            let installed: BTreeSet<&str> = dashboards
                .iter()
                .map(|d| d["uid"].as_str().expect("uid"))
                .collect();
            for d in &dashboards {
                for url in link_urls(d) {
                    let to = linked_uid(&url);
                    // The pod's node is a deliberate link to node detail, on or off.
                    assert!(
                        installed.contains(to) || to == uid(NODE_DETAIL_SLUG),
                        "{}: {url} leads nowhere",
                        d["uid"]
                    );
                }
            }
        }
        // The chain: cluster -> namespace -> workload and pod, workload -> pod -> node detail,
        // each link carrying the variables the next one needs.
        let dashboards = rendered(&Config::default());
        let links_of = |slug: &str| {
            let d = dashboards
                .iter()
                .find(|d| d["uid"] == uid(slug))
                .expect("dashboard");
            let rows: BTreeSet<String> = d["links"]
                .as_array()
                .expect("links row")
                .iter()
                .map(|l| l["url"].to_string())
                .collect();
            link_urls(d)
                .into_iter()
                .filter(|u| !rows.contains(&Value::from(u.clone()).to_string()))
                .collect::<Vec<_>>()
        };
        let leads = |from: &str, to: &str, carries: &[&str]| {
            let found = links_of(from)
                .into_iter()
                .find(|u| linked_uid(u) == uid(to));
            let url = found.unwrap_or_else(|| panic!("{from} has no data link to {to}"));
            for var in carries {
                assert!(
                    url.contains(&format!("var-{var}=")),
                    "{from} -> {to}: {url} lacks {var}"
                );
            }
        };
        leads(workloads::CLUSTER, workloads::NAMESPACE, &["namespace"]);
        leads(workloads::NAMESPACE, workloads::POD, &["namespace", "pod"]);
        leads(
            workloads::NAMESPACE,
            workloads::WORKLOAD,
            &["namespace", "type", "workload"],
        );
        leads(workloads::WORKLOAD, workloads::POD, &["namespace", "pod"]);
        leads(workloads::POD, NODE_DETAIL_SLUG, &["node"]);
        leads(workloads::VOLUMES, workloads::NAMESPACE, &["namespace"]);
        for d in &dashboards {
            for url in link_urls(d)
                .iter()
                .filter(|u| linked_uid(u) != uid(NODE_DETAIL_SLUG) && u.contains('?'))
            {
                assert!(
                    url.contains("${datasource:queryparam}")
                        && url.contains("${cluster:queryparam}"),
                    "{}: {url}",
                    d["uid"]
                );
            }
        }
    }

    #[test]
    fn rendering_is_deterministic() {
        let config = Config::default();
        let a = serde_json::to_string(&objects(&Context::new(&config))).expect("json");
        let b = serde_json::to_string(&objects(&Context::new(&config))).expect("json");
        assert_eq!(a, b);
    }
}
