//! Who is asking: the `Authorization: Bearer TOKEN` header checked against
//! the store's token file. Reading the APT trees and the read API needs
//! nothing; a handler that writes takes a [`Caller`] (any valid token) and
//! asks [`Caller::require`] for the role its operation needs, so a
//! missing or wrong token (401) and a token of too small a role (403) are
//! refused before anything is read from the body or the store.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::error::ApiError;
use super::state::AppState;
use super::tokens::{Role, TokenFile};

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name (for histories: `token:NAME`).
    pub name: String,
    pub role: Role,
}

impl Caller {
    /// Refuses (403) unless the caller's role allows `needed`.
    pub fn require(&self, needed: Role) -> Result<(), ApiError> {
        if self.role.allows(needed) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "token {} has role {}; this needs role {needed}",
                self.name, self.role
            )))
        }
    }

    /// Who did it, as a channel history records it.
    pub fn who(&self) -> String {
        format!("token:{}", self.name)
    }
}

/// The token in an `Authorization` header value, if it is a bearer token.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// Checks `header` (the `Authorization` value, if any) against `tokens`.
pub fn authenticate(tokens: &TokenFile, header: Option<&str>) -> Result<Caller, ApiError> {
    let header = header.ok_or_else(|| {
        ApiError::unauthorized("this needs a token: send 'Authorization: Bearer TOKEN'")
    })?;
    let token = bearer(header)
        .ok_or_else(|| ApiError::unauthorized("the Authorization header must be 'Bearer TOKEN'"))?;
    let entry = tokens
        .check(token)
        .ok_or_else(|| ApiError::unauthorized("unknown token"))?;
    Ok(Caller {
        name: entry.name.clone(),
        role: entry.role,
    })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = match parts.headers.get(axum::http::header::AUTHORIZATION) {
            None => None,
            Some(v) => Some(
                v.to_str()
                    .map_err(|_| ApiError::unauthorized("the Authorization header is not text"))?,
            ),
        };
        // Read on every request (a few hundred bytes): `halo token add` and
        // `remove` take effect without restarting the server.
        let tokens = state.tokens()?;
        authenticate(&tokens, header)
    }
}

/// A caller whose token has at least role `writer`.
#[derive(Debug, Clone)]
pub struct Writer(pub Caller);

/// A caller whose token has at least role `stable`.
#[derive(Debug, Clone)]
pub struct Stable(pub Caller);

/// A caller whose token has role `admin`.
#[derive(Debug, Clone)]
pub struct Admin(pub Caller);

macro_rules! role_extractor {
    ($t:ident, $role:expr) => {
        impl FromRequestParts<AppState> for $t {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, ApiError> {
                let caller = Caller::from_request_parts(parts, state).await?;
                caller.require($role)?;
                Ok($t(caller))
            }
        }
    };
}

role_extractor!(Writer, Role::Writer);
role_extractor!(Stable, Role::Stable);
role_extractor!(Admin, Role::Admin);

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn missing_wrong_and_weak_tokens_are_refused() {
        let mut f = TokenFile::default();
        let t = f.add("ci", Role::Writer, "now").expect("add");
        assert_eq!(
            authenticate(&f, None).expect_err("none").status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            authenticate(&f, Some("Bearer halo_nope"))
                .expect_err("wrong")
                .status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            authenticate(&f, Some(&format!("Basic {t}")))
                .expect_err("scheme")
                .status,
            StatusCode::UNAUTHORIZED
        );
        let c = authenticate(&f, Some(&format!("bearer {t}"))).expect("ok");
        assert_eq!(c.name, "ci");
        assert!(c.require(Role::Writer).is_ok());
        assert_eq!(
            c.require(Role::Stable).expect_err("weak").status,
            StatusCode::FORBIDDEN
        );
    }
}
