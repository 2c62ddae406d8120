//! The consumers of what the operator writes, run for real (tests/consumers/build.sh builds them
//! from the Go modules pinned in tests/consumers/<name>, which this runs when a binary is
//! missing): prometheus-operator, Argo Rollouts' controller and Flagger, each with the CRDs of
//! its own module. A [`Daemon`] is one of them running on loopback with a log file, stopped
//! (SIGTERM, then SIGKILL) on drop and killed by the kernel should the test process die first.
#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::go_tools::{self, required_version, tools_cache};

/// One consumer as tests/consumers/build.sh leaves it in the tools cache.
#[derive(Clone, Debug)]
pub struct Consumer {
    /// Its folder under tests/consumers (and build.sh's name for it).
    pub name: &'static str,
    /// The version its go.mod pins, such as `v0.93.0`.
    pub version: String,
    pub binary: PathBuf,
    /// Its CRDs, from the same module.
    pub crds: PathBuf,
}

impl Consumer {
    pub fn prometheus_operator() -> Consumer {
        Consumer::ensure(
            "prometheus-operator",
            "github.com/prometheus-operator/prometheus-operator",
            "prometheus-operator",
        )
    }

    pub fn argo_rollouts() -> Consumer {
        Consumer::ensure(
            "argo-rollouts",
            "github.com/argoproj/argo-rollouts",
            "rollouts-controller",
        )
    }

    pub fn flagger() -> Consumer {
        Consumer::ensure("flagger", "github.com/fluxcd/flagger", "flagger")
    }

    /// The consumer of the version tests/consumers/<name>/go.mod pins, built first when missing
    /// (minutes, cold; build.sh's output goes to the terminal).
    fn ensure(name: &'static str, module: &str, output: &str) -> Consumer {
        let folder = super::repo().join("tests/consumers");
        let version = required_version(&folder.join(name).join("go.mod"), module)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let home = tools_cache().join(format!("{name}-{version}"));
        let consumer = Consumer {
            name,
            version,
            binary: home.join("bin").join(output),
            crds: home.join("crds"),
        };
        go_tools::build_unless(
            "consumers",
            &[name],
            &format!("{name} {}", consumer.version),
            || consumer.binary.is_file() && consumer.crds.is_dir(),
        );
        consumer
    }

    /// The CRD files, in name order.
    pub fn crd_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.crds)
            .unwrap_or_else(|e| panic!("{}: {e}", self.crds.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        files
    }

    /// The consumer running with `args` and `env` (besides the test's own environment), its
    /// output in `log`.
    pub fn start(&self, args: &[String], env: &[(&str, &str)], log: &Path) -> Daemon {
        Daemon::start(self.name, &self.binary, args, env, log)
    }
}

/// A program running for a test; stopped on drop.
pub struct Daemon {
    pub name: &'static str,
    child: Child,
    pub log: PathBuf,
}

impl Daemon {
    pub fn start(
        name: &'static str,
        program: &Path,
        args: &[String],
        env: &[(&str, &str)],
        log: &Path,
    ) -> Daemon {
        let out = std::fs::File::create(log).unwrap();
        let err = out.try_clone().unwrap();
        let mut command = Command::new(program);
        command
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        // SAFETY: prctl is async-signal-safe and touches only the new process. The signal fires
        // when the thread that started the child ends: tests start daemons from the test's own
        // thread, which outlives them (they are dropped before it returns).
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        Daemon {
            name,
            child,
            log: log.to_path_buf(),
        }
    }

    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The whole log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log's last `lines` lines.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = self.log_text();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// SIGTERM, then SIGKILL after `grace`; the exit code (None when killed).
    pub fn stop(&mut self, grace: Duration) -> Option<i32> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return status.code();
        }
        // SAFETY: signals our own child, which has not been waited for (still running).
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        self.child.wait().ok().and_then(|s| s.code())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(10));
    }
}

/// Polls `check` every 200 ms until it gives a value or `limit` passes; then panics naming
/// `what`, with its last complaint and the daemons' log tails.
pub fn wait_for<T>(
    what: &str,
    limit: Duration,
    daemons: &mut [&mut Daemon],
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        let last = match check() {
            Ok(v) => return v,
            Err(e) => e,
        };
        let dead: Vec<&str> = daemons
            .iter_mut()
            .filter_map(|d| (!d.running()).then_some(d.name))
            .collect();
        if Instant::now() >= deadline || !dead.is_empty() {
            let logs: Vec<String> = daemons
                .iter()
                .map(|d| format!("--- {} ({}):\n{}", d.name, d.log.display(), d.log_tail(40)))
                .collect();
            panic!(
                "{what}: not within {limit:?} (exited: {dead:?}); last: {last}\n{}",
                logs.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
