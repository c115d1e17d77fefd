//! The compute backends `dsan` runs on, chosen once per command with
//! `--backend`: Burn's Flex on the CPU (always built, the page's own CPU
//! backend), LibTorch on the CPU or CUDA (`--features libtorch`), wgpu and
//! Burn's CUDA (`--features wgpu`, `cuda`). Commands are generic over the
//! backend ([`OnBackend`]); this module is the only place that names one.

#[cfg(any(feature = "cuda", feature = "wgpu", feature = "libtorch"))]
pub mod gpu_panics;
#[cfg(any(feature = "cuda", feature = "wgpu"))]
pub mod kernel_cache;
#[cfg(feature = "libtorch")]
pub mod libtorch;

use burn::backend::Autodiff;
use burn::tensor::backend::AutodiffBackend;
use dsan_ct::CpuBackend;

#[cfg(any(feature = "cuda", feature = "wgpu", feature = "libtorch"))]
use gpu_panics::panics_as_errors;

/// Compute backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// Burn's Flex backend (pure Rust, SIMD, every core): the page's CPU fallback.
    Cpu,
    /// LibTorch on the CPU: PyTorch's kernels (oneDNN), built with `--features libtorch`.
    #[cfg(feature = "libtorch")]
    Libtorch,
    /// LibTorch on CUDA GPU 0 (0..N with `--devices N`), cuDNN kernels.
    #[cfg(feature = "libtorch")]
    LibtorchCuda,
    /// Burn's wgpu backend (Vulkan, Metal or DirectX; build with `--features wgpu`).
    #[cfg(feature = "wgpu")]
    Wgpu,
    /// Burn's CUDA backend (build with `--features cuda`).
    #[cfg(feature = "cuda")]
    Cuda,
}

/// A command that runs on whichever backend the user picked. `run` gets the
/// autodiff backend and its first device; inference uses `B::InnerBackend`.
pub trait OnBackend {
    /// What the command returns.
    type Output;
    /// Runs the command on backend `B`, device `device` first.
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<Self::Output>;
}

impl Backend {
    /// Runs `task` on this backend. A GPU runtime that cannot start panics,
    /// often on a thread of its own; here that ends in an error naming it.
    pub fn execute<T: OnBackend>(self, task: T) -> anyhow::Result<T::Output> {
        match self {
            Backend::Cpu => task.run::<Autodiff<CpuBackend>>(Default::default()),
            #[cfg(feature = "libtorch")]
            Backend::Libtorch => panics_as_errors("LibTorch", || {
                task.run::<Autodiff<libtorch::Torch>>(libtorch::cpu())
            }),
            #[cfg(feature = "libtorch")]
            Backend::LibtorchCuda => panics_as_errors("LibTorch on CUDA", || {
                task.run::<Autodiff<libtorch::Torch>>(libtorch::cuda()?)
            }),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => panics_as_errors("the wgpu backend", || {
                task.run::<Autodiff<burn::backend::Wgpu>>(Default::default())
            }),
            #[cfg(feature = "cuda")]
            Backend::Cuda => panics_as_errors("the CUDA backend", || {
                task.run::<Autodiff<burn::backend::Cuda>>(Default::default())
            }),
        }
    }
}
