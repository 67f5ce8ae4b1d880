//! The proxy check: who answers on the proxy's address — a tether holding this vault,
//! nobody, or a stranger that local clients' secrets would go to.

use tether_core::vault::Vault;

use super::{Finding, Status};

/// Who serves the proxy address: a tether holding this vault, nobody, or a stranger that
/// local clients' secrets would go to.
pub(super) async fn proxy_finding(vault: &Vault, proxy: std::net::SocketAddr) -> Finding {
    use tether_core::presence::Presence;
    let (status, summary, remedy) = match tether_core::presence::probe(proxy, vault).await {
        Presence::Ours => (
            Status::Ok,
            format!("tether serves http://{proxy} and proved it holds this vault"),
            None,
        ),
        Presence::Nobody => (
            Status::Warn,
            format!("no tether serves http://{proxy}: local clients cannot connect"),
            Some("run `tether` (the terminal UI) or `tether serve`".to_string()),
        ),
        Presence::Stranger(what) => (
            Status::Fail,
            format!(
                "http://{proxy} is held by {what}: local clients configured with it send their secrets there"
            ),
            Some(format!(
                "stop whatever listens there (`ss -ltnp 'sport = :{}'` names it), or move tether with [proxy] bind in config.toml and run `tether config` again",
                proxy.port()
            )),
        ),
    };
    let mut f = Finding::new("proxy", "reachable", status, summary);
    f.remedy = remedy;
    f
}
