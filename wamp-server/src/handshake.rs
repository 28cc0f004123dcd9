//! The WebSocket handshake rules of `docs/PROTOCOL.md` section 1: the `wamp` subprotocol and the
//! origin rules (same origin, or on the allow-list), shared by every transport.

use http::{HeaderMap, HeaderValue, StatusCode};

use crate::router::Options;

/// The WebSocket subprotocol of WAMP v1.
pub const SUBPROTOCOL: &str = "wamp";

/// The allow-list entry that allows every origin.
pub const ANY_ORIGIN: &str = "*";

/// A refused handshake: the HTTP status and a body saying why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 400 for the subprotocol, 403 for the origin, 503 for the connection limit.
    pub status: StatusCode,
    /// Why, for the person reading the client's error.
    pub body: String,
}

/// Checks the request headers. `Ok(Some(token))` when the client offered `wamp`: the 101
/// response must then carry `Sec-WebSocket-Protocol: token`, the token spelled as the client
/// spelled it (a client checks the answer against its offer). `Ok(None)` when the client
/// offered no subprotocol at all (and the server is not strict).
pub fn check(headers: &HeaderMap, options: &Options) -> Result<Option<String>, Refusal> {
    check_origin(headers, &options.allowed_origins)?;
    let offered = offered_wamp(headers)?;
    if offered.is_none() && options.strict_subprotocol {
        return Err(Refusal {
            status: StatusCode::BAD_REQUEST,
            body: "this server only speaks WAMP v1: offer the WebSocket subprotocol \"wamp\" \
                   (Sec-WebSocket-Protocol: wamp)"
                .to_string(),
        });
    }
    Ok(offered)
}

/// Whether `allowed` lets every origin in (it holds `*`): say so in the log at startup.
pub fn allows_any_origin(allowed: &[String]) -> bool {
    allowed.iter().any(|a| a.trim() == ANY_ORIGIN)
}

/// An allow-list entry as a browser would send the origin: trimmed, lower-cased, without a
/// trailing slash ([`crate::RouterBuilder::allowed_origins`] stores entries so, once).
pub(crate) fn normalise_origin(entry: &str) -> String {
    let mut lower = entry.trim().to_ascii_lowercase();
    if lower.contains("://") && lower.ends_with('/') {
        lower.pop();
    }
    lower
}

/// Checks one allow-list entry as a user typed it (a flag, an environment variable) and
/// returns it lower-cased: `*`, `null`, or `scheme://host[:port]` with no path, user or
/// trailing slash (browsers send origins exactly so, and entries match exactly).
pub fn parse_allowed_origin(entry: &str) -> Result<String, String> {
    let lower = entry.trim().to_ascii_lowercase();
    if lower == ANY_ORIGIN || lower == "null" {
        return Ok(lower);
    }
    let Some((scheme, authority)) = lower.split_once("://") else {
        return Err(format!(
            "{entry:?} is not an origin: write scheme://host[:port], e.g. http://localhost:3000"
        ));
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_lowercase())
        && scheme
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
    if !scheme_ok {
        return Err(format!(
            "{entry:?} has no valid scheme (such as http or https)"
        ));
    }
    if let Some(cut) = authority.find('/') {
        let fixed = format!("{scheme}://{}", &authority[..cut]);
        return Err(format!(
            "{entry:?} has a path: an origin never has one; write {fixed}"
        ));
    }
    if parse_authority(authority).is_none() {
        return Err(format!(
            "{entry:?} is not an origin: write scheme://host[:port], e.g. http://localhost:3000"
        ));
    }
    Ok(lower)
}

/// The origin rule: no `Origin` (not a browser) passes; the same origin as the request passes;
/// an origin on the allow-list passes (exact match after lower-casing, `*` for any, `null`
/// only when listed); any other is refused with 403.
fn check_origin(headers: &HeaderMap, allowed: &[String]) -> Result<(), Refusal> {
    let mut origins = headers.get_all(http::header::ORIGIN).iter();
    let Some(origin) = origins.next() else {
        return Ok(());
    };
    if origins.next().is_some() {
        return Err(forbidden(format!(
            "the request carries more than one Origin header; a browser sends one (first: {})",
            shown(origin)
        )));
    }
    let Ok(text) = origin.to_str() else {
        return Err(forbidden(format!(
            "the Origin header {} is not an origin",
            shown(origin)
        )));
    };
    // The builder normalised the entries (normalise_origin); an entry set directly in
    // Options still matches regardless of case.
    if allowed
        .iter()
        .any(|a| a == ANY_ORIGIN || a.eq_ignore_ascii_case(text))
    {
        return Ok(());
    }
    let lower = text.to_ascii_lowercase();
    if same_origin(&lower, headers) {
        return Ok(());
    }
    let quoted = shown(origin);
    let host = headers
        .get(http::header::HOST)
        .map_or_else(|| "none".to_string(), shown);
    // Not logged here: the listener's one INFO "handshake refused" line carries this body.
    if parse_allowed_origin(text).is_err() {
        return Err(forbidden(format!(
            "origin {quoted} is not an origin a browser sends (scheme://host[:port], no path, \
             no user part): refused\n"
        )));
    }
    Err(forbidden(format!(
        "origin {quoted} may not open a WAMP session here: it is neither this server's own origin \
         (Host {host}) nor on the server's allow-list. To allow it, start the tutorial server \
         with --allow-origin {text} (repeatable; or WAMP_ALLOW_ORIGINS, comma-separated), or add \
         it with RouterBuilder::allowed_origins in an application.\n"
    )))
}

