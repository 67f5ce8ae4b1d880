//! Small loopback servers for the discovery tests: each serves exactly the documents a test
//! gives it (everything else is 404) and remembers what it was asked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use url::Url;

#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Sent in chunks without `Content-Length`, so only the reader's own count can stop it.
    pub streamed: bool,
    /// An authorization endpoint that consents at once: a 302 to the request's
    /// `redirect_uri` with this code and the request's `state`.
    pub consent: Option<String>,
}

impl Reply {
    pub fn json(v: Value) -> Self {
        Self::text(200, &v.to_string()).with("content-type", "application/json")
    }

    pub fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.to_string(),
            streamed: false,
            consent: None,
        }
    }

    /// An authorization endpoint that signs the user in at once with `code`.
    pub fn consent(code: &str) -> Self {
        let mut r = Self::status(302);
        r.consent = Some(code.to_string());
        r
    }

    pub fn status(status: u16) -> Self {
        Self::text(status, "")
    }

    /// A 401 with one `WWW-Authenticate` header per challenge given.
    pub fn unauthorized(challenges: &[&str]) -> Self {
        challenges
            .iter()
            .fold(Self::status(401), |r, c| r.with("www-authenticate", c))
    }

    pub fn redirect(to: &str) -> Self {
        Self::status(302).with("location", to)
    }

    pub fn streamed(mut self) -> Self {
        self.streamed = true;
        self
    }

    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

#[derive(Clone, Debug)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: String,
}

type Routes = Arc<Mutex<HashMap<(Method, String), Reply>>>;

#[derive(Clone)]
pub struct Site {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base: String,
    routes: Routes,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Site {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let site = Site {
            base,
            routes: Arc::default(),
            seen: Arc::default(),
        };
        let app = Router::new().fallback(answer).with_state(site.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        site
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, path: &str, reply: Reply) -> &Self {
        self.route(Method::GET, path, reply)
    }

    pub fn post(&self, path: &str, reply: Reply) -> &Self {
        self.route(Method::POST, path, reply)
    }

    fn route(&self, method: Method, path: &str, reply: Reply) -> &Self {
        self.routes
            .lock()
            .unwrap()
            .insert((method, path.to_string()), reply);
        self
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// `{base}/mcp` as the URL discovery starts from.
    pub fn mcp(&self) -> Url {
        Url::parse(&self.url("/mcp")).unwrap()
    }
}

async fn answer(State(site): State<Site>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, 1 << 20).await.unwrap_or_default();
    let path = parts.uri.path().to_string();
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    site.seen.lock().unwrap().push(Seen {
        method: parts.method.clone(),
        path: path.clone(),
        headers: parts.headers.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let reply = site
        .routes
        .lock()
        .unwrap()
        .get(&(parts.method, path))
        .cloned()
        .unwrap_or_else(|| Reply::text(404, "not found"));
    let mut resp = Response::builder().status(StatusCode::from_u16(reply.status).unwrap());
    if let Some(code) = &reply.consent {
        let mut to = Url::parse(&query["redirect_uri"]).unwrap();
        to.query_pairs_mut()
            .append_pair("code", code)
            .append_pair("state", query.get("state").map_or("", String::as_str));
        resp = resp.header("location", to.as_str());
    }
    for (k, v) in &reply.headers {
        resp = resp.header(k, v);
    }
    let body = if reply.streamed {
        let chunks: Vec<Result<String, std::io::Error>> = reply
            .body
            .as_bytes()
            .chunks(16 * 1024)
            .map(|c| Ok(String::from_utf8_lossy(c).into_owned()))
            .collect();
        Body::from_stream(futures_util::stream::iter(chunks))
    } else {
        Body::from(reply.body)
    };
    resp.body(body).unwrap()
}

/// RFC 8414 metadata for `issuer`, endpoints under `endpoints` (a base URL).
pub fn as_doc(issuer: &str, endpoints: &str) -> Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{endpoints}/authorize"),
        "token_endpoint": format!("{endpoints}/token"),
        "registration_endpoint": format!("{endpoints}/register"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
    })
}

pub fn prm_doc(resource: &str, issuer: &str) -> Value {
    json!({
        "resource": resource,
        "authorization_servers": [issuer],
        "scopes_supported": ["read", "write"],
    })
}

/// `(url, status)` for every URL tried, for exact comparisons.
pub fn statuses(tried: &[tether_core::vault::TriedUrl]) -> Vec<(String, Option<u16>)> {
    tried.iter().map(|t| (t.url.clone(), t.status)).collect()
}
