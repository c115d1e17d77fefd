//! The Dual-Sampling Attention Network (Ouyang et al., IEEE TMI 2020) as this
//! project specifies it (../shared/DESIGN.md): a 3D ResNet with BasicBlocks,
//! a linear head, CAM-based online attention with a soft mask, two branches
//! averaged at inference, and the CE + attention training loss.
//!
//! Generic over the Burn backend: the same code runs on WebGPU in the page,
//! on a CPU backend natively and in wasm, and on CUDA in `train`.

mod attention;
mod batch_norm;
mod branch;
mod config;
mod dsan;
mod loss;
mod pool3d;
mod readback;
mod resnet3d;
mod stem_gemm;
mod synthetic;

pub use attention::{class_activation_maps, class_one_hot, normalize_maps, soft_mask};
pub use branch::{BranchOutput, DsanBranch};
pub use config::{ConfigError, DsanConfig};
pub use dsan::{Dsan, DsanOutput};
pub use loss::{AttentionTargets, DsanLoss, DsanLossConfig};
pub use pool3d::max_pool3d;
pub use readback::read_floats;
pub use resnet3d::NORM_MOMENTUM;
pub use synthetic::synthetic_input;
