//! Plots as data, drawn by plotters on any backend: SVG for the page, a bitmap for PNG export.
//! Categories (uids) sit at integer positions and are labelled by name, so a uid axis shows
//! uids, not a numeric scale.

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

/// The Okabe–Ito palette: told apart by readers with any colour vision.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(240, 228, 66),
    RGBColor(0, 0, 0),
];

pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    /// One value per category (`None`: no bar, e.g. a failed task).
    pub values: Vec<Option<f64>>,
}

#[derive(Debug, Clone)]
pub enum Kind {
    /// Grouped bars: one group per category, one bar per series.
    Bars { categories: Vec<String>, series: Vec<Series>, y: String },
    /// The pairwise-wins heat map: `cells[i][j]` = 1 when row i beats column j; `None` on the
    /// diagonal and for pairs the policy does not compare.
    Wins { labels: Vec<String>, cells: Vec<Vec<Option<bool>>> },
    /// Lines over blocks: one line per series, points at `x`.
    Lines { x: Vec<f64>, series: Vec<Series>, y: String },
}

#[derive(Debug, Clone)]
pub struct Plot {
    /// A file-name-safe id (the PNG's name).
    pub id: String,
    pub title: String,
    pub kind: Kind,
}

impl Plot {
    pub fn size(&self) -> (u32, u32) {
        match &self.kind {
            Kind::Wins { labels, .. } => {
                let side = (160 + 28 * labels.len() as u32).clamp(360, 900);
                (side + 40, side)
            }
            Kind::Bars { categories, series, .. } => {
                let w = 120 + (categories.len() * series.len().max(1)) as u32 * 18;
                (w.clamp(560, 1400), 340)
            }
            Kind::Lines { .. } => (720, 340),
        }
    }

    /// The plot as an SVG document.
    pub fn svg(&self) -> String {
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, self.size()).into_drawing_area();
            // Drawing into a string cannot fail on I/O; a plotting error leaves a partial SVG,
            // which the page's check (every plot shown) would catch.
            let _ = self.draw(&root);
            let _ = root.present();
        }
        out
    }

    /// Draws the plot on `root`, any plotters backend.
    pub fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, plotters::coord::Shift>,
    ) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("drawing `{}`: {e}", self.id);
        root.fill(&WHITE).map_err(err)?;
        match &self.kind {
            Kind::Bars { categories, series, y } => self.bars(root, categories, series, y).map_err(err),
            Kind::Wins { labels, cells } => self.wins(root, labels, cells).map_err(err),
            Kind::Lines { x, series, y } => self.lines(root, x, series, y).map_err(err),
        }
    }

    fn bars<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, plotters::coord::Shift>,
        categories: &[String],
        series: &[Series],
        y: &str,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let values = series.iter().flat_map(|s| s.values.iter().flatten().copied()).filter(|v| v.is_finite());
        let (lo, hi) = padded(values.fold((0.0f64, 0.0f64), |(l, h), v| (l.min(v), h.max(v))));
        let n = categories.len().max(1);
        let mut chart = chart(root, &self.title, categories_axis(n), lo..hi)?;
        mesh(&mut chart, categories, y)?;
        let k = series.len().max(1) as f64;
        let width = 0.8 / k;
        for (si, s) in series.iter().enumerate() {
            let c = color(si);
            let bars = s.values.iter().enumerate().filter_map(|(i, v)| {
                let v = v.filter(|v| v.is_finite())?;
                let x0 = i as f64 - 0.4 + si as f64 * width;
                Some(Rectangle::new([(x0, 0.0f64.clamp(lo, hi)), (x0 + width * 0.92, v)], c.filled()))
            });
            chart
                .draw_series(bars)?
                .label(s.name.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], c.filled()));
        }
        if series.len() > 1 {
            legend(&mut chart)?;
        }
        Ok(())
    }

    fn wins<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, plotters::coord::Shift>,
        labels: &[String],
        cells: &[Vec<Option<bool>>],
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let n = labels.len().max(1);
        // Rows read top to bottom: row i is drawn at y = n-1-i.
        let mut chart = chart(root, &self.title, categories_axis(n), -0.5..n as f64 - 0.5)?;
        let rows: Vec<String> = labels.iter().rev().cloned().collect();
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(n)
            .y_labels(n)
            .x_label_formatter(&|v| label_at(labels, *v))
            .y_label_formatter(&|v| label_at(&rows, *v))
            .x_desc("opponent (column)")
            .y_desc("uid (row) beats column?")
            .draw()?;
        let won = RGBColor(0, 114, 178);
        let lost = RGBColor(230, 159, 0);
        let none = RGBColor(235, 235, 235);
        for (i, row) in cells.iter().enumerate() {
            let y = (n - 1 - i) as f64;
            chart.draw_series(row.iter().enumerate().map(|(j, c)| {
                let fill = match c {
                    Some(true) => won,
                    Some(false) => lost,
                    None => none,
                };
                let x = j as f64;
                Rectangle::new([(x - 0.47, y - 0.47), (x + 0.47, y + 0.47)], fill.filled())
            }))?;
        }
        for (name, c) in [("beats", won), ("loses to", lost), ("not compared", none)] {
            chart
                .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())?
                .label(name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], c.filled()));
        }
        legend(&mut chart)
    }

    fn lines<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, plotters::coord::Shift>,
        x: &[f64],
        series: &[Series],
        y: &str,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let values = series.iter().flat_map(|s| s.values.iter().flatten().copied()).filter(|v| v.is_finite());
        let (lo, hi) =
            padded(values.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v))));
        let (x0, x1) = x.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(*v), h.max(*v)));
        let (x0, x1) = if x0.is_finite() { (x0 - 1.0, x1 + 1.0) } else { (0.0, 1.0) };
        let mut chart = chart(root, &self.title, (x0..x1).into(), lo..hi)?;
        chart
            .configure_mesh()
            .x_desc("block")
            .y_desc(y)
            .x_labels(6)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .draw()?;
        for (si, s) in series.iter().enumerate() {
            let c = color(si);
            let points: Vec<(f64, f64)> = x
                .iter()
                .zip(&s.values)
                .filter_map(|(x, v)| v.filter(|v| v.is_finite()).map(|v| (*x, v)))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))?
                .label(s.name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 12, y)], c.stroke_width(2)));
            chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, c.filled())))?;
        }
        legend(&mut chart)
    }
}

