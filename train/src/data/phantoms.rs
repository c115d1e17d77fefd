//! `dsan phantoms`: synthetic chest CT cases as real DICOM series (CT Image
//! Storage, one file per slice), their infection masks as NIfTI, a
//! `labels.csv` (`case_id,patient_id,label,infection_mask`) and a
//! `phantoms.json` (the command and settings, and each case's lesion count,
//! infected and lung volume).
//!
//! Lesion model (class-dependent, overlapping in size so size alone does not
//! decide the class; `u` is uniform in [0, 1)):
//! - COVID-19: 2-6 lesions, bilateral (alternating lungs), peripheral (centred
//!   at 75-95% of the way from the lung's centre to its surface, in the
//!   lung's own ellipsoid at the case's lung scale, never towards the
//!   mediastinum and never in the heart), ground glass (-650 to -450 HU), a quarter of
//!   them as crazy paving (septa 4-7 mm apart), with a 30% chance of
//!   consolidation (later stage) per lesion; radii 10-35 mm skewed large
//!   (`10 + 25 u^0.6`). A quarter of the cases are early-stage instead: 1-3
//!   lesions of 5-15 mm.
//! - CAP: 1-2 consolidations (20-40 HU) in one lung, 60% of them with air
//!   bronchograms, radii 8-30 mm skewed small (`8 + 22 u^1.8`), plus 0-3
//!   centrilobular nodules of 3-5 mm in the same lung (bronchopneumonia). A
//!   quarter of the cases are lobar instead: one consolidation of 30-50 mm.
//! - Normal (only with `--classes 3`): no lesion and no infection mask.
//!
//! Each semi-axis is the radius times 0.8-1.2; lungs are scaled by 0.85-1.05;
//! every image gets a reconstruction blur of 0.6-0.9 mm (Gaussian sigma) and
//! 15 HU of noise. The infection ratios this gives are measured by
//! `infection_sizes_are_imbalanced_but_overlap` below.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use dsan_ct::phantom::{
    Lesion, LesionPattern, PhantomConfig, chest_phantom, in_lungs, lung_shapes,
};
use dsan_ct::volume::Volume;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::data::parallel::try_map;
use crate::predict::outputs::write_nifti;

/// The classes, as the model card names them (the paper's two, then the
/// optional third).
const CLASSES: [&str; 3] = ["CAP", "COVID-19", "normal"];

/// Field of view of every phantom: 300 mm along the slices, 358.4 mm across.
const FIELD_OF_VIEW_MM: [f64; 3] = [300.0, 358.4, 358.4];

/// Writes `n` cases under `out` (the first `classes` of CAP, COVID-19 and
/// normal, in turn), each `slices` x `size` x `size` voxels over the same
/// field of view, one case per core at a time.
pub fn phantoms(
    out: &Path,
    n: usize,
    seed: u64,
    slices: usize,
    size: usize,
    classes: usize,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        slices >= 2 && size >= 16,
        "phantoms need at least 2 slices of 16 x 16"
    );
    anyhow::ensure!(
        (2..=3).contains(&classes),
        "--classes is 2 (CAP, COVID-19) or 3 (and normal)"
    );
    let dims = [slices, size, size];
    let spacing = std::array::from_fn(|a| FIELD_OF_VIEW_MM[a] / dims[a] as f64);
    std::fs::create_dir_all(out).with_context(|| out.display().to_string())?;
    let mut labels = String::from("case_id,patient_id,label,infection_mask\n");
    let cases: Vec<usize> = (0..n).collect();
    let rows = try_map(
        &cases,
        |&case| -> anyhow::Result<(String, serde_json::Value)> {
            let label = case % classes;
            let config = case_config(label, seed, case, dims, spacing);
            let phantom = chest_phantom(&config);
            let id = format!("phantom-{seed}-{case:04}");
            let series_dir = out.join(&id);
            std::fs::create_dir_all(&series_dir)?;
            write_series(&series_dir, &phantom.volume, &id, seed, case)?;
            let mask = if config.lesions.is_empty() {
                String::new()
            } else {
                let mask = format!("{id}-infection.nii.gz");
                write_nifti(&out.join(&mask), &phantom.volume, phantom.infection.data())?;
                mask
            };
            let (infection_ml, lung_ml) =
                (phantom.infection.volume_ml(), phantom.lungs.volume_ml());
            eprintln!(
                "{id}: {} with {} lesion(s), infection {infection_ml:.1} mL of {lung_ml:.0} mL lung",
                CLASSES[label],
                config.lesions.len(),
            );
            let record = serde_json::json!({
                "case_id": id,
                "label": CLASSES[label],
                "lesions": config.lesions.len(),
                "infection_ml": infection_ml,
                "lung_ml": lung_ml,
            });
            Ok((format!("{id},{id},{},{mask}", CLASSES[label]), record))
        },
    )?;
    let mut records = Vec::with_capacity(rows.len());
    for (row, record) in rows {
        writeln!(labels, "{row}")?;
        records.push(record);
    }
    std::fs::write(out.join("labels.csv"), labels)?;
    let settings = serde_json::json!({
        "generator": "dsan phantoms",
        "version": env!("CARGO_PKG_VERSION"),
        "command": phantoms_command(n, seed, slices, size, classes),
        "n": n,
        "seed": seed,
        "slices": slices,
        "size": size,
        "classes": &CLASSES[..classes],
        "field_of_view_mm": FIELD_OF_VIEW_MM,
        "cases": records,
    });
    std::fs::write(
        out.join(SETTINGS_FILE),
        serde_json::to_vec_pretty(&settings)?,
    )?;
    Ok(())
}

