//! Burn's GPU runtimes panic when they cannot start (no CUDA driver, no
//! Vulkan adapter), often on a thread of their own. [`panics_as_errors`] turns
//! such a panic into an error that carries the panics' messages, so `dsan`
//! ends with a sentence instead of a backtrace.

use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use anyhow::anyhow;

/// Runs `run`; if it panics, returns an error naming `what` with the message
/// of every panic seen meanwhile, on any thread.
pub fn panics_as_errors<T>(
    what: &str,
    run: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let messages = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::clone(&messages);
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        let text = info.payload_as_str().unwrap_or("a panic without a message");
        let place = info
            .location()
            .map(|l| format!(" ({}:{})", l.file(), l.line()))
            .unwrap_or_default();
        if let Ok(mut list) = seen.lock() {
            list.push(format!("{text}{place}"));
        }
    }));
    let outcome = panic::catch_unwind(AssertUnwindSafe(run));
    panic::set_hook(previous);
    outcome.unwrap_or_else(|_| {
        let said = messages.lock().map(|m| m.join("; ")).unwrap_or_default();
        Err(anyhow!("{what} stopped: {said}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_on_another_thread_becomes_an_error_with_its_message() {
        let result: anyhow::Result<()> = panics_as_errors("the test backend", || {
            let worker = std::thread::spawn(|| panic!("no adapter found"));
            let _ = worker.join();
            panic!("the channel closed");
        });
        let error = result.unwrap_err().to_string();
        assert!(
            error.starts_with("the test backend stopped: ")
                && error.contains("no adapter found")
                && error.contains("the channel closed"),
            "{error}"
        );
        assert_eq!(panics_as_errors("x", || Ok(7)).unwrap(), 7);
    }
}
