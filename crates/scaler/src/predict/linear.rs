//! Least-squares linear trend; confidence is the fit's R².

use super::Fit;

/// Fits `y = a + b·x` to `points` and extrapolates to `at`. R² is the share of the variance
/// the line explains (a constant series is fitted perfectly: 1). `None` with fewer than two
/// distinct `x`.
pub(crate) fn fit(points: &[(f64, f64)], at: f64) -> Option<Fit> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in points {
        let (dx, dy) = (x - mean_x, y - mean_y);
        sxx += dx * dx;
        sxy += dx * dy;
        syy += dy * dy;
    }
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let intercept = mean_y - slope * mean_x;
    let residual: f64 = points.iter().map(|(x, y)| (y - (intercept + slope * x)).powi(2)).sum();
    let r_squared = if syy > 0.0 { 1.0 - residual / syy } else { 1.0 };
    Some(Fit { forecast: intercept + slope * at, confidence: r_squared.clamp(0.0, 1.0) })
}