/// The file in a phantom folder that records how it was generated.
pub const SETTINGS_FILE: &str = "phantoms.json";

/// The command line that writes these phantoms.
fn phantoms_command(n: usize, seed: u64, slices: usize, size: usize, classes: usize) -> String {
    format!(
        "dsan phantoms --n {n} --seed {seed} --slices {slices} --size {size} --classes {classes}"
    )
}

/// How the phantoms in `dir` were generated (their `phantoms.json`), if they are phantoms.
pub fn generated_by(dir: &Path) -> Option<String> {
    let settings: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(SETTINGS_FILE)).ok()?).ok()?;
    Some(format!(
        "`{}` (dsan {})",
        settings["command"].as_str()?,
        settings["version"].as_str()?
    ))
}

/// The phantom of case `case` of class `label` (see the module docs).
fn case_config(
    label: usize,
    seed: u64,
    case: usize,
    dims: [usize; 3],
    spacing: [f64; 3],
) -> PhantomConfig {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(case as u64));
    let lung_scale = rng.random_range(0.85..1.05);
    PhantomConfig {
        lesions: lesions(label, lung_scale, &mut rng),
        lung_scale,
        seed: rng.random(),
        blur_mm: rng.random_range(0.6..0.9),
        dims,
        spacing,
        ..PhantomConfig::default()
    }
}

/// A lesion centre in the lung on `side` (-1 right, 1 left) of a phantom drawn
/// with `lung_scale`: at 75-95% of the way from the lung's centre to its
/// surface, lateral round to posterior and anterior, within 65% of the lung's
/// height of its centre, and not in the heart.
fn peripheral_centre(side: f64, lung_scale: f64, rng: &mut StdRng) -> [f64; 3] {
    let lung = lung_shapes(lung_scale)[usize::from(side > 0.0)];
    // The heart overlaps the left lung's lower front; redraw the few that fall in it.
    loop {
        let angle = rng.random_range(-1.2..2.4f64); // lateral (0) round to posterior (pi/2) and anterior
        let height: f64 = rng.random_range(-0.65..0.65);
        let depth = rng.random_range(0.75..0.95);
        let across = (1.0 - height * height).sqrt();
        let direction = [
            side * angle.cos().abs() * across,
            angle.sin() * across,
            height,
        ];
        let centre =
            std::array::from_fn(|a| lung.centre_mm[a] + depth * lung.radii_mm[a] * direction[a]);
        if in_lungs(lung_scale, centre) {
            return centre;
        }
    }
}

