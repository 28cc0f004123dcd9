//! Benchmark support for the WAMP v1 toolkit: the servers that `scripts/bench` measures
//! (`router-server`, our router; `ceiling-server`, the minimal server on the same stack) and
//! `idle-sessions`, which holds many idle WAMP sessions open to measure memory per session and,
//! with `--subscribe`, the time one publish takes to reach all of them.
//!
//! The URIs are the tutorial's, so `wamp-cli bench` works against every server here with
//! full URIs: [`ECHO`] and [`CHAT`].

/// The echo procedure every benchmark server serves.
pub const ECHO: &str = "http://wamptutorial/rpc#echo";
/// The topic every benchmark server relays.
pub const CHAT: &str = "http://wamptutorial/event#chat";

/// Reads `--port` style arguments shared by the servers.
pub fn bind_addr(port: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}

/// Prints the line `scripts/bench` waits for.
pub fn announce(name: &str, addr: std::net::SocketAddr) {
    println!("{name} listening on ws://{addr}/ws");
}
