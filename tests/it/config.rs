//! `sluice.yaml`: a second, different pipeline runs end to end from its own
//! file; the default pipeline is the same whether built in or written out by
//! `sluice init`; every kind of configuration error names the file, line and key.

use crate::util::{AS_OF, Workspace, bytes, fixture, marts};

fn duckdb_rows(sql: &str) -> Vec<String> {
    let conn = duckdb::Connection::open_in_memory().unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    let rows = stmt
        .query_map([], |r| {
            let n = r.as_ref().column_count();
            Ok((0..n)
                .map(|i| match r.get_ref(i).unwrap().to_owned() {
                    duckdb::types::Value::Null => "NULL".to_string(),
                    duckdb::types::Value::Text(t) => t,
                    other => format!("{other:?}"),
                })
                .collect::<Vec<_>>()
                .join("|"))
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}

#[test]
fn a_second_pipeline_runs_end_to_end_from_its_own_sluice_yaml() {
    let ws = Workspace::new();
    fixture(&ws, "pageviews", "pv");
    // Paths in the file are relative to it: input and checks come from pv/.
    let (code, stdout, stderr) = ws.run(&["--config", "pv/sluice.yaml"]);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("few_quarantined"), "{stdout}");
    // The summary previews the pipeline's first mart as its CSV writes it.
    assert!(
        stdout.contains(
            "top pages (2 of 2):\n  rank     url   views   sessions\n     1   /home       3          3\n     2   /docs       2          2\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("published: `agg_result.db` (top_pages 2 rows, daily_sessions 6 rows, durations_by_country 4 rows, views_by_country 3 rows, longest_views 3 rows, countries 1 rows), `output/reports/top_pages.csv`, `output/reports/daily_sessions.csv`\n"),
        "{stdout}"
    );

    assert_eq!(
        ws.query(
            "agg_result.db",
            "SELECT pipeline, rows_raw, rows_quarantined, rows_duplicates, rows_staged, quarantined_by_reason FROM _sluice_runs"
        ),
        [r#"pageviews|13|4|1|8|{"malformed_row":1,"missing_view_id":1,"bad_viewed_at":1,"bad_duration":1}"#]
    );
    // Exports: SQLite tables as named, no table for a mart kept out of it.
    assert_eq!(
        ws.query(
            "agg_result.db",
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_sluice%' ESCAPE '\\' ORDER BY name"
        ),
        ["countries", "durations_by_country", "longest_views", "sessions_by_day", "top_pages"]
    );
    assert_eq!(
        ws.query("agg_result.db", "SELECT * FROM top_pages ORDER BY rank"),
        [
            "1|/home|3|3|833.33|2026-11-19T11:00:00Z",
            "2|/docs|2|2|400.00|2026-11-20T09:31:00Z"
        ]
    );
    assert_eq!(
        ws.query("agg_result.db", "SELECT * FROM sessions_by_day ORDER BY rowid"),
        [
            "2026-11-18|DE|1|1",
            "2026-11-19|DE|1|2",
            "2026-11-19|FR|1|1",
            "2026-11-19|US|1|1",
            "2026-11-20|US|1|1",
            "2026-11-20|NULL|1|1"
        ]
    );
    assert_eq!(
        ws.read("output/reports/top_pages.csv"),
        "rank,url,views,sessions,avg_duration_ms,last_view\n\
         1,/home,3,3,833.3333333333334,2026-11-19T11:00:00Z\n\
         2,/docs,2,2,400,2026-11-20T09:31:00Z\n"
    );
    assert_eq!(
        duckdb_rows(&format!(
            "SELECT country, views FROM '{}' ORDER BY country",
            ws.path("output/views_by_country.parquet").display()
        )),
        ["DE|UInt(3)", "FR|UInt(1)", "US|UInt(3)"]
    );

    let quarantine = ws.read("output/quarantine/page_views.csv");
    let reasons: Vec<&str> = quarantine
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(6).unwrap_or_default())
        .collect();
    assert_eq!(
        reasons,
        [
            "bad_duration",
            "missing_view_id",
            "bad_viewed_at",
            "malformed_row"
        ]
    );
    let metrics = ws.read("output/metrics.prom");
    for line in [
        "sluice_rows{layer=\"raw\",table=\"page_views\"} 13",
        "sluice_rows{layer=\"staging\",table=\"page_views\"} 8",
        "sluice_rows{layer=\"marts\",table=\"daily_sessions\"} 6",
        "sluice_quarantined_rows{reason=\"bad_duration\",table=\"staging.page_views\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }

    let (code, stdout, stderr) = ws
        .sluice(&["validate", "--config", "pv/sluice.yaml"])
        .output()
        .map(|o| {
            (
                o.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
        .unwrap();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        "ok: pipeline `pageviews` in pv/sluice.yaml: 1 source, 1 staging model, 6 marts; 5 checks in 1 file\n"
    );
}

#[test]
fn a_file_with_a_new_column_fails_under_the_fail_policy() {
    let ws = Workspace::new();
    fixture(&ws, "pageviews", "pv");
    ws.write(
        "pv/input/more.csv",
        "view_id,session_id,url,viewed_at,duration_ms,country,referrer\nv20,s1,/,2026-11-19T10:00:00Z,1,DE,x\n",
    );
    let (code, _, stderr) = ws.run(&["--config", "pv/sluice.yaml"]);
    assert_eq!(code, 3, "{stderr}");
    assert_eq!(
        stderr,
        "error: input file `pv/input/more.csv` has columns that source `page_views` does not declare: referrer\n\
         hint: declare the columns in source `page_views` of sluice.yaml, or set its `new_columns` to `warn` or `ignore`\n"
    );
}

#[test]
fn init_writes_the_built_in_pipeline_which_runs_the_same() {
    let built_in = Workspace::new();
    built_in.generate("input/events.csv", 3_000, "all=0.005");
    let (code, stdout, stderr) = built_in.run(&["--publish-on-failure"]);
    assert!(code <= 1, "{stdout}{stderr}");

    let ws = Workspace::new();
    let out = ws.sluice(&["init"]).assert().success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert_eq!(
        stdout,
        "wrote ./sluice.yaml\nwrote ./sql/staging/events.sql\nwrote ./checks/events.yaml\n\
         next: edit sluice.yaml, then `sluice validate` and `sluice run`\n"
    );
    assert_eq!(ws.read("sluice.yaml"), include_str!("../../sluice.yaml"));
    ws.generate("input/events.csv", 3_000, "all=0.005");
    let (code2, stdout2, stderr2) = ws.run(&["--publish-on-failure"]);
    assert_eq!(code2, code, "{stdout2}{stderr2}");
    assert_eq!(marts(&ws), marts(&built_in));
    assert_eq!(
        bytes(&ws.path("output/top_users.csv")),
        bytes(&built_in.path("output/top_users.csv"))
    );

    // Never overwrites.
    let again = ws.sluice(&["init"]).output().unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&again.stderr),
        "error: `./sluice.yaml` already exists\nhint: sluice init never overwrites: move the file away or pick another directory\n"
    );
}

#[test]
fn the_schema_describes_the_file_for_editors() {
    let ws = Workspace::new();
    let out = ws.sluice(&["schema"]).assert().success();
    let schema: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(schema["title"], "PipelineFile");
    let keys: Vec<&str> = schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "pipeline",
            "lookback_days",
            "time_zone",
            "vars",
            "checks",
            "sources",
            "staging",
            "marts",
            "exports",
            "lake"
        ]
    );
    assert_eq!(
        schema["required"],
        serde_json::json!(["sources", "staging", "marts"])
    );
}

/// Runs with `--config bad.yaml` holding `yaml`; returns (exit code, stderr).
fn config_error(ws: &Workspace, yaml: &str) -> (i32, String) {
    ws.write("bad.yaml", yaml);
    let (code, stdout, stderr) = ws.run(&["--config", "bad.yaml"]);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    (code, stderr)
}

const HINT: &str = "hint: fix the keys named above; `sluice schema` prints the JSON Schema of sluice.yaml, `sluice init` writes a complete example\n";

#[test]
fn every_error_in_the_file_is_reported_at_once_with_line_and_key() {
    let ws = Workspace::new();
    let (code, stderr) = config_error(
        &ws,
        "pipeline: Page-Views\n\
         sources:\n\
         \x20 - name: views\n\
         \x20   columns: {id: text, at: float}\n\
         \x20   new_columns: maybe\n\
         \x20   colums: {}\n\
         staging:\n\
         \x20 - name: views\n\
         \x20   sql: views.sql\n\
         marts:\n\
         \x20 - name: top\n\
         \x20   from: views\n\
         \x20   group_by: [id]\n\
         \x20   aggregate: {n: median(at)}\n\
         \x20   sort: [n sideways]\n\
         \x20   limit: ten\n",
    );
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        format!(
            "error: 7 problems in the pipeline:\n\
             \x20 bad.yaml:1: `pipeline`: \"Page-Views\" is not a lower-case name (letters, digits and `_`)\n\
             \x20 bad.yaml:3: `sources[0]`: Additional properties are not allowed ('colums' was unexpected)\n\
             \x20 bad.yaml:4: `sources[0].columns.at`: \"float\" is not one of \"text\", \"integer\", \"decimal\", \"double\", \"boolean\", \"date\" or \"timestamp\"\n\
             \x20 bad.yaml:5: `sources[0].new_columns`: \"maybe\" is not one of \"ignore\", \"warn\" or \"fail\"\n\
             \x20 bad.yaml:14: `marts[0].aggregate.n`: \"median(at)\" is not `function(column)` with sum, count, count_distinct, min, max or mean (`count()` counts rows)\n\
             \x20 bad.yaml:15: `marts[0].sort[0]`: \"n sideways\" is not `column`, `column desc` or `column asc nulls first`\n\
             \x20 bad.yaml:16: `marts[0].limit`: \"ten\" is not of type \"integer\"\n\
             {HINT}"
        )
    );
}

