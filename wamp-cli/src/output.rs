//! Writing results: stdout lines that survive a closed pipe; and the shutdown signals.

use std::io::{ErrorKind, Write};

/// Writes one line to stdout and flushes it. Returns false when stdout is closed (e.g.
/// `wamp-cli subscribe … | head -1` after `head` exits): the command should then stop
/// quietly rather than fail.
pub fn line(text: &str) -> bool {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => true,
        Err(e) if e.kind() == ErrorKind::BrokenPipe => false,
        Err(e) => {
            tracing::warn!(error = %e, "cannot write to stdout");
            false
        }
    }
}

/// Ctrl-C (SIGINT) and, on Unix, SIGTERM, listened to from the moment it is made: a signal
/// that comes before the first [`Shutdown::recv`] is not lost, nor does it kill the process.
pub struct Shutdown {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Shutdown {
    /// Starts listening (must run inside the tokio runtime).
    pub fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let signals = signal(SignalKind::interrupt())
                .and_then(|int| Ok((int, signal(SignalKind::terminate())?)));
            if let Err(e) = &signals {
                tracing::warn!(error = %e, "cannot listen for signals; Ctrl-C will kill the process");
            }
            Shutdown {
                signals: signals.ok(),
            }
        }
        #[cfg(not(unix))]
        {
            Shutdown {}
        }
    }

    /// Completes when a signal has come.
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        match &mut self.signals {
            Some((int, term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            None => std::future::pending().await,
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
