//! Turning a [`Volume`] into pixels: a window (level and width in HU), the
//! grayscale RGBA images of axial, coronal and sagittal planes, and the
//! attention overlay (limited to the lungs or the whole map), for the page's
//! viewer, its PNG report and `dsan predict`'s mosaic.

use crate::volume::Volume;

/// A display window in Hounsfield units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Centre (level), HU.
    pub center: f32,
    /// Width, HU.
    pub width: f32,
}

impl Window {
    /// Lung window: width 1500, level -600.
    pub const LUNG: Window = Window {
        center: -600.0,
        width: 1500.0,
    };
    /// Mediastinal window: width 400, level 40.
    pub const MEDIASTINUM: Window = Window {
        center: 40.0,
        width: 400.0,
    };
    /// Bone window: width 2500, level 480.
    pub const BONE: Window = Window {
        center: 480.0,
        width: 2500.0,
    };

    /// Grey level 0-255 of `hu`: linear inside the window, clamped outside.
    pub fn grey(&self, hu: f32) -> u8 {
        let low = self.center - self.width / 2.0;
        let t = ((hu - low) / self.width.max(1.0)).clamp(0.0, 1.0);
        (t * 255.0).round() as u8
    }
}

/// RGBA bytes (`columns x rows`, row-major) of axial slice `k` in `window`.
/// Returns `None` when `k` is outside the volume.
pub fn axial_rgba(volume: &Volume, k: usize, window: Window) -> Option<Vec<u8>> {
    let [depth, rows, columns] = volume.dims();
    if k >= depth {
        return None;
    }
    let plane = rows * columns;
    let slice = &volume.voxels()[k * plane..(k + 1) * plane];
    Some(
        slice
            .iter()
            .flat_map(|&hu| {
                let g = window.grey(f32::from(hu));
                [g, g, g, 255]
            })
            .collect(),
    )
}

/// A viewing plane through a volume (see `crate::volume` for the layout).
/// Coronal and sagittal images put the patient's head at the top; sagittal
/// images have anterior on the left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plane {
    /// Slices `k`: images of `columns x rows`.
    Axial,
    /// Rows `j`: images of `columns x slices`.
    Coronal,
    /// Columns `i`: images of `rows x slices`.
    Sagittal,
}

impl Plane {
    /// Number of images along the plane's normal.
    pub fn count(self, dims: [usize; 3]) -> usize {
        let [d, h, w] = dims;
        match self {
            Self::Axial => d,
            Self::Coronal => h,
            Self::Sagittal => w,
        }
    }

    /// Image size `[width, height]` in pixels.
    pub fn image_size(self, dims: [usize; 3]) -> [usize; 2] {
        let [d, h, w] = dims;
        match self {
            Self::Axial => [w, h],
            Self::Coronal => [w, d],
            Self::Sagittal => [h, d],
        }
    }

    /// Physical size of a pixel `[width, height]` in mm (for the aspect ratio).
    pub fn pixel_mm(self, spacing: [f64; 3]) -> [f64; 2] {
        let [dz, dy, dx] = spacing;
        match self {
            Self::Axial => [dx, dy],
            Self::Coronal => [dx, dz],
            Self::Sagittal => [dy, dz],
        }
    }

    /// The voxel `[k, j, i]` at pixel `(x, y)` of image `index`.
    pub fn voxel(self, dims: [usize; 3], index: usize, x: usize, y: usize) -> [usize; 3] {
        let top = dims[0].saturating_sub(1);
        match self {
            Self::Axial => [index, y, x],
            Self::Coronal => [top - y, index, x],
            Self::Sagittal => [top - y, x, index],
        }
    }
}

/// RGBA bytes (row-major, [`Plane::image_size`]) of image `index` of `plane`
/// in `window`; `None` when `index` is outside the volume.
pub fn plane_rgba(volume: &Volume, plane: Plane, index: usize, window: Window) -> Option<Vec<u8>> {
    let dims = volume.dims();
    if index >= plane.count(dims) {
        return None;
    }
    if plane == Plane::Axial {
        return axial_rgba(volume, index, window);
    }
    let [_, h, w] = dims;
    let [width, height] = plane.image_size(dims);
    let v = volume.voxels();
    let mut out = Vec::with_capacity(width * height * 4);
    for y in 0..height {
        for x in 0..width {
            let [k, j, i] = plane.voxel(dims, index, x, y);
            let g = window.grey(f32::from(v[(k * h + j) * w + i]));
            out.extend([g, g, g, 255]);
        }
    }
    Some(out)
}

