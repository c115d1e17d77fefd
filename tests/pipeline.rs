//! The diagnosis pipeline end to end on the CPU backend: a phantom through
//! lung mask, crop, resample, both branches and the attention mapped back.

#![allow(
    clippy::unwrap_used,
    reason = "a failed unwrap is a failed test, with its message"
)]

use dsan_ct::CpuBackend;
use dsan_ct::model::DsanConfig;
use dsan_ct::phantom::{Lesion, LesionPattern, PhantomConfig, chest_phantom, hu};
use dsan_ct::pipeline::{
    DecisionConfig, DiagnosisError, NoProgress, ProgressSink, Stage, diagnose,
};
use dsan_ct::preprocess::PreprocessError;
use dsan_ct::probe::seeded_card;
use dsan_ct::render::{Plane, plane_bytes};
use dsan_ct::volume::Volume;
use dsan_ct::weights::load_weights;

type B = CpuBackend;

/// Records the stages it hears about.
#[derive(Default)]
struct Recorder(Vec<Stage>);

impl ProgressSink for Recorder {
    fn stage_started(&mut self, stage: Stage) -> impl Future<Output = ()> {
        self.0.push(stage);
        std::future::ready(())
    }
}

#[test]
fn a_phantom_is_diagnosed_with_every_output_in_range() {
    let device = Default::default();
    let (card, bytes) = seeded_card(&DsanConfig::tiny(), 42).unwrap();
    let model = load_weights::<B>(&card, &bytes, &device).unwrap();
    let phantom = chest_phantom(&PhantomConfig {
        lesions: vec![Lesion {
            centre_mm: [-70.0, 30.0, 0.0],
            radii_mm: [20.0, 20.0, 20.0],
            hu: hu::GROUND_GLASS,
            pattern: LesionPattern::Solid,
        }],
        ..PhantomConfig::default()
    });
    let mut stages = Recorder::default();
    let decision = DecisionConfig::default();
    let diagnosis = pollster::block_on(diagnose(
        &phantom.volume,
        &model,
        &card,
        &decision,
        &device,
        &mut stages,
    ))
    .unwrap();
    let s = &diagnosis.summary;
    assert_eq!(stages.0, Stage::ALL);
    assert_eq!(
        s.timings.iter().map(|t| t.stage).collect::<Vec<_>>(),
        Stage::ALL
    );
    assert!(s.timings.iter().all(|t| t.ms >= 0.0));
    for p in [
        &s.probabilities,
        &s.uniform_probabilities,
        &s.balanced_probabilities,
    ] {
        assert_eq!(p.len(), 2);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{p:?}");
    }
    for c in 0..2 {
        let mean = (s.uniform_probabilities[c] + s.balanced_probabilities[c]) / 2.0;
        assert!((s.probabilities[c] - mean).abs() < 1e-6);
    }
    assert_eq!(s.positive_class, Some(1));
    let p = s.positive_probability.unwrap();
    assert_eq!(s.predicted, usize::from(p >= 0.5));
    assert_eq!(s.predicted_class, card.classes[s.predicted]);
    // The lung mask and volume are the phantom's.
    let dice = diagnosis.lung_mask.dice(&phantom.lungs).unwrap();
    assert!(dice > 0.95, "Dice {dice}");
    assert!(
        (s.lung_volume_ml - phantom.lungs.volume_ml()).abs() / phantom.lungs.volume_ml() < 0.05
    );
    // Attention: feature grid maps in [0, 1], volume maps on the CT's grid,
    // zero outside the crop box, the ensemble the mean of the branches.
    let cells: usize = s.feature_grid.iter().product();
    assert_eq!(s.feature_grid, card.architecture.feature_grid());
    for maps in [
        &s.feature_attention.ensemble,
        &s.feature_attention.uniform,
        &s.feature_attention.balanced,
    ] {
        assert_eq!(maps.len(), cells);
        assert!(maps.iter().all(|v| (0.0..=1.0).contains(v)));
    }
    let voxels = phantom.volume.voxels().len();
    let ensemble = diagnosis.attention_volume(&s.feature_attention.ensemble);
    assert_eq!(ensemble.len(), voxels);
    assert_eq!(ensemble[0], 0, "corner is outside the crop box");
    // Each plane the viewer draws is that plane of the whole map, exactly.
    let dims = phantom.volume.dims();
    for (map, values) in [
        (&ensemble, &s.feature_attention.ensemble),
        (
            &diagnosis.attention_volume(&s.feature_attention.balanced),
            &s.feature_attention.balanced,
        ),
    ] {
        for plane in [Plane::Axial, Plane::Coronal, Plane::Sagittal] {
            for index in [0, plane.count(dims) / 2, plane.count(dims) - 1] {
                assert_eq!(
                    diagnosis.attention_plane(values, plane, index),
                    plane_bytes(map, dims, plane, index),
                    "{plane:?} {index}"
                );
            }
            assert_eq!(
                diagnosis.attention_plane(values, plane, plane.count(dims)),
                None
            );
        }
    }
    assert!(s.maps_fit(dims));
    assert!(
        !s.maps_fit([dims[0] + 1, dims[1], dims[2]]),
        "another CT's dims"
    );
    let mut short = s.clone();
    short.feature_attention.uniform.pop();
    assert!(!short.maps_fit(dims), "a map missing a cell");
    let mut outside = s.clone();
    outside.mapping.crop.hi[2] = dims[2];
    assert!(!outside.maps_fit(dims), "a crop box past the CT");
    let feature_max = s
        .feature_attention
        .ensemble
        .iter()
        .cloned()
        .fold(0.0, f32::max);
    let volume_max = *ensemble.iter().max().unwrap();
    assert!(f32::from(volume_max) <= feature_max * 255.0 + 1.0);
    assert!(
        f32::from(volume_max) >= feature_max * 255.0 * 0.5,
        "{volume_max} vs {feature_max}"
    );
    // The peak the viewer can jump to: the strongest attention, inside the
    // lung region unless the whole map is asked for.
    let at = |[k, j, i]: [usize; 3]| ensemble[(k * dims[1] + j) * dims[2] + i];
    let region = diagnosis.lung_region.data();
    let region_max = ensemble
        .iter()
        .zip(region)
        .filter(|&(_, &r)| r != 0)
        .map(|(&v, _)| v)
        .max()
        .unwrap();
    let peak = diagnosis
        .attention_peak(&s.feature_attention.ensemble, false)
        .unwrap();
    assert!(diagnosis.lung_region.get(peak[0], peak[1], peak[2]));
    assert!(
        f32::from(at(peak)) >= f32::from(region_max) * 0.9,
        "{} at {peak:?} vs {region_max} in the lung region",
        at(peak)
    );
    let anywhere = diagnosis
        .attention_peak(&s.feature_attention.ensemble, true)
        .unwrap();
    assert!(f32::from(at(anywhere)) >= f32::from(volume_max) * 0.9);
    assert_eq!(
        diagnosis.attention_peak(&s.feature_attention.ensemble[1..], true),
        None,
        "a map off the feature grid"
    );
    assert!((0.0..=1.0).contains(&s.high_attention_fraction));
    let json = serde_json::to_string(s).unwrap();
    assert!(json.contains("\"lung_mask\"") && json.contains("positive_probability"));

    // Deterministic: the same volume gives the same diagnosis.
    let again = pollster::block_on(diagnose(
        &phantom.volume,
        &model,
        &card,
        &decision,
        &device,
        &mut NoProgress,
    ))
    .unwrap();
    assert_eq!(again.summary.probabilities, s.probabilities);
    assert_eq!(again.summary.feature_attention, s.feature_attention);
    assert_eq!(again.lung_region, diagnosis.lung_region);
}

