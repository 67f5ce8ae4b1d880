use proptest::prelude::*;
use reqwest::header::{HeaderMap, HeaderValue, WWW_AUTHENTICATE};

use super::*;

fn one(value: &str) -> Vec<Challenge> {
    parse(&[value])
}

fn params(c: &Challenge) -> Vec<(&str, &str)> {
    c.params
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

#[test]
fn a_single_bearer_challenge_with_quoted_params() {
    let got = one(
        r#"Bearer realm="mcp", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#,
    );
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].scheme, "Bearer");
    assert_eq!(
        params(&got[0]),
        vec![
            ("realm", "mcp"),
            (
                "resource_metadata",
                "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
            ),
        ]
    );
    assert_eq!(got[0].token68, None);
}

#[test]
fn two_challenges_in_one_header_are_split_at_the_scheme_not_at_every_comma() {
    let got =
        one(r#"Basic realm="a", Bearer error="invalid_token", resource_metadata="https://x/prm""#);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].scheme, "Basic");
    assert_eq!(params(&got[0]), vec![("realm", "a")]);
    assert_eq!(got[1].scheme, "Bearer");
    assert_eq!(
        params(&got[1]),
        vec![
            ("error", "invalid_token"),
            ("resource_metadata", "https://x/prm")
        ]
    );
}

#[test]
fn several_header_values_are_all_read_in_order() {
    let got = parse(&[
        r#"Basic realm="legacy""#,
        r#"Bearer scope="read write", error="insufficient_scope""#,
    ]);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].scheme, "Basic");
    assert_eq!(got[1].param("scope"), Some("read write"));
    assert_eq!(got[1].param("error"), Some("insufficient_scope"));
}

#[test]
fn quoted_values_keep_commas_equals_and_escaped_quotes() {
    let got = one(r#"Bearer error_description="a, b=c \"d\" \\e", scope="x""#);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].param("error_description"), Some(r#"a, b=c "d" \e"#));
    assert_eq!(got[0].param("scope"), Some("x"));
}

#[test]
fn unquoted_token_values_and_unquoted_urls_are_read() {
    let got = one("Bearer error=invalid_token, resource_metadata=https://h/p?q=1");
    assert_eq!(got[0].param("error"), Some("invalid_token"));
    assert_eq!(got[0].param("resource_metadata"), Some("https://h/p?q=1"));
}

#[test]
fn scheme_and_param_names_are_case_insensitive() {
    let got = one(r#"bEaReR Resource_Metadata="u", SCOPE="s""#);
    assert!(got[0].is_bearer());
    assert_eq!(got[0].scheme, "bEaReR", "the scheme is kept as sent");
    assert_eq!(
        params(&got[0]),
        vec![("resource_metadata", "u"), ("scope", "s")]
    );
    assert_eq!(got[0].param("RESOURCE_METADATA"), Some("u"));
}

#[test]
fn extra_whitespace_and_empty_list_elements_are_ignored() {
    let got = one("  ,, Bearer   realm = \"r\" ,  , error =\t\"e\" ,,, Basic ,");
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(params(&got[0]), vec![("realm", "r"), ("error", "e")]);
    assert_eq!(got[1].scheme, "Basic");
    assert!(got[1].params.is_empty());
}

#[test]
fn token68_is_read_after_the_scheme() {
    let got = one("Negotiate YIIB+/abc==, Basic dXNlcjpwYXNz, Bearer realm=\"r\"");
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0].token68.as_deref(), Some("YIIB+/abc=="));
    assert_eq!(got[1].token68.as_deref(), Some("dXNlcjpwYXNz"));
    assert_eq!(got[2].token68, None);
    assert_eq!(got[2].param("realm"), Some("r"));
}

#[test]
fn a_scheme_alone_is_a_challenge_without_params() {
    let got = one("Bearer");
    assert_eq!(got.len(), 1);
    assert!(got[0].params.is_empty() && got[0].token68.is_none());
    let got = one("Bearer, Basic realm=\"x\"");
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].param("realm"), Some("x"));
}

