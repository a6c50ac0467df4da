//! Python-compatible JSON text: what `json.dumps(v)`,
//! `json.dumps(v, sort_keys=True)` and, with compact separators,
//! `json.dumps(v, sort_keys=True, separators=(",", ":"))` print, byte for byte.
//!
//! Two users: provenance tokens in `tibet-core` (default separators; their
//! `content_hash` covers this text) and the Ed25519 signing input of packets
//! and responses (compact separators, sorted keys; docs/PROTOCOL.md section 6).
//!
//! Why by hand: a token's `content_hash` is the SHA-256 of the exact bytes
//! Python's `json.dumps(d, sort_keys=True, default=str)` produces, and no
//! Rust crate reproduces that output. `serde_json` differs in separators
//! (`,` vs `", "`), in escaping (it writes non-ASCII as UTF-8, Python writes
//! `\uXXXX` with surrogate pairs) and in floats (Rust prints `1e-5` or
//! `0.00001`, Python prints `1e-05`; Rust `1e16` is `10000000000000000`,
//! Python's is `1e+16`). Any one byte of difference breaks interop, so the
//! serialiser lives here, small and tested against the real interpreter.
//!
//! The rules reproduced (CPython 3.11, `ensure_ascii=True`, separators
//! `", "` and `": "` by default, `","` and `":"` in [`Style::compact`]):
//! - strings: `"` and `\` escaped, `\b \f \n \r \t` short escapes, every
//!   other character outside `' '..='~'` as `\u` + 4 lowercase hex digits,
//!   characters above U+FFFF as a UTF-16 surrogate pair;
//! - floats: Python's `repr`: the shortest digits that round-trip, fixed
//!   notation when the decimal exponent is in `-4..16` (with `.0` added to
//!   whole numbers), otherwise `d.ddde±XX` (sign always, two digits at least);
//! - integers: in full decimal, whatever their size (the workspace's
//!   `serde_json` keeps a number's text, `arbitrary_precision`), `-0` as `0`;
//! - objects: keys in insertion order, or sorted by code point when asked
//!   (Rust's byte order of UTF-8 strings is code point order).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use serde_json::{Number, Value};

/// How `json.dumps` was called: key order and separators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Style {
    /// `sort_keys=True`: object keys sorted by code point.
    pub sort_keys: bool,
    /// `separators=(",", ":")` instead of the default `(", ", ": ")`.
    pub compact: bool,
}

impl Style {
    /// `json.dumps(v, sort_keys=sort_keys)`: default separators.
    pub const fn python(sort_keys: bool) -> Self {
        Style {
            sort_keys,
            compact: false,
        }
    }

    /// `json.dumps(v, sort_keys=True, separators=(",", ":"))`: the signing input form.
    pub const fn compact() -> Self {
        Style {
            sort_keys: true,
            compact: true,
        }
    }

    fn item_sep(self) -> &'static [u8] {
        if self.compact { b"," } else { b", " }
    }

    fn key_sep(self) -> &'static [u8] {
        if self.compact { b":" } else { b": " }
    }
}

/// Appends `json.dumps(value, ...)` of `value` to `out`, as `style` says.
pub fn write_value(out: &mut Vec<u8>, value: &Value, style: Style) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(style.item_sep());
                }
                write_value(out, item, style);
            }
            out.push(b']');
        }
        Value::Object(map) => write_map(out, map, style),
    }
}

/// Appends a JSON object (see [`write_value`]).
pub fn write_map(out: &mut Vec<u8>, map: &serde_json::Map<String, Value>, style: Style) {
    out.push(b'{');
    if style.sort_keys && map.len() > 1 {
        let mut entries: Vec<(&String, &Value)> = map.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        write_entries(out, entries.into_iter(), style);
    } else {
        write_entries(out, map.iter(), style);
    }
    out.push(b'}');
}

fn write_entries<'a>(
    out: &mut Vec<u8>,
    entries: impl Iterator<Item = (&'a String, &'a Value)>,
    style: Style,
) {
    for (i, (k, v)) in entries.enumerate() {
        if i > 0 {
            out.extend_from_slice(style.item_sep());
        }
        write_str(out, k);
        out.extend_from_slice(style.key_sep());
        write_value(out, v, style);
    }
}

