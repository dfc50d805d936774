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
            let error = serde_json::from_slice::<serde_json::Value>(&bytes)
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
            return Err(match error {
                Some(error) => error.into(),
                None => anyhow!(
                    "server answered {status}: {}",
                    String::from_utf8_lossy(&bytes)
                ),
            });
        }
        Ok(bytes)
    }
}
