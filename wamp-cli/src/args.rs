//! Turning command-line text into values: JSON-or-string arguments, durations, prefixes.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

/// An argument or event as typed: JSON when it parses as JSON (`42`, `true`, `null`,
/// `{"a":1}`, `"quoted"`), otherwise the text itself as a JSON string (`test`, `hello world`).
///
/// ```
/// use serde_json::json;
/// use wamp_cli::args::json_or_string;
/// assert_eq!(json_or_string("42"), json!(42));
/// assert_eq!(json_or_string("test"), json!("test"));
/// assert_eq!(json_or_string(r#"{"a":[1]}"#), json!({"a": [1]}));
/// assert_eq!(json_or_string(r#""42""#), json!("42"));
/// ```
pub fn json_or_string(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// Parses a duration: a number with an optional unit, `ms`, `s` (the default), `m` or `h`
/// (`500ms`, `10`, `1.5s`, `2m`).
///
/// ```
/// use std::time::Duration;
/// use wamp_cli::args::parse_duration;
/// assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
/// assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
/// assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
/// assert!(parse_duration("fast").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic() || c == 'µ')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (try 500ms, 10s, 1m)"))?;
    let scale = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}` (use ms, s, m or h)"
            ))
        }
    };
    let secs = number * scale;
    if !(0.0..=1e9).contains(&secs) {
        return Err(format!("`{text}` is not a usable duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses `NAME=URI` for `--prefix`.
///
/// ```
/// use wamp_cli::args::parse_prefix;
/// assert_eq!(
///     parse_prefix("calc=http://example.com/calc#"),
///     Ok(("calc".to_string(), "http://example.com/calc#".to_string()))
/// );
/// assert!(parse_prefix("calc").is_err());
/// assert!(parse_prefix("a:b=http://x/").is_err());
/// ```
pub fn parse_prefix(text: &str) -> Result<(String, String), String> {
    let (name, uri) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not NAME=URI (e.g. calc=http://example.com/calc#)"))?;
    let (name, uri) = (name.trim(), uri.trim());
    if name.is_empty() || name.contains(':') {
        return Err(format!(
            "`{name}` is not a prefix name: it must be non-empty and have no `:`"
        ));
    }
    if uri.is_empty() {
        return Err(format!("the URI of prefix `{name}` is empty"));
    }
    Ok((name.to_string(), uri.to_string()))
}

/// The server URL as given to `--url`, with `ws://` put in front when it names no scheme:
/// `localhost:8080/ws` and `localhost:8080` mean `ws://localhost:8080/ws` and
/// `ws://localhost:8080`. A URL with a scheme is left as it is (the client checks it).
///
/// ```
/// use wamp_cli::args::with_scheme;
/// assert_eq!(with_scheme("localhost:8080/ws"), "ws://localhost:8080/ws");
/// assert_eq!(with_scheme("127.0.0.1:9000"), "ws://127.0.0.1:9000");
/// assert_eq!(with_scheme("ws://h:1/ws"), "ws://h:1/ws");
/// assert_eq!(with_scheme("http://h:1/ws"), "http://h:1/ws");
/// ```
pub fn with_scheme(url: &str) -> String {
    let url = url.trim();
    if url.contains("://") || url.is_empty() {
        url.to_string()
    } else {
        format!("ws://{url}")
    }
}

/// A duration as a person writes it: `300ms`, `10s`, `1.5s`.
pub struct Human(pub Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d < Duration::from_secs(1) {
            write!(f, "{}ms", d.as_millis())
        } else if d.subsec_millis() == 0 {
            write!(f, "{}s", d.as_secs())
        } else {
            write!(f, "{:.1}s", d.as_secs_f64())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arguments_are_json_or_text() {
        assert_eq!(json_or_string("-2.5"), json!(-2.5));
        assert_eq!(json_or_string("null"), Value::Null);
        assert_eq!(json_or_string("[1, \"a\"]"), json!([1, "a"]));
        assert_eq!(json_or_string("hello world"), json!("hello world"));
        assert_eq!(json_or_string("{broken"), json!("{broken"));
        assert_eq!(json_or_string(""), json!(""));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration(" 250 ms "), Ok(Duration::from_millis(250)));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("3 fortnights").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn durations_display() {
        assert_eq!(Human(Duration::from_millis(300)).to_string(), "300ms");
        assert_eq!(Human(Duration::from_secs(10)).to_string(), "10s");
        assert_eq!(Human(Duration::from_millis(1500)).to_string(), "1.5s");
    }

    #[test]
    fn urls_without_a_scheme_are_ws() {
        assert_eq!(with_scheme(" localhost:8080/ws "), "ws://localhost:8080/ws");
        assert_eq!(with_scheme("[::1]:8080/ws"), "ws://[::1]:8080/ws");
        assert_eq!(with_scheme("example.com/wamp"), "ws://example.com/wamp");
        assert_eq!(with_scheme("wss://h/ws"), "wss://h/ws");
        assert_eq!(with_scheme(""), "");
    }

    #[test]
    fn prefixes() {
        assert!(parse_prefix("=http://x/").is_err());
        assert!(parse_prefix("x=").is_err());
        assert_eq!(
            parse_prefix("x=urn:a=b").unwrap(),
            ("x".to_string(), "urn:a=b".to_string())
        );
    }
}
