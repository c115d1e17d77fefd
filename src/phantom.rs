//! Synthetic chest CT phantoms with known lungs and lesions: the ground truth
//! for the lung segmentation and the mapping tests, and the anatomy the
//! training data generator builds on.
//!
//! Coordinates are millimetres from the volume's centre in DICOM's LPS
//! patient axes (x to the patient's left, y posterior, z superior); the
//! volume is axial, columns along x, rows along y, slices along z.

use crate::preprocess::Mask;
use crate::volume::{Volume, whole_hu};

/// Hounsfield units of the phantom's materials.
pub mod hu {
    /// Air outside the body and in the airways.
    pub const AIR: f32 = -1000.0;
    /// Aerated lung parenchyma.
    pub const LUNG: f32 = -850.0;
    /// Subcutaneous fat.
    pub const FAT: f32 = -100.0;
    /// Muscle, mediastinum, heart and vessels.
    pub const SOFT_TISSUE: f32 = 40.0;
    /// Ribs and spine.
    pub const BONE: f32 = 600.0;
    /// The examination table.
    pub const TABLE: f32 = 150.0;
    /// Ground-glass opacity.
    pub const GROUND_GLASS: f32 = -550.0;
    /// Consolidation.
    pub const CONSOLIDATION: f32 = 30.0;
}

/// An ellipsoidal lesion; only its part inside the lungs is drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct Lesion {
    /// Centre, mm from the volume centre (LPS).
    pub centre_mm: [f64; 3],
    /// Semi-axes along x, y, z, mm.
    pub radii_mm: [f64; 3],
    /// Density of the lesion.
    pub hu: f32,
    /// Texture inside the lesion.
    pub pattern: LesionPattern,
}

/// The texture of a lesion (all of it counts as infection).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LesionPattern {
    /// The lesion's density throughout.
    Solid,
    /// Crazy paving: ground glass crossed by thickened interlobular septa, a
    /// reticular grid of 1 mm lines `SEPTUM_HU` denser, `period_mm` apart in-plane.
    CrazyPaving {
        /// Distance between septa, mm.
        period_mm: f64,
    },
    /// Air bronchograms: consolidation with air-filled bronchi, three tubes of
    /// 1.5 mm radius running from the hilum's direction through the lesion.
    AirBronchogram,
}

/// How much denser than the ground glass the septa of crazy paving are, HU.
const SEPTUM_HU: f32 = 350.0;

/// Density of the air inside bronchi within a consolidation, HU.
const BRONCHUS_HU: f32 = -900.0;

/// How to draw a phantom.
#[derive(Debug, Clone, PartialEq)]
pub struct PhantomConfig {
    /// `[slices, rows, columns]`.
    pub dims: [usize; 3],
    /// Spacing `[slice, row, column]`, mm.
    pub spacing: [f64; 3],
    /// Standard deviation of the Gaussian noise, HU.
    pub noise_hu: f32,
    /// Seed of the noise.
    pub seed: u64,
    /// Lesions inside the lungs.
    pub lesions: Vec<Lesion>,
    /// Scales the lungs' size (1 = adult, about 4.5 L).
    pub lung_scale: f64,
    /// Reconstruction blur: standard deviation of a Gaussian applied to the
    /// noiseless image, mm (0 = none).
    pub blur_mm: f64,
}

impl Default for PhantomConfig {
    /// A 300 mm axial scan at 3 mm x 1.4 mm, no lesion, no blur.
    fn default() -> Self {
        Self {
            dims: [100, 256, 256],
            spacing: [3.0, 1.4, 1.4],
            noise_hu: 15.0,
            seed: 1,
            lesions: Vec::new(),
            lung_scale: 1.0,
            blur_mm: 0.0,
        }
    }
}

/// A drawn phantom with its ground truth.
#[derive(Debug, Clone)]
pub struct Phantom {
    /// The CT.
    pub volume: Volume,
    /// True lungs (parenchyma, intrapulmonary vessels and airways, lesions).
    pub lungs: Mask,
    /// True infection (the lesions' parts inside the lungs).
    pub infection: Mask,
}

/// An axis-aligned ellipsoid.
struct Ellipsoid {
    centre: [f64; 3],
    radii: [f64; 3],
}

impl Ellipsoid {
    fn contains(&self, p: [f64; 3]) -> bool {
        (0..3)
            .map(|a| ((p[a] - self.centre[a]) / self.radii[a]).powi(2))
            .sum::<f64>()
            <= 1.0
    }
}

/// A tube of radius `radius` around the segment `a`-`b`.
struct Tube {
    a: [f64; 3],
    b: [f64; 3],
    radius: f64,
}

impl Tube {
    fn contains(&self, p: [f64; 3]) -> bool {
        let ab: [f64; 3] = std::array::from_fn(|i| self.b[i] - self.a[i]);
        let ap: [f64; 3] = std::array::from_fn(|i| p[i] - self.a[i]);
        let length2: f64 = ab.iter().map(|v| v * v).sum();
        let t = (ap.iter().zip(&ab).map(|(x, y)| x * y).sum::<f64>() / length2).clamp(0.0, 1.0);
        let d2: f64 = (0..3).map(|i| (ap[i] - t * ab[i]).powi(2)).sum();
        d2 <= self.radius * self.radius
    }
}

