//! Random ids from a cryptographically secure source: session ids, call ids, auth ids.

/// The 64 characters ids are drawn from: `[A-Za-z0-9_-]`.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Length of the ids made here.
pub const ID_LEN: usize = 16;

/// A new 16-character id from `[A-Za-z0-9_-]` (96 bits of entropy), drawn from the operating
/// system's secure random source. Session ids must not be guessable: they appear in PUBLISH
/// exclude/eligible lists and in WAMP-CRA challenges.
///
/// # Panics
///
/// If the operating system's random source fails, which on supported platforms does not happen
/// once the system has booted.
pub fn new_id() -> String {
    let mut bytes = [0u8; ID_LEN];
    getrandom::getrandom(&mut bytes).expect("the OS random source failed");
    // 64 symbols: the low 6 bits of a uniform byte are uniform, so there is no bias.
    bytes
        .iter()
        .map(|b| ALPHABET[(b & 63) as usize] as char)
        .collect()
}

/// A new session id (see [`new_id`]).
pub fn new_session_id() -> String {
    new_id()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_have_the_documented_shape() {
        for _ in 0..1000 {
            let id = new_session_id();
            assert_eq!(id.len(), 16);
            assert!(id.bytes().all(|b| ALPHABET.contains(&b)), "{id}");
        }
    }

    #[test]
    fn ids_do_not_repeat_and_use_the_whole_alphabet() {
        let ids: HashSet<String> = (0..10_000).map(|_| new_id()).collect();
        assert_eq!(ids.len(), 10_000);
        let chars: HashSet<char> = ids.iter().flat_map(|s| s.chars()).collect();
        assert_eq!(chars.len(), 64);
    }
}
