//! How values are written for people and files: UTC timestamps to the
//! second, exact decimals from integer minor units, hex digests.

use chrono::{DateTime, SecondsFormat, Utc};

/// `2026-11-20T13:05:00Z`: UTC, truncated to seconds.
pub fn iso_seconds(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Integer cents as an exact decimal with two places: `-0.05`, `12.30`.
pub fn format_cents(cents: i64) -> String {
    format_decimal(cents, 2)
}

/// Integer minor units as an exact decimal with `scale` places.
pub fn format_decimal(units: i64, scale: u32) -> String {
    let sign = if units < 0 { "-" } else { "" };
    let abs = units.unsigned_abs();
    let one = 10u64.pow(scale);
    match scale {
        0 => format!("{sign}{abs}"),
        _ => format!(
            "{sign}{}.{:0width$}",
            abs / one,
            abs % one,
            width = scale as usize
        ),
    }
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_format_exactly() {
        assert_eq!(format_decimal(-5, 3), "-0.005");
        assert_eq!(format_decimal(42, 0), "42");
        assert_eq!(format_cents(1230), "12.30");
        assert_eq!(format_cents(-5), "-0.05");
        assert_eq!(format_cents(0), "0.00");
        assert_eq!(format_cents(123_456_789_012), "1234567890.12");
    }

    #[test]
    fn digests_are_lower_case_hex() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }

    #[test]
    fn timestamps_truncate_to_seconds() {
        let t = DateTime::parse_from_rfc3339("2026-11-20T13:05:00.999999Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(iso_seconds(t), "2026-11-20T13:05:00Z");
    }
}
