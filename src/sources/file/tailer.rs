//! The blocking tail loop: scan, read, send, commit acknowledged progress, wait for a change.

use super::super::SourceError;
use super::checkpoint::CheckpointStore;
use super::config::FileSourceConfig;
use super::discovery::{DirWatcher, Globs, Wake};
use super::emitter::{Emitter, Stopped};
use super::identity::{dev_ino, DevIno};
use super::tailed::{StartPolicy, TailedFile};
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Read buffer size: large enough for throughput, small enough to keep per-source memory low.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// How often checkpoints are fsynced (and pruned); between syncs they are only renamed into place.
const SYNC_INTERVAL: Duration = Duration::from_secs(5);

/// How soon to look again while batches await acknowledgement, so commits follow acks closely.
const ACK_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The state of a running file source.
pub(crate) struct Tailer {
    config: FileSourceConfig,
    emitter: Emitter,
    globs: Globs,
    watcher: DirWatcher,
    wake: mpsc::Receiver<Wake>,
    checkpoints: CheckpointStore,
    files: BTreeMap<DevIno, TailedFile>,
    /// Paths whose open failed and was logged, so each is logged once until it works.
    open_warned: HashSet<PathBuf>,
    buffer: Vec<u8>,
    last_sync: Instant,
    /// A checkpoint write failed and was logged; logged again only after a success.
    persist_failing: bool,
}

impl Tailer {
    /// A tailer with loaded checkpoints, watching for changes through `wake`.
    pub(crate) fn new(
        config: FileSourceConfig,
        emitter: Emitter,
        checkpoints: CheckpointStore,
        wake: (mpsc::Sender<Wake>, mpsc::Receiver<Wake>),
    ) -> Result<Self, SourceError> {
        let globs = Globs::new(&config.include, &config.exclude)?;
        let (wake_sender, wake_receiver) = wake;
        Ok(Tailer {
            config,
            emitter,
            globs,
            watcher: DirWatcher::new(wake_sender),
            wake: wake_receiver,
            checkpoints,
            files: BTreeMap::new(),
            open_warned: HashSet::new(),
            buffer: vec![0u8; READ_BUFFER_BYTES],
            last_sync: Instant::now(),
            persist_failing: false,
        })
    }

    /// Tail until shutdown (or until the pipeline stops receiving), then settle and persist.
    pub(crate) fn run(mut self) -> Result<(), SourceError> {
        self.scan(true);
        let (stopped, _) = self.read_all();
        for tailed in self.files.values_mut() {
            tailed.end_first_pass();
        }
        // Persists the positions `start_at = end` chose, which are skipped on purpose.
        self.checkpoints.persist(true)?;
        if stopped {
            return self.finish();
        }
        let mut next_scan = Instant::now() + self.config.glob_interval;
        loop {
            let (stopped, progressed) = self.read_all();
            self.collect_acks();
            self.retire_drained();
            self.persist_progress();
            if stopped || self.emitter.is_shutting_down() {
                break;
            }
            // After progress, look again at once: more may have arrived while we were sending.
            let notified = if progressed {
                self.drain_wakes()
            } else {
                self.wait_for_change(next_scan)
            };
            if notified || Instant::now() >= next_scan {
                self.scan(false);
                next_scan = Instant::now() + self.config.glob_interval;
            }
        }
        self.finish()
    }

    /// Scan the globs: track new files, follow renames, and start draining vanished ones.
    fn scan(&mut self, first: bool) {
        let mut seen: HashSet<DevIno> = HashSet::new();
        for path in self.globs.scan() {
            let metadata = match std::fs::metadata(&path) {
                Ok(metadata) if metadata.is_file() => metadata,
                Ok(_) => continue,
                Err(error) => {
                    self.warn_open(path, &error);
                    continue;
                }
            };
            let id = dev_ino(&metadata);
            if let Some(tailed) = self.files.get_mut(&id) {
                tailed.seen_at(&path);
                seen.insert(id);
                continue;
            }
            let file = match File::open(&path) {
                Ok(file) => file,
                Err(error) => {
                    self.warn_open(path, &error);
                    continue;
                }
            };
            // The path may have been replaced between stat and open: the descriptor is the truth.
            let id = match file.metadata() {
                Ok(metadata) => dev_ino(&metadata),
                Err(error) => {
                    self.warn_open(path, &error);
                    continue;
                }
            };
            self.open_warned.remove(&path);
            seen.insert(id);
            if let Some(tailed) = self.files.get_mut(&id) {
                tailed.seen_at(&path);
                continue;
            }
            tracing::debug!(source = %self.emitter.source, path = %path.display(), "Found file.");
            let start = StartPolicy::for_discovery(first, self.config.start_at);
            self.files
                .insert(id, TailedFile::new(path, file, id, start));
        }
        for (id, tailed) in self.files.iter_mut() {
            if !seen.contains(id) {
                tailed.not_seen();
            }
        }
        self.watcher.ensure(&self.globs.watch_dirs());
    }

