//! The web page (wasm32 only): a Leptos client-side app laid out as a
//! reading workspace. Before a CT is open, one screen says what the page is
//! and offers the drop zone, the pickers, the samples, the model in use and
//! the privacy promise ([`welcome`]). Once one is open, its views fill the
//! window with the diagnosis, display controls and series in a side panel
//! ([`workspace`]); the diagnosis starts by itself. The header keeps the
//! compute backend in sight; the model card, compute details and self-check
//! are in the "About this model / diagnostics" dialog ([`about`]).

mod about;
mod compute;
mod diagnose;
mod dialogs;
mod display;
mod drop;
mod export;
mod helper;
mod job;
mod keys;
mod models;
mod open;
mod plane;
mod result;
mod scene;
mod self_check;
mod series;
mod study;
mod viewer;
mod welcome;
mod worker;
mod worker_client;
mod workspace;

pub use worker::serve as serve_worker;

use leptos::html;
use leptos::prelude::*;
use leptos::task::spawn_local;

use about::AboutDialog;
use compute::Compute;
use dialogs::show;
use drop::dropped_entries;
use models::Models;
use open::OpenControls;
use study::{Opened, Study};
use welcome::Welcome;
use workspace::Workspace;

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

/// Bytes of WebAssembly memory of whichever global scope runs this (the page
/// or the worker): the high-water mark of its heap, as wasm memory grows and
/// never shrinks.
fn wasm_memory_bytes() -> f64 {
    use wasm_bindgen::JsCast;
    wasm_bindgen::memory()
        .unchecked_into::<js_sys::WebAssembly::Memory>()
        .buffer()
        .unchecked_into::<js_sys::ArrayBuffer>()
        .byte_length() as f64
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
    let study = Study::new();
    // The network the user picked: kept from one CT to the next. A site
    // model just loaded is the one to use.
    let picked = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        if own.with(Option::is_some) {
            picked.set(Some("own".to_owned()));
        }
    });
    // While the page waits for a CT, the workers' code is compiled and, on
    // the CPU, warmed up on the default network (once per page).
    let warm = RwSignal::new(false);
    Effect::new(move |started: Option<bool>| {
        if started == Some(true) {
            return true;
        }
        let Some(compute) = compute.get().filter(|_| models.bundled_known()) else {
            return false;
        };
        if let Some((model, weights)) = untrack(|| models.job_model(&models.choice(None))) {
            spawn_local(async move {
                let warmed = worker_client::warm_up(compute.backend, &model, &weights).await;
                warm.set(warmed);
            });
        }
        true
    });
    let about = NodeRef::<html::Dialog>::new();
    let has_volume = Signal::derive(move || study.has_volume());
    // A drop anywhere opens what was dropped (the welcome screen's drop zone
    // is where a first visit is told to drop).
    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        let entries = ev
            .data_transfer()
            .map(|transfer| dropped_entries(&transfer))
            .unwrap_or_default();
        if !entries.is_empty() {
            study.open(Opened::Dropped(entries));
        }
    };
    view! {
        <div class="app" class:reading=move || has_volume.get()
            on:dragover=|ev: leptos::ev::DragEvent| ev.prevent_default()
            on:drop=on_drop>
            <header class="app-bar">
                <h1>"DSAN-CT"</h1>
                <p class="tagline">"COVID-19 versus community-acquired pneumonia from a chest CT, in your browser"</p>
                <Show when=move || has_volume.get()>
                    <OpenControls study compact=true />
                </Show>
                <div class="app-bar-end">
                    <Suspense fallback=|| view! { <p data-testid="backend-badge" class="badge">"Checking for WebGPU…"</p> }>
                        {move || compute.get().map(|compute| view! { <BackendBadge compute warm /> })}
                    </Suspense>
                    <button class="quiet" data-testid="about-button" aria-haspopup="dialog"
                        on:click=move |_| show(about)>
                        "About this model / diagnostics"
                    </button>
                </div>
            </header>
            <main class="app-main">
                {move || match study.loaded.get() {
                    Some(Ok(loaded)) => view! { <Workspace loaded study compute models picked /> }.into_any(),
                    _ => view! { <Welcome study models set_own /> }.into_any(),
                }}
            </main>
            <AboutDialog dialog=about compute models set_own has_volume />
        </div>
    }
}

/// The header's badge: which backend runs the network (why, on hover and
/// for screen readers; the About dialog says it in full).
#[component]
fn BackendBadge(
    /// The backend chosen for this page.
    compute: Compute,
    /// Whether the warm-up of the workers' code ran to its end (see
    /// `worker_client::warm_up`).
    warm: RwSignal<bool>,
) -> impl IntoView {
    let backend = compute.backend;
    view! {
        <p class="badge" data-testid="backend-badge" data-backend=backend.label()
            data-warm=move || warm.get().to_string()
            title=compute.reason.clone()>
            "Compute: " {backend.label()}
            <span class="visually-hidden">{format!(" — {}", compute.reason)}</span>
        </p>
    }
}
