//! What a signed-out endpoint says in MCP: its `initialize` result, its one tool
//! (`sign_in_<name>`) and that tool's answers — pure functions of the connection, why it
//! needs a sign-in and what the started sign-in asks of the user.

use serde_json::{Value, json};

use tether_core::diagnosis::explain;
use tether_core::engine::SignInStart;
use tether_core::oauth::refresh::AuthError;
use tether_core::printable::printable;

/// Protocol revisions tether can speak for itself, oldest first.
pub const VERSIONS: [&str; 5] = [
    "2024-11-05",
    "2025-03-26",
    "2025-06-18",
    "2025-11-25",
    "2026-07-28",
];
/// Revisions from this one on have no sessions and no GET stream.
pub const STATELESS_FROM: &str = "2026-07-28";
/// The longest tool name the MCP tool-name rules allow.
const TOOL_NAME_MAX: usize = 128;

/// The revision tether answers a client that asked for `asked`: the same when tether
/// knows it, else the newest it knows (the lifecycle's negotiation).
pub fn negotiate(asked: Option<&str>) -> &'static str {
    asked
        .and_then(|a| VERSIONS.iter().find(|v| **v == a))
        .copied()
        .unwrap_or(VERSIONS[VERSIONS.len() - 1])
}

/// `sign_in_<name>` within the tool-name rules (1–128 characters of `A-Za-z0-9_-.`):
/// any other character becomes `_`.
pub fn tool_name(connection: &str) -> String {
    let mut name = String::from("sign_in_");
    for c in connection.chars() {
        if name.len() >= TOOL_NAME_MAX {
            break;
        }
        let allowed = c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
        name.push(if allowed { c } else { '_' });
    }
    name
}

/// Why `name` needs a sign-in, in one printable sentence.
pub fn reason(name: &str, error: &AuthError) -> String {
    let sentence = match error {
        AuthError::NeedsReauth { diagnosis, .. } => explain(*diagnosis).sentence_for(name),
        _ => format!("'{name}' has not been signed in yet"),
    };
    printable(sentence.trim_end_matches('.'), 400)
}

/// The `initialize` (and `server/discover`) result of a signed-out endpoint.
pub fn server_description(name: &str, version: &str, reason: &str) -> Value {
    let shown = printable(name, 80);
    json!({
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": true}},
        "serverInfo": {
            "name": format!("tether/{shown}"),
            "title": format!("{shown} through tether (sign-in needed)"),
            "version": env!("CARGO_PKG_VERSION"),
        },
        "instructions": format!(
            "{reason}. Call the tool {} to sign in; the tools of '{shown}' then appear by themselves.",
            tool_name(name)
        ),
    })
}

/// The one tool a signed-out endpoint lists.
pub fn tool(name: &str, reason: &str) -> Value {
    let shown = printable(name, 80);
    json!({
        "name": tool_name(name),
        "title": format!("Sign in to {shown}"),
        "description": format!(
            "'{shown}' needs a sign-in before its tools can be used: {reason}. Calling this tool opens the sign-in on this machine (the one tether runs on): a browser window, or else the address to open or the code to type, in its result. Once signed in, the tools of '{shown}' appear here by themselves."
        ),
        "inputSchema": {"type": "object", "properties": {}, "additionalProperties": false},
        "annotations": {
            "readOnlyHint": false,
            "destructiveHint": false,
            "idempotentHint": true,
            "openWorldHint": true,
        },
    })
}

/// The `tools/call` result for a call refused for scope the grant lacks (`wanted`), and
/// the sign-in that asks for it: started as `start` says, or already waiting (`None`).
pub fn stepped_up(name: &str, wanted: &str, start: Option<&SignInStart>) -> Value {
    let shown = printable(name, 80);
    let need = if wanted.is_empty() {
        format!("This tool needs more access to '{shown}' than it was given")
    } else {
        format!(
            "This tool needs more access to '{shown}' (scope '{}')",
            printable(wanted, 200)
        )
    };
    let Some(start) = start else {
        return json!({"content": [{"type": "text", "text": format!(
            "{need}. A sign-in asking for it is already waiting in the browser on the machine tether runs on: finish it there, then call the tool again."
        )}], "isError": true});
    };
    let mut result = started(name, start);
    if let Some(text) = result.pointer_mut("/content/0/text")
        && let Some(said) = text.as_str()
    {
        let said = said.replace(
            &format!("Once signed in, the tools of '{shown}' appear here by themselves."),
            "Once signed in, call the tool again.",
        );
        *text = Value::String(format!(
            "{need}; tether started a sign-in that asks for it. {said}"
        ));
    }
    // The call itself did not run.
    result["isError"] = Value::Bool(true);
    result
}

