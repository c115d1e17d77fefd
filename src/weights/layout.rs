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
        collect_shapes(&value, &mut shapes);
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

/// Appends the shape of every serialised tensor (a map with `bytes` and
/// `shape` entries, Burn's `TensorData`) found under `value`, depth first.
fn collect_shapes(value: &Value, shapes: &mut Vec<Vec<usize>>) {
    match value {
        Value::Map(entries) => match tensor_shape(entries) {
            Some(shape) => shapes.push(shape),
            None => entries.iter().for_each(|(_, v)| collect_shapes(v, shapes)),
        },
        Value::Array(items) => items.iter().for_each(|v| collect_shapes(v, shapes)),
        _ => {}
    }
}

fn tensor_shape(entries: &[(Value, Value)]) -> Option<Vec<usize>> {
    let field = |name: &str| {
        entries
            .iter()
            .find(|(key, _)| key.as_str() == Some(name))
            .map(|(_, v)| v)
    };
    field("bytes")?;
    field("shape")?
        .as_array()?
        .iter()
        .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
        .collect()
}
