//! One metric's replica proposal, as Kubernetes' replica calculator makes it.
//!
//! Arithmetic follows Kubernetes to the rounding: values are integer milli-units (rounded up
//! when read), utilisation is a whole percentage (truncated), an average is truncated to a
//! milli-unit, proposals are `⌈ratio × count⌉`; the tolerance band includes its bounds.
//!
//! Per-replica readings are grouped first: ignored replicas are left out, unready ones are
//! left out unless the metric asks to scale up (then they count as using nothing), ready
//! ones without a value are *missing*: counted as using the target (or 100 % of their
//! request, whichever is more, for utilisation) when the rest would scale down, as using
//! nothing when the rest would scale up. If filling them in flips the direction or lands in
//! the tolerance band, replicas stay.

use std::fmt;

use super::config::{MetricTarget, Tolerance, milli};
use crate::sample::{PodReading, PodState, Reading};

/// A target in Kubernetes' units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Target {
    /// Percent of requests.
    Utilization(i64),
    /// Milli-units, whole target.
    Value(i64),
    /// Milli-units per replica.
    AverageValue(i64),
}

impl Target {
    /// `None` for a target that [`HpaConfig::validate`](super::HpaConfig::validate) refuses.
    pub(crate) fn from_config(target: MetricTarget) -> Option<Target> {
        match target {
            MetricTarget::Utilization(0) => None,
            MetricTarget::Utilization(percent) => Some(Target::Utilization(i64::from(percent))),
            MetricTarget::Value(v) => milli(v).filter(|m| *m > 0).map(Target::Value),
            MetricTarget::AverageValue(v) => milli(v).filter(|m| *m > 0).map(Target::AverageValue),
        }
    }
}

/// Why a metric could not propose anything (Kubernetes: the metric is invalid this round).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Invalid {
    /// The sample has no reading of that name.
    Absent,
    /// A whole-target reading where per-replica readings are needed, or the reverse.
    WrongKind,
    /// A whole-target value that is not a usable number.
    BadValue,
    /// Per-replica readings, but no replica.
    NoReplicas,
    /// No ready replica has a value.
    NoReadyValues,
    /// A replica has no usable request (utilisation needs them all).
    MissingRequest,
    /// Requests add up to zero.
    ZeroRequests,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Invalid::Absent => "no reading",
            Invalid::WrongKind => "reading of the wrong kind for its target",
            Invalid::BadValue => "value is not a finite, non-negative number",
            Invalid::NoReplicas => "no replica reported",
            Invalid::NoReadyValues => "no ready replica has a value",
            Invalid::MissingRequest => "a replica has no request",
            Invalid::ZeroRequests => "requests add up to zero",
        })
    }
}

/// What the calculator needs besides the reading.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context {
    /// Spec replicas (what was last set).
    pub(crate) current: i64,
    /// Ready replicas, for whole-target values.
    pub(crate) ready: i64,
    /// Replicas running, for whole-target average values (Kubernetes' status replicas).
    pub(crate) running: i64,
    pub(crate) tolerance: Tolerance,
}

/// The replicas `reading` asks for against `target`.
pub(crate) fn propose(target: Target, reading: Option<&Reading>, cx: &Context) -> Result<i64, Invalid> {
    match (target, reading) {
        (_, None) => Err(Invalid::Absent),
        (Target::Utilization(percent), Some(Reading::Pods(pods))) => per_pod(pods, Per::Utilization(percent), cx),
        (Target::AverageValue(per_pod_target), Some(Reading::Pods(pods))) => {
            per_pod(pods, Per::Average(per_pod_target), cx)
        }
        (Target::Value(target), Some(Reading::Value(v))) => {
            let usage = milli(*v).ok_or(Invalid::BadValue)?;
            let ratio = usage as f64 / target as f64;
            if cx.current == 0 {
                // Scale from zero: no ready replica to multiply.
                return Ok(ceil(ratio));
            }
            if cx.tolerance.contains(ratio) {
                return Ok(cx.current);
            }
            Ok(ceil(ratio * cx.ready as f64))
        }
        (Target::AverageValue(target), Some(Reading::Value(v))) => {
            let usage = milli(*v).ok_or(Invalid::BadValue)?;
            let ratio = usage as f64 / (target as f64 * cx.running as f64);
            if cx.tolerance.contains(ratio) {
                return Ok(cx.running);
            }
            Ok(ceil(usage as f64 / target as f64))
        }
        (Target::Utilization(_) | Target::Value(_), Some(_)) => Err(Invalid::WrongKind),
    }
}

