//! Declared value lengths checked against the file's size before dicom-rs
//! reads the file. dicom-rs reserves and zero-fills a value's declared length
//! before it reads the value, so a 2 KB file that declares a 2 GB value would
//! take 2 GB of memory first (in the page, for good: WebAssembly memory never
//! shrinks). Here the file is walked element by element with dicom-rs' own
//! header decoders, jumping over values instead of loading them.

use std::io::Read;

use dicom_core::header::SequenceItemHeader;
use dicom_core::{Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_encoding::Codec;
use dicom_encoding::TransferSyntax;
use dicom_encoding::decode::Decode;
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use flate2::read::DeflateDecoder;

use super::study::MAX_ENTRY_BYTES;

/// An item of a sequence or a fragment of encapsulated pixel data.
const ITEM: Tag = Tag(0xFFFE, 0xE000);
/// The end of an item of undefined length.
const ITEM_DELIMITATION: Tag = Tag(0xFFFE, 0xE00D);
/// Bytes in the longest element header (explicit VR with a 4-byte length).
const LONGEST_HEADER: usize = 12;

/// Why a file's declared lengths cannot be trusted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LengthError {
    /// A value whose declared length runs past the end of the file.
    #[error("element {tag} declares {length} bytes but only {remaining} remain in the file")]
    PastEnd {
        /// The element (or item: `(FFFE,E000)`) that declares the length.
        tag: Tag,
        /// The declared length in bytes.
        length: u32,
        /// Bytes left in the file after the element's header.
        remaining: u64,
    },
    /// The data set's structure cannot be followed to check its lengths.
    #[error("its elements cannot be followed ({reason})")]
    Unchecked {
        /// The parser's message.
        reason: String,
    },
    /// A deflated data set that inflates past [`MAX_ENTRY_BYTES`].
    #[error("the deflated data set inflates to more than {MAX_ENTRY_BYTES} bytes")]
    Inflated,
}

/// Checks a Part 10 file (with or without its 128-byte preamble): every
/// element of the file meta group, then every element, sequence and item of
/// the data set in the meta group's transfer syntax. A file that is not
/// DICOM or names an unknown transfer syntax is left for dicom-rs to report;
/// a data set whose headers cannot all be decoded is refused. A deflated data set is
/// inflated (up to [`MAX_ENTRY_BYTES`]) and walked as explicit VR little endian.
pub(super) fn check_file(bytes: &[u8]) -> Result<(), LengthError> {
    let start = if bytes.get(128..132) == Some(b"DICM") {
        132
    } else if bytes.starts_with(b"DICM") {
        4
    } else {
        return Ok(());
    };
    let Some((body, uid)) = check_meta(bytes, start)? else {
        return Ok(());
    };
    let Some(ts) = TransferSyntaxRegistry.get(uid.trim_end_matches(['\0', ' '])) else {
        return Ok(());
    };
    if !matches!(ts.codec(), Codec::Dataset(_)) {
        return check_dataset(bytes, body, ts);
    }
    let mut inflated = Vec::new();
    // A damaged stream is walked as far as it inflates: dicom-rs reads that far too.
    let _ = DeflateDecoder::new(&bytes[body..])
        .take(MAX_ENTRY_BYTES + 1)
        .read_to_end(&mut inflated);
    if inflated.len() as u64 > MAX_ENTRY_BYTES {
        return Err(LengthError::Inflated);
    }
    match TransferSyntaxRegistry.get(uids::EXPLICIT_VR_LITTLE_ENDIAN) {
        Some(explicit) => check_dataset(&inflated, 0, explicit),
        None => Ok(()),
    }
}

