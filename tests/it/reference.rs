//! An independent, deliberately naive implementation of docs/contract.md ("The default pipeline") in
//! plain Rust, to check the real pipeline against "to the row". It shares no
//! code with sluice.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use chrono::{DateTime, NaiveDate, NaiveDateTime};

#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub event_id: String,
    pub user_id: i64,
    pub time_us: i64,
    pub region: Option<String>,
    pub sku: String,
    pub cents: i64,
    pub order: (usize, u64),
}

#[derive(Debug, Default)]
pub(crate) struct Expected {
    pub raw: u64,
    pub quarantined: BTreeMap<String, u64>,
    pub duplicates: u64,
    pub staged: Vec<Event>,
}

pub(crate) fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim_matches(space);
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let date = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    let (h, m, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if h > 23 || m > 59 || sec > 59 {
        return None;
    }
    let mut rest = &s[19..];
    let mut micros = 0i64;
    if let Some(after) = rest.strip_prefix('.') {
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let kept: String = after[..digits].chars().take(6).collect();
        micros = format!("{kept:0<6}").parse().ok()?;
        rest = &after[digits..];
    }
    let offset_minutes = match rest {
        "Z" => 0,
        _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) && &rest[3..4] == ":" => {
            let hh: i64 = rest[1..3]
                .parse()
                .ok()
                .filter(|_| rest[1..3].bytes().all(|c| c.is_ascii_digit()))?;
            let mm: i64 = rest[4..6]
                .parse()
                .ok()
                .filter(|_| rest[4..6].bytes().all(|c| c.is_ascii_digit()))?;
            if hh > 23 || mm > 59 {
                return None;
            }
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (hh * 60 + mm)
        }
        _ => return None,
    };
    let local = NaiveDateTime::new(date, chrono::NaiveTime::from_hms_opt(h, m, sec)?);
    Some(local.and_utc().timestamp_micros() + micros - offset_minutes * 60_000_000)
}

pub(crate) fn parse_user(s: &str) -> Option<i64> {
    let s = s.trim_matches(space);
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

pub(crate) fn parse_cents(s: &str) -> Option<i64> {
    let s = s.trim_matches(space);
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    if int.is_empty() || !int.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let frac_cents = match frac {
        None => 0,
        Some(f) if (1..=2).contains(&f.len()) && f.bytes().all(|c| c.is_ascii_digit()) => {
            format!("{f:0<2}").parse::<i64>().ok()?
        }
        Some(_) => return None,
    };
    let int = int.trim_start_matches('0');
    if int.len() > 16 {
        return None;
    }
    let units: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let cents = units * 100 + frac_cents;
    Some(if neg { -cents } else { cents })
}

/// The contract's spaces: Unicode space separators (Zs), as DuckDB's `trim`.
fn space(c: char) -> bool {
    matches!(
        c,
        ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'..='\u{200a}' | '\u{202f}' | '\u{205f}' | '\u{3000}'
    )
}

fn blank(v: Option<&str>) -> bool {
    v.is_none_or(|s| s.trim_matches(space).is_empty())
}

/// Reads the files (in the order given) and applies staging exactly as specified.
pub(crate) fn stage(files: &[&Path]) -> Expected {
    let cols = ["event_id", "user_id", "event_time", "region", "sku", "amount"];
    let mut exp = Expected::default();
    let mut valid = Vec::new();
    for (file_no, path) in files.iter().enumerate() {
        let mut rdr = csv::ReaderBuilder::new()
            .flexible(true)
            .from_path(path)
            .expect("open");
        let header: Vec<String> = rdr
            .byte_headers()
            .expect("header")
            .iter()
            .map(|h| String::from_utf8_lossy(h).into_owned())
            .collect();
        let idx: Vec<usize> = cols
            .iter()
            .map(|c| header.iter().position(|h| h == c).expect("column"))
            .collect();
        for (line, rec) in rdr.byte_records().enumerate() {
            let rec = rec.expect("record");
            exp.raw += 1;
            let malformed = rec.len() != header.len() || rec.iter().any(|f| std::str::from_utf8(f).is_err());
            let lossy: Vec<Option<String>> = idx
                .iter()
                .map(|&i| rec.get(i).map(|f| String::from_utf8_lossy(f).into_owned()))
                .collect();
            let f = |i: usize| lossy[i].as_deref();
            let reason = if blank(f(0)) {
                Some("missing_event_id")
            } else if blank(f(2)) {
                Some("missing_event_time")
            } else if parse_time(f(2).unwrap_or_default()).is_none() {
                Some("bad_event_time")
            } else if blank(f(1)) {
                Some("missing_user_id")
            } else if parse_user(f(1).unwrap_or_default()).is_none() {
                Some("bad_user_id")
            } else if blank(f(5)) {
                Some("missing_amount")
            } else if parse_cents(f(5).unwrap_or_default()).is_none() {
                Some("bad_amount")
            } else if malformed {
                Some("malformed_row")
            } else {
                None
            };
            if let Some(r) = reason {
                *exp.quarantined.entry(r.to_string()).or_default() += 1;
                continue;
            }
            let region = f(3)
                .map(|r| r.trim_matches(space).to_lowercase())
                .filter(|r| !r.is_empty());
            valid.push(Event {
                event_id: f(0).unwrap_or_default().to_string(),
                user_id: parse_user(f(1).unwrap_or_default()).unwrap_or_default(),
                time_us: parse_time(f(2).unwrap_or_default()).unwrap_or_default(),
                region,
                sku: f(4).unwrap_or_default().to_string(),
                cents: parse_cents(f(5).unwrap_or_default()).unwrap_or_default(),
                order: (file_no, line as u64),
            });
        }
    }
    let mut best: HashMap<String, Event> = HashMap::new();
    let n_valid = valid.len() as u64;
    for e in valid {
        let better = |a: &Event, b: &Event| {
            // true when a comes before b in the dedup order
            let key = |e: &Event| {
                (
                    std::cmp::Reverse(e.time_us),
                    std::cmp::Reverse(e.cents),
                    e.user_id,
                    e.region.is_none(),
                    e.region.clone(),
                    e.sku.clone(),
                    e.order,
                )
            };
            key(a) < key(b)
        };
        match best.get(&e.event_id) {
            Some(cur) if !better(&e, cur) => {}
            _ => {
                best.insert(e.event_id.clone(), e);
            }
        }
    }
    exp.duplicates = n_valid - best.len() as u64;
    exp.staged = best.into_values().collect();
    exp
}

fn iso(us: i64) -> String {
    DateTime::from_timestamp(us.div_euclid(1_000_000), 0)
        .expect("time")
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents.abs() / 100, cents.abs() % 100)
}

