//! Tests of `sigv4`.
use super::canonical::canonical_uri;
use super::*;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use std::time::{Duration, UNIX_EPOCH};

const SUITE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SUITE_NOW: i64 = 1_440_938_160; // 20150830T123600Z
const ECR_NOW: i64 = 1_795_434_682; // 20261123T115122Z
const ECR_BODY: &[u8] = br#"{"repositoryNames":["team/app"]}"#;

fn creds(akid: &str, secret: &str) -> Vec<Credentials> {
    vec![Credentials {
        access_key_id: akid.into(),
        secret_access_key: secret.into(),
    }]
}

type Req = (Method, Uri, HeaderMap);

/// Request from "METHOD TARGET\nName:Value..." plus Host, the suite's X-Amz-Date and Authorization.
fn raw_request(head: &str, host: &str, scope: &str, signed: &str, sig: &str) -> Req {
    let mut lines = head.lines();
    let (method, target) = lines.next().unwrap().split_once(' ').unwrap();
    let auth = format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/{scope}/aws4_request, SignedHeaders={signed}, Signature={sig}");
    let mut headers = HeaderMap::new();
    let extra = lines.map(|l| l.split_once(':').unwrap());
    for (name, value) in [("host", host)]
        .into_iter()
        .chain(extra)
        .chain([("x-amz-date", "20150830T123600Z"), ("authorization", &auth)])
    {
        headers.append(
            http::HeaderName::try_from(name).unwrap(),
            value.parse().unwrap(),
        );
    }
    (method.parse().unwrap(), target.parse().unwrap(), headers)
}

