//! SVG plots of hit ratio against cache size.

use std::io::Write;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::policies::Policy;
use crate::replay::Row;

/// The plot's file, created before the replays run, so that a path that
/// cannot be written fails at once rather than after minutes of replays.
pub(crate) struct PlotFile {
    path: PathBuf,
    file: std::fs::File,
}

impl PlotFile {
    pub(crate) fn create(path: &Path) -> Result<Self, crate::CliError> {
        let file = std::fs::File::create(path)
            .map_err(|e| crate::CliError::Input(format!("--plot {}: {e}", path.display())))?;
        Ok(Self {
            path: path.to_owned(),
            file,
        })
    }

    /// Draws hit ratio against size, one curve per policy, into the file.
    pub(crate) fn draw(
        mut self,
        title: &str,
        policies: &[Policy],
        rows: &[Row],
    ) -> Result<(), crate::CliError> {
        let mut svg = String::new();
        hit_ratios(&mut svg, title, policies, rows).map_err(|e| self.failed(&e))?;
        self.file
            .write_all(svg.as_bytes())
            .and_then(|()| self.file.flush())
            .map_err(|e| self.failed(&e))
    }

    fn failed(&self, e: &dyn std::fmt::Display) -> crate::CliError {
        crate::CliError::Failed(format!("{}: cannot draw plot: {e}", self.path.display()))
    }
}

/// Renders the plot as SVG into `svg`.
fn hit_ratios(
    svg: &mut String,
    title: &str,
    policies: &[Policy],
    rows: &[Row],
) -> Result<(), String> {
    let max_size = rows.iter().map(|r| r.size).max().unwrap_or(1) as f64;
    let min_size = rows.iter().map(|r| r.size).min().unwrap_or(0) as f64;
    let root = SVGBackend::with_string(svg, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("hit ratio: {title}"), ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(min_size..max_size.max(min_size + 1.0), 0f64..100f64)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("cache size")
        .y_desc("hit ratio (%)")
        .draw()
        .map_err(|e| e.to_string())?;
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
            .map_err(|e| e.to_string())?
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
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}
