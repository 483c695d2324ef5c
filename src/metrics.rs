//! Metrics of a run (docs/contract.md, "Metrics and traces"), registered in this one module,
//! written to `output/metrics.prom` after every run and pushed to a Prometheus
//! Pushgateway when a URL is set. Batch-job conventions: gauges only, Unix
//! timestamps rather than ages, units in names, stages and tables as labels.
//!
//! On success the group `job=sluice, pipeline=<name>` is replaced (PUT); on
//! failure every metric but `sluice_last_success_timestamp_seconds` is sent
//! with POST, so the last success survives in the Pushgateway.

use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use prometheus::{Encoder as _, Gauge, GaugeVec, Opts, Registry, TextEncoder};

use crate::checks::engine::{Audit, Status};
use crate::checks::spec::Kind;

pub(crate) const LAST_SUCCESS: &str = "sluice_last_success_timestamp_seconds";

/// Every metric sluice exports.
pub(crate) struct Metrics {
    registry: Registry,
    last_run: Gauge,
    last_success: Gauge,
    run_status: Gauge,
    duration: Gauge,
    stage_duration: GaugeVec,
    rows: GaugeVec,
    quarantined: GaugeVec,
    check_status: GaugeVec,
    check_observed: GaugeVec,
    freshness_lag: GaugeVec,
    cursor: GaugeVec,
    schema_changes: GaugeVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let registry = Registry::new();
        let gauge = |name: &str, help: &str| {
            let g = Gauge::new(name, help).expect("a valid metric name");
            registry.register(Box::new(g.clone())).expect("registered once");
            g
        };
        let vec = |name: &str, help: &str, labels: &[&str]| {
            let g = GaugeVec::new(Opts::new(name, help), labels).expect("a valid metric name");
            registry.register(Box::new(g.clone())).expect("registered once");
            g
        };
        Metrics {
            last_run: gauge(
                "sluice_last_run_timestamp_seconds",
                "When the last run ended (Unix time).",
            ),
            last_success: gauge(
                LAST_SUCCESS,
                "When the last run that published ended (Unix time).",
            ),
            run_status: gauge(
                "sluice_run_status",
                "0 ok, 1 gate failed, 2 usage error, 3 runtime error.",
            ),
            duration: gauge("sluice_duration_seconds", "Wall time of the last run."),
            stage_duration: vec(
                "sluice_stage_duration_seconds",
                "Wall time of each stage.",
                &["stage"],
            ),
            rows: vec("sluice_rows", "Rows per layer and table.", &["layer", "table"]),
            quarantined: vec(
                "sluice_quarantined_rows",
                "Quarantined rows per reason.",
                &["table", "reason"],
            ),
            check_status: vec(
                "sluice_check_status",
                "0 pass, 1 warn, 2 fail, 3 error.",
                &["check", "table", "severity"],
            ),
            check_observed: vec(
                "sluice_check_observed",
                "The value a check observed.",
                &["check", "table"],
            ),
            freshness_lag: vec(
                "sluice_freshness_lag_seconds",
                "as_of minus the newest timestamp, per table with a freshness check.",
                &["table"],
            ),
            cursor: vec(
                "sluice_source_cursor_timestamp_seconds",
                "The timestamp cursor of each incremental source after the run: where the next run reads from.",
                &["source"],
            ),
            schema_changes: vec(
                "sluice_schema_changes",
                "Rows a source's schema contract acted on: a new or missing column, or a value of another type.",
                &["source", "change", "action"],
            ),
            registry,
        }
    }

    /// Rows a source's schema contract acted on in the run.
    pub(crate) fn schema_change(&self, source: &str, change: &str, action: &str, rows: u64) {
        self.schema_changes
            .with_label_values(&[source, change, action])
            .add(rows as f64);
    }

    /// Where an incremental source's timestamp cursor stands.
    pub(crate) fn cursor(&self, source: &str, seconds: f64) {
        self.cursor.with_label_values(&[source]).set(seconds);
    }

    pub(crate) fn stage(&self, stage: &str, seconds: f64) {
        self.stage_duration.with_label_values(&[stage]).set(seconds);
    }

    pub(crate) fn rows(&self, layer: &str, table: &str, rows: u64) {
        self.rows.with_label_values(&[layer, table]).set(rows as f64);
    }

    pub(crate) fn quarantined(&self, table: &str, reason: &str, rows: u64) {
        self.quarantined
            .with_label_values(&[table, reason])
            .set(rows as f64);
    }

    /// Status and observed value of every check; the freshness lag per table.
    pub(crate) fn checks(&self, audit: &Audit) {
        for o in &audit.outcomes {
            let c = &o.check;
            // The label names the check's most severe tier, so a series keeps its identity across runs.
            let severity = if c.fail.is_some() || c.kind() == Kind::Schema {
                "fail"
            } else {
                "warn"
            };
            let status = match o.status {
                Status::Pass => 0.0,
                Status::Warn => 1.0,
                Status::Fail => 2.0,
                Status::Error => 3.0,
            };
            self.check_status
                .with_label_values(&[&c.name, &c.table, severity])
                .set(status);
            if let Some(v) = o.observed {
                self.check_observed.with_label_values(&[&c.name, &c.table]).set(v);
                if c.kind() == Kind::Freshness {
                    let lag = self.freshness_lag.with_label_values(&[&c.table]);
                    lag.set(lag.get().max(v));
                }
            }
        }
    }

    /// Ends the run: its status, duration and timestamps.
    pub(crate) fn finish(&self, status: u8, ended: DateTime<Utc>, duration: Duration, published: bool) {
        let now = ended.timestamp_millis() as f64 / 1000.0;
        self.last_run.set(now);
        self.run_status.set(f64::from(status));
        self.duration.set(duration.as_secs_f64());
        if published && status == 0 {
            self.last_success.set(now);
        }
    }

    /// The text exposition format; without the last-success gauge for a failed run.
    pub(crate) fn render(&self, with_last_success: bool) -> String {
        let families: Vec<_> = self
            .registry
            .gather()
            .into_iter()
            .filter(|f| with_last_success || f.name() != LAST_SUCCESS)
            .collect();
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&families, &mut out)
            .expect("text encoding into memory");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

