//! Unit tests of the table and of the status fallback.

use super::*;

#[test]
fn the_table_sorts_exceptions_and_failure_codes() {
    let cases = [
        ("RepositoryNotFoundException", ErrorKind::RepositoryNotFound),
        ("LayersNotFoundException", ErrorKind::LayersNotFound),
        ("LimitExceededException", ErrorKind::Throttled),
        ("ThrottlingException", ErrorKind::Throttled),
        ("ServerException", ErrorKind::Unavailable),
        ("InvalidSignatureException", ErrorKind::Credentials),
        ("AccessDeniedException", ErrorKind::AccessDenied),
        (
            "ImageTagAlreadyExistsException",
            ErrorKind::ImageTagAlreadyExists,
        ),
        (
            "RepositoryAlreadyExistsException",
            ErrorKind::RepositoryAlreadyExists,
        ),
        (
            "ImageReferencedByManifestList",
            ErrorKind::ImageReferencedByIndex,
        ),
        ("InvalidImageTag", ErrorKind::InvalidTag),
        ("MissingLayerDigest", ErrorKind::LayersNotFound),
        ("SomethingNew", ErrorKind::Unclassified),
    ];
    for (code, kind) in cases {
        assert_eq!(classify(code), kind, "{code}");
    }
}

#[test]
fn unlisted_exceptions_are_sorted_by_status_never_a_blanket_503() {
    let sorted = |status| classify_answer(Some("BrandNewException"), status).meaning();
    assert_eq!(sorted(400), Meaning::ClientError);
    assert_eq!(sorted(404), Meaning::ClientError);
    assert_eq!(sorted(429), Meaning::Throttled);
    assert_eq!(sorted(500), Meaning::Transient);
    assert_eq!(sorted(503), Meaning::Transient);
    assert_eq!(classify_answer(None, 400), ErrorKind::Unclassified);
    // A listed code wins over its status.
    assert_eq!(
        classify_answer(Some("ServerException"), 400),
        ErrorKind::Unavailable
    );
}

#[test]
fn no_code_is_listed_twice() {
    let mut seen = std::collections::HashSet::new();
    for c in codes() {
        assert!(seen.insert(c), "{c} is listed twice");
    }
}

#[test]
fn item_failures_keep_code_reason_and_request_id() {
    let e = EcrError::item_failure(
        "BatchDeleteImage",
        "ImageReferencedByManifestList",
        "referenced",
        Some("req-1"),
    );
    assert_eq!(e.kind, ErrorKind::ImageReferencedByIndex);
    assert_eq!(e.kind.meaning(), Meaning::ClientError);
    assert_eq!(e.request_id.as_deref(), Some("req-1"));
}
