//! Whose program is on the other end of a loopback connection. Every account on a machine
//! can reach tether's loopback port, so a consent given from a page counts only when the
//! browser's socket belongs to the user running tether. On Linux the kernel says who owns
//! each TCP socket (`/proc/net/tcp`, `/proc/net/tcp6`); elsewhere the owner is unknown and
//! consent is given in the terminal UI instead.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Who owns the client side of a connection to this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The user this process runs as.
    Us,
    /// Another account.
    Other,
    /// This system does not say (or the socket is gone).
    Unknown,
}

/// The owner of the socket at `peer` connected to `local` (this process's end).
pub fn owner(peer: SocketAddr, local: SocketAddr) -> Owner {
    #[cfg(target_os = "linux")]
    {
        let Some(me) = own_uid() else {
            return Owner::Unknown;
        };
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            let Ok(text) = std::fs::read_to_string(table) else {
                continue;
            };
            if let Some(uid) = uid_in_table(&text, peer, local) {
                return if uid == me { Owner::Us } else { Owner::Other };
            }
        }
        Owner::Unknown
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (peer, local);
        Owner::Unknown
    }
}

#[cfg(target_os = "linux")]
fn own_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    // `/proc/self` belongs to the process's effective user.
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// The uid column of the table row whose local end is `peer` and remote end `local`.
fn uid_in_table(text: &str, peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    text.lines().skip(1).find_map(|line| {
        let mut fields = line.split_whitespace();
        let (_, here, there) = (fields.next()?, fields.next()?, fields.next()?);
        let uid = fields.nth(4)?;
        (same(parse(here)?, peer) && same(parse(there)?, local)).then(|| uid.parse().ok())?
    })
}

/// Equal, counting an IPv4 address and its IPv6-mapped form as one.
fn same(a: SocketAddr, b: SocketAddr) -> bool {
    let canonical = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    a.port() == b.port() && canonical(a.ip()) == canonical(b.ip())
}

/// `0100007F:1F90` (IPv4) or 32 hex digits (IPv6), as the kernel prints them: each 32-bit
/// word in the machine's byte order.
fn parse(field: &str) -> Option<SocketAddr> {
    let (addr, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| {
        addr.get(i * 8..i * 8 + 8)
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .map(u32::to_ne_bytes)
    };
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_endian = "little")]
    #[test]
    fn the_owner_is_read_from_the_kernels_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1EC6 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n\
   1: 0100007F:C350 0100007F:1EC6 01 00000000:00000000 00:00000000 00000000  1000        0 2 1 0 20 4 30 10 -1\n";
        let peer: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:7878".parse().unwrap();
        assert_eq!(uid_in_table(table, peer, local), Some(1000));
        assert_eq!(uid_in_table(table, local, peer), None);
        let v6 = "sl local rem\n 0: 0000000000000000FFFF00000100007F:C350 0000000000000000FFFF00000100007F:1EC6 01 0:0 0:0 0 1001 0 3\n";
        assert_eq!(uid_in_table(v6, peer, local), Some(1001));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_connection_this_process_made_is_its_own() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server_side, peer) = listener.accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        assert_eq!(owner(peer, server_side.local_addr().unwrap()), Owner::Us);
    }
}