#[test]
fn references_between_parts_are_checked_before_any_data_is_read() {
    let ws = Workspace::new();
    ws.write("views.sql", "CREATE TABLE staging.views AS SELECT 1 AS id");
    let (code, stderr) = config_error(
        &ws,
        "sources:\n\
         \x20 - name: views\n\
         \x20   columns: {id: text}\n\
         \x20 - name: views\n\
         \x20   columns: {id: text}\n\
         staging:\n\
         \x20 - name: clicks\n\
         \x20   sql: views.sql\n\
         \x20 - name: visits\n\
         \x20   source: views\n\
         \x20   sql: missing.sql\n\
         marts:\n\
         \x20 - name: top\n\
         \x20   from: nope\n\
         \x20   aggregate: {n: count()}\n\
         \x20 - name: both\n\
         \x20   from: visits\n\
         \x20   aggregate: {n: count()}\n\
         \x20   sql: SELECT 1\n\
         \x20 - name: neither\n\
         \x20   from: visits\n\
         exports:\n\
         \x20 - mart: other\n\
         \x20   csv: other.csv\n\
         \x20 - mart: top\n",
    );
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        format!(
            "error: 8 problems in the pipeline:\n\
             \x20 bad.yaml:4: `sources[1].name`: `views` is already the name of another entry of `sources`\n\
             \x20 bad.yaml:7: `staging[0].name`: no source named `clicks`; sources: views, views (set `source`)\n\
             \x20 bad.yaml:11: `staging[1].sql`: cannot read `missing.sql`: No such file or directory (os error 2)\n\
             \x20 bad.yaml:14: `marts[0].from`: no staging model or mart named `nope`; models: clicks, visits; marts: top, both, neither\n\
             \x20 bad.yaml:19: `marts[1].sql`: give `sql` or `group_by`/`aggregate`, not both\n\
             \x20 bad.yaml:20: `marts[2].name`: a mart needs `aggregate` (with `group_by` to group), `select` or `sql`\n\
             \x20 bad.yaml:23: `exports[0].mart`: no mart named `other`; marts: top, both, neither\n\
             \x20 bad.yaml:25: `exports[1]`: an export needs `csv`, `parquet`, `sqlite` or `delta`\n\
             {HINT}"
        )
    );
}

