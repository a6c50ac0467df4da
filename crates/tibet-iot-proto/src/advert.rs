//! The route advertisement a routing node's heartbeat carries under the
//! payload key [`ROUTES_KEY`] (docs/PROTOCOL.md, "Route advertisements").
//!
//! Written as text: `"<hops> <key> <hops> <key> ..."`, one space between
//! tokens (`"1 jis:c:b9:n7 255 jis:c:b12:*"`). A route key is a DID or an
//! area key, and neither holds whitespace (`tibet_ping::ids::check_did`), so
//! the text splits without escapes. Earlier versions wrote a map
//! (`{"<key>": hops}`); both forms are read.
//!
//! Why text and not the map: a receiver's codec decodes a map into one
//! string and one value per entry (an allocation each, up to
//! [`MAX_ADVERTISED`] per heartbeat), and every neighbour's copy of a map
//! costs as much again; the text is one string whichever its length, read
//! in place ([`Advert::entries`]). In the 10,000-node simulation the map's
//! decoding and copies were a fifth of all CPU (docs/PERFORMANCE-HISTORY.md).

use alloc::string::String;

use serde_json::Value as JsonValue;
use tibet_ping::JsonMap;

/// Payload key of a heartbeat carrying route advertisements (an extension;
/// peers that do not route ignore unknown payload keys).
pub const ROUTES_KEY: &str = "routes";
/// Payload key (value `true`) of a one-way triggered update: a heartbeat
/// that carries only changed routes between rounds and wants no answer (an
/// extension; the reference, which ignores unknown keys, answers it as any
/// heartbeat). Updates to a neighbour heard within the request timeout
/// are one-way: a mesh coming up sends many, and their answers nearly
/// doubled its datagrams to say that neighbours heard moments ago are there
/// (docs/PROTOCOL.md, "Route advertisements").
pub const ONE_WAY_KEY: &str = "one_way";
/// Most entries one advertisement carries, and most entries read from one.
pub const MAX_ADVERTISED: usize = 256;

/// An advertisement as written: its text, built entry by entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdvertText(String);

impl AdvertText {
    /// An empty advertisement ("I route, send me yours").
    pub fn new() -> Self {
        AdvertText(String::new())
    }

    /// An empty advertisement with room for `bytes` of text.
    pub fn with_capacity(bytes: usize) -> Self {
        AdvertText(String::with_capacity(bytes))
    }

    /// Appends the route `key` at `hops` links.
    pub fn push(&mut self, key: &str, hops: u32) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        // itoa: a round writes an entry per route per neighbour, and
        // `write!` goes through the formatting machinery for each.
        self.0.push_str(itoa::Buffer::new().format(hops));
        self.0.push(' ');
        self.0.push_str(key);
    }

    /// The text as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether it advertises nothing.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The hop count advertised for `key` (its first entry), if any.
    pub fn get(&self, key: &str) -> Option<u32> {
        Advert::Text(&self.0)
            .entries()
            .flatten()
            .find_map(|(k, h)| (k == key).then_some(h))
    }
}

impl From<AdvertText> for JsonValue {
    fn from(advert: AdvertText) -> JsonValue {
        JsonValue::String(advert.0)
    }
}

/// An advertisement as received: the text form, or the map form of earlier
/// versions.
#[derive(Clone, Copy, Debug)]
pub enum Advert<'a> {
    /// `"<hops> <key> ..."`.
    Text(&'a str),
    /// `{"<key>": hops, ...}`.
    Map(&'a JsonMap),
}

impl<'a> Advert<'a> {
    /// The advertisement a payload value holds: a string or a map; anything
    /// else is none (the sender does not advertise routes).
    pub fn from_value(value: &'a JsonValue) -> Option<Self> {
        match value {
            JsonValue::String(s) => Some(Advert::Text(s)),
            JsonValue::Object(m) => Some(Advert::Map(m)),
            _ => None,
        }
    }

    /// About how many entries it holds (a capacity hint: exact for the map,
    /// the count of spaces halved for the text).
    pub fn len_hint(self) -> usize {
        match self {
            Advert::Text(s) => s.bytes().filter(|&b| b == b' ').count().div_ceil(2),
            Advert::Map(m) => m.len(),
        }
    }

    /// Its entries in order: `Some((key, hops))`, or `None` for one that is
    /// malformed (a hop count that is not a number in `u32`, a key without
    /// a hop count). Reads in place: nothing is allocated.
    pub fn entries(self) -> Entries<'a> {
        match self {
            Advert::Text(s) => Entries::Text(s.split_ascii_whitespace()),
            Advert::Map(m) => Entries::Map(m.iter()),
        }
    }
}