/// Colour scale of the attention overlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Colormap {
    /// Dark red through orange to light yellow.
    #[default]
    Heat,
    /// Blue through cyan, green and yellow to red ("jet").
    Jet,
}

impl Colormap {
    /// The colour of an attention value (0-255).
    pub fn colour(self, value: u8) -> [u8; 3] {
        let t = f32::from(value) / 255.0;
        let channel = |x: f32| (x.clamp(0.0, 1.0) * 255.0).round() as u8;
        match self {
            Self::Heat => [
                channel(0.35 + 1.95 * t),
                channel(2.0 * t - 0.5),
                channel(3.0 * t - 2.0),
            ],
            Self::Jet => [
                channel(1.5 - (4.0 * t - 3.0).abs()),
                channel(1.5 - (4.0 * t - 2.0).abs()),
                channel(1.5 - (4.0 * t - 1.0).abs()),
            ],
        }
    }
}

/// How attention is drawn over the CT: pixels at or above `threshold`
/// (0-255) get the colormap's colour with `opacity` (0 to 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OverlayStyle {
    /// Colour scale.
    pub colormap: Colormap,
    /// Lowest attention drawn, 0-255.
    pub threshold: u8,
    /// Opacity of the colour, 0 to 1.
    pub opacity: f32,
}

impl Default for OverlayStyle {
    /// Heat colours over attention >= 0.3, at 45% opacity.
    fn default() -> Self {
        Self {
            colormap: Colormap::Heat,
            threshold: 77,
            opacity: 0.45,
        }
    }
}

/// Blends an attention map (`value / 255`, one byte per pixel) over RGBA
/// pixels in `style`; `outline` pixels (one byte per pixel, non-zero on the
/// lung mask's edge) are drawn in cyan.
pub fn blend_attention(
    rgba: &mut [u8],
    attention: &[u8],
    style: OverlayStyle,
    outline: Option<&[u8]>,
) {
    let opacity = style.opacity.clamp(0.0, 1.0);
    for (p, (pixel, &a)) in rgba.chunks_exact_mut(4).zip(attention).enumerate() {
        if a >= style.threshold && a > 0 {
            let colour = style.colormap.colour(a);
            for c in 0..3 {
                let mixed = f32::from(pixel[c]) * (1.0 - opacity) + f32::from(colour[c]) * opacity;
                pixel[c] = mixed.round() as u8;
            }
        }
        if outline.is_some_and(|o| o[p] != 0) {
            pixel[..3].copy_from_slice(&[0, 220, 255]);
        }
    }
}

/// `values` where `region` (one byte per value, non-zero inside) is, 0
/// elsewhere: an attention map limited to the lungs (see
/// [`crate::pipeline::Diagnosis::lung_region`]).
pub fn masked(values: &[u8], region: &[u8]) -> Vec<u8> {
    values
        .iter()
        .zip(region)
        .map(|(&v, &inside)| if inside != 0 { v } else { 0 })
        .collect()
}

/// Image `index` of `plane` from a byte volume of `dims` (a mask on the CT
/// grid), in [`Plane::image_size`] order; `None` when `index` is outside the
/// volume or `data` does not hold `dims`.
pub fn plane_bytes(data: &[u8], dims: [usize; 3], plane: Plane, index: usize) -> Option<Vec<u8>> {
    let [d, h, w] = dims;
    if data.len() != d * h * w {
        return None;
    }
    plane_values(dims, plane, index, |[k, j, i]| data[(k * h + j) * w + i])
}

/// Image `index` of `plane` through a volume of `dims`, each pixel the value
/// `at` gives for its voxel (an attention map read at the plane's voxels
/// only), in [`Plane::image_size`] order; `None` when `index` is outside.
pub fn plane_values(
    dims: [usize; 3],
    plane: Plane,
    index: usize,
    at: impl Fn([usize; 3]) -> u8,
) -> Option<Vec<u8>> {
    if index >= plane.count(dims) {
        return None;
    }
    let [width, height] = plane.image_size(dims);
    Some(
        (0..height)
            .flat_map(|y| (0..width).map(move |x| (x, y)))
            .map(|(x, y)| at(plane.voxel(dims, index, x, y)))
            .collect(),
    )
}

