//! A file's stored pixel values, frame by frame, and how they map to HU.
//!
//! 16-bit samples (every CT) are kept as read and converted to HU only when
//! the volume is assembled, straight into it: no intermediate copy. HU are
//! stored as whole numbers ([`whole_hu`]), exact for CT's integer rescales.

use std::sync::Arc;

use dicom_core::PrimitiveValue;
use dicom_core::value::Value;
use dicom_dictionary_std::tags;
use dicom_object::DefaultDicomObject;
use dicom_object::mem::InMemElement;
use dicom_pixeldata::{ConvertOptions, ModalityLutOption, PixelDecoder};

use super::slice::PADDING_HU;
use crate::volume::whole_hu;

/// Stored value -> HU: only the low `BitsStored` bits count (old files keep
/// overlays above them) and, for signed data, the highest of them is the
/// sign; values in the padding range become [`PADDING_HU`]; the others are
/// scaled by RescaleSlope and RescaleIntercept. The bits and sign are
/// applied here because decoders differ on them (and on J2K streams whose
/// sign disagrees with PixelRepresentation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct HuMapping {
    /// BitsStored, when between 1 and 16.
    pub(super) bits: Option<u32>,
    /// PixelRepresentation is 1.
    pub(super) signed: bool,
    /// The stored-value range `[low, high]` marked as padding.
    pub(super) padding: Option<(f64, f64)>,
    /// RescaleSlope.
    pub(super) slope: f64,
    /// RescaleIntercept.
    pub(super) intercept: f64,
}

impl HuMapping {
    /// The HU of a stored value decoded to a number (the sign already
    /// applied by the decoder, the bits not yet masked).
    pub(super) fn hu(&self, stored: f64) -> f32 {
        let value = match self.bits {
            Some(bits) => {
                let low = (stored as i64) & ((1_i64 << bits) - 1);
                if self.signed && low >= 1 << (bits - 1) {
                    (low - (1 << bits)) as f64
                } else {
                    low as f64
                }
            }
            None => stored,
        };
        self.scale(value)
    }

    /// The HU of a raw 16-bit sample (missing BitsStored counts as 16).
    fn hu_word(&self, word: u16) -> f32 {
        let unused = 16 - self.bits.unwrap_or(16);
        let value = if self.signed {
            f64::from(((word << unused) as i16) >> unused)
        } else {
            f64::from((word << unused) >> unused)
        };
        self.scale(value)
    }

    /// Appends the HU of raw 16-bit samples to `out`, as whole numbers.
    fn extend_words(&self, samples: &[u16], out: &mut Vec<i16>) {
        let Some((slope, intercept)) = self.exact_in_f32() else {
            // Any other rescale: through a table of every 16-bit value.
            let table: Vec<i16> = (0..=u16::MAX).map(|v| whole_hu(self.hu_word(v))).collect();
            out.extend(samples.iter().map(|&v| table[usize::from(v)]));
            return;
        };
        // Stored values are integers: compare them with the padding range
        // rounded inwards.
        let (low, high) = self
            .padding
            .map_or((f32::INFINITY, f32::NEG_INFINITY), |(l, h)| {
                (l.ceil().max(-65536.0) as f32, h.floor().min(65536.0) as f32)
            });
        let unused = 16 - self.bits.unwrap_or(16);
        let mask = u16::MAX >> unused;
        // Every parameter is a local copied into the closures, so that the
        // loops vectorise. The HU are whole numbers: `as` only saturates.
        let scale = move |v: f32| {
            if v >= low && v <= high {
                PADDING_HU
            } else {
                (v * slope + intercept) as i16
            }
        };
        if self.signed {
            let sign_extend = move |word: u16| f32::from(((word << unused) as i16) >> unused);
            out.extend(samples.iter().map(move |&word| scale(sign_extend(word))));
        } else {
            out.extend(
                samples
                    .iter()
                    .map(move |&word| scale(f32::from(word & mask))),
            );
        }
    }

