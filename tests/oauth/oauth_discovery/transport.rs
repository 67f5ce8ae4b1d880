//! Discovery against hostile or careless servers: plain http, oversized bodies, redirects to
//! another origin, HTML where JSON belongs, and no server at all.

use tether_core::oauth::discovery::{MAX_METADATA_BYTES, fetch_as_metadata};

use super::*;

#[tokio::test]
async fn plain_http_off_this_machine_is_refused_without_a_request() {
    let site = protected_site().await;
    publish_prm(&site, "http://example.invalid");
    let err = discover(&http(), &site.mcp()).await.unwrap_err();
    let DiscoveryError::Insecure { url, tried } = &err else {
        panic!("expected Insecure, got {err:?}");
    };
    assert_eq!(url, "http://example.invalid");
    assert!(
        tried.iter().all(|t| !t.url.contains("example.invalid")),
        "{tried:?}"
    );

    let mut tried = Vec::new();
    let err = fetch_as_metadata(&http(), "http://example.invalid/tenant", &mut tried).await;
    assert!(
        matches!(err, Err(DiscoveryError::Insecure { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_endpoint_in_plain_http_off_this_machine_is_refused() {
    let site = protected_site().await;
    publish_prm(&site, &site.base);
    let mut doc = as_doc(&site.base, &site.base);
    doc["token_endpoint"] = json!("http://example.invalid/token");
    site.get(OAUTH_ROOT, Reply::json(doc));
    let err = discover(&http(), &site.mcp()).await.unwrap_err();
    assert!(
        matches!(&err, DiscoveryError::Insecure { url, .. } if url == "http://example.invalid/token"),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_diagnosed_as_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = url::Url::parse(&format!("http://{}/mcp", listener.local_addr().unwrap())).unwrap();
    drop(listener);
    let err = discover(&http(), &url).await.unwrap_err();
    assert!(matches!(err, DiscoveryError::Unreachable { .. }), "{err:?}");
    assert_eq!(err.code(), DiagnosisCode::UpstreamUnreachable);
    assert_eq!(err.tried()[0].status, None);
    assert!(err.tried()[0].error.is_some());
}

#[tokio::test]
async fn an_oversized_document_is_skipped_and_noted_whether_announced_or_streamed() {
    for streamed in [false, true] {
        let site = protected_site().await;
        let mut huge = prm_doc(&site.url("/mcp"), &site.base);
        huge["padding"] = json!("x".repeat(MAX_METADATA_BYTES + 1));
        let reply = Reply::json(huge);
        site.get(PRM_PATH, if streamed { reply.streamed() } else { reply });
        site.get(PRM_ROOT, Reply::json(prm_doc(&site.base, &site.base)));
        site.get(OAUTH_ROOT, Reply::json(as_doc(&site.base, &site.base)));
        let d = discover(&http(), &site.mcp()).await.unwrap();
        let big = &d.tried[1];
        assert_eq!(big.status, Some(200));
        assert!(
            big.error.as_deref().unwrap().contains("larger than"),
            "{big:?}"
        );
        assert_eq!(
            d.resource_metadata_url.unwrap().as_str(),
            site.url(PRM_ROOT)
        );
    }
}

#[tokio::test]
async fn an_announced_oversized_document_is_refused_without_reading_it() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A server that announces a huge body, sends one byte and then stalls: the announced
    // length alone must be enough to refuse it, long before the client's timeout.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100000000\r\n\r\n{";
                let _ = sock.write_all(head.as_bytes()).await;
                tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            });
        }
    });
    let mut tried = Vec::new();
    let started = std::time::Instant::now();
    let err = fetch_as_metadata(&http(), &format!("http://{addr}"), &mut tried).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "it waited for the body"
    );
    let DiscoveryError::NotFound { tried, .. } = err.unwrap_err() else {
        panic!("expected NotFound");
    };
    assert!(
        tried.iter().all(|t| t
            .error
            .as_deref()
            .is_some_and(|e| e.contains("larger than"))),
        "{tried:?}"
    );
}

#[tokio::test]
async fn metadata_redirected_to_another_origin_is_not_used() {
    let elsewhere = Site::start().await;
    elsewhere.get(
        "/prm",
        Reply::json(prm_doc("https://evil.example.com/mcp", &elsewhere.base)),
    );
    let site = protected_site().await;
    site.get(PRM_PATH, Reply::redirect(&elsewhere.url("/prm")));
    site.get(
        PRM_ROOT,
        Reply::json(prm_doc(&site.url("/mcp"), &site.base)),
    );
    site.get(OAUTH_ROOT, Reply::json(as_doc(&site.base, &site.base)));
    let d = discover(&http(), &site.mcp()).await.unwrap();
    assert!(
        d.tried[1]
            .error
            .as_deref()
            .unwrap()
            .contains("another origin"),
        "{:?}",
        d.tried
    );
    assert!(elsewhere.seen().is_empty(), "the redirect was followed");
    assert_eq!(d.resource, site.url("/mcp"));
}

#[tokio::test]
async fn metadata_redirected_on_its_own_origin_is_followed_and_listed() {
    let site = protected_site().await;
    site.get(PRM_PATH, Reply::redirect(&site.url("/moved/prm")));
    site.get(
        "/moved/prm",
        Reply::json(prm_doc(&site.url("/mcp"), &site.base)),
    );
    site.get(OAUTH_ROOT, Reply::json(as_doc(&site.base, &site.base)));
    let d = discover(&http(), &site.mcp()).await.unwrap();
    assert_eq!(
        statuses(&d.tried)[1..3],
        [
            (site.url(PRM_PATH), Some(302)),
            (site.url("/moved/prm"), Some(200))
        ]
    );
    assert_eq!(d.resource, site.url("/mcp"));
}

#[tokio::test]
async fn an_html_page_at_a_metadata_url_is_skipped() {
    let site = protected_site().await;
    site.get(PRM_PATH, Reply::text(200, "<!doctype html><p>app</p>"));
    site.get(PRM_ROOT, Reply::json(prm_doc(&site.base, &site.base)));
    site.get(OAUTH_ROOT, Reply::json(as_doc(&site.base, &site.base)));
    let d = discover(&http(), &site.mcp()).await.unwrap();
    assert!(d.tried[1].error.as_deref().unwrap().contains("not JSON"));
    assert_eq!(d.source, MetadataSource::Discovered);
}