#[test]
fn a_missing_comma_between_params_keeps_both_params() {
    let got = one(r#"Bearer realm="r" error="invalid_token""#);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].param("error"), Some("invalid_token"));
}

#[test]
fn junk_is_skipped_and_the_rest_still_read() {
    let got = one(r#"=oops, "stray, quoted", Bearer realm="ok", ;;; , error="e""#);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].param("realm"), Some("ok"));
    assert_eq!(got[0].param("error"), Some("e"));
}

#[test]
fn an_unterminated_quote_drops_only_that_param() {
    let got = one(r#"Bearer realm="ok", error="never closed"#);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].param("realm"), Some("ok"));
    assert_eq!(got[0].param("error"), None);
}

#[test]
fn params_before_any_scheme_are_ignored() {
    let got = one(r#"realm="x", Bearer scope="s""#);
    assert_eq!(got.len(), 1);
    assert_eq!(params(&got[0]), vec![("scope", "s")]);
}

#[test]
fn the_field_failure_shape_does_not_mangle_parameter_names() {
    // Two headers, one folded with several challenges: the shape that produced names such
    // as `code_challenge_method_method` in a popular client.
    let got = parse(&[
        r#"Basic realm="api", Bearer realm="api", error="invalid_token", error_description="The access token expired, please refresh", resource_metadata="https://api.example.com/.well-known/oauth-protected-resource/mcp""#,
        r#"DPoP algs="ES256 PS256""#,
    ]);
    let names: Vec<&str> = got
        .iter()
        .flat_map(|c| c.params.iter().map(|(n, _)| n.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            "realm",
            "realm",
            "error",
            "error_description",
            "resource_metadata",
            "algs"
        ]
    );
    assert_eq!(
        got[1].param("error_description"),
        Some("The access token expired, please refresh")
    );
}

#[test]
fn bearer_picks_the_first_bearer_challenge_across_headers() {
    let mut headers = HeaderMap::new();
    headers.append(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"x\""),
    );
    headers.append(
        WWW_AUTHENTICATE,
        HeaderValue::from_static(
            r#"Bearer resource_metadata="https://h/prm", scope="a b", error="invalid_request", error_description="no token""#,
        ),
    );
    headers.append(
        WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"Bearer scope="later""#),
    );
    let b = bearer(&headers).expect("a bearer challenge");
    assert_eq!(
        b,
        BearerChallenge {
            resource_metadata: Some("https://h/prm".into()),
            scope: Some("a b".into()),
            error: Some("invalid_request".into()),
            error_description: Some("no token".into()),
        }
    );
}

#[test]
fn bearer_is_none_without_a_bearer_challenge() {
    let mut headers = HeaderMap::new();
    assert_eq!(bearer(&headers), None);
    headers.append(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"x\""),
    );
    assert_eq!(bearer(&headers), None);
}

#[test]
fn bearer_reads_non_ascii_header_bytes_lossily() {
    let mut headers = HeaderMap::new();
    let v = HeaderValue::from_bytes(b"Bearer realm=\"caf\xe9\", scope=\"s\"").expect("obs-text");
    headers.append(WWW_AUTHENTICATE, v);
    assert_eq!(bearer(&headers).and_then(|b| b.scope), Some("s".into()));
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}"
}

/// A parameter name that cannot be mistaken for a token68 (a lone token68 would be read
/// as such when a challenge has exactly one bare-looking element).
fn param_name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,10}"
}

fn quoted_value() -> impl Strategy<Value = String> {
    // Printable ASCII plus the characters that break naive splitters.
    proptest::collection::vec(
        prop_oneof![
            Just(','),
            Just('='),
            Just('"'),
            Just('\\'),
            Just(' '),
            proptest::char::range('!', '~')
        ],
        0..24,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

fn challenge() -> impl Strategy<Value = Challenge> {
    (
        token(),
        proptest::collection::vec((param_name(), quoted_value()), 0..5),
    )
        .prop_map(|(scheme, params)| Challenge {
            scheme,
            params,
            token68: None,
        })
}

fn render(c: &Challenge) -> String {
    let params: Vec<String> = c
        .params
        .iter()
        .map(|(n, v)| format!("{n}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    if params.is_empty() {
        c.scheme.clone()
    } else {
        format!("{} {}", c.scheme, params.join(", "))
    }
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(values in proptest::collection::vec(".*", 0..4)) {
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let _ = parse(&refs);
    }

    #[test]
    fn arbitrary_header_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_bytes(&bytes) {
            headers.append(WWW_AUTHENTICATE, v);
        }
        let _ = bearer(&headers);
    }

    #[test]
    fn rendered_challenges_parse_back_to_the_same_params(
        challenges in proptest::collection::vec(challenge(), 1..4),
        split in any::<bool>(),
    ) {
        let rendered: Vec<String> = challenges.iter().map(render).collect();
        let got = if split {
            let refs: Vec<&str> = rendered.iter().map(String::as_str).collect();
            parse(&refs)
        } else {
            parse(&[rendered.join(", ").as_str()])
        };
        prop_assert_eq!(got, challenges);
    }
}
