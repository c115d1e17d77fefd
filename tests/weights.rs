//! Saving and loading DSAN weights with their model card.

#![allow(
    clippy::unwrap_used,
    reason = "a failed unwrap is a failed test, with its message"
)]

use dsan_ct::CpuBackend;
use dsan_ct::model::{DsanConfig, synthetic_input};
use dsan_ct::probe::{seeded_cpu_model, seeded_model};
use dsan_ct::weights::{
    CARD_FORMAT_VERSION, MODEL_INDEX_FILE, ModelCard, ModelIndex, Preprocessing, TrainingData,
    WeightsError, encode_weights, load_model_files, load_weights, parse_card, save_model_files,
};

type B = CpuBackend;

fn logits(model: &dsan_ct::model::Dsan<B>, config: &DsanConfig) -> Vec<f32> {
    let device = Default::default();
    let out = model.forward(synthetic_input::<B>(config.input, &device));
    let mut v = out.uniform.logits.into_data().into_vec::<f32>().unwrap();
    v.extend(out.balanced.logits.into_data().into_vec::<f32>().unwrap());
    v
}

fn card_for(config: &DsanConfig, seed: u64) -> (ModelCard, Vec<u8>) {
    let device = Default::default();
    let model = seeded_model::<B>(config, seed, &device).unwrap();
    let (weights, bytes) = encode_weights(model, "test.mpk").unwrap();
    let card = ModelCard {
        format_version: CARD_FORMAT_VERSION,
        name: "test".into(),
        version: "0.0.1".into(),
        architecture: config.clone(),
        preprocessing: Preprocessing::default(),
        classes: vec!["CAP".into(), "COVID-19".into()],
        weights,
        training_data: TrainingData {
            description: "untrained, seeded".into(),
            synthetic: true,
            cases_per_class: vec![],
        },
        metrics: vec![],
        intended_use: "tests".into(),
        limitations: "random weights".into(),
    };
    (card, bytes)
}

#[test]
fn save_then_load_gives_bit_identical_logits() {
    let device = Default::default();
    let config = DsanConfig::tiny();
    let (card, bytes) = card_for(&config, 1);
    let first = load_weights::<B>(&card, &bytes, &device).unwrap();

    // Saving a loaded model reproduces the file byte for byte ...
    let (entry, again) = encode_weights(first.clone(), "test.mpk").unwrap();
    assert_eq!(again, bytes);
    assert_eq!(entry, card.weights);
    // ... and loading it again gives bit-identical outputs.
    let second = load_weights::<B>(&card, &again, &device).unwrap();
    assert_eq!(logits(&first, &config), logits(&second, &config));
}

#[test]
fn half_precision_stays_close_to_the_f32_model() {
    let device = Default::default();
    let config = DsanConfig::tiny();
    let original = seeded_cpu_model(&config, 77);
    let expected = logits(&original, &config);
    let (entry, bytes) = encode_weights(original, "w.mpk").unwrap();
    assert!(
        entry.bytes < 2 * 2 * entry.parameter_count + 64 * 1024,
        "f16 storage"
    );
    let loaded = dsan_ct::weights::decode_weights::<B>(&config, &entry, &bytes, &device).unwrap();
    for (a, b) in expected.iter().zip(logits(&loaded, &config)) {
        assert!((a - b).abs() < 2e-2, "{a} vs {b}");
    }
}

#[test]
fn a_corrupted_byte_is_refused_with_the_checksum_error() {
    let device = Default::default();
    let (card, mut bytes) = card_for(&DsanConfig::tiny(), 2);
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    match load_weights::<B>(&card, &bytes, &device) {
        Err(WeightsError::Checksum {
            file,
            expected,
            actual,
        }) => {
            assert_eq!(file, "test.mpk");
            assert_eq!(expected, card.weights.sha256);
            assert_ne!(actual, expected);
        }
        other => panic!("expected a checksum error, got {other:?}"),
    }
    bytes.pop();
    assert!(matches!(
        load_weights::<B>(&card, &bytes, &device),
        Err(WeightsError::Size { .. })
    ));
}

