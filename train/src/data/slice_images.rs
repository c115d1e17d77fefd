//! CTs stored as folders of slice images (PNG or JPEG, one file per axial
//! slice), as CC-CCII distributes its scans.
//!
//! Such images hold the grey levels of a display window, not Hounsfield
//! units, and no geometry. Grey level `g` (of `g_max`, 255 for 8-bit files)
//! maps back to `center - width / 2 + g / g_max * width` HU: exact to one grey
//! step (`width / 255` HU for 8-bit files) inside the window, while values
//! outside it were clipped when the images were made. The spacing and which
//! end of the body the first file shows come from [`SliceImages`], not the
//! files. Files are sorted by the number in their names (`2.png` before
//! `10.png`); rows run anterior to posterior and columns patient right to
//! left, as in a radiological display.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, bail, ensure};
use dsan_ct::volume::{Volume, whole_hu};
use serde::Serialize;

/// How a folder of slice images becomes a CT volume (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, clap::Args)]
pub struct SliceImages {
    /// Display window the slice images (PNG/JPEG, e.g. CC-CCII) were made
    /// with, "CENTER,WIDTH" in HU: their grey levels are mapped back to HU
    /// through it.
    #[arg(
        long = "image-window",
        default_value = "-600,1500",
        allow_hyphen_values = true
    )]
    pub window: DisplayWindow,
    /// Spacing of slice images, "SLICE,ROW,COLUMN" in mm (the images carry
    /// none).
    #[arg(long = "image-spacing", default_value = "1,0.7,0.7")]
    pub spacing: Spacing,
    /// Which end of the body the first slice image (lowest number) shows.
    #[arg(long = "image-first", value_enum, default_value_t = FirstSlice::Head)]
    pub first: FirstSlice,
}

/// A display window in HU.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DisplayWindow {
    /// Centre (level), HU.
    pub center: f64,
    /// Width, HU.
    pub width: f64,
}

/// A spacing `[slice, row, column]` in mm.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spacing(pub [f64; 3]);

/// The end of the body the first slice image shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
pub enum FirstSlice {
    /// The most superior slice comes first (images numbered in scan order of
    /// a head-first acquisition).
    Head,
    /// The most inferior slice comes first.
    Feet,
}

/// Numbers separated by commas, each finite.
fn numbers(text: &str, count: usize) -> Result<Vec<f64>, String> {
    let values = text
        .split(',')
        .map(|part| part.trim().parse::<f64>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{text:?}: {e}"))?;
    if values.len() != count || values.iter().any(|v| !v.is_finite()) {
        return Err(format!(
            "{text:?}: expected {count} numbers separated by commas"
        ));
    }
    Ok(values)
}

impl FromStr for DisplayWindow {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let values = numbers(text, 2)?;
        if values[1] <= 0.0 {
            return Err(format!("{text:?}: the width must be positive"));
        }
        Ok(Self {
            center: values[0],
            width: values[1],
        })
    }
}

impl FromStr for Spacing {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let values = numbers(text, 3)?;
        if values.iter().any(|&v| v <= 0.0) {
            return Err(format!("{text:?}: spacings must be positive"));
        }
        Ok(Self([values[0], values[1], values[2]]))
    }
}

/// Whether `path` names a slice image (by its extension).
pub fn is_slice_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["png", "jpg", "jpeg"].contains(&e.to_ascii_lowercase().as_str()))
}

/// The sort key of a slice image: the last run of digits in its file stem,
/// then its name.
fn slice_number(path: &Path) -> (Option<u64>, String) {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let digits: String = stem
        .rsplit(|c: char| !c.is_ascii_digit())
        .find(|run| !run.is_empty())
        .unwrap_or_default()
        .to_owned();
    (digits.parse().ok(), path.display().to_string())
}