/// Where and how to push.
#[derive(Clone)]
pub(crate) struct PushConfig {
    pub url: String,
    pub pipeline: String,
    pub timeout: Duration,
    /// Basic-auth credentials, from the environment only.
    pub auth: Option<(String, String)>,
}

/// The password never reaches a log line, even a debug one.
impl std::fmt::Debug for PushConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushConfig")
            .field("url", &self.url)
            .field("pipeline", &self.pipeline)
            .field("timeout", &self.timeout)
            .field("auth", &self.auth.as_ref().map(|(user, _)| (user, "***")))
            .finish()
    }
}

/// Pushes `body` to the group of the pipeline: PUT replaces the group, POST
/// replaces only the metrics it carries.
pub(crate) fn push(cfg: &PushConfig, body: String, replace: bool) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(cfg.timeout))
        .http_status_as_error(true)
        .build()
        .into();
    let url = format!(
        "{}/metrics/job/sluice/pipeline/{}",
        cfg.url.trim_end_matches('/'),
        cfg.pipeline
    );
    let request = if replace {
        agent.put(&url)
    } else {
        agent.post(&url)
    };
    let request = request.header("Content-Type", "text/plain; version=0.0.4");
    let request = match &cfg.auth {
        Some((user, password)) => {
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            request.header("Authorization", format!("Basic {token}"))
        }
        None => request,
    };
    request.send(body).map(drop).map_err(|e| e.to_string())
}

/// Shows a URL without the credentials it may carry.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://***@{}", &url[..scheme], &url[at + 1..]),
        _ => url.to_string(),
    }
}

/// Writes `<output_dir>/metrics.prom` and pushes when configured. Neither can
/// fail the run: a problem is a warning line.
pub(crate) fn export(
    metrics: &Metrics,
    output_dir: &std::path::Path,
    push_to: Option<&PushConfig>,
    success: bool,
) {
    let path = output_dir.join("metrics.prom");
    let written =
        std::fs::create_dir_all(output_dir).and_then(|()| std::fs::write(&path, metrics.render(true)));
    if let Err(e) = written {
        tracing::warn!("could not write `{}`: {e}", path.display());
    }
    if let Some(cfg) = push_to
        && let Err(e) = push(cfg, metrics.render(success), success)
    {
        tracing::warn!("could not push metrics to `{}`: {e}", redact(&cfg.url));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_run_leaves_out_the_last_success() {
        let m = Metrics::new();
        m.stage("ingest", 1.5);
        m.finish(1, Utc::now(), Duration::from_secs(2), false);
        let failed = m.render(false);
        assert!(failed.contains("sluice_run_status 1\n"), "{failed}");
        assert!(
            failed.contains("sluice_stage_duration_seconds{stage=\"ingest\"} 1.5\n"),
            "{failed}"
        );
        assert!(!failed.contains(LAST_SUCCESS), "{failed}");
        let ok = Metrics::new();
        ok.finish(0, Utc::now(), Duration::from_secs(2), true);
        assert!(ok.render(true).contains(LAST_SUCCESS));
    }
}
