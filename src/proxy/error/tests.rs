//! Unit tests of the ECR → OCI table and of the error response.

use super::*;
use crate::ecr::errors::{self, Meaning};
use crate::ecr::{EcrError, ErrorKind};

fn oci(kind: ErrorKind, op: &'static str, message: &str) -> (&'static str, u16) {
    let e: RegistryError = EcrError::new(kind, op, "X", message).into();
    let (c, s) = e.code_and_status();
    (c, s.as_u16())
}

#[test]
fn ecr_failures_map_to_the_spec_codes() {
    let cases = [
        (
            ErrorKind::RepositoryNotFound,
            "InitiateLayerUpload",
            "NAME_UNKNOWN",
            404,
        ),
        (
            ErrorKind::LayersNotFound,
            "PutImage",
            "MANIFEST_BLOB_UNKNOWN",
            400,
        ),
        (
            ErrorKind::LayersNotFound,
            "GetDownloadUrlForLayer",
            "BLOB_UNKNOWN",
            404,
        ),
        (
            ErrorKind::UploadNotFound,
            "UploadLayerPart",
            "BLOB_UPLOAD_UNKNOWN",
            404,
        ),
        (
            ErrorKind::InvalidLayer,
            "CompleteLayerUpload",
            "DIGEST_INVALID",
            400,
        ),
        (
            ErrorKind::ImageTagAlreadyExists,
            "PutImage",
            "TAG_INVALID",
            400,
        ),
        (
            ErrorKind::ImageDigestDoesNotMatch,
            "PutImage",
            "DIGEST_INVALID",
            400,
        ),
        (
            ErrorKind::ImageReferencedByIndex,
            "BatchDeleteImage",
            "DENIED",
            409,
        ),
        (
            ErrorKind::RepositoryAlreadyExists,
            "CreateRepository",
            "DENIED",
            409,
        ),
        (ErrorKind::Unclassified, "ListImages", "UNSUPPORTED", 400),
        (ErrorKind::Throttled, "PutImage", "TOOMANYREQUESTS", 429),
        (ErrorKind::Unavailable, "PutImage", "UNAVAILABLE", 503),
        (ErrorKind::Credentials, "PutImage", "UNAVAILABLE", 503),
    ];
    for (kind, op, code, status) in cases {
        assert_eq!(oci(kind, op, "m"), (code, status), "{kind:?} from {op}");
    }
}

#[test]
fn invalid_parameter_goes_by_the_member_then_the_operation() {
    let at = |m: &str| format!("Invalid parameter at '{m}' failed to satisfy constraint: 'x'");
    let cases = [
        ("ListImages", at("repositoryName"), "NAME_INVALID"),
        ("InitiateLayerUpload", at("repositoryName"), "NAME_INVALID"),
        ("PutImage", at("imageTag"), "TAG_INVALID"),
        ("PutImage", at("ImageManifest"), "MANIFEST_INVALID"),
        (
            "BatchGetImage",
            "Value 'a b' at 'imageIds.1.member.imageTag' failed".into(),
            "TAG_INVALID",
        ),
        ("BatchDeleteImage", at("imageDigest"), "DIGEST_INVALID"),
        ("PutImage", "Invalid JSON".into(), "MANIFEST_INVALID"),
        (
            "UploadLayerPart",
            at("partFirstByte"),
            "BLOB_UPLOAD_INVALID",
        ),
        ("ListImages", at("maxResults"), "UNSUPPORTED"),
        ("DescribeRepositories", "bad".into(), "UNSUPPORTED"),
    ];
    for (op, message, code) in cases {
        assert_eq!(
            oci(ErrorKind::InvalidParameter, op, &message),
            (code, 400),
            "{op}: {message}"
        );
    }
}

/// Every code the table lists gets the status its meaning promises, from every operation.
#[test]
fn every_listed_code_gets_the_status_of_its_meaning() {
    let ops = [
        "PutImage",
        "BatchDeleteImage",
        "ListImages",
        "UploadLayerPart",
    ];
    for code in errors::codes() {
        let kind = errors::classify(code);
        assert_ne!(kind, ErrorKind::Unclassified, "{code}");
        for op in ops {
            let (oci_code, status) = oci(kind, op, "m");
            let ok = match kind.meaning() {
                Meaning::ClientError => {
                    (400..500).contains(&status) && ![404, 429].contains(&status)
                }
                Meaning::NotFound => {
                    status == 404 || (status == 400 && oci_code.ends_with("UNKNOWN"))
                }
                Meaning::Denied => status == 403,
                Meaning::Throttled => status == 429,
                Meaning::Transient => status == 503,
            };
            assert!(ok, "{code} ({kind:?}) from {op} → {oci_code} {status}");
        }
    }
}

#[test]
fn the_detail_names_the_exception_and_request_id() {
    let mut e = EcrError::new(
        ErrorKind::ImageReferencedByIndex,
        "BatchDeleteImage",
        "ImageReferencedByManifestList",
        "Requested image is referenced by a manifest list",
    );
    e.request_id = Some("7f3c".into());
    let e = RegistryError::from(e);
    let text = e.to_string();
    let (message, detail) = text.split_once(": ").unwrap();
    assert!(
        message.contains("referenced by an image index"),
        "{message}"
    );
    assert_eq!(
        detail,
        "ImageReferencedByManifestList from BatchDeleteImage (request id 7f3c): \
         Requested image is referenced by a manifest list"
    );
    let r = e.into_response(false);
    assert_eq!(r.status(), 409);
    assert!(r.headers().get("retry-after").is_none());
}

#[test]
fn responses_carry_the_json_body_and_headers() {
    let r = RegistryError::TooManyRequests("slow down".into()).into_response(false);
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    let r = RegistryError::RangeInvalid {
        range: "0-9".into(),
        location: "/v2/a/blobs/uploads/x".into(),
        upload_id: "x".into(),
    }
    .into_response(false);
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["range"], "0-9");
}
