//! The WebSocket handshake rules of `docs/PROTOCOL.md` section 1: the `wamp` subprotocol and the
//! origin allow-list, shared by every transport.

use http::{HeaderMap, StatusCode};

use crate::router::Options;

/// The WebSocket subprotocol of WAMP v1.
pub const SUBPROTOCOL: &str = "wamp";

/// A refused handshake: the HTTP status and a body saying why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 400 for the subprotocol, 403 for the origin, 503 for the connection limit.
    pub status: StatusCode,
    /// Why, for the person reading the client's error.
    pub body: String,
}

/// Checks the request headers. `Ok(true)` when the client offered `wamp` (the response must
/// then carry `Sec-WebSocket-Protocol: wamp`).
pub fn check(headers: &HeaderMap, options: &Options) -> Result<bool, Refusal> {
    if let (Some(allowed), Some(origin)) =
        (&options.allowed_origins, headers.get(http::header::ORIGIN))
    {
        let origin = origin.to_str().unwrap_or("");
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
            return Err(Refusal {
                status: StatusCode::FORBIDDEN,
                body: format!("origin {origin} is not allowed to connect to this WAMP server"),
            });
        }
    }
    let mut offered_any = false;
    let mut offers_wamp = false;
    for value in headers.get_all(http::header::SEC_WEBSOCKET_PROTOCOL) {
        for token in value.to_str().unwrap_or("").split(',') {
            let token = token.trim();
            if token.is_empty() {
                continue;
            }
            offered_any = true;
            offers_wamp |= token.eq_ignore_ascii_case(SUBPROTOCOL);
        }
    }
    if offers_wamp {
        return Ok(true);
    }
    if offered_any || options.strict_subprotocol {
        return Err(Refusal {
            status: StatusCode::BAD_REQUEST,
            body: "this server only speaks WAMP v1: offer the WebSocket subprotocol \"wamp\""
                .to_string(),
        });
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn subprotocol_rules() {
        let o = Options::default();
        assert_eq!(
            check(&headers(&[("sec-websocket-protocol", "wamp")]), &o),
            Ok(true)
        );
        assert_eq!(
            check(&headers(&[("sec-websocket-protocol", "x, WAMP ")]), &o),
            Ok(true)
        );
        assert_eq!(check(&headers(&[]), &o), Ok(false));
        let e = check(&headers(&[("sec-websocket-protocol", "wamp.2.json")]), &o).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let strict = Options {
            strict_subprotocol: true,
            ..Options::default()
        };
        assert!(check(&headers(&[]), &strict).is_err());
    }

    #[test]
    fn origin_rules() {
        let o = Options {
            allowed_origins: Some(vec!["http://localhost:8080".into()]),
            ..Options::default()
        };
        assert!(check(&headers(&[("origin", "http://localhost:8080")]), &o).is_ok());
        assert!(check(&headers(&[]), &o).is_ok());
        let e = check(&headers(&[("origin", "http://evil.example")]), &o).unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
    }
}
