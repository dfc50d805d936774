//! Who is looking at a page: sessions opened by signing in with an API token, the [`Viewer`]
//! every page handler takes, and the Origin check of every state-changing request.
//!
//! # Sessions
//!
//! Signing in checks the token like a bearer header ([`Authenticator::authenticate_secret`]),
//! draws a random 256-bit session id, stores only its SHA-256 with the token's name and an
//! expiry ([`crate::store::SessionStore`], shared by every instance on the database), and gives
//! the id to the browser in an `HttpOnly`, `SameSite=Strict` cookie (`Secure` when the sign-in
//! came over HTTPS). Each request looks the session up and takes the role the named token has
//! now, so removing a token from the configuration ends its sessions. Signing out deletes the
//! row. The token itself is never stored nor put in the cookie.
//!
//! # Cross-site requests
//!
//! `SameSite=Strict` keeps the cookie off requests started by another site, and every
//! state-changing request must also carry an `Origin` header naming this server
//! ([`check_origin`]): a request without one, or from elsewhere, is refused with
//! `origin_refused` before any handler runs.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts, Request};
use axum::http::header::{COOKIE, HOST, ORIGIN};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::error::WebError;
use crate::api::auth::{ANONYMOUS, ANONYMOUS_ROLE, Authenticator};
use crate::api::{ApiError, AppState};
use crate::config::Role;
use crate::store::Store;

/// The cookie holding the session id.
pub const SESSION_COOKIE: &str = "flywheel_session";

/// How long a session lasts after signing in: a working day, so a person signs in once a day
/// and a cookie left on a shared machine stops working by the next one.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);

/// The person looking at a page: the name and role of the token they signed in with.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The token's name (recorded as the actor of what they do).
    pub name: String,
    /// The token's current role.
    pub role: Role,
    /// Whether the server has tokens at all; without them reading is open and nobody signs in.
    pub signed_in: bool,
}

impl Viewer {
    /// Whether the viewer may do what `needed` allows: pages hide the buttons they may not use.
    pub fn can(&self, needed: Role) -> bool {
        self.role >= needed
    }

    /// Refuses, as the API would, a viewer below `needed`.
    pub fn require(&self, needed: Role) -> Result<(), ApiError> {
        if self.can(needed) {
            Ok(())
        } else {
            Err(ApiError::Forbidden {
                needed,
                has: self.role,
            })
        }
    }
}

impl<S> FromRequestParts<S> for Viewer
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        if state.auth.is_open() {
            return Ok(Viewer {
                name: ANONYMOUS.to_owned(),
                role: ANONYMOUS_ROLE,
                signed_in: false,
            });
        }
        let sign_in = || {
            // A page asked for without a session comes back to itself after signing in.
            let next = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/".to_owned());
            if parts.method == Method::GET {
                WebError::SignIn(next)
            } else {
                WebError::Api(ApiError::Unauthorized)
            }
        };
        let Some(id) = session_id(&parts.headers) else {
            return Err(sign_in());
        };
        match find(&state.store, &state.auth, &id).await? {
            Some(viewer) => Ok(viewer),
            None => Err(sign_in()),
        }
    }
}

/// The viewer of a live session with id `id`, if it is live and its token still configured.
async fn find(
    store: &Arc<dyn Store>,
    auth: &Authenticator,
    id: &str,
) -> Result<Option<Viewer>, ApiError> {
    let Some(session) = store.find_session(&hash_id(id), unix_now()).await? else {
        return Ok(None);
    };
    Ok(auth.role_of(&session.token_name).map(|role| Viewer {
        name: session.token_name,
        role,
        signed_in: true,
    }))
}

/// Opens a session for the holder of `token`: stores it and answers the `Set-Cookie` value.
/// `secure` marks the cookie HTTPS-only.
pub async fn open(
    store: &Arc<dyn Store>,
    auth: &Authenticator,
    token: &str,
    secure: bool,
) -> Result<String, ApiError> {
    let caller = auth.authenticate_secret(token.trim())?;
    let now = unix_now();
    // Sign-ins are rare: a good moment to drop the rows of sessions that have run out.
    store.purge_expired_sessions(now).await?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let id = hex::encode(bytes);
    let ttl = DEFAULT_SESSION_TTL.as_secs();
    store
        .create_session(
            &hash_id(&id),
            &caller.name,
            now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)),
        )
        .await?;
    tracing::info!(token = %caller.name, "web session opened");
    Ok(cookie(&id, ttl, secure))
}