#[test]
fn aws_test_suite_vectors() {
    let cases: &[(&str, &str, &str, &str)] = &[
        ("GET /", "", "host;x-amz-date", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        ("POST /", "", "host;x-amz-date", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
        ("POST /\nContent-Type:application/x-www-form-urlencoded\nContent-Length:13\nx-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e", "Param1=value1",
            "content-length;content-type;host;x-amz-content-sha256;x-amz-date", "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b"),
        ("GET /?Param2=value2&Param1=value1", "", "host;x-amz-date", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
        ("GET /?Param-3=Value3&Param=Value2&%E1%88%B4=Value1", "", "host;x-amz-date", "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac"),
        ("GET /?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", "",
            "host;x-amz-date", "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"),
        ("GET /\nMy-Header1: value1\nMy-Header2: \"a   b   c\"", "", "host;my-header1;my-header2;x-amz-date", "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"),
        ("GET /\nMy-Header1:value2\nMy-Header1:value2\nMy-Header1:value1", "", "host;my-header1;x-amz-date", "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"),
        ("GET /\nX-Amz-Security-Token:6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267", "",
            "host;x-amz-date;x-amz-security-token", "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"),
        ("GET /example1/example2/../..", "", "host;x-amz-date", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
    ];
    let creds = creds("AKIDEXAMPLE", SUITE_SECRET);
    for (head, body, signed, sig) in cases {
        let run = |sig: &str| {
            let (m, u, h) = raw_request(
                head,
                "example.amazonaws.com",
                "us-east-1/service",
                signed,
                sig,
            );
            verify(&m, &u, &h, body.as_bytes(), &creds, "service", SUITE_NOW)
        };
        let ok = Verified {
            access_key_id: "AKIDEXAMPLE".into(),
            region: "us-east-1".into(),
        };
        assert_eq!(run(sig), Ok(ok), "{head}");
        let bad_sig = format!(
            "{}{}",
            &sig[..63],
            if sig.ends_with('0') { '1' } else { '0' }
        );
        assert_eq!(run(&bad_sig), Err(AuthError::SignatureMismatch), "{head}");
    }
}

#[test]
fn iam_list_users_docs_example() {
    let (m, u, h) = raw_request(
        "GET /?Action=ListUsers&Version=2010-05-08\nContent-Type:application/x-www-form-urlencoded; charset=utf-8",
        "iam.amazonaws.com",
        "us-east-1/iam",
        "content-type;host;x-amz-date",
        "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
    );
    let got = verify(
        &m,
        &u,
        &h,
        b"",
        &creds("AKIDEXAMPLE", SUITE_SECRET),
        "iam",
        SUITE_NOW,
    );
    assert_eq!(got.map(|v| v.region), Ok("us-east-1".to_string()));
}

#[test]
fn canonical_uri_encodes_received_path_again() {
    // From the aws-sigv4 crate's double-encode-path and double-url-encode cases.
    assert_eq!(
        canonical_uri("/test/@connections/JBDvjfGEIAMCERw%3D"),
        "/test/%40connections/JBDvjfGEIAMCERw%253D"
    );
    assert_eq!(
        canonical_uri("/2015-03-31/functions/arn%3Aaws/invocations"),
        "/2015-03-31/functions/arn%253Aaws/invocations"
    );
    assert_eq!(canonical_uri("//a//b/./c/../"), "/a/b/");
    assert_eq!(canonical_uri(""), "/");
}

#[test]
fn amz_date_parse_and_format() {
    assert_eq!(parse_amz_date("20150830T123600Z"), Some(SUITE_NOW));
    assert_eq!(parse_amz_date("20000229T235959Z"), Some(951_868_799));
    assert_eq!(format_amz_date(ECR_NOW), "20261123T115122Z");
    assert_eq!(format_amz_date(951_868_799), "20000229T235959Z");
    for bad in [
        "20150830T123600",
        "2015-08-30T12:36:00Z",
        "20151330T123600Z",
        "2015083xT123600Z",
    ] {
        assert_eq!(parse_amz_date(bad), None, "{bad}");
    }
}

/// Signs an ECR DescribeRepositories call with the SDK's own signer (aws-sigv4).
fn sdk_signed(akid: &str, service: &str, at: i64, body: &[u8]) -> Req {
    let session = Some("session-token".to_string());
    let identity =
        aws_credential_types::Credentials::new(akid, "ecr-secret", session, None, "t").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("eu-west-3")
        .name(service)
        .time(UNIX_EPOCH + Duration::from_secs(at as u64))
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("content-type", "application/x-amz-json-1.1"),
        (
            "x-amz-target",
            "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories",
        ),
        ("host", "localhost:5000"),
    ] {
        headers.insert(name, value.parse().unwrap());
    }
    let pairs = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_str().unwrap()));
    let signable = SignableRequest::new(
        "POST",
        "http://localhost:5000/",
        pairs,
        SignableBody::Bytes(body),
    );
    let (instructions, _) = sign(signable.unwrap(), &params).unwrap().into_parts();
    for (name, value) in instructions.headers() {
        headers.insert(
            http::HeaderName::try_from(name).unwrap(),
            value.parse().unwrap(),
        );
    }
    (Method::POST, Uri::from_static("/"), headers)
}

fn check(req: &Req, body: &[u8]) -> Result<Verified, AuthError> {
    let creds = creds("AKIDECR", "ecr-secret");
    verify(&req.0, &req.1, &req.2, body, &creds, "ecr", ECR_NOW + 60)
}

fn signed(akid: &str) -> Req {
    sdk_signed(akid, "ecr", ECR_NOW, ECR_BODY)
}

const MISMATCH: Result<Verified, AuthError> = Err(AuthError::SignatureMismatch);

#[test]
fn ecr_request_signed_by_sdk_is_accepted() {
    let mut req = signed("AKIDECR");
    assert!(req.2["authorization"]
        .to_str()
        .unwrap()
        .contains("x-amz-security-token"));
    let ok = Verified {
        access_key_id: "AKIDECR".into(),
        region: "eu-west-3".into(),
    };
    assert_eq!(check(&req, ECR_BODY), Ok(ok.clone()));
    let hash = hex::encode(Sha256::digest(ECR_BODY));
    req.2.insert("x-amz-content-sha256", hash.parse().unwrap());
    assert_eq!(check(&req, ECR_BODY), Ok(ok));
}

#[test]
fn changed_body_byte_is_signature_mismatch() {
    let mut body = ECR_BODY.to_vec();
    body[5] ^= 1;
    assert_eq!(check(&signed("AKIDECR"), &body), MISMATCH);
}

#[test]
fn content_sha256_not_matching_body_is_signature_mismatch() {
    let mut req = signed("AKIDECR");
    let hash = hex::encode(Sha256::digest(b"other"));
    req.2.insert("x-amz-content-sha256", hash.parse().unwrap());
    assert_eq!(check(&req, ECR_BODY), MISMATCH);
}

#[test]
fn changed_signed_header_is_signature_mismatch() {
    let mut req = signed("AKIDECR");
    let target = "AmazonEC2ContainerRegistry_V20150921.DeleteRepository";
    req.2.insert("x-amz-target", target.parse().unwrap());
    assert_eq!(check(&req, ECR_BODY), MISMATCH);
}

#[test]
fn unknown_access_key_is_rejected() {
    let err = check(&signed("AKIDOTHER"), ECR_BODY).unwrap_err();
    assert_eq!(err, AuthError::UnknownAccessKey);
    assert_eq!(err.aws_code(), "UnrecognizedClientException");
}

#[test]
fn missing_authorization_is_missing() {
    let mut req = signed("AKIDECR");
    req.2.remove("authorization");
    let err = check(&req, ECR_BODY).unwrap_err();
    assert_eq!(err, AuthError::Missing);
    assert_eq!(
        (err.aws_code(), err.status()),
        ("MissingAuthenticationTokenException", 403)
    );
}

#[test]
fn date_outside_15_minutes_is_expired() {
    let stale = sdk_signed("AKIDECR", "ecr", ECR_NOW - 20 * 60, ECR_BODY);
    let want = "Signature expired: 20261123T113122Z is now earlier than 20261123T113722Z (20261123T115222Z - 15 min.)";
    assert_eq!(
        check(&stale, ECR_BODY),
        Err(AuthError::Expired(want.into()))
    );
    let future = sdk_signed("AKIDECR", "ecr", ECR_NOW + 20 * 60, ECR_BODY);
    let want = "Signature not yet current: 20261123T121122Z is still later than 20261123T120722Z (20261123T115222Z + 15 min.)";
    assert_eq!(
        check(&future, ECR_BODY),
        Err(AuthError::Expired(want.into()))
    );
    let edge = sdk_signed("AKIDECR", "ecr", ECR_NOW - 14 * 60, ECR_BODY);
    assert!(check(&edge, ECR_BODY).is_ok());
}

#[test]
fn scope_for_other_service_is_wrong_service() {
    let err = check(&sdk_signed("AKIDECR", "s3", ECR_NOW, ECR_BODY), ECR_BODY).unwrap_err();
    assert_eq!(
        err,
        AuthError::WrongService {
            expected: "ecr".into()
        }
    );
    assert_eq!(err.aws_code(), "InvalidSignatureException");
}

#[test]
fn malformed_authorization_is_incomplete() {
    let good = signed("AKIDECR");
    let auth = good.2["authorization"].to_str().unwrap().to_string();
    let variants = [
        "garbage".to_string(),
        auth.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1"),
        auth.replace("Signature=", "Sig="),
        auth.replace("aws4_request", "aws5_request"),
        auth.replace("/eu-west-3/", "/"),
        auth.replace("content-type;host;", "content-type;"),
        auth.replace("20261123/", "20261122/"),
    ];
    for bad in variants {
        let mut req = good.clone();
        req.2.insert("authorization", bad.parse().unwrap());
        let err = check(&req, ECR_BODY).unwrap_err();
        assert!(matches!(err, AuthError::Incomplete(_)), "{bad}: {err:?}");
        assert_eq!(err.aws_code(), "IncompleteSignatureException");
    }
    let mut no_date = good;
    no_date.2.remove("x-amz-date");
    assert!(matches!(
        check(&no_date, ECR_BODY),
        Err(AuthError::Incomplete(_))
    ));
}

#[test]
fn precheck_needs_no_body_and_the_signature_still_covers_it() {
    let creds = creds("AKIDECR", "ecr-secret");
    let req = signed("AKIDECR");
    let pre = precheck(&req.1, &req.2, &creds, "ecr", ECR_NOW + 60).expect("headers alone pass");
    let hash = |b: &[u8]| -> [u8; 32] { Sha256::digest(b).into() };
    assert!(pre.verify(&req.0, &req.1, &req.2, &hash(ECR_BODY)).is_ok());
    assert_eq!(
        pre.verify(&req.0, &req.1, &req.2, &hash(b"{}")),
        Err(AuthError::SignatureMismatch)
    );
    let stranger = signed("AKIDOTHER");
    let err = precheck(&stranger.1, &stranger.2, &creds, "ecr", ECR_NOW).err();
    assert_eq!(err, Some(AuthError::UnknownAccessKey));
}

#[test]
fn malformed_and_expired_are_400_with_awss_codes() {
    let stale = sdk_signed("AKIDECR", "ecr", ECR_NOW - 20 * 60, ECR_BODY);
    let err = check(&stale, ECR_BODY).unwrap_err();
    assert_eq!((err.aws_code(), err.status()), ("RequestExpired", 400));
    let mut bad = signed("AKIDECR");
    bad.2
        .insert("authorization", "AWS4-HMAC-SHA256 garbage".parse().unwrap());
    let err = check(&bad, ECR_BODY).unwrap_err();
    assert_eq!(
        (err.aws_code(), err.status()),
        ("IncompleteSignatureException", 400)
    );
    let err = check(&signed("AKIDOTHER"), ECR_BODY).unwrap_err();
    assert_eq!(err.status(), 403);
}
