//! A real third-party receiver: rsyslog (Debian package `rsyslog`) in the foreground on
//! loopback with `imtcp`, writing its own parse of each message (PRI, APP-NAME, PROCID, MSGID,
//! HOSTNAME, STRUCTURED-DATA, MSG) to a file. Fails, rather than skips, when rsyslogd is missing.

use crate::util::{run_in_process, session_events, wait_until};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn rsyslogd() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join("rsyslogd"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "rsyslogd is not installed: this test needs a real rsyslog receiver. \
                 Install it with `apt-get install -y rsyslog` (.ci/run does this)."
            )
        })
}

/// rsyslogd, killed when dropped.
pub(crate) struct Daemon {
    child: Child,
    dir: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    fn start(dir: &Path, port: u16) -> Daemon {
        Daemon::start_writing(dir, port, "fields")
    }

    /// rsyslogd on `127.0.0.1:port` writing `received.log` with `template`: `fields` (its
    /// parse, one field per `|`) or one of rsyslog's own, such as `RSYSLOG_FileFormat`.
    pub(crate) fn start_writing(dir: &Path, port: u16, template: &str) -> Daemon {
        let config = format!(
            r#"global(workDirectory="{dir}")
module(load="imtcp")
template(name="fields" type="string"
         string="%pri%|%app-name%|%procid%|%msgid%|%hostname%|%structured-data%|%msg%\n")
ruleset(name="aiwarden") {{
  action(type="omfile" file="{dir}/received.log" template="{template}")
}}
input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="aiwarden")
"#,
            dir = dir.display()
        );
        let conf = dir.join("rsyslog.conf");
        std::fs::write(&conf, config).unwrap();
        let log = std::fs::File::create(dir.join("rsyslogd.log")).unwrap();
        let child = Command::new(rsyslogd())
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut daemon = Daemon {
            child,
            dir: dir.to_path_buf(),
        };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = daemon.child.try_wait().unwrap() {
                panic!("rsyslogd exited ({status}): {}", daemon.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "rsyslogd did not listen within 15 s: {}",
                daemon.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        daemon
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("rsyslogd.log")).unwrap_or_default()
    }

    /// Where rsyslog writes what it received.
    pub(crate) fn received_path(&self) -> PathBuf {
        self.dir.join("received.log")
    }

    pub(crate) fn received(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("received.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_parses_what_the_sink_sends_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let daemon = Daemon::start(dir.path(), port);
    // 55 MCP calls in one session: 55 events and one mcp-volume alert.
    let records = session_events("rs", 55, json!({"event_type": "mcp_call"}));
    let toml = format!(
        r#"
[sinks.syslog]
type = "syslog"
address = "127.0.0.1:{port}"
records = "both"
hostname = "gw-rsyslog"
[sinks.syslog.batch]
max_events = 10
timeout = "50ms"
"#
    );
    run_in_process(&records, &toml, None).await;
    wait_until(Duration::from_secs(10), "rsyslog to write 56 lines", || {
        daemon.received().len() >= 56
    });
    let lines = daemon.received();
    assert_eq!(lines.len(), 56, "{}", daemon.log());
    let pid = std::process::id().to_string();
    let mut event_ids = Vec::new();
    let mut alerts = 0;
    for line in &lines {
        let fields: Vec<_> = line.splitn(7, '|').collect();
        assert_eq!(fields.len(), 7, "{line}");
        assert_eq!(fields[1], "aiwarden", "APP-NAME: {line}");
        assert_eq!(fields[2], pid, "PROCID: {line}");
        assert_eq!(fields[4], "gw-rsyslog", "HOSTNAME: {line}");
        let msg = fields[6].trim_start_matches('\u{feff}');
        let record: serde_json::Value =
            serde_json::from_str(msg).unwrap_or_else(|e| panic!("MSG is not JSON ({e}): {line}"));
        match fields[3] {
            "event" => {
                assert_eq!(fields[0], "134", "local0.info: {line}");
                assert_eq!(
                    fields[5],
                    r#"[aiwarden@32473 event_type="mcp_call" user_id="u-7f3a" session_id="s-rs"]"#
                );
                event_ids.push(record["event_id"].as_str().unwrap().to_string());
            }
            "alert" => {
                alerts += 1;
                assert_eq!(fields[0], "132", "local0.warning: {line}");
                assert_eq!(
                    fields[5],
                    r#"[aiwarden@32473 rule_id="mcp-volume" severity="medium" user_id="u-7f3a" session_id="s-rs"]"#
                );
                assert_eq!(record["rule_id"], "mcp-volume");
            }
            other => panic!("MSGID {other}: {line}"),
        }
    }
    assert_eq!(alerts, 1);
    let want: Vec<_> = (0..55).map(|n| format!("rs-{n}")).collect();
    assert_eq!(event_ids, want, "every event once, in order");
}
