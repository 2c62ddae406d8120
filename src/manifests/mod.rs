//! SLO manifests as users write them: YAML files in, validated models out.

mod decode;
mod load;

pub use decode::{Decoded, cel_check, decode};
pub use load::{Document, LoadError, Source, expand, parse, read};
