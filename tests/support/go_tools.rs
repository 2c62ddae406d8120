//! The programs the tests build from Go modules (tests/<folder>/build.sh): where the builds put
//! them, the versions the folders' go.mod files pin, and building a missing one (minutes, cold;
//! the script's output goes to the terminal), one build at a time in a test binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// The tools cache every build.sh writes to: `$PLIMSOLL_TOOLS_CACHE`, else
/// `~/.cache/plimsoll-tools`.
pub fn tools_cache() -> PathBuf {
    if let Some(dir) = std::env::var_os("PLIMSOLL_TOOLS_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache/plimsoll-tools")
}

/// The version a go.mod requires of a module (not a `replace` line).
pub fn required_version(go_mod: &Path, module: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(go_mod).map_err(|e| format!("{}: {e}", go_mod.display()))?;
    text.lines()
        .map(str::trim)
        .map(|l| l.strip_prefix("require ").unwrap_or(l))
        .find_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some(module))
                .then(|| words.next())
                .flatten()
                .filter(|v| v.starts_with('v'))
                .map(str::to_string)
        })
        .ok_or_else(|| format!("{} requires no {module}", go_mod.display()))
}

/// The version tests/`folder`/go.mod pins of `module`; panics naming the file when it pins none.
pub fn pinned(folder: &str, module: &str) -> String {
    let go_mod = super::repo().join("tests").join(folder).join("go.mod");
    required_version(&go_mod, module).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs tests/`folder`/build.sh with the cache and `args` unless `ready`, and checks that it is
/// then; `what` names the program in the messages.
pub fn build_unless(folder: &str, args: &[&str], what: &str, ready: impl Fn() -> bool) {
    static BUILDING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    if ready() {
        return;
    }
    let script = super::repo().join("tests").join(folder).join("build.sh");
    eprintln!(
        "{what} missing in {}: running {}",
        tools_cache().display(),
        script.display()
    );
    let status = Command::new(&script)
        .arg(tools_cache())
        .args(args)
        .stdin(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{} does not run (it needs Go): {e}", script.display()));
    assert!(
        status.success() && ready(),
        "{} failed ({status})",
        script.display()
    );
}
