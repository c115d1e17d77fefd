//! Infection masks as training targets: a mask on the CT's voxels carried onto
//! the model grid with the same crop and resampling as the CT itself, then
//! averaged down to the feature grid, where the attention maps live.

use super::resample::GridMapping;

/// The infected fraction of each model-grid cell: `mask` (one byte per voxel of
/// the volume the mapping was made for, non-zero = infected) resampled
/// trilinearly like the CT, so the target lines up with the input voxel for voxel.
pub fn mask_on_model_grid(mask: &[u8], mapping: &GridMapping) -> Vec<f32> {
    let voxels: Vec<u8> = mask.iter().map(|&m| u8::from(m != 0)).collect();
    mapping.resample_voxels(&voxels)
}

/// Area average of `values` on grid `from` onto the coarser grid `to` laid over
/// the same box: target cell `c` of an axis with `m` cells over `n` source cells
/// averages source cells `floor(c n / m) .. ceil((c + 1) n / m)`. With `to` the
/// model's feature grid, this is the infected fraction of each feature cell.
pub fn area_mean(values: &[f32], from: [usize; 3], to: [usize; 3]) -> Vec<f32> {
    let spans: [Vec<(usize, usize)>; 3] = std::array::from_fn(|a| {
        let (n, m) = (from[a], to[a]);
        (0..m)
            .map(|c| ((c * n) / m, ((c + 1) * n).div_ceil(m).max((c * n) / m + 1)))
            .collect()
    });
    let [_, fh, fw] = from;
    let mut out = Vec::with_capacity(to.iter().product());
    for &(k0, k1) in &spans[0] {
        for &(j0, j1) in &spans[1] {
            for &(i0, i1) in &spans[2] {
                let mut sum = 0.0f64;
                for k in k0..k1 {
                    for j in j0..j1 {
                        let row = (k * fh + j) * fw;
                        sum += values[row + i0..row + i1]
                            .iter()
                            .map(|&v| f64::from(v))
                            .sum::<f64>();
                    }
                }
                let count = (k1 - k0) * (j1 - j0) * (i1 - i0);
                out.push((sum / count as f64) as f32);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preprocess::CropBox;

    #[test]
    fn area_mean_of_divisible_grids_averages_whole_blocks() {
        // 4x4x4 with one 2x2x2 corner block set: that target cell is 1, the rest 0.
        let from = [4, 4, 4];
        let values: Vec<f32> = (0..64)
            .map(|x| {
                let (k, j, i) = (x / 16, (x / 4) % 4, x % 4);
                f32::from(u8::from(k < 2 && j < 2 && i < 2))
            })
            .collect();
        let out = area_mean(&values, from, [2, 2, 2]);
        assert_eq!(out, vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        let quarter = area_mean(&values, from, [1, 1, 1]);
        assert_eq!(quarter, vec![0.125]);
    }

    #[test]
    fn area_mean_of_uneven_grids_covers_every_source_cell() {
        let from = [5, 3, 7];
        let values = vec![0.5f32; 105];
        let out = area_mean(&values, from, [2, 2, 3]);
        assert!(out.iter().all(|&v| (v - 0.5).abs() < 1e-6));
        assert_eq!(out.len(), 12);
    }

    #[test]
    fn a_mask_lands_on_the_model_cells_of_its_voxels() {
        // Volume 8x8x8, crop = the whole volume, model grid 4x4x4: voxels 0..4 on
        // every axis set -> model cells 0..2 full, cell 2 partly, cell 3 empty.
        let dims = [8, 8, 8];
        let mask: Vec<u8> = (0..512)
            .map(|x| {
                let (k, j, i) = (x / 64, (x / 8) % 8, x % 8);
                u8::from(k < 4 && j < 4 && i < 4)
            })
            .collect();
        let mapping = GridMapping {
            crop: CropBox {
                lo: [0; 3],
                hi: [7; 3],
            },
            grid: [4, 4, 4],
            volume_dims: dims,
        };
        let on_grid = mask_on_model_grid(&mask, &mapping);
        let at = |k: usize, j: usize, i: usize| on_grid[(k * 4 + j) * 4 + i];
        assert_eq!(at(0, 0, 0), 1.0);
        assert_eq!(at(1, 1, 1), 1.0);
        assert_eq!(at(3, 3, 3), 0.0);
        // Cell 2 is centred between voxels 4 and 5 (voxel coordinate 4.5), outside.
        assert_eq!(at(2, 0, 0), 0.0);
        let total: f32 = on_grid.iter().sum();
        assert!((total - 8.0).abs() < 1e-5, "{total}");
    }
}
