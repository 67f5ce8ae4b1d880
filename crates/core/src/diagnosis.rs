//! Diagnoses (docs/diagnoses.md is generated from this table): for each stable code, a one-line explanation, why it happens,
//! and the remedy — the TUI key and the CLI command that fix it. The vault stores only
//! the code and the evidence; the words live here.

use crate::vault::DiagnosisCode;

/// What the terminal UI can do about a diagnosis, with one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fix {
    /// Sign in again (re-registering first when the server forgot tether's client).
    SignIn,
    /// Refresh the token now.
    Refresh,
    /// Delete orphaned client registrations.
    CleanOrphans,
    /// Show the endpoint a client should use.
    ShowEndpoint,
}

/// The words for one diagnosis code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Explanation {
    pub code: DiagnosisCode,
    /// One line: what happened.
    pub summary: &'static str,
    /// A few sentences: why it happens and what tether already does about it.
    pub detail: &'static str,
    /// What fixes it, in words.
    pub remedy: &'static str,
    /// The action that applies the remedy in the terminal UI, if one does (the keymap
    /// says which key that is).
    pub fix: Option<Fix>,
    /// The command that applies the remedy; `{name}` stands for the connection.
    pub command: Option<&'static str>,
    /// Whether the connection cannot work until the user acts.
    pub needs_action: bool,
}

impl Explanation {
    /// The remedy command for a connection, e.g. `tether login linear`.
    pub fn command_for(&self, name: &str) -> Option<String> {
        self.command.map(|c| c.replace("{name}", name))
    }

    /// One sentence an MCP client can show its user: what broke and how to fix it.
    pub fn sentence_for(&self, name: &str) -> String {
        let mut s = format!("'{name}': {} ({})", self.summary, self.code);
        match self.command_for(name) {
            Some(cmd) => s += &format!(". Run `{cmd}`."),
            None => s += &format!(". {}", self.remedy),
        }
        s
    }
}

