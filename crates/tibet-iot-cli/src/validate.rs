//! Checks shared by the config file and the command-line flags: a DID and a
//! trust score. Each error is one line that names the bad input and says
//! what is expected.

/// Checks a JIS DID: `jis:` followed by one or more non-empty `:`-separated
/// segments without whitespace or control characters (`jis:home:hub`).
pub fn did(s: &str) -> Result<(), String> {
    tibet_ping::ids::check_did(s)
}

/// Checks that a score is a finite number within 0..=1.
pub fn score(v: f64) -> Result<f64, String> {
    if v.is_finite() && (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is outside 0..1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dids_and_scores() {
        assert!(did("jis:home:hub").is_ok());
        for bad in ["home:hub", "jis:", "jis::a", "jis:a b", "jis:a\u{1b}"] {
            let e = did(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
        assert_eq!(score(0.5), Ok(0.5));
        for bad in [-0.1, 1.01, f64::NAN, f64::INFINITY] {
            assert!(score(bad).is_err(), "{bad}");
        }
    }
}
