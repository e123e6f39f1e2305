//! Ready sinks: [`MemorySink`] keeps records in memory (tests, embedding), [`CallbackSink`]
//! hands each batch to an async closure, [`JsonlSink`] appends JSON lines to a file, and
//! [`CountingSink`] only counts (for throughput and memory measurements).
//!
//! ```
//! use harvester_pipeline::Sink;
//! use harvester_pipeline::sinks::MemorySink;
//!
//! # tokio_test_block_on(async {
//! let sink = MemorySink::new("memory");
//! sink.write(&[1, 2, 3]).await.expect("memory never fails");
//! assert_eq!(sink.records(), vec![1, 2, 3]);
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(f)
//! # }
//! ```

mod callback;
mod counting;
mod jsonl;
mod memory;

pub use callback::CallbackSink;
pub use counting::CountingSink;
pub use jsonl::{FsyncPolicy, JsonlSink};
pub use memory::MemorySink;
