//! The public contract: the `ServiceLevelObjective` custom resource (`plimsoll.dev/v1alpha1`).

mod crd;
mod lenient;
mod spec;
mod status;

pub use crd::{API_VERSION, GROUP, KIND, NAME_MAX, crd_yaml, definition};
pub use spec::*;
pub use status::*;
