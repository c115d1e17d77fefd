//! Lung segmentation without a network: thresholds, connectivity and
//! morphology on a ~2 mm working grid, mapped back to the volume's grid.
//!
//! 1. Body: voxels not connected, within their slice, to the image border
//!    through air (so the air around the patient and the table is outside).
//! 2. Candidates: voxels below the lung threshold inside the body.
//! 3. Lungs: the largest 3D component, plus the largest component on the
//!    other side of the body's midline when it is big enough (two separate
//!    lungs); one component when the lungs touch or only one is aerated.
//! 4. Airways: the trachea and the extrapulmonary bronchi are followed from
//!    the top slice down while their cross-section stays small, and removed.
//! 5. Each lung (left and right of the midline separately, so the
//!    mediastinum between them is never bridged) gets its holes filled slice
//!    by slice, a closing with a ball, and its costal concavities filled
//!    (see `hull`): vessels, dense consolidation and lesions against the
//!    chest wall, which a plain threshold drops, end up inside the mask.

use crate::volume::Volume;

use super::PreprocessError;
use super::hull::{ConcavityRules, fill_costal_concavities};
use super::mask::Mask;
use super::morphology::{
    border_connected_2d, close_ball, fill_holes_2d, label_components, region_2d,
};
use super::resample::{downsample_mean, upsample_nearest};

/// Every constant of the lung segmentation.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LungMaskConfig {
    /// Spacing the segmentation works at, mm (each axis is block-averaged by
    /// the whole factor closest to this; finer scans are not refined).
    pub working_spacing_mm: f64,
    /// Voxels at or above this are tissue; air below it that touches the
    /// image border is outside the body.
    pub body_threshold_hu: f32,
    /// Voxels inside the body below this are lung candidates (aerated lung
    /// is about -850 HU; ground glass -700 to -300 is partly recovered by the
    /// closing).
    pub lung_threshold_hu: f32,
    /// The largest candidate component must hold at least this many mL.
    pub min_lung_ml: f64,
    /// A second lung is kept when it holds at least this share of the first.
    pub second_lung_min_fraction: f64,
    /// Airway cross-sections up to this area (mm²) are followed and removed.
    pub airway_max_area_mm2: f64,
    /// Airway seeds must lie this close to the body's midline, as a share of
    /// the body's width.
    pub airway_midline_band: f64,
    /// Radius of the closing ball, mm: concavities of the lung surface
    /// narrower than about twice this are filled.
    pub closing_radius_mm: f64,
    /// Per slice, a part of a lung's convex hull the lung does not fill (a
    /// lesion against the chest wall) is added when the direction from the
    /// lung's centre to it points towards the midline by at most this cosine
    /// (so the hilum stays out), for concavities behind the lung's centre ...
    pub concavity_max_medial: f64,
    /// ... and by at most this cosine in front of it (so the heart, anterior
    /// and medial, stays out) ...
    pub concavity_max_medial_anterior: f64,
    /// ... and its area is at most this share of the lung's area in the slice
    /// (so the liver's dome under a crescent-shaped lung base stays out).
    pub concavity_max_area_fraction: f64,
    /// An accepted concavity grows up to where the lung reaches within this
    /// distance along the slice axis, mm (about the largest lesion's half height).
    pub concavity_envelope_mm: f64,
    /// Only concavities of at least this area (mm²) grow into the envelope;
    /// smaller ones are the outline's pixel steps.
    pub concavity_min_grow_mm2: f64,
    /// Fewest slices a volume may have.
    pub min_slices: usize,
    /// Smallest physical extent along every axis, mm.
    pub min_extent_mm: f64,
}

impl Default for LungMaskConfig {
    fn default() -> Self {
        Self {
            working_spacing_mm: 2.0,
            body_threshold_hu: -500.0,
            lung_threshold_hu: -400.0,
            min_lung_ml: 50.0,
            second_lung_min_fraction: 0.02,
            airway_max_area_mm2: 700.0,
            airway_midline_band: 0.15,
            closing_radius_mm: 20.0,
            concavity_max_medial: 0.5,
            concavity_max_medial_anterior: 0.2,
            concavity_max_area_fraction: 0.3,
            concavity_envelope_mm: 40.0,
            concavity_min_grow_mm2: 60.0,
            min_slices: 5,
            min_extent_mm: 50.0,
        }
    }
}

/// The lungs found in a volume.
#[derive(Debug, Clone, PartialEq)]
pub struct LungSegmentation {
    /// The lung mask on the volume's grid.
    pub mask: Mask,
    /// Lung volume, mL.
    pub volume_ml: f64,
    /// Number of lung components kept (2 for separate lungs, 1 when they
    /// touch or only one is aerated).
    pub components: usize,
    /// Volume of the airways removed, mL.
    pub airways_ml: f64,
    /// The mask on the working grid it was made on.
    working: Mask,
    /// Voxels of the volume per working voxel along each axis.
    factors: [usize; 3],
}

