//! Pass/fail thresholds on a run's figures, like k6's: `input_ack_ticks_p99<=2` names a key
//! of the run's JSON summary, a comparison and a number. They are parsed (and their keys
//! checked against the figures the command can produce) before the run, checked against the
//! summary after it, and any that fails makes the command exit non-zero, so CI can gate on a
//! load test.

use std::fmt;

/// Thresholds one command accepts.
pub const THRESHOLDS_MAX: usize = 64;

/// How a figure is compared with its bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    /// `<`
    Less,
    /// `<=`
    LessOrEqual,
    /// `>`
    Greater,
    /// `>=`
    GreaterOrEqual,
    /// `==`
    Equal,
}

impl Comparison {
    fn symbol(self) -> &'static str {
        match self {
            Self::Less => "<",
            Self::LessOrEqual => "<=",
            Self::Greater => ">",
            Self::GreaterOrEqual => ">=",
            Self::Equal => "==",
        }
    }

    fn holds(self, actual: f64, bound: f64) -> bool {
        match self {
            Self::Less => actual < bound,
            Self::LessOrEqual => actual <= bound,
            Self::Greater => actual > bound,
            Self::GreaterOrEqual => actual >= bound,
            Self::Equal => actual == bound,
        }
    }
}

/// One threshold: `key`, comparison, bound.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    /// The summary key it reads.
    pub key: String,
    /// How the figure must compare with the bound.
    pub comparison: Comparison,
    /// The bound.
    pub bound: f64,
}

/// Why a threshold cannot be used.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ThresholdError {
    /// Not of the form `key<op>number`.
    #[error("threshold {0:?} is not of the form key<op>number with op one of <, <=, >, >=, ==")]
    Syntax(String),
    /// The bound is not a finite number.
    #[error("threshold {0:?}: the bound is not a finite number")]
    Bound(String),
    /// The command produces no figure of that name.
    #[error("threshold {key:?}: no such figure; this command reports {known}")]
    UnknownKey {
        /// The key asked for.
        key: String,
        /// The keys the command reports, comma-separated.
        known: String,
    },
    /// More than [`THRESHOLDS_MAX`].
    #[error("at most {THRESHOLDS_MAX} thresholds")]
    TooMany,
}

impl std::str::FromStr for Threshold {
    type Err = ThresholdError;
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let spec = spec.trim();
        // Two-character operators first, so `<=` is not read as `<` and `=...`.
        let ops = [
            ("<=", Comparison::LessOrEqual),
            (">=", Comparison::GreaterOrEqual),
            ("==", Comparison::Equal),
            ("<", Comparison::Less),
            (">", Comparison::Greater),
        ];
        let (at, op, comparison) = ops
            .iter()
            .filter_map(|(op, c)| spec.find(op).map(|at| (at, *op, *c)))
            .min_by_key(|(at, op, _)| (*at, std::cmp::Reverse(op.len())))
            .ok_or_else(|| ThresholdError::Syntax(spec.into()))?;
        let key = spec[..at].trim();
        let bound = spec[at + op.len()..].trim();
        let key_ok = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !key_ok || bound.is_empty() {
            return Err(ThresholdError::Syntax(spec.into()));
        }
        let bound: f64 = bound.parse().map_err(|_| ThresholdError::Syntax(spec.into()))?;
        if !bound.is_finite() {
            return Err(ThresholdError::Bound(spec.into()));
        }
        Ok(Self { key: key.into(), comparison, bound })
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.key, self.comparison.symbol(), self.bound)
    }
}

/// Checks that there are not too many thresholds and that every one names a figure in `known`.
pub fn check_keys<'a>(
    thresholds: &[Threshold],
    known: impl IntoIterator<Item = &'a str> + Clone,
) -> Result<(), ThresholdError> {
    if thresholds.len() > THRESHOLDS_MAX {
        return Err(ThresholdError::TooMany);
    }
    for t in thresholds {
        if !known.clone().into_iter().any(|k| k == t.key) {
            let mut keys: Vec<&str> = known.clone().into_iter().collect();
            keys.sort_unstable();
            return Err(ThresholdError::UnknownKey { key: t.key.clone(), known: keys.join(", ") });
        }
    }
    Ok(())
}

