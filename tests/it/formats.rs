//! Input formats: CSV, NDJSON (plain, gzip, zstd) and Parquet (text or typed)
//! land the same rows, so a run over the same events in any of them stages and
//! publishes the same results. Unreadable files stop the run, naming the file.

use sha2::{Digest, Sha256};

use crate::util::{Workspace, bytes, marts, published};

/// What a run staged and published, to compare runs over different formats.
fn results(ws: &Workspace) -> Vec<String> {
    let mut rows = ws.query(
        "agg_result.db",
        "SELECT rows_raw, rows_quarantined, rows_duplicates, rows_staged, quarantined_by_reason FROM _sluice_runs",
    );
    rows.extend(marts(ws));
    rows
}

fn run_ok(ws: &Workspace, input: &str) {
    let (code, stdout, stderr) = ws.run_unchecked(&["--input", input]);
    assert_eq!(code, 0, "{input}\nstdout:\n{stdout}\nstderr:\n{stderr}");
}

/// A DuckDB connection for writing Parquet fixtures.
fn duckdb() -> duckdb::Connection {
    duckdb::Connection::open_in_memory().unwrap()
}

#[test]
fn every_text_format_and_compression_stages_and_publishes_the_same_rows() {
    let reference = Workspace::new();
    reference.generate("input/events.csv", 5_000, "all=0.01");
    run_ok(&reference, "input");
    let expected = results(&reference);
    assert!(expected[0].starts_with("5000|"), "{expected:?}");

    for name in [
        "events.csv.gz",
        "events.csv.zst",
        "events.ndjson",
        "events.jsonl.gz",
        "events.ndjson.zst",
    ] {
        let ws = Workspace::new();
        let planted = ws.generate(&format!("input/{name}"), 5_000, "all=0.01");
        assert!(planted.contains("wrote 5000 rows"), "{planted}");
        run_ok(&ws, "input");
        assert_eq!(results(&ws), expected, "{name}");
        assert_eq!(
            bytes(&ws.path("output/top_users.csv")),
            bytes(&reference.path("output/top_users.csv")),
            "{name}"
        );
        // Provenance is the file as stored: its size and hash on disk.
        let stored = bytes(&ws.path(&format!("input/{name}")));
        assert_eq!(
            ws.query(
                "agg_result.db",
                "SELECT path, size_bytes, sha256, rows FROM _sluice_run_inputs"
            ),
            vec![format!(
                "input/{name}|{}|{}|5000",
                stored.len(),
                sluice::format::hex(&Sha256::digest(&stored))
            )],
            "{name}"
        );
    }
}

#[test]
fn ndjson_lines_that_are_not_objects_are_quarantined_with_their_text() {
    let ws = Workspace::new();
    ws.write(
        "input/events.jsonl",
        concat!(
            r#"{"event_id":"a","user_id":7,"event_time":"2026-11-19T10:00:00Z","region":"EU","sku":"S1","amount":12.30}"#,
            "\n\n",
            r#"{"event_id":"b","user_id":"007","event_time":"2026-11-19T11:00:00Z","region":null,"sku":{"id":1},"amount":"1.5","extra":true}"#,
            "\n",
            "[1, 2]\n",
            r#"{"event_id":"c", "user_id": 8"#,
            "\n",
            r#"{"event_id":"d","user_id":8,"event_time":"2026-11-19T12:00:00Z","region":"us","sku":"S2","amount":1.005}"#,
            "\n",
        ),
    );
    let (code, stdout, stderr) = ws.run_unchecked(&[]);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stderr.contains("`input/events.jsonl`: extra columns ignored: extra"),
        "{stderr}"
    );
    // Numbers keep their JSON text (12.30, not 12.3); nested values are JSON text.
    assert_eq!(
        ws.query(
            "agg_result.db",
            "SELECT user_id, total_amount, events FROM top_users ORDER BY rank"
        ),
        vec!["7|13.80|2"]
    );
    let quarantine = ws.read("output/quarantine/events.csv");
    let lines: Vec<&str> = quarantine.lines().collect();
    assert_eq!(
        lines[0],
        "event_id,user_id,event_time,region,sku,amount,_reason,_source_file,_line,_detail"
    );
    assert_eq!(
        &lines[1..],
        [
            ",,,,,,malformed_row,input/events.jsonl,4,\"not a JSON object (invalid type: sequence, expected a map at line 1 column 0): [1, 2]\"",
            ",,,,,,malformed_row,input/events.jsonl,5,\"not JSON (EOF while parsing an object at line 2 column 0): {\"\"event_id\"\":\"\"c\"\", \"\"user_id\"\": 8\"",
            "d,8,2026-11-19T12:00:00Z,us,S2,1.005,bad_amount,input/events.jsonl,6,",
        ]
    );
    assert_eq!(
        ws.query(
            "agg_result.db",
            "SELECT rows_raw, rows_quarantined, rows_staged FROM _sluice_runs"
        ),
        vec!["5|3|2"]
    );
}