impl LungSegmentation {
    /// The lungs grown by `margin_mm`, on the volume's grid: grown on the
    /// ~2 mm working grid the mask was made on (a distance transform over a
    /// grid 10-30 times smaller than the CT's), then mapped back to the CT as
    /// the mask was. It holds the mask, and it lies within one working voxel
    /// of the mask grown on the CT's own grid.
    pub fn grown(&self, margin_mm: f64) -> Mask {
        let grown = self.working.grown(margin_mm);
        let dims = self.mask.dims();
        Mask::from_data(
            dims,
            self.mask.spacing(),
            upsample_nearest(grown.data(), grown.dims(), self.factors, dims),
        )
    }
}

/// The working grid: block-averaged HU and its geometry.
struct Working {
    hu: Vec<f32>,
    dims: [usize; 3],
    spacing: [f64; 3],
}

impl Working {
    fn voxel_ml(&self) -> f64 {
        self.spacing.iter().product::<f64>() / 1000.0
    }
}

/// Segments the lungs of `volume`.
pub fn segment_lungs(
    volume: &Volume,
    config: &LungMaskConfig,
) -> Result<LungSegmentation, PreprocessError> {
    check_size(volume, config)?;
    let factors: [usize; 3] = std::array::from_fn(|a| {
        ((config.working_spacing_mm / volume.spacing()[a]).round() as usize).max(1)
    });
    let (hu, dims) = downsample_mean(volume, factors);
    let spacing = std::array::from_fn(|a| volume.spacing()[a] * factors[a] as f64);
    let work = Working { hu, dims, spacing };

    let air: Vec<u8> = work
        .hu
        .iter()
        .map(|&v| u8::from(v < config.body_threshold_hu))
        .collect();
    let outside = border_connected_2d(&air, dims);
    let midline = body_midline(&work, &outside, config)?;
    let candidates: Vec<u8> = work
        .hu
        .iter()
        .zip(&outside)
        .map(|(&v, &o)| u8::from(v < config.lung_threshold_hu && o == 0))
        .collect();
    let mut lungs = pick_lungs(&work, &candidates, midline.column, config)?;
    let airways = remove_airways(&work, &mut lungs, volume.direction()[2], &midline, config);
    let components = count_lungs(&lungs, dims, config.second_lung_min_fraction);
    for side in [Side::Right, Side::Left] {
        close_side(
            &work,
            &mut lungs,
            midline.column,
            side,
            volume.direction()[1],
            config,
        );
    }
    for (v, o) in lungs.iter_mut().zip(&outside) {
        *v &= u8::from(*o == 0);
    }
    let mask = Mask::from_data(
        volume.dims(),
        volume.spacing(),
        upsample_nearest(&lungs, dims, factors, volume.dims()),
    );
    Ok(LungSegmentation {
        volume_ml: mask.volume_ml(),
        mask,
        components,
        airways_ml: airways as f64 * work.voxel_ml(),
        working: Mask::from_data(dims, work.spacing, lungs),
        factors,
    })
}

fn check_size(volume: &Volume, config: &LungMaskConfig) -> Result<(), PreprocessError> {
    let dims = volume.dims();
    let extent_mm: [f64; 3] = std::array::from_fn(|a| dims[a] as f64 * volume.spacing()[a]);
    if dims[0] < config.min_slices || extent_mm.iter().any(|&e| e < config.min_extent_mm) {
        return Err(PreprocessError::TooSmall {
            dims,
            extent_mm,
            min_slices: config.min_slices,
            min_extent_mm: config.min_extent_mm,
        });
    }
    Ok(())
}

/// The body's midline column and width (working grid columns).
struct Midline {
    column: f64,
    width: f64,
}

fn body_midline(
    work: &Working,
    outside: &[u8],
    config: &LungMaskConfig,
) -> Result<Midline, PreprocessError> {
    let w = work.dims[2];
    let (mut sum, mut count) = (0.0, 0usize);
    let (mut lo, mut hi) = (usize::MAX, 0);
    for (x, (&v, &o)) in work.hu.iter().zip(outside).enumerate() {
        if o == 0 && v >= config.body_threshold_hu {
            let i = x % w;
            sum += i as f64;
            count += 1;
            lo = lo.min(i);
            hi = hi.max(i);
        }
    }
    if count == 0 {
        return Err(PreprocessError::NoBody {
            threshold_hu: config.body_threshold_hu,
        });
    }
    Ok(Midline {
        column: sum / count as f64,
        width: (hi - lo + 1) as f64,
    })
}

