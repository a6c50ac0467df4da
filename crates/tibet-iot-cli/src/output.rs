//! Formatting for people: the seed's answer line, tables, numbers, and
//! [`safe`], the one escape for every string that came from the network.

use tibet_ping::PingResponse;

/// The most characters of one network string shown on a terminal or in a
/// log line; longer strings are cut and end in `…`.
pub(crate) const MAX_SHOWN_CHARS: usize = 120;

/// A string from the network made safe to print: control characters
/// (ESC, CR, LF, DEL, C1 controls, ...) and Unicode direction overrides are
/// written as `\u{..}`, a backslash as `\\`, and the result holds at most
/// [`MAX_SHOWN_CHARS`] characters of the input, then `…`. A sender can thus
/// never move the cursor, recolour, or forge another line on the operator's
/// terminal or in a log.
pub(crate) fn safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_SHOWN_CHARS * 2));
    for (i, c) in s.chars().enumerate() {
        if i == MAX_SHOWN_CHARS {
            out.push('…');
            break;
        }
        if c == '\\' {
            out.push_str("\\\\");
        } else if c.is_control() || is_bidi_control(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// Unicode characters that reorder how a line is displayed.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A float as Python's `repr` prints the common cases: `0.95`, `1.0`, `0.0`.
pub(crate) fn py_float(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e16 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// Milliseconds with three decimals, as in `RTT: 0.383ms`.
pub(crate) fn ms(d: std::time::Duration) -> String {
    format!("{:.3}ms", d.as_secs_f64() * 1000.0)
}

/// The seed's answer line: `GROEN — trust: 0.95 — RTT: 0.383ms`.
pub(crate) fn answer_line(r: &PingResponse, rtt: std::time::Duration) -> String {
    format!(
        "{} — trust: {} — RTT: {}",
        r.airlock_zone,
        py_float(r.trust_score),
        ms(rtt)
    )
}

/// Prints rows under a header, columns padded to their widest cell.
pub(crate) fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    print!("{}", render_table(header, rows));
}

/// The text of [`table`].
pub(crate) fn render_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == N {
                l.push_str(cell);
            } else {
                l.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_python() {
        assert_eq!(py_float(0.95), "0.95");
        assert_eq!(py_float(1.0), "1.0");
        assert_eq!(py_float(0.0), "0.0");
        assert_eq!(py_float(0.63), "0.63");
    }

    #[test]
    fn tables_align() {
        let t = render_table(
            &["A", "BB"],
            &[["xyz".into(), "1".into()], ["q".into(), "22".into()]],
        );
        assert_eq!(t, "A    BB\nxyz  1\nq    22\n");
    }

    #[test]
    fn network_strings_are_escaped_and_capped() {
        assert_eq!(safe("jis:home:hub"), "jis:home:hub");
        assert_eq!(safe("a\x1b[2Kb\rc\nd"), "a\\u{1b}[2Kb\\u{d}c\\u{a}d");
        assert_eq!(safe("\u{7f}\u{9b}"), "\\u{7f}\\u{9b}");
        assert_eq!(safe("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(
            safe("a\\u{1b}"),
            "a\\\\u{1b}",
            "a typed escape is not a real one"
        );
        let long = "é".repeat(500);
        let shown = safe(&long);
        assert_eq!(shown.chars().count(), MAX_SHOWN_CHARS + 1);
        assert!(shown.ends_with('…'));
        assert_eq!(
            safe(&"x".repeat(MAX_SHOWN_CHARS)),
            "x".repeat(MAX_SHOWN_CHARS)
        );
    }

    #[test]
    fn ms_three_decimals() {
        assert_eq!(ms(std::time::Duration::from_micros(383)), "0.383ms");
    }
}
