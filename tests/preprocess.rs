//! Lung segmentation, crop, resample and the mapping back, on phantoms with
//! known anatomy and on real chest CT.

#![allow(
    clippy::unwrap_used,
    reason = "a failed unwrap is a failed test, with its message"
)]

mod common;

use dsan_ct::phantom::{Lesion, LesionPattern, PhantomConfig, chest_phantom, hu};
use dsan_ct::preprocess::{
    GridMapping, LungMaskConfig, Mask, PreprocessError, prepare_input, segment_lungs,
};
use dsan_ct::volume::{Volume, whole_hu};
use dsan_ct::weights::Preprocessing;

/// A large consolidation against the posterior chest wall of the right lung.
fn subpleural_consolidation() -> Lesion {
    Lesion {
        centre_mm: [-75.0, 70.0, 0.0],
        radii_mm: [22.0, 20.0, 25.0],
        hu: hu::CONSOLIDATION,
        pattern: LesionPattern::Solid,
    }
}

/// Share of the voxels of `part` that `mask` holds.
fn coverage(mask: &Mask, part: &Mask) -> f64 {
    let inside = mask
        .data()
        .iter()
        .zip(part.data())
        .filter(|&(&m, &p)| m != 0 && p != 0)
        .count();
    inside as f64 / part.count() as f64
}

#[test]
fn phantom_lungs_are_found_with_the_airways_removed() {
    let phantom = chest_phantom(&PhantomConfig::default());
    let lungs = segment_lungs(&phantom.volume, &LungMaskConfig::default()).unwrap();
    let dice = lungs.mask.dice(&phantom.lungs).unwrap();
    println!(
        "normal phantom: Dice {dice:.4}, {:.0} mL found vs {:.0} mL true, {} components, airways {:.1} mL",
        lungs.volume_ml,
        phantom.lungs.volume_ml(),
        lungs.components,
        lungs.airways_ml
    );
    assert!(dice >= 0.95, "Dice {dice}");
    assert_eq!(lungs.components, 2);
    // The trachea (x = 0, y = -20 mm) is air inside the body above the lungs
    // and must not be in the mask at any level above the carina.
    let v = &phantom.volume;
    let [d, h, w] = v.dims();
    let trachea_column = ((0.0 - v.origin()[0]) / v.spacing()[2]).round() as usize;
    let trachea_row = ((-20.0 - v.origin()[1]) / v.spacing()[1]).round() as usize;
    let mut checked = 0;
    for k in 0..d {
        if v.position(k as f64, 0.0, 0.0)[2] > 60.0 {
            assert!(
                !lungs.mask.get(k, trachea_row, trachea_column),
                "trachea in the mask at slice {k}"
            );
            checked += 1;
        }
    }
    assert!(checked > 10);
    assert!(
        lungs.airways_ml > 5.0,
        "airways removed: {} mL",
        lungs.airways_ml
    );
    assert!(!lungs.mask.get(0, 0, 0) && !lungs.mask.get(d / 2, h - 1, w / 2));
}

#[test]
fn a_subpleural_consolidation_stays_inside_the_lung_mask() {
    let config = PhantomConfig {
        lesions: vec![subpleural_consolidation()],
        ..PhantomConfig::default()
    };
    let phantom = chest_phantom(&config);
    let lesion_ml = phantom.infection.volume_ml();
    assert!(lesion_ml > 15.0, "lesion {lesion_ml} mL");
    let lungs = segment_lungs(&phantom.volume, &LungMaskConfig::default()).unwrap();
    let dice = lungs.mask.dice(&phantom.lungs).unwrap();
    let kept = coverage(&lungs.mask, &phantom.infection);
    // A plain threshold mask (what the segmentation starts from) loses it.
    let threshold = Mask::from_fn(
        phantom.volume.dims(),
        phantom.volume.spacing(),
        |k, j, i| {
            phantom.volume.get(k, j, i).unwrap() < LungMaskConfig::default().lung_threshold_hu
        },
    );
    let threshold_kept = coverage(&threshold, &phantom.infection);
    println!(
        "consolidation phantom: Dice {dice:.4}, lesion {lesion_ml:.1} mL, kept {:.1}% (threshold alone {:.1}%)",
        100.0 * kept,
        100.0 * threshold_kept
    );
    assert!(dice >= 0.95, "Dice {dice}");
    assert!(
        kept >= 0.95,
        "only {kept} of the consolidation is inside the mask"
    );
    assert!(
        threshold_kept < 0.2,
        "the phantom's lesion is not dense: {threshold_kept}"
    );
}

