//! The one input member that can be megabytes: UploadLayerPart's `layerPartBlob`, ~13 MiB of
//! base64 per part. Parsing it into a `String` made the emulator scan it for escapes byte by
//! byte, check it as UTF-8 and copy it. When the body has no backslash (so every `"` delimits a
//! string) and names the member once, its value is found with `memchr` and left in place; the
//! rest of the body, with that value emptied, is parsed as usual. Anything else falls back to
//! the ordinary parse. The value itself is checked by whoever decodes it (base64 refuses any
//! byte a JSON string could not hold raw). Only finds; `Input` decides what the value means.

use std::ops::Range;

/// The member whose value is located in place instead of parsed.
pub const LARGE_MEMBER: &str = "layerPartBlob";

/// Where the string value of `key` lies in `body`, and `body` with that value emptied. `None`
/// when the fast path does not apply (a backslash anywhere, no such top-level key or more than
/// one, not a string value).
pub fn split_out(body: &[u8], key: &str) -> Option<(Range<usize>, Vec<u8>)> {
    let needle = format!("\"{key}\"");
    let at = memchr::memmem::find(body, needle.as_bytes())?;
    if !top_level(&body[..at]) {
        return None; // inside a string or a nested object: not a member of the input
    }
    let skip_ws = |mut i: usize| {
        while body.get(i).is_some_and(|b| b" \t\r\n".contains(b)) {
            i += 1;
        }
        i
    };
    let colon = skip_ws(at + needle.len());
    if body.get(colon) != Some(&b':') {
        return None;
    }
    let open = skip_ws(colon + 1);
    if body.get(open) != Some(&b'"') {
        return None;
    }
    let start = open + 1;
    let end = start + memchr::memchr2(b'"', b'\\', &body[start..])?;
    if body[end] != b'"' {
        return None; // an escape in the value
    }
    let mut rest = Vec::with_capacity(body.len() - (end - start));
    rest.extend_from_slice(&body[..start]);
    rest.extend_from_slice(&body[end..]);
    // The rest is parsed the ordinary way; it must not be able to name the member again (a
    // duplicate key, or the key spelt with escapes), where a parser would keep the last one.
    if memchr::memchr(b'\\', &rest).is_some()
        || memchr::memmem::find_iter(&rest, needle.as_bytes()).count() != 1
    {
        return None;
    }
    Some((start..end, rest))
}

/// Whether what follows `prefix` (without escapes) is outside any string and directly in the
/// top-level object.
fn top_level(prefix: &[u8]) -> bool {
    let (mut in_string, mut depth) = (false, 0i64);
    for &b in prefix {
        match b {
            b'"' => in_string = !in_string,
            b'{' | b'[' if !in_string => depth += 1,
            b'}' | b']' if !in_string => depth -= 1,
            _ => {}
        }
    }
    !in_string && depth == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(body: &str) -> Option<(String, String)> {
        split_out(body.as_bytes(), LARGE_MEMBER)
            .map(|(r, rest)| (body[r].to_string(), String::from_utf8(rest).expect("utf-8")))
    }

    #[test]
    fn the_value_is_found_in_place_wherever_the_member_is() {
        assert_eq!(
            split(r#"{"layerPartBlob":"eA==","uploadId":"u"}"#),
            Some((
                "eA==".into(),
                r#"{"layerPartBlob":"","uploadId":"u"}"#.into()
            ))
        );
        assert_eq!(
            split("{\"uploadId\":\"u\", \"layerPartBlob\" :\n \"eHk=\"}"),
            Some((
                "eHk=".into(),
                "{\"uploadId\":\"u\", \"layerPartBlob\" :\n \"\"}".into()
            ))
        );
    }

    #[test]
    fn unusual_bodies_take_the_ordinary_parse() {
        for body in [
            r#"{"layerPartBlob":"e\u0041=="}"#, // an escape in the value
            r#"{"uploadId":"\u0041","layerPartBlob":"eA=="}"#, // an escape before it
            r#"{"uploadId":"\"layerPartBlob\":\"x\""}"#, // escaped quotes: ordinary parse
            r#"{"uploadId":"layerPartBlob","x":"y"}"#, // a value, not a key
            r#"{"layerPartBlob":12}"#,          // not a string
            r#"{"uploadId":"u"}"#,              // absent
            r#"{"layerPartBlob":"unterminated"#, // no closing quote
        ] {
            assert_eq!(split(body), None, "{body}");
        }
        // Not a member of the top-level object.
        assert_eq!(split(r#"{"a":"b "layerPartBlob":"x"}"#), None);
        assert_eq!(
            split(r#"{"a":{"layerPartBlob":"x"},"layerPartBlob":""}"#),
            None
        );
        assert_eq!(split(r#"{"a":["{",{"layerPartBlob":"x"}]}"#), None);
        assert!(split(r#"{"a":["}"],"layerPartBlob":"x"}"#).is_some());
        // The member named again, plainly or with escapes: a parser keeps the last one.
        for body in [
            r#"{"layerPartBlob":"AAAA","layerPartBlob":""}"#,
            r#"{"layerPartBlob":"AAAA","layerPartBl\u006fb":""}"#,
            r#"{"layerPartBlob":"eA==","uploadId":"\u0041"}"#,
        ] {
            assert_eq!(split(body), None, "{body}");
        }
    }
}