fn forbidden(body: String) -> Refusal {
    Refusal {
        status: StatusCode::FORBIDDEN,
        body,
    }
}

/// A header value for a message: quoted, escaped, at most 200 characters.
fn shown(value: &HeaderValue) -> String {
    let text = String::from_utf8_lossy(value.as_bytes());
    let cut: String = text.chars().take(200).collect();
    format!("{cut:?}")
}

/// Whether the (lower-cased) origin's host and port equal the request's `Host` header, an
/// absent port being the scheme's default (http 80, https 443).
fn same_origin(origin: &str, headers: &HeaderMap) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return false,
    };
    let Some((origin_host, origin_port)) = parse_authority(authority) else {
        return false;
    };
    let Some(host) = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_ascii_lowercase)
    else {
        return false;
    };
    let Some((request_host, request_port)) = parse_authority(&host) else {
        return false;
    };
    origin_host == request_host
        && origin_port.unwrap_or(default_port) == request_port.unwrap_or(default_port)
}

/// Splits `host[:port]` (lower-cased; IPv6 in brackets) into host and port. `None` when it is
/// anything else: a user part (`a@b`), a path, a port that is not a number, a bad host.
fn parse_authority(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if inside.is_empty()
            || !inside
                .chars()
                .all(|c| c.is_ascii_hexdigit() || ":.".contains(c))
        {
            return None;
        }
        let host = &authority[..inside.len() + 2];
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-._".contains(c));
        if !host_ok {
            return None;
        }
        (host, port)
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse().ok()?)
        }
        Some(_) => return None,
    };
    Some((host, port))
}

/// The client's `wamp` token as it spelled it, `None` when it sent no
/// `Sec-WebSocket-Protocol` header; 400 when the header is not a token list or its tokens do
/// not include `wamp` (compared case-insensitively).
fn offered_wamp(headers: &HeaderMap) -> Result<Option<String>, Refusal> {
    let mut values = headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .peekable();
    if values.peek().is_none() {
        return Ok(None);
    }
    let mut tokens = Vec::new();
    for value in values {
        // RFC 7230 lists: elements separated by commas with optional white space; empty
        // elements are allowed and ignored.
        for element in value.as_bytes().split(|&b| b == b',') {
            let element = element.trim_ascii();
            if element.is_empty() {
                continue;
            }
            if !element.iter().all(|&b| is_tchar(b)) {
                return Err(bad_request(format!(
                    "the Sec-WebSocket-Protocol header {} is not a comma-separated list of \
                     tokens: offer the WebSocket subprotocol \"wamp\" (Sec-WebSocket-Protocol: wamp)\n",
                    shown(value)
                )));
            }
            // Only visible ASCII is left, so this is exact.
            tokens.push(String::from_utf8_lossy(element).into_owned());
        }
    }
    if tokens.is_empty() {
        return Err(bad_request(
            "the Sec-WebSocket-Protocol header names no subprotocol: offer the WebSocket \
             subprotocol \"wamp\" (Sec-WebSocket-Protocol: wamp)\n"
                .to_string(),
        ));
    }
    match tokens.iter().find(|t| t.eq_ignore_ascii_case(SUBPROTOCOL)) {
        Some(token) => Ok(Some(token.clone())),
        None => {
            let offered: String = tokens.join(", ").chars().take(200).collect();
            Err(bad_request(format!(
                "this server only speaks WAMP v1 (WebSocket subprotocol \"wamp\"); the client \
                 offered {offered:?}: offer \"wamp\" (Sec-WebSocket-Protocol: wamp)\n"
            )))
        }
    }
}

fn bad_request(body: String) -> Refusal {
    Refusal {
        status: StatusCode::BAD_REQUEST,
        body,
    }
}

