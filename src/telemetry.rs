//! Logs and traces. Logs (`tracing`) go to stderr as text or JSON lines. When
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set, the same
//! spans (run → stage → check) are exported over OTLP/HTTP with protobuf; the
//! SDK reads the other standard `OTEL_*` variables itself. Spans go out as
//! they end, through a small blocking client (ureq), and [`Telemetry::shutdown`]
//! flushes before the process exits.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::WithHttpConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;

use crate::cli::LogFormat;

/// The tracer provider to flush at exit, when traces are exported.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

/// OTLP over a blocking HTTP client: no async runtime in a batch job.
#[derive(Debug)]
struct BlockingClient {
    agent: ureq::Agent,
}

#[async_trait::async_trait]
impl HttpClient for BlockingClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let response = self.agent.run(request.map(|body| body.to_vec()))?;
        let (parts, mut body) = response.into_parts();
        Ok(Response::from_parts(parts, Bytes::from(body.read_to_vec()?)))
    }
}

fn filter() -> EnvFilter {
    EnvFilter::try_from_env("SLUICE_LOG").unwrap_or_else(|_| EnvFilter::new("sluice=info"))
}

/// Sets up logging, and trace export when an OTLP endpoint is configured.
pub fn init(format: LogFormat) -> Telemetry {
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Json => logs.json().flatten_event(true).boxed(),
        LogFormat::Text => logs
            .with_target(false)
            .without_time()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed(),
    };
    // Polars prints its warnings (deprecations) to stderr itself: they go
    // through the log like every other line, so JSON logs stay JSON.
    polars::error::set_warning_function(|message, kind| tracing::warn!("Polars {kind:?}: {message}"));
    let provider = otlp_provider(format);
    let traces = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("sluice"))
            .with_filter(EnvFilter::new("sluice=info"))
    });
    tracing_subscriber::registry()
        .with(logs.with_filter(filter()))
        .with(traces)
        .init();
    Telemetry { provider }
}

fn otlp_provider(format: LogFormat) -> Option<SdkTracerProvider> {
    let configured = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|k| std::env::var(k).is_ok_and(|v| !v.trim().is_empty()));
    if !configured {
        return None;
    }
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(BlockingClient { agent })
        .build();
    match exporter {
        Ok(exporter) => Some(
            SdkTracerProvider::builder()
                .with_simple_exporter(exporter)
                .with_resource(Resource::builder().with_service_name("sluice").build())
                .build(),
        ),
        Err(e) => {
            // Before the log is set up: written as the log would.
            let message = format!("traces are not exported: {e}");
            match format {
                LogFormat::Json => eprintln!("{}", serde_json::json!({"level": "WARN", "message": message})),
                LogFormat::Text => eprintln!("warning: {message}"),
            }
            None
        }
    }
}

impl Telemetry {
    /// Flushes and stops the trace export (a no-op without it).
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!("could not flush traces: {e}");
        }
    }
}