/// The `tools/call` result for a sign-in that started as `start` says.
pub fn started(name: &str, start: &SignInStart) -> Value {
    let shown = printable(name, 80);
    let then = format!("Once signed in, the tools of '{shown}' appear here by themselves.");
    let (text, error) = match start {
        SignInStart::BrowserOpened => (
            format!(
                "A browser window on this machine opened the sign-in page of '{shown}'. Finish signing in there. {then}"
            ),
            false,
        ),
        SignInStart::OpenAddress(url) => (
            format!(
                "No browser could be opened on the machine tether runs on. Open this address in a browser there to sign in to '{shown}':\n\n{}\n\n{then}",
                printable(url, 4000)
            ),
            false,
        ),
        SignInStart::DeviceCode {
            verification_uri,
            user_code,
            expires_in,
        } => (
            format!(
                "Open {} on any device and enter the code {} (valid {} minutes) to sign in to '{shown}'. {then}",
                printable(verification_uri, 2000),
                printable(user_code, 40),
                expires_in.div_ceil(60)
            ),
            false,
        ),
        SignInStart::Finished => (
            format!("'{shown}' is signed in. Its tools appear here in a moment."),
            false,
        ),
        SignInStart::Pending => (
            format!(
                "The sign-in of '{shown}' started on this machine but has not reached the browser yet. If nothing opens, run `tether login {shown}` in a terminal there. {then}"
            ),
            false,
        ),
        SignInStart::Failed(why) => (
            format!(
                "The sign-in of '{shown}' failed: {}. Run `tether login {shown}` in a terminal on the machine tether runs on to see every step.",
                printable(why.trim_end_matches('.'), 400)
            ),
            true,
        ),
    };
    json!({"content": [{"type": "text", "text": text}], "isError": error})
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_core::vault::DiagnosisCode;

    #[test]
    fn tool_names_keep_to_the_rules() {
        assert_eq!(tool_name("linear"), "sign_in_linear");
        assert_eq!(tool_name("my-server.v2_x"), "sign_in_my-server.v2_x");
        assert_eq!(tool_name("a b/c:dé"), "sign_in_a_b_c_d_");
        let long = tool_name(&"x".repeat(300));
        assert_eq!(long.len(), 128);
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
        assert!(long.chars().all(allowed));
    }

    #[test]
    fn versions_are_negotiated_as_the_lifecycle_says() {
        assert_eq!(negotiate(Some("2025-06-18")), "2025-06-18");
        assert_eq!(negotiate(Some("2025-11-25")), "2025-11-25");
        assert_eq!(negotiate(Some("1999-01-01")), "2026-07-28");
        assert_eq!(negotiate(None), "2026-07-28");
    }

    #[test]
    fn the_tool_says_why_and_what_calling_it_does() {
        let dead = AuthError::NeedsReauth {
            name: "linear".into(),
            diagnosis: DiagnosisCode::InvalidGrantExpiredOrRevoked,
            detail: "x".into(),
        };
        let why = reason("linear", &dead);
        assert!(why.contains("invalid_grant"), "{why}");
        let tool = tool("linear", &why);
        assert_eq!(tool["name"], "sign_in_linear");
        let description = tool["description"].as_str().unwrap();
        assert!(description.contains(&why), "{description}");
        assert!(description.contains("on this machine"), "{description}");
        let never = reason("linear", &AuthError::NeedsLogin("linear".into()));
        assert!(never.contains("not been signed in"), "{never}");
        // Server text is made printable: no control character reaches a client's screen.
        let odd = reason("li\u{1b}[2Jnear", &AuthError::NeedsLogin("x".into()));
        assert!(!odd.contains('\u{1b}'), "{odd}");
    }

    #[test]
    fn the_description_names_tether_and_the_connection() {
        let d = server_description("linear", "2025-11-25", "why");
        assert_eq!(d["protocolVersion"], "2025-11-25");
        assert_eq!(d["capabilities"]["tools"]["listChanged"], true);
        assert_eq!(d["serverInfo"]["name"], "tether/linear");
        assert!(
            d["instructions"]
                .as_str()
                .unwrap()
                .contains("sign_in_linear")
        );
    }

    #[test]
    fn answers_say_what_to_do() {
        let text = |v: Value| v["content"][0]["text"].as_str().unwrap().to_string();
        assert!(text(started("linear", &SignInStart::BrowserOpened)).contains("browser window"));
        let url = "https://as.example/authorize?client_id=c&state=s";
        let open = started("linear", &SignInStart::OpenAddress(url.into()));
        assert!(text(open.clone()).contains(url));
        assert_eq!(open["isError"], false);
        let device = started(
            "linear",
            &SignInStart::DeviceCode {
                verification_uri: "https://as.example/device".into(),
                user_code: "ABCD-EFGH".into(),
                expires_in: 600,
            },
        );
        assert!(text(device.clone()).contains("ABCD-EFGH"));
        assert!(text(device).contains("10 minutes"));
        let failed = started("linear", &SignInStart::Failed("no \u{7}bell".into()));
        assert_eq!(failed["isError"], true);
        assert!(!text(failed).contains('\u{7}'));
    }
}
