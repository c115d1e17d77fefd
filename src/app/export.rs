//! Downloads made in the page: the file is built here and handed to the
//! browser as a `blob:` URL of this page's own origin; nothing is sent anywhere.

use gloo_timers::future::TimeoutFuture;
use leptos::task::spawn_local;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, BlobPropertyBag, HtmlAnchorElement, HtmlCanvasElement, Url};

fn failed(what: &str, e: JsValue) -> String {
    format!("{what} failed: {e:?}")
}

/// Offers `text` for download as `file_name` with the MIME type `mime`.
pub fn download_text(file_name: &str, mime: &str, text: &str) -> Result<(), String> {
    let parts = js_sys::Array::of1(&JsValue::from_str(text));
    let options = BlobPropertyBag::new();
    options.set_type(mime);
    let blob = Blob::new_with_str_sequence_and_options(&parts, &options)
        .map_err(|e| failed("building the file", e))?;
    download_blob(file_name, &blob)
}

/// Offers the picture on `canvas` for download as a PNG file `file_name`.
pub async fn download_png(file_name: &str, canvas: &HtmlCanvasElement) -> Result<(), String> {
    let mut outcome = Ok(());
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        outcome = canvas.to_blob(&resolve);
    });
    outcome.map_err(|e| failed("encoding the PNG", e))?;
    let blob: Blob = JsFuture::from(promise)
        .await
        .map_err(|e| failed("encoding the PNG", e))?
        .dyn_into()
        .map_err(|e| failed("encoding the PNG", e))?;
    download_blob(file_name, &blob)
}

fn download_blob(file_name: &str, blob: &Blob) -> Result<(), String> {
    let url = Url::create_object_url_with_blob(blob).map_err(|e| failed("creating its URL", e))?;
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or("the page has no document")?;
    let anchor: HtmlAnchorElement = document
        .create_element("a")
        .map_err(|e| failed("creating the link", e))?
        .dyn_into()
        .map_err(|e| failed("creating the link", e.into()))?;
    anchor.set_href(&url);
    anchor.set_download(file_name);
    anchor.click();
    // Give the browser time to start the download before the URL goes.
    spawn_local(async move {
        TimeoutFuture::new(60_000).await;
        // Revoking can only fail for an unknown URL; nothing to report then.
        let _ = Url::revoke_object_url(&url);
    });
    Ok(())
}
