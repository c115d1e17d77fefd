//! The `dsan` binary end to end: help, model-info, inspect, self-check.

#![allow(
    clippy::unwrap_used,
    reason = "a failed unwrap is a failed test, with its message"
)]

#[path = "../../tests/common/mod.rs"]
mod common;

use std::process::{Command, Output};

use common::shared_data;
use dsan_ct::model::DsanConfig;
use dsan_ct::probe::seeded_cpu_model;
use dsan_ct::weights::{
    CARD_FORMAT_VERSION, ModelCard, Preprocessing, TrainingData, encode_weights, save_model_files,
};

/// Runs `dsan`; without LD_LIBRARY_PATH, so a LibTorch build must find its
/// libraries by its own rpath.
fn dsan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dsan"))
        .args(args)
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_lists_the_subcommands() {
    let out = dsan(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for command in ["model-info", "inspect", "phantoms", "predict", "self-check"] {
        assert!(help.contains(command), "{command} in {help}");
    }
}

#[test]
fn model_info_verifies_the_weights_and_refuses_a_corrupted_file() {
    let config = DsanConfig::tiny();
    let (weights, mut bytes) = encode_weights(seeded_cpu_model(&config, 8), "tiny.mpk").unwrap();
    let card = ModelCard {
        format_version: CARD_FORMAT_VERSION,
        name: "cli-test".into(),
        version: "1.2.3".into(),
        architecture: config,
        preprocessing: Preprocessing::default(),
        classes: vec!["CAP".into(), "COVID-19".into()],
        weights,
        training_data: TrainingData {
            description: "seeded random weights".into(),
            synthetic: true,
            cases_per_class: vec![("CAP".into(), 0), ("COVID-19".into(), 0)],
        },
        metrics: vec![],
        intended_use: "testing the CLI".into(),
        limitations: "untrained".into(),
    };
    let dir = std::env::temp_dir().join(format!("dsan-cli-{}", std::process::id()));
    let card_path = save_model_files(&dir, "card.json", &card, &bytes).unwrap();
    let card_arg = card_path.to_str().unwrap();

    let out = dsan(&["model-info", card_arg]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let info = text(&out.stdout);
    assert!(info.starts_with("cli-test 1.2.3"), "{info}");
    assert!(info.contains("verified"), "{info}");
    assert!(info.contains("CAP, COVID-19"), "{info}");

    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(dir.join("tiny.mpk"), &bytes).unwrap();
    let out = dsan(&["model-info", card_arg]);
    assert!(!out.status.success());
    let error = text(&out.stderr);
    assert!(
        error.contains("tiny.mpk") && error.contains("SHA-256"),
        "{error}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn inspect_reports_series_the_default_and_skipped_files() {
    let data = shared_data();
    let folder = data.join("ct-real/covid-ct-md/subsampled-every-4th/CAP/cap001");
    let small = data.join("dicom-conformance/pydicom-test_files/CT_small.dcm");
    let readme = data.join("ct-real/covid-ct-md/README.md");
    let out = dsan(&[
        "inspect",
        folder.to_str().unwrap(),
        small.to_str().unwrap(),
        readme.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let series = report["series"].as_array().unwrap();
    assert_eq!(series.len(), 2);
    let default: Vec<_> = series.iter().filter(|s| s["default"] == true).collect();
    assert_eq!(default.len(), 1);
    assert_eq!(default[0]["slices"], 42);
    assert_eq!(default[0]["modality"], "CT");
    assert_eq!(default[0]["hu_min"], -1024.0);
    let skipped = report["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0].as_str().unwrap().contains("README.md"));
}

#[test]
fn self_check_prints_probabilities() {
    let out = dsan(&["self-check", "--preset", "tiny", "--seed", "5"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ensemble: Vec<f64> = summary["ensemble"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(ensemble.len(), 2);
    assert!((ensemble.iter().sum::<f64>() - 1.0).abs() < 1e-5);
    assert_eq!(summary["attention_grid"], serde_json::json!([2, 2, 2]));
}

#[test]
fn predict_diagnoses_a_series_and_writes_maps_on_its_grid() {
    let series = shared_data().join("ct-real/covid-ct-md/subsampled-every-4th/CAP/cap001");
    let out_dir = std::env::temp_dir().join(format!("dsan-predict-{}", std::process::id()));
    let out = dsan(&[
        "predict",
        series.to_str().unwrap(),
        "--preset",
        "tiny",
        "--seed",
        "7",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let diagnosis = &report["diagnosis"];
    let p = diagnosis["positive_probability"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p));
    assert_eq!(diagnosis["classes"], serde_json::json!(["CAP", "COVID-19"]));
    assert!(
        report["model"]["name"]
            .as_str()
            .unwrap()
            .contains("untrained")
    );
    let lung_ml = diagnosis["lung_volume_ml"].as_f64().unwrap();
    assert!((1500.0..9000.0).contains(&lung_ml), "{lung_ml}");
    assert_eq!(diagnosis["timings"].as_array().unwrap().len(), 4);
    // The file holds the same JSON as stdout.
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("diagnosis.json")).unwrap()).unwrap();
    assert_eq!(saved, report);

    // The NIfTI maps lie on the CT's grid: same dims, spacing, origin and axes
    // when read back by the library's NIfTI reader.
    let ct = common::read_volume("ct-real/covid-ct-md/subsampled-every-4th/CAP/cap001");
    for name in [
        "lung-mask.nii.gz",
        "attention.nii.gz",
        "attention-uniform.nii.gz",
    ] {
        let bytes = std::fs::read(out_dir.join(name)).unwrap();
        let map = dsan_ct::volume::read_nifti(name, &bytes).unwrap();
        assert_eq!(map.dims(), ct.dims(), "{name}");
        for a in 0..3 {
            assert!((map.spacing()[a] - ct.spacing()[a]).abs() < 1e-3, "{name}");
            assert!(
                (map.origin()[a] - ct.origin()[a]).abs() < 1e-2,
                "{name}: {:?} vs {:?}",
                map.origin(),
                ct.origin()
            );
            for b in 0..3 {
                assert!(
                    (map.direction()[a][b] - ct.direction()[a][b]).abs() < 1e-6,
                    "{name}"
                );
            }
        }
        if name == "lung-mask.nii.gz" {
            let ml = map.voxels().iter().filter(|&&v| v > 0).count() as f64 * map.voxel_ml();
            assert!((ml - lung_ml).abs() < 1.0, "{ml} vs {lung_ml}");
        }
    }
    let png = std::fs::read(out_dir.join("mosaic.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    // 4 x 3 tiles of 512 x 512: width and height in the IHDR chunk.
    assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 2048);
    assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 1536);
    std::fs::remove_dir_all(&out_dir).unwrap();
}

/// LibTorch and Flex diagnose a real CT (COVID-CT-MD cap001) with the same
/// seeded web-default weights: the same probabilities (ensemble and both
/// branches) to 1e-4, the same share of lung with high attention to 1e-3.
#[cfg(feature = "libtorch")]
#[test]
fn libtorch_and_flex_give_the_same_diagnosis_of_a_real_ct() {
    let series = shared_data().join("ct-real/covid-ct-md/subsampled-every-4th/CAP/cap001");
    let diagnose = |backend: &str| -> serde_json::Value {
        let out = dsan(&[
            "predict",
            series.to_str().unwrap(),
            "--preset",
            "web-default",
            "--backend",
            backend,
        ]);
        assert!(out.status.success(), "{backend}: {}", text(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        report["diagnosis"].clone()
    };
    let (flex, torch) = (diagnose("cpu"), diagnose("libtorch"));
    for field in [
        "probabilities",
        "uniform_probabilities",
        "balanced_probabilities",
    ] {
        let values = |d: &serde_json::Value| -> Vec<f64> {
            d[field]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        };
        let (a, b) = (values(&flex), values(&torch));
        assert_eq!(a.len(), 2);
        for (x, y) in a.iter().zip(&b) {
            assert!(
                (x - y).abs() < 1e-4,
                "{field}: Flex {a:?} vs LibTorch {b:?}"
            );
        }
    }
    let share = |d: &serde_json::Value| d["high_attention_fraction"].as_f64().unwrap();
    assert!((share(&flex) - share(&torch)).abs() < 1e-3);
}

#[test]
fn predict_refuses_input_without_a_ct_with_the_reason() {
    let dicomdir =
        shared_data().join("dicom-conformance/pydicom-test_files/dicomdirtests/DICOMDIR");
    let out = dsan(&["predict", dicomdir.to_str().unwrap(), "--preset", "tiny"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("no CT series") && err.contains("DICOMDIR"),
        "{err}"
    );
}

#[test]
fn phantoms_are_dicom_series_with_masks_and_labels() {
    use dsan_ct::preprocess::{LungMaskConfig, segment_lungs};

    let out_dir = std::env::temp_dir().join(format!("dsan-phantoms-{}", std::process::id()));
    let out = dsan(&[
        "phantoms",
        "--out",
        out_dir.to_str().unwrap(),
        "--n",
        "2",
        "--seed",
        "5",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let labels = std::fs::read_to_string(out_dir.join("labels.csv")).unwrap();
    let rows: Vec<Vec<&str>> = labels
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(
        labels.lines().next(),
        Some("case_id,patient_id,label,infection_mask")
    );
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0][2], rows[1][2]), ("CAP", "COVID-19"));
    let recorded = json_file(&out_dir.join("phantoms.json"))["cases"].clone();
    for (row, record) in rows.into_iter().zip(recorded.as_array().unwrap()) {
        let files: Vec<(String, Vec<u8>)> = std::fs::read_dir(out_dir.join(row[0]))
            .unwrap()
            .map(|e| {
                let path = e.unwrap().path();
                (path.display().to_string(), std::fs::read(&path).unwrap())
            })
            .collect();
        let study = dsan_ct::dicom::read_study(files);
        assert!(study.skipped.is_empty(), "{:?}", study.skipped);
        assert_eq!(study.series.len(), 1);
        assert_eq!(study.default, Some(0), "the phantom series is the default");
        let volume = dsan_ct::dicom::assemble(study.series.into_iter().next().unwrap())
            .unwrap()
            .volume;
        assert_eq!(volume.dims(), [100, 256, 256]);
        let mask_bytes = std::fs::read(out_dir.join(row[3])).unwrap();
        let mask = dsan_ct::volume::read_nifti(row[3], &mask_bytes).unwrap();
        assert_eq!(mask.dims(), volume.dims());
        for a in 0..3 {
            assert!((mask.origin()[a] - volume.origin()[a]).abs() < 1e-3);
            assert!((mask.spacing()[a] - volume.spacing()[a]).abs() < 1e-6);
        }
        // Lesions are denser than lung and lie inside the lungs our own
        // segmentation finds.
        let lungs = segment_lungs(&volume, &LungMaskConfig::default()).unwrap();
        let infected: Vec<usize> = (0..mask.voxels().len())
            .filter(|&x| mask.voxels()[x] > 0)
            .collect();
        assert!(
            infected.len() > 100,
            "{}: {} infected voxels",
            row[0],
            infected.len()
        );
        let mean = infected
            .iter()
            .map(|&x| f64::from(volume.voxels()[x]))
            .sum::<f64>()
            / infected.len() as f64;
        assert!(mean > -700.0, "{}: mean lesion HU {mean}", row[0]);
        let inside = infected
            .iter()
            .filter(|&&x| lungs.mask.data()[x] != 0)
            .count();
        let share = inside as f64 / infected.len() as f64;
        // phantoms.json records each case's infected volume: the mask's.
        let voxel_ml = volume.spacing().iter().product::<f64>() / 1000.0;
        assert_eq!(record["case_id"], row[0]);
        assert_eq!(record["label"], row[2]);
        let infection_ml = record["infection_ml"].as_f64().unwrap();
        assert!(
            (infection_ml - infected.len() as f64 * voxel_ml).abs() < 1e-4 * infection_ml.max(1.0),
            "{}: recorded {infection_ml} mL, mask {} voxels",
            row[0],
            infected.len()
        );
        assert!(record["lung_ml"].as_f64().unwrap() > 1000.0);
        println!(
            "{}: lungs {:.0} mL, {} infected voxels, {:.1}% inside the lung mask",
            row[0],
            lungs.volume_ml,
            infected.len(),
            100.0 * share
        );
        assert!(share > 0.75, "{}: {share}", row[0]);
    }
    std::fs::remove_dir_all(&out_dir).unwrap();
}

/// Writes `n` small phantoms (40 slices of 96 x 96) into a fresh folder.
fn small_phantoms(name: &str, n: usize, seed: u64) -> std::path::PathBuf {
    phantoms_of(name, n, seed, [40, 96])
}

/// Writes `n` phantoms of `[slices, size]` (`dsan phantoms`) into a fresh folder.
fn phantoms_of(name: &str, n: usize, seed: u64, [slices, size]: [usize; 2]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("dsan-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (n, seed) = (n.to_string(), seed.to_string());
    let (slices, size) = (slices.to_string(), size.to_string());
    let out = dsan(&[
        "phantoms",
        "--out",
        dir.to_str().unwrap(),
        "--n",
        &n,
        "--seed",
        &seed,
        "--slices",
        &slices,
        "--size",
        &size,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    dir
}

fn json_file(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The whole site workflow on phantoms with the tiny network on Flex, the
/// default CPU backend: train, resume, evaluate on other phantoms, export,
/// load the card, predict.
#[test]
fn train_resume_eval_export_and_predict_with_the_exported_model() {
    site_workflow("cpu");
}

/// The same workflow on LibTorch's CPU backend.
#[cfg(feature = "libtorch")]
#[test]
fn libtorch_trains_resumes_evaluates_and_exports_as_flex_does() {
    site_workflow("libtorch");
}

/// Train (and resume), eval, export and predict on `backend`.
fn site_workflow(backend: &str) {
    let data = small_phantoms(&format!("train-data-{backend}"), 6, 11);
    let held_out = small_phantoms(&format!("train-held-out-{backend}"), 4, 12);
    let run = data.join("run");
    let straight = data.join("run-straight");
    let common = |epochs: &str, out: &std::path::Path| {
        vec![
            "train".to_owned(),
            "--backend".into(),
            backend.into(),
            "--data".into(),
            data.display().to_string(),
            "--preset".into(),
            "tiny".into(),
            "--epochs".into(),
            epochs.into(),
            "--batch-size".into(),
            "2".into(),
            "--learning-rate".into(),
            "1e-3".into(),
            // The cosine schedule spans --epochs, so a run resumed with more
            // epochs follows another curve by design; the constant rate lets
            // the resumed run be compared with a straight one step for step
            // (the cosine's own resume is a unit test of training::schedule).
            "--lr-schedule".into(),
            "constant".into(),
            "--patience".into(),
            "10".into(),
            "--out".into(),
            out.display().to_string(),
        ]
    };
    let run_dsan = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = dsan(&refs);
        assert!(out.status.success(), "{}", text(&out.stderr));
        out
    };
    // Two epochs, then resumed to three, equal the same three epochs run at once.
    run_dsan(common("2", &run));
    assert!(
        data.join(".dsan-cache").read_dir().unwrap().count() >= 6,
        "cases cached"
    );
    let mut resumed = common("3", &run);
    resumed.push("--resume".into());
    run_dsan(resumed);
    run_dsan(common("3", &straight));
    let log = |dir: &std::path::Path| -> Vec<String> {
        std::fs::read_to_string(dir.join("log.csv"))
            .unwrap()
            .lines()
            // Losses and AUCs, not the wall times.
            .map(|l| l.split(',').take(10).collect::<Vec<_>>().join(","))
            .collect()
    };
    assert_eq!(log(&run).len(), 4, "header and three epochs");
    assert_eq!(log(&run), log(&straight));
    // Branch B's draws follow the size-balanced design.
    let sampling = json_file(&run.join("sampling.json"));
    let cases = sampling["cases"].as_array().unwrap();
    let p_uniform: Vec<f64> = cases
        .iter()
        .map(|c| c["p_uniform"].as_f64().unwrap())
        .collect();
    let p_balanced: Vec<f64> = cases
        .iter()
        .map(|c| c["p_balanced"].as_f64().unwrap())
        .collect();
    assert!((p_uniform.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    assert!((p_balanced.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    // A different configuration refuses to resume.
    let mut changed = common("3", &run);
    changed.extend(["--resume".into(), "--attention-lambda".into(), "0".into()]);
    let refs: Vec<&str> = changed.iter().map(String::as_str).collect();
    let refused = dsan(&refs);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("another configuration"),
        "{}",
        text(&refused.stderr)
    );

    // Export, then evaluate the exported card on held-out phantoms and export again with those metrics.
    let weights = data.join("weights");
    let exported = run_dsan(vec![
        "export".into(),
        "--run".into(),
        run.display().to_string(),
        "--out".into(),
        weights.display().to_string(),
        "--name".into(),
        "test phantoms".into(),
        "--synthetic".into(),
    ]);
    let card_path = std::path::PathBuf::from(text(&exported.stdout).trim());
    assert!(
        !weights.join("models.json").exists(),
        "no --default, no index"
    );
    let eval_dir = data.join("eval");
    run_dsan(vec![
        "eval".into(),
        "--backend".into(),
        backend.into(),
        "--weights".into(),
        card_path.display().to_string(),
        "--data".into(),
        held_out.display().to_string(),
        "--out".into(),
        eval_dir.display().to_string(),
    ]);
    let metrics = json_file(&eval_dir.join("metrics.json"));
    assert_eq!(metrics["cases"], 4);
    let predictions = metrics["predictions"].as_array().unwrap();
    for p in predictions {
        let ensemble: Vec<f64> = p["ensemble"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let u = p["uniform"][1].as_f64().unwrap();
        let b = p["balanced"][1].as_f64().unwrap();
        assert!((ensemble[1] - (u + b) / 2.0).abs() < 1e-6);
        let share = p["attention_in_mask"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&share));
    }
    let auc = metrics["evaluation"]["overall"]["ensemble"]["auc"]
        .as_f64()
        .unwrap();
    assert!((0.0..=1.0).contains(&auc));
    assert!(
        std::fs::read_to_string(eval_dir.join("report.md"))
            .unwrap()
            .contains("| all | ensemble | AUC |")
    );
    for plot in ["roc.png", "calibration.png"] {
        let decoder = png::Decoder::new(std::io::BufReader::new(
            std::fs::File::open(eval_dir.join(plot)).unwrap(),
        ));
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let frame = reader.next_frame(&mut pixels).unwrap();
        assert_eq!((frame.width, frame.height), (640, 600), "{plot}");
        let dark = pixels
            .chunks(3)
            .filter(|p| p.iter().all(|&c| c < 100))
            .count();
        assert!(
            dark > 2_000,
            "{plot}: {dark} dark pixels (axes, curves and labels)"
        );
    }
    run_dsan(vec![
        "export".into(),
        "--run".into(),
        run.display().to_string(),
        "--out".into(),
        weights.display().to_string(),
        "--name".into(),
        "test phantoms".into(),
        "--synthetic".into(),
        "--metrics".into(),
        eval_dir.join("metrics.json").display().to_string(),
        "--default".into(),
    ]);
    // With --default, the card is named as the page's default.
    let index = json_file(&weights.join("models.json"));
    assert_eq!(
        index["default"].as_str(),
        card_path.file_name().and_then(|n| n.to_str())
    );
    let card = json_file(&card_path);
    assert_eq!(card["training_data"]["synthetic"], true);
    // The card names the generator and its seed (from the folder's phantoms.json).
    let description = card["training_data"]["description"].as_str().unwrap();
    assert!(
        description.contains("generated by `dsan phantoms --n 6 --seed 11 --slices 40 --size 96"),
        "{description}"
    );
    let measured: Vec<&str> = card["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["measured_on"].as_str().unwrap())
        .collect();
    assert!(
        measured.iter().any(|m| m.contains("held-out set")),
        "{measured:?}"
    );
    common::assert_card_holds_eval_figures(&card, &metrics);
    let card_auc = card["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| {
            m["name"] == "AUC (ensemble)" && m["measured_on"].as_str().unwrap().contains("held-out")
        })
        .unwrap()["value"]
        .as_f64()
        .unwrap();
    assert_eq!(card_auc, auc);
    let info = run_dsan(vec!["model-info".into(), card_path.display().to_string()]);
    assert!(text(&info.stdout).contains("verified"));
    // The exported model diagnoses a case through the page's pipeline and
    // gives the probability `dsan eval` computed for it.
    let first = predictions[0]["case_id"].as_str().unwrap();
    let predicted = run_dsan(vec![
        "predict".into(),
        "--backend".into(),
        backend.into(),
        held_out.join(first).display().to_string(),
        "--weights".into(),
        card_path.display().to_string(),
    ]);
    let diagnosis: serde_json::Value = serde_json::from_slice(&predicted.stdout).unwrap();
    let probability = diagnosis["diagnosis"]["positive_probability"]
        .as_f64()
        .unwrap();
    let evaluated = predictions[0]["ensemble"][1].as_f64().unwrap();
    assert!(
        (probability - evaluated).abs() < 1e-5,
        "{probability} vs {evaluated}"
    );
    std::fs::remove_dir_all(&data).unwrap();
    std::fs::remove_dir_all(&held_out).unwrap();
}

/// Cross-validation keeps every patient in one fold and reports each metric over the folds.
#[test]
fn cross_validation_splits_by_patient_and_summarises_the_folds() {
    let data = small_phantoms("cv-data", 6, 21);
    // Two scans per patient: rewrite labels.csv so cases 2n and 2n+1 share a patient.
    let labels = std::fs::read_to_string(data.join("labels.csv")).unwrap();
    let mut rows: Vec<String> = labels.lines().map(str::to_owned).collect();
    for (i, row) in rows.iter_mut().enumerate().skip(1) {
        let mut cells: Vec<String> = row.split(',').map(str::to_owned).collect();
        cells[1] = format!("patient-{}", (i - 1) / 2);
        *row = cells.join(",");
    }
    std::fs::write(data.join("labels.csv"), rows.join("\n") + "\n").unwrap();
    let out_dir = data.join("cv");
    let out = dsan(&[
        "cv",
        "--data",
        data.to_str().unwrap(),
        "--preset",
        "tiny",
        "--epochs",
        "1",
        "--batch-size",
        "2",
        "--folds",
        "3",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let cv = json_file(&out_dir.join("cv.json"));
    let predictions = cv["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), 6, "every case tested once");
    let mut fold_of_patient = std::collections::HashMap::new();
    for p in predictions {
        let fold = p[0].as_u64().unwrap();
        let patient = p[1]["patient_id"].as_str().unwrap().to_owned();
        assert_eq!(*fold_of_patient.entry(patient).or_insert(fold), fold);
    }
    assert_eq!(cv["per_fold"].as_array().unwrap().len(), 3);
    let summary = cv["summary"].as_array().unwrap();
    let accuracy = summary
        .iter()
        .find(|r| r["group"] == "all" && r["model"] == "ensemble" && r["metric"] == "accuracy")
        .unwrap();
    assert_eq!(accuracy["folds"], 3);
    let per_fold: Vec<f64> = cv["per_fold"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["overall"]["ensemble"]["accuracy"].as_f64().unwrap())
        .collect();
    let mean = per_fold.iter().sum::<f64>() / 3.0;
    assert!((accuracy["mean"].as_f64().unwrap() - mean).abs() < 1e-12);
    for fold in 1..=3 {
        assert!(out_dir.join(format!("fold-{fold}/best.mpk")).exists());
    }
    std::fs::remove_dir_all(&data).unwrap();
}

/// A generated phantom read by pydicom (the independent reader, installed by
/// tests/dev.sh) and by our reader: same class, geometry and HU, voxel for voxel.
#[test]
fn phantom_dicom_round_trips_through_pydicom() {
    let data = small_phantoms("pydicom", 1, 31);
    let case = data.join("phantom-31-0000");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pydicom_series.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&case)
        .output()
        .unwrap();
    assert!(out.status.success(), "pydicom: {}", text(&out.stderr));
    let oracle: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        oracle["sop_class"], "1.2.840.10008.5.1.4.1.1.2",
        "CT Image Storage"
    );
    assert_eq!(oracle["series_uids"].as_array().unwrap().len(), 1);
    let files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&case)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            (path.display().to_string(), std::fs::read(&path).unwrap())
        })
        .collect();
    let study = dsan_ct::dicom::read_study(files);
    let volume = dsan_ct::dicom::assemble(study.series.into_iter().next().unwrap())
        .unwrap()
        .volume;
    let dims: Vec<u64> = volume.dims().iter().map(|&d| d as u64).collect();
    assert_eq!(oracle["dims"], serde_json::json!(dims));
    let f = |v: &serde_json::Value| v.as_f64().unwrap();
    assert!((f(&oracle["pixel_spacing"][0]) - volume.spacing()[1]).abs() < 1e-9);
    assert!((f(&oracle["pixel_spacing"][1]) - volume.spacing()[2]).abs() < 1e-9);
    assert!((f(&oracle["slice_step"]) - volume.spacing()[0]).abs() < 1e-6);
    for a in 0..3 {
        assert!((f(&oracle["origin"][a]) - volume.origin()[a]).abs() < 1e-6);
    }
    let sum: f64 = volume.voxels().iter().map(|&v| f64::from(v)).sum();
    assert_eq!(sum, f(&oracle["hu_sum"]), "HU sum");
    let min = volume.voxels().iter().copied().min().unwrap();
    let max = volume.voxels().iter().copied().max().unwrap();
    assert_eq!(
        (f64::from(min), f64::from(max)),
        (f(&oracle["hu_min"]), f(&oracle["hu_max"]))
    );
    for (n, [k, j, i]) in [[0, 0, 0], [10, 40, 30], [20, 48, 48], [39, 95, 95]]
        .into_iter()
        .enumerate()
    {
        assert_eq!(
            f64::from(volume.get(k, j, i).unwrap()),
            f(&oracle["samples"][n]),
            "voxel {k},{j},{i}"
        );
    }
    std::fs::remove_dir_all(&data).unwrap();
}

/// Three classes: normal phantoms come without a mask, and a three-class
/// model trains on them and names its classes in the card.
#[test]
fn three_class_phantoms_train_a_three_class_model() {
    let dir = std::env::temp_dir().join(format!("dsan-three-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let written = dsan(&[
        "phantoms",
        "--out",
        dir.to_str().unwrap(),
        "--n",
        "6",
        "--seed",
        "41",
        "--slices",
        "40",
        "--size",
        "96",
        "--classes",
        "3",
    ]);
    assert!(written.status.success(), "{}", text(&written.stderr));
    let labels = std::fs::read_to_string(dir.join("labels.csv")).unwrap();
    let rows: Vec<Vec<&str>> = labels
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let names: Vec<&str> = rows.iter().map(|r| r[2]).collect();
    assert_eq!(
        names,
        ["CAP", "COVID-19", "normal", "CAP", "COVID-19", "normal"]
    );
    assert!(
        rows.iter().all(|r| (r[2] == "normal") == r[3].is_empty()),
        "{labels}"
    );
    let run = dir.join("run");
    let trained = dsan(&[
        "train",
        "--data",
        dir.to_str().unwrap(),
        "--preset",
        "tiny",
        "--classes",
        "CAP,COVID-19,normal",
        "--epochs",
        "1",
        "--batch-size",
        "2",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(trained.status.success(), "{}", text(&trained.stderr));
    let weights = dir.join("weights");
    let exported = dsan(&[
        "export",
        "--run",
        run.to_str().unwrap(),
        "--out",
        weights.to_str().unwrap(),
        "--name",
        "three",
        "--synthetic",
    ]);
    assert!(exported.status.success(), "{}", text(&exported.stderr));
    let card = json_file(std::path::Path::new(text(&exported.stdout).trim()));
    assert_eq!(
        card["classes"],
        serde_json::json!(["CAP", "COVID-19", "normal"])
    );
    assert_eq!(card["architecture"]["num_classes"], 3);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `dsan train` of the tiny network for one epoch on a data folder in
/// `layout`, with `extra` options; the run must succeed. Returns its output
/// and the cases it trained and validated on, sorted.
fn train_folder_layout(
    layout: &str,
    data: &std::path::Path,
    run: &std::path::Path,
    cache: &std::path::Path,
    extra: &[&str],
) -> (Output, Vec<String>) {
    let mut args = vec![
        "train",
        "--layout",
        layout,
        "--data",
        data.to_str().unwrap(),
        "--cache",
        cache.to_str().unwrap(),
        "--preset",
        "tiny",
        "--epochs",
        "1",
        "--batch-size",
        "2",
        "--val-fraction",
        "0.5",
        "--out",
        run.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = dsan(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = json_file(&run.join("data.json"));
    let mut cases: Vec<String> = ["train_cases", "val_cases"]
        .iter()
        .flat_map(|k| {
            summary[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_owned())
        })
        .collect();
    cases.sort();
    (out, cases)
}

/// COVID-CT-MD's own folder layout (the real sample series in ../shared/data):
/// the class comes from the folder, normal lungs are left out of the paper's
/// two-class task, and the four pneumonia series train a model.
#[test]
fn covid_ct_md_folders_train_without_a_labels_file() {
    let data = shared_data().join("ct-real/covid-ct-md");
    let scratch = std::env::temp_dir().join(format!("dsan-ctmd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let run = scratch.join("run");
    let cache = scratch.join("cache");
    let (out, cases) = train_folder_layout("covid-ct-md", &data, &run, &cache, &[]);
    assert!(
        text(&out.stderr).contains("left out 2 case(s) labelled \"normal\""),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        cases,
        [
            "full/CAP/cap002",
            "full/COVID-19/P002",
            "subsampled-every-4th/CAP/cap001",
            "subsampled-every-4th/COVID-19/P001"
        ]
    );
    // No masks in this dataset: every case is in branch B's "unknown size" group of its class.
    let sampling = json_file(&run.join("sampling.json"));
    for case in sampling["cases"].as_array().unwrap() {
        assert_eq!(case["band"], "Unknown");
    }
    assert_eq!(
        cache.read_dir().unwrap().count(),
        4,
        "cached outside the read-only data"
    );
    std::fs::remove_dir_all(&scratch).unwrap();
}

/// Writes the DICOM series `series` as slice images (`extension`: png or jpg)
/// into `out` with pydicom and Pillow, as CC-CCII stores its scans; returns
/// the spacing for `--image-spacing`.
fn slice_images(series: &std::path::Path, out: &std::path::Path, extension: &str) -> String {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/slice_images.py");
    let run = Command::new("python3")
        .arg(&script)
        .arg(series)
        .arg(out)
        .arg(extension)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "slice_images.py: {}",
        text(&run.stderr)
    );
    let written: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    written["spacing"].as_str().unwrap().to_owned()
}

fn lung_mask(dir: &std::path::Path) -> dsan_ct::volume::Volume {
    let bytes = std::fs::read(dir.join("lung-mask.nii.gz")).unwrap();
    dsan_ct::volume::read_nifti("lung-mask.nii.gz", &bytes).unwrap()
}

/// A real CT written as 8-bit lung-window PNG slices (head first, as
/// CC-CCII's are) is read back in HU on the same grid: the diagnosis finds the
/// same lungs as from the DICOM series; with the slice order turned round it
/// does not.
#[test]
fn slice_images_give_the_lungs_of_the_dicom_series_they_were_made_from() {
    let series = shared_data().join("ct-real/covid-ct-md/subsampled-every-4th/CAP/cap001");
    let scratch = std::env::temp_dir().join(format!("dsan-slice-images-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let images = scratch.join("images");
    let spacing = slice_images(&series, &images, "png");
    let predict = |input: &std::path::Path, name: &str, extra: &[&str]| {
        let out_dir = scratch.join(name);
        let mut args = vec![
            "predict",
            input.to_str().unwrap(),
            "--preset",
            "tiny",
            "--out",
            out_dir.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = dsan(&args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (report, lung_mask(&out_dir))
    };
    let (dicom, dicom_mask) = predict(&series, "dicom", &[]);
    let (png, png_mask) = predict(&images, "png", &["--image-spacing", &spacing]);
    let (turned, turned_mask) = predict(
        &images,
        "turned",
        &["--image-spacing", &spacing, "--image-first", "feet"],
    );
    assert_eq!(png_mask.dims(), dicom_mask.dims());
    let dice = |a: &dsan_ct::volume::Volume, b: &dsan_ct::volume::Volume| {
        let (mut both, mut total) = (0usize, 0usize);
        for (&x, &y) in a.voxels().iter().zip(b.voxels()) {
            both += usize::from(x > 0 && y > 0);
            total += usize::from(x > 0) + usize::from(y > 0);
        }
        2.0 * both as f64 / total as f64
    };
    let same = dice(&png_mask, &dicom_mask);
    let flipped = dice(&turned_mask, &dicom_mask);
    assert!(same >= 0.995, "Dice of the lung masks {same}");
    assert!(flipped < 0.9, "Dice with the slices turned round {flipped}");
    let ml = |r: &serde_json::Value| r["diagnosis"]["lung_volume_ml"].as_f64().unwrap();
    assert!(
        (ml(&png) / ml(&dicom) - 1.0).abs() < 0.005,
        "{} vs {} mL",
        ml(&png),
        ml(&dicom)
    );
    assert!(ml(&turned) > 0.0);
    let p = |r: &serde_json::Value| r["diagnosis"]["positive_probability"].as_f64().unwrap();
    assert!(
        (p(&png) - p(&dicom)).abs() < 1e-3,
        "{} vs {}",
        p(&png),
        p(&dicom)
    );
    let said = png.to_string();
    assert!(said.contains("assumed window -600 / 1500 HU"), "{said}");
    std::fs::remove_dir_all(&scratch).unwrap();
}

/// CC-CCII's own layout, `<NCP|CP|Normal>/<patient>/<scan>/` folders of PNG
/// or JPEG slices, trains a model without a labels file.
#[test]
fn cc_ccii_folders_of_slice_images_train_without_a_labels_file() {
    let phantoms = small_phantoms("ccii-source", 4, 41);
    let data = std::env::temp_dir().join(format!("dsan-ccii-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let labels = std::fs::read_to_string(phantoms.join("labels.csv")).unwrap();
    let mut expected = Vec::new();
    let mut spacing = String::new();
    for (n, line) in labels.lines().skip(1).enumerate() {
        let fields: Vec<&str> = line.split(',').collect();
        let class = if fields[2] == "COVID-19" { "NCP" } else { "CP" };
        let case = format!("{class}/{}/scan1", fields[1]);
        let extension = if n == 0 { "jpg" } else { "png" };
        spacing = slice_images(&phantoms.join(fields[0]), &data.join(&case), extension);
        expected.push(case);
    }
    let run = data.join("run");
    let cache = data.join("cache");
    let (_, cases) = train_folder_layout(
        "cc-ccii",
        &data,
        &run,
        &cache,
        &["--image-spacing", &spacing],
    );
    expected.sort();
    assert_eq!(cases, expected);
    std::fs::remove_dir_all(&data).unwrap();
    std::fs::remove_dir_all(&phantoms).unwrap();
}

/// Data-parallel training needs numbered devices: on the CPU backend (one
/// device on every core) `--devices 2` is refused with the reason.
#[test]
fn several_devices_are_refused_on_the_cpu_backend() {
    let data = small_phantoms("devices", 2, 51);
    let run = data.join("run");
    let out = dsan(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--preset",
        "tiny",
        "--epochs",
        "1",
        "--devices",
        "2",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("--devices 2") && err.contains("no devices numbered 0 to 1"),
        "{err}"
    );
    assert!(!run.join("best.mpk").exists());
    std::fs::remove_dir_all(&data).unwrap();
}

/// The shipped default model's record of the held-out phantoms
/// (`train/default-model/eval-model.json`, what its card's figures come
/// from) is what this build computes: its first held-out phantoms, made again
/// with the generator command the card names, get the record's probabilities
/// from `dsan eval` of the default card on the CPU.
#[test]
fn the_default_models_held_out_record_is_what_dsan_eval_gives() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let weights = root.join("model-weights");
    let index = json_file(&weights.join("models.json"));
    let card_path = weights.join(index["default"].as_str().expect("a default model ships"));
    let card = json_file(&card_path);
    let settings = "--seed 12 --slices 48 --size 160 --classes 2";
    assert!(
        card["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["measured_on"].as_str().unwrap().contains(settings)),
        "the card's held-out set is `dsan phantoms ... {settings}`"
    );
    let data = phantoms_of("held-out", 4, 12, [48, 160]);
    let out = data.join("eval");
    let eval = dsan(&[
        "eval",
        "--weights",
        card_path.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(eval.status.success(), "{}", text(&eval.stderr));
    let ours = json_file(&out.join("metrics.json"));
    let record = json_file(&root.join("train/default-model/eval-model.json"));
    let recorded = record["predictions"].as_array().unwrap();
    assert_eq!(recorded.len(), 200);
    let ours = ours["predictions"].as_array().unwrap();
    assert_eq!(ours.len(), 4);
    for case in ours {
        let id = case["case_id"].as_str().unwrap();
        let theirs = recorded
            .iter()
            .find(|r| r["case_id"] == id)
            .unwrap_or_else(|| panic!("{id} is in the record"));
        for key in ["uniform", "balanced", "ensemble"] {
            let (a, b) = (
                case[key][1].as_f64().unwrap(),
                theirs[key][1].as_f64().unwrap(),
            );
            assert!(
                (a - b).abs() < 1e-4,
                "{id} {key}: {a} here, {b} in the record"
            );
        }
        assert_eq!(case["label"], theirs["label"]);
    }
    std::fs::remove_dir_all(&data).unwrap();
}
