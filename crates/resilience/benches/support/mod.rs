//! What the benches of this crate share: driving a call by hand, and keeping each
//! function's samples so the ratio against the anchor can be printed after the run.

#![allow(dead_code)]

use std::future::Future;
use std::pin::pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tower::Service;

/// One call driven by hand: `poll_ready`, `call`, one poll of the response future. The
/// services benched here answer at the first poll; `None` if one does not.
pub fn call_once<S: Service<R>, R>(service: &mut S, request: R) -> Option<Result<S::Response, S::Error>> {
    let mut cx = Context::from_waker(Waker::noop());
    match service.poll_ready(&mut cx) {
        Poll::Ready(Ok(())) => {}
        Poll::Ready(Err(e)) => return Some(Err(e)),
        Poll::Pending => return None,
    }
    match pin!(service.call(request)).poll(&mut cx) {
        Poll::Ready(result) => Some(result),
        Poll::Pending => None,
    }
}

/// Each function's ns-per-iteration samples, for medians after criterion's report.
#[derive(Default)]
pub struct Medians(Mutex<Vec<(&'static str, Vec<f64>)>>);

impl Medians {
    /// Records one sample of `iters` iterations taking `elapsed`.
    pub fn record(&self, id: &'static str, iters: u64, elapsed: Duration) {
        let ns = elapsed.as_nanos() as f64 / iters as f64;
        let mut all = self.0.lock().expect("no bench panics holding the lock");
        match all.iter_mut().find(|(name, _)| *name == id) {
            Some((_, samples)) => samples.push(ns),
            None => all.push((id, vec![ns])),
        }
    }

    /// The median sample of `id`, NaN if it has none.
    pub fn median(&self, id: &str) -> f64 {
        let all = self.0.lock().expect("no bench panics holding the lock");
        let mut samples = all.iter().find(|(name, _)| *name == id).map(|(_, s)| s.clone()).unwrap_or_default();
        samples.sort_by(f64::total_cmp);
        samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN)
    }
}
