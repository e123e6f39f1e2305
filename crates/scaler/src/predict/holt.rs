//! Holt's double exponential smoothing (level + trend); confidence is one minus the one-step
//! forecast errors relative to the series' variance (an out-of-sample R²).

use super::Fit;

/// Smooths `points` (taken as evenly spaced, at their mean interval) with level weight `alpha`
/// and trend weight `beta`, and extrapolates to `at`. Confidence: `1 - SSE / SST` of the
/// one-step forecasts from the third point on (the first two set the initial level and trend),
/// clamped to `0..=1`: 1 when each point was foreseen, 0 when guessing the mean would have
/// done as well. `None` with fewer than three points or no time between them.
pub(crate) fn fit(points: &[(f64, f64)], at: f64, alpha: f64, beta: f64) -> Option<Fit> {
    let (&(first_x, first_y), &(last_x, _)) = (points.first()?, points.last()?);
    if points.len() < 3 {
        return None;
    }
    let step = (last_x - first_x) / (points.len() - 1) as f64;
    if step <= 0.0 {
        return None;
    }
    let mut level = first_y;
    let mut trend = points[1].1 - first_y;
    let mut squared_errors = 0.0;
    for (index, &(_, y)) in points.iter().enumerate().skip(1) {
        let foreseen = level + trend;
        if index >= 2 {
            squared_errors += (y - foreseen).powi(2);
        }
        let next_level = alpha * y + (1.0 - alpha) * foreseen;
        trend = beta * (next_level - level) + (1.0 - beta) * trend;
        level = next_level;
    }
    let scored = &points[2..];
    let mean = scored.iter().map(|p| p.1).sum::<f64>() / scored.len() as f64;
    let variance: f64 = scored.iter().map(|p| (p.1 - mean).powi(2)).sum();
    let confidence = if variance > 0.0 {
        1.0 - squared_errors / variance
    } else if squared_errors == 0.0 {
        1.0
    } else {
        0.0
    };
    let steps_ahead = (at - last_x) / step;
    Some(Fit { forecast: level + trend * steps_ahead, confidence: confidence.clamp(0.0, 1.0) })
}
