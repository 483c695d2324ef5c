//! `sluice generate`: deterministic synthetic events in the default pipeline's
//! schema, with defects planted at chosen rates so that every quarantine reason,
//! deduplication rule and (later) every check has data that exercises it.
//!
//! At most one defect is planted per row and the file has exactly `rows` rows,
//! so the planted counts say exactly what staging must report.

use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, FixedOffset, Utc};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use crate::error::{Error, Result};
use crate::ingest::{Compression, Format};

pub(crate) const REGIONS: [&str; 5] = ["us", "eu", "apac", "latam", "africa"];

/// One kind of planted defect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Defect {
    NullEventId,
    NullTime,
    BadTime,
    NullUser,
    BadUser,
    NullAmount,
    BadAmount,
    /// A ragged row: one field too many.
    Malformed,
    /// Bytes that are not UTF-8 in the `sku` field.
    NonUtf8,
    /// An exact copy of an earlier row.
    DupEvent,
    /// An earlier row's `event_id` with a different time and amount.
    ConflictEvent,
    NegativeAmount,
    /// A region outside the accepted list.
    BadRegion,
    /// An event from long before the window.
    Stale,
}

impl Defect {
    pub(crate) const ALL: [Defect; 14] = [
        Defect::NullEventId,
        Defect::NullTime,
        Defect::BadTime,
        Defect::NullUser,
        Defect::BadUser,
        Defect::NullAmount,
        Defect::BadAmount,
        Defect::Malformed,
        Defect::NonUtf8,
        Defect::DupEvent,
        Defect::ConflictEvent,
        Defect::NegativeAmount,
        Defect::BadRegion,
        Defect::Stale,
    ];
    pub(crate) const NAMES: [&'static str; 14] = [
        "null_event_id",
        "null_time",
        "bad_time",
        "null_user",
        "bad_user",
        "null_amount",
        "bad_amount",
        "malformed",
        "non_utf8",
        "dup_event",
        "conflict_event",
        "negative_amount",
        "bad_region",
        "stale",
    ];

    pub(crate) fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// The quarantine reason staging must give a row with this defect, if any.
    pub(crate) fn quarantine_reason(self) -> Option<&'static str> {
        Some(match self {
            Defect::NullEventId => "missing_event_id",
            Defect::NullTime => "missing_event_time",
            Defect::BadTime => "bad_event_time",
            Defect::NullUser => "missing_user_id",
            Defect::BadUser => "bad_user_id",
            Defect::NullAmount => "missing_amount",
            Defect::BadAmount => "bad_amount",
            Defect::Malformed | Defect::NonUtf8 => "malformed_row",
            _ => return None,
        })
    }
}

/// Parses `kind=rate,...` (`all=rate` sets every kind).
pub(crate) fn parse_defects(spec: &str) -> Result<Vec<(Defect, f64)>> {
    let mut rates = vec![0.0; Defect::ALL.len()];
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || Error::BadDefects {
            value: part.to_string(),
            kinds: &Defect::NAMES,
        };
        let (name, rate) = part.split_once('=').ok_or_else(bad)?;
        let rate: f64 = rate.trim().parse().map_err(|_| bad())?;
        if !(0.0..=1.0).contains(&rate) {
            return Err(bad());
        }
        match name.trim() {
            "all" => rates.iter_mut().for_each(|r| *r = rate),
            name => {
                let i = Defect::NAMES.iter().position(|n| *n == name).ok_or_else(bad)?;
                rates[i] = rate;
            }
        }
    }
    if rates.iter().sum::<f64>() > 1.0 {
        return Err(Error::BadDefects {
            value: format!("{spec} (rates add up to more than 1)"),
            kinds: &Defect::NAMES,
        });
    }
    Ok(Defect::ALL
        .into_iter()
        .zip(rates)
        .filter(|(_, r)| *r > 0.0)
        .collect())
}

pub(crate) struct Options {
    pub rows: u64,
    pub seed: u64,
    pub end: DateTime<Utc>,
    pub days: u32,
    pub defects: Vec<(Defect, f64)>,
}

/// What was written: the counts per planted defect.
#[derive(Debug)]
pub(crate) struct Planted {
    pub path: PathBuf,
    pub rows: u64,
    pub counts: Vec<(Defect, u64)>,
}

