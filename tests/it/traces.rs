//! Traces over OTLP/HTTP to a real receiver started by the test: a loopback
//! HTTP server that decodes the protobuf export requests, and stops when the
//! test drops it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use crate::util::Workspace;

struct Receiver {
    url: String,
    spans: Arc<Mutex<Vec<Span>>>,
    service_names: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let spans = Arc::new(Mutex::new(Vec::new()));
        let service_names = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, n, st) = (spans.clone(), service_names.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => serve(stream, &s, &n),
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Receiver {
            url,
            spans,
            service_names,
            stop,
        }
    }

    fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Answers every request on one connection: decode, keep, 200.
fn serve(stream: TcpStream, spans: &Mutex<Vec<Span>>, names: &Mutex<Vec<String>>) {
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            if header.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        assert!(line.starts_with("POST /v1/traces "), "{line}");
        let request = ExportTraceServiceRequest::decode(body.as_slice()).expect("an OTLP protobuf body");
        for resource in request.resource_spans {
            for attr in resource.resource.iter().flat_map(|r| &r.attributes) {
                if attr.key == "service.name" {
                    names.lock().unwrap().push(format!("{:?}", attr.value));
                }
            }
            for scope in resource.scope_spans {
                spans.lock().unwrap().extend(scope.spans);
            }
        }
        writer
            .write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n",
            )
            .unwrap();
    }
}

fn find<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    spans.iter().find(|s| s.name == name).unwrap_or_else(|| {
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
        panic!("no span `{name}` in {names:?}")
    })
}

fn int_attribute(span: &Span, key: &str) -> Option<i64> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
            Value::IntValue(i) => Some(*i),
            _ => None,
        })
}

#[test]
fn spans_of_run_stages_and_checks_reach_an_otlp_receiver() {
    let receiver = Receiver::start();
    let ws = Workspace::new();
    ws.generate("input/events.csv", 1_000, "");
    // A failed gate still flushes its spans.
    ws.generate_seeded("input/more.csv", 200, "negative_amount=0.2", 8);
    let out = ws
        .sluice(&["run", "--as-of", crate::util::AS_OF])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.url)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let spans = receiver.spans();
    let run = find(&spans, "run");
    assert!(run.parent_span_id.is_empty());
    for stage in ["ingest", "stage", "marts", "audit", "publish"] {
        let span = find(&spans, stage);
        assert_eq!(span.parent_span_id, run.span_id, "{stage} is a child of run");
        assert_eq!(span.trace_id, run.trace_id);
    }
    assert_eq!(
        int_attribute(find(&spans, "ingest"), "rows"),
        Some(1_200),
        "{:?}",
        find(&spans, "ingest").attributes
    );
    let audit = find(&spans, "audit");
    let checks: Vec<&Span> = spans.iter().filter(|s| s.name.starts_with("check ")).collect();
    assert_eq!(checks.len(), 20);
    assert!(checks.iter().all(|c| c.parent_span_id == audit.span_id));
    let failing = find(&spans, "check amount_not_negative");
    let status = failing
        .attributes
        .iter()
        .find(|a| a.key == "status")
        .expect("a status attribute");
    assert!(format!("{:?}", status.value).contains("\"fail\""), "{status:?}");
    assert!(
        receiver
            .service_names
            .lock()
            .unwrap()
            .iter()
            .all(|n| n.contains("\"sluice\""))
    );
}

#[test]
fn without_an_endpoint_nothing_is_exported() {
    let ws = Workspace::new();
    ws.generate("input/events.csv", 200, "");
    let out = ws
        .sluice(&["run", "--as-of", crate::util::AS_OF])
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("traces"));
}
