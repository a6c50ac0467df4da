//! Formatting for people: the seed's answer line, tables, numbers.

use tibet_ping::PingResponse;

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
    fn ms_three_decimals() {
        assert_eq!(ms(std::time::Duration::from_micros(383)), "0.383ms");
    }
}