impl Planted {
    /// Human summary: rows, then each planted defect with what staging will do with it.
    pub(crate) fn summary(&self) -> String {
        let mut s = format!("wrote {} rows to `{}`\n", self.rows, self.path.display());
        let planted: Vec<_> = self.counts.iter().filter(|(_, n)| *n > 0).collect();
        if planted.is_empty() {
            s.push_str("planted no defects\n");
        }
        for (defect, n) in planted {
            let effect = match (defect.quarantine_reason(), defect) {
                (Some(reason), _) => format!("quarantined as {reason}"),
                (None, Defect::DupEvent | Defect::ConflictEvent) => "removed by dedup".into(),
                (None, Defect::Stale) => "outside the window".into(),
                (None, _) => "staged; for the checks to find".into(),
            };
            let _ = writeln!(s, "  {:<16} {n:>10}  ({effect})", defect.name());
        }
        s
    }
}

/// A clean row remembered so that duplicates can copy it later.
#[derive(Clone)]
struct Row {
    event_id: String,
    user_id: u64,
    time: DateTime<Utc>,
    region: usize,
    sku: u32,
    cents: i64,
}

/// Writes the events as CSV or NDJSON (by the name of `out`, compressed when it
/// ends `.gz` or `.zst`) and returns what it planted.
pub(crate) fn generate(out: &Path, opts: &Options) -> Result<Planted> {
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    }
    // Written beside the target and renamed into place: a run reading the
    // input never sees half a file.
    let dir = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".sluice-generate-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(|e| Error::io("create a temp file in", dir, e))?;
    let Some((format, compression)) = crate::ingest::detect(out).filter(|(f, _)| *f != Format::Parquet)
    else {
        return Err(Error::UnsupportedInput {
            path: out.to_path_buf(),
        });
    };
    let file = BufWriter::with_capacity(1 << 20, tmp.as_file());
    let write_err = |e| Error::io("write", out, e);
    let mut w = match compression {
        Compression::None => Output::Plain(file),
        Compression::Gzip => Output::Gzip(flate2::write::GzEncoder::new(file, flate2::Compression::fast())),
        Compression::Zstd => Output::Zstd(zstd::stream::write::Encoder::new(file, 3).map_err(write_err)?),
    };
    let mut generator = Generator::new(opts, format);
    if format == Format::Csv {
        w.write_all(b"event_id,user_id,event_time,region,sku,amount\n")
            .map_err(write_err)?;
    }
    let mut line = Vec::with_capacity(128);
    for i in 0..opts.rows {
        line.clear();
        generator.row(i, &mut line);
        w.write_all(&line).map_err(write_err)?;
    }
    w.finish().map_err(write_err)?;
    tmp.persist(out).map_err(|e| Error::io("replace", out, e.error))?;
    Ok(Planted {
        path: out.to_path_buf(),
        rows: opts.rows,
        counts: Defect::ALL.into_iter().zip(generator.counts).collect(),
    })
}

/// The file being written, compressed or not.
enum Output<W: Write> {
    Plain(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Output<W> {
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Output::Plain(w) => w.write_all(bytes),
            Output::Gzip(w) => w.write_all(bytes),
            Output::Zstd(w) => w.write_all(bytes),
        }
    }

    /// Writes the compressed stream's trailer and flushes everything.
    fn finish(self) -> std::io::Result<()> {
        match self {
            Output::Plain(mut w) => w.flush(),
            Output::Gzip(w) => w.finish()?.flush(),
            Output::Zstd(w) => w.finish()?.flush(),
        }
    }
}

struct Generator<'a> {
    opts: &'a Options,
    format: Format,
    rng: ChaCha8Rng,
    users: u64,
    recent: Vec<Row>,
    counts: [u64; 14],
}

impl<'a> Generator<'a> {
    fn new(opts: &'a Options, format: Format) -> Self {
        Generator {
            opts,
            format,
            rng: ChaCha8Rng::seed_from_u64(opts.seed),
            users: (opts.rows / 20).max(200),
            recent: Vec::new(),
            counts: [0; 14],
        }
    }

    fn unit(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: u64) -> u64 {
        self.rng.next_u64() % n.max(1)
    }

    fn pick_defect(&mut self) -> Option<Defect> {
        let u = self.unit();
        let mut acc = 0.0;
        for &(defect, rate) in &self.opts.defects {
            acc += rate;
            if u < acc {
                return Some(defect);
            }
        }
        None
    }

