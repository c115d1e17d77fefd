//! Slices -> series: grouping by SeriesInstanceUID and orientation, a summary
//! of each for the series picker, the default choice, and the ordering and
//! spacing checks that turn a series into a [`Volume`].

use std::collections::BTreeMap;

use super::slice::{SeriesAttributes, Slice};
use crate::volume::{Volume, VolumeError, whole_hu};

/// SOP classes that are never the CT to diagnose.
const SECONDARY_CAPTURE: &str = "1.2.840.10008.5.1.4.1.1.7";
/// Two slices closer than this along the normal (mm) are duplicates.
const DUPLICATE_MM: f64 = 0.01;
/// Relative deviation from the median slice gap tolerated as uniform.
const UNIFORM_TOLERANCE: f64 = 0.1;
/// Orientation cosines are grouped after rounding to this many decimals.
const ORIENTATION_DECIMALS: f64 = 1e3;

/// One series: its slices (unsorted until assembled) and what describes it.
#[derive(Debug, Clone)]
pub struct Series {
    /// Slices of the series.
    pub slices: Vec<Slice>,
    /// Summary for the series picker.
    pub summary: SeriesSummary,
}

impl Series {
    /// Moves the slices out into a new `Series`, leaving this one with its
    /// summary only (so a volume can be built without copying every slice).
    pub fn take_slices(&mut self) -> Series {
        Series {
            slices: std::mem::take(&mut self.slices),
            summary: self.summary.clone(),
        }
    }
}

/// What the series picker shows for a series.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SeriesSummary {
    /// SeriesInstanceUID.
    pub series_uid: String,
    /// SeriesNumber.
    pub series_number: Option<i32>,
    /// SeriesDescription (with the acquisition number appended when split by it).
    pub description: String,
    /// AcquisitionNumber, set when the series was split by acquisition.
    pub acquisition: Option<i32>,
    /// Modality.
    pub modality: String,
    /// Number of slices (frames).
    pub slices: usize,
    /// `[rows, columns]` of the first slice.
    pub image_size: [usize; 2],
    /// PixelSpacing of the first slice, mm.
    pub pixel_spacing: Option<[f64; 2]>,
    /// Median distance between slice positions along the normal, mm.
    pub slice_spacing: Option<f64>,
    /// SliceThickness of the first slice, mm.
    pub thickness: Option<f64>,
    /// Memory the assembled volume will take, in bytes.
    pub volume_bytes: u64,
    /// ConvolutionKernel.
    pub kernel: String,
    /// StudyDate.
    pub study_date: String,
    /// BodyPartExamined.
    pub body_part: String,
    /// `axial`, `coronal`, `sagittal` or `oblique`, from the orientation.
    pub plane: String,
    /// Why this series cannot be the diagnosed CT, if it cannot.
    pub unusable: Option<String>,
}

/// Why a series cannot be assembled into a volume.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SeriesError {
    /// Not enough slices for a 3D volume.
    #[error("series {series}: {slices} slice(s); a CT volume needs at least {minimum}")]
    TooFewSlices {
        /// Series description or UID.
        series: String,
        /// Slices found.
        slices: usize,
        /// Slices needed.
        minimum: usize,
    },
    /// Slices without position, orientation or pixel spacing.
    #[error("series {series}: {file} has no {attribute}, so the slices cannot be placed in space")]
    NoGeometry {
        /// Series description or UID.
        series: String,
        /// First file lacking it.
        file: String,
        /// Missing attribute.
        attribute: &'static str,
    },
    /// Slices of different sizes or spacings.
    #[error("series {series}: {file} is {found} but the series is {expected}")]
    Inconsistent {
        /// Series description or UID.
        series: String,
        /// First differing file.
        file: String,
        /// What that file has.
        found: String,
        /// What the first slice has.
        expected: String,
    },
    /// The volume would not fit in memory.
    #[error(
        "series {series}: the volume needs {needed_mib} MiB, more than the {limit_mib} MiB this page can hold (at most {max_slices} slices of {rows}x{columns}); choose a thicker reconstruction or use the native `dsan` tool"
    )]
    TooLarge {
        /// Series description or UID.
        series: String,
        /// Memory needed.
        needed_mib: u64,
        /// Memory allowed.
        limit_mib: u64,
        /// The most slices of this series' image size that fit.
        max_slices: u64,
        /// Rows of its images.
        rows: usize,
        /// Columns of its images.
        columns: usize,
    },
    /// Memory for the volume could not be had (the page's WebAssembly memory
    /// is full: other series of a big study, another tab's worth of data).
    #[error(
        "series {series}: no memory left for its {needed_mib} MiB volume; open this series on its own or use the native `dsan` tool"
    )]
    OutOfMemory {
        /// Series description or UID.
        series: String,
        /// Memory needed.
        needed_mib: u64,
    },
    /// The volume could not be built.
    #[error("series {series}: {source}")]
    Volume {
        /// Series description or UID.
        series: String,
        /// Why.
        source: VolumeError,
    },
}

