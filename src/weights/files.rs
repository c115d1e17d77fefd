//! Model cards and weights on disk (native only: `train` and the CLI).

use std::fs;
use std::path::{Path, PathBuf};

use burn::prelude::*;

use super::card::ModelCard;
use super::error::WeightsError;
use super::record::{load_weights, parse_card};
use crate::model::Dsan;

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> WeightsError + '_ {
    move |source| WeightsError::Io {
        file: path.display().to_string(),
        source,
    }
}

/// Reads and checks a model card file.
pub fn read_card(path: &Path) -> Result<ModelCard, WeightsError> {
    let json = fs::read(path).map_err(io_error(path))?;
    parse_card(&path.display().to_string(), &json)
}

/// The weights file a card names, resolved next to the card.
pub fn weights_path(card_path: &Path, card: &ModelCard) -> PathBuf {
    card_path
        .parent()
        .unwrap_or(Path::new("."))
        .join(&card.weights.file)
}

/// Reads a card and the weights beside it, and loads the model onto `device`.
pub fn load_model_files<B: Backend>(
    card_path: &Path,
    device: &B::Device,
) -> Result<(ModelCard, Dsan<B>), WeightsError> {
    let card = read_card(card_path)?;
    let path = weights_path(card_path, &card);
    let bytes = fs::read(&path).map_err(io_error(&path))?;
    let model = load_weights(&card, &bytes, device)?;
    Ok((card, model))
}

/// Writes `card` as `<dir>/<card_name>` and the weights as the file the card names.
pub fn save_model_files(
    dir: &Path,
    card_name: &str,
    card: &ModelCard,
    weights: &[u8],
) -> Result<PathBuf, WeightsError> {
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    let weights_file = dir.join(&card.weights.file);
    fs::write(&weights_file, weights).map_err(io_error(&weights_file))?;
    let card_path = dir.join(card_name);
    let json = serde_json::to_vec_pretty(card).map_err(|e| WeightsError::CardParse {
        file: card_path.display().to_string(),
        reason: e.to_string(),
    })?;
    fs::write(&card_path, json).map_err(io_error(&card_path))?;
    Ok(card_path)
}
