//! Proxy selection from the environment, the way kubectl (Go's `httpproxy`) does it: a
//! `proxy-url` in the kubeconfig wins; otherwise HTTPS_PROXY/HTTP_PROXY unless NO_PROXY or a
//! loopback host says not to. kube-rs only reads the kubeconfig, so this fills the gap.

use std::net::IpAddr;

/// The proxy variables, read once (upper case first, as Go does).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProxyEnv {
    pub https_proxy: Option<String>,
    pub http_proxy: Option<String>,
    pub no_proxy: Option<String>,
}

impl ProxyEnv {
    pub fn from_process_env() -> Self {
        fn var(names: [&str; 2]) -> Option<String> {
            names
                .iter()
                .filter_map(|n| std::env::var(n).ok())
                .find(|v| !v.trim().is_empty())
        }
        ProxyEnv {
            https_proxy: var(["HTTPS_PROXY", "https_proxy"]),
            http_proxy: var(["HTTP_PROXY", "http_proxy"]),
            no_proxy: var(["NO_PROXY", "no_proxy"]),
        }
    }

    /// The proxy URL to use for `server`, or `None` to connect directly.
    pub fn proxy_for(&self, server: &http::Uri) -> Option<String> {
        let proxy = match server.scheme_str() {
            Some("http") => self.http_proxy.as_deref(),
            _ => self.https_proxy.as_deref(),
        }?;
        let host = server.host()?.trim_start_matches('[').trim_end_matches(']');
        let port = server
            .port_u16()
            .unwrap_or(if server.scheme_str() == Some("http") {
                80
            } else {
                443
            });
        if !use_proxy(host, port, self.no_proxy.as_deref().unwrap_or("")) {
            return None;
        }
        // Go accepts "proxy:3128" and means http://proxy:3128.
        Some(if proxy.contains("://") {
            proxy.to_string()
        } else {
            format!("http://{proxy}")
        })
    }
}

/// Go's rules: never for localhost or loopback; `*` disables; entries are IPs, CIDRs or domains
/// (`example.com` matches it and its subdomains, `.example.com` only subdomains), each with an
/// optional `:port`.
fn use_proxy(host: &str, port: u16, no_proxy: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let ip = host.parse::<IpAddr>().ok();
    if host == "localhost" || ip.is_some_and(|ip| ip.is_loopback()) {
        return false;
    }
    for entry in no_proxy.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let entry = entry.to_ascii_lowercase();
        if entry == "*" {
            return false;
        }
        if let Some((net, bits)) = entry.split_once('/') {
            if let (Some(ip), Ok(net), Ok(bits)) = (ip, net.parse::<IpAddr>(), bits.parse::<u8>())
                && cidr_contains(net, bits, ip)
            {
                return false;
            }
            continue;
        }
        let (entry_host, entry_port) = split_host_port(&entry);
        if entry_port.is_some_and(|p| p != port) {
            continue;
        }
        if let Ok(entry_ip) = entry_host.parse::<IpAddr>() {
            if ip == Some(entry_ip) {
                return false;
            }
            continue;
        }
        let entry_host = entry_host.trim_start_matches('*');
        let matched = match entry_host.strip_prefix('.') {
            Some(suffix) => host.ends_with(&format!(".{suffix}")),
            None => host == entry_host || host.ends_with(&format!(".{entry_host}")),
        };
        if matched {
            return false;
        }
    }
    true
}

fn split_host_port(entry: &str) -> (&str, Option<u16>) {
    // "[::1]:6443", "host:6443", "::1" (an IPv6 address without port), "host".
    if let Some(rest) = entry.strip_prefix('[')
        && let Some((h, p)) = rest.split_once("]:")
    {
        return (h, p.parse().ok());
    }
    match entry.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p.parse().ok()),
        _ => (entry.trim_start_matches('[').trim_end_matches(']'), None),
    }
}

fn cidr_contains(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(https: &str, no_proxy: &str) -> ProxyEnv {
        ProxyEnv {
            https_proxy: Some(https.into()),
            http_proxy: None,
            no_proxy: Some(no_proxy.into()),
        }
    }

    #[test]
    fn proxy_decisions() {
        let cases = [
            // (server, NO_PROXY, expected proxy)
            ("https://10.0.0.1:6443", "", Some("http://proxy:3128")),
            ("https://127.0.0.1:6443", "", None),
            ("https://localhost:6443", "", None),
            ("https://[::1]:6443", "", None),
            ("https://10.0.0.1:6443", "*", None),
            ("https://10.0.0.1:6443", "10.0.0.0/8", None),
            (
                "https://11.0.0.1:6443",
                "10.0.0.0/8",
                Some("http://proxy:3128"),
            ),
            ("https://10.0.0.1:6443", "10.0.0.1", None),
            (
                "https://10.0.0.1:6443",
                "10.0.0.1:443",
                Some("http://proxy:3128"),
            ),
            ("https://10.0.0.1:6443", "10.0.0.1:6443", None),
            ("https://api.corp.example:6443", "corp.example", None),
            ("https://corp.example:6443", "corp.example", None),
            (
                "https://corp.example:6443",
                ".corp.example",
                Some("http://proxy:3128"),
            ),
            ("https://api.corp.example:6443", ".corp.example", None),
            ("https://api.corp.example:6443", "*.corp.example", None),
            (
                "https://notcorp.example:6443",
                "corp.example",
                Some("http://proxy:3128"),
            ),
            (
                "https://API.Corp.Example:6443",
                " other.test , corp.example ",
                None,
            ),
        ];
        for (server, no_proxy, want) in cases {
            let got = env("proxy:3128", no_proxy).proxy_for(&server.parse().unwrap());
            assert_eq!(got.as_deref(), want, "{server} with NO_PROXY={no_proxy:?}");
        }
    }

    #[test]
    fn http_server_uses_http_proxy() {
        let e = ProxyEnv {
            https_proxy: Some("http://secure:1".into()),
            http_proxy: Some("http://plain:2".into()),
            no_proxy: None,
        };
        assert_eq!(
            e.proxy_for(&"http://10.1.1.1:8080".parse().unwrap())
                .as_deref(),
            Some("http://plain:2")
        );
        assert_eq!(
            e.proxy_for(&"https://10.1.1.1".parse().unwrap()).as_deref(),
            Some("http://secure:1")
        );
    }

    #[test]
    fn no_proxy_env_means_direct() {
        assert_eq!(
            ProxyEnv::default().proxy_for(&"https://10.0.0.1".parse().unwrap()),
            None
        );
    }
}
