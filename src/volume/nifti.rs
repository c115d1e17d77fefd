//! NIfTI-1 (`.nii`, `.nii.gz`) into a [`Volume`], with nifti-rs: scaled
//! voxel values (`scl_slope`/`scl_inter`), and the geometry from the sform,
//! else the qform, else the voxel sizes, converted from NIfTI's RAS world
//! to the LPS patient coordinates every [`Volume`] uses.

use std::borrow::Cow;
use std::io::Read;

use ::nifti::{InMemNiftiObject, IntoNdArray, NiftiHeader, NiftiObject};
use flate2::read::GzDecoder;

use super::Volume;

/// Why a NIfTI file could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum NiftiError {
    /// Not a NIfTI-1 file, or damaged.
    #[error("{file}: not a readable NIfTI-1 file ({reason})")]
    Unreadable {
        /// File name.
        file: String,
        /// Reader message.
        reason: String,
    },
    /// Not one 3D scalar volume.
    #[error("{file}: {reason}")]
    Unsupported {
        /// File name.
        file: String,
        /// What the file holds.
        reason: String,
    },
}

/// Whether `bytes` look like a NIfTI-1 file (plain or gzip-compressed `.nii.gz`,
/// as told by `name`).
pub fn is_nifti(name: &str, bytes: &[u8]) -> bool {
    let lower = name.to_ascii_lowercase();
    let plain = bytes.len() >= 348 && &bytes[344..348] == b"n+1\0";
    plain || (lower.ends_with(".nii.gz") && bytes.starts_with(&[0x1f, 0x8b]))
}

/// Reads a NIfTI-1 volume (`file` names it in errors).
pub fn read_nifti(file: &str, bytes: &[u8]) -> Result<Volume, NiftiError> {
    let unreadable = |reason: String| NiftiError::Unreadable {
        file: file.to_owned(),
        reason,
    };
    let unsupported = |reason: String| NiftiError::Unsupported {
        file: file.to_owned(),
        reason,
    };
    let plain: Cow<'_, [u8]> = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut plain = Vec::new();
        GzDecoder::new(bytes)
            .take(MAX_NIFTI_BYTES)
            .read_to_end(&mut plain)
            .map_err(|e| unreadable(format!("gzip: {e}")))?;
        Cow::Owned(plain)
    } else {
        Cow::Borrowed(bytes)
    };
    // Check the size the header declares against what the file holds before
    // anything is allocated for the voxels.
    let declared = NiftiHeader::from_reader(&plain[..])
        .ok()
        .and_then(|h| declared_bytes(&h));
    match declared {
        Some(needed) if needed <= plain.len() as u64 => {}
        Some(needed) => {
            return Err(unreadable(format!(
                "the header declares {needed} bytes but the file holds {}",
                plain.len()
            )));
        }
        None => return Err(unreadable("invalid NIfTI-1 header".to_owned())),
    }
    let object =
        InMemNiftiObject::from_reader(&plain[..]).map_err(|e| unreadable(e.to_string()))?;
    let header = object.header().clone();
    let rank = usize::from(header.dim[0]);
    let extra: usize = header.dim[4..=rank.clamp(3, 7)]
        .iter()
        .map(|&d| usize::from(d.max(1)))
        .product();
    if !(3..=7).contains(&rank) || extra != 1 {
        return Err(unsupported(format!(
            "{rank}-dimensional image {:?}; one 3D volume is needed",
            &header.dim[1..=rank.clamp(1, 7)]
        )));
    }
    let [nx, ny, nz] = [1, 2, 3].map(|a| usize::from(header.dim[a]));
    let array = object
        .into_volume()
        .into_ndarray::<f32>()
        .map_err(|e| unsupported(e.to_string()))?;
    let mut voxels = Vec::with_capacity(nx * ny * nz);
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                voxels.push(super::whole_hu(array[[i, j, k].as_slice()]));
            }
        }
    }
    let (columns, origin) = lps_affine(&header);
    let spacing = columns.map(|c| c.iter().map(|v| v * v).sum::<f64>().sqrt());
    let direction = std::array::from_fn(|a| columns[a].map(|v| v / spacing[a]));
    Volume::new(
        voxels,
        [nz, ny, nx],
        [spacing[2], spacing[1], spacing[0]],
        origin,
        direction,
    )
    .map_err(|e| unsupported(e.to_string()))
}

/// Voxel offset plus voxel bytes a header declares, if its dimensions are valid.
fn declared_bytes(h: &NiftiHeader) -> Option<u64> {
    let dims = h.dim().ok()?;
    let voxels = dims
        .iter()
        .try_fold(1_u64, |n, &d| n.checked_mul(u64::from(d)))?;
    let bytes_per_voxel = u64::try_from(h.bitpix).ok()?.div_ceil(8).max(1);
    let offset = if h.vox_offset.is_finite() && h.vox_offset >= 0.0 {
        h.vox_offset as u64
    } else {
        352
    };
    voxels.checked_mul(bytes_per_voxel)?.checked_add(offset)
}

/// Largest decompressed `.nii.gz` accepted (gzip bombs stop here).
pub const MAX_NIFTI_BYTES: u64 = 2 << 30;

/// The columns (steps of i, j, k in mm) and the origin of the voxel-to-world
/// transform, in LPS.
fn lps_affine(h: &NiftiHeader) -> ([[f64; 3]; 3], [f64; 3]) {
    let pixdim = [1, 2, 3].map(|a| f64::from(h.pixdim[a]).abs().max(f64::MIN_POSITIVE));
    let (columns, origin) = if h.sform_code > 0 {
        let rows = [h.srow_x, h.srow_y, h.srow_z].map(|r| r.map(f64::from));
        let columns = std::array::from_fn(|c| std::array::from_fn(|r| rows[r][c]));
        (columns, [rows[0][3], rows[1][3], rows[2][3]])
    } else if h.qform_code > 0 {
        let rotation = quaternion_rotation(h);
        let qfac = if h.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
        let scale = [pixdim[0], pixdim[1], pixdim[2] * qfac];
        let columns = std::array::from_fn(|c| std::array::from_fn(|r| rotation[r][c] * scale[c]));
        let origin = [h.quatern_x, h.quatern_y, h.quatern_z].map(f64::from);
        (columns, origin)
    } else {
        let columns =
            std::array::from_fn(|c| std::array::from_fn(|r| if r == c { pixdim[c] } else { 0.0 }));
        (columns, [0.0; 3])
    };
    // RAS -> LPS: negate the first two world axes.
    let flip = [-1.0, -1.0, 1.0];
    let columns = columns.map(|c: [f64; 3]| std::array::from_fn(|r| c[r] * flip[r]));
    let origin = std::array::from_fn(|r| origin[r] * flip[r]);
    (columns, origin)
}

/// The rotation matrix of the NIfTI quaternion (b, c, d; a from unit norm).
fn quaternion_rotation(h: &NiftiHeader) -> [[f64; 3]; 3] {
    let [b, c, d] = [h.quatern_b, h.quatern_c, h.quatern_d].map(f64::from);
    let a = (1.0 - (b * b + c * c + d * d)).max(0.0).sqrt();
    [
        [
            a * a + b * b - c * c - d * d,
            2.0 * (b * c - a * d),
            2.0 * (b * d + a * c),
        ],
        [
            2.0 * (b * c + a * d),
            a * a + c * c - b * b - d * d,
            2.0 * (c * d - a * b),
        ],
        [
            2.0 * (b * d - a * c),
            2.0 * (c * d + a * b),
            a * a + d * d - c * c - b * b,
        ],
    ]
}