/// Reads the slice images `files` (any order) into a volume in HU with the
/// geometry of `options`; every image must have the same size.
pub fn read_slice_images(files: &[PathBuf], options: &SliceImages) -> anyhow::Result<Volume> {
    ensure!(!files.is_empty(), "no slice images");
    let mut ordered: Vec<&PathBuf> = files.iter().collect();
    ordered.sort_by_cached_key(|path| slice_number(path));
    if options.first == FirstSlice::Head {
        ordered.reverse();
    }
    let DisplayWindow { center, width } = options.window;
    let low = center - width / 2.0;
    let mut size = None;
    let mut voxels = Vec::new();
    for path in &ordered {
        let image = image::open(path)
            .with_context(|| format!("{}: not a readable PNG or JPEG image", path.display()))?
            .to_luma32f();
        let dims = image.dimensions();
        match size {
            None => size = Some(dims),
            Some(first) if first != dims => bail!(
                "{}: {}x{} pixels, but the first slice image has {}x{}",
                path.display(),
                dims.0,
                dims.1,
                first.0,
                first.1
            ),
            Some(_) => {}
        }
        voxels.extend(
            image
                .into_raw()
                .into_iter()
                .map(|g| whole_hu((low + f64::from(g) * width) as f32)),
        );
    }
    let (columns, rows) = size.unwrap_or_default();
    let identity = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    Ok(Volume::new(
        voxels,
        [ordered.len(), rows as usize, columns as usize],
        options.spacing.0,
        [0.0; 3],
        identity,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes an 8-bit grey PNG of `width` columns.
    fn write_png(path: &Path, width: u32, grey: &[u8]) {
        let file = std::fs::File::create(path).unwrap();
        let height = grey.len() as u32 / width;
        let mut encoder = png::Encoder::new(file, width, height);
        encoder.set_color(png::ColorType::Grayscale);
        encoder
            .write_header()
            .unwrap()
            .write_image_data(grey)
            .unwrap();
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dsan-slices-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn options(first: FirstSlice) -> SliceImages {
        SliceImages {
            window: DisplayWindow {
                center: -600.0,
                width: 1500.0,
            },
            spacing: Spacing([5.0, 0.8, 0.7]),
            first,
        }
    }

    #[test]
    fn grey_levels_become_hounsfield_units_through_the_window_in_body_order() {
        let dir = scratch("order");
        // Three slices of 3 columns x 2 rows; slice n holds grey levels n, n + 100, ...
        let mut files = Vec::new();
        for n in 0..3u8 {
            let path = dir.join(format!("img{}.png", n + 1));
            write_png(&path, 3, &[n, n + 100, n + 200, 255, 0, 50]);
            files.push(path);
        }
        let hu = |g: f64| -1350.0 + g / 255.0 * 1500.0;
        for first in [FirstSlice::Head, FirstSlice::Feet] {
            let volume = read_slice_images(&files, &options(first)).unwrap();
            assert_eq!(volume.dims(), [3, 2, 3]);
            assert_eq!(volume.spacing(), [5.0, 0.8, 0.7]);
            for k in 0..3 {
                // The first image is the most superior slice (highest k) when it shows the head.
                let n = match first {
                    FirstSlice::Head => 2 - k,
                    FirstSlice::Feet => k,
                } as f64;
                let expected = [n, n + 100.0, n + 200.0, 255.0, 0.0, 50.0];
                for (index, g) in expected.into_iter().enumerate() {
                    let got = f64::from(volume.get(k, index / 3, index % 3).unwrap());
                    // Stored as whole HU.
                    assert!(
                        (got - hu(g)).abs() <= 0.5,
                        "{first:?} k {k}: {got} vs {}",
                        hu(g)
                    );
                }
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_slice_of_another_size_or_a_damaged_image_is_named() {
        let dir = scratch("bad");
        let first = dir.join("0001.png");
        let other = dir.join("0002.png");
        write_png(&first, 3, &[0; 6]);
        write_png(&other, 2, &[0; 6]);
        let error = read_slice_images(&[first.clone(), other.clone()], &options(FirstSlice::Feet))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("0002.png") && error.contains("2x3"),
            "{error}"
        );
        let bytes = std::fs::read(&first).unwrap();
        std::fs::write(&other, &bytes[..bytes.len() / 2]).unwrap();
        let error = read_slice_images(&[first, other], &options(FirstSlice::Feet)).unwrap_err();
        assert!(format!("{error:#}").contains("0002.png"), "{error:#}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn slice_images_sort_by_the_number_in_their_names() {
        let mut names: Vec<PathBuf> = ["slice_10.png", "slice_2.png", "slice_1.png", "0003.jpg"]
            .iter()
            .map(PathBuf::from)
            .collect();
        names.sort_by_cached_key(|p| slice_number(p));
        let sorted: Vec<String> = names.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            sorted,
            ["slice_1.png", "slice_2.png", "0003.jpg", "slice_10.png"]
        );
    }

    #[test]
    fn window_and_spacing_options_are_checked() {
        assert_eq!(
            "-600,1500".parse::<DisplayWindow>(),
            Ok(DisplayWindow {
                center: -600.0,
                width: 1500.0
            })
        );
        assert!("-600".parse::<DisplayWindow>().is_err());
        assert!("40,0".parse::<DisplayWindow>().is_err());
        assert_eq!(
            "5, 0.7,0.7".parse::<Spacing>(),
            Ok(Spacing([5.0, 0.7, 0.7]))
        );
        assert!("1,0.7".parse::<Spacing>().is_err());
        assert!("1,-0.7,0.7".parse::<Spacing>().is_err());
        assert!("1,nan,0.7".parse::<Spacing>().is_err());
        assert!(is_slice_image(Path::new("a/0001.PNG")));
        assert!(is_slice_image(Path::new("a/0001.jpeg")));
        assert!(!is_slice_image(Path::new("a/0001.dcm")));
    }
}
