//! The UploadLayerPart request body, written by us in one allocation. The SDK's own serializer
//! base64-encodes the part into a temporary string, copies it into a JSON buffer that then
//! doubles to append the closing quote, and keeps the raw part alive meanwhile: four fresh
//! allocations per part, whose page faults were 38% of the proxy's push CPU. Here the raw part
//! is encoded straight into an exact-size buffer and dropped; an interceptor puts that buffer in
//! the request before it is signed (so SigV4 covers it, and every retry sends it again).

use aws_sdk_ecr::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_ecr::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_ecr::error::BoxError;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;

/// The JSON body for one part (the same members the SDK would send).
pub fn encode(
    registry_id: Option<&str>,
    repo: &str,
    upload_id: &str,
    first: u64,
    data: &[u8],
) -> Bytes {
    let last = first + data.len() as u64 - 1;
    let s = |v: &str| serde_json::Value::from(v).to_string();
    let mut head = String::from("{");
    if let Some(id) = registry_id {
        head += &format!("\"registryId\":{},", s(id));
    }
    head += &format!(
        "\"repositoryName\":{},\"uploadId\":{},\"partFirstByte\":{first},\"partLastByte\":{last},\"layerPartBlob\":\"",
        s(repo),
        s(upload_id)
    );
    let b64 = base64_simd::STANDARD;
    let encoded_len = b64.encoded_length(data.len());
    let mut out = vec![0u8; head.len() + encoded_len + 2];
    out[..head.len()].copy_from_slice(head.as_bytes());
    let written = b64.encode(
        data,
        base64_simd::Out::from_slice(&mut out[head.len()..head.len() + encoded_len]),
    );
    debug_assert_eq!(written.len(), encoded_len);
    let n = out.len();
    out[n - 2..].copy_from_slice(b"\"}");
    Bytes::from(out)
}

/// Puts a prepared body into the request, before signing.
#[derive(Debug)]
pub struct ReplaceBody(pub Bytes);

impl Intercept for ReplaceBody {
    fn name(&self) -> &'static str {
        "ReplaceBody"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        *request.body_mut() = SdkBody::from(self.0.clone());
        request
            .headers_mut()
            .insert("content-length", self.0.len().to_string());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn the_body_is_the_json_ecr_expects() {
        let data: Vec<u8> = (0..100_003u32).map(|i| (i * 7 % 251) as u8).collect();
        let body = encode(Some("123456789012"), "a/b\"c", "u-1", 10, &data);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["registryId"], "123456789012");
        assert_eq!(v["repositoryName"], "a/b\"c");
        assert_eq!(v["uploadId"], "u-1");
        assert_eq!(
            (v["partFirstByte"].as_u64(), v["partLastByte"].as_u64()),
            (Some(10), Some(100_012))
        );
        let blob = base64::engine::general_purpose::STANDARD
            .decode(v["layerPartBlob"].as_str().unwrap())
            .unwrap();
        assert_eq!(blob, data);
        let v: serde_json::Value =
            serde_json::from_slice(&encode(None, "r", "u", 0, b"x")).unwrap();
        assert!(v.get("registryId").is_none());
        assert_eq!(v["layerPartBlob"], "eA==");
    }
}