/// Bytes copied as they are: printable ASCII except `"` and `\\`.
const PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0x20;
    while b < 0x7f {
        t[b] = b != b'"' as usize && b != b'\\' as usize;
        b += 1;
    }
    t
};

/// Appends a JSON string literal with Python's `ensure_ascii` escaping.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    fn unicode_escape(out: &mut Vec<u8>, unit: u16) {
        out.extend_from_slice(&[
            b'\\',
            b'u',
            HEX[usize::from(unit >> 12)],
            HEX[usize::from((unit >> 8) & 0xf)],
            HEX[usize::from((unit >> 4) & 0xf)],
            HEX[usize::from(unit & 0xf)],
        ]);
    }
    out.push(b'"');
    let bytes = s.as_bytes();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        let b = bytes[i];
        if PLAIN[usize::from(b)] {
            i += 1;
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if b < 0x80 {
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x0c => out.extend_from_slice(b"\\f"),
                _ => unicode_escape(out, u16::from(b)),
            }
            i += 1;
        } else {
            // `i` is a char boundary: plain bytes and escapes advance by
            // whole characters.
            let c = s[i..].chars().next().unwrap_or('\u{fffd}');
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                unicode_escape(out, *unit);
            }
            i += c.len_utf8();
        }
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Appends what Python prints for the JSON number `n` after `json.loads`:
/// an integer literal is a Python `int` of any size, printed in full; a
/// literal with a fraction or exponent is a `float` (correctly rounded,
/// infinite beyond the double range), printed as its `repr`.
pub fn write_number(out: &mut Vec<u8>, n: &Number) {
    // The workspace's `serde_json` keeps each number as its JSON text
    // (`arbitrary_precision`): `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    let text = n.as_str();
    if text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) {
        // Rust's parse rounds correctly like Python's `float()`; an
        // out-of-range literal gives infinity, as it does in Python.
        write_float(out, text.parse().unwrap_or(f64::NAN));
    } else if text == "-0" {
        out.push(b'0');
    } else {
        // JSON forbids leading zeros, so the literal is already canonical.
        out.extend_from_slice(text.as_bytes());
    }
}

