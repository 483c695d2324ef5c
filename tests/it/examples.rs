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

/// `n` repositories of the fake org as GitHub lists them, the `i`th updated
/// `i` hours before the run's `as_of`, then `changed` (id, hours) updates.
fn github_org(n: i64, changed: &[(i64, i64)]) -> String {
    let as_of = chrono::DateTime::parse_from_rfc3339(crate::util::AS_OF).unwrap();
    let repos: Vec<String> = (1..=n)
        .map(|id| {
            let hours = changed.iter().find(|(c, _)| *c == id).map_or(id + 2, |(_, h)| *h);
            let updated = (as_of - chrono::Duration::hours(hours)).format("%Y-%m-%dT%H:%M:%SZ");
            let language = ["Rust", "C++", "Python", "null"][(id % 4) as usize];
            let language = if language == "null" {
                language.to_string()
            } else {
                format!("\"{language}\"")
            };
            format!(
                "{{\"id\": {id}, \"full_name\": \"acme/repo-{id}\", \"language\": {language}, \
                 \"stargazers_count\": {}, \"forks_count\": {}, \"archived\": false, \
                 \"created_at\": \"2020-01-01T00:00:00Z\", \"updated_at\": \"{updated}\", \
                 \"owner\": {{\"login\": \"acme\"}}, \"topics\": [\"etl\"]}}",
                id * 3 + hours,
                id % 7
            )
        })
        .collect();
    format!("[{}]", repos.join(",\n"))
}

/// The seed's pipeline against a local stand-in for GitHub's API: the first
/// run reads every page, the next only the first (what changed since), and
/// updated repositories replace their earlier versions.
#[test]
fn the_github_example_runs_incrementally_against_the_api() {
    let ws = Workspace::new();
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/github");
    copy_dir(&from, ws.dir.path());
    let api = crate::http::FakeApi::start(&ws);
    let base = api.url("");
    let run = |ws: &Workspace| {
        crate::util::outcome(
            &ws.sluice(&[
                "run",
                "--as-of",
                crate::util::AS_OF,
                "--var",
                &format!("api={base}"),
                "--var",
                "org=acme",
            ])
            .env_remove("GITHUB_TOKEN")
            .output()
            .unwrap(),
        )
    };
    ws.write("api/repos.json", github_org(250, &[]));
    let (code, stdout, stderr) = run(&ws);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("sluice: 250 rows from 3 pages;"), "{stdout}");
    assert!(stdout.contains("gate: passed"), "{stdout}");
    let repos = || ws.query("agg_result.db", "SELECT sum(repos) FROM repos_per_language");
    assert_eq!(repos(), ["250"]);

    // Two repositories updated since, one new: one page, merged.
    let mut org = github_org(250, &[(40, 1), (41, 1)]);
    org.insert_str(
        org.len() - 1,
        ",\n{\"id\": 251, \"full_name\": \"acme/new\", \"language\": \"Rust\", \"stargazers_count\": 1, \
         \"forks_count\": 0, \"archived\": false, \"created_at\": \"2026-11-20T10:00:00Z\", \
         \"updated_at\": \"2026-11-20T11:00:00Z\", \"owner\": {\"login\": \"acme\"}}",
    );
    ws.write("api/repos.json", org);
    let before = crate::http::requests(&ws).len();
    let (code, stdout, stderr) = run(&ws);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(crate::http::requests(&ws).len() - before, 1);
    assert_eq!(repos(), ["251"]);
    // The updates replace their earlier versions: stars were 126000 over
    // 250 repositories (3 id + id + 2 each); repositories 40 and 41 lost 41
    // and 42, the new one has 1.
    assert_eq!(
        ws.query("agg_result.db", "SELECT sum(stars) FROM repos_per_language"),
        ["125918"]
    );
    assert_eq!(
        ws.query(
            "agg_result.db",
            "SELECT cursor_before, cursor_after, records_older FROM _sluice_run_cursors ORDER BY rowid"
        ),
        [
            "NULL|2026-11-20T09:00:00Z|0",
            "2026-11-20T09:00:00Z|2026-11-20T11:00:00Z|95"
        ]
    );
    assert_eq!(
        ws.query(
            "agg_result.db",
            "SELECT rows_staged, rows_total FROM _sluice_run_models ORDER BY rowid"
        ),
        // The second run keeps what is within the hour's lag of the cursor
        // too (repositories 1 and 2), and drops the rest of its page.
        ["250|250", "5|251"]
    );
    let header = ws.read("output/repos_per_language.csv");
    assert!(header.starts_with("language,repos,stars,forks\n"), "{header}");
}