#[test]
fn ground_glass_and_a_collapsed_lung_are_kept() {
    // Small lungs (a child, or lungs reduced by disease) with bilateral ground glass.
    let config = PhantomConfig {
        lung_scale: 0.8,
        lesions: vec![
            Lesion {
                centre_mm: [-60.0, 40.0, 30.0],
                radii_mm: [25.0, 25.0, 30.0],
                hu: hu::GROUND_GLASS,
                pattern: LesionPattern::Solid,
            },
            Lesion {
                centre_mm: [80.0, 30.0, -20.0],
                radii_mm: [20.0, 25.0, 30.0],
                hu: hu::GROUND_GLASS,
                pattern: LesionPattern::Solid,
            },
        ],
        seed: 5,
        ..PhantomConfig::default()
    };
    let phantom = chest_phantom(&config);
    let lungs = segment_lungs(&phantom.volume, &LungMaskConfig::default()).unwrap();
    let dice = lungs.mask.dice(&phantom.lungs).unwrap();
    let kept = coverage(&lungs.mask, &phantom.infection);
    println!(
        "ground-glass phantom: Dice {dice:.4}, lesions kept {:.1}%",
        100.0 * kept
    );
    assert!(dice >= 0.95, "Dice {dice}");
    assert!(kept >= 0.95, "{kept}");
}

#[test]
fn the_lung_region_grown_on_the_working_grid_follows_the_exact_one() {
    // 0.7 mm pixels and 2 mm slices: a working grid of 3 x 3 pixels per voxel.
    let phantom = chest_phantom(&PhantomConfig {
        dims: [120, 512, 512],
        spacing: [2.0, 0.7, 0.7],
        lesions: vec![subpleural_consolidation()],
        ..PhantomConfig::default()
    });
    let lungs = segment_lungs(&phantom.volume, &LungMaskConfig::default()).unwrap();
    let margin = 5.0;
    let region = lungs.grown(margin);
    assert_eq!(
        coverage(&region, &lungs.mask),
        1.0,
        "the region holds the lungs"
    );
    // Within one working voxel's diagonal of the region grown voxel by voxel.
    let diagonal = (2.0f64.powi(2) + 2.0 * 2.1f64.powi(2)).sqrt() + 1e-6;
    let inner = lungs.mask.grown(margin - diagonal);
    let outer = lungs.mask.grown(margin + diagonal);
    assert_eq!(
        coverage(&region, &inner),
        1.0,
        "the region holds the lungs grown by less"
    );
    assert_eq!(
        coverage(&outer, &region),
        1.0,
        "the lungs grown by more hold the region"
    );
    let exact = lungs.mask.grown(margin);
    let dice = region.dice(&exact).unwrap();
    println!(
        "lung region: {} voxels, grown on the CT's grid {}, Dice {dice:.4}",
        region.count(),
        exact.count()
    );
    assert!(
        region.count() > lungs.mask.count() * 21 / 20,
        "the region grows the lungs"
    );
    assert!(dice > 0.98, "Dice {dice}");
}

#[test]
fn bad_volumes_give_clear_errors() {
    let axial = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    let volume = |fill: i16, dims: [usize; 3]| {
        Volume::new(
            vec![fill; dims.iter().product()],
            dims,
            [2.0, 1.0, 1.0],
            [0.0; 3],
            axial,
        )
        .unwrap()
    };
    let config = LungMaskConfig::default();
    assert!(matches!(
        segment_lungs(&volume(-850, [3, 128, 128]), &config),
        Err(PreprocessError::TooSmall { .. })
    ));
    assert!(matches!(
        segment_lungs(&volume(-1000, [40, 128, 128]), &config),
        Err(PreprocessError::NoBody { .. })
    ));
    let bone = segment_lungs(&volume(1000, [40, 128, 128]), &config).unwrap_err();
    assert!(matches!(bone, PreprocessError::NoLungs { .. }), "{bone}");
    assert!(bone.to_string().contains("no lungs found"), "{bone}");
    // A body with a small air pocket: not a lung.
    let mut voxels = vec![whole_hu(hu::SOFT_TISSUE); 40 * 128 * 128];
    for k in 10..14 {
        for j in 60..64 {
            for i in 60..64 {
                voxels[(k * 128 + j) * 128 + i] = whole_hu(hu::AIR);
            }
        }
    }
    let pocket = Volume::new(voxels, [40, 128, 128], [2.0, 1.0, 1.0], [0.0; 3], axial).unwrap();
    let err = segment_lungs(&pocket, &config).unwrap_err();
    assert!(err.to_string().contains("mL"), "{err}");
}

