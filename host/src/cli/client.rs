//! A small HTTP client of the Flywheel API, for `--server` mode. Errors carry the server's
//! error code and message.

use anyhow::{Context, anyhow};
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;

use crate::config::Secret;

/// An error answer of the service, kept whole so a caller can read its details (the index of a
/// refused run).
#[derive(Debug)]
pub struct ServerError {
    /// The HTTP status.
    pub status: reqwest::StatusCode,
    /// The error code.
    pub code: String,
    /// The message.
    pub message: String,
    /// `error.details`, if any.
    pub details: Option<serde_json::Value>,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "server answered {}: {}: {}",
            self.status, self.code, self.message
        )
    }
}

impl std::error::Error for ServerError {}

/// A client of one running service.
pub struct ApiClient {
    base: Url,
    token: Option<Secret>,
    http: reqwest::Client,
}

impl ApiClient {
    /// A client of the service at `base` (such as `http://127.0.0.1:8080`).
    pub fn new(base: &str, token: Option<Secret>) -> anyhow::Result<Self> {
        let base = Url::parse(base).with_context(|| format!("--server {base:?} is not a URL"))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            anyhow::bail!("--server {base} must be an http:// or https:// URL");
        }
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .context("building the HTTP client")?;
        Ok(ApiClient { base, token, http })
    }

    /// The URL of a path given as segments; each segment is percent-encoded.
    fn url(&self, segments: &[&str]) -> anyhow::Result<Url> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| anyhow!("--server {} cannot take a path", self.base))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// Sends a request and decodes the JSON answer, or turns an error answer into an error
    /// naming its code.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<T> {
        self.call_with_query(method, segments, &[], body).await
    }

    /// [`ApiClient::call`] with query parameters (each percent-encoded).
    pub async fn call_with_query<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<T> {
        let mut url = self.url(segments)?;
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let bytes = self.send(method.clone(), url.clone(), body).await?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("decoding the answer of {method} {url}"))
    }

    /// Sends a request whose success has no body (`204 No Content`).
    pub async fn call_no_content(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<()> {
        let url = self.url(segments)?;
        self.send(method, url, body).await.map(drop)
    }

    /// The body of a successful answer, or a [`ServerError`] naming the server's code.
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<bytes::Bytes> {
        let mut request = self.http.request(method.clone(), url.clone());
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose());
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("reading the answer of {method} {url}"))?;
        if !status.is_success() {
            return Err(server_error(status, &bytes));
        }
        Ok(bytes)
    }

    /// Sends a request and writes a successful answer's body to `out` as it arrives (an export
    /// of any size never sits in memory whole); answers the bytes written. An error answer is a
    /// [`ServerError`] naming the server's code.
    pub async fn download(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<serde_json::Value>,
        out: &mut dyn std::io::Write,
    ) -> anyhow::Result<u64> {
        let url = self.url(segments)?;
        // The client's 30 s limit is for whole answers; an export streams for as long as it has
        // rows, so only a day bounds it.
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .timeout(std::time::Duration::from_secs(24 * 3600));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose());
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let mut response = request
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = response.status();
        if !status.is_success() {
            let bytes = response
                .bytes()
                .await
                .with_context(|| format!("reading the answer of {method} {url}"))?;
            return Err(server_error(status, &bytes));
        }
        let mut written = 0;
        while let Some(chunk) = response
            .chunk()
            .await
            .with_context(|| format!("reading the answer of {method} {url}"))?
        {
            out.write_all(&chunk).context("writing the export")?;
            written += chunk.len() as u64;
        }
        Ok(written)
    }
}

/// The error an error answer stands for: a [`ServerError`] when the body is the service's error
/// shape, else the status and the body as text.
fn server_error(status: reqwest::StatusCode, bytes: &[u8]) -> anyhow::Error {
    let error = serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| {
            Some(ServerError {
                status,
                code: v["error"]["code"].as_str()?.to_owned(),
                message: v["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                details: v["error"].get("details").cloned(),
            })
        });
    match error {
        Some(error) => error.into(),
        None => anyhow!(
            "server answered {status}: {}",
            String::from_utf8_lossy(bytes)
        ),
    }
}
