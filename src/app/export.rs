//! Downloads made in the page: the file is built here and handed to the
//! browser as a `blob:` URL of this page's own origin; nothing is sent anywhere.

use gloo_timers::future::TimeoutFuture;
use leptos::task::spawn_local;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Blob, BlobPropertyBag, HtmlAnchorElement, Url};

/// Offers `text` for download as `file_name` with the MIME type `mime`.
pub fn download_text(file_name: &str, mime: &str, text: &str) -> Result<(), String> {
    let failed = |what: &str, e: JsValue| format!("{what} failed: {e:?}");
    let parts = js_sys::Array::of1(&JsValue::from_str(text));
    let options = BlobPropertyBag::new();
    options.set_type(mime);
    let blob = Blob::new_with_str_sequence_and_options(&parts, &options)
        .map_err(|e| failed("building the file", e))?;
    let url = Url::create_object_url_with_blob(&blob).map_err(|e| failed("creating its URL", e))?;
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