    /// Slope and intercept as `f32` when single-precision arithmetic on 16-bit
    /// values gives exactly the HU of [`HuMapping::hu_word`]: both integers,
    /// every product and sum below 2^24 in magnitude (CT's usual 1 and -1024).
    fn exact_in_f32(&self) -> Option<(f32, f32)> {
        let integral = |x: f64| x.fract() == 0.0;
        (integral(self.slope)
            && integral(self.intercept)
            && self.slope.abs() * 65536.0 + self.intercept.abs() < f64::from(1 << 24))
        .then_some((self.slope as f32, self.intercept as f32))
    }

    fn scale(&self, value: f64) -> f32 {
        let hu = (value * self.slope + self.intercept) as f32;
        match self.padding {
            Some((lo, hi)) if value >= lo && value <= hi => f32::from(PADDING_HU),
            _ => hu,
        }
    }
}

/// One frame's pixels, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct FramePixels(Samples);

#[derive(Debug, Clone, PartialEq)]
enum Samples {
    /// 16-bit stored samples, a range of a buffer the frames of one file
    /// share, and their mapping to HU.
    Words {
        words: Arc<Vec<u16>>,
        start: usize,
        count: usize,
        mapping: HuMapping,
    },
    /// Other sample depths, already in HU.
    Hu(Vec<i16>),
}

impl FramePixels {
    /// Number of pixels.
    pub fn len(&self) -> usize {
        match &self.0 {
            Samples::Words { count, .. } => *count,
            Samples::Hu(hu) => hu.len(),
        }
    }

    /// Whether the frame has no pixels.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pixels in whole HU, padding set to [`PADDING_HU`].
    pub fn hu(&self) -> Vec<i16> {
        let mut hu = Vec::with_capacity(self.len());
        self.extend_hu(&mut hu);
        hu
    }

    /// Appends the pixels in HU to `out` (how a volume is assembled without
    /// an intermediate copy).
    pub fn extend_hu(&self, out: &mut Vec<i16>) {
        match &self.0 {
            Samples::Hu(hu) => out.extend_from_slice(hu),
            Samples::Words {
                words,
                start,
                count,
                mapping,
            } => {
                mapping.extend_words(&words[*start..*start + *count], out);
            }
        }
    }
}

/// A file's pixel data, taken out of its data set.
pub(super) struct FilePixels {
    rows: usize,
    columns: usize,
    frames: u32,
    samples: FileSamples,
}

enum FileSamples {
    /// Every frame's 16-bit samples, frame after frame.
    Words(Arc<Vec<u16>>),
    /// Each frame's stored values, for other sample depths.
    Values(Vec<Vec<f64>>),
}

impl FilePixels {
    /// Takes the pixel data out of `obj`: native 16-bit samples as dicom-rs
    /// read them (no copy), anything else decoded by dicom-pixeldata. The
    /// error is the decoder's message.
    pub(super) fn take(obj: &mut DefaultDicomObject) -> Result<Self, String> {
        if let Some(pixels) = take_native_words(obj) {
            return Ok(pixels);
        }
        let decoded = obj.decode_pixel_data().map_err(|e| e.to_string())?;
        let (rows, columns) = (decoded.rows() as usize, decoded.columns() as usize);
        let frames = decoded.number_of_frames();
        let samples = if decoded.bits_allocated() == 16 && decoded.samples_per_pixel() == 1 {
            let words = decoded
                .data()
                .chunks_exact(2)
                .map(|b| u16::from_ne_bytes([b[0], b[1]]))
                .collect::<Vec<_>>();
            if words.len() < rows * columns * frames as usize {
                return Err("the decoded pixel data is shorter than its frames".to_owned());
            }
            FileSamples::Words(Arc::new(words))
        } else {
            let options = ConvertOptions::new().with_modality_lut(ModalityLutOption::None);
            let values = (0..frames)
                .map(|frame| decoded.to_vec_frame_with_options(frame, &options))
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?;
            FileSamples::Values(values)
        };
        Ok(Self {
            rows,
            columns,
            frames,
            samples,
        })
    }

    /// Number of frames.
    pub(super) fn frames(&self) -> u32 {
        self.frames
    }

    /// Rows (image height).
    pub(super) fn rows(&self) -> usize {
        self.rows
    }

