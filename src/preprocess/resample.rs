//! Grids and the maps between them: block-mean downsampling and nearest
//! upsampling for the segmentation's working grid, the lung crop box, and the
//! trilinear maps between a volume's crop box and the model's grids.
//!
//! Grid convention (as PyTorch's `align_corners = false`): a grid of `n` cells
//! laid over a box of `m` voxels puts cell `c`'s centre at voxel coordinate
//! `(c + 0.5) * m / n - 0.5`, so both grids cover the same physical box.

use crate::volume::Volume;

/// An axis-aligned box of voxels, bounds inclusive, `[slice, row, column]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CropBox {
    /// First voxel in the box.
    pub lo: [usize; 3],
    /// Last voxel in the box.
    pub hi: [usize; 3],
}

impl CropBox {
    /// The box `bounds` grown by `margin_mm` on every side, clipped to `dims`.
    pub fn with_margin(
        bounds: [[usize; 3]; 2],
        margin_mm: f64,
        spacing: [f64; 3],
        dims: [usize; 3],
    ) -> Self {
        let grow = |a: usize| (margin_mm.max(0.0) / spacing[a]).ceil() as usize;
        Self {
            lo: std::array::from_fn(|a| bounds[0][a].saturating_sub(grow(a))),
            hi: std::array::from_fn(|a| (bounds[1][a] + grow(a)).min(dims[a] - 1)),
        }
    }

    /// Number of voxels along each axis.
    pub fn size(&self) -> [usize; 3] {
        std::array::from_fn(|a| self.hi[a] - self.lo[a] + 1)
    }
}

/// The map between a volume's crop box and a model grid laid over it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GridMapping {
    /// The box of the volume the model sees.
    pub crop: CropBox,
    /// The model input grid `[D, H, W]`.
    pub grid: [usize; 3],
    /// The volume's dimensions.
    pub volume_dims: [usize; 3],
}

impl GridMapping {
    /// Continuous volume voxel coordinate of the centre of model cell `c` on axis `a`.
    pub fn model_to_volume(&self, a: usize, c: f64) -> f64 {
        let m = self.crop.size()[a] as f64;
        self.crop.lo[a] as f64 + (c + 0.5) * m / self.grid[a] as f64 - 0.5
    }

    /// The volume resampled trilinearly onto the model grid (values in HU).
    pub fn resample(&self, volume: &Volume) -> Vec<f32> {
        self.resample_voxels(volume.voxels())
    }

    /// Voxels on the volume's grid (`volume_dims`, row-major), e.g. a mask as
    /// 0/1, resampled trilinearly onto the model grid.
    pub fn resample_voxels<T: Copy + Into<f32>>(&self, v: &[T]) -> Vec<f32> {
        let [gd, gh, gw] = self.grid;
        let axes: [Vec<(usize, usize, f32)>; 3] = std::array::from_fn(|a| {
            (0..self.grid[a])
                .map(|c| lerp_weights(self.model_to_volume(a, c as f64), self.volume_dims[a]))
                .collect()
        });
        let [_, h, w] = self.volume_dims;
        let mut out = Vec::with_capacity(gd * gh * gw);
        for &(k0, k1, tk) in &axes[0] {
            for &(j0, j1, tj) in &axes[1] {
                for &(i0, i1, ti) in &axes[2] {
                    let at = |k: usize, j: usize| {
                        let row = (k * h + j) * w;
                        v[row + i0].into() * (1.0 - ti) + v[row + i1].into() * ti
                    };
                    let front = at(k0, j0) * (1.0 - tj) + at(k0, j1) * tj;
                    let back = at(k1, j0) * (1.0 - tj) + at(k1, j1) * tj;
                    out.push(front * (1.0 - tk) + back * tk);
                }
            }
        }
        out
    }

    /// A map on a grid `source` (the model grid or the coarser feature grid,
    /// laid over the same crop box) sampled at every voxel of the volume
    /// (see [`CropSampler::at`]).
    pub fn map_to_volume(&self, values: &[f32], source: [usize; 3]) -> Vec<u8> {
        let sampler = self.sampler(source);
        let [d, h, w] = self.volume_dims;
        (0..d)
            .flat_map(|k| (0..h).flat_map(move |j| (0..w).map(move |i| [k, j, i])))
            .map(|voxel| sampler.at(values, voxel))
            .collect()
    }

    /// The voxel of the volume nearest the centre of `cell` of a map on grid
    /// `source` laid over the crop box (where [`CropSampler::at`] reads that
    /// cell's value unblended).
    pub fn cell_voxel(&self, source: [usize; 3], cell: [usize; 3]) -> [usize; 3] {
        let size = self.crop.size();
        std::array::from_fn(|a| {
            let x = (cell[a] as f64 + 0.5) * size[a] as f64 / source[a] as f64 - 0.5;
            self.crop.lo[a] + (x.round().max(0.0) as usize).min(size[a].saturating_sub(1))
        })
    }