/// Number of components holding at least `min_fraction` of the largest one.
fn count_lungs(lungs: &[u8], dims: [usize; 3], min_fraction: f64) -> usize {
    let (_, sizes) = label_components(lungs, dims);
    let largest = sizes.iter().skip(1).copied().max().unwrap_or(0);
    sizes
        .iter()
        .skip(1)
        .filter(|&&s| s > 0 && s as f64 >= min_fraction * largest as f64)
        .count()
}

/// Keeps the lung components of `candidates`.
fn pick_lungs(
    work: &Working,
    candidates: &[u8],
    midline: f64,
    config: &LungMaskConfig,
) -> Result<Vec<u8>, PreprocessError> {
    let w = work.dims[2];
    let (labels, sizes) = label_components(candidates, work.dims);
    let mut column_sums = vec![0.0f64; sizes.len()];
    for (x, &l) in labels.iter().enumerate() {
        column_sums[l as usize] += (x % w) as f64;
    }
    let side = |l: usize| (column_sums[l] / sizes[l] as f64 - midline).signum();
    let first =
        (1..sizes.len())
            .max_by_key(|&l| sizes[l])
            .ok_or_else(|| PreprocessError::NoLungs {
                reason: format!(
                    "no voxel inside the body is below {} HU",
                    config.lung_threshold_hu
                ),
            })?;
    let first_ml = sizes[first] as f64 * work.voxel_ml();
    if first_ml < config.min_lung_ml {
        return Err(PreprocessError::NoLungs {
            reason: format!(
                "the largest air region inside the body holds {first_ml:.1} mL, less than {} mL",
                config.min_lung_ml
            ),
        });
    }
    let second = (1..sizes.len())
        .filter(|&l| l != first && side(l) != side(first))
        .max_by_key(|&l| sizes[l])
        .filter(|&l| sizes[l] as f64 >= config.second_lung_min_fraction * sizes[first] as f64);
    let keep: Vec<u32> = std::iter::once(first)
        .chain(second)
        .map(|l| l as u32)
        .collect();
    Ok(labels.iter().map(|l| u8::from(keep.contains(l))).collect())
}

/// Follows the trachea and the bronchi outside the lungs from the top slice
/// down and removes them; returns the number of working voxels removed.
fn remove_airways(
    work: &Working,
    lungs: &mut [u8],
    slice_normal: [f64; 3],
    midline: &Midline,
    config: &LungMaskConfig,
) -> usize {
    let [d, h, w] = work.dims;
    // DICOM's patient z axis points superior; without an axial-ish slice
    // normal there is no top slice to start from.
    let slices: Vec<usize> = if slice_normal[2] > 0.5 {
        (0..d).rev().collect()
    } else if slice_normal[2] < -0.5 {
        (0..d).collect()
    } else {
        return 0;
    };
    let pixel_mm2 = work.spacing[1] * work.spacing[2];
    let max_area = (config.airway_max_area_mm2 / pixel_mm2).ceil() as usize;
    let band = config.airway_midline_band * midline.width;
    let Some(top) = slices
        .iter()
        .position(|&k| lungs[k * h * w..(k + 1) * h * w].contains(&1))
    else {
        return 0;
    };
    let mut removed = 0;
    let mut visited = vec![false; h * w];
    let mut tracked: Vec<usize> = Vec::new();
    for (step, &k) in slices[top..].iter().enumerate() {
        let slice = &mut lungs[k * h * w..(k + 1) * h * w];
        visited.fill(false);
        let seeds: Vec<usize> = if step == 0 {
            (0..h * w).filter(|&p| slice[p] == 1).collect()
        } else {
            tracked.iter().copied().filter(|&p| slice[p] == 1).collect()
        };
        tracked.clear();
        for seed in seeds {
            if visited[seed] {
                continue;
            }
            let region = region_2d(h, w, &[seed], &mut visited, |q| slice[q] == 1);
            let centre = region.iter().map(|&p| (p % w) as f64).sum::<f64>() / region.len() as f64;
            let airway =
                region.len() <= max_area && (step > 0 || (centre - midline.column).abs() <= band);
            if airway {
                for &p in &region {
                    slice[p] = 0;
                }
                removed += region.len();
                tracked.extend(region);
            }
        }
        if tracked.is_empty() {
            break;
        }
    }
    removed
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Right,
    Left,
}

