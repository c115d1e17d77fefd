//! Picks the compute backend once per page: WebGPU when the browser hands out
//! an adapter, Burn's CPU backend otherwise, with the reason for the choice.
//! The compute worker sets the chosen backend up for each request.

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// Which backend runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Backend {
    /// The GPU through WebGPU.
    WebGpu,
    /// The CPU, in this page's WebAssembly.
    Cpu,
}

impl Backend {
    /// Name shown in the badge.
    pub fn label(self) -> &'static str {
        match self {
            Backend::WebGpu => "WebGPU",
            Backend::Cpu => "CPU",
        }
    }
}

/// The backend chosen for this page and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compute {
    /// The backend in use.
    pub backend: Backend,
    /// Why it was chosen, for the user.
    pub reason: String,
}

/// Looks for a WebGPU adapter; falls back to the CPU when there is none.
pub async fn choose() -> Compute {
    match webgpu_adapter_info().await {
        Ok(adapter) => Compute {
            backend: Backend::WebGpu,
            reason: format!("WebGPU adapter found ({adapter})"),
        },
        Err(reason) => Compute {
            backend: Backend::Cpu,
            reason: format!("{reason}; running on the CPU"),
        },
    }
}

/// Asks `navigator.gpu` for an adapter; returns a short description of it, or
/// why there is none.
async fn webgpu_adapter_info() -> Result<String, String> {
    let navigator = web_sys::window().ok_or("no window")?.navigator();
    let gpu = Reflect::get(&navigator, &JsValue::from_str("gpu")).unwrap_or(JsValue::UNDEFINED);
    if gpu.is_undefined() || gpu.is_null() {
        return Err("this browser does not offer WebGPU".to_owned());
    }
    let request: Function = Reflect::get(&gpu, &JsValue::from_str("requestAdapter"))
        .ok()
        .and_then(|f| f.dyn_into().ok())
        .ok_or("navigator.gpu.requestAdapter is missing")?;
    let promise: Promise = request
        .call0(&gpu)
        .ok()
        .and_then(|p| p.dyn_into().ok())
        .ok_or("requestAdapter did not return a promise")?;
    let adapter = JsFuture::from(promise)
        .await
        .map_err(|_| "the WebGPU adapter request failed".to_owned())?;
    if adapter.is_null() || adapter.is_undefined() {
        return Err("WebGPU is present but no adapter is available".to_owned());
    }
    Ok(adapter_description(&adapter))
}

fn adapter_description(adapter: &JsValue) -> String {
    let info = Reflect::get(adapter, &JsValue::from_str("info")).unwrap_or(JsValue::UNDEFINED);
    let field = |name: &str| {
        Reflect::get(&info, &JsValue::from_str(name))
            .ok()
            .and_then(|v| v.as_string())
            .filter(|s| !s.is_empty())
    };
    [field("vendor"), field("architecture")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
}