/// A valid one-source pipeline over `input/` with `mart` as its only mart
/// and `sql` as its staging script.
fn small_pipeline(ws: &Workspace, sql: &str, mart: &str) -> (i32, String) {
    ws.write("input/v.csv", "id,n\na,1\nb,2\n");
    // One check that always passes: a pipeline needs checks to run.
    ws.write(
        "checks/c.yaml",
        "checks:\n  - {name: any_rows, table: staging.v, kind: row_count, fail: \"< 0\"}\n",
    );
    ws.write("v.sql", sql);
    config_error(
        ws,
        &format!(
            "pipeline: small\n\
             sources:\n\
             \x20 - name: v\n\
             \x20   columns: {{id: text, n: integer}}\n\
             staging:\n\
             \x20 - name: v\n\
             \x20   sql: v.sql\n\
             marts:\n{mart}"
        ),
    )
}

const STAGE_V: &str = "CREATE SCHEMA IF NOT EXISTS staging; CREATE OR REPLACE TABLE staging.v AS SELECT id, CAST(n AS BIGINT) AS n FROM raw.v;";

#[test]
fn errors_only_the_data_can_reveal_still_name_the_line() {
    let ws = Workspace::new();
    let cases: [(&str, &str, &str); 8] = [
        (
            STAGE_V,
            "  - name: m\n    from: v\n    group_by: [idd]\n    aggregate: {total: sum(n)}\n    sort: [total desc, nope]\n",
            "error: 2 problems in the pipeline:\n\
             \x20 bad.yaml:11: `marts[0].group_by[0]`: no column `idd` in staging.v (its columns: id, n)\n\
             \x20 bad.yaml:13: `marts[0].sort[1]`: `nope` is not a column of the mart (its columns: idd, total)\n",
        ),
        (
            STAGE_V,
            "  - name: m\n    from: v\n    lookback: id\n    group_by: {d: day(id)}\n    aggregate: {total: sum(id), n: mean( n )}\n",
            "error: 3 problems in the pipeline:\n\
             \x20 bad.yaml:11: `marts[0].lookback`: `lookback` takes a TIMESTAMP or DATE column; `id` is VARCHAR\n\
             \x20 bad.yaml:12: `marts[0].group_by.d`: `day(id)` takes a TIMESTAMP or DATE column; `id` is VARCHAR\n\
             \x20 bad.yaml:13: `marts[0].aggregate.total`: `sum(id)` takes a number column; `id` is VARCHAR\n",
        ),
        (
            STAGE_V,
            "  - name: m\n    from: v\n    filter: \"n >>> 1\"\n    aggregate: {total: sum(n)}\n",
            "error: 1 problem in the pipeline:\n\
             \x20 bad.yaml:11: `marts[0].filter`: DuckDB cannot run the filter: ",
        ),
        (
            STAGE_V,
            "  - name: m\n    from: v\n    sql: SELEKT id FROM v\n",
            "error: 1 problem in the pipeline:\n\
             \x20 bad.yaml:11: `marts[0].sql`: Polars SQL: sql parser error: Expected: an SQL statement, found: SELEKT at Line: 1, Column: 1\n",
        ),
        (
            STAGE_V,
            "  - name: m\n    from: v\n    sql: SELECT idd FROM v\n",
            "error: 1 problem in the pipeline:\n\
             \x20 bad.yaml:11: `marts[0].sql`: Polars SQL: not found: unable to find column \"idd\"; valid columns: [\"id\", \"n\"] Did you mean \"id\"?\n",
        ),
        (
            "CREATE TABLE staging.v AS SELEKT 1",
            "  - name: m\n    from: v\n    aggregate: {rows: count()}\n",
            "error: `v.sql`: Parser Error: syntax error at or near \"SELEKT\"",
        ),
        (
            // raw.<source> is a view of the raw layer's file: no rowid.
            "CREATE TABLE staging.v AS SELECT rowid AS r, id FROM raw.v",
            "  - name: m\n    from: v\n    aggregate: {rows: count()}\n",
            "error: `v.sql`: Binder Error: ",
        ),
        (
            "SELECT 1",
            "  - name: m\n    from: v\n    aggregate: {rows: count()}\n",
            "error: `v.sql` did not create table `staging.v`\n\
             hint: a staging script must create its table, e.g. `CREATE OR REPLACE TABLE staging.v AS SELECT ... FROM raw.<source>`\n",
        ),
    ];
    for (sql, mart, expected) in cases {
        let (code, stderr) = small_pipeline(&ws, sql, mart);
        assert_eq!(code, 2, "{mart}: {stderr}");
        // `sluice validate` finds the same without reading the data.
        let validate = ws.sluice(&["validate", "--config", "bad.yaml"]).output().unwrap();
        let said = String::from_utf8_lossy(&validate.stderr);
        assert_eq!(validate.status.code(), Some(2), "{sql}: {said}");
        // After the log lines of the stages that ran.
        let error = &stderr[stderr.find("error: ").unwrap_or(0)..];
        assert!(error.starts_with(expected), "{mart}:\n{stderr}");
        assert!(stderr.contains("\nhint: "), "{stderr}");
        // Nothing is recorded, let alone published.
        assert_eq!(
            ws.query("agg_result.db", "SELECT count(*) FROM sqlite_master"),
            ["0"]
        );
    }
}

#[test]
fn flags_that_do_not_fit_the_pipeline_are_usage_errors() {
    let ws = Workspace::new();
    let (code, _, stderr) = ws.run(&["--config", "nope.yaml"]);
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        "error: pipeline file `nope.yaml` does not exist\n\
         hint: pass an existing file with --config (or SLUICE_CONFIG), or leave it out for sluice.yaml or the default pipeline\n"
    );

    ws.write("a.sql", "CREATE TABLE staging.a AS SELECT * FROM raw.a");
    ws.write(
        "two.yaml",
        "sources:\n  - {name: a, columns: {x: text}}\n  - {name: b, columns: {x: text}}\n\
         staging:\n  - {name: a, sql: a.sql}\nmarts:\n  - {name: m, from: a, aggregate: {n: count()}}\n",
    );
    let (code, _, stderr) = ws.run(&["--config", "two.yaml", "--input", "x.csv"]);
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        "error: --input names the files of one source, and the pipeline has 2: a, b\n\
         hint: set each source's `path` in sluice.yaml instead of --input (SLUICE_INPUT)\n"
    );
    let _ = AS_OF;
}