/// `⌈x⌉` as Kubernetes' `int32(math.Ceil(x))`, kept within `0..=i32::MAX`.
fn ceil(x: f64) -> i64 {
    if x.is_nan() {
        return 0;
    }
    x.ceil().clamp(0.0, f64::from(i32::MAX)) as i64
}

/// How per-replica values become a usage ratio.
#[derive(Debug, Clone, Copy)]
enum Per {
    /// Σ values ÷ Σ requests, in whole percent, against a percentage.
    Utilization(i64),
    /// Mean value (truncated) against a per-replica target.
    Average(i64),
}

/// One replica's figures in milli-units.
#[derive(Debug, Clone, Copy)]
struct Counted {
    value: i64,
    request: i64,
}

impl Per {
    fn ratio(self, counted: &[Counted]) -> Result<f64, Invalid> {
        match self {
            Per::Utilization(target) => {
                let used: i128 = counted.iter().map(|c| i128::from(c.value)).sum();
                let requested: i128 = counted.iter().map(|c| i128::from(c.request)).sum();
                if requested == 0 {
                    return Err(Invalid::ZeroRequests);
                }
                let percent = (used * 100) / requested;
                Ok(percent as f64 / target as f64)
            }
            Per::Average(target) => {
                let total: i128 = counted.iter().map(|c| i128::from(c.value)).sum();
                let mean = total / counted.len().max(1) as i128;
                Ok(mean as f64 / target as f64)
            }
        }
    }

    /// What a missing replica is assumed to use on a scale-down.
    fn assumed_on_scale_down(self, request: i64) -> i64 {
        match self {
            Per::Utilization(target) => request.saturating_mul(target.max(100)) / 100,
            Per::Average(target) => target,
        }
    }
}

fn per_pod(pods: &[PodReading], per: Per, cx: &Context) -> Result<i64, Invalid> {
    if pods.is_empty() {
        return Err(Invalid::NoReplicas);
    }
    // Kubernetes reads the requests of every replica the selector finds, ignored ones too.
    let requests: Vec<i64> = match per {
        Per::Utilization(_) => pods
            .iter()
            .map(|pod| pod.usable_request().and_then(milli).ok_or(Invalid::MissingRequest))
            .collect::<Result<_, _>>()?,
        Per::Average(_) => vec![0; pods.len()],
    };
    let mut counted = Vec::with_capacity(pods.len());
    let mut unready = Vec::new();
    let mut missing = Vec::new();
    for (pod, request) in pods.iter().zip(&requests) {
        match pod.state {
            PodState::Ignored => {}
            PodState::Unready => unready.push(*request),
            PodState::Ready => match pod.usable_value().and_then(milli) {
                Some(value) => counted.push(Counted { value, request: *request }),
                None => missing.push(*request),
            },
        }
    }
    if counted.is_empty() {
        return Err(Invalid::NoReadyValues);
    }
    let ready = counted.len() as f64;
    let ratio = per.ratio(&counted)?;
    let scale_up_with_unready = !unready.is_empty() && ratio > 1.0;
    if !scale_up_with_unready && missing.is_empty() {
        if cx.tolerance.contains(ratio) {
            return Ok(cx.current);
        }
        return Ok(ceil(ratio * ready));
    }
    if ratio < 1.0 {
        counted.extend(missing.iter().map(|&request| Counted { value: per.assumed_on_scale_down(request), request }));
    } else if ratio > 1.0 {
        counted.extend(missing.iter().map(|&request| Counted { value: 0, request }));
    }
    if scale_up_with_unready {
        counted.extend(unready.iter().map(|&request| Counted { value: 0, request }));
    }
    let new_ratio = per.ratio(&counted)?;
    let flips = (ratio < 1.0 && new_ratio > 1.0) || (ratio > 1.0 && new_ratio < 1.0);
    if cx.tolerance.contains(new_ratio) || flips {
        return Ok(cx.current);
    }
    let proposal = ceil(new_ratio * counted.len() as f64);
    if (new_ratio < 1.0 && proposal > cx.current) || (new_ratio > 1.0 && proposal < cx.current) {
        // More replicas counted than running would turn the change around.
        return Ok(cx.current);
    }
    Ok(proposal)
}
