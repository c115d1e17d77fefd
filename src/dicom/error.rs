//! Why a dropped file could not be used; every variant names the file.

/// A file that was skipped, with the reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DicomError {
    /// Not a DICOM file, or one too damaged to parse.
    #[error("{file}: not a readable DICOM file ({reason})")]
    NotDicom {
        /// File name.
        file: String,
        /// Parser message.
        reason: String,
    },
    /// A DICOM file that holds no image (a DICOMDIR, a report, a structure set...).
    #[error("{file}: no image to load ({what})")]
    NoImage {
        /// File name.
        file: String,
        /// What the file is.
        what: String,
    },
    /// The pixel data are compressed with a codec this build cannot decode.
    #[error("{file}: pixel data in {name} ({uid}) cannot be decoded here")]
    UnsupportedCodec {
        /// File name.
        file: String,
        /// Transfer syntax UID.
        uid: String,
        /// Transfer syntax name.
        name: String,
    },
    /// An attribute an image needs is missing or invalid.
    #[error("{file}: attribute {attribute} is missing or invalid ({reason})")]
    Attribute {
        /// File name.
        file: String,
        /// Attribute keyword.
        attribute: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The pixel data could not be decoded (truncated, corrupt, mismatched).
    #[error("{file}: pixel data could not be decoded ({reason})")]
    PixelData {
        /// File name.
        file: String,
        /// Decoder message.
        reason: String,
    },
    /// A .zip archive that cannot be read or is too large.
    #[error("{file}: archive not used ({reason})")]
    Archive {
        /// Archive (or entry) name.
        file: String,
        /// Why.
        reason: String,
    },
    /// The file could not be read from disk (native reading only).
    #[error("{file}: could not be read ({reason})")]
    Unreadable {
        /// File path.
        file: String,
        /// Operating system message.
        reason: String,
    },
    /// A NIfTI file that could not be read.
    #[error(transparent)]
    Nifti(#[from] crate::volume::NiftiError),
    /// Colour images are not CT.
    #[error(
        "{file}: {samples} samples per pixel ({photometric}); only grayscale CT images are used"
    )]
    NotGrayscale {
        /// File name.
        file: String,
        /// Samples per pixel.
        samples: u16,
        /// Photometric interpretation.
        photometric: String,
    },
}