/// The viewing pipeline as a lakehouse: gzipped Elasticsearch hits read from
/// a bucket, the marts published to agg_result.db and as Delta tables in the
/// bucket. Two runs make two versions, the second with the new day's
/// contract; a failing gate makes none. Read back by PyPI's deltalake.
#[test]
fn the_viewing_lakehouse_example_publishes_delta_tables_in_a_bucket() {
    use crate::delta::read_back;
    use crate::s3::S3Server;
    let ws = Workspace::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for name in ["viewing", "viewing_lakehouse"] {
        copy_dir(&root.join(name), &ws.path(name));
    }
    let generated = std::process::Command::new("python3")
        .args(["viewing/generate.py", "input"])
        .current_dir(ws.dir.path())
        .output()
        .unwrap();
    assert!(generated.status.success());
    let s3 = S3Server::start();
    let mut hits: Vec<(String, std::path::PathBuf)> = std::fs::read_dir(ws.path("input"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (format!("hits/{}", p.file_name().unwrap().to_string_lossy()), p))
        .collect();
    hits.sort();
    let objects: Vec<(&str, std::path::PathBuf)> =
        hits.iter().map(|(k, p)| (k.as_str(), p.clone())).collect();
    s3.put("viewing", &objects);
    let run = || {
        let mut cmd = ws.sluice(&[
            "run",
            "--config",
            "viewing_lakehouse/sluice.yaml",
            "--as-of",
            crate::util::AS_OF,
        ]);
        for (key, value) in s3.vars() {
            cmd.env(key, value);
        }
        crate::util::outcome(&cmd.output().unwrap())
    };
    let (code, stdout, stderr) = run();
    assert_eq!(code, 0, "{stdout}{stderr}");
    let gold = |mart: &str| {
        read_back(
            &ws,
            Some(&s3),
            &format!("s3://viewing/gold/{mart}"),
            None,
            Some(mart),
        )
    };
    for mart in ["contract_minutes", "favourite_category", "segments"] {
        let table = gold(mart);
        assert_eq!(
            (&table["version"], &table["matches_sqlite"]),
            (&0.into(), &true.into()),
            "{table}"
        );
    }
    assert_eq!(gold("contract_minutes")["rows"], 300);
    // The layers are in the bucket, the staging layer one directory per category.
    let layers = |status: &str| {
        let runs = s3.objects("viewing", "lake/manifests/");
        let last = runs.last().unwrap().0.clone();
        let manifest = s3.get("viewing", &last);
        assert!(
            manifest.contains(&format!(r#""status": "{status}""#)),
            "{manifest}"
        );
        runs.len()
    };
    assert_eq!(layers("passed"), 1);
    let staged: Vec<String> = s3
        .objects("viewing", "lake/runs/")
        .into_iter()
        .filter_map(|(key, _)| {
            key.split_once("/staging/views/")
                .map(|(_, p)| p.split('/').next().unwrap().to_string())
        })
        .collect();
    assert!(staged.contains(&"category=sport".to_string()), "{staged:?}");
    assert!(!ws.path("data").exists());

    // A new day with a new contract: version 1 holds it.
    let day = (0..40)
        .map(|i| {
            format!(
                r#"{{"_index":"views","_id":"new{i}","_source":{{"contract_id":"C90000","category":"sport","minutes":30,"started_at":"2026-11-20T0{}:00:00Z"}}}}"#,
                i % 10
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    s3.put(
        "viewing",
        &[(
            "hits/hits-30.json.gz",
            crate::util::gzip(&ws.write("new/hits-30.json", &day)),
        )],
    );
    let (code, stdout, stderr) = run();
    assert_eq!(code, 0, "{stdout}{stderr}");
    let table = gold("contract_minutes");
    assert_eq!(
        (&table["version"], &table["matches_sqlite"]),
        (&1.into(), &true.into()),
        "{table}"
    );
    assert_eq!(table["rows"], 301);
    assert_eq!(layers("passed"), 2);

    // 150 hits without a contract fail the gate: no new version anywhere.
    let bad = (0..150)
        .map(|i| format!(r#"{{"_id":"bad{i}","_source":{{"category":"news","minutes":5,"started_at":"2026-11-19T10:00:00Z"}}}}"#))
        .collect::<Vec<_>>()
        .join("\n");
    s3.put(
        "viewing",
        &[(
            "hits/hits-31.json.gz",
            crate::util::gzip(&ws.write("new/hits-31.json", &bad)),
        )],
    );
    let (code, stdout, _) = run();
    assert_eq!(code, 1, "{stdout}");
    // Its layers are kept for inspection, marked as failed.
    assert_eq!(layers("gate_failed"), 3);
    for mart in ["contract_minutes", "favourite_category", "segments"] {
        assert_eq!(
            read_back(&ws, Some(&s3), &format!("s3://viewing/gold/{mart}"), None, None)["version"],
            1
        );
    }
}
