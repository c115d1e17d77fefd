//! RLE Lossless pixel data (1.2.840.10008.1.2.5, PS3.5 Annex G) checked
//! before dicom-rs decodes it.
//!
//! dicom-rs 0.10's RLE adapter trusts each frame's RLE header and segments:
//! a fragment shorter than its header, or a segment that decodes to fewer
//! bytes than Rows x Columns, makes it index out of range and panic (found by
//! fuzzing). In the page a panic ends the whole app, so such files are refused
//! here, with the reason, before the adapter sees them.

use dicom_dictionary_std::uids;
use dicom_encoding::adapters::PixelDataObject;
use dicom_object::DefaultDicomObject;

/// Segments an RLE header can list (PS3.5 G.5).
const MAX_SEGMENTS: usize = 15;

/// Why RLE pixel data cannot be decoded.
#[derive(Debug, thiserror::Error)]
pub(super) enum RleError {
    /// A frame's fragment is absent.
    #[error("RLE frame {0} is missing")]
    MissingFrame(usize),
    /// The RLE header is cut short or lists too many segments.
    #[error("RLE frame {frame}: the header is damaged ({segments} segments in {bytes} bytes)")]
    Header {
        /// Frame index.
        frame: usize,
        /// Segments listed.
        segments: u32,
        /// Fragment length.
        bytes: usize,
    },
    /// A segment lies outside the fragment or decodes to too few bytes.
    #[error(
        "RLE frame {frame}: segment {segment} decodes to {decoded} bytes, {needed} expected \
         (Rows x Columns)"
    )]
    ShortSegment {
        /// Frame index.
        frame: usize,
        /// Segment index.
        segment: usize,
        /// Bytes it decodes to.
        decoded: usize,
        /// Rows x Columns.
        needed: usize,
    },
}

/// Whether `ts_uid` is RLE Lossless.
pub(super) fn handles(ts_uid: &str) -> bool {
    ts_uid == uids::RLE_LOSSLESS
}

/// Checks every frame's RLE header and the segments dicom-rs will decode.
/// Attributes that are absent or unsupported are left for dicom-rs to report.
pub(super) fn check(obj: &DefaultDicomObject) -> Result<(), RleError> {
    let (Some(rows), Some(columns), Some(bits)) = (obj.rows(), obj.cols(), obj.bits_allocated())
    else {
        return Ok(());
    };
    let needed = usize::from(rows) * usize::from(columns);
    let samples = usize::from(obj.samples_per_pixel().unwrap_or(1));
    let segments = samples * usize::from(bits / 8);
    for frame in 0..obj.number_of_fragments().unwrap_or(0) as usize {
        let fragment = obj.fragment(frame).ok_or(RleError::MissingFrame(frame))?;
        let offsets = header(&fragment).ok_or_else(|| RleError::Header {
            frame,
            segments: fragment
                .get(..4)
                .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            bytes: fragment.len(),
        })?;
        for segment in 0..segments.min(offsets.len()) {
            let end = offsets.get(segment + 1).copied().unwrap_or(fragment.len());
            let decoded = fragment
                .get(offsets[segment]..end)
                .map_or(0, packbits_length);
            if decoded < needed {
                return Err(RleError::ShortSegment {
                    frame,
                    segment,
                    decoded,
                    needed,
                });
            }
        }
    }
    Ok(())
}

/// The segment offsets of an RLE header; None when the fragment is shorter
/// than the header or lists more than [`MAX_SEGMENTS`].
fn header(fragment: &[u8]) -> Option<Vec<usize>> {
    let word = |at: usize| {
        fragment
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let count = word(0)?;
    if count > MAX_SEGMENTS {
        return None;
    }
    (1..=count).map(|n| word(4 * n)).collect()
}

/// The number of bytes a PackBits segment decodes to, read the way dicom-rs
/// reads it: a literal run cut short by the segment's end yields what is left,
/// a repeat run without its byte ends the segment.
fn packbits_length(segment: &[u8]) -> usize {
    let mut decoded = 0;
    let mut at = 0;
    while let Some(&control) = segment.get(at) {
        at += 1;
        match control as i8 {
            -128 => {}
            repeat @ -127..=-1 => {
                if at >= segment.len() {
                    break;
                }
                decoded += (1 - isize::from(repeat)) as usize;
                at += 1;
            }
            literal => {
                let count = literal as usize + 1;
                decoded += count.min(segment.len() - at);
                at += count;
            }
        }
    }
    decoded
}
