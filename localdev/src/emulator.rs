//! One function under AWS's Lambda Runtime Interface Emulator (`aws-lambda-rie`, shipped in the
//! aws-sam-cli package): the same emulator `sam local invoke` runs inside its container.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::http::Method;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Notify;

use crate::client::HttpClient;

/// A free port on the loopback interface.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The emulator logs `INIT REPORT(durationMs: …)` on a cold start. (Its `REPORT` line's
/// "Init Duration" is not the function's init: it reads near zero.)
fn init_duration_ms(line: &str) -> Option<f64> {
    let rest = line.split("INIT REPORT(durationMs: ").nth(1)?;
    rest.split(')').next()?.trim().parse().ok()
}

enum Listening {
    Ours,
    /// The emulator exited, or its port went to another process.
    Lost(String),
}

enum Owner {
    /// The process asked about.
    Pid,
    Stranger,
    Nobody,
}

/// Who holds the socket listening on 127.0.0.1:`port`: process `pid`, another process, or
/// nobody yet. Read from Linux's `/proc` (the emulator is a Linux binary).
fn listener_owner(pid: u32, port: u16) -> Result<Owner, String> {
    let table =
        std::fs::read_to_string("/proc/net/tcp").map_err(|e| format!("/proc/net/tcp: {e}"))?;
    // Rows: `sl local_address rem_address st … uid timeout inode`; the address is
    // `0100007F:1F90` (hex), and state 0A is LISTEN.
    let inode = table.lines().skip(1).find_map(|row| {
        let fields: Vec<&str> = row.split_whitespace().collect();
        let (_, local_port) = fields.get(1)?.split_once(':')?;
        let listening =
            u16::from_str_radix(local_port, 16).ok()? == port && *fields.get(3)? == "0A";
        listening.then(|| fields.get(9).map(|inode| format!("socket:[{inode}]")))?
    });
    let Some(socket) = inode else {
        return Ok(Owner::Nobody);
    };
    let fds =
        std::fs::read_dir(format!("/proc/{pid}/fd")).map_err(|e| format!("/proc/{pid}/fd: {e}"))?;
    let held = fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == socket.as_str())
    });
    Ok(if held { Owner::Pid } else { Owner::Stranger })
}

#[derive(Default)]
struct Reports {
    init_ms: Mutex<Option<f64>>,
    arrived: Notify,
    /// Set when stopping: the function's complaint that its runtime API went away is noise.
    stopping: std::sync::atomic::AtomicBool,
}

pub struct Emulator {
    pub function: String,
    port: u16,
    invoke_url: String,
    /// The emulator runs one invocation at a time, like one Lambda instance.
    busy: tokio::sync::Mutex<()>,
    reports: Arc<Reports>,
    child: Mutex<Option<Child>>,
    client: HttpClient,
}

/// What the function's process (the emulator's child running `bootstrap`) has used so far, by
/// the kernel's accounting: CPU of every thread in nanoseconds (not the 10 ms ticks of
/// `/proc/…/stat`), and the peak resident set.
#[derive(Debug, Clone, Copy)]
pub struct ProcessUsage {
    pub cpu: Duration,
    pub peak_rss_kib: u64,
}

/// The emulator's children (the function's runtime process), from Linux's `/proc`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|child| child.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

fn process_usage(pid: u32) -> Option<ProcessUsage> {
    let mut cpu_ns: u64 = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        // `schedstat`: time on the CPU (ns), time waiting, timeslices.
        let schedstat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        cpu_ns += schedstat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let peak_rss_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(ProcessUsage {
        cpu: Duration::from_nanos(cpu_ns),
        peak_rss_kib,
    })
}

/// What one invocation returned.
pub struct Invocation {
    pub payload: Vec<u8>,
    /// Set on a cold start.
    pub init_ms: Option<f64>,
    /// From sending the event to the answer (a cold start's init included).
    pub elapsed: Duration,
}

impl Emulator {
    /// Starts the emulator for `bootstrap` with exactly `env` (plus PATH), as Lambda gives a
    /// function only its configured environment. Function output is forwarded to stderr,
    /// prefixed with the function's name; the emulator's own chatter only when `verbose`.
    pub async fn spawn(
        function: &str,
        rie: &Path,
        bootstrap: &Path,
        env: &HashMap<String, String>,
        verbose: bool,
    ) -> Result<Self, String> {
        // A port found free can be taken by another process (another kincode-local, say)
        // before the emulator binds it: the emulator then exits, and a stranger answers on
        // "its" port. So the emulator counts as started only once it holds its own listening
        // socket, and a lost port means a fresh pair.
        let mut lost = Vec::new();
        for _ in 0..5 {
            let emulator = Self::spawn_on_fresh_ports(function, rie, bootstrap, env, verbose)?;
            match emulator.wait_listening().await? {
                Listening::Ours => return Ok(emulator),
                Listening::Lost(why) => {
                    emulator.stop().await;
                    lost.push(why);
                }
            }
        }
        Err(format!("emulator for {function}: {}", lost.join("; ")))
    }

