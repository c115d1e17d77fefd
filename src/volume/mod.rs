//! The CT volume every stage after parsing works on: voxels in Hounsfield
//! units (whole numbers, 16 bits a voxel: half the memory of floats, which a
//! 2,000-slice series in a browser needs) on a regular grid with its
//! physical geometry.
//!
//! Canonical layout: voxels are stored slice-major, `index = (k * rows + j) *
//! columns + i`, with `i` along the image rows' direction (DICOM's first
//! ImageOrientationPatient cosine), `j` along the columns' direction (the
//! second cosine) and `k` along the slice normal `row x column`, slices sorted
//! by increasing position along that normal. For a standard axial chest CT
//! (orientation `[1,0,0, 0,1,0]`) that is patient right-to-left, anterior-to-
//! posterior and inferior-to-superior, in DICOM's LPS patient coordinates.
//!
//! Volumes come from DICOM series (`crate::dicom`) or NIfTI-1 files ([`read_nifti`]).

mod nifti;

pub use nifti::{MAX_NIFTI_BYTES, NiftiError, is_nifti, read_nifti};

/// Why voxels and a geometry do not make a volume.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum VolumeError {
    /// The voxel count does not match the dimensions.
    #[error("{voxels} voxels for dimensions {dims:?}")]
    VoxelCount {
        /// Number of voxels given.
        voxels: usize,
        /// Dimensions `[slices, rows, columns]`.
        dims: [usize; 3],
    },
    /// A dimension is zero or a spacing is not a positive finite number.
    #[error("degenerate geometry: dimensions {dims:?}, spacing {spacing:?} mm")]
    Degenerate {
        /// Dimensions `[slices, rows, columns]`.
        dims: [usize; 3],
        /// Spacing `[slice, row, column]` in mm.
        spacing: [f64; 3],
    },
}

/// `hu` as a voxel: rounded to the nearest whole HU and clamped to `i16`'s
/// range (NaN becomes 0). CT's stored values are whole numbers of HU from
/// -1024 to a few thousand, so for them this loses nothing.
pub fn whole_hu(hu: f32) -> i16 {
    // `as` saturates at the ends of the range and maps NaN to 0.
    hu.round() as i16
}

/// A CT volume in whole Hounsfield units (16 bits a voxel) on a regular grid
/// (see the module docs for the layout).
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    voxels: Vec<i16>,
    dims: [usize; 3],
    spacing: [f64; 3],
    origin: [f64; 3],
    direction: [[f64; 3]; 3],
}

impl Volume {
    /// Builds a volume: `dims` and `spacing` are `[slices, rows, columns]`
    /// (spacing in mm, between slice centres, row centres and column centres);
    /// `origin` is the patient position (mm) of the centre of the first voxel;
    /// `direction` holds the unit vectors of the column index `i`, the row
    /// index `j` and the slice index `k`.
    pub fn new(
        voxels: Vec<i16>,
        dims: [usize; 3],
        spacing: [f64; 3],
        origin: [f64; 3],
        direction: [[f64; 3]; 3],
    ) -> Result<Self, VolumeError> {
        if dims.contains(&0) || spacing.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(VolumeError::Degenerate { dims, spacing });
        }
        if voxels.len() != dims.iter().product::<usize>() {
            return Err(VolumeError::VoxelCount {
                voxels: voxels.len(),
                dims,
            });
        }
        Ok(Self {
            voxels,
            dims,
            spacing,
            origin,
            direction,
        })
    }

    /// The voxels in HU, slice-major.
    pub fn voxels(&self) -> &[i16] {
        &self.voxels
    }

    /// `[slices, rows, columns]`.
    pub fn dims(&self) -> [usize; 3] {
        self.dims
    }

    /// Spacing `[slice, row, column]` in mm.
    pub fn spacing(&self) -> [f64; 3] {
        self.spacing
    }

    /// Patient position (mm, LPS) of the centre of voxel `(0, 0, 0)`.
    pub fn origin(&self) -> [f64; 3] {
        self.origin
    }

    /// Unit vectors of the column index `i`, row index `j` and slice index `k`.
    pub fn direction(&self) -> [[f64; 3]; 3] {
        self.direction
    }

    /// The voxel at slice `k`, row `j`, column `i`, if inside the grid.
    pub fn get(&self, k: usize, j: usize, i: usize) -> Option<f32> {
        let [d, h, w] = self.dims;
        (k < d && j < h && i < w).then(|| f32::from(self.voxels[(k * h + j) * w + i]))
    }

    /// Patient position (mm, LPS) of the centre of voxel `(k, j, i)`.
    pub fn position(&self, k: f64, j: f64, i: f64) -> [f64; 3] {
        let [dk, dj, di] = self.spacing;
        let [u, v, n] = self.direction;
        std::array::from_fn(|a| self.origin[a] + i * di * u[a] + j * dj * v[a] + k * dk * n[a])
    }

    /// Volume of one voxel in millilitres.
    pub fn voxel_ml(&self) -> f64 {
        self.spacing.iter().product::<f64>() / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AXIAL: [[f64; 3]; 3] = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

    #[test]
    fn indexes_slice_major_and_maps_to_patient_space() {
        let voxels: Vec<i16> = (0..24).collect();
        let v = Volume::new(
            voxels,
            [2, 3, 4],
            [2.0, 0.5, 0.7],
            [10.0, 20.0, -30.0],
            AXIAL,
        )
        .unwrap();
        assert_eq!(v.get(1, 2, 3), Some(23.0));
        assert_eq!(v.get(0, 1, 0), Some(4.0));
        assert_eq!(v.get(2, 0, 0), None);
        let p = v.position(1.0, 2.0, 3.0);
        let expected = [10.0 + 3.0 * 0.7, 20.0 + 2.0 * 0.5, -30.0 + 2.0];
        for (a, b) in p.iter().zip(expected) {
            assert!((a - b).abs() < 1e-12);
        }
        assert!((v.voxel_ml() - 0.7 * 0.5 * 2.0 / 1000.0).abs() < 1e-15);
    }

    #[test]
    fn hu_are_rounded_to_whole_numbers_within_16_bits() {
        assert_eq!(whole_hu(-1024.0), -1024);
        assert_eq!(whole_hu(39.5), 40);
        assert_eq!(whole_hu(-0.4), 0);
        assert_eq!(whole_hu(1e6), i16::MAX);
        assert_eq!(whole_hu(-1e6), i16::MIN);
        assert_eq!(whole_hu(f32::NAN), 0);
    }

    #[test]
    fn refuses_inconsistent_geometry() {
        assert_eq!(
            Volume::new(vec![0; 5], [1, 2, 3], [1.0; 3], [0.0; 3], AXIAL),
            Err(VolumeError::VoxelCount {
                voxels: 5,
                dims: [1, 2, 3]
            })
        );
        assert!(matches!(
            Volume::new(vec![], [0, 2, 3], [1.0; 3], [0.0; 3], AXIAL),
            Err(VolumeError::Degenerate { .. })
        ));
        assert!(matches!(
            Volume::new(vec![0; 6], [1, 2, 3], [1.0, f64::NAN, 1.0], [0.0; 3], AXIAL),
            Err(VolumeError::Degenerate { .. })
        ));
    }
}
