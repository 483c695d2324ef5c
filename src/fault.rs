//! Fault injection for the publish's tests: every write, sync, commit and
//! rename of a publish passes a named point, and the tests make each point
//! fail in turn to show that the published state is always wholly one run's.
//!
//! `SLUICE_FAULT=<point>` makes the step at that point fail with an I/O
//! error; `SLUICE_FAULT=<point>:crash` aborts the process there, as a
//! `kill -9` would (no destructor runs, temp files stay).
//! `SLUICE_FAULT_TRACE=<file>` appends the name of every point passed to
//! the file, so a test can list them. Both are for tests only; unset, a
//! point costs one environment lookup.

use std::io::Write;

/// Passes the point `name`: fails or aborts if `SLUICE_FAULT` says so.
pub(crate) fn point(name: &str) -> std::io::Result<()> {
    if let Some(trace) = std::env::var_os("SLUICE_FAULT_TRACE") {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(trace);
        if let Ok(mut file) = file {
            let _ = writeln!(file, "{name}");
        }
    }
    let Ok(fault) = std::env::var("SLUICE_FAULT") else {
        return Ok(());
    };
    let (at, crash) = match fault.strip_suffix(":crash") {
        Some(at) => (at, true),
        None => (fault.as_str(), false),
    };
    if at != name {
        return Ok(());
    }
    if crash {
        std::process::abort();
    }
    Err(std::io::Error::other(format!("fault injected at `{name}`")))
}
