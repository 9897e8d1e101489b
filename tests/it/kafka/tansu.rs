//! The fleet scenario against tansu, a real Kafka-protocol broker, on loopback.
//!
//! `.ci/run` starts building tansu once in the background (`.ci/kafka-peer.sh --start`, cached)
//! and exports `AIWARDEN_TANSU`; the test waits for that build. Without the variable it looks in
//! the cache that script fills. Under `CI=true` a missing tansu fails
//! the test; elsewhere (a developer's machine without the ten-minute build) it says so and
//! returns.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn tansu_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("AIWARDEN_TANSU") {
        let path = PathBuf::from(path);
        wait_for_background_build(&path);
        assert!(
            path.is_file(),
            "AIWARDEN_TANSU={} does not exist",
            path.display()
        );
        return Some(path);
    }
    let cached = PathBuf::from(std::env::var_os("HOME")?).join(".cache/aiwarden-tools/bin/tansu");
    cached.is_file().then_some(cached)
}

/// `.ci/kafka-peer.sh --start` builds tansu while the rest of CI runs, its process id in
/// `<path>.building` until it ends: wait for it (a cold build takes about ten minutes).
fn wait_for_background_build(path: &Path) {
    let marker = PathBuf::from(format!("{}.building", path.display()));
    let started = std::time::Instant::now();
    while let Ok(pid) = std::fs::read_to_string(&marker) {
        let alive = std::path::Path::new(&format!("/proc/{}", pid.trim())).exists();
        if !alive || path.is_file() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40 * 60),
            "the tansu build has not finished in 40 minutes"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    if !path.is_file() {
        let log = std::fs::read_to_string(format!("{}.log", path.display())).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        eprintln!("--- tansu build log (last lines)");
        for line in tail.iter().rev() {
            eprintln!("{line}");
        }
    }
}

/// The broker process; on a failed test its log is printed.
struct Broker {
    child: Child,
    log: tempfile::NamedTempFile,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.log.path()).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            eprintln!("--- tansu (last lines)");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

fn start(binary: &Path) -> (Broker, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("tcp://127.0.0.1:{port}");
    let log = tempfile::NamedTempFile::new().unwrap();
    let child = Command::new(binary)
        .args(["broker", "--storage-engine", "memory://tansu/"])
        .args(["--listener-url", &url, "--advertised-listener-url", &url])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log.reopen().unwrap())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let broker = Broker { child, log };
    let address = format!("127.0.0.1:{port}");
    crate::util::wait_until(Duration::from_secs(30), "tansu to listen", || {
        std::net::TcpStream::connect(&address).is_ok()
    });
    (broker, address)
}

#[tokio::test(flavor = "multi_thread")]
async fn detector_tier_of_three_against_tansu() {
    let Some(binary) = tansu_binary() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "tansu is not installed: CI must provide it (.ci/kafka-peer.sh, AIWARDEN_TANSU)"
        );
        eprintln!("tansu not installed (.ci/kafka-peer.sh installs it): not run here");
        return;
    };
    let (_broker, brokers) = start(&binary);
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .unwrap();
    let topic = NewTopic::new("audit", 6, TopicReplication::Fixed(1));
    let created = admin
        .create_topics([&topic], &AdminOptions::new())
        .await
        .unwrap();
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    // The state topic is left to the detectors: they create it (CreateTopics) on a real broker.
    tokio::task::spawn_blocking(move || {
        super::fleet::run_fleet(
            &brokers,
            "audit",
            6,
            "6s",
            super::fleet::Coordinator::NoBarrier,
        )
    })
    .await
    .unwrap();
}
