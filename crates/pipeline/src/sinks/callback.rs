use std::fmt;
use std::marker::PhantomData;

use async_trait::async_trait;
use futures::future::BoxFuture;

use crate::sink::{Sink, SinkError};

/// Hands every batch to an async closure: the quickest way to plug in a store that has
/// no sink of its own.
///
/// The closure borrows the batch, so it returns a boxed future:
///
/// ```
/// use harvester_pipeline::sinks::CallbackSink;
///
/// let sink = CallbackSink::new("print", |batch: &[u32]| {
///     Box::pin(async move {
///         println!("{} records", batch.len());
///         Ok(())
///     })
/// });
/// # let _ = sink;
/// ```
pub struct CallbackSink<T, F> {
    name: String,
    callback: F,
    _records: PhantomData<fn(&[T])>,
}

impl<T, F> CallbackSink<T, F>
where
    F: for<'a> Fn(&'a [T]) -> BoxFuture<'a, Result<(), SinkError>> + Send + Sync + 'static,
{
    /// A sink called `name` that calls `callback` with each batch.
    pub fn new(name: impl Into<String>, callback: F) -> Self {
        CallbackSink { name: name.into(), callback, _records: PhantomData }
    }
}

impl<T, F> fmt::Debug for CallbackSink<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackSink").field("name", &self.name).finish_non_exhaustive()
    }
}

#[async_trait]
impl<T, F> Sink<T> for CallbackSink<T, F>
where
    T: Send + Sync + 'static,
    F: for<'a> Fn(&'a [T]) -> BoxFuture<'a, Result<(), SinkError>> + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    async fn write(&self, batch: &[T]) -> Result<(), SinkError> {
        (self.callback)(batch).await
    }
}
