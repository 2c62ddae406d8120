//! Certificates from a directory, such as a cert-manager Secret mounted into the pod: `tls.crt`
//! and `tls.key`, and `ca.crt` when the issuer provides it. Read again every round, so a
//! rotation (the kubelet swaps the mounted files) is picked up without a restart.

use std::path::{Path, PathBuf};

use super::secret::{CA_CRT, TLS_CRT, TLS_KEY};

#[derive(Debug, thiserror::Error)]
pub enum CertDirError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl CertDirError {
    pub fn reason(&self) -> &'static str {
        match self {
            CertDirError::Read { .. } => "ReadFailed",
        }
    }
}

/// The files of a certificate directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    pub cert: String,
    pub key: String,
    /// `ca.crt`, when present.
    pub ca: Option<String>,
}

pub fn read(dir: &Path) -> Result<Files, CertDirError> {
    let file = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(|source| CertDirError::Read { path, source })
    };
    let ca = match file(CA_CRT) {
        Ok(ca) => Some(ca),
        Err(CertDirError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            None
        }
        Err(e) => return Err(e),
    };
    Ok(Files {
        cert: file(TLS_CRT)?,
        key: file(TLS_KEY)?,
        ca,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_pair_and_the_optional_ca() {
        let dir = std::env::temp_dir().join(format!("plimsoll-cert-dir-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(read(&dir).unwrap_err().reason(), "ReadFailed");
        std::fs::write(dir.join("tls.crt"), "c").unwrap();
        std::fs::write(dir.join("tls.key"), "k").unwrap();
        let files = read(&dir).unwrap();
        assert_eq!(
            (files.cert.as_str(), files.key.as_str(), files.ca),
            ("c", "k", None)
        );
        std::fs::write(dir.join("ca.crt"), "a").unwrap();
        assert_eq!(read(&dir).unwrap().ca.as_deref(), Some("a"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
