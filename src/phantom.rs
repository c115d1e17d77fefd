//! Synthetic chest CT phantoms with known lungs and lesions: the ground truth
//! for the lung segmentation and the mapping tests, and the anatomy the
//! training data generator builds on.
//!
//! Coordinates are millimetres from the volume's centre in DICOM's LPS
//! patient axes (x to the patient's left, y posterior, z superior); the
//! volume is axial, columns along x, rows along y, slices along z.

use crate::preprocess::Mask;
use crate::volume::Volume;

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
}

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
}

impl Default for PhantomConfig {
    /// A 300 mm axial scan at 3 mm x 1.4 mm, no lesion.
    fn default() -> Self {
        Self {
            dims: [100, 256, 256],
            spacing: [3.0, 1.4, 1.4],
            noise_hu: 15.0,
            seed: 1,
            lesions: Vec::new(),
            lung_scale: 1.0,
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

/// The phantom's fixed anatomy.
struct Anatomy {
    lungs: [Ellipsoid; 2],
    heart: Ellipsoid,
    airways: Vec<Tube>,
    vessels: Vec<Tube>,
}

impl Anatomy {
    fn new(scale: f64) -> Self {
        let lung = |x: f64, width: f64| Ellipsoid {
            centre: [x * scale, 0.0, 10.0],
            radii: [width * scale, 80.0 * scale, 110.0 * scale],
        };
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
            lungs: [lung(-70.0, 55.0), lung(70.0, 50.0)],
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
}

/// Draws the phantom `config` describes.
pub fn chest_phantom(config: &PhantomConfig) -> Phantom {
    let [d, h, w] = config.dims;
    let [dk, dj, di] = config.spacing;
    let anatomy = Anatomy::new(config.lung_scale);
    let lesions: Vec<(Ellipsoid, f32)> = config
        .lesions
        .iter()
        .map(|l| {
            let shape = Ellipsoid {
                centre: l.centre_mm,
                radii: l.radii_mm,
            };
            (shape, l.hu)
        })
        .collect();
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
                let (value, lung, lesion) = tissue(p, &anatomy, &lesions, rib);
                voxels.push(value + config.noise_hu * noise.gaussian());
                lungs.push(u8::from(lung));
                infection.push(u8::from(lesion));
            }
        }
    }
    let origin = [centre(w, di, 0), centre(h, dj, 0), centre(d, dk, 0)];
    let axial = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
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
fn tissue(
    p: [f64; 3],
    anatomy: &Anatomy,
    lesions: &[(Ellipsoid, f32)],
    rib: bool,
) -> (f32, bool, bool) {
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
    let in_lung = anatomy.lungs.iter().any(|l| l.contains(p)) && !anatomy.heart.contains(p);
    if !in_lung && ((rib && body > 0.72) || (x.abs() < 18.0 && (y - 85.0).abs() < 18.0)) {
        return (hu::BONE, false, false);
    }
    let airway = anatomy.airways.iter().any(|t| t.contains(p));
    if !in_lung {
        return (if airway { hu::AIR } else { hu::SOFT_TISSUE }, false, false);
    }
    if let Some((_, value)) = lesions.iter().find(|(shape, _)| shape.contains(p)) {
        return (*value, true, true);
    }
    if airway {
        return (hu::AIR, true, false);
    }
    if anatomy.vessels.iter().any(|t| t.contains(p)) {
        return (hu::SOFT_TISSUE, true, false);
    }
    (hu::LUNG, true, false)
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
