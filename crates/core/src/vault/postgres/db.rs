//! The database sessions of one tether process: where the PostgreSQL store's queries run.
//!
//! tokio-postgres sessions are driven on a runtime of their own, on a thread of their own,
//! so that the vault's blocking API (`Backend::load`, `Backend::update`, called from the
//! blocking pool and from plain threads alike) can wait for a query from any thread without
//! a runtime of its caller. A client's own futures only pass messages to its session, so
//! async callers (the refresh lock) await them on their own runtime.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::path::Path;

use tokio_postgres::{AsyncMessage, Client, Config, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

/// How long a new session may take to connect before the store is called unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How TLS is set up for the store's sessions.
#[derive(Clone)]
pub enum Tls {
    Off,
    Rustls(MakeRustlsConnect),
}

/// A message from the change feed: another commit's revision, or the feed (re)connected
/// and read the revision itself.
pub type Feed = tokio::sync::mpsc::UnboundedSender<i64>;

pub struct Db {
    runtime: tokio::runtime::Handle,
    /// Dropped with the store: ends the thread and every session on it.
    _stop: tokio::sync::oneshot::Sender<()>,
    config: Config,
    tls: Tls,
    /// The session for reads and transactions, opened again when it dies.
    session: Mutex<Option<Arc<Client>>>,
}

impl Db {
    pub fn start(config: Config, tls: Tls) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("tether-store".into())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            })?;
        Ok(Self {
            runtime: handle,
            _stop: stop,
            config,
            tls,
            session: Mutex::new(None),
        })
    }

    /// Runs `work` on the store's runtime and waits for it, from any thread.
    pub fn block<T: Send + 'static>(&self, work: impl Future<Output = T> + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            let _ = tx.send(work.await);
        });
        rx.recv()
            .expect("the store's runtime runs as long as the store")
    }

    /// Starts `work` on the store's runtime without waiting for it.
    pub fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        self.runtime.spawn(work);
    }

    /// The shared session, connected again if it died (the database restarted, say).
    pub fn session(&self) -> Result<Arc<Client>, tokio_postgres::Error> {
        let mut slot = self.session.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = slot.as_ref()
            && !client.is_closed()
        {
            return Ok(client.clone());
        }
        let (config, tls) = (self.config.clone(), self.tls.clone());
        let client = Arc::new(self.block(async move { connect(&config, &tls, None).await })?);
        *slot = Some(client.clone());
        Ok(client)
    }

    /// A session of its own (the refresh locks live in one), connected on the store's
    /// runtime.
    pub async fn own_session(&self) -> Result<Client, tokio_postgres::Error> {
        let (config, tls) = (self.config.clone(), self.tls.clone());
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.runtime.spawn(async move {
            let _ = tx.send(connect(&config, &tls, None).await);
        });
        rx.await
            .expect("the store's runtime runs as long as the store")
    }

    /// Follows `channel`'s notifications for as long as the store lives: every payload
    /// that parses as a revision goes to `feed`, and after each (re)connection so does the
    /// revision read at that moment, so a feed that was down catches up.
    pub fn listen(&self, channel: &'static str, feed: Feed) {
        let (config, tls) = (self.config.clone(), self.tls.clone());
        self.spawn(async move {
            loop {
                if feed.is_closed() {
                    return;
                }
                match connect(&config, &tls, Some(feed.clone())).await {
                    Ok(client) => {
                        let listened = client
                            .batch_execute(&format!("LISTEN {channel}"))
                            .await
                            .and(Ok(()));
                        if listened.is_ok()
                            && let Ok(Some(row)) = client
                                .query_opt("SELECT revision FROM tether_vault", &[])
                                .await
                        {
                            let _ = feed.send(row.get(0));
                        }
                        if listened.is_ok() {
                            // Held until the session ends; then connect again.
                            while !client.is_closed() {
                                tokio::time::sleep(Duration::from_millis(200)).await;
                            }
                        }
                    }
                    Err(e) => tracing::debug!("the store's change feed cannot connect: {e}"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
}

/// Connects one session and drives it on the current runtime; notifications go to `feed`.
async fn connect(
    config: &Config,
    tls: &Tls,
    feed: Option<Feed>,
) -> Result<Client, tokio_postgres::Error> {
    let mut config = config.clone();
    config.connect_timeout(CONNECT_TIMEOUT);
    match tls {
        Tls::Off => {
            let (client, connection) = config.connect(NoTls).await?;
            tokio::spawn(drive(connection, feed));
            Ok(client)
        }
        Tls::Rustls(make) => {
            let (client, connection) = config.connect(make.clone()).await?;
            tokio::spawn(drive(connection, feed));
            Ok(client)
        }
    }
}

/// Runs a session's connection until it ends, passing notifications on.
async fn drive<S, T>(mut connection: tokio_postgres::Connection<S, T>, feed: Option<Feed>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let message = std::future::poll_fn(|cx| connection.poll_message(cx)).await;
        match message {
            Some(Ok(AsyncMessage::Notification(n))) => {
                if let (Some(feed), Ok(revision)) = (&feed, n.payload().parse::<i64>()) {
                    let _ = feed.send(revision);
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                tracing::debug!("a store session ended: {e}");
                return;
            }
            None => return,
        }
    }
}

/// The address as messages show it: no password.
pub fn shown(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{}",
        config.get_user().unwrap_or(""),
        config.get_dbname().unwrap_or("")
    )
}

/// `url` without what could be a password (for an address that did not parse).
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("…"));
            }
            parsed.set_query(None);
            parsed.to_string()
        }
        Err(_) => "the store address".to_string(),
    }
}

/// A database error with its causes, the way an operator wants to read it.
/// What the database said is made printable: it is the server's text.
pub fn why(e: &tokio_postgres::Error) -> String {
    let text = match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
    };
    crate::printable::printable(&text, 500)
}

/// TLS for the store's sessions: none with `sslmode=disable`, else rustls with the
/// system's roots or `ca_file`'s.
pub fn tls(config: &tokio_postgres::Config, ca_file: Option<&Path>) -> Result<Tls, String> {
    use tokio_postgres::config::SslMode;
    if config.get_ssl_mode() == SslMode::Disable {
        return Ok(Tls::Off);
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS cannot be set up: {e}"))?;
    let client = match ca_file {
        Some(path) => {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject;
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("cannot read the CA file '{}': {e}", path.display()))?;
            for cert in certs {
                let cert =
                    cert.map_err(|e| format!("the CA file '{}' is not PEM: {e}", path.display()))?;
                roots.add(cert).map_err(|e| {
                    format!(
                        "the CA file '{}' holds a bad certificate: {e}",
                        path.display()
                    )
                })?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => {
            use rustls_platform_verifier::BuilderVerifierExt;
            builder
                .with_platform_verifier()
                .map_err(|e| format!("the system's certificate authorities cannot be read: {e}"))?
                .with_no_client_auth()
        }
    };
    Ok(Tls::Rustls(tokio_postgres_rustls::MakeRustlsConnect::new(
        client,
    )))
}