/// Ends the session of the request's cookie, if any; answers the `Set-Cookie` value that
/// removes the cookie.
pub async fn close(store: &Arc<dyn Store>, headers: &HeaderMap) -> Result<String, ApiError> {
    if let Some(id) = session_id(headers) {
        store.delete_session(&hash_id(&id)).await?;
    }
    Ok(cookie("", 0, false))
}

fn cookie(value: &str, max_age: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    )
}

/// The session id of the request's cookie: 64 hex digits, anything else is no session.
fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// What the store keeps of a session id.
fn hash_id(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Whether the sign-in came over HTTPS (directly or through a proxy that says so), so the
/// cookie must be `Secure`.
pub fn over_https(headers: &HeaderMap) -> bool {
    let origin_https = headers
        .get(ORIGIN)
        .and_then(|o| o.to_str().ok())
        .is_some_and(|o| o.starts_with("https://"));
    let forwarded_https = headers
        .get("x-forwarded-proto")
        .and_then(|p| p.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    origin_https || forwarded_https
}

/// Middleware on the web pages: a request that may change something (any method but GET and
/// HEAD) must name this server in its `Origin` header (scheme `http` or `https`, host and port
/// equal to the `Host` header); otherwise it is refused with `origin_refused` and no handler
/// runs.
pub async fn check_origin(request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    match same_origin(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(why) => {
            tracing::warn!(method = %request.method(), path = %request.uri().path(), why, "refused a cross-site request");
            WebError::Api(ApiError::OriginRefused(format!(
                "refused: {why}; state changes are accepted only from this server's own pages"
            )))
            .into_response()
        }
    }
}

fn same_origin(headers: &HeaderMap) -> Result<(), &'static str> {
    let origin = headers
        .get(ORIGIN)
        .ok_or("the request has no Origin header")?
        .to_str()
        .map_err(|_| "the Origin header is not text")?;
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .ok_or("the request has no Host header")?;
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .ok_or("the Origin is not an http(s) origin")?;
    if authority.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err("the Origin names another site")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).expect("ascii"));
        }
        map
    }

    #[test]
    fn only_an_origin_naming_this_host_passes() {
        let ok = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
        ]);
        assert!(same_origin(&ok).is_ok());
        let tls = headers(&[
            ("host", "flywheel.example"),
            ("origin", "https://flywheel.example"),
        ]);
        assert!(same_origin(&tls).is_ok());
        for bad in [
            headers(&[("host", "127.0.0.1:8080")]),
            headers(&[("host", "127.0.0.1:8080"), ("origin", "null")]),
            headers(&[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:9090"),
            ]),
            headers(&[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://evil.example"),
            ]),
            headers(&[
                ("host", "127.0.0.1:8080"),
                ("origin", "ftp://127.0.0.1:8080"),
            ]),
            headers(&[("origin", "http://127.0.0.1:8080")]),
        ] {
            assert!(same_origin(&bad).is_err(), "{bad:?} passed");
        }
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_over_https() {
        let plain = cookie("ab", 60, false);
        assert!(
            plain.contains("HttpOnly") && plain.contains("SameSite=Strict"),
            "{plain}"
        );
        assert!(!plain.contains("Secure"), "{plain}");
        assert!(cookie("ab", 60, true).ends_with("; Secure"));
        assert!(over_https(&headers(&[("origin", "https://x.example")])));
        assert!(over_https(&headers(&[("x-forwarded-proto", "https")])));
        assert!(!over_https(&headers(&[("origin", "http://x.example")])));
    }

    #[test]
    fn only_a_well_formed_session_cookie_is_read() {
        let id = "a".repeat(64);
        let found = session_id(&headers(&[(
            "cookie",
            &format!("x=1; {SESSION_COOKIE}={id}"),
        )]));
        assert_eq!(found.as_deref(), Some(id.as_str()));
        assert!(session_id(&headers(&[("cookie", &format!("{SESSION_COOKIE}=short"))])).is_none());
        assert!(session_id(&headers(&[("cookie", "other=1")])).is_none());
        assert_ne!(hash_id(&id), id, "only the hash is stored");
        assert_eq!(hash_id(&id).len(), 64);
    }
}
