//! The pipelines of `examples/` (docs/examples.md), run end to end on the
//! data their own generators write: each must run as the docs say, with no
//! workaround, and publish what its checks pass.

use std::path::Path;

use crate::util::{Workspace, copy_dir};

/// A workspace holding `examples/<name>` and the data its generator writes.
fn example(name: &str) -> Workspace {
    let ws = Workspace::new();
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name);
    copy_dir(&from, ws.dir.path());
    let generated = std::process::Command::new("python3")
        .current_dir(ws.dir.path())
        .args(["generate.py", "input"])
        .output()
        .expect("python3 runs the example's generator");
    assert!(
        generated.status.success(),
        "{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    ws
}

#[test]
fn the_github_repos_example_upserts_paginated_pages() {
    let ws = example("github_repos");
    let (code, stdout, stderr) = ws.run(&[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("gate: passed"), "{stdout}");
    // 40 pages of 30: repositories fetched twice are upserted, the cut-off
    // line is quarantined.
    assert_eq!(
        ws.query(
            "agg_result.db",
            "SELECT rows_raw, rows_quarantined, rows_duplicates, rows_staged FROM _sluice_runs"
        ),
        ["1200|1|98|1101"]
    );
    assert_eq!(
        ws.query(
            "agg_result.db",
            "SELECT count(*), max(rank) FROM top_repos_per_language"
        ),
        ["18|3"]
    );
    // The last page has no `topics`: its repositories count none.
    let topics = ws.query(
        "agg_result.db",
        "SELECT sum(repos) - sum(with_topics) FROM languages",
    );
    assert_ne!(topics, ["0"], "{topics:?}");
    assert_eq!(
        ws.query(
            "agg_result.db",
            "SELECT a.stars = (SELECT sum(stars) FROM languages) FROM activity a"
        ),
        ["1"]
    );
}

#[test]
fn the_viewing_example_unpacks_hits_and_pivots_categories() {
    let ws = example("viewing");
    let (code, stdout, stderr) = ws.run(&[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("gate: passed"), "{stdout}");
    let header = ws.read("output/contract_minutes.csv");
    assert!(
        header.starts_with(
            "contract_id,minutes,sessions,last_seen,min_news,min_sport,min_film,min_kids,min_docs\n"
        ),
        "{header}"
    );
    // The pivot's columns add up to the total, for every contract.
    assert_eq!(
        ws.query(
            "agg_result.db",
            "SELECT count(*) FROM contract_minutes WHERE min_news + min_sport + min_film + min_kids + min_docs <> minutes"
        ),
        ["0"]
    );
    assert_eq!(
        ws.query(
            "agg_result.db",
            "SELECT count(*), count(DISTINCT contract_id) FROM favourite_category"
        ),
        ["300|300"]
    );
    assert_eq!(
        ws.query(
            "agg_result.db",
            "SELECT segment, contracts FROM segments ORDER BY segment"
        ),
        ["heavy|100", "light|100", "regular|100"]
    );
    assert!(
        ws.query("agg_result.db", "SELECT quarantined_by_reason FROM _sluice_runs")[0]
            .contains("\"missing_contract\":28"),
    );
}