    fn warn_open(&mut self, path: PathBuf, error: &io::Error) {
        // Vanishing between the glob and the open is ordinary rotation, not worth a warning.
        if error.kind() == io::ErrorKind::NotFound {
            return;
        }
        if !self.open_warned.contains(&path) {
            tracing::warn!(source = %self.emitter.source, path = %path.display(), %error, kind = ?error.kind(), "Cannot open file; retrying at every scan.");
            self.open_warned.insert(path);
        }
    }

    /// Read every file once: (must stop, read anything).
    fn read_all(&mut self) -> (bool, bool) {
        let mut progressed = false;
        for tailed in self.files.values_mut() {
            if self.emitter.is_shutting_down() {
                return (true, progressed);
            }
            match tailed.read(
                &self.emitter,
                &mut self.checkpoints,
                self.config.max_line_bytes,
                self.config.fingerprint_bytes,
                &mut self.buffer,
            ) {
                Ok(read) => progressed |= read,
                Err(Stopped::Shutdown) => return (true, progressed),
                Err(Stopped::Closed) => {
                    tracing::info!(source = %self.emitter.source, "The pipeline stopped receiving; stopping the file source.");
                    return (true, progressed);
                }
            }
        }
        (false, progressed)
    }

    fn collect_acks(&mut self) {
        for tailed in self.files.values_mut() {
            tailed.collect_acks(&mut self.checkpoints, false);
        }
    }

    fn retire_drained(&mut self) {
        let rotate_wait = self.config.rotate_wait;
        let retirable: Vec<DevIno> = self
            .files
            .iter()
            .filter(|(_, tailed)| tailed.is_retirable(rotate_wait))
            .map(|(id, _)| *id)
            .collect();
        for id in retirable {
            if let Some(tailed) = self.files.remove(&id) {
                tailed.retire();
            }
        }
    }

    /// Write acknowledged progress; fsync, refresh live entries and prune every `SYNC_INTERVAL`.
    fn persist_progress(&mut self) {
        let sync = self.last_sync.elapsed() >= SYNC_INTERVAL;
        if sync {
            let now = chrono::Utc::now();
            let live: HashSet<String> = self.files.values().filter_map(TailedFile::key).collect();
            for key in &live {
                self.checkpoints.refresh(key, now);
            }
            self.checkpoints.prune(now, &live);
            self.last_sync = Instant::now();
        }
        if !self.checkpoints.needs_persist(sync) {
            return;
        }
        match self.checkpoints.persist(sync) {
            Ok(()) => self.persist_failing = false,
            Err(error) => {
                if !self.persist_failing {
                    tracing::error!(source = %self.emitter.source, %error, "Cannot write the checkpoint file; retrying.");
                    self.persist_failing = true;
                }
            }
        }
    }

    /// Sleep until a notification, shutdown, or the next poll; true when a notification came.
    fn wait_for_change(&mut self, next_scan: Instant) -> bool {
        let mut timeout = self.config.poll_interval;
        if self.files.values().any(TailedFile::has_pending) {
            timeout = timeout.min(ACK_POLL_INTERVAL);
        }
        timeout = timeout.min(next_scan.saturating_duration_since(Instant::now()));
        let notified = match self.wake.recv_timeout(timeout) {
            Ok(wake) => wake == Wake::FileSystem,
            Err(mpsc::RecvTimeoutError::Timeout) => false,
            // Every sender is gone (no watcher, shutdown already signalled): plain polling.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                std::thread::sleep(timeout);
                false
            }
        };
        self.drain_wakes() || notified
    }

    /// Take every queued wake-up, so a burst of events costs one scan; true if any was an event.
    fn drain_wakes(&mut self) -> bool {
        let mut notified = false;
        while let Ok(wake) = self.wake.try_recv() {
            notified |= wake == Wake::FileSystem;
        }
        notified
    }

    /// Stop reading, let the pipeline finish, commit what was delivered, persist durably.
    fn finish(mut self) -> Result<(), SourceError> {
        self.emitter.close();
        let outstanding: usize = self.files.values().filter(|t| t.has_pending()).count();
        tracing::debug!(source = %self.emitter.source, files = outstanding, "Waiting for outstanding acknowledgements.");
        for tailed in self.files.values_mut() {
            tailed.collect_acks(&mut self.checkpoints, true);
        }
        self.checkpoints.persist(true)?;
        tracing::info!(source = %self.emitter.source, path = %self.checkpoints.path().display(), "File source stopped; checkpoints saved.");
        Ok(())
    }
}