/// `n` categories at 0..n-1; asked for `n` labels on a span of `n`, plotters puts them on the
/// integers, and [`label_at`] names them.
fn categories_axis(n: usize) -> RangedCoordf64 {
    (-0.5..n as f64 - 0.5).into()
}

/// The label of the category at position `v` (empty between categories).
pub fn label_at(labels: &[String], v: f64) -> String {
    let i = v.round();
    if (v - i).abs() > 1e-6 || i < 0.0 {
        return String::new();
    }
    labels.get(i as usize).cloned().unwrap_or_default()
}

/// A value range with 8% headroom, never empty.
fn padded((lo, hi): (f64, f64)) -> (f64, f64) {
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let span = if hi > lo { hi - lo } else { hi.abs().max(1.0) };
    let lo = if lo < 0.0 || lo > 0.0 && hi - lo < 0.5 * hi.abs() { lo - 0.08 * span } else { lo };
    (lo, hi + 0.08 * span)
}

/// A chart on f64 axes.
type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

fn chart<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x: RangedCoordf64,
    y: std::ops::Range<f64>,
) -> Result<Chart<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    ChartBuilder::on(root)
        .caption(title, ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(64)
        .build_cartesian_2d(x, y)
}

fn mesh<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    categories: &[String],
    y: &str,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(categories.len())
        .x_label_formatter(&|v| label_at(categories, *v))
        .x_desc("uid")
        .y_desc(y)
        .draw()
}

fn legend<'a, DB: DrawingBackend + 'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_sit_on_integers_only() {
        let l = vec!["7".to_string(), "9".to_string()];
        assert_eq!(label_at(&l, 1.0), "9");
        assert_eq!(label_at(&l, 0.5), "");
        assert_eq!(label_at(&l, 2.0), "");
    }

    #[test]
    fn svg_has_every_category_label_and_the_title() {
        let p = Plot {
            id: "t".into(),
            title: "scores".into(),
            kind: Kind::Bars {
                categories: vec!["uid 4".into(), "uid 11".into()],
                series: vec![Series { name: "raw".into(), values: vec![Some(1.5), None] }],
                y: "loss".into(),
            },
        };
        let svg = p.svg();
        assert!(svg.starts_with("<svg"), "{svg}");
        for t in ["scores", "uid 4", "uid 11", "loss"] {
            assert!(svg.contains(&format!(">{t}<")) || svg.contains(&format!(">\n{t}\n<")), "{t} missing");
        }
        assert!(svg.matches("<rect").count() >= 2);
    }
}
