//! LibTorch (PyTorch's C++ library) through Burn's burn-tch: its devices.
//! The library is found at build time through `LIBTORCH` (see
//! `.cargo/config.toml`) and at run time through the rpath `build.rs` sets.

use anyhow::ensure;
use burn::backend::libtorch::{LibTorch, LibTorchDevice};

/// Burn's LibTorch backend in f32.
pub type Torch = LibTorch<f32>;

/// The CPU device.
pub fn cpu() -> LibTorchDevice {
    LibTorchDevice::Cpu
}

/// CUDA device 0; an error when LibTorch sees no CUDA device.
pub fn cuda() -> anyhow::Result<LibTorchDevice> {
    ensure!(
        tch::Cuda::is_available(),
        "LibTorch finds no CUDA device (no GPU, no driver, or a CPU-only libtorch); \
         --backend libtorch runs on the CPU"
    );
    Ok(LibTorchDevice::Cuda(0))
}

/// Threads LibTorch's CPU kernels use (intra-op).
pub fn set_threads(threads: usize) {
    tch::set_num_threads(i32::try_from(threads).unwrap_or(i32::MAX));
}