#[test]
fn volumes_without_lungs_give_a_diagnosis_error() {
    let device = Default::default();
    let (card, bytes) = seeded_card(&DsanConfig::tiny(), 1).unwrap();
    let model = load_weights::<B>(&card, &bytes, &device).unwrap();
    let axial = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    let run = |fill: i16, dims: [usize; 3]| {
        let volume = Volume::new(
            vec![fill; dims.iter().product()],
            dims,
            [2.5, 1.0, 1.0],
            [0.0; 3],
            axial,
        )
        .unwrap();
        pollster::block_on(diagnose(
            &volume,
            &model,
            &card,
            &DecisionConfig::default(),
            &device,
            &mut NoProgress,
        ))
        .unwrap_err()
    };
    for (fill, dims, what) in [
        (-1000, [40, 96, 96], "all air"),
        (1000, [40, 96, 96], "all bone"),
        (-850, [2, 96, 96], "too small"),
    ] {
        let err = run(fill, dims);
        assert!(
            matches!(err, DiagnosisError::Preprocess(_)),
            "{what}: {err}"
        );
        println!("{what}: {err}");
    }
    assert!(matches!(
        run(1000, [40, 96, 96]),
        DiagnosisError::Preprocess(PreprocessError::NoLungs { .. })
    ));
    // A card whose class list does not fit the network.
    let mut wrong = card.clone();
    wrong.classes.push("normal".into());
    let phantom = chest_phantom(&PhantomConfig::default());
    let err = pollster::block_on(diagnose(
        &phantom.volume,
        &model,
        &wrong,
        &DecisionConfig::default(),
        &device,
        &mut NoProgress,
    ))
    .unwrap_err();
    assert!(
        err.to_string().contains("3 class names for 2 outputs"),
        "{err}"
    );
}
