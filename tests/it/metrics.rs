//! Metrics against a real Prometheus Pushgateway (Debian's
//! `prometheus-pushgateway`, which `.ci/run` installs), started on a free
//! loopback port for the test and stopped after it.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::Workspace;

const BINARY: &str = "prometheus-pushgateway";

struct Pushgateway {
    child: Child,
    url: String,
    _state: tempfile::TempDir,
}

impl Pushgateway {
    fn start() -> Pushgateway {
        assert!(
            Command::new(BINARY).arg("--version").output().is_ok(),
            "`{BINARY}` is not installed: `bash .ci/run` installs it, or `apt-get install {BINARY}`"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        // Its own state file: Debian's default is shared by every instance.
        let state = tempfile::tempdir().unwrap();
        let child = Command::new(BINARY)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!(
                "--persistence.file={}",
                state.path().join("pushgateway.data").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the pushgateway");
        let gateway = Pushgateway {
            child,
            url,
            _state: state,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while gateway.scrape().is_none() {
            assert!(Instant::now() < deadline, "the pushgateway did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        gateway
    }

    fn scrape(&self) -> Option<String> {
        ureq::get(format!("{}/metrics", self.url))
            .call()
            .ok()?
            .body_mut()
            .read_to_string()
            .ok()
    }

    /// The value of `name` in the sluice group whose labels include all of `labels`.
    fn value(&self, name: &str, labels: &[&str]) -> Option<f64> {
        let text = self.scrape()?;
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .filter(|l| l.contains("job=\"sluice\"") && l.contains("pipeline=\"default\""))
            .find(|l| labels.iter().all(|label| l.contains(label)))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }
}

impl Drop for Pushgateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn runs_push_their_metrics_and_a_failure_keeps_the_last_success() {
    let gateway = Pushgateway::start();
    let ws = Workspace::new();
    ws.generate("input/events.csv", 2_000, "");
    let push = ["--pushgateway-url", gateway.url.as_str()];

    let (code, _, stderr) = ws.run(&push);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(gateway.value("sluice_run_status", &[]), Some(0.0));
    let success = gateway
        .value("sluice_last_success_timestamp_seconds", &[])
        .expect("a last success");
    assert!(success > 1.7e9, "{success}");
    assert_eq!(
        gateway.value("sluice_rows", &["layer=\"staging\"", "table=\"events\""]),
        Some(2000.0)
    );
    assert_eq!(
        gateway.value("sluice_rows", &["layer=\"marts\"", "table=\"top_users\""]),
        Some(100.0)
    );
    assert_eq!(
        gateway.value(
            "sluice_check_status",
            &["check=\"events_not_empty\"", "severity=\"fail\""]
        ),
        Some(0.0)
    );
    assert_eq!(
        gateway.value("sluice_check_observed", &["check=\"events_not_empty\""]),
        Some(2000.0)
    );
    assert!(
        gateway
            .value("sluice_stage_duration_seconds", &["stage=\"stage\""])
            .is_some()
    );
    assert!(
        gateway
            .value("sluice_freshness_lag_seconds", &["table=\"staging.events\""])
            .is_some()
    );
    assert!(ws.read("output/metrics.prom").contains("sluice_run_status 0\n"));

    // A failed gate: status 1, the failing check visible, the last success kept.
    ws.generate_seeded("input/more.csv", 1_000, "negative_amount=0.2", 8);
    let (code, _, stderr) = ws.run(&push);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(gateway.value("sluice_run_status", &[]), Some(1.0));
    assert_eq!(
        gateway.value("sluice_last_success_timestamp_seconds", &[]),
        Some(success)
    );
    assert_eq!(
        gateway.value("sluice_check_status", &["check=\"amount_not_negative\""]),
        Some(2.0)
    );
    let last_run = gateway.value("sluice_last_run_timestamp_seconds", &[]).unwrap();
    assert!(last_run >= success, "{last_run} < {success}");

    // A run-time error after start-up: status 3, the last success still kept.
    ws.write("input/broken.csv", "event_id,user_id\ne1,1\n");
    let (code, _, stderr) = ws.run(&push);
    assert_eq!(code, 3, "{stderr}");
    assert_eq!(gateway.value("sluice_run_status", &[]), Some(3.0));
    assert_eq!(
        gateway.value("sluice_last_success_timestamp_seconds", &[]),
        Some(success)
    );
}

#[test]
fn an_unreachable_pushgateway_is_only_a_warning() {
    let ws = Workspace::new();
    ws.generate("input/events.csv", 500, "");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://user:secret@127.0.0.1:{port}");
    let (code, stdout, stderr) = ws.run(&["--pushgateway-url", &url, "--push-timeout", "2s"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("published: "), "{stdout}");
    assert!(
        stderr.contains(&format!(
            "could not push metrics to `http://***@127.0.0.1:{port}`"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("secret"), "{stderr}");
    assert!(ws.read("output/metrics.prom").contains("sluice_run_status 0\n"));
}

#[test]
fn json_logs_are_one_object_per_line_on_stderr() {
    let ws = Workspace::new();
    ws.generate("input/events.csv", 300, "");
    let (code, stdout, stderr) = ws.run(&["--log-format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("sluice: 300 rows"), "{stdout}");
    let stages: Vec<String> = stderr
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter_map(|v| v["stage"].as_str().map(str::to_string))
        .collect();
    assert_eq!(stages, ["ingest", "stage", "marts", "audit", "publish"]);
}