/// A series assembled into a volume, with what was noticed on the way.
#[derive(Debug, Clone)]
pub struct AssembledSeries {
    /// The volume in the canonical layout.
    pub volume: Volume,
    /// The series' attributes.
    pub attributes: SeriesAttributes,
    /// Problems found and how they were handled (duplicates dropped, gaps
    /// interpolated, gantry tilt), for the user.
    pub warnings: Vec<String>,
}

/// Groups slices by SeriesInstanceUID and orientation (and by acquisition
/// where one series holds several acquisitions of the same positions),
/// summarises each group, and orders the groups by series number.
pub fn group_series(slices: Vec<Slice>) -> Vec<Series> {
    let mut groups: BTreeMap<(String, [i64; 6]), Vec<Slice>> = BTreeMap::new();
    for slice in slices {
        let orientation = slice
            .orientation
            .map(|o| o.map(|c| (c * ORIENTATION_DECIMALS).round() as i64))
            .unwrap_or_default();
        groups
            .entry((slice.series.series_uid.clone(), orientation))
            .or_default()
            .push(slice);
    }
    let mut series: Vec<Series> = groups
        .into_values()
        .flat_map(split_acquisitions)
        .map(|(acquisition, slices)| {
            let mut summary = summarise(&slices);
            if let Some(number) = acquisition {
                summary.acquisition = Some(number);
                summary.description = format!("{} (acquisition {number})", summary.description);
            }
            Series { summary, slices }
        })
        .collect();
    series.sort_by_key(|s| {
        (
            s.summary.series_number.unwrap_or(i32::MAX),
            s.summary.series_uid.clone(),
        )
    });
    series
}

/// Splits a group by AcquisitionNumber when two acquisitions cover the same
/// positions (say inspiration and expiration stored as one series); a series
/// whose acquisition number merely changes from slice to slice stays whole.
/// The acquisition number is returned for split groups only.
fn split_acquisitions(slices: Vec<Slice>) -> Vec<(Option<i32>, Vec<Slice>)> {
    let mut by_acquisition: BTreeMap<Option<i32>, Vec<Slice>> = BTreeMap::new();
    for slice in slices {
        by_acquisition
            .entry(slice.acquisition)
            .or_default()
            .push(slice);
    }
    let mut owner: BTreeMap<[i64; 3], Option<i32>> = BTreeMap::new();
    let overlap = by_acquisition.iter().any(|(&acquisition, slices)| {
        slices
            .iter()
            .filter_map(|s| s.position.map(|p| p.map(|c| (c * 100.0).round() as i64)))
            .any(|key| {
                owner
                    .insert(key, acquisition)
                    .is_some_and(|other| other != acquisition)
            })
    });
    if overlap {
        by_acquisition.into_iter().collect()
    } else {
        vec![(None, by_acquisition.into_values().flatten().collect())]
    }
}

/// The series to diagnose by default: among usable series, the one with the
/// most slices, then the thinnest spacing, preferring axial ones.
pub fn default_series(series: &[Series]) -> Option<usize> {
    series
        .iter()
        .enumerate()
        .filter(|(_, s)| s.summary.unusable.is_none())
        .max_by(|(_, a), (_, b)| {
            let key = |s: &SeriesSummary| (s.plane == "axial", s.slices);
            key(&a.summary).cmp(&key(&b.summary)).then_with(|| {
                let spacing = |s: &SeriesSummary| s.slice_spacing.unwrap_or(f64::INFINITY);
                spacing(&b.summary).total_cmp(&spacing(&a.summary))
            })
        })
        .map(|(index, _)| index)
}