/// Checks a data set that starts at `start` and is encoded in `ts`, walking
/// it the way dicom-rs' data set reader does (dicom-parser 0.10,
/// `DataSetReader`): element headers inside data sets and items, item headers
/// inside sequences, fragments inside encapsulated pixel data, containers of
/// defined length closed where their length ends. Every header is decoded
/// with the transfer syntax' own decoder; every value is jumped over once its
/// length is checked. Where dicom-rs would stop with an error, so does this.
pub(super) fn check_dataset(
    bytes: &[u8],
    start: usize,
    ts: &TransferSyntax,
) -> Result<(), LengthError> {
    let Some(decoder) = ts.decoder() else {
        return Ok(());
    };
    let mut at = start;
    // Open sequences and items, innermost last.
    let mut open: Vec<Container> = Vec::new();
    // Whether an item header (not an element header) comes next.
    let mut in_sequence = false;
    loop {
        if let Some(Container { end: Some(end), .. }) = open.last() {
            if at > *end {
                return Err(LengthError::Unchecked {
                    reason: format!("a sequence or item ends at byte {end}, inside an element"),
                });
            }
            if at == *end {
                in_sequence = open.pop().is_some_and(|c| c.item);
                continue;
            }
        }
        let rest = bytes.get(at..).unwrap_or_default();
        if rest.is_empty() {
            return Ok(());
        }
        let mut source = rest;
        // dicom-rs' full reader may read on where this one stops, so a data
        // set whose headers cannot all be decoded is not handed to it; a few
        // trailing bytes, too short for any header, declare nothing.
        let unreadable = |error: String| {
            if rest.len() < LONGEST_HEADER {
                Ok(())
            } else {
                Err(LengthError::Unchecked { reason: error })
            }
        };
        if in_sequence {
            let header = match decoder.decode_item_header(&mut source) {
                Ok(header) => header,
                Err(error) => return unreadable(error.to_string()),
            };
            let value = rest.len() - source.len();
            match header {
                SequenceItemHeader::Item { len } => {
                    let pixel = open.last().is_some_and(|c| c.pixel);
                    let end = checked_end(ITEM, len.get(), at + value, bytes.len())?;
                    match (pixel, end) {
                        // A fragment: read whole, as a value.
                        (true, Some(end)) => at = end,
                        (true, None) => {
                            return Err(LengthError::Unchecked {
                                reason: "a pixel data fragment of undefined length".to_owned(),
                            });
                        }
                        (false, end) => {
                            at += value;
                            open.push(Container {
                                end,
                                item: true,
                                pixel: false,
                            });
                            in_sequence = false;
                        }
                    }
                }
                SequenceItemHeader::ItemDelimiter => {
                    at += value;
                    open.pop();
                    in_sequence = true;
                }
                SequenceItemHeader::SequenceDelimiter => {
                    at += value;
                    open.pop();
                    in_sequence = false;
                }
            }
            continue;
        }
        let header = match decoder.decode_header(&mut source) {
            Ok((header, _)) => header,
            Err(error) => return unreadable(error.to_string()),
        };
        let value = at + rest.len() - source.len();
        let end = checked_end(header.tag, header.len.get(), value, bytes.len())?;
        if header.vr == VR::SQ || end.is_none() {
            // A sequence; encapsulated pixel data; any other undefined length
            // (dicom-rs reads it as a sequence).
            at = value;
            open.push(Container {
                end,
                item: false,
                pixel: header.tag == tags::PIXEL_DATA && end.is_none() && header.vr != VR::SQ,
            });
            in_sequence = true;
        } else if header.tag == ITEM_DELIMITATION {
            at = value;
            if open.pop().is_some() {
                in_sequence = true;
            }
        } else {
            let length = header.len.get().unwrap_or_default();
            at = value + read_by_dicom_rs(header.vr, length);
        }
    }
}

/// A sequence or an item being walked.
#[derive(Debug, Clone, Copy)]
struct Container {
    /// Where its declared length ends it (None: a delimiter will).
    end: Option<usize>,
    /// An item (else a sequence).
    item: bool,
    /// Encapsulated pixel data: its items are fragments.
    pixel: bool,
}

/// Where a value of `length` bytes starting at `value` ends (None for an
/// undefined length), if it fits in the `size`-byte file.
fn checked_end(
    tag: Tag,
    length: Option<u32>,
    value: usize,
    size: usize,
) -> Result<Option<usize>, LengthError> {
    let Some(length) = length else {
        return Ok(None);
    };
    let remaining = size.saturating_sub(value);
    if length as usize > remaining {
        return Err(LengthError::PastEnd {
            tag,
            length,
            remaining: remaining as u64,
        });
    }
    Ok(Some(value + length as usize))
}

/// How many bytes of a `length`-byte value of `vr` dicom-rs reads: numbers
/// are read whole, so a length that is not a multiple of the number's size
/// leaves its last bytes to be read as the next header (dicom-rs 0.10), and
/// this walk must go on from where dicom-rs will.
fn read_by_dicom_rs(vr: VR, length: u32) -> usize {
    let size = match vr {
        VR::US | VR::OW | VR::SS => 2,
        VR::AT | VR::FL | VR::OF | VR::SL | VR::OL | VR::UL => 4,
        VR::FD | VR::OD | VR::SV | VR::OV | VR::UV => 8,
        _ => 1,
    };
    (length - length % size) as usize
}

/// Walks the file meta group (explicit VR little endian) from `start` as
/// dicom-rs reads it: the group length element, then elements until that
/// many bytes are read, whatever their tags. Returns where the data set
/// starts and the transfer syntax UID, or `None` when the group is too
/// damaged for dicom-rs to read either.
fn check_meta(bytes: &[u8], start: usize) -> Result<Option<(usize, String)>, LengthError> {
    let decoder = dicom_encoding::decode::file_header_decoder();
    let mut at = start;
    let mut group_end = None;
    let mut uid = None;
    while group_end.is_none_or(|end| at < end) {
        let Some(mut rest) = bytes.get(at..) else {
            return Ok(None);
        };
        let Ok((header, header_len)) = decoder.decode_header(&mut rest) else {
            return Ok(None);
        };
        let Some(length) = header.len.get() else {
            return Ok(None);
        };
        let value = at + header_len;
        let remaining = bytes.len().saturating_sub(value);
        if length as usize > remaining {
            return Err(LengthError::PastEnd {
                tag: header.tag,
                length,
                remaining: remaining as u64,
            });
        }
        let end = value + length as usize;
        match (group_end, header.tag) {
            (None, tags::FILE_META_INFORMATION_GROUP_LENGTH) if length == 4 => {
                let mut group = [0; 4];
                group.copy_from_slice(&bytes[value..end]);
                group_end = Some(end + u32::from_le_bytes(group) as usize);
            }
            (None, _) => return Ok(None),
            (_, tags::TRANSFER_SYNTAX_UID) => {
                uid = Some(String::from_utf8_lossy(&bytes[value..end]).into_owned());
            }
            _ => {}
        }
        at = end;
    }
    Ok(uid.map(|uid| (at, uid)))
}