/// One lung of a phantom: an axis-aligned ellipsoid (the heart, where it
/// overlaps, is not lung).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LungShape {
    /// Centre, mm from the volume centre (LPS).
    pub centre_mm: [f64; 3],
    /// Semi-axes along x, y, z, mm.
    pub radii_mm: [f64; 3],
}

/// The right lung (x < 0) and the left lung of a phantom drawn with
/// `lung_scale`, as [`chest_phantom`] draws them.
pub fn lung_shapes(lung_scale: f64) -> [LungShape; 2] {
    let lung = |x: f64, width: f64| LungShape {
        centre_mm: [x * lung_scale, 0.0, 10.0],
        radii_mm: [width * lung_scale, 80.0 * lung_scale, 110.0 * lung_scale],
    };
    [lung(-70.0, 55.0), lung(70.0, 50.0)]
}

/// Whether `p` (mm, LPS) is lung in a phantom drawn with `lung_scale`:
/// inside a lung's ellipsoid and outside the heart.
pub fn in_lungs(lung_scale: f64, p: [f64; 3]) -> bool {
    Anatomy::new(lung_scale).in_lungs(p)
}

/// The phantom's fixed anatomy.
struct Anatomy {
    lungs: [Ellipsoid; 2],
    heart: Ellipsoid,
    airways: Vec<Tube>,
    vessels: Vec<Tube>,
}

impl Anatomy {
    fn new(scale: f64) -> Self {
        let lung = |shape: LungShape| Ellipsoid {
            centre: shape.centre_mm,
            radii: shape.radii_mm,
        };
        let [right, left] = lung_shapes(scale);
        let carina = [0.0, -20.0, 50.0];
        let hilum = |side: f64| [side * 35.0 * scale, -5.0, 20.0];
        let mut vessels = Vec::new();
        for side in [-1.0, 1.0] {
            for (dx, dy, dz) in [
                (60.0, -40.0, 60.0),
                (75.0, 10.0, 0.0),
                (55.0, 50.0, -60.0),
                (40.0, 60.0, 40.0),
            ] {
                let h = hilum(side);
                vessels.push(Tube {
                    a: h,
                    b: [
                        h[0] + side * dx * scale,
                        h[1] + dy * scale,
                        h[2] + dz * scale,
                    ],
                    radius: 3.0,
                });
            }
        }
        Self {
            lungs: [lung(right), lung(left)],
            heart: Ellipsoid {
                centre: [20.0, -35.0, -40.0],
                radii: [60.0, 50.0, 50.0],
            },
            airways: vec![
                Tube {
                    a: carina,
                    b: [0.0, -20.0, 400.0],
                    radius: 9.0,
                },
                Tube {
                    a: carina,
                    b: hilum(-1.0),
                    radius: 6.0,
                },
                Tube {
                    a: carina,
                    b: hilum(1.0),
                    radius: 6.0,
                },
            ],
            vessels,
        }
    }

    /// Inside a lung's ellipsoid and outside the heart.
    fn in_lungs(&self, p: [f64; 3]) -> bool {
        self.lungs.iter().any(|l| l.contains(p)) && !self.heart.contains(p)
    }
}

/// Draws the phantom `config` describes.
pub fn chest_phantom(config: &PhantomConfig) -> Phantom {
    let [d, h, w] = config.dims;
    let [dk, dj, di] = config.spacing;
    let anatomy = Anatomy::new(config.lung_scale);
    let lesions = &config.lesions;
    let mut noise = Noise::new(config.seed);
    let n = d * h * w;
    let mut voxels = Vec::with_capacity(n);
    let mut lungs = Vec::with_capacity(n);
    let mut infection = Vec::with_capacity(n);
    let centre =
        |count: usize, step: f64, index: usize| (index as f64 - (count as f64 - 1.0) / 2.0) * step;
    for k in 0..d {
        let z = centre(d, dk, k);
        let rib = (z + 1000.0).rem_euclid(25.0) < 10.0;
        for j in 0..h {
            let y = centre(h, dj, j);
            for i in 0..w {
                let x = centre(w, di, i);
                let p = [x, y, z];
                let (value, lung, lesion) = tissue(p, &anatomy, lesions, rib);
                voxels.push(value);
                lungs.push(u8::from(lung));
                infection.push(u8::from(lesion));
            }
        }
    }
    if config.blur_mm > 0.0 {
        gaussian_blur(&mut voxels, config.dims, config.spacing, config.blur_mm);
    }
    for v in &mut voxels {
        *v += config.noise_hu * noise.gaussian();
    }
    let origin = [centre(w, di, 0), centre(h, dj, 0), centre(d, dk, 0)];
    let axial = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    let voxels = voxels.into_iter().map(whole_hu).collect();
    let volume = Volume::new(voxels, config.dims, config.spacing, origin, axial)
        .unwrap_or_else(|e| unreachable!("phantom geometry is consistent: {e}"));
    let mask = |data: Vec<u8>| Mask::from_data(config.dims, config.spacing, data);
    Phantom {
        volume,
        lungs: mask(lungs),
        infection: mask(infection),
    }
}

