//! A small HTTP client of the Flywheel API, for `--server` mode. Errors carry the server's
//! error code and message.

use anyhow::{Context, anyhow};
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;

use crate::config::Secret;

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
        let url = self.url(segments)?;
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
            let detail = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| {
                    let code = v["error"]["code"].as_str()?.to_owned();
                    let message = v["error"]["message"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    Some(format!("{code}: {message}"))
                })
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
            return Err(anyhow!("server answered {status}: {detail}"));
        }
        serde_json::from_slice(&bytes)
            .with_context(|| format!("decoding the answer of {method} {url}"))
    }
}