/// The lesions of one case of class `label` in lungs of `lung_scale` (see the module docs).
fn lesions(label: usize, lung_scale: f64, rng: &mut StdRng) -> Vec<Lesion> {
    let mut out = Vec::new();
    let first_side = if rng.random_bool(0.5) { -1.0 } else { 1.0 };
    let mut lesion = |side: f64, radius: f64, hu: f32, pattern: LesionPattern, rng: &mut StdRng| {
        let centre = peripheral_centre(side, lung_scale, rng);
        let radii = std::array::from_fn(|_| radius * rng.random_range(0.8..1.2));
        out.push(Lesion {
            centre_mm: centre,
            radii_mm: radii,
            hu,
            pattern,
        });
    };
    match label {
        1 => {
            // A quarter are early-stage: a few small opacities.
            let early = rng.random_bool(0.25);
            let count = if early {
                rng.random_range(1..=3)
            } else {
                rng.random_range(2..=6)
            };
            for i in 0..count {
                let side = if i % 2 == 0 { first_side } else { -first_side };
                let radius = if early {
                    5.0 + 10.0 * rng.random::<f64>()
                } else {
                    10.0 + 25.0 * rng.random::<f64>().powf(0.6)
                };
                let (density, pattern) = if rng.random_bool(0.3) {
                    (rng.random_range(20.0..40.0), LesionPattern::Solid)
                } else if rng.random_bool(0.25) {
                    let period_mm = rng.random_range(4.0..7.0);
                    (
                        rng.random_range(-650.0..-450.0),
                        LesionPattern::CrazyPaving { period_mm },
                    )
                } else {
                    (rng.random_range(-650.0..-450.0), LesionPattern::Solid)
                };
                lesion(side, radius, density, pattern, rng);
            }
        }
        0 => {
            // A quarter are lobar pneumonia: one large consolidation.
            let lobar = rng.random_bool(0.25);
            let count = if lobar { 1 } else { rng.random_range(1..=2) };
            for _ in 0..count {
                let radius = if lobar {
                    30.0 + 20.0 * rng.random::<f64>()
                } else {
                    8.0 + 22.0 * rng.random::<f64>().powf(1.8)
                };
                let pattern = if rng.random_bool(0.6) {
                    LesionPattern::AirBronchogram
                } else {
                    LesionPattern::Solid
                };
                lesion(
                    first_side,
                    radius,
                    rng.random_range(20.0..40.0),
                    pattern,
                    rng,
                );
            }
            for _ in 0..rng.random_range(0..=3) {
                lesion(
                    first_side,
                    rng.random_range(3.0..5.0),
                    rng.random_range(0.0..30.0),
                    LesionPattern::Solid,
                    rng,
                );
            }
        }
        _ => {}
    }
    out
}

/// A UID under the 2.25 root, unique per seed, case and slot.
fn uid(seed: u64, case: usize, slot: usize) -> String {
    format!("2.25.{}{:04}{:05}", seed % 1_000_000_000, case, slot)
}

