//! `plimsoll crd`: the CRD YAML, for `kubectl apply` and for checking in under `crds/`.

use std::io::Write;

use super::{EXIT_ERROR, EXIT_OK};

pub fn run(out: &mut impl Write, err: &mut impl Write) -> u8 {
    let written = crate::api::crd_yaml()
        .map_err(|e| e.to_string())
        .and_then(|yaml| out.write_all(yaml.as_bytes()).map_err(|e| e.to_string()));
    match written {
        Ok(()) => EXIT_OK,
        Err(e) => {
            let _ = writeln!(err, "plimsoll crd: {e}");
            EXIT_ERROR
        }
    }
}
