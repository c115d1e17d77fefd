//! Why a model card or weights file was refused.

use crate::model::ConfigError;

/// A card or weights file that cannot be used; every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WeightsError {
    /// The card is not valid JSON for this card format.
    #[error("model card {file}: not a valid model card: {reason}")]
    CardParse {
        /// Card file name.
        file: String,
        /// Parser message.
        reason: String,
    },
    /// The card was written by an incompatible version.
    #[error(
        "model card {file}: format version {found} is not supported (this build reads {supported})"
    )]
    CardVersion {
        /// Card file name.
        file: String,
        /// Version in the card.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// The architecture in the card cannot be built.
    #[error("model card {file}: invalid architecture: {source}")]
    Architecture {
        /// Card file name.
        file: String,
        /// What is wrong with it.
        source: ConfigError,
    },
    /// The card contradicts itself (classes, formats, layout).
    #[error("model card {file}: {reason}")]
    CardInconsistent {
        /// Card file name.
        file: String,
        /// What does not match.
        reason: String,
    },
    /// The weights file is not the one the card describes.
    #[error(
        "weights {file}: SHA-256 is {actual} but the model card expects {expected}; the file is corrupted or belongs to another card"
    )]
    Checksum {
        /// Weights file name.
        file: String,
        /// SHA-256 in the card.
        expected: String,
        /// SHA-256 of the bytes given.
        actual: String,
    },
    /// The weights file has another size than the card says.
    #[error("weights {file}: {actual} bytes but the model card expects {expected}")]
    Size {
        /// Weights file name.
        file: String,
        /// Size in the card.
        expected: u64,
        /// Size of the bytes given.
        actual: u64,
    },
    /// The model could not be encoded (export only).
    #[error("weights {file}: encoding failed: {reason}")]
    Encode {
        /// Weights file name.
        file: String,
        /// Encoder message.
        reason: String,
    },
    /// The bytes are not a Burn record of this model.
    #[error("weights {file}: cannot be decoded as a DSAN record: {reason}")]
    Decode {
        /// Weights file name.
        file: String,
        /// Decoder message.
        reason: String,
    },
    /// The record decoded but its tensors do not fit the architecture.
    #[error("weights {file}: tensors do not match the architecture in the card ({reason})")]
    Layout {
        /// Weights file name.
        file: String,
        /// First difference found.
        reason: String,
    },
    /// Reading or writing a file failed (native only).
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
}