/// The entries of an [`Advert`] ([`Advert::entries`]).
#[derive(Debug)]
pub enum Entries<'a> {
    /// Of the text form.
    Text(core::str::SplitAsciiWhitespace<'a>),
    /// Of the map form.
    Map(serde_json::map::Iter<'a>),
}

impl<'a> Iterator for Entries<'a> {
    type Item = Option<(&'a str, u32)>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Entries::Text(tokens) => {
                let hops = tokens.next()?;
                let Some(key) = tokens.next() else {
                    return Some(None);
                };
                Some(hops.parse::<u32>().ok().map(|h| (key, h)))
            }
            Entries::Map(entries) => {
                let (key, hops) = entries.next()?;
                let hops = hops.as_u64().and_then(|h| u32::try_from(h).ok());
                Some(hops.map(|h| (key.as_str(), h)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn read(v: &JsonValue) -> Vec<Option<(&str, u32)>> {
        Advert::from_value(v).unwrap().entries().collect()
    }

    #[test]
    fn text_is_written_and_read_back_in_order() {
        let mut a = AdvertText::new();
        assert!(a.is_empty());
        a.push("jis:c:b9:n7", 1);
        a.push("jis:c:b12:*", 64);
        a.push("jis:c:b9:n8", 0);
        assert_eq!(a.as_str(), "1 jis:c:b9:n7 64 jis:c:b12:* 0 jis:c:b9:n8");
        assert_eq!(a.get("jis:c:b12:*"), Some(64));
        assert_eq!(a.get("jis:c:b9:n1"), None);
        let v = JsonValue::from(a);
        assert_eq!(
            read(&v),
            [
                Some(("jis:c:b9:n7", 1)),
                Some(("jis:c:b12:*", 64)),
                Some(("jis:c:b9:n8", 0))
            ]
        );
    }

    #[test]
    fn the_map_of_earlier_versions_is_read_too() {
        let v: JsonValue = serde_json::from_str(r#"{"jis:a":3,"jis:b":"far","jis:c":-1}"#).unwrap();
        assert_eq!(read(&v), [Some(("jis:a", 3)), None, None]);
        assert!(Advert::from_value(&JsonValue::from(5)).is_none());
        assert!(Advert::from_value(&JsonValue::Null).is_none());
    }

    #[test]
    fn malformed_text_entries_are_flagged_not_guessed() {
        let v = JsonValue::from("3 jis:a far jis:b -1 jis:c 4294967296 jis:d  \t 2  jis:e 7");
        assert_eq!(
            read(&v),
            [
                Some(("jis:a", 3)),
                None,
                None,
                None,
                Some(("jis:e", 2)),
                None
            ],
            "a bad count, a negative one, one beyond u32, then a trailing count without its key"
        );
        assert!(read(&JsonValue::from("")).is_empty());
        assert!(read(&JsonValue::from("   ")).is_empty());
    }

    proptest! {
        #[test]
        fn any_entries_written_are_read_back(
            entries in proptest::collection::vec(("jis:[a-z0-9:*]{1,20}", any::<u32>()), 0..50)
        ) {
            let mut a = AdvertText::new();
            for (k, h) in &entries {
                a.push(k, *h);
            }
            let v = JsonValue::from(a);
            let got: Vec<(String, u32)> = read(&v)
                .into_iter()
                .map(|e| e.map(|(k, h)| (String::from(k), h)).unwrap())
                .collect();
            prop_assert_eq!(got, entries);
        }

        #[test]
        fn any_text_is_read_without_panic_and_within_its_tokens(text in "\\PC{0,200}") {
            let v = JsonValue::from(text.as_str());
            let tokens = text.split_ascii_whitespace().count();
            prop_assert!(read(&v).len() <= tokens.div_ceil(2));
        }
    }
}