#[test]
fn syntax_missing_keys_and_values_of_the_wrong_shape_are_named() {
    let ws = Workspace::new();
    let cases = [
        (
            "sources: [\n",
            "error: 1 problem in the pipeline:\n  bad.yaml:2: invalid YAML: ",
        ),
        (
            "pipeline: x\n",
            "error: 3 problems in the pipeline:\n\
             \x20 bad.yaml:1: \"sources\" is a required property\n\
             \x20 bad.yaml:1: \"staging\" is a required property\n\
             \x20 bad.yaml:1: \"marts\" is a required property\n",
        ),
        (
            "sources:\n  - {name: v, columns: {t: timestamp}, path: [a, 3]}\nstaging:\n  - {name: v, sql: v.sql}\n\
             marts:\n  - name: m\n    from: v\n    lookback: {column: t, dayz: 3}\n    aggregate: {n: count()}\n",
            "error: 2 problems in the pipeline:\n\
             \x20 bad.yaml:2: `sources[0].path[1]`: 3 is not of type \"string\"\n\
             \x20 bad.yaml:8: `marts[0].lookback`: \"days\" is a required property\n",
        ),
    ];
    for (yaml, expected) in cases {
        let (code, stderr) = config_error(&ws, yaml);
        assert_eq!(code, 2, "{yaml}");
        assert!(stderr.starts_with(expected), "{yaml}\n{stderr}");
        assert!(stderr.ends_with(HINT), "{stderr}");
    }
}

/// A pipeline as a user writes it from the docs (paginated API pages as
/// NDJSON): a key absent from a whole page, a second model reading the
/// first, the run's parameters in staging SQL, a mart filter and a `sql:`
/// mart, a file the source does not read, and no CSV export.
fn api_pages(ws: &Workspace) {
    ws.write(
        "sluice.yaml",
        "pipeline: repos\n\
         sources:\n\
         \x20 - name: repos\n\
         \x20   path: pages\n\
         \x20   columns: {id: integer, name: text, stars: integer, topics: text, updated_at: timestamp}\n\
         \x20   optional: [topics]\n\
         staging:\n\
         \x20 - name: repos\n\
         \x20   sql: sql/repos.sql\n\
         \x20 - name: popular\n\
         \x20   source: repos\n\
         \x20   sql: sql/popular.sql\n\
         marts:\n\
         \x20 - name: stars\n\
         \x20   from: repos\n\
         \x20   filter: \"updated_at > {window_start}\"\n\
         \x20   group_by: [name]\n\
         \x20   aggregate: {stars: sum(stars)}\n\
         \x20   sort: [stars desc, name]\n\
         \x20 - name: fresh\n\
         \x20   from: popular\n\
         \x20   sql: \"SELECT name, topics FROM popular WHERE updated_at > {window_start} AND updated_at <= {as_of} ORDER BY name\"\n",
    );
    ws.write(
        "sql/repos.sql",
        "CREATE OR REPLACE TABLE staging.repos AS\n\
         SELECT CAST(id AS BIGINT) AS id, name, CAST(stars AS BIGINT) AS stars, topics,\n\
         \x20      CAST(updated_at AS TIMESTAMP) AS updated_at\n\
         FROM raw.repos WHERE CAST(updated_at AS TIMESTAMP) <= {as_of};\n",
    );
    // Models run in file order: this one reads the one before it.
    ws.write(
        "sql/popular.sql",
        "CREATE OR REPLACE TABLE staging.popular AS SELECT * FROM staging.repos WHERE stars >= 10;\n",
    );
    ws.write(
        "pages/page-001.ndjson",
        "{\"id\": 1, \"name\": \"duckdb\", \"stars\": 30, \"updated_at\": \"2026-11-19 10:00:00\"}\n\
         {\"id\": 2, \"name\": \"polars\", \"stars\": 20, \"updated_at\": \"2026-09-01 10:00:00\"}\n",
    );
    ws.write(
        "pages/page-002.ndjson",
        "{\"id\": 3, \"name\": \"sluice\", \"stars\": 5, \"topics\": \"etl\", \"updated_at\": \"2026-11-18 10:00:00\"}\n\
         {\"id\": 4, \"name\": \"later\", \"stars\": 50, \"topics\": \"future\", \"updated_at\": \"2026-12-24 10:00:00\"}\n",
    );
    ws.write("pages/notes.txt", "how the pages were fetched");
}

