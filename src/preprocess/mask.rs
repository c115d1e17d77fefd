//! A binary mask on a voxel grid.

use super::edt::squared_distance;

/// A binary mask stored like a [`crate::volume::Volume`]: slice-major,
/// `index = (k * rows + j) * columns + i`, one byte per voxel (0 or 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Mask {
    dims: [usize; 3],
    spacing: [f64; 3],
    data: Vec<u8>,
}

impl Mask {
    /// An empty mask on the grid `dims` (`[slices, rows, columns]`) with
    /// `spacing` in mm.
    pub fn empty(dims: [usize; 3], spacing: [f64; 3]) -> Self {
        Self {
            dims,
            spacing,
            data: vec![0; dims.iter().product()],
        }
    }

    /// A mask from a predicate over voxel indices `(k, j, i)`.
    pub fn from_fn(
        dims: [usize; 3],
        spacing: [f64; 3],
        mut inside: impl FnMut(usize, usize, usize) -> bool,
    ) -> Self {
        let mut data = Vec::with_capacity(dims.iter().product());
        for k in 0..dims[0] {
            for j in 0..dims[1] {
                for i in 0..dims[2] {
                    data.push(u8::from(inside(k, j, i)));
                }
            }
        }
        Self {
            dims,
            spacing,
            data,
        }
    }

    /// `[slices, rows, columns]`.
    pub fn dims(&self) -> [usize; 3] {
        self.dims
    }

    /// Spacing `[slice, row, column]` in mm.
    pub fn spacing(&self) -> [f64; 3] {
        self.spacing
    }

    /// One byte per voxel, 1 inside, slice-major.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// A mask from its bytes (slice-major, one per voxel, non-zero inside).
    pub(crate) fn from_data(dims: [usize; 3], spacing: [f64; 3], data: Vec<u8>) -> Self {
        debug_assert_eq!(data.len(), dims.iter().product::<usize>());
        Self {
            dims,
            spacing,
            data,
        }
    }

    /// Whether voxel `(k, j, i)` is inside (false outside the grid).
    pub fn get(&self, k: usize, j: usize, i: usize) -> bool {
        let [d, h, w] = self.dims;
        k < d && j < h && i < w && self.data[(k * h + j) * w + i] != 0
    }

    /// Number of voxels inside.
    pub fn count(&self) -> usize {
        self.data.iter().filter(|&&v| v != 0).count()
    }

    /// Volume inside, in millilitres.
    pub fn volume_ml(&self) -> f64 {
        self.count() as f64 * self.spacing.iter().product::<f64>() / 1000.0
    }

    /// Inclusive voxel bounds `[[k0, j0, i0], [k1, j1, i1]]` of the voxels
    /// inside, or `None` for an empty mask.
    pub fn bounds(&self) -> Option<[[usize; 3]; 2]> {
        let [_, h, w] = self.dims;
        let mut lo = [usize::MAX; 3];
        let mut hi = [0; 3];
        // Row by row: only a row's first and last voxel inside count.
        for (r, row) in self.data.chunks_exact(w).enumerate() {
            let Some(first) = row.iter().position(|&v| v != 0) else {
                continue;
            };
            let last = row.iter().rposition(|&v| v != 0).unwrap_or(first);
            let (k, j) = (r / h, r % h);
            lo = [lo[0].min(k), lo[1].min(j), lo[2].min(first)];
            hi = [hi[0].max(k), hi[1].max(j), hi[2].max(last)];
        }
        (lo[0] != usize::MAX).then_some([lo, hi])
    }

    /// The voxels within `margin_mm` (Euclidean distance in mm) of the mask:
    /// the mask dilated by a ball of that radius. The distance transform runs
    /// on the mask's bounding box widened by the margin only, so the cost
    /// follows the mask rather than the whole grid.
    pub fn grown(&self, margin_mm: f64) -> Mask {
        let margin_mm = margin_mm.max(0.0);
        let Some([lo, hi]) = self.bounds() else {
            return self.clone();
        };
        let [d, h, w] = self.dims;
        let reach = |a: usize| (margin_mm / self.spacing[a]).floor() as usize;
        let start: [usize; 3] = std::array::from_fn(|a| lo[a].saturating_sub(reach(a)));
        let end: [usize; 3] = std::array::from_fn(|a| (hi[a] + reach(a)).min(self.dims[a] - 1));
        let size: [usize; 3] = std::array::from_fn(|a| end[a] - start[a] + 1);
        let [sd, sh, sw] = size;
        let mut part = Vec::with_capacity(sd * sh * sw);
        for k in start[0]..=end[0] {
            for j in start[1]..=end[1] {
                let row = (k * h + j) * w;
                part.extend(&self.data[row + start[2]..=row + end[2]]);
            }
        }
        let limit = (margin_mm * margin_mm) as f32;
        let near = squared_distance(&part, size, self.spacing, 1);
        let mut data = vec![0u8; d * h * w];
        for (n, d2) in near.into_iter().enumerate() {
            let (k, j, i) = (n / (sh * sw), (n / sw) % sh, n % sw);
            let index = ((start[0] + k) * h + start[1] + j) * w + start[2] + i;
            data[index] = u8::from(d2 <= limit);
        }
        Mask {
            dims: self.dims,
            spacing: self.spacing,
            data,
        }
    }