/// For every voxel, whether the mask holds it in any slice within `reach`
/// slices (a running count along the slice axis).
fn slice_window_union(mask: &[u8], dims: [usize; 3], reach: usize) -> Vec<u8> {
    let [d, h, w] = dims;
    let plane = h * w;
    let mut counts = vec![0u32; plane];
    let mut out = vec![0u8; mask.len()];
    for k in 0..d.min(reach) {
        for (c, &m) in counts.iter_mut().zip(&mask[k * plane..(k + 1) * plane]) {
            *c += u32::from(m);
        }
    }
    for k in 0..d {
        if k + reach < d {
            let entering = &mask[(k + reach) * plane..(k + reach + 1) * plane];
            for (c, &m) in counts.iter_mut().zip(entering) {
                *c += u32::from(m);
            }
        }
        if k > reach {
            let leaving = &mask[(k - reach - 1) * plane..(k - reach) * plane];
            for (c, &m) in counts.iter_mut().zip(leaving) {
                *c -= u32::from(m);
            }
        }
        for (o, &c) in out[k * plane..(k + 1) * plane].iter_mut().zip(&counts) {
            *o = u8::from(c > 0);
        }
    }
    out
}

/// Fills holes and closes the lung on one side of the midline, in a box
/// around it padded by the closing radius. Where the box runs past the grid
/// (lungs cut by the scan's field of view) the edge voxels are repeated, so
/// the closing neither grows nor shrinks the lungs there.
fn close_side(
    work: &Working,
    lungs: &mut [u8],
    midline: f64,
    side: Side,
    row_direction: [f64; 3],
    config: &LungMaskConfig,
) {
    let radius_mm = config.closing_radius_mm;
    let [_, h, w] = work.dims;
    let on_side = |i: usize| ((i as f64) < midline) == (side == Side::Right);
    let mut lo = [usize::MAX; 3];
    let mut hi = [0usize; 3];
    for (x, _) in lungs
        .iter()
        .enumerate()
        .filter(|&(x, &v)| v == 1 && on_side(x % w))
    {
        let p = [x / (h * w), (x / w) % h, x % w];
        for a in 0..3 {
            lo[a] = lo[a].min(p[a]);
            hi[a] = hi[a].max(p[a]);
        }
    }
    if lo[0] == usize::MAX {
        return;
    }
    let pad: [isize; 3] =
        std::array::from_fn(|a| (radius_mm / work.spacing[a]).ceil() as isize + 1);
    let lo: [isize; 3] = std::array::from_fn(|a| lo[a] as isize - pad[a]);
    let size: [usize; 3] =
        std::array::from_fn(|a| hi[a] - (lo[a] + pad[a]) as usize + 1 + 2 * pad[a] as usize);
    let grid_index = |p: [isize; 3]| -> usize {
        let c: [usize; 3] =
            std::array::from_fn(|a| p[a].clamp(0, work.dims[a] as isize - 1) as usize);
        (c[0] * h + c[1]) * w + c[2]
    };
    let inside_grid = |p: [isize; 3]| (0..3).all(|a| p[a] >= 0 && p[a] < work.dims[a] as isize);
    let positions = || {
        (0..size[0]).flat_map(move |k| {
            (0..size[1]).flat_map(move |j| {
                (0..size[2])
                    .map(move |i| [lo[0] + k as isize, lo[1] + j as isize, lo[2] + i as isize])
            })
        })
    };
    let mut boxed: Vec<u8> = positions()
        .map(|p| {
            let x = grid_index(p);
            u8::from(lungs[x] == 1 && on_side(x % w))
        })
        .collect();
    fill_holes_2d(&mut boxed, size);
    let mut closed = close_ball(&boxed, size, work.spacing, radius_mm);
    fill_holes_2d(&mut closed, size);
    let rules = ConcavityRules {
        spacing: [work.spacing[1], work.spacing[2]],
        medial: if side == Side::Right { 1.0 } else { -1.0 },
        posterior: if row_direction[1] >= 0.0 { 1.0 } else { -1.0 },
        max_medial_component: config.concavity_max_medial,
        max_medial_component_anterior: config.concavity_max_medial_anterior,
        max_area_fraction: config.concavity_max_area_fraction,
        min_grow_pixels: (config.concavity_min_grow_mm2 / (work.spacing[1] * work.spacing[2]))
            .ceil() as usize,
    };
    let reach = (config.concavity_envelope_mm / work.spacing[0]).round() as usize;
    let envelope = slice_window_union(&closed, size, reach);
    let plane = size[1] * size[2];
    for (slice, envelope) in closed.chunks_mut(plane).zip(envelope.chunks(plane)) {
        fill_costal_concavities(slice, envelope, size[1], size[2], &rules);
    }
    for (p, v) in positions().zip(closed) {
        if inside_grid(p) {
            lungs[grid_index(p)] |= v;
        }
    }
}
