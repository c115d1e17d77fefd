//! Encoding a [`Dsan`] as a half-precision Burn record, and loading one back
//! after checking it against its model card.

use burn::prelude::*;
use burn::record::{HalfPrecisionSettings, NamedMpkBytesRecorder, Recorder};

use super::card::{CARD_FORMAT_VERSION, MAX_CARD_BYTES, ModelCard, WEIGHTS_FORMAT, WeightsFile};
use super::error::WeightsError;
use super::layout::{TensorLayout, sha256_hex};
use crate::model::{Dsan, DsanConfig};

/// Burn's named MessagePack recorder, storing floats as f16.
type HalfRecorder = NamedMpkBytesRecorder<HalfPrecisionSettings>;

/// Encodes `model` as the bytes of a weights file called `file_name`, and the
/// card entry that describes them. Reads every tensor synchronously: call it
/// on a CPU backend or natively, never on WebGPU.
pub fn encode_weights<B: Backend>(
    model: Dsan<B>,
    file_name: &str,
) -> Result<(WeightsFile, Vec<u8>), WeightsError> {
    let layout = TensorLayout::of::<B, _>(&model);
    let parameter_count = model.num_params() as u64;
    let bytes =
        Recorder::<B>::record(&HalfRecorder::new(), model.into_record(), ()).map_err(|e| {
            WeightsError::Encode {
                file: file_name.to_owned(),
                reason: e.to_string(),
            }
        })?;
    let entry = WeightsFile {
        file: file_name.to_owned(),
        format: WEIGHTS_FORMAT.to_owned(),
        bytes: bytes.len() as u64,
        sha256: sha256_hex(&bytes),
        parameter_count,
        layout_sha256: layout.sha256(),
    };
    Ok((entry, bytes))
}

/// Refuses a model card file of `bytes` bytes when that is more than
/// [`MAX_CARD_BYTES`]: the check [`parse_card`] starts with, for a caller
/// that knows the size before reading the file (a file picked in the page).
pub fn check_card_size(file: &str, bytes: u64) -> Result<(), WeightsError> {
    if bytes > MAX_CARD_BYTES {
        return Err(WeightsError::CardParse {
            file: file.to_owned(),
            reason: format!("{bytes} bytes, more than the {MAX_CARD_BYTES} a model card may have"),
        });
    }
    Ok(())
}

/// Parses and checks a model card: format version, architecture, classes,
/// weights format and layout fingerprint against this build's network.
///
/// Refuses, before anything is allocated for the model, a card of more than
/// [`MAX_CARD_BYTES`], an architecture past [`DsanConfig::validate`]'s limits
/// and a weights size that cannot be a half-precision record of the
/// architecture (fewer than 2 bytes per weight, or more than 4 per weight
/// plus a MiB of names).
pub fn parse_card(file: &str, json: &[u8]) -> Result<ModelCard, WeightsError> {
    check_card_size(file, json.len() as u64)?;
    let card: ModelCard = serde_json::from_slice(json).map_err(|e| WeightsError::CardParse {
        file: file.to_owned(),
        reason: e.to_string(),
    })?;
    if card.format_version != CARD_FORMAT_VERSION {
        return Err(WeightsError::CardVersion {
            file: file.to_owned(),
            found: card.format_version,
            supported: CARD_FORMAT_VERSION,
        });
    }
    card.architecture
        .validate()
        .map_err(|source| WeightsError::Architecture {
            file: file.to_owned(),
            source,
        })?;
    let inconsistent = |reason: String| WeightsError::CardInconsistent {
        file: file.to_owned(),
        reason,
    };
    if card.classes.len() != card.architecture.num_classes {
        return Err(inconsistent(format!(
            "{} class names for a {}-class network",
            card.classes.len(),
            card.architecture.num_classes
        )));
    }
    if card.weights.format != WEIGHTS_FORMAT {
        return Err(inconsistent(format!(
            "weights format {:?} is not supported (this build reads {WEIGHTS_FORMAT:?})",
            card.weights.format
        )));
    }
    let weights = card.architecture.weight_count();
    let (least, most) = (2 * weights, 4 * weights + (1 << 20));
    if !(least..=most).contains(&card.weights.bytes) {
        return Err(inconsistent(format!(
            "its weights file {} is said to have {} bytes, but a half-precision record of its \
             architecture ({weights} weights) has {least} to {most}",
            card.weights.file, card.weights.bytes
        )));
    }
    Ok(card)
}

/// Loads the weights `bytes` described by `card` onto `device`.
///
/// Refuses, with the reason, bytes whose size or SHA-256 differ from the
/// card, a card whose layout fingerprint does not match its architecture, and
/// a record whose tensors do not fit the network.
pub fn load_weights<B: Backend>(
    card: &ModelCard,
    bytes: &[u8],
    device: &B::Device,
) -> Result<Dsan<B>, WeightsError> {
    decode_weights(&card.architecture, &card.weights, bytes, device)
}

/// Refuses weights of `bytes` bytes when their card says another size: the
/// first check of [`check_bytes`], for a caller that knows the size before
/// reading the file (a file picked in the page is not read when it is wrong).
pub fn check_size(entry: &WeightsFile, bytes: u64) -> Result<(), WeightsError> {
    if bytes != entry.bytes {
        return Err(WeightsError::Size {
            file: entry.file.clone(),
            expected: entry.bytes,
            actual: bytes,
        });
    }
    Ok(())
}

/// Checks that weights `bytes` have the size and SHA-256 their card entry
/// `entry` records (the part of [`load_weights`]' checks that needs no network).
pub fn check_bytes(entry: &WeightsFile, bytes: &[u8]) -> Result<(), WeightsError> {
    check_size(entry, bytes.len() as u64)?;
    let actual = sha256_hex(bytes);
    if actual != entry.sha256 {
        return Err(WeightsError::Checksum {
            file: entry.file.clone(),
            expected: entry.sha256.clone(),
            actual,
        });
    }
    Ok(())
}

/// Decodes weights `bytes` for the network `architecture`, after checking them
/// against their card entry `entry` (see [`load_weights`]).
pub fn decode_weights<B: Backend>(
    architecture: &DsanConfig,
    entry: &WeightsFile,
    bytes: &[u8],
    device: &B::Device,
) -> Result<Dsan<B>, WeightsError> {
    check_bytes(entry, bytes)?;
    let file = entry.file.clone();
    let model = architecture.init::<B>(device);
    let expected = TensorLayout::of::<B, _>(&model);
    if expected.sha256() != entry.layout_sha256 {
        return Err(WeightsError::CardInconsistent {
            file,
            reason: "the layout fingerprint does not match the architecture; the card was \
                     edited or written by an incompatible version"
                .to_owned(),
        });
    }
    let stored = TensorLayout::stored_shapes(bytes).map_err(|reason| WeightsError::Decode {
        file: file.clone(),
        reason,
    })?;
    if let Some(reason) = expected.mismatch_with(&stored) {
        return Err(WeightsError::Layout { file, reason });
    }
    let record =
        Recorder::<B>::load(&HalfRecorder::new(), bytes.to_vec(), device).map_err(|e| {
            WeightsError::Decode {
                file: file.clone(),
                reason: e.to_string(),
            }
        })?;
    Ok(model.load_record(record))
}
