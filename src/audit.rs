//! Audit: the seam between computing candidates and publishing them. Checks
//! run here over the candidate tables and decide the gate; nothing here ever
//! changes data.
//!
//! Until `checks/*.yaml` are read, one built-in check keeps an empty input
//! from replacing good marts (SPEC.md section 9: "an empty input is not an
//! error: the default `row_count` check fails the gate").

use crate::stage::StageCounts;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Error => "error",
        }
    }
}

/// The result of one check.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub name: String,
    pub table: String,
    pub status: Status,
    pub observed: f64,
    pub threshold: String,
}

/// All check results of a run; the gate passes when none failed or errored.
#[derive(Debug, Clone, Default)]
pub struct Gate {
    pub results: Vec<CheckResult>,
}

impl Gate {
    pub fn passed(&self) -> bool {
        self.results
            .iter()
            .all(|r| matches!(r.status, Status::Pass | Status::Warn))
    }

    pub fn failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.results
            .iter()
            .filter(|r| matches!(r.status, Status::Fail | Status::Error))
    }
}

/// Audits the candidates of a run.
pub fn audit(counts: &StageCounts) -> Gate {
    let staged = counts.staged as f64;
    Gate {
        results: vec![CheckResult {
            name: "row_count".into(),
            table: "staging.events".into(),
            status: if counts.staged < 1 {
                Status::Fail
            } else {
                Status::Pass
            },
            observed: staged,
            threshold: "fail: < 1".into(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_staging_fails_the_gate() {
        let empty = StageCounts::default();
        assert!(!audit(&empty).passed());
        let some = StageCounts {
            staged: 1,
            raw: 1,
            ..Default::default()
        };
        assert!(audit(&some).passed());
    }
}
