//! The network input: the lung box of the volume on the model grid, in the
//! model card's HU window.

use crate::volume::Volume;
use crate::weights::Preprocessing;

use super::PreprocessError;
use super::lungs::LungSegmentation;
use super::resample::{CropBox, GridMapping};

/// A volume prepared for the network.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInput {
    /// Window-normalised values in `[0, 1]` on the model grid, `[D, H, W]` row-major.
    pub values: Vec<f32>,
    /// Where the model grid lies in the volume.
    pub mapping: GridMapping,
}

/// Crops `volume` to the lungs plus the card's margin, resamples the box
/// trilinearly onto `grid` (`[D, H, W]`), maps the HU window to `[0, 1]`
/// (clamped) and, if the card asks for it, sets voxels outside the lungs to 0.
pub fn prepare_input(
    volume: &Volume,
    lungs: &LungSegmentation,
    preprocessing: &Preprocessing,
    grid: [usize; 3],
) -> Result<ModelInput, PreprocessError> {
    if grid.contains(&0) {
        return Err(PreprocessError::EmptyGrid(grid));
    }
    let [low, high] = preprocessing.hu_window;
    if !(low.is_finite() && high.is_finite() && high > low) {
        return Err(PreprocessError::BadWindow(preprocessing.hu_window));
    }
    let bounds = lungs
        .mask
        .bounds()
        .ok_or_else(|| PreprocessError::NoLungs {
            reason: "the lung mask is empty".into(),
        })?;
    let crop = CropBox::with_margin(
        bounds,
        f64::from(preprocessing.lung_crop_margin_mm),
        volume.spacing(),
        volume.dims(),
    );
    let mapping = GridMapping {
        crop,
        grid,
        volume_dims: volume.dims(),
    };
    let mut values: Vec<f32> = mapping
        .resample(volume)
        .into_iter()
        .map(|hu| ((hu - low) / (high - low)).clamp(0.0, 1.0))
        .collect();
    if preprocessing.mask_outside_lungs {
        let [_, gh, gw] = grid;
        for (x, v) in values.iter_mut().enumerate() {
            let cell = [x / (gh * gw), (x / gw) % gh, x % gw];
            let voxel: [usize; 3] = std::array::from_fn(|a| {
                mapping
                    .model_to_volume(a, cell[a] as f64)
                    .round()
                    .clamp(0.0, (volume.dims()[a] - 1) as f64) as usize
            });
            if !lungs.mask.get(voxel[0], voxel[1], voxel[2]) {
                *v = 0.0;
            }
        }
    }
    Ok(ModelInput { values, mapping })
}