fn summarise(slices: &[Slice]) -> SeriesSummary {
    let first = &slices[0];
    let a = &first.series;
    let normal = first.orientation.map(normal_of);
    let mut positions: Vec<f64> = match normal {
        Some(n) => slices
            .iter()
            .filter_map(|s| s.position.map(|p| dot(p, n)))
            .collect(),
        None => Vec::new(),
    };
    positions.sort_by(f64::total_cmp);
    let gaps: Vec<f64> = positions
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|g| *g > DUPLICATE_MM)
        .collect();
    SeriesSummary {
        series_uid: a.series_uid.clone(),
        series_number: a.series_number,
        description: a.description.clone(),
        acquisition: None,
        modality: a.modality.clone(),
        slices: slices.len(),
        image_size: [first.rows, first.columns],
        pixel_spacing: first.pixel_spacing,
        slice_spacing: median(&gaps),
        thickness: first.thickness,
        volume_bytes: (slices.len() * first.rows * first.columns * size_of::<i16>()) as u64,
        kernel: a.kernel.clone(),
        study_date: a.study_date.clone(),
        body_part: a.body_part.clone(),
        plane: normal.map(plane_of).unwrap_or("unknown").to_owned(),
        unusable: unusable_reason(a, slices),
    }
}

fn unusable_reason(a: &SeriesAttributes, slices: &[Slice]) -> Option<String> {
    if a.modality != "CT" {
        return Some(format!("modality {:?} is not CT", a.modality));
    }
    if a.image_type.iter().any(|t| t == "LOCALIZER") {
        return Some("a localizer (scout) image".to_owned());
    }
    if a.sop_class == SECONDARY_CAPTURE || a.image_type.iter().any(|t| t == "SECONDARY") {
        return Some("a secondary capture (screenshot or dose report)".to_owned());
    }
    if slices.len() < MIN_SLICES {
        return Some(format!(
            "{} slice(s); a CT volume needs at least {MIN_SLICES}",
            slices.len()
        ));
    }
    if slices
        .iter()
        .any(|s| s.position.is_none() || s.orientation.is_none())
    {
        return Some("slices without position or orientation".to_owned());
    }
    None
}

/// Largest volume assembled, in bytes of 16-bit voxels: 2,048 slices of
/// 512x512. A page's WebAssembly memory is limited to 4 GiB, which must also
/// hold the decoded slices while the volume is assembled (as much again) and
/// the diagnosis's lung masks (a byte a voxel each).
#[cfg(target_arch = "wasm32")]
pub const MAX_VOLUME_BYTES: u64 = 1 << 30;
/// Largest volume assembled, in bytes of 16-bit voxels.
#[cfg(not(target_arch = "wasm32"))]
pub const MAX_VOLUME_BYTES: u64 = 16 << 30;

/// Fewest slices a diagnosable volume may have.
pub const MIN_SLICES: usize = 3;

