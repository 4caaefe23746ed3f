//! Finding the mosquitto binaries, spawning the broker so it cannot outlive the test process,
//! and sending it signals.

use std::env;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::thread;

use super::BrokerError;

/// Environment variable naming the mosquitto binary to use instead of searching for it.
pub(crate) const MOSQUITTO_BIN_ENV: &str = "MOSQUITTO_BIN";

/// Directories searched after `PATH`: Debian installs the broker in /usr/sbin, which is often
/// not in a non-root user's `PATH`.
const EXTRA_DIRS: &[&str] = &["/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"];

/// Finds the `mosquitto` broker: `$MOSQUITTO_BIN`, then `PATH`, then [`EXTRA_DIRS`].
pub(crate) fn find_mosquitto() -> Result<PathBuf, BrokerError> {
    if let Some(path) = env::var_os(MOSQUITTO_BIN_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(BrokerError::NotInstalled {
                program: "mosquitto",
                searched: format!("${MOSQUITTO_BIN_ENV}={}", path.display()),
            })
        };
    }
    find_program("mosquitto", None)
}

/// Finds a helper such as `mosquitto_passwd`, first next to the broker binary.
pub(crate) fn find_program(
    name: &'static str,
    near: Option<&Path>,
) -> Result<PathBuf, BrokerError> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(dir) = near.and_then(Path::parent) {
        dirs.push(dir.to_path_buf());
    }
    if let Some(path) = env::var_os("PATH") {
        dirs.extend(env::split_paths(&path));
    }
    dirs.extend(EXTRA_DIRS.iter().map(PathBuf::from));
    dirs.iter()
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| BrokerError::NotInstalled {
            program: name,
            searched: dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(":"),
        })
}

/// Starts mosquitto with `config`, its stdout and stderr appended to `output`.
///
/// On Linux the child gets `SIGKILL` when the thread that forked it dies. All brokers are
/// forked by one thread that lives as long as the process, so a test binary that exits or
/// aborts without dropping its `Broker` (a `static`, `panic = "abort"`, a harness timeout)
/// still takes its brokers with it.
pub(crate) fn spawn(binary: &Path, config: &Path, output: &Path) -> io::Result<Child> {
    let out = File::options().create(true).append(true).open(output)?;
    let mut command = Command::new(binary);
    command
        .arg("-c")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure runs in the forked child before exec and calls only prctl(2),
        // which is async-signal-safe; it touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    spawner_spawn(command)
}

type Request = (Command, mpsc::Sender<io::Result<Child>>);

/// Hands `command` to the long-lived spawner thread (see [`spawn`]).
fn spawner_spawn(command: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    let sender = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        // The thread ends only with the process: the sender lives in this static.
        let started = thread::Builder::new()
            .name("mqtt-test-support-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            });
        if let Err(e) = started {
            eprintln!("mqtt-test-support: cannot start the spawner thread: {e}");
        }
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    let sent = sender
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .send((command, reply_tx));
    if sent.is_err() {
        return Err(io::Error::other("the broker spawner thread is gone"));
    }
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("the broker spawner thread did not answer"))?
}

/// Sends `signal` to process `pid`.
pub(crate) fn signal(pid: u32, signal: libc::c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(io::Error::other)?;
    // SAFETY: kill(2) has no memory-safety preconditions; pid is our own child, which we have
    // not reaped yet (the caller holds its `Child`), so the pid cannot have been reused.
    if unsafe { libc::kill(pid, signal) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether this process runs as root, in which case mosquitto must be told `user root` or it
/// drops privileges to user `mosquitto`, who cannot read our private temp dir.
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_is_reported_with_the_install_hint() {
        let err = find_program("mqtt-test-support-no-such-program", None).unwrap_err();
        assert!(matches!(err, BrokerError::NotInstalled { .. }));
        assert!(err.to_string().contains("apt-get install -y mosquitto"));
    }

    #[test]
    fn mosquitto_is_found_here() {
        // This workspace's machines install it; a missing broker must fail loudly.
        find_mosquitto().unwrap_or_else(|e| panic!("{e}"));
    }
}