/// Writes one CT Image Storage file per slice, 12-bit unsigned with intercept -1024.
fn write_series(
    dir: &Path,
    volume: &Volume,
    id: &str,
    seed: u64,
    case: usize,
) -> anyhow::Result<()> {
    let [d, h, w] = volume.dims();
    let [dk, dj, di] = volume.spacing();
    let study = uid(seed, case, 90_000);
    let series = uid(seed, case, 90_001);
    let frame = uid(seed, case, 90_002);
    let ds = |v: f64| format!("{v:.6}");
    for k in 0..d {
        let position = volume.position(k as f64, 0.0, 0.0);
        let pixels: Vec<u16> = volume.voxels()[k * h * w..(k + 1) * h * w]
            .iter()
            .map(|&v| (i32::from(v) + 1024).clamp(0, 4095) as u16)
            .collect();
        let sop = uid(seed, case, k);
        let text = |tag, vr, value: String| DataElement::new(tag, vr, PrimitiveValue::from(value));
        let obj = InMemDicomObject::from_element_iter([
            text(tags::SOP_CLASS_UID, VR::UI, uids::CT_IMAGE_STORAGE.into()),
            text(tags::SOP_INSTANCE_UID, VR::UI, sop.clone()),
            text(tags::STUDY_INSTANCE_UID, VR::UI, study.clone()),
            text(tags::SERIES_INSTANCE_UID, VR::UI, series.clone()),
            text(tags::FRAME_OF_REFERENCE_UID, VR::UI, frame.clone()),
            text(tags::MODALITY, VR::CS, "CT".into()),
            text(tags::PATIENT_ID, VR::LO, id.into()),
            text(tags::PATIENT_NAME, VR::PN, format!("Phantom^{case}")),
            text(
                tags::SERIES_DESCRIPTION,
                VR::LO,
                "synthetic chest phantom".into(),
            ),
            text(tags::IMAGE_TYPE, VR::CS, "DERIVED\\PRIMARY\\AXIAL".into()),
            text(tags::SERIES_NUMBER, VR::IS, "1".into()),
            text(tags::INSTANCE_NUMBER, VR::IS, (k + 1).to_string()),
            text(tags::BODY_PART_EXAMINED, VR::CS, "CHEST".into()),
            text(
                tags::IMAGE_POSITION_PATIENT,
                VR::DS,
                format!(
                    "{}\\{}\\{}",
                    ds(position[0]),
                    ds(position[1]),
                    ds(position[2])
                ),
            ),
            text(
                tags::IMAGE_ORIENTATION_PATIENT,
                VR::DS,
                "1\\0\\0\\0\\1\\0".into(),
            ),
            text(
                tags::PIXEL_SPACING,
                VR::DS,
                format!("{}\\{}", ds(dj), ds(di)),
            ),
            text(tags::SLICE_THICKNESS, VR::DS, ds(dk)),
            text(tags::RESCALE_INTERCEPT, VR::DS, "-1024".into()),
            text(tags::RESCALE_SLOPE, VR::DS, "1".into()),
            text(
                tags::PHOTOMETRIC_INTERPRETATION,
                VR::CS,
                "MONOCHROME2".into(),
            ),
            DataElement::new(tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(1u16)),
            DataElement::new(tags::ROWS, VR::US, PrimitiveValue::from(h as u16)),
            DataElement::new(tags::COLUMNS, VR::US, PrimitiveValue::from(w as u16)),
            DataElement::new(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(16u16)),
            DataElement::new(tags::BITS_STORED, VR::US, PrimitiveValue::from(12u16)),
            DataElement::new(tags::HIGH_BIT, VR::US, PrimitiveValue::from(11u16)),
            DataElement::new(
                tags::PIXEL_REPRESENTATION,
                VR::US,
                PrimitiveValue::from(0u16),
            ),
            DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(pixels.into())),
        ]);
        let file = obj.with_meta(
            FileMetaTableBuilder::new().transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN),
        )?;
        file.write_to_file(dir.join(format!("{k:04}.dcm")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quantile(sorted: &[f64], q: f64) -> f64 {
        sorted[((sorted.len() - 1) as f64 * q).round() as usize]
    }

    /// Every lesion of 500 cases per class is centred in the lungs of its
    /// case, 75-95% of the way to the lung's surface (before this, lesions
    /// were placed for unscaled lungs, and some cases had no infected voxel).
    #[test]
    fn every_lesion_is_centred_inside_its_cases_lungs() {
        for label in 0..2 {
            for case in 0..500 {
                let config = case_config(label, 5, case, [8, 16, 16], [1.0; 3]);
                assert!(!config.lesions.is_empty());
                for lesion in &config.lesions {
                    let c = lesion.centre_mm;
                    assert!(
                        in_lungs(config.lung_scale, c),
                        "class {label} case {case}: lesion centred at {c:?} is not in the lungs"
                    );
                    let depth = lung_shapes(config.lung_scale)
                        .iter()
                        .map(|lung| {
                            (0..3)
                                .map(|a| ((c[a] - lung.centre_mm[a]) / lung.radii_mm[a]).powi(2))
                                .sum::<f64>()
                                .sqrt()
                        })
                        .fold(f64::INFINITY, f64::min);
                    assert!(
                        (0.75..0.95).contains(&depth),
                        "class {label} case {case}: lesion at depth {depth}"
                    );
                }
            }
        }
    }

    /// The infection ratio (infected / lung volume) of 120 phantoms per class,
    /// drawn on a coarse grid: COVID-19 skewed large, CAP skewed small, with
    /// overlap (the imbalance the paper's size-balanced sampling addresses).
    #[test]
    fn infection_sizes_are_imbalanced_but_overlap() {
        let dims = [30, 64, 64];
        let spacing = std::array::from_fn(|a| FIELD_OF_VIEW_MM[a] / dims[a] as f64);
        let ratios = |label: usize| {
            let mut r: Vec<f64> = (0..120)
                .map(|case| {
                    let mut config = case_config(label, 9, case, dims, spacing);
                    config.blur_mm = 0.0;
                    let phantom = chest_phantom(&config);
                    phantom.infection.count() as f64 / phantom.lungs.count() as f64
                })
                .collect();
            r.sort_by(f64::total_cmp);
            r
        };
        let (covid, cap) = (ratios(1), ratios(0));
        let q = |r: &[f64]| [0.1, 0.25, 0.5, 0.75, 0.9].map(|p| quantile(r, p));
        eprintln!("COVID-19 ratio quantiles {:?}", q(&covid));
        eprintln!("CAP ratio quantiles {:?}", q(&cap));
        assert!(quantile(&covid, 0.5) > 2.0 * quantile(&cap, 0.5));
        // Overlap: a fifth of CAP is larger than the smallest quarter of COVID-19.
        let covid_q25 = quantile(&covid, 0.25);
        let large_cap = cap.iter().filter(|&&r| r > covid_q25).count();
        assert!(
            large_cap >= 24,
            "{large_cap} CAP cases above COVID-19's first quartile"
        );
        let cap_q75 = quantile(&cap, 0.75);
        let small_covid = covid.iter().filter(|&&r| r < cap_q75).count();
        assert!(
            small_covid >= 12,
            "{small_covid} COVID-19 cases below CAP's third quartile"
        );
    }
}
