//! Where server-supplied metadata may send tether's requests: never deeper into the user's
//! own network than the server that named the URL. A server on the internet could
//! otherwise name `http://127.0.0.1:…` or `https://10.0.0.5/…` in its metadata and have
//! tether, from inside that network, ask a service the server itself cannot reach.
//!
//! Host names are judged as written (`localhost` and `*.localhost` are this machine; any
//! other name counts as the internet): tether does not resolve them first.

use std::net::{Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// How far into the user's own network an address reaches, in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reach {
    /// Anywhere on the internet.
    Public,
    /// A private, link-local or shared (carrier-grade NAT) address.
    Private,
    /// This machine.
    Loopback,
}

impl Reach {
    fn words(self) -> &'static str {
        match self {
            Reach::Public => "on the internet",
            Reach::Private => "on a private network",
            Reach::Loopback => "on this machine",
        }
    }
}

/// Where `url`'s host is.
pub fn reach(url: &Url) -> Reach {
    match url.host() {
        Some(Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if d == "localhost" || d.ends_with(".localhost") {
                Reach::Loopback
            } else {
                Reach::Public
            }
        }
        Some(Host::Ipv4(ip)) => reach_v4(ip),
        Some(Host::Ipv6(ip)) => reach_v6(ip),
        None => Reach::Public,
    }
}

fn reach_v4(ip: Ipv4Addr) -> Reach {
    let [a, b, ..] = ip.octets();
    // 0.0.0.0 reaches this machine's own services on most systems.
    if ip.is_loopback() || ip.is_unspecified() {
        Reach::Loopback
    } else if ip.is_private() || ip.is_link_local() || (a == 100 && (64..128).contains(&b)) {
        Reach::Private
    } else {
        Reach::Public
    }
}

fn reach_v6(ip: Ipv6Addr) -> Reach {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return reach_v4(v4);
    }
    let first = ip.segments()[0];
    if ip.is_loopback() || ip.is_unspecified() {
        Reach::Loopback
    } else if first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfe80 {
        // fc00::/7 unique local, fe80::/10 link-local.
        Reach::Private
    } else {
        Reach::Public
    }
}

/// Why tether may not send a request to `target`, which metadata from `source` named;
/// `None` when it may. The target must be https (plain http only between two addresses
/// on this machine) and reach no deeper into the network than `source`.
pub fn refusal(source: &Url, target: &Url) -> Option<String> {
    let (from, to) = (reach(source), reach(target));
    if to > from {
        return Some(format!(
            "an address {}, named by a server {}",
            to.words(),
            from.words()
        ));
    }
    match target.scheme() {
        "https" => None,
        "http" if to == Reach::Loopback && from == Reach::Loopback => None,
        "http" => Some("plain http, where tokens would travel in the clear".to_string()),
        other => Some(format!("a '{other}' URL, not https")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).expect("test URL")
    }

    #[test]
    fn every_address_class_is_placed() {
        use Reach::*;
        for (url, want) in [
            ("https://127.0.0.1/", Loopback),
            ("https://127.8.9.10/", Loopback),
            ("https://0.0.0.0/", Loopback),
            ("https://[::1]/", Loopback),
            ("https://[::]/", Loopback),
            ("https://[::ffff:127.0.0.1]/", Loopback),
            ("https://localhost:8443/", Loopback),
            ("https://LOCALHOST./", Loopback),
            ("https://api.localhost/", Loopback),
            ("https://10.1.2.3/", Private),
            ("https://172.16.0.1/", Private),
            ("https://172.31.255.255/", Private),
            ("https://192.168.1.1/", Private),
            ("https://169.254.169.254/", Private),
            ("https://100.64.0.1/", Private),
            ("https://[fc00::1]/", Private),
            ("https://[fd12:3456::1]/", Private),
            ("https://[fe80::1]/", Private),
            ("https://[::ffff:10.0.0.1]/", Private),
            ("https://172.32.0.1/", Public),
            ("https://100.128.0.1/", Public),
            ("https://8.8.8.8/", Public),
            ("https://[2001:db8::1]/", Public),
            ("https://as.example.com/", Public),
            ("https://localhost.example.com/", Public),
        ] {
            assert_eq!(reach(&u(url)), want, "{url}");
        }
    }

    #[test]
    fn metadata_never_points_deeper_into_the_network_than_its_server() {
        let public = u("https://mcp.example.com/mcp");
        for target in [
            "https://127.0.0.1/prm",
            "https://localhost/prm",
            "https://[::1]/prm",
            "https://10.0.0.5/token",
            "https://169.254.169.254/latest/meta-data",
            "https://[fe80::1]/r",
            "http://as.example.com/token",
            "ftp://as.example.com/token",
        ] {
            assert!(refusal(&public, &u(target)).is_some(), "{target}");
        }
        assert_eq!(refusal(&public, &u("https://as.example.org/token")), None);
        let intranet = u("https://10.0.0.4/mcp");
        assert_eq!(refusal(&intranet, &u("https://10.0.0.5/token")), None);
        assert!(refusal(&intranet, &u("https://127.0.0.1/token")).is_some());
        assert!(refusal(&intranet, &u("http://10.0.0.5/token")).is_some());
        let local = u("http://127.0.0.1:8080/mcp");
        assert_eq!(refusal(&local, &u("http://localhost:9000/token")), None);
        assert_eq!(refusal(&local, &u("https://as.example.com/token")), None);
        assert!(
            refusal(&public, &u("https://127.0.0.1/x"))
                .is_some_and(|r| r.contains("on this machine") && r.contains("on the internet"))
        );
    }
}
