//! HTTP sources against a real local server (tests/fixtures/http/fake_api.py
//! on 127.0.0.1): paging, credentials, retries and every fault's exit code.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

use crate::util::{Workspace, outcome};

/// The fake API, serving the `api/` directory of a workspace until dropped.
pub(crate) struct FakeApi {
    child: Child,
    port: u16,
}

impl FakeApi {
    pub(crate) fn start(ws: &Workspace) -> FakeApi {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/http/fake_api.py");
        std::fs::create_dir_all(ws.path("api")).unwrap();
        let mut child = Command::new("python3")
            .arg(script)
            .arg(ws.path("api"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the fake API");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the fake API prints its port");
        FakeApi { child, port }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const TOKEN: &str = "ghp_s3cr3t_t0ken";

/// Five repositories of an org, as GitHub lists them.
fn repos_json(extra: &str) -> String {
    let mut repos: Vec<String> = [
        (1, "duckdb", "C++", 30, "2026-11-19T10:00:00Z"),
        (2, "polars", "Rust", 20, "2026-11-18T10:00:00Z"),
        (3, "sluice", "Rust", 5, "2026-11-17T10:00:00Z"),
        (4, "arrow", "C++", 15, "2026-11-16T10:00:00Z"),
        (5, "docs", "", 1, "2026-11-15T10:00:00Z"),
    ]
    .iter()
    .map(|(id, name, language, stars, updated)| {
        let language = if language.is_empty() {
            "null".to_string()
        } else {
            format!("\"{language}\"")
        };
        format!(
            "{{\"id\": {id}, \"name\": \"{name}\", \"language\": {language}, \"stargazers_count\": {stars}, \
             \"updated_at\": \"{updated}\", \"owner\": {{\"login\": \"acme\"}}, \"size\": {id}23456789012345678901}}"
        )
    })
    .collect();
    if !extra.is_empty() {
        repos.push(extra.to_string());
    }
    format!("[{}]", repos.join(",\n"))
}

/// A pipeline over the fake org's repositories, `http` extra keys indented.
fn github_pipeline(ws: &Workspace, api: &FakeApi, extra: &str) {
    ws.write(
        "sluice.yaml",
        format!(
            "pipeline: github\n\
             vars: {{org: acme}}\n\
             sources:\n\
             \x20 - name: repos\n\
             \x20   http:\n\
             \x20     url: \"{}\"\n\
             \x20     params: {{sort: updated, direction: desc, per_page: \"2\"}}\n\
             \x20     headers: {{Accept: application/vnd.github+json}}\n\
             \x20     auth: {{bearer: GITHUB_TOKEN}}\n\
             \x20     retry: {{backoff: 10ms, max_wait: 5s}}\n\
             {extra}\
             \x20   columns: {{id: integer, name: text, language: text, stargazers_count: integer, updated_at: timestamp}}\n\
             staging:\n\
             \x20 - name: repos\n\
             \x20   sql: sql/repos.sql\n\
             marts:\n\
             \x20 - name: repos_per_language\n\
             \x20   from: repos\n\
             \x20   group_by: [language]\n\
             \x20   aggregate: {{repos: count(), stars: sum(stars)}}\n\
             \x20   sort: [language]\n\
             \x20 - name: pages\n\
             \x20   from: repos\n\
             \x20   select: [id, page, owner, size]\n\
             \x20   sort: [id]\n",
            api.url("/orgs/{org}/repos")
        ),
    );
    ws.write(
        "sql/repos.sql",
        "CREATE OR REPLACE TABLE staging.repos AS\n\
         SELECT CAST(id AS BIGINT) AS id, name, coalesce(language, 'none') AS language,\n\
         \x20      CAST(stargazers_count AS BIGINT) AS stars, _page AS page,\n\
         \x20      json_extract_string(_record, '$.owner.login') AS owner,\n\
         \x20      'v' || regexp_extract(_record, '\"size\":\\s*([0-9]+)', 1) AS size\n\
         FROM raw.repos;\n",
    );
}

/// Runs with the token in the environment; returns (exit code, stdout, stderr).
fn run(ws: &Workspace, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["run", "--checks-dir", "no-checks", "--allow-ungated"];
    all.extend_from_slice(args);
    std::fs::create_dir_all(ws.path("no-checks")).unwrap();
    outcome(&ws.sluice(&all).env("GITHUB_TOKEN", TOKEN).output().unwrap())
}

pub(crate) fn requests(ws: &Workspace) -> Vec<String> {
    std::fs::read_to_string(ws.path("api/requests.log"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// Every file a run wrote, and its output, is free of the token.
fn assert_no_token(ws: &Workspace, stdout: &str, stderr: &str) {
    assert!(
        !stdout.contains(TOKEN) && !stderr.contains(TOKEN),
        "{stdout}{stderr}"
    );
    let mut stack = vec![ws.path("")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path == ws.path("api") {
                continue; // the fake API's own files
            } else if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                let found = bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes());
                assert!(!found, "the token is in `{}`", path.display());
            }
        }
    }
}

#[test]
fn a_paginated_api_lands_every_page_with_its_records() {
    let ws = Workspace::new();
    let api = FakeApi::start(&ws);
    ws.write("api/repos.json", repos_json(""));
    ws.write(
        "api/faults.json",
        format!("{{\"token\": \"{TOKEN}\", \"pretty\": true}}"),
    );
    github_pipeline(&ws, &api, "");
    let (code, stdout, stderr) = run(&ws, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    // Three pages of two, followed by their Link headers, each with the token.
    let log = requests(&ws);
    assert_eq!(log.len(), 3, "{log:?}");
    assert!(log.iter().all(|l| l.ends_with("auth=yes")), "{log:?}");
    assert!(log[0].starts_with("GET /orgs/acme/repos?direction=desc&per_page=2&sort=updated "));
    assert_eq!(
        ws.query("agg_result.db", "SELECT * FROM repos_per_language"),
        ["C++|2|45", "Rust|2|25", "none|1|1"]
    );
    // The page each record came on, and what the record held beyond the
    // declared columns (nested, and a number beyond 64 bits as it was written).
    assert_eq!(
        ws.query("agg_result.db", "SELECT * FROM pages"),
        [
            "1|1|acme|v123456789012345678901",
            "2|1|acme|v223456789012345678901",
            "3|2|acme|v323456789012345678901",
            "4|2|acme|v423456789012345678901",
            "5|3|acme|v523456789012345678901",
        ]
    );
    // Each page is an input of the run: its URL, the body's size and digest.
    let inputs = ws.query(
        "agg_result.db",
        "SELECT path, rows, length(sha256) FROM _sluice_run_inputs ORDER BY path",
    );
    assert_eq!(inputs.len(), 3, "{inputs:?}");
    assert!(
        inputs[0].starts_with(&format!(
            "{}?direction=desc&per_page=2&sort=updated|2|64",
            api.url("/orgs/acme/repos")
        )),
        "{inputs:?}"
    );
    assert_no_token(&ws, &stdout, &stderr);
}

#[test]
fn variables_fill_the_url_and_an_unknown_one_is_an_error() {
    let ws = Workspace::new();
    let api = FakeApi::start(&ws);
    ws.write("api/repos.json", repos_json(""));
    github_pipeline(&ws, &api, "");
    let (code, stdout, stderr) = run(&ws, &["--var", "org=duckdb"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(requests(&ws)[0].starts_with("GET /orgs/duckdb/repos?"));
    let (code, _, stderr) = run(&ws, &["--var", "organisation=duckdb"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("error: --var `organisation` is not a variable of the pipeline (its `vars`: org)"),
        "{stderr}"
    );
    // A placeholder the file does not declare is found before any request.
    let config = ws.read("sluice.yaml").replace("/orgs/{org}/", "/orgs/{team}/");
    ws.write("sluice.yaml", config);
    let out = ws
        .sluice(&["validate", "--checks-dir", "no-checks"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`sources[0].http.url`: `{team}` is not a variable: declare it under `vars` with its default (declared: org)"),
        "{stderr}"
    );
}

#[test]
fn rate_limits_and_server_errors_are_retried() {
    let ws = Workspace::new();
    let api = FakeApi::start(&ws);
    ws.write("api/repos.json", repos_json(""));
    ws.write(
        "api/faults.json",
        "{\"status_once\": {\"2\": 429, \"3\": 502}, \"retry_after\": \"1\"}",
    );
    github_pipeline(&ws, &api, "");
    let (code, stdout, stderr) = run(&ws, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(requests(&ws).len(), 5);
    assert!(stderr.contains("HTTP 429; retrying in 1s (1 of 5)"), "{stderr}");
    assert!(stderr.contains("HTTP 502; retrying in 1s (1 of 5)"), "{stderr}");
    assert_eq!(ws.query("agg_result.db", "SELECT count(*) FROM pages"), ["5"]);
}

/// A run that fails to fetch publishes nothing: the last results stay.
#[test]
fn every_fetch_fault_stops_the_run_with_its_code_and_keeps_the_last_results() {
    let ws = Workspace::new();
    let api = FakeApi::start(&ws);
    ws.write("api/repos.json", repos_json(""));
    ws.write("api/faults.json", format!("{{\"token\": \"{TOKEN}\"}}"));
    github_pipeline(&ws, &api, "");
    let (code, stdout, stderr) = run(&ws, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let published = ws.query("agg_result.db", "SELECT * FROM repos_per_language");
    let repos = api.url("/orgs/acme/repos?direction=desc&per_page=2&sort=updated");
    let cases: Vec<(String, i32, String, String)> = vec![
        (
            format!("{{\"token\": \"{TOKEN}\", \"not_json_on_page\": 2}}"),
            3,
            format!(
                "error: page `{repos}&page=2`: the body is not JSON (expected value at line 1 column 1): <html>maintenance</html>"
            ),
            "hint: check the source's `records` and `paginate`".into(),
        ),
        (
            format!("{{\"token\": \"{TOKEN}\", \"status_always\": {{\"2\": 503}}}}"),
            3,
            format!("error: `{repos}&page=2` still failed after 6 attempts (last: HTTP 503)"),
            "hint: the API or the network kept failing".into(),
        ),
        (
            format!("{{\"token\": \"{TOKEN}\", \"rate_limit_reset_in\": 3600}}"),
            3,
            format!("error: `{repos}`: the rate limit's reset asks for a wait of "),
            "longer than `retry.max_wait` (5s)".into(),
        ),
        (
            "{\"token\": \"another\"}".into(),
            3,
            format!("error: `{repos}` answered HTTP 401: {{\"message\": \"Bad credentials\"}}"),
            "hint: the API refused the credentials".into(),
        ),
    ];
    for (faults, want_code, message, hint) in cases {
        ws.write("api/faults.json", &faults);
        let (code, stdout, stderr) = run(&ws, &[]);
        assert_eq!(code, want_code, "{faults}: {stdout}{stderr}");
        assert!(stderr.contains(&message), "{faults}: {stderr}");
        assert!(stderr.contains(&hint), "{faults}: {stderr}");
        assert_eq!(
            ws.query("agg_result.db", "SELECT * FROM repos_per_language"),
            published
        );
        assert_no_token(&ws, &stdout, &stderr);
    }
    // No token in the environment: a usage error before any request.
    let before = requests(&ws).len();
    let out = ws
        .sluice(&["run", "--checks-dir", "no-checks", "--allow-ungated"])
        .env_remove("GITHUB_TOKEN")
        .output()
        .unwrap();
    let (code, _, stderr) = outcome(&out);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr
            .contains("error: source `repos` needs the environment variable GITHUB_TOKEN, which is not set"),
        "{stderr}"
    );
    assert_eq!(requests(&ws).len(), before);
    // More pages than the source allows: an error, not part of the data.
    github_pipeline(&ws, &api, "\x20     max_pages: 2\n");
    ws.write("api/faults.json", "{}");
    let (code, _, stderr) = run(&ws, &[]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("error: source `repos` stopped at `")
            && stderr.contains("more than `max_pages` (2) pages"),
        "{stderr}"
    );
}

/// The other ways APIs page: a next URL or a cursor in the body, page
/// numbers and offsets until an empty page; records under a path of keys.
#[test]
fn every_kind_of_paging_reads_every_record_once() {
    let ws = Workspace::new();
    let api = FakeApi::start(&ws);
    let items: Vec<String> = (1..=5)
        .map(|i| format!("{{\"id\": {i}, \"label\": \"item {i}\"}}"))
        .collect();
    ws.write("api/items.json", format!("[{}]", items.join(", ")));
    ws.write("api/faults.json", "{\"pretty\": true}");
    ws.write(
        "sql/items.sql",
        "CREATE OR REPLACE TABLE staging.items AS SELECT CAST(id AS BIGINT) AS id, label, _page AS page FROM raw.items;\n",
    );
    for (paginate, params, pages) in [
        ("{next_url: next}", "{limit: \"2\"}", 3),
        (
            "{cursor: {field: next_cursor, param: cursor}}",
            "{limit: \"2\"}",
            3,
        ),
        ("{page: {param: page}}", "{limit: \"2\"}", 3),
        ("{offset: {param: offset}}", "{limit: \"2\"}", 3),
        ("none", "{limit: \"10\"}", 1),
    ] {
        ws.write(
            "sluice.yaml",
            format!(
                "sources:\n\
                 \x20 - name: items\n\
                 \x20   http:\n\
                 \x20     url: \"{}\"\n\
                 \x20     params: {params}\n\
                 \x20     records: data.rows\n\
                 \x20     paginate: {paginate}\n\
                 \x20   columns: {{id: integer, label: text}}\n\
                 staging:\n\
                 \x20 - name: items\n\
                 \x20   sql: sql/items.sql\n\
                 marts:\n\
                 \x20 - name: item_counts\n\
                 \x20   from: items\n\
                 \x20   aggregate: {{n: count(), ids: count_distinct(id), pages: max(page)}}\n",
                api.url("/api/items")
            ),
        );
        let (code, stdout, stderr) = run(&ws, &[]);
        assert_eq!(code, 0, "{paginate}: {stdout}{stderr}");
        assert_eq!(
            ws.query("agg_result.db", "SELECT * FROM item_counts"),
            [format!("5|5|{pages}")],
            "{paginate}"
        );
    }
}

/// The fake org's repositories: (id, name, stars, updated_at).
fn org(repos: &[(i64, &str, i64, &str)]) -> String {
    let rows: Vec<String> = repos
        .iter()
        .map(|(id, name, stars, updated)| {
            format!("{{\"id\": {id}, \"name\": \"{name}\", \"stargazers_count\": {stars}, \"updated_at\": \"{updated}\"}}")
        })
        .collect();
    format!("[{}]", rows.join(", "))
}

/// An incremental pipeline: newest first by `updated_at`, merged by `id`.
fn incremental_pipeline(ws: &Workspace, api: &FakeApi) {
    ws.write(
        "sluice.yaml",
        format!(
            "pipeline: github\n\
             sources:\n\
             \x20 - name: repos\n\
             \x20   http:\n\
             \x20     url: \"{}\"\n\
             \x20     params: {{sort: updated, direction: desc, per_page: \"2\"}}\n\
             \x20   columns: {{id: integer, name: text, stargazers_count: integer, updated_at: timestamp}}\n\
             \x20   incremental: {{cursor: updated_at, initial: \"2026-01-01T00:00:00Z\", newest_first: true}}\n\
             staging:\n\
             \x20 - name: repos\n\
             \x20   sql: sql/repos.sql\n\
             \x20   write: merge\n\
             \x20   primary_key: [id]\n\
             \x20   order_by: updated_at\n\
             marts:\n\
             \x20 - name: repo_list\n\
             \x20   from: repos\n\
             \x20   select: [id, name, stars]\n\
             \x20   sort: [id]\n",
            api.url("/orgs/acme/repos")
        ),
    );
    ws.write(
        "sql/repos.sql",
        "CREATE OR REPLACE TABLE staging.repos AS\n\
         SELECT CAST(id AS BIGINT) AS id, name, CAST(stargazers_count AS BIGINT) AS stars,\n\
         \x20      strptime(updated_at, '%Y-%m-%dT%H:%M:%SZ') AS updated_at\n\
         FROM raw.repos;\n",
    );
    ws.write(
        "checks/repos.yaml",
        "checks:\n  - name: stars_sane\n    table: staging.repos\n    kind: validity\n    column: stars\n    max: 1000\n    fail: \"> 0\"\n",
    );
}

/// (requests made, the cursor rows of the last run, the published repos).
fn after_run(ws: &Workspace, before: usize) -> (usize, Vec<String>, Vec<String>) {
    (
        requests(ws).len() - before,
        ws.query(
            "agg_result.db",
            "SELECT cursor_before, cursor_after, records_older FROM _sluice_run_cursors ORDER BY rowid DESC LIMIT 1",
        ),
        ws.query("agg_result.db", "SELECT * FROM repo_list"),
    )
}

/// Three runs in a row: the first reads everything, the second only the
/// newer repositories, the third sees an update of an earlier one, which
/// replaces it. A failed gate between them moves neither the cursor nor
/// the merged table, and the next run catches up.
#[test]
fn incremental_runs_fetch_only_what_is_new_and_merge_updates() {
    let ws = Workspace::new();
    let api = FakeApi::start(&ws);
    incremental_pipeline(&ws, &api);
    let mut repos = vec![
        (1, "duckdb", 30, "2026-11-19T10:00:00Z"),
        (2, "polars", 20, "2026-11-18T10:00:00Z"),
        (3, "sluice", 5, "2026-11-17T10:00:00Z"),
        (4, "arrow", 15, "2026-11-16T10:00:00Z"),
        (5, "docs", 1, "2026-11-15T10:00:00Z"),
    ];
    ws.write("api/repos.json", org(&repos));
    let run = |ws: &Workspace| outcome(&ws.sluice(&["run"]).output().unwrap());

    // 1: everything, three pages.
    let (code, stdout, stderr) = run(&ws);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("sluice: 5 rows from 3 pages;"), "{stdout}");
    assert!(
        stdout.contains("  cursor       repos: start -> 2026-11-19T10:00:00Z\n"),
        "{stdout}"
    );
    let (calls, cursor, published) = after_run(&ws, 0);
    assert_eq!(calls, 3);
    assert_eq!(cursor, ["NULL|2026-11-19T10:00:00Z|0"]);
    assert_eq!(published.len(), 5);

    // 2: a new repository; the second page reaches older ones: no third.
    repos.push((6, "lake", 7, "2026-11-19T12:00:00Z"));
    ws.write("api/repos.json", org(&repos));
    let before = requests(&ws).len();
    let (code, stdout, stderr) = run(&ws);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (calls, cursor, published) = after_run(&ws, before);
    assert_eq!(calls, 2, "{:?}", requests(&ws));
    assert_eq!(cursor, ["2026-11-19T10:00:00Z|2026-11-19T12:00:00Z|2"]);
    assert_eq!(published.len(), 6);
    assert!(stdout.contains("sluice: 2 rows from 2 pages;"), "{stdout}");
    assert!(
        stdout.contains(
            "  cursor       repos: 2026-11-19T10:00:00Z -> 2026-11-19T12:00:00Z (2 older records dropped)\n"
        ),
        "{stdout}"
    );

    // A failed gate: the update lands, fails its check, and moves nothing.
    repos[2] = (3, "sluice", 5000, "2026-11-20T09:00:00Z");
    ws.write("api/repos.json", org(&repos));
    let before = requests(&ws).len();
    let (code, stdout, stderr) = run(&ws);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("; not moved: nothing was published"), "{stdout}");
    let (_, cursor, published_after_failure) = after_run(&ws, before);
    assert_eq!(cursor, ["2026-11-19T12:00:00Z|2026-11-20T09:00:00Z|2"]);
    assert_eq!(published_after_failure, published);
    assert_eq!(
        ws.query(
            "agg_result.db",
            "SELECT cursor_after FROM _sluice_run_cursors JOIN _sluice_runs USING (run_id) \
             WHERE published_db = 1 ORDER BY finished_at DESC LIMIT 1"
        ),
        ["2026-11-19T12:00:00Z"]
    );

    // 3: the fixed update is read again from the unmoved cursor and merged:
    // still six repositories, the third with its new stars.
    repos[2] = (3, "sluice", 99, "2026-11-20T09:00:00Z");
    ws.write("api/repos.json", org(&repos));
    let (code, stdout, stderr) = run(&ws);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let published = ws.query("agg_result.db", "SELECT * FROM repo_list");
    assert_eq!(
        published,
        [
            "1|duckdb|30",
            "2|polars|20",
            "3|sluice|99",
            "4|arrow|15",
            "5|docs|1",
            "6|lake|7"
        ]
    );
    assert_eq!(
        ws.query(
            "agg_result.db",
            "SELECT rows_staged, rows_total, version_file IS NOT NULL FROM _sluice_run_models ORDER BY rowid"
        ),
        ["5|5|1", "2|6|1", "2|6|1", "2|6|1"]
    );
    // One version file is left: the current one.
    let versions: Vec<_> = std::fs::read_dir(ws.path("data/staging/repos"))
        .unwrap()
        .flatten()
        .collect();
    assert!(versions.len() <= 2, "{versions:?}");

    // A full refresh reads everything again, and the merge keeps one row each.
    let before = requests(&ws).len();
    let (code, stdout, stderr) = outcome(&ws.sluice(&["run", "--full-refresh"]).output().unwrap());
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(requests(&ws).len() - before, 3);
    assert_eq!(ws.query("agg_result.db", "SELECT count(*) FROM repo_list"), ["6"]);
}

/// A run killed while it fetches, or cut off in its publish before the
/// commit, moves neither the cursor nor the merged model: the next run
/// reads the same records again and nothing is lost or duplicated.
#[test]
fn a_run_killed_while_fetching_or_publishing_loses_and_duplicates_nothing() {
    let ws = Workspace::new();
    let api = FakeApi::start(&ws);
    incremental_pipeline(&ws, &api);
    let mut repos = vec![
        (1, "duckdb", 30, "2026-11-19T10:00:00Z"),
        (2, "polars", 20, "2026-11-18T10:00:00Z"),
        (3, "sluice", 5, "2026-11-17T10:00:00Z"),
    ];
    ws.write("api/repos.json", org(&repos));
    let (code, stdout, stderr) = outcome(&ws.sluice(&["run"]).output().unwrap());
    assert_eq!(code, 0, "{stdout}{stderr}");
    let cursors = || {
        ws.query(
            "agg_result.db",
            "SELECT count(*), max(cursor_after) FROM _sluice_run_cursors",
        )
    };
    let published = cursors();

    repos.push((4, "lake", 7, "2026-11-19T12:00:00Z"));
    repos[1] = (2, "polars", 21, "2026-11-19T11:00:00Z");
    ws.write("api/repos.json", org(&repos));
    // Killed in the commit, as `kill -9` would.
    let out = ws
        .sluice(&["run"])
        .env("SLUICE_FAULT", "commit:crash")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        None,
        "killed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(cursors(), published);
    // Killed while waiting for a page (the API asks for two seconds).
    ws.write(
        "api/faults.json",
        "{\"status_once\": {\"2\": 503}, \"retry_after\": \"2\"}",
    );
    let mut command = Command::new(assert_cmd::cargo::cargo_bin("sluice"));
    command.arg("run").current_dir(ws.path(""));
    for key in crate::util::leaked_env() {
        command.env_remove(key);
    }
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(cursors(), published);

    let (code, stdout, stderr) = outcome(&ws.sluice(&["run"]).output().unwrap());
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        ws.query("agg_result.db", "SELECT * FROM repo_list"),
        ["1|duckdb|30", "2|polars|21", "3|sluice|5", "4|lake|7"]
    );
}

/// `--skip-ingest` stages the raw layer the last run landed again, without
/// calling the API: a staging change is tried on the same records.
#[test]
fn skip_ingest_replays_the_raw_layer_without_calling_the_api() {
    let ws = Workspace::new();
    let api = FakeApi::start(&ws);
    // Nothing landed yet: nothing to replay.
    github_pipeline(&ws, &api, "");
    let (code, _, stderr) = run(&ws, &["--skip-ingest"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("error: --skip-ingest replays the raw layer, and source `repos` has none at `data/raw/repos/repos.parquet`"),
        "{stderr}"
    );
    ws.write("api/repos.json", repos_json(""));
    let (code, stdout, stderr) = run(&ws, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let calls = requests(&ws).len();
    // The staging SQL changes; the records are the ones landed.
    let sql = ws.read("sql/repos.sql");
    ws.write(
        "sql/repos.sql",
        sql.replace("coalesce(language, 'none')", "coalesce(language, 'unknown')"),
    );
    let (code, stdout, stderr) = outcome(
        &ws.sluice(&[
            "run",
            "--checks-dir",
            "no-checks",
            "--allow-ungated",
            "--skip-ingest",
        ])
        .env_remove("GITHUB_TOKEN")
        .output()
        .unwrap(),
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(requests(&ws).len(), calls, "no request");
    assert!(stdout.contains("sluice: 5 rows from 1 file;"), "{stdout}");
    assert_eq!(
        ws.query("agg_result.db", "SELECT * FROM repos_per_language"),
        ["C++|2|45", "Rust|2|25", "unknown|1|1"]
    );
    assert_eq!(
        ws.query(
            "agg_result.db",
            "SELECT path FROM _sluice_run_inputs ORDER BY rowid DESC LIMIT 1"
        ),
        ["data/raw/repos/repos.parquet"]
    );
    // An `append` model would get the same rows twice: refused.
    let config = ws.read("sluice.yaml").replace(
        "    sql: sql/repos.sql\n",
        "    sql: sql/repos.sql\n    write: append\n",
    );
    ws.write("sluice.yaml", config);
    let (code, _, stderr) = run(&ws, &["--skip-ingest"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("error: --skip-ingest would append the same rows to staging model `repos` again"),
        "{stderr}"
    );
}

/// The cursor metric says where an incremental source will read from next.
#[test]
fn the_cursor_is_exported_as_a_metric() {
    let ws = Workspace::new();
    let api = FakeApi::start(&ws);
    incremental_pipeline(&ws, &api);
    ws.write(
        "api/repos.json",
        org(&[(1, "duckdb", 30, "2026-11-19T10:00:00Z")]),
    );
    let (code, stdout, stderr) = outcome(&ws.sluice(&["run"]).output().unwrap());
    assert_eq!(code, 0, "{stdout}{stderr}");
    let prom = ws.read("output/metrics.prom");
    let seconds = chrono::DateTime::parse_from_rfc3339("2026-11-19T10:00:00Z")
        .unwrap()
        .timestamp();
    assert!(
        prom.contains(&format!(
            "sluice_source_cursor_timestamp_seconds{{source=\"repos\"}} {seconds}\n"
        )),
        "{prom}"
    );
}