#[test]
fn parquet_in_text_or_typed_columns_gives_the_same_results_as_csv() {
    let reference = Workspace::new();
    // Defects that keep the CSV well-formed, so DuckDB can convert it.
    let defects = "dup_event=0.02,conflict_event=0.02,bad_region=0.01,negative_amount=0.01,stale=0.01,bad_time=0.01,bad_user=0.01";
    reference.generate("input/events.csv", 4_000, defects);
    run_ok(&reference, "input");
    let expected = results(&reference);

    let ws = Workspace::new();
    let csv = reference.path("input/events.csv");
    let text = ws.path("text/events.parquet");
    std::fs::create_dir_all(text.parent().unwrap()).unwrap();
    duckdb()
        .execute_batch(&format!(
            "COPY (SELECT * FROM read_csv('{}', all_varchar = true)) TO '{}' (FORMAT parquet)",
            csv.display(),
            text.display()
        ))
        .unwrap();
    run_ok(&ws, "text");
    assert_eq!(results(&ws), expected, "Parquet with text columns");

    // Typed columns: the staged events of the reference run, written back with
    // their types (BIGINT, TIMESTAMP, TIMESTAMPTZ, DECIMAL(18,2)) and stage to the same marts.
    let staged = reference.path("data/staging/events.parquet");
    for (dir, time) in [
        ("typed", "event_time"),
        ("typed_tz", "CAST(event_time AS TIMESTAMPTZ)"),
    ] {
        let ws = Workspace::new();
        let typed = ws.path(&format!("{dir}/events.parquet"));
        std::fs::create_dir_all(typed.parent().unwrap()).unwrap();
        let conn = duckdb();
        conn.execute_batch(&format!(
            "COPY (SELECT event_id, user_id, {time} AS event_time, region, sku, amount, 'x' AS note FROM '{}') \
             TO '{}' (FORMAT parquet)",
            staged.display(),
            typed.display()
        ))
        .unwrap();
        let types: Vec<String> = conn
            .prepare(&format!(
                "SELECT column_type FROM (DESCRIBE SELECT user_id, event_time, amount FROM '{}')",
                typed.display()
            ))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let time_type = if dir == "typed" {
            "TIMESTAMP"
        } else {
            "TIMESTAMP WITH TIME ZONE"
        };
        assert_eq!(types, ["BIGINT", time_type, "DECIMAL(18,2)"]);
        run_ok(&ws, dir);
        assert_eq!(marts(&ws), marts(&reference), "{dir}");
        assert_eq!(
            bytes(&ws.path("output/top_users.csv")),
            bytes(&reference.path("output/top_users.csv")),
            "{dir}"
        );
    }
}

