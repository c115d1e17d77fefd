//! Helpers shared by the integration tests.

#![allow(dead_code, reason = "each test crate uses a subset of these helpers")]

use std::path::PathBuf;

/// `shared/data` beside the clone (or `$DSAN_SHARED_DATA`): the real test data.
pub fn shared_data() -> PathBuf {
    let beside_clone = || {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .map(|dir| dir.join("shared/data"))
            .find(|dir| dir.is_dir())
    };
    let dir = std::env::var_os("DSAN_SHARED_DATA")
        .map(PathBuf::from)
        .or_else(beside_clone);
    match dir {
        Some(dir) if dir.is_dir() => dir,
        _ => panic!("shared test data not found beside the clone (set DSAN_SHARED_DATA)"),
    }
}

/// `(name, bytes)` of every file in `dir` under the shared data, sorted by name.
pub fn read_dir(dir: &str) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(shared_data().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// A deterministic permutation of `items` (xorshift; no rand dependency).
pub fn shuffled<T>(mut items: Vec<T>, seed: u64) -> Vec<T> {
    let mut state = seed.max(1);
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        items.swap(i, (state % (i as u64 + 1)) as usize);
    }
    items
}

/// The default series of a folder under the shared data, assembled into a volume.
pub fn read_volume(dir: &str) -> dsan_ct::volume::Volume {
    let study = dsan_ct::dicom::read_study(read_dir(dir));
    let index = study
        .default
        .unwrap_or_else(|| panic!("{dir}: no default series"));
    let series = study.series.into_iter().nth(index).unwrap();
    dsan_ct::dicom::assemble(series).unwrap().volume
}

/// Checks that every held-out figure in `card` (a model card as JSON) is the
/// number `dsan eval` wrote in `metrics` (its metrics.json): each overall
/// metric of the three models, the attention share, the small-infection
/// sensitivities, and their 95 % intervals; none typed by hand.
pub fn assert_card_holds_eval_figures(card: &serde_json::Value, metrics: &serde_json::Value) {
    let overall = &metrics["evaluation"]["overall"];
    // The small band, where it holds positive cases.
    let small = metrics["evaluation"]["by_size"]
        .as_array()
        .unwrap()
        .iter()
        .find(|band| band[0] == "Small")
        .map(|band| band[1].clone())
        .filter(|band| band["ci95"]["ensemble"]["sensitivity"].is_array());
    let held_out: Vec<&serde_json::Value> = card["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| {
            m["measured_on"]
                .as_str()
                .unwrap()
                .starts_with("held-out set")
        })
        .collect();
    let expected = 16 + if small.is_some() { 3 } else { 0 };
    assert_eq!(
        held_out.len(),
        expected,
        "5 metrics x 3 models, attention in mask, small-infection sensitivity x 3"
    );
    for m in held_out {
        let name = m["name"].as_str().unwrap();
        let on = m["measured_on"].as_str().unwrap();
        assert!(
            on.contains(&format!("({} cases)", metrics["cases"])),
            "{on}"
        );
        let (metric, model) = name.trim_end_matches(')').split_once(" (").unwrap();
        let (group, metric) = match metric.strip_suffix(" on small infections") {
            Some(metric) => (small.clone().unwrap(), metric),
            None => (overall.clone(), metric),
        };
        let model = match model {
            "ensemble" => "ensemble",
            "branch U" => "uniform",
            "branch B" => "balanced",
            other => panic!("model {other}"),
        };
        if metric == "attention in mask" {
            assert_eq!(m["value"], group["attention_in_mask"], "{name}");
            continue;
        }
        let key = match metric {
            "AUC" => "auc",
            "F1" => "f1",
            other => other,
        };
        assert_eq!(m["value"], group[model][key], "{name}");
        let interval = &group["ci95"][model][key];
        assert!(interval.is_array(), "{name} has its interval");
        assert_eq!(&m["ci95"], interval, "{name}");
    }
}
