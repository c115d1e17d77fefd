//! Entry point of the web page: sets the panic hook and mounts the app.

#[cfg(target_arch = "wasm32")]
fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(dsan_ct::app::App);
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!(
        "dsan-ct is the web page: serve it with `trunk serve` (see README.md); \
         the native program is `dsan` (cargo run -p dsan-train --release -- --help)."
    );
    std::process::exit(2);
}
