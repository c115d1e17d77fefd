//! The tensor layout of a module (every parameter's path and shape) and its
//! fingerprint, which ties a weights file to the architecture in its card.

use burn::module::{ModuleVisitor, Param};
use burn::prelude::*;
use rmpv::Value;
use sha2::{Digest, Sha256};

/// Every float parameter and buffer of a module, in visiting order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorLayout {
    entries: Vec<(String, Vec<usize>)>,
}

#[derive(Default)]
struct LayoutVisitor {
    path: Vec<String>,
    entries: Vec<(String, Vec<usize>)>,
}

impl<B: Backend> ModuleVisitor<B> for LayoutVisitor {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_owned());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        // The lazy shape: reading it does not draw a lazily initialised
        // parameter from the backend's random generator.
        let shape = param.lazy_shape().dims::<D>().to_vec();
        self.entries.push((self.path.join("."), shape));
    }
}

impl TensorLayout {
    /// Reads the layout of `module`.
    pub fn of<B: Backend, M: Module<B>>(module: &M) -> Self {
        let mut visitor = LayoutVisitor::default();
        module.visit(&mut visitor);
        Self {
            entries: visitor.entries,
        }
    }

    /// The tensor shapes stored in the bytes of a named-MessagePack Burn record,
    /// in order, read without decoding into a model (so a record with more or
    /// fewer tensors than the network is caught before Burn loads it).
    pub fn stored_shapes(record: &[u8]) -> Result<Vec<Vec<usize>>, String> {
        let value = rmpv::decode::read_value(&mut &record[..]).map_err(|e| e.to_string())?;
        let mut shapes = Vec::new();
        collect_shapes(&value, &mut shapes)?;
        Ok(shapes)
    }

    /// The first difference between this layout and the shapes stored in a
    /// record (see [`TensorLayout::stored_shapes`]), described for a user.
    pub fn mismatch_with(&self, stored: &[Vec<usize>]) -> Option<String> {
        let pairs = self.entries.iter().zip(stored);
        if let Some(((path, expected), found)) = pairs.clone().find(|((_, a), b)| a != *b) {
            return Some(format!(
                "{path}: expected shape {expected:?}, found {found:?}"
            ));
        }
        (self.entries.len() != stored.len()).then(|| {
            format!(
                "expected {} tensors, found {}",
                self.entries.len(),
                stored.len()
            )
        })
    }

    /// SHA-256 (lower-case hex) of the canonical text form of the layout.
    pub fn sha256(&self) -> String {
        let text: String = self
            .entries
            .iter()
            .map(|(path, shape)| format!("{path} {shape:?}\n"))
            .collect();
        sha256_hex(text.as_bytes())
    }
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Appends the shape of every serialised tensor (a map with `bytes`, `shape`
/// and `dtype` entries, Burn's `TensorData`) found under `value`, depth first;
/// a tensor whose bytes do not hold its shape, and a parameter whose id Burn
/// cannot read, are errors.
fn collect_shapes(value: &Value, shapes: &mut Vec<Vec<usize>>) -> Result<(), String> {
    match value {
        Value::Map(entries) => match tensor_shape(entries) {
            Some(shape) => shapes.push(shape?),
            None => {
                check_param_id(entries)?;
                for (_, v) in entries {
                    collect_shapes(v, shapes)?;
                }
            }
        },
        Value::Array(items) => {
            for v in items {
                collect_shapes(v, shapes)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The value of entry `name` of a MessagePack map.
fn field<'a>(entries: &'a [(Value, Value)], name: &str) -> Option<&'a Value> {
    entries
        .iter()
        .find(|(key, _)| key.as_str() == Some(name))
        .map(|(_, v)| v)
}

/// Refuses a parameter (Burn's `{id, param}` map) whose id Burn 0.21 would
/// panic on: `ParamId::deserialize` reads only base32 (DNSSEC alphabet) of at
/// most 8 bytes, what Burn writes, or a legacy UUID, which no record of this
/// format holds.
fn check_param_id(entries: &[(Value, Value)]) -> Result<(), String> {
    let field = |name| field(entries, name);
    let (Some(id), Some(_)) = (field("id"), field("param")) else {
        return Ok(());
    };
    let readable = id.as_str().is_some_and(|id| {
        data_encoding::BASE32_DNSSEC
            .decode(id.as_bytes())
            .is_ok_and(|bytes| bytes.len() <= 8)
    });
    if readable {
        Ok(())
    } else {
        let shown: String = id.to_string().chars().take(40).collect();
        Err(format!("a parameter id Burn cannot read ({shown})"))
    }
}

/// The shape of a serialised F16 tensor, checked against the length of its bytes;
/// `None` when `entries` is not a tensor.
fn tensor_shape(entries: &[(Value, Value)]) -> Option<Result<Vec<usize>, String>> {
    let field = |name| field(entries, name);
    let bytes = field("bytes")?;
    let shape: Vec<usize> = field("shape")?
        .as_array()?
        .iter()
        .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
        .collect::<Option<_>>()?;
    let dtype = field("dtype").and_then(Value::as_str).unwrap_or("none");
    if dtype != "F16" {
        return Some(Err(format!(
            "a tensor of type {dtype}; this format stores F16 only"
        )));
    }
    let stored = bytes.as_slice().map_or(0, <[u8]>::len);
    let needed = shape.iter().try_fold(2usize, |n, &d| n.checked_mul(d));
    Some(if needed == Some(stored) {
        Ok(shape)
    } else {
        Err(format!(
            "an F16 tensor of shape {shape:?} is stored in {stored} bytes"
        ))
    })
}