#[test]
fn a_mix_of_formats_in_one_directory_is_one_source() {
    let ws = Workspace::new();
    ws.generate_seeded("input/a.csv", 1_000, "", 1);
    ws.generate_seeded("input/2026/b.ndjson.gz", 1_000, "", 2);
    ws.generate_seeded("input/c.csv.zst", 1_000, "", 3);
    let pq = ws.path("input/d.parquet");
    duckdb()
        .execute_batch(&format!(
            "COPY (SELECT 'p' || i AS event_id, i % 7 AS user_id, TIMESTAMP '2026-11-19 00:00:00' AS event_time, \
             'us' AS region, 'S' AS sku, CAST(i AS DECIMAL(18,2)) AS amount FROM range(1, 501) t(i)) \
             TO '{}' (FORMAT parquet)",
            pq.display()
        ))
        .unwrap();
    ws.write("input/notes.txt", "not an input");
    run_ok(&ws, "input");
    assert_eq!(
        ws.query(
            "agg_result.db",
            "SELECT path, rows FROM _sluice_run_inputs ORDER BY path"
        ),
        [
            "input/2026/b.ndjson.gz|1000",
            "input/a.csv|1000",
            "input/c.csv.zst|1000",
            "input/d.parquet|500"
        ]
    );
    assert_eq!(
        ws.query("agg_result.db", "SELECT rows_raw, rows_staged FROM _sluice_runs"),
        ["3500|3500"]
    );
    // Each raw row names its own file (text files get it from the column's default).
    let raw = ws.path("data/raw/events/events.parquet");
    let per_file: Vec<(String, i64, i64)> = duckdb()
        .prepare(&format!(
            "SELECT _source_file, count(*), max(_line) FROM read_parquet('{}') GROUP BY 1 ORDER BY 1",
            raw.display()
        ))
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        per_file,
        [
            ("input/2026/b.ndjson.gz".to_string(), 1000, 1000),
            ("input/a.csv".to_string(), 1000, 1001),
            ("input/c.csv.zst".to_string(), 1000, 1001),
            ("input/d.parquet".to_string(), 500, 500),
        ]
    );
}

#[test]
fn unreadable_files_stop_the_run_naming_the_file_and_keep_the_published_results() {
    let (ws, csv) = published();
    let before = marts(&ws);
    let gz = flate2_truncated();
    let cases: [(&str, &[u8], &str); 5] = [
        (
            "bad/events.parquet",
            b"PAR1 this is not parquet",
            "error: cannot read input file `bad/events.parquet`: ",
        ),
        (
            "bad/events.csv.gz",
            &gz,
            "error: cannot read input file `bad/events.csv.gz`: ",
        ),
        (
            "bad/events.csv.zst",
            b"event_id,user_id\n",
            "error: cannot read input file `bad/events.csv.zst`: ",
        ),
        (
            "bad/events.ndjson",
            b"{\"event_id\": \"a\", \"user\": 1}\n",
            "error: input file `bad/events.ndjson` has no column `user_id` (its header: event_id, user)",
        ),
        ("bad/events.jsonl", b"\xff\xfe not json\n", ""),
    ];
    for (path, contents, message) in cases {
        let _ = std::fs::remove_dir_all(ws.path("bad"));
        ws.write(path, contents);
        let (code, stdout, stderr) = ws.run(&["--input", "bad"]);
        assert!(!stderr.contains("panicked"), "{stderr}");
        if message.is_empty() {
            // A file of malformed lines is data: quarantined, and the gate fails on it.
            assert_eq!(code, 1, "{path}\nstdout:\n{stdout}\nstderr:\n{stderr}");
            assert!(ws.read("output/quarantine/events.csv").contains("malformed_row"));
        } else {
            assert_eq!(code, 3, "{path}\nstdout:\n{stdout}\nstderr:\n{stderr}");
            assert!(stderr.starts_with(message), "{path}: {stderr}");
            assert!(stderr.contains("\nhint: "), "{stderr}");
        }
        assert_eq!(marts(&ws), before, "{path}");
        assert_eq!(bytes(&ws.path("output/top_users.csv")), csv, "{path}");
    }
}

/// A gzip stream cut off in the middle.
fn flate2_truncated() -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    writeln!(enc, "event_id,user_id,event_time,region,sku,amount").unwrap();
    for i in 0..2000 {
        writeln!(enc, "e{i},{i},2026-11-19T10:00:00Z,us,S,1.00").unwrap();
    }
    let full = enc.finish().unwrap();
    full[..full.len() / 2].to_vec()
}
