//! The one rule for CURIEs on the command line: a name whose prefix is not declared is a
//! usage error in every command, said on stderr before connecting.
//!
//! In WAMP v1 a client declares a prefix (PREFIX) before it uses it, so `foo:bar` with no
//! `foo` declared is a mistake: `subscribe` could never match its events (they carry full
//! URIs), `call` would get `#notfound`, and `publish` would send to a topic nobody hears,
//! with nothing to say so (PUBLISH has no reply). Declared means `--prefix` (or
//! `WAMP_PREFIXES`), or one of the tutorial server's [`TUTORIAL_PREFIXES`]. What reads as a
//! CURIE at all (not `http://…` or `urn:…`) is [`wamp_client::curie_prefix`]'s decision.

use crate::connect::TUTORIAL_PREFIXES;
use crate::exit::Failure;

/// Refuses `name` (a procedure or a topic) if it is a CURIE whose prefix is neither in
/// `declared` (the `--prefix` pairs) nor one of [`TUTORIAL_PREFIXES`].
pub fn check(declared: &[(String, String)], name: &str) -> Result<(), Failure> {
    let Some(prefix) = wamp_client::curie_prefix(name) else {
        return Ok(());
    };
    let known = declared.iter().any(|(n, _)| n == prefix)
        || TUTORIAL_PREFIXES.iter().any(|(n, _)| *n == prefix);
    if known {
        return Ok(());
    }
    Err(Failure::usage(format!(
        "{prefix:?} is not a declared prefix (in {name:?}): declare it with --prefix \
         {prefix}=URI (or WAMP_PREFIXES), or give the full URI; without --prefix wamp-cli \
         knows only the tutorial server's rpc and event"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::USAGE;

    #[test]
    fn undeclared_prefixes_are_refused() {
        let declared = vec![("calc".to_string(), "http://example.com/calc#".to_string())];
        assert!(check(&declared, "calc:square").is_ok());
        assert!(check(&declared, "rpc:echo").is_ok());
        assert!(check(&declared, "event:chat").is_ok());
        assert!(check(&declared, "http://example.com/calc#square").is_ok());
        assert!(check(&declared, "urn:example:chat").is_ok());
        assert!(check(&declared, "plain").is_ok());
        let err = check(&declared, "foo:bar").unwrap_err();
        assert_eq!(err.code(), USAGE);
        assert!(
            err.message()
                .starts_with("\"foo\" is not a declared prefix (in \"foo:bar\")"),
            "{}",
            err.message()
        );
        assert!(check(&[], "calc:square").is_err());
    }
}
