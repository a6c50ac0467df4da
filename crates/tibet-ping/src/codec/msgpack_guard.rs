//! A structural pre-check of msgpack payloads, run before `rmp-serde` sees
//! untrusted bytes.
//!
//! `rmp-serde` passes an array's or map's declared length straight to
//! `size_hint`, and serde pre-allocates up to 1 MiB from it; it allows 1024
//! levels of nesting, deep enough to overflow a thread stack when each level
//! builds a `serde_json::Value`; it ignores bytes after the first value; and
//! it turns a string with invalid UTF-8 into a byte array. This walk, one
//! iterative pass without allocation, rejects all of that first: every length
//! prefix must fit in the bytes that remain (so every size hint is honest),
//! nesting stays within [`MAX_DEPTH`], strings are UTF-8, the payload is
//! exactly one value, and `bin`/`ext` values (which have no JSON form) are
//! refused.

/// Deepest nesting of arrays and maps accepted in a msgpack payload (the
/// outer map counts as 1); the same as `serde_json`'s recursion limit.
pub const MAX_DEPTH: usize = 128;

/// What the walk found wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GuardError {
    /// The bytes end inside a value.
    Eof,
    /// A length prefix claims more bytes or items than remain.
    LengthOverrun,
    /// Arrays and maps nest deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A string is not UTF-8.
    BadUtf8,
    /// A `bin` or `ext` value, or the reserved marker 0xc1.
    Unsupported(u8),
    /// Bytes follow the first complete value.
    Trailing,
}

impl core::fmt::Display for GuardError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            GuardError::Eof => f.write_str("unexpected end of msgpack data"),
            GuardError::LengthOverrun => f.write_str("length prefix exceeds the remaining bytes"),
            GuardError::TooDeep => write!(f, "nesting deeper than {MAX_DEPTH}"),
            GuardError::BadUtf8 => f.write_str("string is not valid UTF-8"),
            GuardError::Unsupported(m) => write!(
                f,
                "unsupported msgpack marker 0x{m:02x} (bin, ext or reserved)"
            ),
            GuardError::Trailing => f.write_str("trailing bytes after the msgpack value"),
        }
    }
}