    /// Dice coefficient `2|A∩B| / (|A| + |B|)` against a mask on the same grid
    /// (1 for two empty masks); `None` when the grids differ.
    pub fn dice(&self, other: &Mask) -> Option<f64> {
        if self.dims != other.dims {
            return None;
        }
        let (mut both, mut total) = (0usize, 0usize);
        for (a, b) in self.data.iter().zip(&other.data) {
            let (a, b) = (usize::from(*a != 0), usize::from(*b != 0));
            both += a & b;
            total += a + b;
        }
        Some(if total == 0 {
            1.0
        } else {
            2.0 * both as f64 / total as f64
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_bounds_and_dice() {
        let a = Mask::from_fn([2, 3, 4], [2.0, 1.0, 1.0], |k, j, i| {
            k == 1 && j >= 1 && i < 2
        });
        assert_eq!(a.count(), 4);
        assert_eq!(a.bounds(), Some([[1, 1, 0], [1, 2, 1]]));
        assert!((a.volume_ml() - 4.0 * 2.0 / 1000.0).abs() < 1e-12);
        let b = Mask::from_fn([2, 3, 4], [2.0, 1.0, 1.0], |k, j, i| {
            k == 1 && j == 2 && i < 4
        });
        assert!((a.dice(&b).unwrap() - 2.0 * 2.0 / 8.0).abs() < 1e-12);
        assert_eq!(Mask::empty([1, 1, 1], [1.0; 3]).bounds(), None);
        // Scattered voxels: the bounds of every voxel inside, taken one by one.
        let dims = [5, 7, 9];
        let scattered = Mask::from_fn(dims, [1.0; 3], |k, j, i| {
            k >= 1 && j >= 2 && (k * 31 + j * 17 + i * 7) % 23 == 3
        });
        let inside: Vec<[usize; 3]> = (0..dims.iter().product::<usize>())
            .filter(|&x| scattered.data()[x] != 0)
            .map(|x| [x / 63, x / 9 % 7, x % 9])
            .collect();
        let lo = std::array::from_fn(|a| inside.iter().map(|p| p[a]).min().unwrap());
        let hi = std::array::from_fn(|a| inside.iter().map(|p| p[a]).max().unwrap());
        assert_eq!(scattered.bounds(), Some([lo, hi]));
        assert_ne!(lo, [0, 0, 0], "a case that does not start at the corner");
        assert_eq!(a.dice(&Mask::empty([1, 1, 1], [1.0; 3])), None);
    }

    #[test]
    fn growing_takes_every_voxel_within_the_margin_and_no_other() {
        let dims = [6, 9, 11];
        let spacing = [2.5, 0.8, 1.1];
        let mask = Mask::from_fn(dims, spacing, |k, j, i| {
            (k == 2 && j == 4 && (3..6).contains(&i)) || (k == 3 && j == 6 && i == 8)
        });
        let inside: Vec<[usize; 3]> = (0..dims.iter().product::<usize>())
            .filter(|&n| mask.data[n] != 0)
            .map(|n| [n / 99, (n / 11) % 9, n % 11])
            .collect();
        for margin in [1.0, 2.6, 4.0] {
            let grown = mask.grown(margin);
            for k in 0..dims[0] {
                for j in 0..dims[1] {
                    for i in 0..dims[2] {
                        let nearest = inside
                            .iter()
                            .map(|p| {
                                let d = [k, j, i].into_iter().zip(p).zip(spacing);
                                d.map(|((a, &b), s)| ((a as f64 - b as f64) * s).powi(2))
                                    .sum::<f64>()
                            })
                            .fold(f64::INFINITY, f64::min);
                        // Voxels at the margin itself may go either way (f32 distances).
                        if (nearest - margin * margin).abs() > 1e-3 {
                            let expected = nearest < margin * margin;
                            assert_eq!(grown.get(k, j, i), expected, "{margin} mm at {k} {j} {i}");
                        }
                    }
                }
            }
        }
        assert_eq!(mask.grown(0.0), mask, "a zero margin keeps the mask");
        let empty = Mask::empty(dims, spacing);
        assert_eq!(empty.grown(5.0), empty);
    }
}