    /// Reads maps on grid `source` (laid over the crop box) at single voxels,
    /// so a viewer can draw one plane of a map without the whole volume of it.
    pub fn sampler(&self, source: [usize; 3]) -> CropSampler {
        let size = self.crop.size();
        CropSampler {
            lo: self.crop.lo,
            source,
            // For every voxel of the box on each axis: the two source cells
            // and the weight of the second.
            axes: std::array::from_fn(|a| {
                (0..size[a])
                    .map(|x| {
                        let c = (x as f64 + 0.5) * source[a] as f64 / size[a] as f64 - 0.5;
                        lerp_weights(c, source[a])
                    })
                    .collect()
            }),
        }
    }
}

/// Trilinear reads of a map laid over a [`GridMapping`]'s crop box, made by
/// [`GridMapping::sampler`].
#[derive(Debug, Clone)]
pub struct CropSampler {
    lo: [usize; 3],
    source: [usize; 3],
    axes: [Vec<(usize, usize, f32)>; 3],
}

impl CropSampler {
    /// The map `values` (on the sampler's source grid) at volume voxel
    /// `[k, j, i]`, interpolated trilinearly and quantised to `u8`
    /// (`value * 255`, values clamped to `[0, 1]`); 0 outside the crop box.
    pub fn at(&self, values: &[f32], voxel: [usize; 3]) -> u8 {
        let Some([(k0, k1, tk), (j0, j1, tj), (i0, i1, ti)]) = self.weights(voxel) else {
            return 0;
        };
        let [_, sh, sw] = self.source;
        let cell = |k: usize, j: usize, i: usize| values[(k * sh + j) * sw + i];
        let plane = |j: usize, i: usize| cell(k0, j, i) * (1.0 - tk) + cell(k1, j, i) * tk;
        let line = |i: usize| plane(j0, i) * (1.0 - tj) + plane(j1, i) * tj;
        let v = line(i0) * (1.0 - ti) + line(i1) * ti;
        (v.clamp(0.0, 1.0) * 255.0).round() as u8
    }

    /// The interpolation weights on each axis at `voxel`; None outside the box.
    fn weights(&self, voxel: [usize; 3]) -> Option<[(usize, usize, f32); 3]> {
        let weight = |a: usize| {
            let offset = voxel[a].checked_sub(self.lo[a])?;
            self.axes[a].get(offset).copied()
        };
        Some([weight(0)?, weight(1)?, weight(2)?])
    }
}

/// The two neighbouring indices of continuous coordinate `c` on an axis of
/// `n` samples (clamped at the ends) and the weight of the second.
fn lerp_weights(c: f64, n: usize) -> (usize, usize, f32) {
    let c = c.clamp(0.0, (n - 1) as f64);
    let i0 = c.floor() as usize;
    let i1 = (i0 + 1).min(n - 1);
    (i0, i1, (c - i0 as f64) as f32)
}

/// The mean of each `factors` block of the volume (partial blocks at the far
/// ends averaged over what they hold): the working grid's voxels and dims.
pub fn downsample_mean(volume: &Volume, factors: [usize; 3]) -> (Vec<f32>, [usize; 3]) {
    let [d, h, w] = volume.dims();
    let [fk, fj, fi] = factors;
    let coarse = [d.div_ceil(fk), h.div_ceil(fj), w.div_ceil(fi)];
    let [cd, ch, cw] = coarse;
    let mut sums = vec![0f32; cd * ch * cw];
    let mut counts = vec![0u32; cd * ch * cw];
    let v = volume.voxels();
    for k in 0..d {
        for j in 0..h {
            let row = &v[(k * h + j) * w..(k * h + j + 1) * w];
            let base = ((k / fk) * ch + j / fj) * cw;
            for (ci, chunk) in row.chunks(fi).enumerate() {
                sums[base + ci] += chunk.iter().map(|&v| f32::from(v)).sum::<f32>();
                counts[base + ci] += chunk.len() as u32;
            }
        }
    }
    let means = sums
        .iter()
        .zip(&counts)
        .map(|(s, &c)| s / c as f32)
        .collect();
    (means, coarse)
}