/// What one marker introduces.
enum Item {
    /// Scalar data of this many bytes follows.
    Bytes(usize),
    /// A string body of this many bytes follows.
    Str(usize),
    /// A container of this many child values follows.
    Container(usize),
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&[u8], GuardError> {
        if n > self.remaining() {
            return Err(GuardError::Eof);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn len_prefix(&mut self, width: usize) -> Result<usize, GuardError> {
        let b = self.take(width)?;
        Ok(b.iter().fold(0usize, |acc, &x| (acc << 8) | usize::from(x)))
    }

    fn item(&mut self) -> Result<Item, GuardError> {
        let m = self.take(1)?[0];
        Ok(match m {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => Item::Bytes(0),
            0x80..=0x8f => Item::Container(2 * usize::from(m & 0x0f)),
            0x90..=0x9f => Item::Container(usize::from(m & 0x0f)),
            0xa0..=0xbf => Item::Str(usize::from(m & 0x1f)),
            0xcc | 0xd0 => Item::Bytes(1),
            0xcd | 0xd1 => Item::Bytes(2),
            0xca | 0xce | 0xd2 => Item::Bytes(4),
            0xcb | 0xcf | 0xd3 => Item::Bytes(8),
            0xd9 => Item::Str(self.len_prefix(1)?),
            0xda => Item::Str(self.len_prefix(2)?),
            0xdb => Item::Str(self.len_prefix(4)?),
            0xdc => Item::Container(self.len_prefix(2)?),
            0xdd => Item::Container(self.len_prefix(4)?),
            0xde => Item::Container(self.len_prefix(2)?.saturating_mul(2)),
            0xdf => Item::Container(self.len_prefix(4)?.saturating_mul(2)),
            // 0xc1 reserved; 0xc4..=0xc6 bin; 0xc7..=0xc9, 0xd4..=0xd8 ext.
            other => return Err(GuardError::Unsupported(other)),
        })
    }
}

/// Checks that `buf` is exactly one well-formed msgpack value within the
/// limits above.
pub(super) fn check(buf: &[u8]) -> Result<(), GuardError> {
    let mut cur = Cursor { buf, pos: 0 };
    // remaining[d] = values still to read in the container open at depth d;
    // depth 0 is the top level, which holds exactly one value.
    let mut remaining = [0usize; MAX_DEPTH + 1];
    remaining[0] = 1;
    let mut depth = 0usize;
    loop {
        while remaining[depth] == 0 {
            if depth == 0 {
                return if cur.remaining() == 0 {
                    Ok(())
                } else {
                    Err(GuardError::Trailing)
                };
            }
            depth -= 1;
        }
        remaining[depth] -= 1;
        match cur.item()? {
            Item::Bytes(n) => {
                cur.take(n)?;
            }
            Item::Str(n) => {
                if n > cur.remaining() {
                    return Err(GuardError::LengthOverrun);
                }
                let bytes = cur.take(n)?;
                // `is_ascii` is inlined and cheap on short keys; the full
                // check only runs on text with non-ASCII bytes.
                if !bytes.is_ascii() {
                    core::str::from_utf8(bytes).map_err(|_| GuardError::BadUtf8)?;
                }
            }
            Item::Container(children) => {
                // Every child takes at least one byte.
                if children > cur.remaining() {
                    return Err(GuardError::LengthOverrun);
                }
                if depth + 1 > MAX_DEPTH {
                    return Err(GuardError::TooDeep);
                }
                if children > 0 {
                    depth += 1;
                    remaining[depth] = children;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested_arrays(depth: usize) -> Vec<u8> {
        let mut v = vec![0x91; depth - 1];
        v.push(0x90);
        v
    }

    #[test]
    fn accepts_well_formed_values() {
        let v = rmp_serde::to_vec_named(&super::super::native::NativeValue(&serde_json::json!({
            "a": [1, -2, 3.5, null, true, "é🦀", {"b": u64::MAX, "c": i64::MIN}],
            "s": "x".repeat(300),
        })))
        .unwrap();
        assert_eq!(check(&v), Ok(()));
        assert_eq!(check(&[0x80]), Ok(()));
    }

    #[test]
    fn rejects_lengths_past_the_end() {
        // array32 claiming 4 billion items, map32 likewise, str32 likewise.
        assert_eq!(
            check(&[0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0]),
            Err(GuardError::LengthOverrun)
        );
        assert_eq!(
            check(&[0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0]),
            Err(GuardError::LengthOverrun)
        );
        assert_eq!(
            check(&[0xdb, 0xff, 0xff, 0xff, 0xff, b'a']),
            Err(GuardError::LengthOverrun)
        );
        // A map of 2 entries needs 4 values.
        assert_eq!(
            check(&[0x82, 0xc0, 0xc0, 0xc0]),
            Err(GuardError::LengthOverrun)
        );
        assert_eq!(check(&[0xcb, 0, 0]), Err(GuardError::Eof));
        assert_eq!(check(&[0xda, 0]), Err(GuardError::Eof));
        assert_eq!(check(&[]), Err(GuardError::Eof));
    }

    #[test]
    fn limits_depth() {
        assert_eq!(check(&nested_arrays(MAX_DEPTH)), Ok(()));
        assert_eq!(
            check(&nested_arrays(MAX_DEPTH + 1)),
            Err(GuardError::TooDeep)
        );
        assert_eq!(check(&nested_arrays(100_000)), Err(GuardError::TooDeep));
    }

    #[test]
    fn rejects_bad_utf8_bin_ext_reserved_and_trailing() {
        assert_eq!(check(&[0xa2, 0xc3, 0x28]), Err(GuardError::BadUtf8));
        assert_eq!(check(&[0xc4, 1, 0]), Err(GuardError::Unsupported(0xc4)));
        assert_eq!(check(&[0xd4, 1, 0]), Err(GuardError::Unsupported(0xd4)));
        assert_eq!(check(&[0xc1]), Err(GuardError::Unsupported(0xc1)));
        assert_eq!(check(&[0x80, 0x80]), Err(GuardError::Trailing));
    }
}
