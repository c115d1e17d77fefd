//! Weights and model cards: a DSAN model is shipped as a half-precision Burn
//! record plus a JSON card (architecture, preprocessing, classes, training
//! data, metrics, SHA-256). Loading checks the card and the bytes against each
//! other and against this build's network before anything is used, from bytes
//! (the page) or from files (`train`).

mod card;
mod error;
#[cfg(not(target_arch = "wasm32"))]
mod files;
mod layout;
mod record;

pub use card::{
    CARD_FORMAT_VERSION, MAX_CARD_BYTES, MODEL_INDEX_FILE, Metric, ModelCard, ModelIndex,
    Preprocessing, TrainingData, WEIGHTS_FORMAT, WeightsFile,
};
pub use error::WeightsError;
#[cfg(not(target_arch = "wasm32"))]
pub use files::{load_model_files, read_card, save_model_files, weights_path};
pub use layout::{TensorLayout, sha256_hex};
pub use record::{
    check_bytes, check_card_size, check_size, decode_weights, encode_weights, load_weights,
    parse_card,
};
