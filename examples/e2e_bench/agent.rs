//! The agent under test: its configuration, the real binary as a child process, its `/metrics`,
//! and its resource use as the kernel counted it (`wait4`'s `rusage`: CPU time of every thread
//! and the peak resident set).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The HEC token the bench's receiver expects (passed to the agent through the environment).
pub const TOKEN_VARIABLE: &str = "AIWARDEN_BENCH_HEC_TOKEN";

/// How the agent is set up for one run.
pub struct RunSettings<'a> {
    /// The directory for this run's configuration, state and log.
    pub dir: &'a Path,
    /// The file the agent tails.
    pub input: &'a Path,
    /// The counting receiver.
    pub hec: SocketAddr,
    /// gzip request bodies.
    pub gzip: bool,
    /// `disk` (the default) or `memory`.
    pub queue: &'a str,
    /// `agent.channel_capacity`, when not the agent's default.
    pub channel_capacity: Option<usize>,
    /// The file source's `max_batch_lines`, when not its default.
    pub max_batch_lines: Option<usize>,
}

/// A running agent.
pub struct Agent {
    pid: i32,
    /// Its `/metrics` address.
    pub telemetry: SocketAddr,
    /// When it was started.
    pub started: Instant,
    /// Its log file.
    pub log: PathBuf,
}

/// What the kernel counted for the agent once it exited.
pub struct Usage {
    /// User plus system CPU seconds, all threads.
    pub cpu_seconds: f64,
    /// The system (kernel) part of `cpu_seconds`: file and socket I/O, fsync, page faults.
    pub system_seconds: f64,
    /// Peak resident set, bytes.
    pub peak_rss: u64,
    /// Whether it exited with status 0.
    pub clean_exit: bool,
}

fn free_port() -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// Write the configuration and start `aiwarden run`.
pub fn start(binary: &Path, settings: &RunSettings, token: &str) -> std::io::Result<Agent> {
    // A checkpoint or queue left by an earlier run would make this one read nothing.
    let state = settings.dir.join("state");
    if state.exists() {
        std::fs::remove_dir_all(&state)?;
    }
    std::fs::create_dir_all(settings.dir)?;
    let telemetry = free_port()?;
    let config = format!(
        r#"[agent]
state_dir = "{state}"
log_format = "json"
{capacity}

[telemetry]
listen = "{telemetry}"

[sources.bench]
type = "file"
include = ["{input}"]
start_at = "beginning"
{batch_lines}

[sinks.splunk]
type = "splunk_hec"
endpoint = "http://{hec}"
token = {{ env = "{TOKEN_VARIABLE}" }}
records = "both"

[sinks.splunk.request]
compression = "{compression}"

# Full requests (1,000 records) go at once whatever the timeout; 100 ms instead of the default
# second only keeps the run's last, partial request from waiting a second at the end.
[sinks.splunk.batch]
timeout = "100ms"

[sinks.splunk.queue]
type = "{queue}"
"#,
        state = state.display(),
        input = settings.input.display(),
        hec = settings.hec,
        compression = if settings.gzip { "gzip" } else { "none" },
        queue = settings.queue,
        batch_lines = settings
            .max_batch_lines
            .map(|lines| format!("max_batch_lines = {lines}"))
            .unwrap_or_default(),
        capacity = settings
            .channel_capacity
            .map(|batches| format!("channel_capacity = {batches}"))
            .unwrap_or_default(),
    );
    let config_path = settings.dir.join("aiwarden.toml");
    std::fs::write(&config_path, config)?;
    let log = settings.dir.join("agent.log");
    let log_file = std::fs::File::create(&log)?;
    let started = Instant::now();
    let child = Command::new(binary)
        .arg("run")
        .arg("--config")
        .arg(&config_path)
        .env(TOKEN_VARIABLE, token)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()?;
    let pid = i32::try_from(child.id()).map_err(std::io::Error::other)?;
    // The child is reaped by `wait4` in `stop`, which also yields its resource use; dropping the
    // handle neither kills nor waits.
    drop(child);
    Ok(Agent {
        pid,
        telemetry,
        started,
        log,
    })
}

impl Agent {
    /// Wait until `/health` answers.
    pub fn wait_healthy(&self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if http_get(self.telemetry, "/health").is_ok_and(|(status, _)| status == 200) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "the agent did not answer /health within {timeout:?}; see {}",
            self.log.display()
        ))
    }

    /// The current `/metrics` text.
    pub fn metrics(&self) -> Result<Metrics, String> {
        match http_get(self.telemetry, "/metrics") {
            Ok((200, body)) => Ok(Metrics(body)),
            Ok((status, _)) => Err(format!("/metrics answered {status}")),
            Err(error) => Err(format!("/metrics: {error}")),
        }
    }

    /// Resident set now, bytes (from `/proc`).
    pub fn rss_now(&self) -> Option<u64> {
        self.status_bytes("VmRSS:")
    }

    /// A `/proc/<pid>/status` figure in bytes.
    fn status_bytes(&self, key: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let line = status.lines().find(|line| line.starts_with(key))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// SIGTERM, then wait for the exit and collect what the kernel counted. The peak resident
    /// set is `VmHWM` read just before: `wait4`'s `ru_maxrss` would also count the pages the
    /// child shared with this process between fork and exec (the whole data set after the
    /// bare parse).
    pub fn stop(self) -> Result<Usage, String> {
        let peak_rss = self.status_bytes("VmHWM:").unwrap_or(0);
        // SAFETY: plain system calls on the pid of our own unreaped child.
        let (waited, status, usage) = unsafe {
            libc::kill(self.pid, libc::SIGTERM);
            let mut status = 0;
            let mut usage: libc::rusage = std::mem::zeroed();
            let waited = libc::wait4(self.pid, &mut status, 0, &mut usage);
            (waited, status, usage)
        };
        if waited != self.pid {
            return Err(format!("wait4 failed: {}", std::io::Error::last_os_error()));
        }
        let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
        Ok(Usage {
            cpu_seconds: seconds(usage.ru_utime) + seconds(usage.ru_stime),
            system_seconds: seconds(usage.ru_stime),
            peak_rss,
            clean_exit: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        })
    }
}

/// A scraped Prometheus text exposition.
pub struct Metrics(String);

impl Metrics {
    /// The sum of every sample of `name` (any labels).
    pub fn sum(&self, name: &str) -> f64 {
        self.samples(name).map(|(_, value)| value).sum()
    }

    /// The sample of `name` whose labels contain `label`.
    pub fn with_label(&self, name: &str, label: &str) -> Option<f64> {
        self.samples(name)
            .find(|(labels, _)| labels.contains(label))
            .map(|(_, value)| value)
    }

    fn samples<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (&'a str, f64)> + 'a {
        self.0.lines().filter_map(move |line| {
            let rest = line.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(labelled) => labelled.split_once("} ")?,
                None => ("", rest.strip_prefix(' ')?),
            };
            Some((labels, value.trim().parse().ok()?))
        })
    }
}

fn http_get(address: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    Ok((status, body))
}
