//! From a CT [`Volume`] to the network input, and back: lung segmentation
//! without a network, the crop to the lungs, the resampling onto the model
//! grid with the model card's HU window, and the inverse mapping that puts a
//! map computed on the model's feature grid back onto the volume's voxels;
//! and, for training, infection masks carried onto the model and feature grids.
//!
//! The page and `train` both go through [`prepare_input`], so training and
//! inference see identical inputs.

mod edt;
mod hull;
mod input;
mod lungs;
mod mask;
mod morphology;
mod resample;
mod targets;

pub use input::{ModelInput, prepare_input};
pub use lungs::{LungMaskConfig, LungSegmentation, segment_lungs};
pub use mask::Mask;
pub use resample::{CropBox, CropSampler, GridMapping};
pub use targets::{area_mean, mask_on_model_grid};

/// Why a volume cannot be turned into a model input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PreprocessError {
    /// The volume is too small to hold a chest.
    #[error(
        "volume too small: {dims:?} voxels spanning {extent_mm:?} mm; at least {min_slices} slices \
         and {min_extent_mm} mm in every direction are needed"
    )]
    TooSmall {
        /// `[slices, rows, columns]`.
        dims: [usize; 3],
        /// Physical extent along each axis, mm.
        extent_mm: [f64; 3],
        /// Minimum number of slices.
        min_slices: usize,
        /// Minimum physical extent, mm.
        min_extent_mm: f64,
    },
    /// No body (tissue above the body threshold) was found: an empty or all-air volume.
    #[error("no body found: no voxel above {threshold_hu} HU")]
    NoBody {
        /// The body threshold used.
        threshold_hu: f32,
    },
    /// Nothing inside the body looks like lung.
    #[error("no lungs found: {reason}")]
    NoLungs {
        /// What was missing.
        reason: String,
    },
    /// The model grid is empty.
    #[error("model input grid {0:?} has an empty axis")]
    EmptyGrid([usize; 3]),
    /// The HU window is empty or not finite.
    #[error("HU window {0:?} is not an increasing pair of finite numbers")]
    BadWindow([f32; 2]),
}