/// Sorts the series' slices along the slice normal, checks them, and builds
/// the volume; duplicates are dropped and gaps or uneven spacing are
/// linearly interpolated onto the median spacing (each reported as a warning).
pub fn assemble(series: Series) -> Result<AssembledSeries, SeriesError> {
    let name = series_name(&series.summary);
    fits(
        &name,
        series.summary.volume_bytes as f64,
        series.summary.image_size,
    )?;
    let mut slices = series.slices;
    if slices.len() < MIN_SLICES {
        return Err(SeriesError::TooFewSlices {
            series: name,
            slices: slices.len(),
            minimum: MIN_SLICES,
        });
    }
    let first = &slices[0];
    let geometry = |attribute: &'static str, file: &str| SeriesError::NoGeometry {
        series: name.clone(),
        file: file.to_owned(),
        attribute,
    };
    let orientation = first
        .orientation
        .ok_or_else(|| geometry("ImageOrientationPatient", &first.file))?;
    let pixel_spacing = first
        .pixel_spacing
        .ok_or_else(|| geometry("PixelSpacing", &first.file))?;
    let (rows, columns) = (first.rows, first.columns);
    for s in &slices {
        if s.position.is_none() {
            return Err(geometry("ImagePositionPatient", &s.file));
        }
        if (s.rows, s.columns) != (rows, columns) {
            return Err(SeriesError::Inconsistent {
                series: name.clone(),
                file: s.file.clone(),
                found: format!("{}x{}", s.rows, s.columns),
                expected: format!("{rows}x{columns}"),
            });
        }
    }
    let normal = normal_of(orientation);
    let along = |s: &Slice| s.position.map(|p| dot(p, normal)).unwrap_or_default();
    slices.sort_by(|a, b| along(a).total_cmp(&along(b)));

    let mut warnings = Vec::new();
    let before = slices.len();
    slices.dedup_by(|b, a| (along(b) - along(a)).abs() < DUPLICATE_MM);
    if slices.len() < before {
        warnings.push(format!(
            "{} duplicate slice(s) at the same position were ignored",
            before - slices.len()
        ));
    }
    let positions: Vec<f64> = slices.iter().map(along).collect();
    let gaps: Vec<f64> = positions.windows(2).map(|w| w[1] - w[0]).collect();
    let spacing = median(&gaps).ok_or_else(|| SeriesError::TooFewSlices {
        series: name.clone(),
        slices: slices.len(),
        minimum: MIN_SLICES,
    })?;
    let uniform = gaps
        .iter()
        .all(|g| (g - spacing).abs() <= UNIFORM_TOLERANCE * spacing);
    if let Some(tilt) = gantry_tilt_degrees(&slices, normal) {
        warnings.push(format!(
            "slices are sheared by {tilt:.1}° (gantry tilt or oblique stack); shown without correction"
        ));
    }
    let origin = slices[0].position.unwrap_or_default();
    let attributes = slices[0].series.clone();
    let row_dir = [orientation[0], orientation[1], orientation[2]];
    let col_dir = [orientation[3], orientation[4], orientation[5]];
    let (voxels, depth) = if uniform {
        // One allocation of the final size, written in HU straight from the
        // stored values; each slice is freed once written.
        let depth = slices.len();
        let mut voxels = reserve_voxels(&name, depth * rows * columns)?;
        for slice in slices {
            slice.pixels.extend_hu(&mut voxels);
        }
        (voxels, depth)
    } else {
        // A single far-off slice (a hostile or broken file) must not make
        // the resampled volume larger than the limit: checked before the
        // depth is even a `usize`.
        let steps = ((positions[positions.len() - 1] - positions[0]) / spacing).round();
        fits(
            &name,
            (steps + 1.0) * (rows * columns * size_of::<i16>()) as f64,
            [rows, columns],
        )?;
        let depth = steps as usize + 1;
        let largest = gaps.iter().copied().fold(0.0, f64::max);
        warnings.push(format!(
            "uneven slice spacing (median {spacing:.2} mm, largest gap {largest:.2} mm): \
             resampled to {depth} slices every {spacing:.2} mm by linear interpolation"
        ));
        let voxels = reserve_voxels(&name, depth * rows * columns)?;
        (
            interpolate(&slices, &positions, spacing, depth, voxels),
            depth,
        )
    };
    let volume = Volume::new(
        voxels,
        [depth, rows, columns],
        [spacing, pixel_spacing[0], pixel_spacing[1]],
        origin,
        [row_dir, col_dir, normal],
    )
    .map_err(|source| SeriesError::Volume {
        series: name,
        source,
    })?;
    Ok(AssembledSeries {
        volume,
        attributes,
        warnings,
    })
}

/// Refuses a volume of `bytes` (of 16-bit voxels) past [`MAX_VOLUME_BYTES`],
/// naming how many slices of `image_size` would fit.
fn fits(series: &str, bytes: f64, image_size: [usize; 2]) -> Result<(), SeriesError> {
    if bytes <= MAX_VOLUME_BYTES as f64 {
        return Ok(());
    }
    let [rows, columns] = image_size;
    let slice_bytes = (rows * columns * size_of::<i16>()).max(1) as u64;
    Err(SeriesError::TooLarge {
        series: series.to_owned(),
        // A saturating cast: an infinite span reads as u64::MAX MiB.
        needed_mib: (bytes / f64::from(1 << 20)) as u64,
        limit_mib: MAX_VOLUME_BYTES >> 20,
        max_slices: MAX_VOLUME_BYTES / slice_bytes,
        rows,
        columns,
    })
}

