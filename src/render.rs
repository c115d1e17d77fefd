//! Turning a [`Volume`] into pixels: a window (level and width in HU) and the
//! grayscale RGBA image of an axial slice, for the page's viewer.

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
                let g = window.grey(hu);
                [g, g, g, 255]
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn axial_slices_are_read_from_their_plane() {
        let axes = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        let voxels = vec![-1350.0, 150.0, -600.0, -1350.0, 150.0, 150.0, 150.0, 150.0];
        let v = Volume::new(voxels, [2, 2, 2], [1.0; 3], [0.0; 3], axes).unwrap();
        let first = axial_rgba(&v, 0, Window::LUNG).unwrap();
        let greys: Vec<u8> = first.chunks(4).map(|p| p[0]).collect();
        assert_eq!(greys, [0, 255, 128, 0]);
        assert!(first.chunks(4).all(|p| p[3] == 255));
        assert_eq!(axial_rgba(&v, 2, Window::LUNG), None);
    }
}