#[test]
fn the_model_input_covers_the_lungs_and_maps_back_to_the_lesion() {
    let lesion = Lesion {
        centre_mm: [-70.0, 10.0, 40.0],
        radii_mm: [15.0, 15.0, 15.0],
        hu: hu::CONSOLIDATION,
        pattern: LesionPattern::Solid,
    };
    let phantom = chest_phantom(&PhantomConfig {
        lesions: vec![lesion.clone()],
        ..PhantomConfig::default()
    });
    let lungs = segment_lungs(&phantom.volume, &LungMaskConfig::default()).unwrap();
    let grid = [32, 64, 64];
    let input = prepare_input(&phantom.volume, &lungs, &Preprocessing::default(), grid).unwrap();
    assert_eq!(input.values.len(), 32 * 64 * 64);
    assert!(input.values.iter().all(|v| (0.0..=1.0).contains(v)));
    // The crop box holds the whole lung mask plus the margin.
    let [lo, hi] = lungs.mask.bounds().unwrap();
    for a in 0..3 {
        assert!(input.mapping.crop.lo[a] <= lo[a] && input.mapping.crop.hi[a] >= hi[a]);
    }
    // Lung voxels on the model grid are dark, the lesion bright: the input is
    // the CT, windowed as the card says (-1200..600 HU).
    let mean = input.values.iter().sum::<f32>() / input.values.len() as f32;
    assert!((0.2..0.7).contains(&mean), "mean input {mean}");

    // A map that is the lesion, as the network would see it at its feature
    // grid (infection mask on the model grid, averaged into 4x8x8 cells),
    // mapped back onto the CT: its peak must land on the lesion.
    let infection = Volume::new(
        phantom
            .infection
            .data()
            .iter()
            .map(|&v| i16::from(v))
            .collect(),
        phantom.volume.dims(),
        phantom.volume.spacing(),
        phantom.volume.origin(),
        phantom.volume.direction(),
    )
    .unwrap();
    let on_grid = input.mapping.resample(&infection);
    let feature = [8, 8, 8];
    let mut cells = vec![0f32; 512];
    for (x, v) in on_grid.iter().enumerate() {
        let c = [x / 4096 / 4, (x / 64) % 64 / 8, x % 64 / 8];
        cells[(c[0] * 8 + c[1]) * 8 + c[2]] += v / (4.0 * 8.0 * 8.0);
    }
    let peak = cells.iter().cloned().fold(0.0, f32::max);
    let normalised: Vec<f32> = cells.iter().map(|v| v / peak).collect();
    let back = input.mapping.map_to_volume(&normalised, feature);
    let centroid = weighted_centroid(&phantom.volume, &back, 200);
    let distance = (0..3)
        .map(|a| (centroid[a] - lesion.centre_mm[a]).powi(2))
        .sum::<f64>()
        .sqrt();
    println!(
        "attention mapped back: centroid {centroid:?}, {distance:.1} mm from the lesion centre"
    );
    assert!(
        distance < 12.0,
        "mapped-back attention centroid {distance} mm away"
    );
    check_mapping_is_consistent(&input.mapping);
}

/// Patient-space centroid of the voxels whose value is at least `threshold`.
fn weighted_centroid(volume: &Volume, values: &[u8], threshold: u8) -> [f64; 3] {
    let [_, h, w] = volume.dims();
    let mut sum = [0.0; 3];
    let mut count = 0.0;
    for (x, &v) in values.iter().enumerate() {
        if v >= threshold {
            let p = volume.position((x / (h * w)) as f64, ((x / w) % h) as f64, (x % w) as f64);
            for a in 0..3 {
                sum[a] += p[a];
            }
            count += 1.0;
        }
    }
    assert!(count > 0.0, "no voxel above {threshold}");
    sum.map(|s| s / count)
}

fn check_mapping_is_consistent(mapping: &GridMapping) {
    // The first and last model cells sit half a cell inside the crop box.
    for a in 0..3 {
        let cell = mapping.crop.size()[a] as f64 / mapping.grid[a] as f64;
        let first = mapping.model_to_volume(a, 0.0);
        let last = mapping.model_to_volume(a, (mapping.grid[a] - 1) as f64);
        assert!((first - (mapping.crop.lo[a] as f64 - 0.5 + cell / 2.0)).abs() < 1e-9);
        assert!((last - (mapping.crop.hi[a] as f64 + 0.5 - cell / 2.0)).abs() < 1e-9);
    }
}

