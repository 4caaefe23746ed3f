//! What the command-line tests share: a child process whose output is read on threads,
//! bounded in time and killed when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Upper bound of each wait for output.
pub const WAIT: Duration = Duration::from_secs(20);

/// `mqtt` with the whitespace-separated words of `line` (add arguments holding spaces with
/// `.arg()`).
pub fn mqtt(line: &str) -> Command {
    program(env!("CARGO_BIN_EXE_mqtt"), line)
}

/// Another program, as [`mqtt`].
pub fn program(name: &str, line: &str) -> Command {
    let mut cmd = Command::new(name);
    cmd.args(line.split_whitespace());
    cmd
}

/// A child process whose output is read on threads, killed when dropped.
pub struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

/// How a child ended.
#[derive(Debug)]
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: Vec<String>,
    pub stderr: String,
}

impl Running {
    pub fn spawn(cmd: &mut Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let (etx, stderr) = mpsc::channel();
        let mut err = child.stderr.take().expect("stderr");
        thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            let _ = etx.send(s);
        });
        Self {
            child,
            lines,
            stderr,
        }
    }

    /// Writes to stdin and closes it.
    #[allow(dead_code)] // not every test binary feeds stdin
    pub fn feed(&mut self, input: &[u8]) {
        let mut stdin = self.child.stdin.take().expect("stdin");
        stdin.write_all(input).expect("write stdin");
    }

    /// The next line of stdout, within `WAIT`.
    #[allow(dead_code)]
    pub fn line(&self) -> String {
        self.lines
            .recv_timeout(WAIT)
            .expect("a line of output in time")
    }

    /// Waits for a stdout line starting with `prefix`, within `WAIT`; returns it.
    #[allow(dead_code)]
    pub fn wait_line(&self, prefix: &str) -> String {
        let deadline = Instant::now() + WAIT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("no line starting with {prefix:?} within {WAIT:?}");
    }

    /// Waits for the exit (killing the child and failing after `timeout`).
    pub fn wait(mut self, timeout: Duration) -> Finished {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let stderr = self.stderr.recv_timeout(WAIT).unwrap_or_default();
                panic!("child still running after {timeout:?}; stderr:\n{stderr}");
            }
            thread::sleep(Duration::from_millis(10));
        };
        let mut stdout = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(WAIT) {
            stdout.push(line);
        }
        let stderr = self.stderr.recv_timeout(WAIT).unwrap_or_default();
        Finished {
            code: status.code(),
            stdout,
            stderr,
        }
    }
}

impl Running {
    /// Kills the child with SIGKILL and returns what it printed until then.
    #[allow(dead_code)]
    pub fn kill(mut self) -> Finished {
        let _ = self.child.kill();
        let status = self.child.wait().expect("wait");
        let mut stdout = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(WAIT) {
            stdout.push(line);
        }
        let stderr = self.stderr.recv_timeout(WAIT).unwrap_or_default();
        Finished {
            code: status.code(),
            stdout,
            stderr,
        }
    }

    /// Lines printed so far, without waiting.
    #[allow(dead_code)]
    pub fn lines_so_far(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