/// The edge of a `columns x rows` mask: inside pixels with a 4-neighbour outside.
pub fn mask_outline(mask: &[u8], rows: usize, columns: usize) -> Vec<u8> {
    let inside = |j: usize, i: usize| mask[j * columns + i] != 0;
    (0..rows * columns)
        .map(|p| {
            let (j, i) = (p / columns, p % columns);
            let edge = inside(j, i)
                && (j == 0
                    || i == 0
                    || j + 1 == rows
                    || i + 1 == columns
                    || !inside(j - 1, i)
                    || !inside(j + 1, i)
                    || !inside(j, i - 1)
                    || !inside(j, i + 1));
            u8::from(edge)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coronal_and_sagittal_images_have_the_head_on_top() {
        // 3 slices (k = 0 inferior) of 2 rows x 4 columns; HU = 100 k + 10 j + i.
        let dims = [3, 2, 4];
        let voxels = (0..24)
            .map(|x| (100 * (x / 8) + 10 * ((x / 4) % 2) + x % 4) as i16)
            .collect();
        let axial = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        let volume = Volume::new(voxels, dims, [5.0, 1.0, 0.5], [0.0; 3], axial).unwrap();
        let identity = Window {
            center: 127.5,
            width: 255.0,
        };
        let greys = |plane: Plane, index: usize| -> Vec<u8> {
            plane_rgba(&volume, plane, index, identity)
                .unwrap()
                .chunks(4)
                .map(|p| p[0])
                .collect()
        };
        // Coronal row j = 1: top row is the last (most superior) slice.
        assert_eq!(Plane::Coronal.image_size(dims), [4, 3]);
        assert_eq!(
            greys(Plane::Coronal, 1),
            [210, 211, 212, 213, 110, 111, 112, 113, 10, 11, 12, 13]
        );
        // Sagittal column i = 2: anterior (j = 0) on the left.
        assert_eq!(Plane::Sagittal.image_size(dims), [2, 3]);
        assert_eq!(greys(Plane::Sagittal, 2), [202, 212, 102, 112, 2, 12]);
        assert_eq!(Plane::Sagittal.pixel_mm(volume.spacing()), [1.0, 5.0]);
        assert_eq!(greys(Plane::Axial, 0)[..4], [0, 1, 2, 3]);
        assert!(plane_rgba(&volume, Plane::Coronal, 2, identity).is_none());
        assert_eq!(Plane::Coronal.voxel(dims, 1, 3, 0), [2, 1, 3]);
    }

    #[test]
    fn the_lung_window_maps_its_ends_and_clamps_outside() {
        let w = Window::LUNG;
        assert_eq!(w.grey(-1350.0), 0);
        assert_eq!(w.grey(150.0), 255);
        assert_eq!(w.grey(-600.0), 128);
        assert_eq!(w.grey(-3000.0), 0);
        assert_eq!(w.grey(3000.0), 255);
    }

    #[test]
    fn attention_is_blended_above_the_threshold_only() {
        let mut rgba = vec![100u8; 12];
        let attention = [0u8, 100, 255];
        let outline = [0u8, 0, 1];
        let style = OverlayStyle {
            colormap: Colormap::Heat,
            threshold: 50,
            opacity: 0.5,
        };
        blend_attention(&mut rgba, &attention, style, Some(&outline));
        assert_eq!(&rgba[..4], &[100, 100, 100, 100], "below the threshold");
        let hot = Colormap::Heat.colour(100);
        assert_eq!(rgba[4], ((100.0 + f32::from(hot[0])) / 2.0).round() as u8);
        assert_eq!(&rgba[8..11], &[0, 220, 255], "outline on top");
        let heat = |v| Colormap::Heat.colour(v);
        assert!(heat(255)[2] > heat(128)[2] && heat(0)[0] > 0);
        let jet = |v| Colormap::Jet.colour(v);
        assert!(
            jet(0)[2] > 100 && jet(0)[0] == 0,
            "jet starts blue: {:?}",
            jet(0)
        );
        assert!(
            jet(255)[0] > 100 && jet(255)[2] == 0,
            "jet ends red: {:?}",
            jet(255)
        );
        assert!(
            jet(128)[1] == 255,
            "jet is green in the middle: {:?}",
            jet(128)
        );
    }

    #[test]
    fn byte_planes_match_the_volume_planes() {
        let dims = [3, 4, 5];
        let data: Vec<u8> = (0..60).collect();
        let volume = Volume::new(
            data.iter().map(|&v| i16::from(v)).collect(),
            dims,
            [1.0; 3],
            [0.0; 3],
            [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        )
        .unwrap();
        let window = Window {
            center: 127.5,
            width: 255.0,
        };
        for plane in [Plane::Axial, Plane::Coronal, Plane::Sagittal] {
            for index in 0..plane.count(dims) {
                let bytes = plane_bytes(&data, dims, plane, index).unwrap();
                let rgba = plane_rgba(&volume, plane, index, window).unwrap();
                let grey: Vec<u8> = rgba.chunks_exact(4).map(|p| p[0]).collect();
                let expected: Vec<u8> = bytes.iter().map(|&v| window.grey(f32::from(v))).collect();
                assert_eq!(grey, expected, "{plane:?} {index}");
            }
            assert!(plane_bytes(&data, dims, plane, plane.count(dims)).is_none());
        }
        assert!(plane_bytes(&data[1..], dims, Plane::Axial, 0).is_none());
    }

    #[test]
    fn the_lung_limited_map_is_zero_outside_the_grown_lungs_and_unchanged_inside() {
        use crate::phantom::{PhantomConfig, chest_phantom};
        use crate::pipeline::LUNG_REGION_MARGIN_MM;
        let phantom = chest_phantom(&PhantomConfig {
            dims: [24, 96, 96],
            spacing: [8.0, 3.5, 3.5],
            noise_hu: 0.0,
            ..PhantomConfig::default()
        });
        let lungs = &phantom.lungs;
        let region = lungs.grown(LUNG_REGION_MARGIN_MM);
        // A map that is high everywhere, chest wall included, as a coarse CAM is.
        let map: Vec<u8> = (0..lungs.data().len())
            .map(|n| 1 + (n % 255) as u8)
            .collect();
        let shown = masked(&map, region.data());
        let (mut kept, mut cleared) = (0, 0);
        for (n, (&s, &m)) in shown.iter().zip(&map).enumerate() {
            if region.data()[n] != 0 {
                assert_eq!(s, m, "unchanged inside the region at {n}");
                kept += 1;
            } else {
                assert_eq!(s, 0, "zero outside the region at {n}");
                cleared += 1;
            }
        }
        assert!(
            kept > 0 && cleared > kept,
            "{kept} voxels kept, {cleared} cleared"
        );
        // The region is the lungs and a rim of the margin. On this grid the
        // voxels within 5 mm are the same slice's 3 x 3 neighbours (4.95 mm
        // diagonally; the next slice is 8 mm away, two columns 7 mm).
        let [d, h, w] = lungs.dims();
        for k in 0..d {
            for j in 0..h {
                for i in 0..w {
                    let near = (j.saturating_sub(1)..(j + 2).min(h))
                        .any(|y| (i.saturating_sub(1)..(i + 2).min(w)).any(|x| lungs.get(k, y, x)));
                    assert_eq!(region.get(k, j, i), near, "voxel {k} {j} {i}");
                }
            }
        }
        assert!(
            region.count() < lungs.count() * 3 / 2,
            "a rim, not the chest"
        );
    }

    #[test]
    fn the_outline_is_the_masks_edge() {
        let mask: Vec<u8> = (0..25)
            .map(|p| u8::from((1..4).contains(&(p / 5)) && (1..4).contains(&(p % 5))))
            .collect();
        let edge = mask_outline(&mask, 5, 5);
        assert_eq!(edge.iter().filter(|&&e| e != 0).count(), 8);
        assert_eq!(edge[12], 0, "the centre is inside, not edge");
    }

    #[test]
    fn axial_slices_are_read_from_their_plane() {
        let axes = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        let voxels = vec![-1350, 150, -600, -1350, 150, 150, 150, 150];
        let v = Volume::new(voxels, [2, 2, 2], [1.0; 3], [0.0; 3], axes).unwrap();
        let first = axial_rgba(&v, 0, Window::LUNG).unwrap();
        let greys: Vec<u8> = first.chunks(4).map(|p| p[0]).collect();
        assert_eq!(greys, [0, 255, 128, 0]);
        assert!(first.chunks(4).all(|p| p[3] == 255));
        assert_eq!(axial_rgba(&v, 2, Window::LUNG), None);
    }
}
