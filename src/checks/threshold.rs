//! Tiers: `"> 1%"`, `"<= 10"`, `"> 24h"`. A tier is breached when the observed
//! value satisfies its comparison.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

/// What the number of a tier is compared with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Unit {
    /// A count (or a plain value).
    Count,
    /// A share of the rows, in percent.
    Percent,
    /// A duration, in seconds.
    Seconds,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Threshold {
    pub op: Op,
    pub value: f64,
    pub unit: Unit,
    pub text: String,
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Threshold {
    pub(crate) fn parse(text: &str) -> Result<Threshold, String> {
        let t = text.trim();
        let (op, rest) = [
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("!=", Op::Ne),
            (">", Op::Gt),
            ("<", Op::Lt),
            ("=", Op::Eq),
        ]
        .iter()
        .find_map(|(s, op)| t.strip_prefix(s).map(|rest| (*op, rest.trim())))
        .ok_or_else(|| format!("`{text}` should start with >, >=, <, <=, = or !="))?;
        let (value, unit) = if let Some(pct) = rest.strip_suffix('%') {
            (pct.trim().parse::<f64>().ok(), Unit::Percent)
        } else if let Ok(v) = rest.parse::<f64>() {
            (Some(v), Unit::Count)
        } else {
            (
                humantime::parse_duration(rest).ok().map(|d| d.as_secs_f64()),
                Unit::Seconds,
            )
        };
        let value = value
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("`{text}`: expected a number, a percent (`1%`) or a duration (`24h`)"))?;
        Ok(Threshold {
            op,
            value,
            unit,
            text: t.to_string(),
        })
    }

    /// Whether `observed` (in this threshold's unit) breaches the tier.
    pub(crate) fn breached(&self, observed: f64) -> bool {
        let v = self.value;
        match self.op {
            Op::Gt => observed > v,
            Op::Ge => observed >= v,
            Op::Lt => observed < v,
            Op::Le => observed <= v,
            Op::Eq => observed == v,
            Op::Ne => observed != v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_counts_percents_and_durations() {
        let t = Threshold::parse("> 1%").unwrap();
        assert_eq!((t.op, t.value, t.unit), (Op::Gt, 1.0, Unit::Percent));
        assert_eq!(Threshold::parse("<1").unwrap().unit, Unit::Count);
        let d = Threshold::parse(">= 24h").unwrap();
        assert_eq!((d.op, d.value, d.unit), (Op::Ge, 86_400.0, Unit::Seconds));
        for bad in ["1%", "> lots", "> ", "~ 3"] {
            assert!(Threshold::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn breach_is_the_comparison() {
        let t = Threshold::parse("> 0").unwrap();
        assert!(!t.breached(0.0));
        assert!(t.breached(1.0));
        assert!(Threshold::parse("< 1").unwrap().breached(0.0));
    }
}