#[test]
fn a_pipeline_over_api_pages_needs_no_workaround() {
    let ws = Workspace::new();
    api_pages(&ws);
    let (code, stdout, stderr) = ws.run_unchecked(&[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stderr.contains("source `repos` skips 1 file it does not read: `pages/notes.txt`"),
        "{stderr}"
    );
    // `{as_of}` in the staging SQL drops the row from the future; the model
    // reading the first keeps the popular ones; each counts its own rows.
    assert_eq!(
        ws.query(
            "agg_result.db",
            "SELECT model, source, rows_raw, rows_quarantined, rows_duplicates, rows_staged FROM _sluice_run_models ORDER BY rowid"
        ),
        ["repos|repos|4|0|1|3", "popular|repos|4|0|2|2"]
    );
    assert_eq!(
        ws.query(
            "agg_result.db",
            "SELECT rows_raw, rows_duplicates, rows_staged FROM _sluice_runs"
        ),
        ["4|3|5"]
    );
    assert!(
        stdout.contains(
            "  model           raw  quarantined  duplicates      staged\n  repos             4            0           1           3\n  popular           4            0           2           2\n"
        ),
        "{stdout}"
    );
    // `{window_start}` in a filter: polars is older than the window.
    assert_eq!(
        ws.query(
            "agg_result.db",
            "SELECT name, stars FROM stars ORDER BY stars DESC"
        ),
        ["duckdb|30", "sluice|5"]
    );
    // The parameters in a `sql:` mart (polars is older than the window);
    // `topics` is null where a page lacked it.
    assert_eq!(
        ws.query("agg_result.db", "SELECT name, topics FROM fresh"),
        ["duckdb|NULL"]
    );
    assert!(
        stdout.contains("published: `agg_result.db` (stars 2 rows, fresh 1 rows)\n"),
        "no dangling comma without a CSV export: {stdout}"
    );
}

#[test]
fn a_source_that_reads_none_of_its_files_is_an_error() {
    let ws = Workspace::new();
    api_pages(&ws);
    std::fs::create_dir_all(ws.path("hits")).unwrap();
    ws.write("hits/hits-1.json.gz", "not read");
    let (code, _, stderr) = ws.run_unchecked(&["--input", "hits"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("error: source `repos` reads none of the files it was given: `hits/hits-1.json.gz`"),
        "{stderr}"
    );
    assert!(stderr.contains("set `format` on source `repos`"), "{stderr}");
    // An empty directory is an empty input, not an error.
    std::fs::remove_file(ws.path("hits/hits-1.json.gz")).unwrap();
    let (code, _, stderr) = ws.run_unchecked(&["--input", "hits"]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn an_optional_column_must_be_declared_and_a_required_one_stays_required() {
    let ws = Workspace::new();
    api_pages(&ws);
    let config = ws.read("sluice.yaml");
    ws.write(
        "sluice.yaml",
        config.replace("optional: [topics]", "optional: [topic]"),
    );
    let (code, _, stderr) = ws.run_unchecked(&[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("`sources[0].optional[0]`: `topic` is not a column of the source"),
        "{stderr}"
    );
    ws.write("sluice.yaml", config.replace("    optional: [topics]\n", ""));
    let (code, _, stderr) = ws.run_unchecked(&[]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("has no column `topics`"), "{stderr}");
}

/// With `--log-format json` every line on stderr is JSON: the log, Polars'
/// own warnings and the final error with its hint.
#[test]
fn json_logs_are_json_on_every_line() {
    let ws = Workspace::new();
    api_pages(&ws);
    let config = ws.read("sluice.yaml");
    ws.write(
        "sluice.yaml",
        config.replace(
            "SELECT name, topics FROM popular",
            "SELECT name, topics, CAST('2022-05-01' AS DATE) AS since FROM popular",
        ),
    );
    let every_line_is_json = |stderr: &str| {
        assert!(!stderr.trim().is_empty());
        for line in stderr.lines() {
            assert!(
                serde_json::from_str::<serde_json::Value>(line).is_ok(),
                "not JSON: {line}\n{stderr}"
            );
        }
    };
    let (code, _, stderr) = ws.run_unchecked(&["--log-format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    every_line_is_json(&stderr);
    let (code, _, stderr) = ws.run_unchecked(&["--log-format", "json", "--input", "nope"]);
    assert_eq!(code, 2, "{stderr}");
    every_line_is_json(&stderr);
    let error: serde_json::Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    assert_eq!(error["level"], "ERROR", "{error}");
    assert_eq!(error["message"], "input `nope` does not exist", "{error}");
    assert!(
        error["hint"].as_str().is_some_and(|h| h.contains("--input")),
        "{error}"
    );
    assert_eq!(error["exit_code"], 2, "{error}");
}

/// A mart may read a mart: it runs after it, reads its candidate rows (money
/// stays exact), and is audited and published on its own. A circle of
/// marts is a configuration error.
#[test]
fn a_mart_reads_a_mart() {
    let ws = Workspace::new();
    api_pages(&ws);
    let config = ws.read("sluice.yaml");
    // Listed before the mart it reads: the order comes from `from`.
    let with_total = config.replace(
        "marts:\n",
        "marts:\n\
         \x20 - name: total\n\
         \x20   from: stars\n\
         \x20   aggregate: {repos: count(), stars: sum(stars), best: max(stars)}\n",
    );
    ws.write("sluice.yaml", &with_total);
    ws.write(
        "checks/total.yaml",
        "checks:\n\
         \x20 - name: total_matches_stars\n\
         \x20   table: marts.total\n\
         \x20   kind: consistency\n\
         \x20   expression: sum(stars)\n\
         \x20   compare_to: {table: marts.stars, expression: sum(stars)}\n\
         \x20   fail: \"> 0\"\n",
    );
    let (code, stdout, stderr) = ws.run(&["--checks-dir", "checks"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("total_matches_stars"), "{stdout}");
    assert_eq!(
        ws.query("agg_result.db", "SELECT repos, stars, best FROM total"),
        ["2|35|30"]
    );

    let circle = with_total.replace("from: stars", "from: total2").replace(
        "marts:\n",
        "marts:\n  - name: total2\n    from: total\n    aggregate: {n: count()}\n",
    );
    ws.write("sluice.yaml", circle);
    let (code, _, stderr) = ws.run(&["--checks-dir", "checks"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("marts read each other in a circle: total2 <- total <- total2")
            || stderr.contains("marts read each other in a circle: total <- total2 <- total"),
        "{stderr}"
    );
    ws.write("sluice.yaml", config.replace("from: popular", "from: nowhere"));
    let (code, _, stderr) = ws.run(&["--checks-dir", "checks"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(
            "no staging model or mart named `nowhere`; models: repos, popular; marts: stars, fresh"
        ),
        "{stderr}"
    );
}

/// `sluice init` in `ws`, with `marts` (YAML list entries) added to its
/// marts and `exports` to its exports.
fn init_with(ws: &Workspace, marts: &str, exports: &str) -> String {
    ws.sluice(&["init"]).assert().success();
    let config = ws
        .read("sluice.yaml")
        .replace("exports:\n", &format!("{marts}\nexports:\n{exports}"));
    ws.write("sluice.yaml", &config);
    config
}

/// Events of one day as the default pipeline reads them: (region, sku, amount).
fn write_events(ws: &Workspace, rows: &[(&str, &str, &str)]) {
    let mut csv = String::from("event_id,user_id,event_time,region,sku,amount\n");
    for (i, (region, sku, amount)) in rows.iter().enumerate() {
        csv.push_str(&format!(
            "e{i},{i},2026-11-19T10:00:00Z,{region},{sku},{amount}\n"
        ));
    }
    ws.write("input/events.csv", csv);
}

/// `limit_per`: the top N rows of each group (here the two best-selling
/// SKUs of each region), ranked within the group; over several passes too.
#[test]
fn limit_per_keeps_the_top_rows_of_each_group() {
    let ws = Workspace::new();
    init_with(
        &ws,
        "  - name: top_skus\n\
         \x20   from: events\n\
         \x20   group_by: [region, sku]\n\
         \x20   aggregate: {revenue: sum(amount), events: count()}\n\
         \x20   sort: [region, revenue desc, sku]\n\
         \x20   limit: 2\n\
         \x20   limit_per: [region]\n\
         \x20   rank: rank\n",
        "",
    );
    write_events(
        &ws,
        &[
            ("eu", "a", "5.00"),
            ("eu", "b", "7.50"),
            ("eu", "c", "1.00"),
            ("eu", "b", "0.25"),
            ("us", "a", "2.00"),
            ("us", "c", "9.00"),
            ("ap", "z", "3.00"),
        ],
    );
    for passes in ["", "--pass-rows=1"] {
        let mut args = vec![];
        if !passes.is_empty() {
            args.push(passes);
        }
        let (code, stdout, stderr) = ws.run_unchecked(&args);
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert_eq!(
            ws.query("agg_result.db", "SELECT * FROM top_skus"),
            [
                "1|ap|z|3.00|300|1",
                "1|eu|b|7.75|775|2",
                "2|eu|a|5.00|500|1",
                "1|us|c|9.00|900|1",
                "2|us|a|2.00|200|1",
            ],
            "{passes}"
        );
    }
    ws.write(
        "sluice.yaml",
        ws.read("sluice.yaml")
            .replace("limit_per: [region]", "limit_per: [country]"),
    );
    let (code, _, stderr) = ws.run_unchecked(&[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("`marts[2].limit_per[0]`: `country` is not a column of the mart"),
        "{stderr}"
    );
}

/// `select`: the rows themselves, no aggregate; with `sort` and `limit`,
/// the top rows by a sort (money exact), over several passes too.
#[test]
fn select_keeps_the_top_rows_by_a_sort_without_an_aggregate() {
    let ws = Workspace::new();
    init_with(
        &ws,
        "  - name: biggest\n\
         \x20   from: events\n\
         \x20   select: [event_id, region, amount]\n\
         \x20   sort: [amount desc, event_id]\n\
         \x20   limit: 3\n\
         \x20   rank: rank\n",
        "  - mart: biggest\n    csv: biggest.csv\n",
    );
    let amounts = ["5.00", "7.50", "1.00", "90071992547409.93", "2.00", "7.50"];
    write_events(&ws, &amounts.map(|a| ("eu", "s", a)));
    for passes in [&[][..], &["--pass-rows=1"][..]] {
        let (code, stdout, stderr) = ws.run_unchecked(passes);
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert_eq!(
            ws.read("output/biggest.csv"),
            "rank,event_id,region,amount\n1,e3,eu,90071992547409.93\n2,e1,eu,7.50\n3,e5,eu,7.50\n",
            "{passes:?}"
        );
    }
    ws.write(
        "sluice.yaml",
        ws.read("sluice.yaml").replace(
            "select: [event_id, region, amount]",
            "select: [event_id, country]",
        ),
    );
    let (code, _, stderr) = ws.run_unchecked(&[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("`marts[2].select[1]`: no column `country` in staging.events"),
        "{stderr}"
    );
}

/// `pivot`: the listed values of a text column become columns, each the
/// aggregate over the group's rows with that value (other values left out;
/// a value with no rows sums and counts to 0).
#[test]
fn pivot_turns_listed_values_into_columns() {
    let ws = Workspace::new();
    let config = init_with(
        &ws,
        "  - name: by_region\n\
         \x20   from: events\n\
         \x20   group_by: [sku]\n\
         \x20   aggregate: {events: count()}\n\
         \x20   pivot: {column: region, values: [eu, us], aggregate: sum(amount), prefix: revenue_}\n\
         \x20   sort: [sku]\n\
         \x20 - name: counts\n\
         \x20   from: events\n\
         \x20   pivot: {column: region, values: [eu, ap], aggregate: count()}\n",
        "  - mart: by_region\n    csv: by_region.csv\n",
    );
    write_events(
        &ws,
        &[
            ("eu", "a", "5.00"),
            ("eu", "b", "7.50"),
            ("us", "a", "1.25"),
            ("eu", "a", "0.25"),
            ("ap", "b", "9.00"),
        ],
    );
    let (code, stdout, stderr) = ws.run_unchecked(&[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        ws.read("output/by_region.csv"),
        "sku,events,revenue_eu,revenue_us\na,3,5.25,1.25\nb,2,7.50,0.00\n"
    );
    assert_eq!(ws.query("agg_result.db", "SELECT eu, ap FROM counts"), ["3|1"]);

    ws.write(
        "sluice.yaml",
        config.replace(
            "column: region, values: [eu, us]",
            "column: amount, values: [eu, us]",
        ),
    );
    let (code, _, stderr) = ws.run_unchecked(&[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("`marts[2].pivot.column`: `pivot` takes a text column; `amount` is DECIMAL(18,2)"),
        "{stderr}"
    );
}

/// `sluice validate` compiles: the staging scripts run on empty raw tables,
/// the marts are planned against what they make and the checks run over the
/// empty layers, so a wrong column shows before any data is read.
#[test]
fn validate_finds_a_wrong_column_without_data() {
    let ws = Workspace::new();
    ws.sluice(&["init"]).assert().success();
    ws.sluice(&["validate"]).assert().success();
    let config = ws.read("sluice.yaml");
    ws.write(
        "sluice.yaml",
        config.replace("total_amount: sum(amount)", "total_amount: sum(amounts)"),
    );
    let out = ws.sluice(&["validate"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`marts[0].aggregate.total_amount`: no column `amounts` in staging.events"),
        "{stderr}"
    );
    ws.write("sluice.yaml", &config);
    let checks = ws.read("checks/events.yaml");
    ws.write(
        "checks/events.yaml",
        checks
            + "\n  - name: bad_column\n    table: staging.events\n    kind: validity\n    predicate: \"amountz > 0\"\n    fail: \"> 0\"\n",
    );
    let out = ws.sluice(&["validate"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`bad_column`: Binder Error: Referenced column \"amountz\" not found"),
        "{stderr}"
    );
    // Nothing was written: validate reads no data and keeps no state.
    assert!(!ws.path("agg_result.db").exists());
    assert!(!ws.path("data").exists());
}

/// An unknown key does not hide a wrong reference: the file is read without
/// it and checked further, and both come back at once, in file order.
#[test]
fn an_unknown_key_does_not_hide_a_wrong_reference() {
    let ws = Workspace::new();
    api_pages(&ws);
    let config = ws
        .read("sluice.yaml")
        .replace("  - name: stars\n", "  - name: stars\n    colour: blue\n")
        .replace("from: popular", "from: nowhere");
    ws.write("sluice.yaml", config);
    let out = ws.sluice(&["validate"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("error: 2 problems in the pipeline:\n"),
        "{stderr}"
    );
    let colour = stderr.find("('colour' was unexpected)").unwrap_or(usize::MAX);
    let from = stderr
        .find("`marts[1].from`: no staging model or mart named `nowhere`")
        .unwrap_or(usize::MAX);
    assert!(colour < from && from < usize::MAX, "{stderr}");
}

/// A pipeline over `input/events.csv` (`id`, `t`) with `top` keys before
/// its sources and the marts `marts` (YAML list items).
fn timed_events(ws: &Workspace, top: &str, marts: &str) {
    ws.write(
        "sluice.yaml",
        format!(
            "{top}sources:\n  - name: events\n    columns: {{id: integer, t: timestamp}}\n\
             staging:\n  - name: events\n    sql: sql/events.sql\nmarts:\n{marts}"
        ),
    );
    ws.write(
        "sql/events.sql",
        "CREATE OR REPLACE TABLE staging.events AS SELECT CAST(id AS BIGINT) AS id, CAST(t AS TIMESTAMP) AS t FROM raw.events;\n",
    );
}

/// Days, hours and months follow the wall clock of a time zone: the
/// pipeline's, or a mart's own; a `sql:` mart sees its timestamps there, and
/// every time is still published as UTC.
#[test]
fn time_zones_decide_where_days_and_hours_begin() {
    let ws = Workspace::new();
    timed_events(
        &ws,
        "time_zone: Europe/Berlin\n",
        "\x20 - name: berlin_days\n\
         \x20   from: events\n\
         \x20   group_by: {day: day(t)}\n\
         \x20   aggregate: {n: count()}\n\
         \x20   sort: [day]\n\
         \x20 - name: utc_days\n\
         \x20   from: events\n\
         \x20   time_zone: UTC\n\
         \x20   group_by: {day: day(t)}\n\
         \x20   aggregate: {n: count()}\n\
         \x20   sort: [day]\n\
         \x20 - name: kolkata_hours\n\
         \x20   from: events\n\
         \x20   time_zone: Asia/Kolkata\n\
         \x20   group_by: {hour: hour(t)}\n\
         \x20   aggregate: {n: count()}\n\
         \x20   sort: [hour]\n\
         \x20 - name: berlin_hours\n\
         \x20   from: events\n\
         \x20   filter: \"t >= TIMESTAMP '2026-10-24 22:00:00' AND t < TIMESTAMP '2026-10-25 03:00:00'\"\n\
         \x20   group_by: {hour: hour(t)}\n\
         \x20   aggregate: {n: count()}\n\
         \x20   sort: [hour]\n\
         \x20 - name: new_york_months\n\
         \x20   from: events\n\
         \x20   time_zone: America/New_York\n\
         \x20   group_by: {month: month(t), year: year(t)}\n\
         \x20   aggregate: {n: count()}\n\
         \x20   sort: [month]\n\
         \x20 - name: sql_days\n\
         \x20   from: events\n\
         \x20   sql: \"SELECT CAST(t AS DATE) AS day, count(*) AS n, max(t) AS last FROM events WHERE t <= {as_of} AND t > {window_start} GROUP BY 1 ORDER BY 1\"\n",
    );
    // 22:30Z and 23:30Z on the 19th are either side of Berlin's midnight;
    // 00:30Z and 01:30Z on 25 October are both 02:30 in Berlin (clocks went
    // back at 01:00Z); 03:00Z on 1 March is still February in New York.
    ws.write(
        "input/events.csv",
        "id,t\n1,2026-11-19 22:30:00\n2,2026-11-19 23:30:00\n3,2026-11-20 04:45:00\n\
         4,2026-10-25 00:30:00\n5,2026-10-25 01:30:00\n6,2026-03-01 03:00:00\n",
    );
    let (code, stdout, stderr) = ws.run_unchecked(&["--lookback-days", "365"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let rows = |table: &str| ws.query("agg_result.db", &format!("SELECT * FROM {table}"));
    assert_eq!(
        rows("berlin_days"),
        ["2026-03-01|1", "2026-10-25|2", "2026-11-19|1", "2026-11-20|2"]
    );
    assert_eq!(
        rows("utc_days"),
        ["2026-03-01|1", "2026-10-25|2", "2026-11-19|2", "2026-11-20|1"]
    );
    // Kolkata is 05:30 ahead: 10:15 there is in the hour that began at 04:30Z.
    assert_eq!(
        rows("kolkata_hours"),
        [
            "2026-03-01T02:30:00Z|1",
            "2026-10-25T00:30:00Z|1",
            "2026-10-25T01:30:00Z|1",
            "2026-11-19T22:30:00Z|1",
            "2026-11-19T23:30:00Z|1",
            "2026-11-20T04:30:00Z|1",
        ]
    );
    // The hour from 02:00 Berlin time comes twice that night: two buckets.
    assert_eq!(
        rows("berlin_hours"),
        ["2026-10-25T00:00:00Z|1", "2026-10-25T01:00:00Z|1"]
    );
    assert_eq!(
        rows("new_york_months"),
        [
            "2026-02-01|2026-01-01|1",
            "2026-10-01|2026-01-01|2",
            "2026-11-01|2026-01-01|3"
        ]
    );
    // A `sql:` mart's days are Berlin's too, and its times come back as UTC;
    // 02:30 came twice on 25 October, and is read as its first (docs/pipeline.md).
    assert_eq!(
        rows("sql_days"),
        [
            "2026-03-01|1|2026-03-01T03:00:00Z",
            "2026-10-25|2|2026-10-25T00:30:00Z",
            "2026-11-19|1|2026-11-19T22:30:00Z",
            "2026-11-20|2|2026-11-20T04:45:00Z",
        ]
    );
}

/// A time zone that is not one, and one on a mart it cannot apply to, are
/// configuration errors that `validate` finds.
#[test]
fn a_wrong_time_zone_is_a_configuration_error() {
    let ws = Workspace::new();
    timed_events(
        &ws,
        "time_zone: Europe/Berln\n",
        "  - {name: ids, from: events, group_by: [id], aggregate: {n: count()},\n     time_zone: Asia/Kolkata}\n",
    );
    let out = ws.sluice(&["validate", "--checks-dir", "."]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "sluice.yaml:1: `time_zone`: `Europe/Berln` is not a time zone: give an IANA name such as `Europe/Berlin`, `America/New_York` or `UTC`"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("sluice.yaml:10: `marts[0].time_zone`: a time zone applies to `day()`"),
        "{stderr}"
    );
}

/// A source's schema contract (dlt's names): a new column, a missing one
/// and a value of another type each evolve, freeze, discard the row (into
/// the quarantine, with the reason) or discard the value, and the run
/// records what it did.
#[test]
fn the_schema_contract_decides_what_a_change_in_the_data_does() {
    let ws = Workspace::new();
    let pipeline = |contract: &str| {
        ws.write(
            "sluice.yaml",
            format!(
                "sources:\n  - name: orders\n    columns: {{id: integer, amount: decimal, at: timestamp}}\n{contract}\
                 staging:\n  - name: orders\n    sql: sql/orders.sql\n\
                 marts:\n  - {{name: totals, from: orders, aggregate: {{n: count(), amounts: count(amount), ats: count(at)}}}}\n"
            ),
        );
    };
    ws.write(
        "sql/orders.sql",
        "CREATE OR REPLACE TABLE staging.orders_quarantine AS\n\
         SELECT id, _malformed AS _reason, _source_file, _line FROM raw.orders WHERE _malformed IS NOT NULL;\n\
         CREATE OR REPLACE TABLE staging.orders AS\n\
         SELECT CAST(id AS BIGINT) AS id, TRY_CAST(amount AS DECIMAL(18, 2)) AS amount, \"at\" FROM raw.orders WHERE _malformed IS NULL;\n",
    );
    ws.write(
        "input/orders.csv",
        "id,amount,at,note\n1,10.50,2026-11-20T10:00:00Z,a\n2,abc,2026-11-20T11:00:00Z,b\n3,7,yesterday,c\n",
    );
    let changes = || {
        ws.query(
            "agg_result.db",
            "SELECT source, change, action, columns, rows FROM _sluice_run_schema_changes \
             WHERE run_id = (SELECT max(run_id) FROM _sluice_runs) ORDER BY change, columns",
        )
    };
    let totals = || ws.query("agg_result.db", "SELECT * FROM totals");
    let quarantine = || {
        ws.query(
            "agg_result.db",
            "SELECT rows_quarantined, quarantined_by_reason FROM _sluice_runs ORDER BY rowid DESC LIMIT 1",
        )
    };

    // The default: a new column is warned about, values land as text.
    pipeline("");
    let (code, stdout, stderr) = ws.run_unchecked(&[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stderr.contains("`input/orders.csv`: extra columns ignored: note"),
        "{stderr}"
    );
    assert_eq!(changes(), ["orders|new_column|evolve|note|3"]);
    assert_eq!(totals(), ["3|2|3"]);
    assert!(
        stdout.contains("  schema       orders: new column evolve (note): 3 rows\n"),
        "{stdout}"
    );

    // Values of another type: into the quarantine, with the reason.
    pipeline("    schema_contract: {new_columns: discard_value, data_type: discard_row}\n");
    let (code, stdout, stderr) = ws.run_unchecked(&[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        changes(),
        [
            "orders|data_type|discard_row|amount|1",
            "orders|data_type|discard_row|at|1",
            "orders|new_column|discard_value|note|3"
        ]
    );
    assert_eq!(totals(), ["1|1|1"]);
    let reasons = quarantine();
    assert!(
        reasons[0].starts_with("2|")
            && reasons[0].contains("`amount` is not a decimal: `abc`")
            && reasons[0].contains("`at` is not a timestamp: `yesterday`"),
        "{reasons:?}"
    );
    // ... or landed without the value.
    pipeline("    schema_contract: {new_columns: discard_value, data_type: discard_value}\n");
    let (code, stdout, stderr) = ws.run_unchecked(&[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(totals(), ["3|2|2"]);
    // ... or the run stops, naming the value.
    pipeline("    schema_contract: {data_type: freeze}\n");
    let (code, _, stderr) = ws.run_unchecked(&[]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("error: `input/orders.csv` line 3: `amount` is not a decimal: `abc`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: the source's `schema_contract.data_type` is `freeze`"),
        "{stderr}"
    );
    // A new column under `freeze` stops the run; under `discard_row` every row
    // of the file goes to the quarantine.
    pipeline("    schema_contract: freeze\n");
    let (code, _, stderr) = ws.run_unchecked(&[]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("does not declare: note"), "{stderr}");
    pipeline("    schema_contract: {new_columns: discard_row}\n");
    let (code, stdout, stderr) = ws.run_unchecked(&[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(totals(), ["0|0|0"]);
    assert!(
        quarantine()[0].contains("has columns no source column declares: note"),
        "{:?}",
        quarantine()
    );

    // A record lacking a declared column: null under `evolve`, quarantined
    // under `discard_row`.
    std::fs::remove_file(ws.path("input/orders.csv")).unwrap();
    ws.write(
        "input/orders.ndjson",
        "{\"id\": 1, \"amount\": \"1.00\", \"at\": \"2026-11-20T10:00:00Z\"}\n{\"id\": 2, \"at\": \"2026-11-20T11:00:00Z\"}\n",
    );
    pipeline("    schema_contract: {missing_columns: evolve}\n");
    let (code, stdout, stderr) = ws.run_unchecked(&[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(changes(), ["orders|missing_column|evolve|amount|1"]);
    assert_eq!(totals(), ["2|1|2"]);
    pipeline("    schema_contract: {missing_columns: discard_row}\n");
    let (code, stdout, stderr) = ws.run_unchecked(&[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(totals(), ["1|1|1"]);
    assert!(quarantine()[0].contains("lacks `amount`"), "{:?}", quarantine());

    // The older key and the contract's own for new columns: one of them.
    pipeline("    new_columns: fail\n    schema_contract: {new_columns: evolve}\n");
    let out = ws
        .sluice(&["validate", "--checks-dir", "no-checks"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "`sources[0].new_columns`: give `new_columns` or `schema_contract` (its `new_columns`), not both"
        ),
        "{stderr}"
    );
}
