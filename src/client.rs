//! Where a request comes from: the client address the sign-in throttle
//! counts by. It is the peer address of the connection (`server` puts it in
//! each request as axum's `ConnectInfo`), or, behind a reverse proxy named
//! with `--trusted-proxy-header`, the address that proxy writes into that
//! header. A header is trusted only when configured: otherwise any client
//! could name any address and escape its own count.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, HeaderName};
use tower::util::MapRequestLayer;

use crate::domain::throttle::ClientAddress;

/// The layer that puts each request's [`ClientAddress`] in its extensions
/// (none when the connection's peer is unknown, as in a router called
/// directly).
pub fn layer(trusted_header: Option<HeaderName>) -> MapRequestLayer<impl Fn(Request) -> Request + Clone> {
    MapRequestLayer::new(move |mut request: Request| {
        if let Some(address) = client_address(&request, trusted_header.as_ref()) {
            request.extensions_mut().insert(address);
        }
        request
    })
}

/// The client address of `request`: from `trusted_header` when it is
/// configured and holds an address, else the connection's peer.
pub fn client_address(request: &Request, trusted_header: Option<&HeaderName>) -> Option<ClientAddress> {
    let from_header = trusted_header.and_then(|name| forwarded_address(request.headers(), name));
    let peer = || request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| peer.ip());
    from_header.or_else(peer).map(ClientAddress::new)
}

/// The address a trusted proxy put in header `name`: the last one of its
/// last line (`X-Forwarded-For` lists the hops, and a proxy appends the
/// address it saw, so the entries before it are the client's own claims).
/// An address with a port (`192.0.2.1:4711`, `[2001:db8::1]:4711`) counts
/// by its address.
fn forwarded_address(headers: &HeaderMap, name: &HeaderName) -> Option<IpAddr> {
    let value = headers.get_all(name).iter().next_back()?.to_str().ok()?;
    let last = value.rsplit(',').next()?.trim();
    last.parse::<IpAddr>().ok().or_else(|| last.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

/// Parses a header name given on the command line (`X-Forwarded-For`).
pub fn parse_header_name(raw: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(raw.trim().as_bytes()).map_err(|e| format!("`{raw}` is not a header name: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(peer: &str, headers: &[(&str, &str)]) -> Request {
        let mut builder = axum::http::Request::builder();
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let mut request = builder.body(axum::body::Body::empty()).unwrap();
        request.extensions_mut().insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        request
    }

    #[test]
    fn the_socket_decides_unless_a_proxy_header_is_trusted() {
        let xff = HeaderName::from_static("x-forwarded-for");
        let r = request("10.0.0.1:5000", &[("x-forwarded-for", "203.0.113.9, 198.51.100.7")]);
        assert_eq!(client_address(&r, None).unwrap().ip().to_string(), "10.0.0.1");
        assert_eq!(client_address(&r, Some(&xff)).unwrap().ip().to_string(), "198.51.100.7");
        let with_port = request("10.0.0.1:5000", &[("x-forwarded-for", "[2001:db8::7]:443")]);
        assert_eq!(client_address(&with_port, Some(&xff)).unwrap().ip().to_string(), "2001:db8::7");
        let garbage = request("10.0.0.1:5000", &[("x-forwarded-for", "unknown")]);
        assert_eq!(client_address(&garbage, Some(&xff)).unwrap().ip().to_string(), "10.0.0.1");
        let absent = request("10.0.0.1:5000", &[]);
        assert_eq!(client_address(&absent, Some(&xff)).unwrap().ip().to_string(), "10.0.0.1");
    }
}