/// A threshold checked against a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// The threshold.
    pub threshold: Threshold,
    /// The figure the run produced (`None`: missing or not a number, which fails).
    pub actual: Option<f64>,
    /// Whether it held.
    pub passed: bool,
}

/// Checks every threshold against the summary (a JSON object of figures). A figure that is
/// missing or not a number fails its threshold; a boolean counts as 0 or 1.
pub fn verdicts(thresholds: &[Threshold], summary: &serde_json::Map<String, serde_json::Value>) -> Vec<Verdict> {
    thresholds
        .iter()
        .map(|t| {
            let actual = summary.get(&t.key).and_then(|v| v.as_f64().or_else(|| v.as_bool().map(f64::from)));
            let passed = actual.is_some_and(|a| t.comparison.holds(a, t.bound));
            Verdict { threshold: t.clone(), actual, passed }
        })
        .collect()
}

/// The verdicts as table lines (`  PASS  input_ack_ticks_p99<=2  (1.45)`).
pub fn table(verdicts: &[Verdict]) -> String {
    let mut out = String::new();
    for v in verdicts {
        let actual = v.actual.map_or_else(|| "missing".to_owned(), |a| format!("{a}"));
        out.push_str(&format!(
            "  {:<4}  {:<40} (was {actual})\n",
            if v.passed { "PASS" } else { "FAIL" },
            v.threshold.to_string()
        ));
    }
    out
}

/// The verdicts as JSON, for the summary line and the report.
pub fn json(verdicts: &[Verdict]) -> serde_json::Value {
    verdicts
        .iter()
        .map(|v| {
            serde_json::json!({
                "threshold": v.threshold.to_string(),
                "actual": v.actual,
                "passed": v.passed,
            })
        })
        .collect::<Vec<_>>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_parse_and_refuse_what_is_not_one() {
        let t: Threshold = "input_ack_ticks_p99<=2".parse().unwrap();
        assert_eq!((t.key.as_str(), t.comparison, t.bound), ("input_ack_ticks_p99", Comparison::LessOrEqual, 2.0));
        assert_eq!(" disconnects == 0 ".parse::<Threshold>().unwrap().comparison, Comparison::Equal);
        assert_eq!("joined>=990".parse::<Threshold>().unwrap().comparison, Comparison::GreaterOrEqual);
        assert_eq!("tick_ms_p99<33.5".parse::<Threshold>().unwrap().bound, 33.5);
        assert_eq!("moved>-1e3".parse::<Threshold>().unwrap().bound, -1000.0);
        for bad in ["", "p99", "<=2", "p99<=", "p99<=x", "p 99<=2", "p99=2", "p99<=2<=3", "a-b<1"] {
            assert!(matches!(bad.parse::<Threshold>(), Err(ThresholdError::Syntax(_))), "{bad:?}");
        }
        assert!(matches!("p99<=inf".parse::<Threshold>(), Err(ThresholdError::Bound(_))));
        assert!(matches!("p99<=NaN".parse::<Threshold>(), Err(ThresholdError::Bound(_))));
    }

    #[test]
    fn verdicts_pass_fail_and_missing_figures_fail() {
        let summary: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"a": 2.0, "b": 3, "ok": true, "s": "text"}"#).unwrap();
        let ts: Vec<Threshold> =
            ["a<=2", "a<2", "b>2", "b==3", "ok==1", "s<1", "zz<1"].iter().map(|s| s.parse().unwrap()).collect();
        let v = verdicts(&ts, &summary);
        assert_eq!(v.iter().map(|v| v.passed).collect::<Vec<_>>(), [true, false, true, true, true, false, false]);
        assert_eq!(v[6].actual, None);
        assert!(table(&v).contains("FAIL  a<2"), "{}", table(&v));
        assert_eq!(json(&v)[1]["passed"], false);
        assert!(check_keys(&ts[..4], ["a", "b"]).is_ok());
        assert!(matches!(check_keys(&ts, ["a", "b"]), Err(ThresholdError::UnknownKey { .. })));
        let many = vec![ts[0].clone(); THRESHOLDS_MAX + 1];
        assert_eq!(check_keys(&many, ["a"]), Err(ThresholdError::TooMany));
    }
}
