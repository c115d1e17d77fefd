//! Files `dsan predict` writes: maps on the CT's grid as NIfTI-1 (viewable
//! in any viewer, over the CT) and a PNG mosaic of axial slices with the
//! attention overlay inside the lungs and the lung outline.

use std::path::Path;

use anyhow::Context;
use dsan_ct::pipeline::Diagnosis;
use dsan_ct::volume::Volume;
use ndarray::Array3;
use nifti::{NiftiHeader, writer::WriterOptions};

/// Writes one byte per voxel of `volume`'s grid as a NIfTI-1 file with the
/// volume's geometry (sform, scanner RAS; our volumes are LPS).
pub fn write_nifti(path: &Path, volume: &Volume, data: &[u8]) -> anyhow::Result<()> {
    let [d, h, w] = volume.dims();
    let [dk, dj, di] = volume.spacing();
    let [u, v, n] = volume.direction();
    let o = volume.origin();
    // LPS -> RAS flips x and y.
    let flip = [-1.0, -1.0, 1.0];
    let row = |a: usize| -> [f32; 4] {
        [
            (flip[a] * u[a] * di) as f32,
            (flip[a] * v[a] * dj) as f32,
            (flip[a] * n[a] * dk) as f32,
            (flip[a] * o[a]) as f32,
        ]
    };
    let header = NiftiHeader {
        pixdim: [1.0, di as f32, dj as f32, dk as f32, 1.0, 1.0, 1.0, 1.0],
        sform_code: 1,
        qform_code: 0,
        srow_x: row(0),
        srow_y: row(1),
        srow_z: row(2),
        xyzt_units: 2,
        ..NiftiHeader::default()
    };
    // Slice-major [k, j, i] in memory; NIfTI wants axes (i, j, k).
    let array = Array3::from_shape_vec((d, h, w), data.to_vec())?.reversed_axes();
    WriterOptions::new(path)
        .reference_header(&header)
        .write_nifti(&array)
        .with_context(|| path.display().to_string())?;
    Ok(())
}

/// Slices shown in the mosaic.
const MOSAIC_SLICES: usize = 12;
/// Mosaic columns.
const MOSAIC_COLUMNS: usize = 4;

/// Writes a mosaic of axial slices through the lungs (lung window,
/// attention above 0.3 at 45% opacity inside the lungs grown by
/// `LUNG_REGION_MARGIN_MM`, as the page draws it; lung outline in cyan).
pub fn write_mosaic(path: &Path, volume: &Volume, diagnosis: &Diagnosis) -> anyhow::Result<()> {
    let [d, h, w] = volume.dims();
    let (first, last) = diagnosis
        .lung_mask
        .bounds()
        .map_or((0, d - 1), |[lo, hi]| (lo[0], hi[0]));
    let rows = MOSAIC_SLICES.div_ceil(MOSAIC_COLUMNS);
    let (width, height) = (w * MOSAIC_COLUMNS, h * rows);
    let mut image = vec![0u8; width * height * 4];
    for tile in 0..MOSAIC_SLICES {
        let k = first + (last - first) * (2 * tile + 1) / (2 * MOSAIC_SLICES);
        let Some(rgba) = diagnosis.axial_overlay(volume, k) else {
            continue;
        };
        let (tx, ty) = ((tile % MOSAIC_COLUMNS) * w, (tile / MOSAIC_COLUMNS) * h);
        for j in 0..h {
            let start = ((ty + j) * width + tx) * 4;
            image[start..start + w * 4].copy_from_slice(&rgba[j * w * 4..(j + 1) * w * 4]);
        }
    }
    let file = std::fs::File::create(path).with_context(|| path.display().to_string())?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width as u32, height as u32);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header()?.write_image_data(&image)?;
    Ok(())
}
