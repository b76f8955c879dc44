//! Plain HTTP for what the SDK does not do: fetching download URLs (with Range, HEAD) and API
//! calls signed by hand with aws-sigv4 (or not at all), to see raw statuses and bodies.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

/// An HTTP answer, body read in full.
pub struct HttpResponse {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// One plain HTTP/1.1 request over a fresh connection.
pub async fn http(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> HttpResponse {
    use hyper_util::client::legacy::Client as HttpClient;
    use hyper_util::rt::TokioExecutor;
    let client = HttpClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client
        .request(
            req.body(Full::new(Bytes::from(body)))
                .expect("valid request"),
        )
        .await
        .expect("HTTP request");
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .expect("response body")
        .to_bytes()
        .to_vec();
    HttpResponse {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

pub async fn get(url: &str) -> HttpResponse {
    http("GET", url, &[], Vec::new()).await
}

/// The headers of an AWS JSON 1.1 call for `op` to `endpoint`, signed over `body` with aws-sigv4
/// when `creds` is given.
pub fn api_headers(
    endpoint: &str,
    op: &str,
    body: &str,
    creds: Option<(&str, &str)>,
) -> Vec<(String, String)> {
    api_headers_at(endpoint, op, body, creds, std::time::SystemTime::now())
}

/// `api_headers` signed as if at `time`.
pub fn api_headers_at(
    endpoint: &str,
    op: &str,
    body: &str,
    creds: Option<(&str, &str)>,
    time: std::time::SystemTime,
) -> Vec<(String, String)> {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    let host = endpoint.trim_start_matches("http://").to_string();
    let target = format!("AmazonEC2ContainerRegistry_V20150921.{op}");
    let mut headers: Vec<(String, String)> = vec![
        ("content-type".into(), "application/x-amz-json-1.1".into()),
        ("x-amz-target".into(), target),
        ("host".into(), host),
    ];
    let Some((akid, secret)) = creds else {
        return headers;
    };
    let identity = aws_credential_types::Credentials::new(akid, secret, None, None, "test").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("ecr")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .expect("signing parameters")
        .into();
    let url = format!("{endpoint}/");
    let signable = SignableRequest::new(
        "POST",
        &url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body.as_bytes()),
    )
    .expect("signable request");
    let (instructions, _) = sign(signable, &params).expect("signature").into_parts();
    for (k, v) in instructions.headers() {
        headers.push((k.to_string(), v.to_string()));
    }
    headers
}

/// POST `body` to the emulator's API with these headers.
pub async fn api_send(endpoint: &str, headers: &[(String, String)], body: &str) -> HttpResponse {
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    http(
        "POST",
        &format!("{endpoint}/"),
        &headers,
        body.as_bytes().to_vec(),
    )
    .await
}

/// POST an AWS JSON 1.1 call for `op`, signed with `creds` if given.
pub async fn api_post(
    endpoint: &str,
    op: &str,
    body: &str,
    creds: Option<(&str, &str)>,
) -> HttpResponse {
    api_send(endpoint, &api_headers(endpoint, op, body, creds), body).await
}
