//! The diagnosis pipeline end to end on the CPU backend: a phantom through
//! lung mask, crop, resample, both branches and the attention mapped back.

#![allow(
    clippy::unwrap_used,
    reason = "a failed unwrap is a failed test, with its message"
)]

use burn::tensor::Device;
use dsan_ct::CpuBackend;
use dsan_ct::model::{Dsan, DsanConfig};
use dsan_ct::phantom::{Lesion, LesionPattern, PhantomConfig, chest_phantom, hu};
use dsan_ct::pipeline::{
    Branch, BranchResult, DecisionConfig, DiagnosisError, Inference, NoProgress, ProgressSink,
    Stage, diagnose, diagnose_with, run_branch,
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

/// Runs branch B first and apart, its result through JSON as the page's
/// helper worker sends it; `classes` cuts its probabilities to that many.
struct Apart<'a> {
    model: &'a Dsan<B>,
    device: &'a Device<B>,
    classes: usize,
}

impl Inference for Apart<'_> {
    async fn infer(
        &mut self,
        input: &[f32],
        grid: [usize; 3],
    ) -> Result<[BranchResult; 2], DiagnosisError> {
        let balanced =
            run_branch(Branch::Balanced.of(self.model), input, grid, self.device).await?;
        let mut balanced: BranchResult =
            serde_json::from_str(&serde_json::to_string(&balanced).unwrap()).unwrap();
        balanced.probabilities.truncate(self.classes);
        let uniform = run_branch(Branch::Uniform.of(self.model), input, grid, self.device).await?;
        Ok([uniform, balanced])
    }
}

#[test]
fn branches_run_apart_give_the_same_diagnosis_and_a_result_that_does_not_fit_is_refused() {
    let device = Default::default();
    let (card, bytes) = seeded_card(&DsanConfig::tiny(), 7).unwrap();
    let model = load_weights::<B>(&card, &bytes, &device).unwrap();
    let phantom = chest_phantom(&PhantomConfig::default());
    let decision = DecisionConfig::default();
    let together = pollster::block_on(diagnose(
        &phantom.volume,
        &model,
        &card,
        &decision,
        &device,
        &mut NoProgress,
    ))
    .unwrap();
    let apart = |classes| {
        let mut inference = Apart {
            model: &model,
            device: &device,
            classes,
        };
        pollster::block_on(diagnose_with(
            &phantom.volume,
            &card,
            &decision,
            &mut inference,
            &mut NoProgress,
        ))
    };
    let mut split = apart(2).unwrap();
    let mut whole = together.summary.clone();
    split.summary.timings.clear();
    whole.timings.clear();
    assert_eq!(split.summary, whole);
    assert_eq!(split.lung_mask, together.lung_mask);
    assert_eq!(split.lung_region, together.lung_region);

    let err = apart(1).unwrap_err();
    assert!(
        matches!(err, DiagnosisError::Backend { .. })
            && err.to_string().contains("do not fit the card's 2 classes"),
        "{err}"
    );
}