#[test]
fn a_card_with_another_architecture_is_refused() {
    let device = Default::default();
    let (mut card, bytes) = card_for(&DsanConfig::tiny(), 3);
    card.architecture = card.architecture.clone().with_base_width(8);
    let err = load_weights::<B>(&card, &bytes, &device).unwrap_err();
    assert!(
        matches!(err, WeightsError::CardInconsistent { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("test.mpk"));

    // Weights of another network under a card whose fingerprints were copied
    // from it: the checksums pass, the tensors do not fit.
    let (other, other_bytes) = card_for(&DsanConfig::tiny().with_layers([2, 1, 1, 1]), 4);
    let (mut card, _) = card_for(&DsanConfig::tiny(), 3);
    card.weights.sha256 = other.weights.sha256.clone();
    card.weights.bytes = other.weights.bytes;
    let err = load_weights::<B>(&card, &other_bytes, &device).unwrap_err();
    assert!(matches!(err, WeightsError::Layout { .. }), "{err}");
}

#[test]
fn cards_are_checked_when_parsed() {
    let (card, _) = card_for(&DsanConfig::tiny(), 5);
    let json = serde_json::to_vec(&card).unwrap();
    assert_eq!(parse_card("card.json", &json).unwrap(), card);

    let err = parse_card("card.json", b"{ not json").unwrap_err();
    assert!(matches!(err, WeightsError::CardParse { .. }));
    assert!(err.to_string().starts_with("model card card.json"));

    let mut newer = card.clone();
    newer.format_version = CARD_FORMAT_VERSION + 1;
    let err = parse_card("card.json", &serde_json::to_vec(&newer).unwrap()).unwrap_err();
    assert!(matches!(err, WeightsError::CardVersion { .. }));

    let mut three = card.clone();
    three.classes.push("Normal".into());
    let err = parse_card("card.json", &serde_json::to_vec(&three).unwrap()).unwrap_err();
    assert!(matches!(err, WeightsError::CardInconsistent { .. }));

    let mut broken = card;
    broken.architecture.layers = [0, 1, 1, 1];
    let err = parse_card("card.json", &serde_json::to_vec(&broken).unwrap()).unwrap_err();
    assert!(matches!(err, WeightsError::Architecture { .. }));
}

#[test]
fn files_round_trip_through_a_folder() {
    let device = Default::default();
    let config = DsanConfig::tiny();
    let (card, bytes) = card_for(&config, 6);
    let dir = std::env::temp_dir().join(format!("dsan-weights-{}", std::process::id()));
    let card_path = save_model_files(&dir, "card.json", &card, &bytes).unwrap();
    let (read, model) = load_model_files::<B>(&card_path, &device).unwrap();
    assert_eq!(read, card);
    let direct = load_weights::<B>(&card, &bytes, &device).unwrap();
    assert_eq!(logits(&model, &config), logits(&direct, &config));

    std::fs::remove_file(dir.join("test.mpk")).unwrap();
    let err = load_model_files::<B>(&card_path, &device).unwrap_err();
    assert!(matches!(err, WeightsError::Io { .. }), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The index of the models bundled with the page (`model-weights/models.json`)
/// parses, and the default model it names, if any, loads with every check:
/// a shipped default cannot be broken unnoticed.
#[test]
fn the_bundled_model_index_parses_and_its_default_loads() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("model-weights");
    let index: ModelIndex =
        serde_json::from_slice(&std::fs::read(dir.join(MODEL_INDEX_FILE)).unwrap()).unwrap();
    if let Some(card) = index.default {
        let (card, _) = load_model_files::<B>(&dir.join(&card), &Default::default()).unwrap();
        assert!(
            card.training_data.synthetic,
            "the default model is trained on phantoms"
        );
    }
}

/// Model files from outside (a site's own model is input too) that describe
/// more than this software runs are refused with the reason when the card is
/// parsed or the record's header read, before the network or its tensors are
/// allocated: an absurd input grid or layer count, a weights size that cannot
/// be a record of the card's architecture, and a record whose header declares
/// tensors far larger than its bytes.
#[test]
fn hostile_model_files_are_refused_before_anything_is_allocated() {
    let (card, bytes) = card_for(&DsanConfig::tiny(), 8);
    let refusal = |card: &ModelCard| {
        parse_card("card.json", &serde_json::to_vec(card).unwrap())
            .unwrap_err()
            .to_string()
    };

    let mut grid = card.clone();
    grid.architecture.input = [64, 100_000, 100_000];
    let reason = refusal(&grid);
    assert!(
        reason.contains("input is 100000, more than the 1024"),
        "{reason}"
    );

    let mut deep = card.clone();
    deep.architecture.layers = [3, 4, 1_000_000_000, 3];
    let reason = refusal(&deep);
    assert!(reason.contains("layers is 1000000000"), "{reason}");

    let mut swapped = card.clone();
    swapped.architecture = DsanConfig::web_default();
    let reason = refusal(&swapped);
    assert!(
        reason.contains(&format!("{} bytes", card.weights.bytes))
            && reason.contains("half-precision record of its architecture"),
        "{reason}"
    );

    let oversized = vec![b' '; (dsan_ct::weights::MAX_CARD_BYTES + 1) as usize];
    let reason = parse_card("card.json", &oversized).unwrap_err().to_string();
    assert!(reason.contains("more than the 1048576"), "{reason}");

    // The stem's shape [4, 1, 7, 7, 7] (a MessagePack array of five small
    // integers) rewritten as [2^40, 2^40]: the file stays valid MessagePack.
    let stem = [0x95, 4, 1, 7, 7, 7];
    let at = bytes
        .windows(stem.len())
        .position(|w| w == stem)
        .expect("the stem's shape in the record");
    let mut huge = vec![0x92];
    for _ in 0..2 {
        huge.push(0xcf);
        huge.extend((1u64 << 40).to_be_bytes());
    }
    let hostile = [&bytes[..at], &huge, &bytes[at + stem.len()..]].concat();
    let err =
        load_weights::<B>(&declaring(&card, &hostile), &hostile, &Default::default()).unwrap_err();
    assert!(matches!(err, WeightsError::Decode { .. }), "{err}");
    assert!(
        err.to_string().contains(
            "an F16 tensor of shape [1099511627776, 1099511627776] is stored in 2744 bytes"
        ),
        "{err}"
    );
}

/// The weights of a `load_model` fuzz input (tests/fuzz): the part after its
/// first NUL byte (the card comes before it).
fn fuzz_weights(input: &[u8]) -> &[u8] {
    let split = input.iter().position(|&b| b == 0).unwrap();
    &input[split + 1..]
}

/// `card`'s entry rewritten for `bytes`, as a hostile card would declare them.
fn declaring(card: &ModelCard, bytes: &[u8]) -> ModelCard {
    let mut card = card.clone();
    card.weights.bytes = bytes.len() as u64;
    card.weights.sha256 = dsan_ct::weights::sha256_hex(bytes);
    card
}

/// A record holding a parameter id that Burn's `ParamId::deserialize` panics
/// on is refused with the reason before Burn reads it: the input the
/// `load_model` fuzz target found (tests/fixtures/fuzz/load_model/, the tiny
/// network's record with an id mutated), and an id whose last base32 digit
/// sets bits past the 8 bytes an id holds.
#[test]
fn a_parameter_id_burn_cannot_read_is_refused() {
    let (card, bytes) = card_for(&DsanConfig::tiny(), 9);
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz/load_model");
    let mut inputs = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        inputs.push(std::fs::read(entry.unwrap().path()).unwrap());
    }
    assert!(
        !inputs.is_empty(),
        "no regression input in {}",
        dir.display()
    );
    let mut records: Vec<Vec<u8>> = inputs.iter().map(|i| fuzz_weights(i).to_vec()).collect();
    // The first id (13 base32 digits after the key "id") ending in "v", 31.
    let key = [0xa2, b'i', b'd', 0xad];
    let at = bytes.windows(4).position(|w| w == key).unwrap() + key.len();
    let mut edited = bytes.clone();
    edited[at + 12] = b'v';
    records.push(edited);
    for record in records {
        let err = load_weights::<B>(&declaring(&card, &record), &record, &Default::default())
            .unwrap_err();
        assert!(matches!(err, WeightsError::Decode { .. }), "{err}");
        assert!(
            err.to_string().contains("a parameter id Burn cannot read"),
            "{err}"
        );
    }
}