/// An empty buffer with room for `voxels` 16-bit voxels, or the error that
/// says there is no memory for them, rather than the abort of a failed
/// allocation (in the page, a dead tab).
fn reserve_voxels(series: &str, voxels: usize) -> Result<Vec<i16>, SeriesError> {
    let mut buffer = Vec::new();
    buffer
        .try_reserve_exact(voxels)
        .map_err(|_| SeriesError::OutOfMemory {
            series: series.to_owned(),
            needed_mib: (voxels as u64).saturating_mul(size_of::<i16>() as u64) >> 20,
        })?;
    Ok(buffer)
}

/// Linear interpolation along the normal onto `depth` slices `spacing` apart,
/// appended to `voxels` (empty, with room for them).
fn interpolate(
    slices: &[Slice],
    positions: &[f64],
    spacing: f64,
    depth: usize,
    mut voxels: Vec<i16>,
) -> Vec<i16> {
    let hu = |index: usize| slices[index].pixels.hu();
    let mut upper = 1;
    let (mut below, mut above) = (hu(0), hu(1));
    for k in 0..depth {
        let target = positions[0] + k as f64 * spacing;
        while upper < positions.len() - 1 && positions[upper] < target {
            upper += 1;
            below = std::mem::replace(&mut above, hu(upper));
        }
        let (p0, p1) = (positions[upper - 1], positions[upper]);
        let t = ((target - p0) / (p1 - p0)).clamp(0.0, 1.0) as f32;
        voxels.extend(below.iter().zip(&above).map(|(&x, &y)| {
            let (x, y) = (f32::from(x), f32::from(y));
            whole_hu(x + (y - x) * t)
        }));
    }
    voxels
}

/// Angle (degrees) between the slice normal and the line through the first
/// and last slice positions, when it is more than a tenth of a degree.
fn gantry_tilt_degrees(slices: &[Slice], normal: [f64; 3]) -> Option<f64> {
    let (first, last) = (slices.first()?.position?, slices.last()?.position?);
    let d: [f64; 3] = std::array::from_fn(|a| last[a] - first[a]);
    let length = dot(d, d).sqrt();
    if length == 0.0 {
        return None;
    }
    let angle = (dot(d, normal) / length)
        .clamp(-1.0, 1.0)
        .acos()
        .to_degrees();
    (angle > 0.1).then_some(angle)
}

fn series_name(summary: &SeriesSummary) -> String {
    match (&summary.series_number, summary.description.is_empty()) {
        (Some(n), false) => format!("{n} \"{}\"", summary.description),
        (Some(n), true) => n.to_string(),
        (None, false) => format!("\"{}\"", summary.description),
        (None, true) => summary.series_uid.clone(),
    }
}

fn normal_of(o: [f64; 6]) -> [f64; 3] {
    let (r, c) = ([o[0], o[1], o[2]], [o[3], o[4], o[5]]);
    let n = [
        r[1] * c[2] - r[2] * c[1],
        r[2] * c[0] - r[0] * c[2],
        r[0] * c[1] - r[1] * c[0],
    ];
    let length = dot(n, n).sqrt();
    if length > 0.0 {
        n.map(|v| v / length)
    } else {
        [0.0, 0.0, 1.0]
    }
}

fn plane_of(normal: [f64; 3]) -> &'static str {
    let largest = normal
        .iter()
        .map(|v| v.abs())
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((2, 1.0));
    match largest {
        (_, c) if c < 0.95 => "oblique",
        (0, _) => "sagittal",
        (1, _) => "coronal",
        _ => "axial",
    }
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

    use super::*;

    /// A volume no allocator can give (past `isize::MAX` bytes, then one a
    /// 64-bit address space cannot hold) is an error naming the series and
    /// the size, where `Vec::with_capacity` would abort the process.
    #[test]
    fn a_volume_no_memory_can_hold_is_an_error_not_an_abort() {
        for voxels in [usize::MAX / 2, 1 << 61] {
            let err = reserve_voxels("thin chest", voxels).unwrap_err();
            assert_eq!(
                err,
                SeriesError::OutOfMemory {
                    series: "thin chest".to_owned(),
                    needed_mib: (voxels as u64 * 2) >> 20,
                }
            );
            assert!(
                err.to_string()
                    .starts_with("series thin chest: no memory left for its")
            );
        }
        assert!(reserve_voxels("small", 512 * 512).unwrap().capacity() >= 512 * 512);
    }
}
