//! Bearer-token authentication and per-route role checks.
//!
//! Secrets are kept as SHA-256 digests and a presented token is compared with every configured
//! one in constant time ([`subtle`]), so neither timing nor length reveals a secret. The role a
//! route needs comes from the route table in [`super`]; [`require_role`] is the one place it is
//! enforced.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::error::ApiError;
use crate::config::{Role, TokenSpec};

/// Who made a request; handlers read it from the request extensions (the actor of a deploy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name, or [`ANONYMOUS`].
    pub name: String,
    /// The token's role.
    pub role: Role,
}

/// The caller name when no token is configured at all.
pub const ANONYMOUS: &str = "anonymous";

/// With no token configured (allowed only on loopback) a request is anonymous and may read, but
/// never write or resolve: "no token, no write".
pub const ANONYMOUS_ROLE: Role = Role::Read;

struct StoredToken {
    name: String,
    role: Role,
    digest: [u8; 32],
}

/// Checks bearer tokens against the configured ones.
pub struct Authenticator {
    tokens: Vec<StoredToken>,
}

impl Authenticator {
    /// Keeps the digests of the configured tokens.
    pub fn new(tokens: &[TokenSpec]) -> Self {
        Authenticator {
            tokens: tokens
                .iter()
                .map(|t| StoredToken {
                    name: t.name.clone(),
                    role: t.role,
                    digest: Sha256::digest(t.secret.expose().as_bytes()).into(),
                })
                .collect(),
        }
    }

    /// Whether any token is configured.
    pub fn is_open(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The caller an `Authorization` header identifies.
    pub fn authenticate(&self, header: Option<&HeaderValue>) -> Result<Caller, ApiError> {
        if self.is_open() {
            return Ok(Caller {
                name: ANONYMOUS.to_owned(),
                role: ANONYMOUS_ROLE,
            });
        }
        let presented = header
            .and_then(|h| h.to_str().ok())
            .and_then(|h| {
                let (scheme, token) = h.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        self.authenticate_secret(presented)
    }

    /// The caller a token secret identifies (a bearer header's token, or the token typed into
    /// the web pages' sign-in form). Never called in open mode, which has no secrets.
    pub fn authenticate_secret(&self, presented: &str) -> Result<Caller, ApiError> {
        if presented.is_empty() {
            return Err(ApiError::Unauthorized);
        }
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();

        // Look at every token, whatever matches, and pick the match without branching on it.
        let mut found = subtle::Choice::from(0);
        let mut index = 0u32;
        for (i, token) in self.tokens.iter().enumerate() {
            let matches = token.digest.ct_eq(&digest);
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            index = u32::conditional_select(&index, &i, matches);
            found |= matches;
        }
        if !bool::from(found) {
            return Err(ApiError::Unauthorized);
        }
        let token = usize::try_from(index)
            .ok()
            .and_then(|i| self.tokens.get(i))
            .ok_or(ApiError::Unauthorized)?;
        Ok(Caller {
            name: token.name.clone(),
            role: token.role,
        })
    }
}

impl Authenticator {
    /// The role of the configured token named `name`, if there still is one: a web session
    /// names its token, so a token removed from the configuration ends its sessions.
    pub fn role_of(&self, name: &str) -> Option<Role> {
        self.tokens.iter().find(|t| t.name == name).map(|t| t.role)
    }
}

/// What [`require_role`] needs: the authenticator and the role of the route it guards.
#[derive(Clone)]
pub struct RoleGate {
    /// The shared authenticator.
    pub auth: Arc<Authenticator>,
    /// The role the route needs.
    pub needed: Role,
}

/// Middleware: refuses a request without a valid token (401) or with too low a role (403), and
/// otherwise passes the [`Caller`] on in the request extensions.
pub async fn require_role(
    State(gate): State<RoleGate>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let caller = gate
        .auth
        .authenticate(request.headers().get(AUTHORIZATION))?;
    if caller.role < gate.needed {
        return Err(ApiError::Forbidden {
            needed: gate.needed,
            has: caller.role,
        });
    }
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tokens::parse_token_list;

    fn auth() -> Authenticator {
        Authenticator::new(
            &parse_token_list("r:read:read-secret,a:agent:agent-secret,x:admin:admin-secret")
                .expect("valid tokens"),
        )
    }

    fn header(v: &str) -> HeaderValue {
        HeaderValue::from_str(v).expect("ascii header")
    }

    #[test]
    fn a_valid_token_identifies_its_holder() {
        let caller = auth()
            .authenticate(Some(&header("Bearer agent-secret")))
            .expect("valid");
        assert_eq!(caller.name, "a");
        assert_eq!(caller.role, Role::Agent);
        let caller = auth()
            .authenticate(Some(&header("bearer admin-secret")))
            .expect("scheme is case-insensitive");
        assert_eq!(caller.role, Role::Admin);
    }

    #[test]
    fn missing_malformed_or_unknown_tokens_are_unauthorized() {
        let a = auth();
        for bad in [
            None,
            Some(header("")),
            Some(header("Bearer")),
            Some(header("Bearer ")),
            Some(header("Basic admin-secret")),
            Some(header("admin-secret")),
            Some(header("Bearer admin-secreT")),
            Some(header("Bearer admin-secret-and-more")),
        ] {
            assert!(
                matches!(a.authenticate(bad.as_ref()), Err(ApiError::Unauthorized)),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn without_configured_tokens_callers_are_anonymous_readers() {
        let open = Authenticator::new(&[]);
        let caller = open.authenticate(None).expect("open mode");
        assert_eq!(caller.name, ANONYMOUS);
        assert_eq!(caller.role, Role::Read);
    }
}