    fn clean_row(&mut self, i: u64) -> Row {
        // Squaring a uniform draw skews activity towards low user ids, as real users are.
        let u = self.unit();
        let user_id = 1 + (u * u * self.users as f64) as u64;
        let window_micros = i64::from(self.opts.days) * 86_400_000_000;
        let back = self.below(window_micros as u64) as i64;
        // Whole seconds for most rows, microseconds for a third.
        let back = if i.is_multiple_of(3) {
            back
        } else {
            back - back % 1_000_000
        };
        Row {
            event_id: format!("e{:x}-{:010}", self.opts.seed, i),
            user_id,
            time: self.opts.end - Duration::microseconds(back),
            region: self.below(REGIONS.len() as u64) as usize,
            sku: self.below(500) as u32,
            cents: 100 + self.below(49_900) as i64,
        }
    }

    /// Appends row `i` (with its newline) to `out`.
    fn row(&mut self, i: u64, out: &mut Vec<u8>) {
        let defect = self.pick_defect();
        let mut row = self.clean_row(i);
        match defect {
            Some(Defect::DupEvent | Defect::ConflictEvent) if self.recent.is_empty() => {
                return self.emit(i, &row, None, out);
            }
            Some(Defect::DupEvent) => {
                let k = self.below(self.recent.len() as u64) as usize;
                row = self.recent[k].clone();
            }
            Some(Defect::ConflictEvent) => {
                let k = self.below(self.recent.len() as u64) as usize;
                row.event_id = self.recent[k].event_id.clone();
            }
            None => {
                if self.recent.len() < 256 {
                    self.recent.push(row.clone());
                } else {
                    let k = (i % 256) as usize;
                    self.recent[k] = row.clone();
                }
            }
            _ => {}
        }
        if let Some(d) = defect {
            self.counts[d as usize] += 1;
        }
        self.emit(i, &row, defect, out);
    }

    fn emit(&mut self, i: u64, row: &Row, defect: Option<Defect>, out: &mut Vec<u8>) {
        let variant = i % 3;
        let event_id = match defect {
            // Blank after trimming is missing too, a no-break space included.
            Some(Defect::NullEventId) => ["", "  ", "\u{a0}"][variant as usize].to_string(),
            _ => row.event_id.clone(),
        };
        let user_id = match defect {
            Some(Defect::NullUser) => String::new(),
            Some(Defect::BadUser) => ["u123", "12a", "1234567890123456789"][variant as usize].to_string(),
            // A few ids zero-padded: `007` is user 7.
            _ if i.is_multiple_of(97) => format!("{:06}", row.user_id),
            // A few behind an ideographic space, which staging trims like any space.
            _ if i.is_multiple_of(89) => format!("\u{3000}{}", row.user_id),
            _ => row.user_id.to_string(),
        };
        let time = match defect {
            Some(Defect::Stale) => {
                let days = i64::from(self.opts.days) + 1 + self.below(365) as i64;
                row.time - Duration::days(days)
            }
            _ => row.time,
        };
        let event_time = match defect {
            Some(Defect::NullTime) => String::new(),
            Some(Defect::BadTime) => {
                ["2026-11-31T10:00:00Z", "yesterday", "2026-11-20 13:05:00"][variant as usize].to_string()
            }
            _ => format_time(time, i),
        };
        let region = match defect {
            Some(Defect::BadRegion) => ["mars", "antarctica", "moon"][variant as usize].to_string(),
            // Some regions arrive unnormalised: staging lower-cases and trims them.
            _ if i.is_multiple_of(11) => format!(" {} ", REGIONS[row.region].to_uppercase()),
            _ => REGIONS[row.region].to_string(),
        };
        let cents = match defect {
            Some(Defect::NegativeAmount) => -row.cents,
            Some(Defect::ConflictEvent) => row.cents + 1 + self.below(1000) as i64,
            _ => row.cents,
        };
        let amount = match defect {
            Some(Defect::NullAmount) => String::new(),
            Some(Defect::BadAmount) => ["\"12,30\"", "$1", "1.005"][variant as usize].to_string(),
            _ => format_amount(cents, i),
        };
        let sku = format!("SKU-{:04}", row.sku);
        let fields = Fields {
            event_id,
            user_id,
            event_time,
            region,
            sku,
            amount,
            defect,
        };
        match self.format {
            Format::Ndjson => fields.json(out),
            _ => fields.csv(out),
        }
    }
}

/// The text of one generated row, before it is written in a format.
struct Fields {
    event_id: String,
    user_id: String,
    event_time: String,
    region: String,
    sku: String,
    amount: String,
    defect: Option<Defect>,
}