    fn spawn_on_fresh_ports(
        function: &str,
        rie: &Path,
        bootstrap: &Path,
        env: &HashMap<String, String>,
        verbose: bool,
    ) -> Result<Self, String> {
        let (port, runtime_api_port) = (
            free_port().map_err(|e| e.to_string())?,
            free_port().map_err(|e| e.to_string())?,
        );
        let mut command = Command::new(rie);
        command
            .arg("--runtime-interface-emulator-address")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--runtime-api-address")
            .arg(format!("127.0.0.1:{runtime_api_port}"))
            .arg(bootstrap)
            .env_clear()
            .envs(env)
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_FUNCTION_NAME", function)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|e| format!("{}: {e}", rie.display()))?;
        let reports = Arc::new(Reports::default());
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child.stderr.take().map(|s| Box::new(s) as _),
        ]
        .into_iter()
        .flatten()
        {
            let (reports, function) = (reports.clone(), function.to_owned());
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(ms) = init_duration_ms(&line) {
                        *reports.init_ms.lock().expect("lock") = Some(ms);
                    }
                    if line.starts_with("REPORT ") {
                        reports.arrived.notify_one();
                    }
                    let emulator_chatter = line.contains("(rapid)")
                        || line.starts_with("START ")
                        || line.starts_with("END ")
                        || line.starts_with("REPORT ");
                    let stopping = reports.stopping.load(std::sync::atomic::Ordering::Relaxed);
                    if verbose || !(emulator_chatter || stopping) {
                        eprintln!("[{function}] {line}");
                    }
                }
            });
        }
        let emulator = Self {
            function: function.to_owned(),
            port,
            invoke_url: format!(
                "http://127.0.0.1:{port}/2015-03-31/functions/function/invocations"
            ),
            busy: tokio::sync::Mutex::new(()),
            reports,
            child: Mutex::new(Some(child)),
            client: HttpClient::default(),
        };
        Ok(emulator)
    }

    async fn wait_listening(&self) -> Result<Listening, String> {
        for _ in 0..100 {
            let pid = {
                let mut child = self.child.lock().expect("lock");
                let Some(child) = child.as_mut() else {
                    return Err(format!("emulator for {} was stopped", self.function));
                };
                if let Ok(Some(status)) = child.try_wait() {
                    return Ok(Listening::Lost(format!(
                        "exited ({status}) on port {}",
                        self.port
                    )));
                }
                child.id()
            };
            match pid.map(|pid| listener_owner(pid, self.port)).transpose()? {
                Some(Owner::Pid) => return Ok(Listening::Ours),
                Some(Owner::Stranger) => {
                    return Ok(Listening::Lost(format!(
                        "port {} taken by another process",
                        self.port
                    )))
                }
                Some(Owner::Nobody) | None => {}
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!(
            "emulator for {} did not listen on {}",
            self.function, self.port
        ))
    }

    pub async fn invoke(&self, event: &serde_json::Value) -> Result<Invocation, String> {
        let _one_at_a_time = self.busy.lock().await;
        *self.reports.init_ms.lock().expect("lock") = None;
        let arrived = self.reports.arrived.notified();
        let sent = std::time::Instant::now();
        let answer = self
            .client
            .send(
                Method::POST,
                &self.invoke_url,
                &[("content-type", "application/json")],
                event.to_string().into_bytes(),
            )
            .await?;
        let elapsed = sent.elapsed();
        // The REPORT line follows the answer closely; wait a moment for it, not forever.
        let _ = tokio::time::timeout(Duration::from_millis(200), arrived).await;
        let init_ms = *self.reports.init_ms.lock().expect("lock");
        Ok(Invocation {
            payload: answer.body,
            init_ms,
            elapsed,
        })
    }

    /// Whether an invocation is running now (a hint: the next caller may still have to wait).
    pub fn is_busy(&self) -> bool {
        self.busy.try_lock().is_err()
    }

    /// The function process's usage so far; `None` before its first invocation starts it.
    pub fn function_usage(&self) -> Option<ProcessUsage> {
        let pid = self.child.lock().expect("lock").as_ref()?.id()?;
        children(pid).into_iter().find_map(process_usage)
    }

    pub async fn stop(&self) {
        self.reports
            .stopping
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let child = self.child.lock().expect("lock").take();
        if let Some(mut child) = child {
            let _ = child.kill().await;
        }
    }
}

/// N emulators of one function, as Lambda runs N instances of it: a request goes to an idle
/// instance, or, when all are busy, waits its turn at the next one in rotation.
pub struct Instances {
    all: Vec<Emulator>,
    next: std::sync::atomic::AtomicUsize,
}

impl Instances {
    pub fn new(all: Vec<Emulator>) -> Self {
        assert!(!all.is_empty(), "at least one instance");
        Self {
            all,
            next: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.all.len()
    }

    /// An idle instance, else the next in rotation; by its index.
    fn pick(&self) -> usize {
        self.all
            .iter()
            .position(|e| !e.is_busy())
            .unwrap_or_else(|| {
                self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.all.len()
            })
    }

    /// The invocation, and which instance ran it.
    pub async fn invoke(&self, event: &serde_json::Value) -> Result<(usize, Invocation), String> {
        let instance = self.pick();
        let invocation = self.all[instance].invoke(event).await?;
        Ok((instance, invocation))
    }

    pub async fn stop(&self) {
        for emulator in &self.all {
            emulator.stop().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_its_own_listener_from_a_strangers() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut stranger = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let owners = (
            listener_owner(std::process::id(), port),
            listener_owner(stranger.id(), port),
        );
        drop(listener);
        let after_close = listener_owner(std::process::id(), port);
        stranger.kill().unwrap();
        stranger.wait().unwrap();
        assert!(matches!(owners, (Ok(Owner::Pid), Ok(Owner::Stranger))));
        assert!(matches!(after_close, Ok(Owner::Nobody)));
    }

    #[test]
    fn reads_init_duration_from_report_lines() {
        let cold = "27 Nov 2026 04:26:47,644 [INFO] (rapid) INIT REPORT(durationMs: 37.896000)";
        assert_eq!(init_duration_ms(cold), Some(37.896));
        assert_eq!(
            init_duration_ms("REPORT RequestId: 1b2c Init Duration: 0.02 ms"),
            None
        );
    }
}
