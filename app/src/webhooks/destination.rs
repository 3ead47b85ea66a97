//! Where a webhook may be delivered: public addresses only, unless the operator allows private
//! ones for development. Checked when the URL is set and again at every delivery, on the
//! addresses the name resolves to then (a name can be re-pointed at the operator's network).

use std::net::{IpAddr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether `address` is reachable on the public internet: not loopback, private, link-local,
/// carrier-grade NAT, unique-local, multicast, documentation or unspecified.
pub fn is_public(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8
                || first == 0x0064 && v6.segments()[1] == 0xff9b)
        }
    }
}

/// The address written in a URL's host, if it is one rather than a name (names go through
/// `PublicOnly` at delivery; addresses never reach a resolver).
pub fn literal_address(url: &reqwest::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

/// Why a URL's destination is refused, or `None` when it may be used. Names are resolved;
/// a name that does not resolve now is left to the delivery-time check.
pub async fn refusal(url: &reqwest::Url) -> Option<String> {
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses: Vec<IpAddr> = match url.host()? {
        url::Host::Ipv4(_) | url::Host::Ipv6(_) => literal_address(url).into_iter().collect(),
        url::Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name == "localhost" || name.ends_with(".localhost") {
                return Some(format!("{name} is this machine"));
            }
            match tokio::time::timeout(
                std::time::Duration::from_secs(3),
                tokio::net::lookup_host((name.as_str(), port)),
            )
            .await
            {
                Ok(Ok(found)) => found.map(|a| a.ip()).collect(),
                _ => return None,
            }
        }
    };
    addresses
        .into_iter()
        .find(|a| !is_public(*a))
        .map(|a| format!("it points at {a}, which is not a public address"))
}

/// A resolver that hands reqwest only public addresses, so a delivery never connects to the
/// operator's network whatever the name resolves to at that moment.
pub struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for address in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(!is_public(address.parse().unwrap()), "{address}");
        }
        for address in ["1.1.1.1", "8.8.8.8", "2606:4700:4700::1111"] {
            assert!(is_public(address.parse().unwrap()), "{address}");
        }
    }

    #[tokio::test]
    async fn literal_and_local_names_are_refused_at_configuration() {
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://[::1]/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://localhost/hook",
            "http://api.localhost./hook",
            "http://0x7f000001/hook",
        ] {
            let parsed = reqwest::Url::parse(url).unwrap();
            assert!(refusal(&parsed).await.is_some(), "{url}");
        }
        let public = reqwest::Url::parse("https://203.0.114.1/hook").unwrap();
        assert_eq!(refusal(&public).await, None);
    }
}