/// RFC 7230 `tchar`: the characters a token may hold.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    fn proto(value: &'static str) -> HeaderMap {
        headers(&[("sec-websocket-protocol", value.as_bytes())])
    }

    #[test]
    fn subprotocol_rules() {
        let o = Options::default();
        assert_eq!(check(&proto("wamp"), &o), Ok(Some("wamp".into())));
        // Case-insensitive, answered as the client spelled it; white space and empty list
        // elements are allowed.
        assert_eq!(check(&proto("x, WAMP "), &o), Ok(Some("WAMP".into())));
        assert_eq!(check(&proto(",\tWamp,,"), &o), Ok(Some("Wamp".into())));
        assert_eq!(check(&headers(&[]), &o), Ok(None));
        // Two headers form one list.
        let two = headers(&[
            ("sec-websocket-protocol", b"chat"),
            ("sec-websocket-protocol", b"wamp"),
        ]);
        assert_eq!(check(&two, &o), Ok(Some("wamp".into())));
        for refused in [
            "wamp.2.json",
            "wamp2.json",
            "wampx",
            "wamp;x",
            "wamp x",
            "\"wamp\"",
            "wamp/1",
            "",
            " , ",
            "wamp, {json}",
        ] {
            let e = check(&proto(refused), &o).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{refused:?}");
            assert!(e.body.contains("\"wamp\""), "{refused:?}: {}", e.body);
        }
        // Bytes that are not text at all.
        let e = check(&headers(&[("sec-websocket-protocol", b"wamp, \xffx")]), &o).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.body.contains("not a comma-separated list"), "{}", e.body);
        let strict = Options {
            strict_subprotocol: true,
            ..Options::default()
        };
        assert_eq!(
            check(&headers(&[]), &strict).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(check(&proto("wamp"), &strict), Ok(Some("wamp".into())));
    }

    fn origin(origin: &'static str, host: &'static str, allowed: &[&str]) -> Result<(), Refusal> {
        let mut h = headers(&[("origin", origin.as_bytes())]);
        if !host.is_empty() {
            h.append("host", HeaderValue::from_static(host));
        }
        let o = Options {
            allowed_origins: allowed.iter().map(|s| s.to_string()).collect(),
            ..Options::default()
        };
        check(&h, &o).map(|_| ())
    }

    #[test]
    fn no_origin_is_accepted() {
        let o = Options::default();
        assert!(check(&headers(&[("host", b"localhost:8080")]), &o).is_ok());
        assert!(check(&headers(&[]), &o).is_ok());
    }

    #[test]
    fn the_same_origin_is_accepted() {
        let host = "localhost:8080";
        assert!(origin("http://localhost:8080", host, &[]).is_ok());
        assert!(origin("https://localhost:8080", host, &[]).is_ok());
        assert!(origin("HTTP://LocalHost:8080", host, &[]).is_ok());
        assert!(origin("http://localhost:8080", "LOCALHOST:8080", &[]).is_ok());
        assert!(origin("http://[::1]:8080", "[::1]:8080", &[]).is_ok());
        assert!(origin("http://[::ABCD]:8080", "[::abcd]:8080", &[]).is_ok());
        assert!(origin("http://192.168.1.20:8080", "192.168.1.20:8080", &[]).is_ok());
        // Default ports equal an absent one.
        assert!(origin("http://example.com", "example.com", &[]).is_ok());
        assert!(origin("http://example.com:80", "example.com", &[]).is_ok());
        assert!(origin("http://example.com", "example.com:80", &[]).is_ok());
        assert!(origin("https://example.com", "example.com:443", &[]).is_ok());
        assert!(origin("https://example.com:443", "example.com", &[]).is_ok());
    }

    #[test]
    fn tricks_are_refused() {
        let host = "localhost:8080";
        for trick in [
            "http://localhost:8080.evil.com",
            "http://localhost:8080@evil.com",
            "http://evil.com@localhost:8080",
            "http://localhost:8080/",
            "http://localhost:8080/ws",
            "http://localhost:8081",
            "http://localhost",
            "http://localhost:80800",
            "http://localhost:8080:8080",
            "http://127.0.0.1:8080",
            "http://[::1]:8080",
            "http://localhost.:8080",
            "ws://localhost:8080",
            "file://",
            "localhost:8080",
            "null",
            "",
            "http://evil.example",
        ] {
            let e = origin(trick, host, &[]).unwrap_err();
            assert_eq!(e.status, StatusCode::FORBIDDEN, "{trick}");
            // A well-formed origin is told how to be allowed; a malformed one what is wrong.
            let how = format!("--allow-origin {trick} ");
            let malformed = "is not an origin a browser sends";
            assert!(
                e.body.contains(&how) != e.body.contains(malformed),
                "{trick}: {}",
                e.body
            );
        }
        for malformed in [
            "http://localhost:8080.evil.com",
            "http://localhost:8080@evil.com",
            "http://localhost:8080/",
            "localhost:8080",
            "",
        ] {
            let e = origin(malformed, host, &[]).unwrap_err();
            assert!(
                e.body.contains("is not an origin a browser sends"),
                "{malformed}: {}",
                e.body
            );
        }
        let e = origin("http://localhost:8081", host, &[]).unwrap_err();
        assert!(
            e.body.contains("--allow-origin http://localhost:8081 ")
                && e.body.contains("WAMP_ALLOW_ORIGINS")
                && e.body.contains("Host \"localhost:8080\""),
            "{}",
            e.body
        );
        // https's default port is not http's.
        assert!(origin("https://example.com", "example.com:80", &[]).is_err());
        assert!(origin("http://example.com", "example.com:443", &[]).is_err());
        // No Host header: nothing is the same origin.
        assert!(origin("http://localhost:8080", "", &[]).is_err());
        // The bracket trick on IPv6.
        assert!(origin("http://[::1]:8080", "[::2]:8080", &[]).is_err());
        assert!(origin("http://[::1]x:8080", "[::1]:8080", &[]).is_err());
    }

    #[test]
    fn builder_entries_are_normalised_once() {
        for (entry, stored) in [
            (" HTTPS://App.Example/ ", "https://app.example"),
            ("http://localhost:3000", "http://localhost:3000"),
            (" * ", "*"),
            ("NULL", "null"),
        ] {
            assert_eq!(normalise_origin(entry), stored, "{entry}");
        }
        let router = crate::Router::builder()
            .allowed_origins([" HTTPS://App.Example/ "])
            .build();
        let allowed = &router.options().allowed_origins;
        assert_eq!(allowed, &["https://app.example".to_string()]);
        let mut h = headers(&[("origin", b"https://app.example")]);
        h.append("host", HeaderValue::from_static("localhost:8080"));
        assert!(check_origin(&h, allowed).is_ok());
    }

    #[test]
    fn the_allow_list() {
        let host = "localhost:8080";
        let list = ["http://app.example:3000", "HTTPS://Other.Example"];
        assert!(origin("http://app.example:3000", host, &list).is_ok());
        assert!(origin("HTTP://APP.EXAMPLE:3000", host, &list).is_ok());
        assert!(origin("https://other.example", host, &list).is_ok());
        // Exact: no trailing slash, no other scheme, no other port, no suffix.
        for refused in [
            "http://app.example:3000/",
            "https://app.example:3000",
            "http://app.example:3001",
            "http://app.example",
            "http://app.example:3000.evil.com",
            "http://app.example:3000@evil.com",
            "http://other.example",
            "null",
        ] {
            assert_eq!(
                origin(refused, host, &list).unwrap_err().status,
                StatusCode::FORBIDDEN,
                "{refused}"
            );
        }
        // The same origin still passes beside a list.
        assert!(origin("http://localhost:8080", host, &list).is_ok());
        // `null` only when listed; `*` lets anything in.
        assert!(origin("null", host, &["null"]).is_ok());
        assert!(origin("http://evil.example", host, &["null"]).is_err());
        assert!(origin("http://evil.example", host, &["*"]).is_ok());
        assert!(origin("null", host, &["*"]).is_ok());
        // Two Origin headers are not a browser's request.
        let mut two = headers(&[
            ("origin", b"http://localhost:8080"),
            ("origin", b"http://evil.example"),
        ]);
        two.append("host", HeaderValue::from_static(host));
        assert_eq!(
            check(&two, &Options::default()).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn allow_list_entries_are_checked() {
        assert_eq!(
            parse_allowed_origin(" HTTP://A.Example:3000 "),
            Ok("http://a.example:3000".into())
        );
        assert_eq!(parse_allowed_origin("*"), Ok("*".into()));
        assert_eq!(parse_allowed_origin("null"), Ok("null".into()));
        assert_eq!(
            parse_allowed_origin("http://[::1]:8080"),
            Ok("http://[::1]:8080".into())
        );
        assert_eq!(
            parse_allowed_origin("chrome-extension://abcdef"),
            Ok("chrome-extension://abcdef".into())
        );
        let e = parse_allowed_origin("http://a.example/").unwrap_err();
        assert!(e.contains("write http://a.example"), "{e}");
        for bad in [
            "a.example",
            "http://",
            "http://a@b",
            "http://a:x",
            "1http://a",
            "",
        ] {
            assert!(parse_allowed_origin(bad).is_err(), "{bad}");
        }
        assert!(allows_any_origin(&["http://a".into(), "*".into()]));
        assert!(!allows_any_origin(&["http://a".into()]));
    }
}
