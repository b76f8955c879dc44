//! Fetching layer bytes from the download URLs ECR hands out (S3 presigned URLs, or the
//! emulator's): an HTTP/HTTPS client whose responses are streamed, never buffered whole. URLs
//! come only from GetDownloadUrlForLayer, never from client input.

use super::error::RegistryError;
use bytes::Bytes;
use http::{header, Request, Response};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

#[derive(Clone)]
pub struct Fetcher {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl Fetcher {
    /// A client trusting the system's CA certificates.
    pub fn new() -> std::io::Result<Fetcher> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Fetcher {
            client: Client::builder(TokioExecutor::new()).build(https),
        })
    }

    /// GET `url`, forwarding a `Range` header.
    pub async fn get(
        &self,
        url: &str,
        range: Option<&str>,
    ) -> Result<Response<Incoming>, RegistryError> {
        let mut req = Request::get(url);
        if let Some(r) = range {
            req = req.header(header::RANGE, r);
        }
        let req = req
            .body(Empty::new())
            .map_err(|e| RegistryError::Unavailable(format!("bad download URL from ECR: {e}")))?;
        self.client
            .request(req)
            .await
            .map_err(|e| RegistryError::Unavailable(format!("fetching the layer failed: {e}")))
    }
}