    /// Columns (image width).
    pub(super) fn columns(&self) -> usize {
        self.columns
    }

    /// Frame `frame` (below [`FilePixels::frames`]) with its mapping to HU.
    pub(super) fn frame(&self, frame: u32, mapping: HuMapping) -> FramePixels {
        let count = self.rows * self.columns;
        match &self.samples {
            FileSamples::Words(words) => FramePixels(Samples::Words {
                words: Arc::clone(words),
                start: frame as usize * count,
                count,
                mapping,
            }),
            FileSamples::Values(values) => FramePixels(Samples::Hu(
                values[frame as usize]
                    .iter()
                    .map(|&v| whole_hu(mapping.hu(v)))
                    .collect(),
            )),
        }
    }
}

/// The native 16-bit samples of `obj`, taken out of it, when dicom-rs read
/// its pixel data as such and they hold every frame; None otherwise (then
/// dicom-pixeldata decodes them, and says what is wrong).
fn take_native_words(obj: &mut DefaultDicomObject) -> Option<FilePixels> {
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
    let needed = rows.checked_mul(columns)?.checked_mul(frames as usize)?;
    let PrimitiveValue::U16(words) = obj.get(tags::PIXEL_DATA)?.value().primitive()? else {
        return None;
    };
    if needed == 0 || words.len() < needed {
        return None;
    }
    let Value::Primitive(PrimitiveValue::U16(words)) = obj.take(tags::PIXEL_DATA)?.into_value()
    else {
        return None;
    };
    Some(FilePixels {
        rows,
        columns,
        frames,
        samples: FileSamples::Words(Arc::new(words.into_vec())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(bits: Option<u32>, signed: bool, padding: Option<(f64, f64)>) -> HuMapping {
        HuMapping {
            bits,
            signed,
            padding,
            slope: 1.0,
            intercept: -1024.0,
        }
    }

    /// The single-precision loops give, for every 16-bit value, the HU that
    /// the double-precision formula gives, rounded.
    #[test]
    fn fast_conversion_matches_the_formula_for_every_word() {
        let words: Vec<u16> = (0..=u16::MAX).collect();
        let mappings = [
            mapping(None, false, None),
            mapping(Some(16), true, None),
            mapping(Some(12), false, Some((0.0, 0.0))),
            mapping(Some(12), true, Some((-2000.5, -1999.5))),
            mapping(Some(10), true, Some((100.0, -100.0))),
            HuMapping {
                slope: 2.0,
                intercept: 7.0,
                ..mapping(Some(16), true, Some((-32768.0, -32000.0)))
            },
            HuMapping {
                slope: 0.5,
                intercept: -1024.25,
                ..mapping(Some(16), false, Some((63536.0, 65535.0)))
            },
            HuMapping {
                slope: 1000.0,
                ..mapping(Some(16), false, None)
            },
        ];
        for m in mappings {
            let mut fast = Vec::new();
            m.extend_words(&words, &mut fast);
            assert_eq!(fast.len(), words.len());
            for (&word, &hu) in words.iter().zip(&fast) {
                assert_eq!(hu, whole_hu(m.hu_word(word)), "{m:?}, word {word}");
            }
        }
    }

    /// Signed and unsigned words of BitsStored bits read as the decoders
    /// read them, with padding mapped to air.
    #[test]
    fn stored_bits_sign_and_padding_are_applied() {
        let signed12 = mapping(Some(12), true, None);
        assert_eq!(signed12.hu_word(0x0FFF), -1.0 - 1024.0);
        assert_eq!(signed12.hu_word(0xF7FF), 2047.0 - 1024.0);
        assert_eq!(mapping(Some(12), false, None).hu_word(0xF001), 1.0 - 1024.0);
        assert_eq!(signed12.hu(-5.0), -5.0 - 1024.0);
        let padded = mapping(Some(16), true, Some((-2000.0, -2000.0)));
        assert_eq!(padded.hu_word((-2000_i16) as u16), f32::from(PADDING_HU));
        assert_eq!(padded.hu_word((-1999_i16) as u16), -1999.0 - 1024.0);
    }
}
