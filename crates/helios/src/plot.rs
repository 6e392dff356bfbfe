//! SVG plots of hit ratio against cache size.

use std::path::Path;

use plotters::prelude::*;

use crate::policies::Policy;
use crate::replay::Row;

pub(crate) fn hit_ratios(
    path: &Path,
    title: &str,
    policies: &[Policy],
    rows: &[Row],
) -> Result<(), crate::CliError> {
    let err =
        |e: String| crate::CliError::Usage(format!("{}: cannot draw plot: {e}", path.display()));
    let max_size = rows.iter().map(|r| r.size).max().unwrap_or(1) as f64;
    let min_size = rows.iter().map(|r| r.size).min().unwrap_or(0) as f64;
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("hit ratio: {title}"), ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(min_size..max_size.max(min_size + 1.0), 0f64..100f64)
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("cache size")
        .y_desc("hit ratio (%)")
        .draw()
        .map_err(|e| err(e.to_string()))?;
    for (i, &policy) in policies.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let mut points: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| r.policy == policy)
            .map(|r| (r.size as f64, r.counts.hit_ratio()))
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(|e| err(e.to_string()))?
            .label(policy.name())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, color.filled())),
            )
            .map_err(|e| err(e.to_string()))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}