#[test]
fn real_chest_ct_lungs_have_plausible_volumes() {
    for dir in [
        "ct-real/covid-ct-md/full/COVID-19/P002",
        "ct-real/covid-ct-md/full/CAP/cap002",
        "ct-real/covid-ct-md/full/Normal/normal001",
    ] {
        let volume = common::read_volume(dir);
        let lungs = segment_lungs(&volume, &LungMaskConfig::default()).unwrap();
        let [lo, hi] = lungs.mask.bounds().unwrap();
        let [_, h, w] = volume.dims();
        // Both sides of the image hold lung (two lungs), and the mask stays
        // away from the image border (nothing outside the body).
        let columns: Vec<usize> = (0..lungs.mask.data().len())
            .filter(|&x| lungs.mask.data()[x] != 0)
            .map(|x| x % w)
            .collect();
        let left = columns.iter().filter(|&&i| i < w / 2).count() as f64 / columns.len() as f64;
        println!(
            "{dir}: dims {:?}, lungs {:.0} mL in {} component(s), airways {:.1} mL, rows {}..{}, columns {}..{}, right-image share {:.2}",
            volume.dims(),
            lungs.volume_ml,
            lungs.components,
            lungs.airways_ml,
            lo[1],
            hi[1],
            lo[2],
            hi[2],
            left
        );
        assert!(
            (1500.0..9000.0).contains(&lungs.volume_ml),
            "{dir}: {} mL",
            lungs.volume_ml
        );
        assert!(
            (0.3..0.7).contains(&left),
            "{dir}: share of lung on one side {left}"
        );
        assert!(
            lo[1] > 0 && hi[1] < h - 1 && lo[2] > 0 && hi[2] < w - 1,
            "{dir}: mask touches the border"
        );
        // Aerated lung dominates the mask: its median HU is well below soft tissue.
        let mut inside: Vec<f32> = volume
            .voxels()
            .iter()
            .zip(lungs.mask.data())
            .filter(|&(_, &m)| m != 0)
            .map(|(&v, _)| f32::from(v))
            .collect();
        let middle = inside.len() / 2;
        let median = *inside.select_nth_unstable_by(middle, f32::total_cmp).1;
        assert!(median < -700.0, "{dir}: median HU in the mask {median}");
    }
}

#[test]
fn masking_outside_the_lungs_zeroes_only_cells_outside_the_mask() {
    let phantom = chest_phantom(&PhantomConfig::default());
    let lungs = segment_lungs(&phantom.volume, &LungMaskConfig::default()).unwrap();
    let grid = [16, 32, 32];
    let plain = prepare_input(&phantom.volume, &lungs, &Preprocessing::default(), grid).unwrap();
    let masked_card = Preprocessing {
        mask_outside_lungs: true,
        ..Preprocessing::default()
    };
    let masked = prepare_input(&phantom.volume, &lungs, &masked_card, grid).unwrap();
    assert_eq!(plain.mapping, masked.mapping);
    let (mut zeroed, mut kept) = (0, 0);
    for (x, (&p, &m)) in plain.values.iter().zip(&masked.values).enumerate() {
        let cell = [x / (32 * 32), (x / 32) % 32, x % 32];
        let voxel: [usize; 3] = std::array::from_fn(|a| {
            plain.mapping.model_to_volume(a, cell[a] as f64).round() as usize
        });
        if lungs.mask.get(voxel[0], voxel[1], voxel[2]) {
            assert_eq!(m, p, "cell {cell:?} inside the lungs is unchanged");
            kept += 1;
        } else {
            assert_eq!(m, 0.0, "cell {cell:?} outside the lungs is masked");
            zeroed += 1;
        }
    }
    assert!(kept > 1000 && zeroed > 1000, "{kept} kept, {zeroed} zeroed");
}

#[test]
fn a_thin_upper_abdomen_slab_is_refused_as_too_small() {
    // 20 slices of 2 mm (JPEG 2000) through the upper abdomen: 40 mm cannot
    // hold a chest, and the refusal says why.
    let volume = common::read_volume("ct-real/totalsegmentator-example/dicom");
    let err = segment_lungs(&volume, &LungMaskConfig::default()).unwrap_err();
    assert!(matches!(err, PreprocessError::TooSmall { .. }), "{err}");
    assert!(err.to_string().contains("50 mm"), "{err}");
}
