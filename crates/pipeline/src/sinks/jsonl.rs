use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::fs::{File, OpenOptions};
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use crate::sink::{Sink, SinkError};

/// When a [`JsonlSink`] asks the OS to put written lines on disk (`fsync`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    /// Never; the OS writes back when it likes. Fastest; a power cut loses recent lines.
    Never,
    /// After every batch: a batch acknowledged is a batch on disk. Slowest.
    EveryBatch,
    /// On [`Sink::flush`] only (shutdown, or when the caller asks).
    #[default]
    OnFlush,
}

/// Appends one JSON object per line to a file opened in append mode.
///
/// A batch is serialized first and written with a single `write_all`, so a batch that
/// cannot be serialized writes nothing. Errors name the file.
#[derive(Debug)]
pub struct JsonlSink<T> {
    name: String,
    path: PathBuf,
    fsync: FsyncPolicy,
    file: Mutex<File>,
    _records: PhantomData<fn(&T)>,
}

impl<T> JsonlSink<T> {
    /// Opens (creating if needed) `path` for appending, under the name `"jsonl"`.
    pub async fn open(path: impl AsRef<Path>, fsync: FsyncPolicy) -> Result<Self, SinkError> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await
            .map_err(|e| SinkError::new("jsonl", format!("cannot open {}: {e}", path.display())))?;
        Ok(JsonlSink { name: "jsonl".into(), path, fsync, file: Mutex::new(file), _records: PhantomData })
    }

    /// Renames the sink (for errors, logs and dead letters).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The fsync policy.
    pub fn fsync(&self) -> FsyncPolicy {
        self.fsync
    }

    fn error(&self, what: &str, err: impl std::fmt::Display) -> SinkError {
        SinkError::new(&self.name, format!("{what} {}: {err}", self.path.display()))
    }
}

#[async_trait]
impl<T: Serialize + Send + Sync + 'static> Sink<T> for JsonlSink<T> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn write(&self, batch: &[T]) -> Result<(), SinkError> {
        let mut buf = Vec::with_capacity(batch.len() * 128);
        for (i, record) in batch.iter().enumerate() {
            serde_json::to_writer(&mut buf, record)
                .map_err(|e| self.error(&format!("cannot serialize record {i} of batch for"), e))?;
            buf.push(b'\n');
        }
        let mut file = self.file.lock().await;
        file.write_all(&buf).await.map_err(|e| self.error("cannot write to", e))?;
        // tokio's File finishes writes in the background; flush waits for them.
        file.flush().await.map_err(|e| self.error("cannot write to", e))?;
        if self.fsync == FsyncPolicy::EveryBatch {
            file.sync_data().await.map_err(|e| self.error("cannot fsync", e))?;
        }
        Ok(())
    }

    async fn flush(&self) -> Result<(), SinkError> {
        let mut file = self.file.lock().await;
        file.flush().await.map_err(|e| self.error("cannot write to", e))?;
        if self.fsync != FsyncPolicy::Never {
            file.sync_data().await.map_err(|e| self.error("cannot fsync", e))?;
        }
        Ok(())
    }
}
