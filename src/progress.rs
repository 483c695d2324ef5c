//! Progress for the long stages, on a terminal only: ingest shows bytes read,
//! throughput and rows; staging a spinner while DuckDB works. Nothing is drawn
//! on a non-terminal or with `--no-progress`: the log lines say the same.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Whether to draw at all.
pub(crate) fn enabled(no_progress: bool) -> bool {
    !no_progress && std::io::stderr().is_terminal()
}

/// A byte bar over all input files.
pub(crate) fn ingest(total_bytes: u64, enabled: bool) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total_bytes);
    bar.set_style(
        ProgressStyle::with_template("ingest [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}")
            .expect("a valid progress template")
            .progress_chars("=> "),
    );
    bar.tick();
    bar
}

/// A spinner for a stage whose progress is not known.
pub(crate) fn spinner(label: &'static str, enabled: bool) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_message(label);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}