impl Fields {
    fn csv(&self, out: &mut Vec<u8>) {
        let f = self;
        let _ = write!(
            out,
            "{},{},{},{},{}",
            f.event_id, f.user_id, f.event_time, f.region, f.sku
        );
        if f.defect == Some(Defect::NonUtf8) {
            out.extend_from_slice(b"\xff\xfe");
        }
        let _ = write!(out, ",{}", f.amount);
        if f.defect == Some(Defect::Malformed) {
            out.extend_from_slice(b",surplus");
        }
        out.push(b'\n');
    }

    /// One JSON object: ids and amounts as numbers where the text is a JSON
    /// number, empty text as `null`. A malformed
    /// row is a line cut short; a non-UTF-8 one has raw bytes in `sku`.
    fn json(&self, out: &mut Vec<u8>) {
        // JSON's grammar has no leading zeros: `007` stays a string.
        let value = |text: &str, number: bool| -> String {
            match text {
                "" => "null".into(),
                _ if number && serde_json::from_str::<serde_json::Number>(text).is_ok() => text.into(),
                _ => serde_json::Value::from(text).to_string(),
            }
        };
        let amount = self.amount.trim_matches('"');
        let _ = write!(
            out,
            r#"{{"event_id":{},"user_id":{},"event_time":{},"region":{},"sku":"#,
            value(&self.event_id, false),
            value(&self.user_id, true),
            value(&self.event_time, false),
            value(&self.region, false),
        );
        if self.defect == Some(Defect::NonUtf8) {
            let _ = write!(out, "\"{}", self.sku);
            out.extend_from_slice(b"\xff\xfe\"");
        } else {
            out.extend_from_slice(value(&self.sku, false).as_bytes());
        }
        let _ = write!(out, r#","amount":{}}}"#, value(amount, true));
        if self.defect == Some(Defect::Malformed) {
            // Cut short, as a writer killed mid-line leaves it.
            out.truncate(out.len() - 10);
        }
        out.push(b'\n');
    }
}

/// RFC 3339 in the shapes real feeds send: `Z`, a fraction, or an offset.
fn format_time(t: DateTime<Utc>, i: u64) -> String {
    match i % 7 {
        0 => t
            .with_timezone(&FixedOffset::east_opt(2 * 3600).expect("valid offset"))
            .format("%Y-%m-%dT%H:%M:%S%.f%:z")
            .to_string(),
        1 => t
            .with_timezone(&FixedOffset::west_opt(5 * 3600 + 1800).expect("valid offset"))
            .format("%Y-%m-%dT%H:%M:%S%.f%:z")
            .to_string(),
        _ => t.format("%Y-%m-%dT%H:%M:%S%.fZ").to_string(),
    }
}

/// Two decimals mostly; whole amounts sometimes without any, as exports do.
fn format_amount(cents: i64, i: u64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let (units, rest) = (cents.abs() / 100, cents.abs() % 100);
    match i % 5 {
        0 if rest % 10 == 0 => format!("{sign}{units}.{}", rest / 10),
        _ => format!("{sign}{units}.{rest:02}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(rows: u64, defects: &str) -> Options {
        Options {
            rows,
            seed: 7,
            end: "2026-11-20T00:00:00Z".parse().unwrap(),
            days: 30,
            defects: parse_defects(defects).unwrap(),
        }
    }

    #[test]
    fn defects_parse_and_reject() {
        assert_eq!(parse_defects("").unwrap(), vec![]);
        let all = parse_defects("all=0.01").unwrap();
        assert_eq!(all.len(), Defect::ALL.len());
        assert_eq!(
            parse_defects("null_user=0.5, dup_event=0.25").unwrap(),
            vec![(Defect::NullUser, 0.5), (Defect::DupEvent, 0.25)]
        );
        for bad in ["null_user", "nope=0.1", "null_user=x", "null_user=2", "all=0.1"] {
            assert!(parse_defects(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn same_seed_same_bytes_and_counts_add_up() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
        let planted = generate(&a, &opts(5000, "all=0.02")).unwrap();
        generate(&b, &opts(5000, "all=0.02")).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        let lines = std::fs::read(&a).unwrap().split(|b| *b == b'\n').count() - 2;
        assert_eq!(lines, 5000);
        for (d, n) in &planted.counts {
            assert!(*n > 40, "{} planted only {n} times", d.name());
        }
    }

    #[test]
    fn amounts_are_exact_text() {
        assert_eq!(format_amount(1230, 0), "12.3");
        assert_eq!(format_amount(1230, 1), "12.30");
        assert_eq!(format_amount(-5, 1), "-0.05");
    }
}
