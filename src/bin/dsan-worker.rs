//! Entry point of the page's compute worker (a dedicated Web Worker that
//! Trunk builds beside the page): answers the page's jobs.

#[cfg(target_arch = "wasm32")]
fn main() {
    dsan_ct::app::serve_worker();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!(
        "dsan-worker is the web page's compute worker: Trunk builds it for the browser \
         (see README.md); the native program is `dsan`."
    );
    std::process::exit(2);
}
