//! The data side of `dsan`: input files and folder layouts, synthetic
//! phantoms, slice images, prepared (cached) cases, the augmentation, the
//! dual-sampling draws and the folds split by patient.

pub mod augment;
pub mod dataset;
pub mod files;
pub mod folds;
pub mod layouts;
pub mod parallel;
pub mod phantoms;
pub mod sampler;
pub mod slice_images;