/// Appends Python's `repr(f)` of a finite float (`NaN`/`Infinity` as
/// `json.dumps` writes them, though JSON values never hold them).
pub fn write_float(out: &mut Vec<u8>, f: f64) {
    if f.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if f.is_infinite() {
        out.extend_from_slice(if f > 0.0 { b"Infinity" } else { b"-Infinity" });
        return;
    }
    // `{:e}` gives the shortest round-trip digit count as `d.ddde<exp>`,
    // but on a tie between two such strings it may pick the upper one;
    // Python's repr takes the correctly rounded one (ties to even), which
    // the exact `{:.N$e}` formatting gives for that digit count.
    let shortest = format!("{f:e}");
    let digit_count = shortest
        .split('e')
        .next()
        .unwrap_or_default()
        .bytes()
        .filter(u8::is_ascii_digit)
        .count();
    let sci = format!("{f:.*e}", digit_count.saturating_sub(1));
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if negative {
        out.push(b'-');
    }
    if !(-4..16).contains(&exp) {
        out.extend_from_slice(mantissa.as_bytes());
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        out.extend_from_slice(format!("{:02}", exp.unsigned_abs()).as_bytes());
    } else if exp < 0 {
        out.extend_from_slice(b"0.");
        for _ in 0..(-exp - 1) {
            out.push(b'0');
        }
        out.extend_from_slice(digits.as_bytes());
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.extend_from_slice(digits.as_bytes());
            for _ in digits.len()..int_len {
                out.push(b'0');
            }
            out.extend_from_slice(b".0");
        } else {
            out.extend_from_slice(&digits.as_bytes()[..int_len]);
            out.push(b'.');
            out.extend_from_slice(&digits.as_bytes()[int_len..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dumps(v: &Value, sort: bool) -> String {
        let mut out = Vec::new();
        write_value(&mut out, v, Style::python(sort));
        String::from_utf8(out).unwrap()
    }

    fn float(f: f64) -> String {
        let mut out = Vec::new();
        write_float(&mut out, f);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn floats_print_like_python_repr() {
        let cases = [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (21.5, "21.5"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1e15, "1000000000000000.0"),
            (123456789012345.6, "123456789012345.6"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (-2.5e-7, "-2.5e-07"),
            (1e100, "1e+100"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            // A tie between two shortest strings: Python rounds to even.
            (-(20413271056098.0 + 13.0 / 16.0), "-20413271056098.812"),
            (0.3, "0.3"),
            (2.0 / 3.0, "0.6666666666666666"),
        ];
        for (f, want) in cases {
            assert_eq!(float(f), want, "repr of {f:e}");
        }
    }

    #[test]
    fn strings_escape_like_ensure_ascii() {
        let s = "a\"b\\c\n\r\t\u{8}\u{c}\u{1}\u{7f} é € 😀 z";
        assert_eq!(
            dumps(&json!(s), false),
            r#""a\"b\\c\n\r\t\b\f\u0001\u007f \u00e9 \u20ac \ud83d\ude00 z""#
        );
    }

    #[test]
    fn objects_sort_by_code_point_and_use_python_separators() {
        let v = json!({"b": 1, "a": [1, 2.5, null, true], "é": {"z": false, "B": "x"}, "Z": {}});
        assert_eq!(
            dumps(&v, true),
            r#"{"Z": {}, "a": [1, 2.5, null, true], "b": 1, "\u00e9": {"B": "x", "z": false}}"#
        );
        assert_eq!(
            dumps(&v, false),
            r#"{"b": 1, "a": [1, 2.5, null, true], "\u00e9": {"z": false, "B": "x"}, "Z": {}}"#
        );
    }

    #[test]
    fn integers_at_the_edges() {
        assert_eq!(dumps(&json!(i64::MIN), false), "-9223372036854775808");
        assert_eq!(dumps(&json!(u64::MAX), false), "18446744073709551615");
    }

    fn reparse(text: &str) -> String {
        let v: Value = serde_json::from_str(text).unwrap();
        dumps(&v, true)
    }

    #[test]
    fn integers_of_any_size_stay_exact() {
        // 2**64, 2**70, -2**64-1, 10**40: Python ints, printed in full.
        for text in [
            "18446744073709551616",
            "1180591620717411303424",
            "-18446744073709551617",
            "10000000000000000000000000000000000000000",
        ] {
            assert_eq!(reparse(text), text);
        }
        assert_eq!(
            reparse(r#"{"b": [-9223372036854775809], "a": 18446744073709551616}"#),
            r#"{"a": 18446744073709551616, "b": [-9223372036854775809]}"#
        );
        // Python's json.loads("-0") is the int 0.
        assert_eq!(reparse("-0"), "0");
    }

    #[test]
    fn float_literals_print_as_the_python_float_they_read_as() {
        let cases = [
            ("1e-5", "1e-05"),
            ("1E2", "100.0"),
            ("2.50", "2.5"),
            ("-0.0", "-0.0"),
            ("10000000000000000.0", "1e+16"),
            ("0.1000000000000000055511151231257827", "0.1"),
            ("18446744073709551616.0", "1.8446744073709552e+19"),
            // Beyond the double range: Python reads inf, dumps prints Infinity.
            ("1e400", "Infinity"),
            ("-1e400", "-Infinity"),
        ];
        for (text, want) in cases {
            assert_eq!(reparse(text), want, "{text}");
        }
    }

    #[test]
    fn compact_style_drops_the_spaces() {
        let v = json!({"b": [1, {"y": 2, "x": 0.5}], "a": "\u{e9}"});
        let mut out = Vec::new();
        write_value(&mut out, &v, Style::compact());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":"\u00e9","b":[1,{"x":0.5,"y":2}]}"#
        );
    }
}
