//! A file's stored pixel values, frame by frame, mapped to HU.

use dicom_core::PrimitiveValue;
use dicom_dictionary_std::tags;
use dicom_object::DefaultDicomObject;
use dicom_object::mem::InMemElement;
use dicom_pixeldata::{ConvertOptions, DecodedPixelData, ModalityLutOption, PixelDecoder};

/// A file's pixel data: 16-bit native samples borrowed from the data set as
/// dicom-rs read them (most CT: no copy), or decoded by dicom-pixeldata.
pub(super) enum Pixels<'a> {
    /// Native 16-bit samples, one sample per pixel.
    Words {
        /// Every frame's samples, frame after frame.
        words: &'a [u16],
        rows: usize,
        columns: usize,
        frames: u32,
    },
    /// Anything else, decoded.
    Decoded(DecodedPixelData<'a>),
}

impl<'a> Pixels<'a> {
    /// The pixel data of `obj`; the error is the decoder's message.
    pub(super) fn of(obj: &'a DefaultDicomObject) -> Result<Self, String> {
        if let Some(words) = native_words(obj) {
            return Ok(words);
        }
        obj.decode_pixel_data()
            .map(Self::Decoded)
            .map_err(|e| e.to_string())
    }

    /// Number of frames.
    pub(super) fn frames(&self) -> u32 {
        match self {
            Self::Words { frames, .. } => *frames,
            Self::Decoded(decoded) => decoded.number_of_frames(),
        }
    }

    /// Rows (image height).
    pub(super) fn rows(&self) -> usize {
        match self {
            Self::Words { rows, .. } => *rows,
            Self::Decoded(decoded) => decoded.rows() as usize,
        }
    }

    /// Columns (image width).
    pub(super) fn columns(&self) -> usize {
        match self {
            Self::Words { columns, .. } => *columns,
            Self::Decoded(decoded) => decoded.columns() as usize,
        }
    }

    /// One frame's pixels mapped through `to_hu` (from stored values).
    /// 16-bit samples (every CT) go through a lookup table with no
    /// intermediate buffer; other depths through dicom-rs' generic conversion.
    pub(super) fn frame_hu(
        &self,
        frame: u32,
        to_hu: impl Fn(f64) -> f32,
    ) -> Result<Vec<f32>, String> {
        match self {
            Self::Words {
                words,
                rows,
                columns,
                ..
            } => {
                let n = rows * columns;
                let start = frame as usize * n;
                let samples = words.get(start..start + n).ok_or("frame out of range")?;
                Ok(map_words(samples.iter().copied(), n, to_hu))
            }
            Self::Decoded(decoded) if decoded.bits_allocated() == 16 => {
                let bytes = decoded.frame_data(frame).map_err(|e| e.to_string())?;
                let samples = bytes
                    .chunks_exact(2)
                    .map(|b| u16::from_ne_bytes([b[0], b[1]]));
                Ok(map_words(samples, bytes.len() / 2, to_hu))
            }
            Self::Decoded(decoded) => {
                let options = ConvertOptions::new().with_modality_lut(ModalityLutOption::None);
                let raw: Vec<f64> = decoded
                    .to_vec_frame_with_options(frame, &options)
                    .map_err(|e| e.to_string())?;
                Ok(raw.into_iter().map(to_hu).collect())
            }
        }
    }
}

/// `count` 16-bit samples mapped to HU; for a large frame through a table of
/// all 65,536 values, cheaper than converting each pixel.
fn map_words(
    samples: impl Iterator<Item = u16>,
    count: usize,
    to_hu: impl Fn(f64) -> f32,
) -> Vec<f32> {
    if count > 1 << 16 {
        let table: Vec<f32> = (0..=u16::MAX).map(|v| to_hu(f64::from(v))).collect();
        samples.map(|v| table[usize::from(v)]).collect()
    } else {
        samples.map(|v| to_hu(f64::from(v))).collect()
    }
}

/// The native 16-bit samples of `obj`, when dicom-rs read its pixel data as
/// such and they hold every frame; None otherwise (then dicom-pixeldata
/// decodes them, and says what is wrong).
fn native_words(obj: &DefaultDicomObject) -> Option<Pixels<'_>> {
    let number = |tag| {
        obj.get(tag)
            .and_then(|e: &InMemElement| e.to_int::<u32>().ok())
    };
    if number(tags::BITS_ALLOCATED)? != 16 || number(tags::SAMPLES_PER_PIXEL).unwrap_or(1) != 1 {
        return None;
    }
    let rows = usize::try_from(number(tags::ROWS)?).ok()?;
    let columns = usize::try_from(number(tags::COLUMNS)?).ok()?;
    let frames = number(tags::NUMBER_OF_FRAMES).unwrap_or(1);
    let PrimitiveValue::U16(words) = obj.get(tags::PIXEL_DATA)?.value().primitive()? else {
        return None;
    };
    let needed = rows.checked_mul(columns)?.checked_mul(frames as usize)?;
    (needed > 0 && words.len() >= needed).then_some(Pixels::Words {
        words,
        rows,
        columns,
        frames,
    })
}