pub fn explain(code: DiagnosisCode) -> Explanation {
    use DiagnosisCode::*;
    let e = |summary, detail, remedy, fix, command, needs_action| Explanation {
        code,
        summary,
        detail,
        remedy,
        fix,
        command,
        needs_action,
    };
    match code {
        InvalidGrantReused => e(
            "needs re-authorization — the refresh token was already used",
            "The vault holds a refresh token tether had already spent once: an old copy (a vault \
             restored from a backup) or something that replayed tether's token. tether does not \
             send a token it knows is spent — servers that rotate refresh tokens treat reuse as \
             theft and revoke the whole grant — and when the server itself refuses one as reused, \
             this is the diagnosis too.",
            "Re-authorize; then find what else uses this login.",
            Some(Fix::SignIn),
            Some("tether login {name}"),
            true,
        ),
        InvalidGrantRotatedElsewhere => e(
            "needs re-authorization — another holder of this grant refreshed it",
            "The server refused a refresh token tether never spent and did not lose in transit, \
             so something else holding the same grant used it first and the server rotated it \
             away from tether (or ended the grant without saying why): a copy of this vault in \
             another tether home, a program that imported or was given the same login \
             (mcp-remote's store after an import), or a machine elsewhere. Candidates seen on \
             this machine are listed as such; none is named as the cause.",
            "Re-authorize, and stop the other holder from using this grant (`tether clients` lists clients that reach the server directly).",
            Some(Fix::SignIn),
            Some("tether login {name}"),
            true,
        ),
        InvalidGrantLostResponse => e(
            "needs re-authorization — a refresh response was lost in transit",
            "tether sent a refresh request whose response never arrived (a network cut or a crash). \
             The server rotated the refresh token anyway, so the new token was lost and the old one \
             is now refused.",
            "Re-authorize.",
            Some(Fix::SignIn),
            Some("tether login {name}"),
            true,
        ),
        InvalidGrantExpiredOrRevoked => e(
            "needs re-authorization — the grant expired or was revoked",
            "The server no longer accepts the refresh token: it reached its lifetime, was revoked \
             (for example in the service's settings), or the account changed.",
            "Re-authorize.",
            Some(Fix::SignIn),
            Some("tether login {name}"),
            true,
        ),
        ClientMismatch => e(
            "needs re-authorization — the token belongs to a different OAuth client",
            "A refresh token is bound to the client it was issued to. The stored token names a \
             client tether does not hold, or the server says the grant belongs to another client. \
             tether never mixes them.",
            "Re-authorize with the token's own client.",
            Some(Fix::SignIn),
            Some("tether login {name}"),
            true,
        ),
        ClientRejected => e(
            "needs re-authorization — the server no longer accepts tether's OAuth client",
            "The token endpoint answered invalid_client or unauthorized_client: the dynamically \
             registered client expired or was deleted. tether keeps the old registration as legacy \
             while tokens bound to it live.",
            "Sign in again: tether registers a new client itself.",
            Some(Fix::SignIn),
            Some("tether login {name}"),
            true,
        ),
        DcrOrphan => e(
            "an old client registration has no live token",
            "A dynamically registered client no longer backs any token. It is harmless but clutters \
             the server's list of apps.",
            "Clean orphans (deleted at the server where RFC 7592 allows, else forgotten).",
            Some(Fix::CleanOrphans),
            Some("tether orphans {name} --delete"),
            false,
        ),
        TokenEvicted => e(
            "the access token was revoked early (per-user token cap)",
            "The server answered invalid_token for a token well before its expiry. Services that cap \
             live tokens per user and app (GitHub: 10) silently revoke the oldest when another client \
             signs in. tether refreshes and carries on.",
            "None needed: tether refreshed. Fewer clients signing in directly avoids it.",
            Some(Fix::Refresh),
            Some("tether refresh {name}"),
            false,
        ),
        NoRefreshToken => e(
            "no refresh token was issued",
            "The server issued an access token without a refresh token. A long-lived token needs none; \
             a short one means tether must ask you to sign in again when it expires.",
            "None needed while the token is long-lived.",
            None,
            None,
            false,
        ),
        ShortLived => e(
            "access tokens live less than an hour",
            "This server's access tokens are short-lived. tether refreshes them at about 75% of their \
             lifetime, so clients never meet an expired token.",
            "None needed: refreshed proactively.",
            None,
            None,
            false,
        ),
        InsufficientScope => e(
            "needs re-authorization with more scope",
            "The server answered 403 insufficient_scope: the call needs a scope the current grant \
             does not include.",
            "Re-authorize; tether asks for the scope the server named.",
            Some(Fix::SignIn),
            Some("tether login {name}"),
            true,
        ),
        DiscoveryFailed => e(
            "cannot find the server's authorization metadata",
            "None of the metadata URLs the MCP specification lists answered with a usable document. \
             Every URL tried and its status is in the evidence.",
            "Check the MCP URL and that the server is up; then log in again.",
            Some(Fix::SignIn),
            Some("tether login {name}"),
            true,
        ),
        PkceUnsupported => e(
            "the authorization server does not support PKCE S256",
            "The MCP specification requires PKCE with S256. tether refuses to authorize against a \
             server that does not advertise it, rather than weaken the flow.",
            "None in tether: the server must add S256 to code_challenge_methods_supported.",
            None,
            None,
            true,
        ),
        UpstreamUnreachable => e(
            "the server is unreachable or failing",
            "A network error, a timeout, a 5xx or a 429 answer. The refresh token is kept; tether \
             retries with capped exponential backoff.",
            "None needed: tether retries automatically.",
            Some(Fix::Refresh),
            Some("tether refresh {name}"),
            false,
        ),
        DownstreamUnauthorized => e(
            "a local client called without a valid tether secret",
            "A local MCP client called tether's endpoint with a missing or revoked secret.",
            "Copy the client's endpoint again.",
            Some(Fix::ShowEndpoint),
            Some("tether url {name}"),
            true,
        ),
        ClientDrift => e(
            "an MCP client talks to this server directly, beside tether",
            "A client on this machine is configured with the connection's upstream URL (or runs \
             mcp-remote against it), so it signs in on its own and holds a second grant for the \
             same login. Its refreshes rotate the refresh token away from tether, and under \
             per-user token caps its sign-ins evict tether's token.",
            "Point the client at tether instead; `tether clients` lists every such entry.",
            None,
            Some("tether clients"),
            true,
        ),
    }
}

/// Every code, for documentation and the help overlay.
pub const ALL: [DiagnosisCode; 16] = {
    use DiagnosisCode::*;
    [
        InvalidGrantReused,
        InvalidGrantRotatedElsewhere,
        InvalidGrantLostResponse,
        InvalidGrantExpiredOrRevoked,
        ClientMismatch,
        ClientRejected,
        DcrOrphan,
        TokenEvicted,
        NoRefreshToken,
        ShortLived,
        InsufficientScope,
        DiscoveryFailed,
        PkceUnsupported,
        UpstreamUnreachable,
        DownstreamUnauthorized,
        ClientDrift,
    ]
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_words_and_a_remedy() {
        for code in ALL {
            let e = explain(code);
            assert_eq!(e.code, code);
            assert!(!e.summary.is_empty() && !e.detail.is_empty() && !e.remedy.is_empty());
            if e.needs_action && code != DiagnosisCode::PkceUnsupported {
                assert!(e.command.is_some(), "{code} needs a command");
            }
        }
    }

    #[test]
    fn the_client_facing_sentence_names_the_fix() {
        let s = explain(DiagnosisCode::InvalidGrantReused).sentence_for("linear");
        assert_eq!(
            s,
            "'linear': needs re-authorization — the refresh token was already used \
             (invalid_grant.reused). Run `tether login linear`."
        );
    }
}
