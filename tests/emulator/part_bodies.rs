//! UploadLayerPart bodies as any client may write them, sent as raw signed HTTP: the blob
//! member first or last, whitespace, JSON escapes (`\/` is valid JSON for `/`), and bodies that
//! are not valid base64. The emulator finds the blob in place when it can and parses the
//! ordinary way when it cannot; either way the layer's digest is that of the bytes sent, and a
//! refused part leaves nothing behind.

use crate::support::{complete, data, initiate, sha256, Env, MIB};
use crate::wire::{api_post, HttpResponse};

const CREDS: Option<(&str, &str)> = Some(("test", "test"));

fn b64(bytes: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(bytes)
}

fn accepted(r: &HttpResponse) {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

/// CompleteLayerUpload succeeds with the digest of `bytes`.
async fn completes_as(env: &Env, id: &str, bytes: &[u8]) {
    let done = complete(&env.client, "rp", id, &sha256(bytes))
        .await
        .unwrap();
    assert_eq!(done.layer_digest(), Some(sha256(bytes).as_str()));
}

/// UploadLayerPart with this body, signed.
async fn part(env: &Env, body: String) -> HttpResponse {
    api_post(&env.endpoint(), "UploadLayerPart", &body, CREDS).await
}

fn blob_last(id: &str, first: usize, last: usize, blob: &str) -> String {
    format!(
        r#"{{"repositoryName":"rp","uploadId":"{id}","partFirstByte":{first},"partLastByte":{last},"layerPartBlob":"{blob}"}}"#
    )
}

fn blob_first(id: &str, first: usize, last: usize, blob: &str) -> String {
    format!(
        "{{ \"layerPartBlob\" :\n \"{blob}\", \"partFirstByte\": {first}, \"partLastByte\": {last}, \"repositoryName\": \"rp\", \"uploadId\": \"{id}\" }}"
    )
}

#[tokio::test]
async fn every_way_of_writing_the_body_stores_the_same_bytes() {
    let env = Env::start().await;
    env.repo("rp").await;
    let bytes = data(7, 10 * MIB + 11);
    let (a, rest) = bytes.split_at(5 * MIB);
    let (b, c) = rest.split_at(5 * MIB);
    let id = initiate(&env.client, "rp").await;

    let r = part(&env, blob_first(&id, 0, a.len() - 1, &b64(a))).await;
    accepted(&r);
    assert_eq!(r.json()["lastByteReceived"], a.len() - 1);

    // JSON escapes in the blob: every `/` written as `\/` (the ordinary parse handles these).
    let escaped = b64(b).replace('/', "\\/");
    assert!(
        escaped.contains("\\/"),
        "the test data has slashes to escape"
    );
    let r = part(
        &env,
        blob_last(&id, a.len(), a.len() + b.len() - 1, &escaped),
    )
    .await;
    accepted(&r);

    let first = a.len() + b.len();
    let r = part(&env, blob_last(&id, first, bytes.len() - 1, &b64(c))).await;
    accepted(&r);

    completes_as(&env, &id, &bytes).await;
}

#[tokio::test]
async fn a_part_that_is_not_base64_is_refused_and_leaves_nothing_behind() {
    let env = Env::start().await;
    env.repo("rp").await;
    let bytes = data(8, 6 * MIB);
    let id = initiate(&env.client, "rp").await;

    // A longer part with bad characters near its end (refused as a whole, before any of it
    // is written), and padding in the middle.
    let longer = data(9, 8 * MIB);
    let mut bad = b64(&longer);
    bad.replace_range(10 * MIB..10 * MIB + 4, "!!!!");
    for body in [
        blob_first(&id, 0, longer.len() - 1, &bad),
        blob_last(&id, 0, longer.len() - 1, &bad),
        blob_last(&id, 0, 3, "eA==eA=="), // padding in the middle
    ] {
        let r = part(&env, body).await;
        assert_eq!(r.status, 400);
        assert_eq!(r.json()["__type"], "SerializationException");
    }

    // The upload then holds exactly the accepted part, not the refused longer one.
    let r = part(&env, blob_first(&id, 0, bytes.len() - 1, &b64(&bytes))).await;
    accepted(&r);
    completes_as(&env, &id, &bytes).await;
}

#[tokio::test]
async fn a_body_that_does_not_deserialize_is_refused_before_anything_else() {
    let env = Env::start().await;
    env.repo("rp").await;
    // Not base64, for an upload that does not exist: ECR reads the body first.
    let r = part(&env, blob_last("no-such-upload", 0, 2, "e!!=")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["__type"], "SerializationException");
}

#[tokio::test]
async fn a_member_given_twice_counts_once_as_the_last_one() {
    let env = Env::start().await;
    env.repo("rp").await;
    let (wrong, right) = (data(10, 3000), data(11, 3000));
    let id = initiate(&env.client, "rp").await;
    // JSON parsers keep the last of duplicate members; so must the in-place fast path.
    let body = format!(
        r#"{{"layerPartBlob":"{}","repositoryName":"rp","uploadId":"{id}","partFirstByte":0,"partLastByte":2999,"layerPartBlob":"{}"}}"#,
        b64(&wrong),
        b64(&right)
    );
    let r = part(&env, body).await;
    accepted(&r);
    completes_as(&env, &id, &right).await;
}