/// Nearest-neighbour upsampling of a working-grid mask back to `dims`.
pub fn upsample_nearest(
    coarse: &[u8],
    coarse_dims: [usize; 3],
    factors: [usize; 3],
    dims: [usize; 3],
) -> Vec<u8> {
    let [d, h, w] = dims;
    let [_, ch, cw] = coarse_dims;
    let mut out = Vec::with_capacity(d * h * w);
    for k in 0..d {
        for j in 0..h {
            let base = ((k / factors[0]) * ch + j / factors[1]) * cw;
            out.extend((0..w).map(|i| coarse[base + i / factors[2]]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const AXIAL: [[f64; 3]; 3] = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

    fn ramp(dims: [usize; 3]) -> Volume {
        let [d, h, w] = dims;
        let voxels = (0..d * h * w)
            .map(|x| {
                let (k, j, i) = (x / (h * w), (x / w) % h, x % w);
                (2 * k + 3 * j + 5 * i) as i16
            })
            .collect();
        Volume::new(voxels, dims, [1.0; 3], [0.0; 3], AXIAL).unwrap()
    }

    #[test]
    fn trilinear_resampling_reproduces_a_linear_ramp() {
        let volume = ramp([20, 30, 40]);
        let mapping = GridMapping {
            crop: CropBox {
                lo: [2, 3, 4],
                hi: [17, 26, 35],
            },
            grid: [8, 12, 16],
            volume_dims: [20, 30, 40],
        };
        let out = mapping.resample(&volume);
        for (x, v) in out.iter().enumerate() {
            let c = [x / (12 * 16), (x / 16) % 12, x % 16];
            let p: [f64; 3] = std::array::from_fn(|a| mapping.model_to_volume(a, c[a] as f64));
            let expected = 2.0 * p[0] + 3.0 * p[1] + 5.0 * p[2];
            assert!(
                (f64::from(*v) - expected).abs() < 1e-3,
                "cell {c:?}: {v} vs {expected}"
            );
        }
    }

    #[test]
    fn mapping_back_is_the_inverse_on_a_ramp() {
        let dims = [20, 30, 40];
        let mapping = GridMapping {
            crop: CropBox {
                lo: [2, 3, 4],
                hi: [17, 26, 35],
            },
            grid: [8, 12, 16],
            volume_dims: dims,
        };
        // A ramp along the columns in [0, 1] on the model grid.
        let values: Vec<f32> = (0..8 * 12 * 16).map(|x| (x % 16) as f32 / 15.0).collect();
        let back = mapping.map_to_volume(&values, mapping.grid);
        let [_, h, w] = dims;
        for k in 2..=17 {
            for j in 3..=26 {
                for i in 4..=35 {
                    // Model column coordinate of this voxel, clamped to the grid.
                    let c = ((i - 4) as f64 + 0.5) * 16.0 / 32.0 - 0.5;
                    let expected = c.clamp(0.0, 15.0) / 15.0;
                    let got = f64::from(back[(k * h + j) * w + i]) / 255.0;
                    assert!(
                        (got - expected).abs() <= 0.5 / 255.0 + 1e-6,
                        "{k},{j},{i}: {got} vs {expected}"
                    );
                }
            }
        }
        assert_eq!(back[0], 0, "outside the crop box");
        assert_eq!(back[(18 * h + 10) * w + 10], 0, "outside the crop box");
    }

    #[test]
    fn block_means_and_nearest_upsampling() {
        let volume = ramp([3, 4, 5]);
        let (coarse, cdims) = downsample_mean(&volume, [1, 2, 2]);
        assert_eq!(cdims, [3, 2, 3]);
        // Block (k 0, rows 0-1, columns 0-1): mean of 0, 5, 3, 8.
        assert!((coarse[0] - 4.0).abs() < 1e-6);
        // Partial block (k 0, rows 0-1, column 4): mean of 20 and 23.
        assert!((coarse[2] - 21.5).abs() < 1e-6);
        let mask: Vec<u8> = (0..18).map(|x| u8::from(x % 2 == 0)).collect();
        let fine = upsample_nearest(&mask, cdims, [1, 2, 2], [3, 4, 5]);
        assert_eq!(fine.len(), 60);
        assert_eq!(fine[4 + 3], mask[1]);
        assert_eq!(fine[(2 * 4 + 3) * 5 + 4], mask[(2 * 2 + 1) * 3 + 2]);
    }

    #[test]
    fn crop_box_grows_by_millimetres_and_clips() {
        let b = CropBox::with_margin(
            [[2, 10, 10], [5, 20, 90]],
            5.0,
            [2.5, 1.0, 0.5],
            [10, 100, 100],
        );
        assert_eq!(
            b,
            CropBox {
                lo: [0, 5, 0],
                hi: [7, 25, 99]
            }
        );
        assert_eq!(b.size(), [8, 21, 100]);
    }
}