/// HU at `p`, whether it is lung, whether it is infected.
fn tissue(p: [f64; 3], anatomy: &Anatomy, lesions: &[Lesion], rib: bool) -> (f32, bool, bool) {
    let [x, y, _] = p;
    // Body: an elliptic cylinder 320 x 220 mm with 10 mm of fat under the skin.
    let body = (x / 160.0).powi(2) + (y / 110.0).powi(2);
    if body > 1.0 {
        let table = (125.0..135.0).contains(&y) && x.abs() < 200.0;
        return (if table { hu::TABLE } else { hu::AIR }, false, false);
    }
    if body > 0.88 {
        return (hu::FAT, false, false);
    }
    let in_lung = anatomy.in_lungs(p);
    if !in_lung && ((rib && body > 0.72) || (x.abs() < 18.0 && (y - 85.0).abs() < 18.0)) {
        return (hu::BONE, false, false);
    }
    let airway = anatomy.airways.iter().any(|t| t.contains(p));
    if !in_lung {
        return (if airway { hu::AIR } else { hu::SOFT_TISSUE }, false, false);
    }
    if let Some(lesion) = lesions.iter().find(|l| l.contains(p)) {
        return (lesion.density_at(p), true, true);
    }
    if airway {
        return (hu::AIR, true, false);
    }
    if anatomy.vessels.iter().any(|t| t.contains(p)) {
        return (hu::SOFT_TISSUE, true, false);
    }
    (hu::LUNG, true, false)
}

impl Lesion {
    fn contains(&self, p: [f64; 3]) -> bool {
        Ellipsoid {
            centre: self.centre_mm,
            radii: self.radii_mm,
        }
        .contains(p)
    }

    /// Density at `p`, a point inside the lesion.
    fn density_at(&self, p: [f64; 3]) -> f32 {
        match self.pattern {
            LesionPattern::Solid => self.hu,
            LesionPattern::CrazyPaving { period_mm } => {
                let on_septum = |c: f64| c.rem_euclid(period_mm) < 1.0;
                if on_septum(p[0]) || on_septum(p[1]) {
                    self.hu + SEPTUM_HU
                } else {
                    self.hu
                }
            }
            LesionPattern::AirBronchogram => {
                // Bronchi run along the direction from the hilum (x = 0, y = 0)
                // to the lesion, one through its centre and two beside it.
                let c = self.centre_mm;
                let norm = c[0].hypot(c[1]).max(1e-9);
                let along = [c[0] / norm, c[1] / norm];
                let across = [-along[1], along[0]];
                let offset = [p[0] - c[0], p[1] - c[1]];
                let lateral = offset[0] * across[0] + offset[1] * across[1];
                let spread = self.radii_mm[0].min(self.radii_mm[1]) / 3.0;
                let in_bronchus = [-spread, 0.0, spread].iter().any(|o| {
                    let dz = (p[2] - c[2]) * 0.5;
                    (lateral - o).hypot(dz) < 1.5
                });
                if in_bronchus { BRONCHUS_HU } else { self.hu }
            }
        }
    }
}

/// Separable Gaussian blur with standard deviation `sigma_mm`, edges clamped.
fn gaussian_blur(voxels: &mut [f32], dims: [usize; 3], spacing: [f64; 3], sigma_mm: f64) {
    let strides = [dims[1] * dims[2], dims[2], 1];
    let mut line = Vec::new();
    for axis in 0..3 {
        let sigma = sigma_mm / spacing[axis];
        if sigma < 0.1 {
            continue;
        }
        let radius = (3.0 * sigma).ceil() as isize;
        let weights: Vec<f32> = (-radius..=radius)
            .map(|t| (-(t as f64).powi(2) / (2.0 * sigma * sigma)).exp())
            .map(|w| w as f32)
            .collect();
        let total: f32 = weights.iter().sum();
        let n = dims[axis];
        let stride = strides[axis];
        // Every line along `axis` once, from its first voxel: blocks of
        // `n * stride` voxels, each holding `stride` interleaved lines.
        let starts = (0..voxels.len())
            .step_by(n * stride)
            .flat_map(|block| block..block + stride);
        for start in starts {
            line.clear();
            line.extend((0..n).map(|t| voxels[start + t * stride]));
            for t in 0..n {
                let sum: f32 = weights
                    .iter()
                    .enumerate()
                    .map(|(o, w)| {
                        let u = (t as isize + o as isize - radius).clamp(0, n as isize - 1);
                        w * line[u as usize]
                    })
                    .sum();
                voxels[start + t * stride] = sum / total;
            }
        }
    }
}

/// Deterministic Gaussian noise (SplitMix64 and Box-Muller), identical on
/// every platform.
struct Noise {
    state: u64,
}

impl Noise {
    fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    fn uniform(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn gaussian(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
}
