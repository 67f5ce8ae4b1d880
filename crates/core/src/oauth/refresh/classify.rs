//! Naming a refresh the server refused for good: which diagnosis the error, the journal
//! and the spent-token watermark point to.

use crate::oauth::token::TokenError;
use crate::vault::DiagnosisCode;

/// What is known about a definitive refresh failure.
pub struct RefreshFailure<'a> {
    pub error: &'a TokenError,
    /// An earlier refresh from the same generation never reported back.
    pub suspect_lost: bool,
    /// The refresh token sent had already been spent once by tether.
    pub sent_spent_token: bool,
}

/// The diagnosis of a refresh the server refused for good (not a transient failure).
///
/// An `invalid_grant` for a refresh token tether never spent and did not lose means
/// another holder of the grant used it — unless the server's words say the grant expired
/// or was revoked. Other MCP clients on the machine are not evidence either way (they
/// usually hold grants of their own): they are listed as candidates where the diagnosis
/// is shown (`clients::holders`), not used to pick it.
pub fn classify_refresh(f: &RefreshFailure<'_>) -> DiagnosisCode {
    let (error, description) = match f.error {
        TokenError::OAuth { body, .. } => (
            body.error.as_str(),
            body.error_description.as_deref().unwrap_or(""),
        ),
        _ => return DiagnosisCode::UpstreamUnreachable,
    };
    match error {
        "invalid_client" | "unauthorized_client" => DiagnosisCode::ClientRejected,
        "invalid_scope" | "insufficient_scope" => DiagnosisCode::InsufficientScope,
        "invalid_grant" if f.suspect_lost => DiagnosisCode::InvalidGrantLostResponse,
        "invalid_grant" if f.sent_spent_token => DiagnosisCode::InvalidGrantReused,
        "invalid_grant" if names_another_client(description) => DiagnosisCode::ClientMismatch,
        // The server says this token was used, and tether never used it.
        "invalid_grant" if names_reuse(description) => DiagnosisCode::InvalidGrantRotatedElsewhere,
        "invalid_grant" if names_end(description) => DiagnosisCode::InvalidGrantExpiredOrRevoked,
        "invalid_grant" => DiagnosisCode::InvalidGrantRotatedElsewhere,
        _ => DiagnosisCode::InvalidGrantExpiredOrRevoked,
    }
}

/// Servers that end a grant often say how ("expired", "revoked").
fn names_end(description: &str) -> bool {
    let d = description.to_ascii_lowercase();
    ["expired", "revoked", "revocation"]
        .iter()
        .any(|w| d.contains(w))
}

/// Servers that detect refresh-token reuse often say so ("already used", "reuse").
fn names_reuse(description: &str) -> bool {
    let d = description.to_ascii_lowercase();
    ["already used", "reuse", "replay", "used twice"]
        .iter()
        .any(|w| d.contains(w))
}

/// Authorization servers word "this grant belongs to another client" in their own way
/// (e.g. "Client is trying to use a code from a different client").
fn names_another_client(description: &str) -> bool {
    let d = description.to_ascii_lowercase();
    d.contains("client")
        && [
            "different",
            "another",
            "mismatch",
            "belongs to",
            "not issued to",
        ]
        .iter()
        .any(|w| d.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oauth(error: &str, description: &str) -> TokenError {
        TokenError::OAuth {
            url: "https://as.example/token".into(),
            status: 400,
            body: crate::oauth::token::OAuthErrorBody {
                error: error.into(),
                error_description: Some(description.into()),
            },
        }
    }

    #[test]
    fn refresh_failures_are_told_apart() {
        let case = |e: &TokenError, lost, spent| {
            classify_refresh(&RefreshFailure {
                error: e,
                suspect_lost: lost,
                sent_spent_token: spent,
            })
        };
        let grant = oauth("invalid_grant", "refresh token is invalid");
        use DiagnosisCode::*;
        assert_eq!(case(&grant, true, true), InvalidGrantLostResponse);
        assert_eq!(case(&grant, false, true), InvalidGrantReused);
        // Never spent, never lost: another holder used it.
        assert_eq!(case(&grant, false, false), InvalidGrantRotatedElsewhere);
        let used = oauth("invalid_grant", "the refresh token was already used");
        assert_eq!(case(&used, false, false), InvalidGrantRotatedElsewhere);
        assert_eq!(case(&used, false, true), InvalidGrantReused);
        let revoked = oauth(
            "invalid_grant",
            "the refresh token is no longer valid: token was revoked",
        );
        assert_eq!(case(&revoked, false, false), InvalidGrantExpiredOrRevoked);
        let expired = oauth("invalid_grant", "the refresh token expired");
        assert_eq!(case(&expired, false, false), InvalidGrantExpiredOrRevoked);
        let other = oauth(
            "invalid_grant",
            "Client is trying to use a code from a different client",
        );
        assert_eq!(case(&other, false, false), ClientMismatch);
        assert_eq!(
            case(&oauth("invalid_client", ""), true, false),
            ClientRejected
        );
        assert_eq!(
            case(&oauth("unauthorized_client", ""), false, false),
            ClientRejected
        );
    }
}