fn in_window(e: &Event, as_of_us: i64, days: i64) -> bool {
    e.time_us > as_of_us - days * 86_400_000_000 && e.time_us <= as_of_us
}

/// `top_users.csv` as the spec defines it, header included.
pub(crate) fn top_users_csv(staged: &[Event], as_of_us: i64, days: i64) -> String {
    let mut per_user: BTreeMap<i64, (i64, u64, i64, i64)> = BTreeMap::new();
    for e in staged.iter().filter(|e| in_window(e, as_of_us, days)) {
        let s = per_user.entry(e.user_id).or_insert((0, 0, i64::MAX, i64::MIN));
        s.0 += e.cents;
        s.1 += 1;
        s.2 = s.2.min(e.time_us);
        s.3 = s.3.max(e.time_us);
    }
    let mut rows: Vec<_> = per_user.into_iter().collect();
    rows.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(&b.0)));
    let mut out = String::from("rank,user_id,total_amount,events,first_seen,last_seen\n");
    for (i, (user, (total, events, first, last))) in rows.into_iter().take(100).enumerate() {
        out += &format!(
            "{},{user},{},{events},{},{}\n",
            i + 1,
            money(total),
            iso(first),
            iso(last)
        );
    }
    out
}

/// `daily_region_revenue` rows as `day|region|revenue|events|unique_users`.
pub(crate) fn daily_region_revenue(staged: &[Event], as_of_us: i64, days: i64) -> Vec<String> {
    // (day, region is null, region) -> (revenue, events, users); the flag sorts nulls last.
    type Key = (i64, bool, Option<String>);
    let mut groups: BTreeMap<Key, (i64, u64, BTreeSet<i64>)> = BTreeMap::new();
    for e in staged.iter().filter(|e| in_window(e, as_of_us, days)) {
        let day = e.time_us.div_euclid(86_400_000_000);
        let g = groups
            .entry((day, e.region.is_none(), e.region.clone()))
            .or_default();
        g.0 += e.cents;
        g.1 += 1;
        g.2.insert(e.user_id);
    }
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
    groups
        .into_iter()
        .map(|((day, _, region), (rev, events, users))| {
            let day = epoch + chrono::Duration::days(day);
            format!(
                "{}|{}|{}|{events}|{}",
                day.format("%Y-%m-%d"),
                region.unwrap_or_else(|| "NULL".into()),
                money(rev),
                users.len()
            )
        })
        .collect()
}

#[test]
fn reference_parsers_follow_the_spec() {
    assert_eq!(
        parse_time("2026-11-20T13:05:00Z"),
        parse_time("2026-11-20T15:05:00+02:00")
    );
    assert_eq!(
        parse_time("2026-11-20T13:05:00.1234567Z").map(|t| t % 1_000_000),
        Some(123_456)
    );
    for bad in [
        "2026-11-31T10:00:00Z",
        "2026-11-20 13:05:00",
        "2026-11-20T13:05:00",
        "yesterday",
        "2026-11-20T24:00:00Z",
    ] {
        assert_eq!(parse_time(bad), None, "{bad}");
    }
    assert_eq!(parse_user("007"), Some(7));
    assert_eq!(parse_user("1234567890123456789"), None);
    assert_eq!(parse_cents("12.3"), Some(1230));
    assert_eq!(parse_cents("-0.05"), Some(-5));
    for bad in ["12,30", "$1", "1.005", ".5", "5.", "+1"] {
        assert_eq!(parse_cents(bad), None, "{bad}");
    }
}
