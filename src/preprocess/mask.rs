//! A binary mask on a voxel grid.

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
        for (index, _) in self.data.iter().enumerate().filter(|(_, v)| **v != 0) {
            let p = [index / (h * w), (index / w) % h, index % w];
            for a in 0..3 {
                lo[a] = lo[a].min(p[a]);
                hi[a] = hi[a].max(p[a]);
            }
        }
        (lo[0] != usize::MAX).then_some([lo, hi])
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
        assert_eq!(a.dice(&Mask::empty([1, 1, 1], [1.0; 3])), None);
    }
}
