//! The web page (wasm32 only): a Leptos client-side app. It shows the
//! product and its privacy promise, loads the model bundled with it (if one
//! ships) or a site's own, opens a CT
//! (files, folder, .zip or a bundled sample),
//! shows the chosen series and diagnoses it, tells which compute backend the
//! browser offers, and runs a model self-check on it.

mod compute;
mod diagnose;
mod drop;
mod export;
mod job;
mod models;
mod self_check;
mod study;
mod viewer;
mod worker;
mod worker_client;

pub use worker::serve as serve_worker;

use leptos::prelude::*;

use compute::Compute;
use models::{ModelPanel, Models};
use self_check::SelfCheck;
use study::StudyPanel;

/// Puts RGBA pixels (`columns x rows`) on a canvas.
fn put_rgba(canvas: &web_sys::HtmlCanvasElement, rgba: &[u8], columns: usize, rows: usize) {
    use wasm_bindgen::{Clamped, JsCast};
    let context = canvas
        .get_context("2d")
        .ok()
        .flatten()
        .and_then(|c| c.dyn_into::<web_sys::CanvasRenderingContext2d>().ok());
    let image = web_sys::ImageData::new_with_u8_clamped_array_and_sh(
        Clamped(rgba),
        columns as u32,
        rows as u32,
    );
    if let (Some(context), Ok(image)) = (context, image) {
        // Drawing can only fail for a detached canvas; nothing to report then.
        let _ = context.put_image_data(&image, 0.0, 0.0);
    }
}

/// The files chosen in the file input an event came from.
fn input_files(ev: &leptos::ev::Event) -> Vec<web_sys::File> {
    use wasm_bindgen::JsCast;
    ev.target()
        .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
        .and_then(|input| input.files())
        .map(|list| (0..list.length()).filter_map(|i| list.get(i)).collect())
        .unwrap_or_default()
}

/// The bytes of a file the user picked or dropped (read locally, never sent).
async fn file_bytes(file: &web_sys::File) -> Result<Vec<u8>, String> {
    let buffer = wasm_bindgen_futures::JsFuture::from(file.array_buffer())
        .await
        .map_err(|_| format!("{}: the browser could not read the file", file.name()))?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// A file of this site (a same-origin GET, as every request the page makes).
async fn fetch_bytes(path: &str) -> Result<Vec<u8>, String> {
    use wasm_bindgen::JsCast;
    let fail = |what: &str| format!("{path}: {what}");
    let window = web_sys::window().ok_or_else(|| fail("no window"))?;
    let response: web_sys::Response =
        wasm_bindgen_futures::JsFuture::from(window.fetch_with_str(path))
            .await
            .map_err(|_| fail("could not be fetched"))?
            .dyn_into()
            .map_err(|_| fail("not a response"))?;
    if !response.ok() {
        return Err(fail(&format!("HTTP {}", response.status())));
    }
    let body = response.array_buffer().map_err(|_| fail("no body"))?;
    let buffer = wasm_bindgen_futures::JsFuture::from(body)
        .await
        .map_err(|_| fail("the body could not be read"))?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// Milliseconds since the page or worker started (`performance.now()` of
/// whichever global scope runs this).
fn now_ms() -> f64 {
    use wasm_bindgen::JsCast;
    js_sys::Reflect::get(&js_sys::global(), &"performance".into())
        .ok()
        .and_then(|p| p.dyn_into::<web_sys::Performance>().ok())
        .map(|p| p.now())
        .unwrap_or_default()
}

/// The whole page.
#[component]
pub fn App() -> impl IntoView {
    let compute = LocalResource::new(compute::choose);
    let (own, set_own) = signal_local(None);
    let models = Models {
        bundled: LocalResource::new(models::fetch_bundled),
        own,
    };
    view! {
        <header>
            <h1>"DSAN-CT"</h1>
            <p class="tagline">"COVID-19 versus community-acquired pneumonia from a chest CT, in your browser."</p>
        </header>
        <main>
            <section class="panel privacy" aria-labelledby="privacy-title">
                <h2 id="privacy-title">"Privacy"</h2>
                <p data-testid="privacy-statement">
                    "Nothing you open here leaves this computer: the page runs entirely in your "
                    "browser and only loads its own files from this site. No upload, no analytics, "
                    "no third-party content. After the first visit the page also works offline."
                </p>
                <p class="warning">"Research software, not a medical device."</p>
            </section>
            <ModelPanel models set_own />
            <StudyPanel compute models />
            <Suspense fallback=|| view! { <p data-testid="backend-badge" class="badge">"Checking for WebGPU…"</p> }>
                {move || compute.get().map(|compute| view! { <Backend compute /> })}
            </Suspense>
        </main>
    }
}

/// The backend badge and the panels that need a backend.
#[component]
fn Backend(
    /// The backend chosen for this page.
    compute: Compute,
) -> impl IntoView {
    let backend = compute.backend;
    view! {
        <p class="badge" data-testid="backend-badge" data-backend=backend.label()
            title=compute.reason.clone()>
            "Compute: " {backend.label()} " — " {compute.reason.clone()}
        </p>
        <SelfCheck compute />
    }
}
