//! DSAN-CT: COVID-19 versus community-acquired pneumonia from a chest CT with
//! the Dual-Sampling Attention Network, entirely in the browser.
//!
//! The library is shared by the web page (wasm32, module `app`) and the native
//! `train` program: one implementation of DICOM ingestion, the volume, the
//! model, its weights format and its self-check, for both targets. See
//! `ARCHITECTURE.md` for the data flow.

/// Burn's CPU backend (burn-flex: pure Rust, SIMD, natively on every core):
/// the page's fallback without WebGPU, `dsan`'s default backend, and where the
/// self-check's seeded weights are drawn.
pub type CpuBackend = burn_flex::Flex;

pub mod dicom;
pub mod model;
pub mod phantom;
pub mod pipeline;
pub mod preprocess;
pub mod probe;
pub mod render;
pub mod volume;
pub mod weights;

#[cfg(target_arch = "wasm32")]
pub mod app;
