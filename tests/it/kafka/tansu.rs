//! The fleet scenario against tansu, a real Kafka-protocol broker, on loopback.
//!
//! `.ci/run` builds tansu once (`.ci/kafka-peer.sh`) and exports `AIWARDEN_TANSU`; the test then
//! fails if the broker cannot be used. Without the variable it looks in the cache that script
//! fills, and only when tansu is nowhere does it say so and return (a developer's machine).

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn tansu_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("AIWARDEN_TANSU") {
        let path = PathBuf::from(path);
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

struct Broker(Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(binary: &PathBuf) -> (Broker, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("tcp://127.0.0.1:{port}");
    let child = Command::new(binary)
        .args(["broker", "--storage-engine", "memory://tansu/"])
        .args(["--listener-url", &url, "--advertised-listener-url", &url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let broker = Broker(child);
    let address = format!("127.0.0.1:{port}");
    crate::util::wait_until(Duration::from_secs(30), "tansu to listen", || {
        std::net::TcpStream::connect(&address).is_ok()
    });
    (broker, address)
}

#[tokio::test(flavor = "multi_thread")]
async fn detector_tier_of_three_against_tansu() {
    let Some(binary) = tansu_binary() else {
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
    tokio::task::spawn_blocking(move || {
        super::fleet::run_fleet(&brokers, "audit", 6, "6s");
    })
    .await
    .unwrap();
}
