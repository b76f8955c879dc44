//! HTTP `Range: bytes=…` parsing for serving blobs (RFC 9110 §14): one range, resolved against a
//! known length. Several ranges are not supported and the header is then ignored (whole body),
//! which RFC 9110 allows. Pure functions.

/// What a `Range` header asks of a body of known length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable range: send everything (200).
    Full,
    /// Send bytes `start..=end` (206).
    Partial { start: u64, end: u64 },
    /// The range lies outside the body (416 with `Content-Range: bytes */len`).
    Unsatisfiable,
}

/// Resolve a `Range` header value against a body of `len` bytes.
pub fn resolve(header: Option<&str>, len: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    match (a.is_empty(), b.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => match parse(b) {
            Some(0) => RangeRequest::Unsatisfiable,
            Some(_) if len == 0 => RangeRequest::Unsatisfiable,
            Some(n) => RangeRequest::Partial {
                start: len.saturating_sub(n),
                end: len - 1,
            },
            None => RangeRequest::Full,
        },
        (false, _) => {
            let Some(start) = parse(a) else {
                return RangeRequest::Full;
            };
            let end = if b.is_empty() {
                Some(u64::MAX)
            } else {
                parse(b)
            };
            match end {
                None => RangeRequest::Full,
                Some(end) if end < start => RangeRequest::Full,
                Some(_) if start >= len => RangeRequest::Unsatisfiable,
                Some(end) => RangeRequest::Partial {
                    start,
                    end: end.min(len - 1),
                },
            }
        }
        (true, true) => RangeRequest::Full,
    }
}

/// Whether `range` is one byte range whose last byte comes before its first (`bytes=500-0`):
/// RFC 9110 §14.2 answers such an invalid range with 416.
pub fn reversed(range: &str) -> bool {
    let Some((a, b)) = range
        .trim()
        .strip_prefix("bytes=")
        .filter(|spec| !spec.contains(','))
        .and_then(|spec| spec.split_once('-'))
    else {
        return false;
    };
    matches!(
        (a.trim().parse::<u64>(), b.trim().parse::<u64>()),
        (Ok(first), Ok(last)) if last < first
    )
}

#[cfg(test)]
mod tests {
    use super::{resolve, RangeRequest::*};

    #[test]
    fn ranges() {
        let cases = [
            (None, Full),
            (Some("bytes=5-9"), Partial { start: 5, end: 9 }),
            (Some("bytes=5-"), Partial { start: 5, end: 99 }),
            (Some("bytes=-10"), Partial { start: 90, end: 99 }),
            (Some("bytes=-1000"), Partial { start: 0, end: 99 }),
            (Some("bytes=90-200"), Partial { start: 90, end: 99 }),
            (Some("bytes=100-"), Unsatisfiable),
            (Some("bytes=-0"), Unsatisfiable),
            (Some("bytes=9-5"), Full),
            (Some("bytes=0-1,5-6"), Full),
            (Some("items=0-1"), Full),
            (Some("bytes=x-1"), Full),
        ];
        for (h, want) in cases {
            assert_eq!(resolve(h, 100), want, "{h:?}");
        }
        assert_eq!(resolve(Some("bytes=0-0"), 0), Unsatisfiable);
    }
}

#[cfg(test)]
mod reversed_tests {
    use super::reversed;

    #[test]
    fn reversed_ranges() {
        assert!(reversed("bytes=500-0"));
        assert!(reversed(" bytes= 10 - 9"));
        for ok in [
            "bytes=0-0",
            "bytes=500-",
            "bytes=-500",
            "bytes=2-1,4-5",
            "items=5-1",
            "x",
        ] {
            assert!(!reversed(ok), "{ok}");
        }
    }
}
