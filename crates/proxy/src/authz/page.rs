//! The consent page and its neighbours: plain HTML, no script, never framed or cached.
//! Everything a client said about itself is escaped and made printable.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use tether_core::local_auth::consent::Request;
use tether_core::printable::printable;

/// A page: no script, no framing (a click could be stolen), no caching, no referrer.
fn html(status: StatusCode, title: &str, body: &str, refresh: bool) -> Response {
    let meta = if refresh {
        // Follows an answer given in the terminal UI.
        r#"<meta http-equiv="refresh" content="3">"#
    } else {
        ""
    };
    let page = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8">{meta}<title>{title}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:3em auto;padding:0 1em;color:#222}}
h1{{font-size:1.3em}} .who{{font-weight:600}} form{{display:inline}} button{{font-size:1em;padding:.5em 1.4em;margin:.5em .5em 0 0;cursor:pointer}}
.allow{{background:#1f6feb;color:#fff;border:0;border-radius:4px}} .deny{{border:1px solid #888;border-radius:4px;background:#fff}}
.small{{color:#555;font-size:.9em}} code{{background:#f2f2f2;padding:0 .2em}}</style></head>
<body><h1>{title}</h1>{body}</body></html>"#,
        title = escape(title)
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
            ),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        page,
    )
        .into_response()
}

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// "Claude Code wants to use 'linear' through tether — Allow / Deny". Without `can_answer`
/// (this system cannot tell whose browser it is), the answer is given in the terminal UI.
pub fn consent(asked: &Request, csrf: &str, can_answer: bool) -> Response {
    let who = escape(&printable(&asked.client_name, 80));
    let name = escape(&asked.connection);
    let back = url::Url::parse(&asked.redirect_uri)
        .ok()
        .map(|u| match u.host_str() {
            Some(host) => format!("{}://{host}", u.scheme()),
            None => format!("{}:", u.scheme()),
        })
        .unwrap_or_default();
    let answer = if can_answer {
        format!(
            r#"<form method="post"><input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="decision" value="allow"><button class="allow" type="submit">Allow</button></form><form method="post"><input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="decision" value="deny"><button class="deny" type="submit">Deny</button></form>"#,
            csrf = escape(csrf)
        )
    } else {
        "<p><b>Answer in tether's terminal UI</b> (run <code>tether</code>: the request is shown there): this system cannot tell whether this browser is yours.</p>".to_string()
    };
    let body = format!(
        r#"<p><span class="who">{who}</span> wants to use <b>'{name}'</b> through tether.</p>
<p>If you allow it, it can call every tool of '{name}' with your account, until you revoke it (<code>tether revoke {name} --client LABEL</code>; <code>tether status {name}</code> lists the labels, this app's is made from its name).</p>
{answer}
<p class="small">The name is what the app calls itself; tether cannot check it. Your browser then returns to <code>{back}</code>. A tether terminal UI open on this vault (<code>tether</code>) shows this request too and can answer it; this page follows. It expires in 10 minutes.</p>"#,
        back = escape(&printable(&back, 80)),
    );
    html(
        StatusCode::OK,
        &format!(
            "Allow {} to use '{}'?",
            printable(&asked.client_name, 40),
            asked.connection
        ),
        &body,
        true,
    )
}

pub fn done() -> Response {
    html(
        StatusCode::OK,
        "Answered",
        "<p>This sign-in has been answered. You can close this tab.</p>",
        false,
    )
}

pub fn error(status: StatusCode, message: &str) -> Response {
    html(
        status,
        "tether: sign-in",
        &format!("<p>{}</p>", escape(message)),
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_core::local_auth::consent::Decision;

    #[tokio::test]
    async fn what_the_client_says_is_escaped() {
        let asked = Request {
            id: "i".into(),
            client_name: "<script>alert(1)</script>".into(),
            connection: "linear".into(),
            redirect_uri: "http://127.0.0.1:5/cb".into(),
            decision: Decision::Waiting,
        };
        let page = consent(&asked, "tok", true);
        assert_eq!(
            page.headers()[header::X_FRAME_OPTIONS],
            "DENY",
            "never framed"
        );
        let body = axum::body::to_bytes(page.into_body(), 1 << 16)
            .await
            .unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(!body.contains("<script>"), "{body}");
        assert!(body.contains("&lt;script&gt;"));
        assert!(body.contains(r#"name="csrf" value="tok""#));
        assert!(body.contains("http://127.0.0.1"));
    }
}
