//! Chart primitives of the backtest report, as inline SVG strings: line charts, stacked
//! areas, stacked bars and plain bars (histograms), each with a title, axes with ticks and
//! labels, and a legend. No script, font or image is referenced, so a page made of them is
//! self-contained.
//!
//! Every chart is one `<svg data-chart="NAME">` element. Marks carry classes the tests count:
//! a line is a `<polyline class="line">` with one coordinate pair per point (its
//! `data-series` is the series' index: names appear only as text, in the legend), a bar or a
//! stacked-bar segment a `<rect class="bar">`, an area band a `<polygon class="area">`, an
//! axis tick a `<g class="tick">`. A chart without data keeps its frame and axes-free plot
//! area and says "no data" in a `<text class="no-data">`.

use std::fmt::Write;

/// Width of every chart's view box (px); the page scales it to its column.
pub const WIDTH: f64 = 640.0;
/// Height of the plot area (px), without the title, legend and x-axis labels.
const PLOT_H: f64 = 220.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 30.0;
const LEGEND_ROW: f64 = 18.0;
const BOTTOM: f64 = 46.0;

/// Series colours, in order (colour-blind friendly, after Okabe–Ito and Tableau 10).
pub const PALETTE: [&str; 10] = [
    "#0072b2", "#e69f00", "#009e73", "#d55e00", "#cc79a7", "#56b4e9", "#8c564b", "#f0e442",
    "#7f7f7f", "#17becf",
];

/// Escapes text for HTML and SVG, in element content and in quoted attributes alike.
pub fn escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\'' => s.push_str("&#39;"),
            c => s.push(c),
        }
    }
    s
}

/// How an axis labels its ticks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    /// Plain numbers.
    Number,
    /// UTC days since the epoch, labelled `MM-DD`.
    Day,
    /// Fractions 0–1, labelled as percentages.
    Percent,
    /// Whole numbers only (deciles, histogram bins): fractional ticks are left out.
    Index,
}

/// What a chart is: its `data-chart` name, title and axis labels (with units).
#[derive(Clone, Debug)]
pub struct Frame {
    /// The `data-chart` attribute.
    pub name: String,
    /// The title drawn above the plot.
    pub title: String,
    /// The x-axis label, with its unit.
    pub x_label: String,
    /// The y-axis label, with its unit.
    pub y_label: String,
    /// How the x ticks are labelled.
    pub x_scale: Scale,
    /// How the y ticks are labelled.
    pub y_scale: Scale,
}

/// One named series of `(x, y)` points, in x order.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// The legend entry.
    pub name: String,
    /// The points.
    pub points: Vec<(f64, f64)>,
}

/// The civil date `(year, month, day)` of `days` since 1970-01-01 (Hinnant's algorithm).
pub fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + (m <= 2) as i64, m, d)
}

/// Tick values covering `[lo, hi]`: about `n` of them, at 1, 2 or 5 times a power of ten.
pub fn ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

fn label(v: f64, scale: Scale) -> String {
    match scale {
        Scale::Day => {
            let (_, m, d) = civil(v.round() as i64);
            format!("{m:02}-{d:02}")
        }
        Scale::Percent => format!("{:.0}%", 100.0 * v),
        Scale::Index => format!("{v:.0}"),
        Scale::Number if v.abs() >= 10_000.0 => format!("{:.0}k", v / 1000.0),
        Scale::Number if v.fract().abs() < 1e-9 => format!("{v:.0}"),
        Scale::Number => format!("{v:.2}"),
    }
}

/// The plot geometry of one chart: data ranges mapped onto the plot area.
struct Plot {
    x: (f64, f64),
    y: (f64, f64),
    top: f64,
}

impl Plot {
    fn px(&self, x: f64) -> f64 {
        let (lo, hi) = self.x;
        LEFT + (x - lo) / (hi - lo).max(1e-12) * (WIDTH - LEFT - RIGHT)
    }
    fn py(&self, y: f64) -> f64 {
        let (lo, hi) = self.y;
        self.top + PLOT_H - (y - lo) / (hi - lo).max(1e-12) * PLOT_H
    }
    fn bottom(&self) -> f64 {
        self.top + PLOT_H
    }
}

/// Legend rows for `names` across the chart's width (about 7 px per character).
fn legend(names: &[String]) -> (Vec<Vec<(usize, f64)>>, f64) {
    let mut rows: Vec<Vec<(usize, f64)>> = vec![Vec::new()];
    let mut x = LEFT;
    for (i, n) in names.iter().enumerate() {
        let w = 22.0 + 7.0 * n.chars().count() as f64 + 14.0;
        if x + w > WIDTH - RIGHT && x > LEFT {
            rows.push(Vec::new());
            x = LEFT;
        }
        rows.last_mut().expect("one row at least").push((i, x));
        x += w;
    }
    let h = if names.is_empty() {
        0.0
    } else {
        rows.len() as f64 * LEGEND_ROW
    };
    (rows, h)
}

/// Opens the chart: the `<svg>`, its title, legend, and (with data) the axes and grid.
fn open(frame: &Frame, names: &[String], plot: Option<&mut Plot>) -> String {
    let (rows, legend_h) = legend(names);
    let top = TOP + legend_h + 8.0;
    let height = top + PLOT_H + BOTTOM;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg data-chart=\"{}\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" \
         aria-label=\"{}\"><title>{}</title>",
        escape(&frame.name),
        escape(&frame.title),
        escape(&frame.title)
    );
    let _ = write!(
        s,
        "<text class=\"title\" x=\"{LEFT}\" y=\"18\">{}</text>",
        escape(&frame.title)
    );
    s.push_str("<g class=\"legend\">");
    for (r, row) in rows.iter().enumerate() {
        let y = TOP + r as f64 * LEGEND_ROW;
        for (i, x) in row {
            let _ = write!(
                s,
                "<rect class=\"swatch\" x=\"{x:.1}\" y=\"{:.1}\" width=\"14\" height=\"10\" \
                 fill=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                y - 9.0,
                PALETTE[i % PALETTE.len()],
                x + 20.0,
                y,
                escape(&names[*i])
            );
        }
    }
    s.push_str("</g>");
    let plot_w = WIDTH - LEFT - RIGHT;
    let _ = write!(
        s,
        "<rect class=\"plot\" x=\"{LEFT}\" y=\"{top:.1}\" width=\"{plot_w}\" \
         height=\"{PLOT_H}\"/>"
    );
    // Axis labels.
    let _ = write!(
        s,
        "<text class=\"axis-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
         <text class=\"axis-label\" transform=\"translate(14 {:.1}) rotate(-90)\" \
         text-anchor=\"middle\">{}</text>",
        LEFT + plot_w / 2.0,
        height - 8.0,
        escape(&frame.x_label),
        top + PLOT_H / 2.0,
        escape(&frame.y_label)
    );
    let Some(plot) = plot else {
        let _ = write!(
            s,
            "<text class=\"no-data\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">no data</text>",
            LEFT + plot_w / 2.0,
            top + PLOT_H / 2.0
        );
        return s;
    };
    plot.top = top;
    s.push_str("<g class=\"axis x\">");
    let mut xt = ticks(plot.x.0, plot.x.1, 8);
    if matches!(frame.x_scale, Scale::Day | Scale::Index) {
        xt.retain(|t| t.fract() == 0.0);
    }
    for t in xt {
        let x = plot.px(t);
        let _ = write!(
            s,
            "<g class=\"tick\"><line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text></g>",
            plot.bottom(),
            plot.bottom() + 5.0,
            plot.bottom() + 18.0,
            label(t, frame.x_scale)
        );
    }
    s.push_str("</g><g class=\"axis y\">");
    for t in ticks(plot.y.0, plot.y.1, 5) {
        let y = plot.py(t);
        let _ = write!(
            s,
            "<g class=\"tick\"><line class=\"grid\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" \
             y2=\"{y:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text></g>",
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            label(t, frame.y_scale)
        );
    }
    s.push_str("</g>");
    s
}

fn close(mut s: String) -> String {
    s.push_str("</svg>");
    s
}

fn names(series: &[Series]) -> Vec<String> {
    series.iter().map(|s| s.name.clone()).collect()
}

fn extent(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// The x range of the points, widened to one unit when it is a single value.
fn x_extent(series: &[Series]) -> Option<(f64, f64)> {
    extent(series.iter().flat_map(|s| s.points.iter().map(|p| p.0))).map(|(lo, hi)| {
        if hi > lo {
            (lo, hi)
        } else {
            (lo - 0.5, hi + 0.5)
        }
    })
}

/// The y range from 0 to the nicest tick at or above `max` (1 when `max` is 0).
fn y_extent(max: f64, scale: Scale) -> (f64, f64) {
    if scale == Scale::Percent {
        // Shares: always the whole 0–100% axis.
        return (0.0, 1.0);
    }
    let max = if max > 0.0 { max } else { 1.0 };
    let top = ticks(0.0, max, 5).last().copied().unwrap_or(max);
    let step = ticks(0.0, max, 5).get(1).copied().unwrap_or(max);
    (0.0, if top < max { top + step } else { top })
}

/// A line chart: one polyline per series. `fixed_y` forces the y range (e.g. 0–1).
pub fn lines(frame: &Frame, series: &[Series], fixed_y: Option<(f64, f64)>) -> String {
    let Some(x) = x_extent(series) else {
        return close(open(frame, &names(series), None));
    };
    let ymax =
        extent(series.iter().flat_map(|s| s.points.iter().map(|p| p.1))).map_or(0.0, |e| e.1);
    let mut plot = Plot {
        x,
        y: fixed_y.unwrap_or_else(|| y_extent(ymax, frame.y_scale)),
        top: 0.0,
    };
    let mut s = open(frame, &names(series), Some(&mut plot));
    for (i, ser) in series.iter().enumerate() {
        let pts: Vec<String> = ser
            .points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", plot.px(*x), plot.py(*y)))
            .collect();
        let _ = write!(
            s,
            "<polyline class=\"line\" data-series=\"{i}\" fill=\"none\" stroke=\"{}\" \
             points=\"{}\"/>",
            PALETTE[i % PALETTE.len()],
            pts.join(" ")
        );
    }
    close(s)
}

/// A stacked area of shares: `series[k].points[j]` is band k's share at x j (every series
/// has the same xs); bands stack from the first upwards, on a 0–100% axis.
pub fn stacked_area(frame: &Frame, series: &[Series]) -> String {
    let n = series.first().map_or(0, |s| s.points.len());
    let Some(x) = x_extent(series).filter(|_| n > 0) else {
        return close(open(frame, &names(series), None));
    };
    let mut plot = Plot {
        x,
        y: (0.0, 1.0),
        top: 0.0,
    };
    let mut s = open(frame, &names(series), Some(&mut plot));
    let mut base = vec![0.0; n];
    for (i, ser) in series.iter().enumerate() {
        let upper: Vec<f64> = (0..n)
            .map(|j| base[j] + ser.points.get(j).map_or(0.0, |p| p.1))
            .collect();
        let xs: Vec<f64> = series[0].points.iter().map(|p| p.0).collect();
        let mut pts: Vec<String> = (0..n)
            .map(|j| format!("{:.1},{:.1}", plot.px(xs[j]), plot.py(upper[j])))
            .collect();
        pts.extend(
            (0..n)
                .rev()
                .map(|j| format!("{:.1},{:.1}", plot.px(xs[j]), plot.py(base[j]))),
        );
        let _ = write!(
            s,
            "<polygon class=\"area\" data-series=\"{i}\" fill=\"{}\" points=\"{}\"/>",
            PALETTE[i % PALETTE.len()],
            pts.join(" ")
        );
        base = upper;
    }
    close(s)
}

/// Stacked bars: at each x (a whole number, e.g. a day), one segment per series with a
/// non-zero y, stacked in series order. Bars are one x unit wide, less a gap.
pub fn stacked_bars(frame: &Frame, series: &[Series]) -> String {
    let Some((lo, hi)) = x_extent(series) else {
        return close(open(frame, &names(series), None));
    };
    let mut totals: std::collections::BTreeMap<i64, f64> = Default::default();
    for ser in series {
        for (x, y) in &ser.points {
            *totals.entry(x.round() as i64).or_default() += y;
        }
    }
    let ymax = totals.values().copied().fold(0.0, f64::max);
    let mut plot = Plot {
        x: (lo.min(hi - 0.5) - 0.5, hi + 0.5),
        y: y_extent(ymax, frame.y_scale),
        top: 0.0,
    };
    let mut s = open(frame, &names(series), Some(&mut plot));
    let w = ((plot.px(1.0) - plot.px(0.0)) * 0.8).max(1.0);
    let mut stacked: std::collections::BTreeMap<i64, f64> = Default::default();
    for (i, ser) in series.iter().enumerate() {
        for (x, y) in ser.points.iter().filter(|p| p.1 > 0.0) {
            let b = stacked.entry(x.round() as i64).or_default();
            let (y0, y1) = (plot.py(*b), plot.py(*b + y));
            let _ = write!(
                s,
                "<rect class=\"bar\" x=\"{:.1}\" y=\"{y1:.1}\" width=\"{w:.1}\" \
                 height=\"{:.1}\" fill=\"{}\"><title>{}: {}</title></rect>",
                plot.px(*x) - w / 2.0,
                (y0 - y1).max(0.5),
                PALETTE[i % PALETTE.len()],
                escape(&ser.name),
                label(*y, frame.y_scale)
            );
            *b += y;
        }
    }
    close(s)
}

/// Plain bars of one series (a histogram or a per-decile chart): one `<rect class="bar">`
/// per point, zero heights included, so the count of bars is the count of points.
pub fn bars(frame: &Frame, series: &Series) -> String {
    let one = std::slice::from_ref(series);
    if series.points.is_empty() {
        return close(open(frame, &names(one), None));
    }
    let (lo, hi) = x_extent(one).expect("points");
    let ymax = series.points.iter().map(|p| p.1).fold(0.0, f64::max);
    let mut plot = Plot {
        x: (lo - 0.5, hi + 0.5),
        y: y_extent(ymax, frame.y_scale),
        top: 0.0,
    };
    let mut s = open(frame, &names(one), Some(&mut plot));
    let w = ((plot.px(1.0) - plot.px(0.0)) * 0.85).max(1.0);
    for (x, y) in &series.points {
        let (y0, y1) = (plot.py(0.0), plot.py(*y));
        let _ = write!(
            s,
            "<rect class=\"bar\" x=\"{:.1}\" y=\"{y1:.1}\" width=\"{w:.1}\" height=\"{:.1}\" \
             fill=\"{}\"><title>{}: {}</title></rect>",
            plot.px(*x) - w / 2.0,
            y0 - y1,
            PALETTE[0],
            label(*x, frame.x_scale),
            label(*y, frame.y_scale)
        );
    }
    close(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(name: &str) -> Frame {
        Frame {
            name: name.into(),
            title: "t".into(),
            x_label: "day (UTC)".into(),
            y_label: "alerts per day".into(),
            x_scale: Scale::Day,
            y_scale: Scale::Number,
        }
    }

    fn count(hay: &str, needle: &str) -> usize {
        hay.matches(needle).count()
    }

    #[test]
    fn a_line_has_one_coordinate_pair_per_point_and_ticks_on_both_axes() {
        // Days 20000..=20009, y 0..=9.
        let s = Series {
            name: "r".into(),
            points: (0..10).map(|i| (20_000.0 + i as f64, i as f64)).collect(),
        };
        let svg = lines(&frame("c"), &[s], None);
        assert!(svg.starts_with("<svg data-chart=\"c\"") && svg.ends_with("</svg>"));
        let pts = svg
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(pts.split(' ').count(), 10);
        // x: 20000..20009 in steps of 1 (10 ticks for a target of 8 → step 2: 5 ticks);
        // y: 0..10 in steps of 2 (6 ticks).
        assert_eq!(ticks(20_000.0, 20_009.0, 8).len(), 5);
        assert_eq!(count(&svg, "<g class=\"tick\">"), 5 + 6);
        assert!(
            svg.contains(">10</text>"),
            "the y axis reaches a tick above 9"
        );
        assert!(!svg.contains("no-data"));
    }

    #[test]
    fn bars_and_stacked_bars_have_one_rect_per_point() {
        let s = Series {
            name: "bad rate".into(),
            points: (1..=10).map(|d| (d as f64, 0.1 * d as f64)).collect(),
        };
        let mut f = frame("deciles");
        f.x_scale = Scale::Number;
        f.y_scale = Scale::Percent;
        assert_eq!(count(&bars(&f, &s), "class=\"bar\""), 10);
        let a = Series {
            name: "freeze".into(),
            points: vec![(1.0, 2.0), (2.0, 0.0), (3.0, 1.0)],
        };
        let b = Series {
            name: "limit_decrease".into(),
            points: vec![(1.0, 1.0), (2.0, 4.0)],
        };
        // Zero segments are left out: 2 + 2.
        assert_eq!(count(&stacked_bars(&f, &[a, b]), "class=\"bar\""), 4);
    }

    #[test]
    fn names_in_labels_are_escaped() {
        let s = Series {
            name: "dpd<30 & \"x\"".into(),
            points: vec![(1.0, 1.0)],
        };
        let mut f = frame("a<b");
        f.title = "rule <script>".into();
        let svg = lines(&f, &[s], None);
        assert!(svg.contains("dpd&lt;30 &amp; &quot;x&quot;"));
        assert!(svg.contains("data-chart=\"a&lt;b\""));
        assert!(svg.contains("rule &lt;script&gt;"));
        assert!(!svg.contains("<script") && !svg.contains("dpd<30"));
    }

    #[test]
    fn an_empty_series_gives_a_chart_that_says_no_data() {
        let empty = Series {
            name: "r".into(),
            points: vec![],
        };
        for svg in [
            lines(&frame("l"), &[], None),
            lines(&frame("l"), std::slice::from_ref(&empty), None),
            stacked_area(&frame("a"), std::slice::from_ref(&empty)),
            stacked_bars(&frame("b"), &[]),
            bars(&frame("h"), &empty),
        ] {
            assert!(svg.contains("<text class=\"no-data\""), "{svg}");
            assert!(svg.contains("class=\"title\"") && svg.contains("class=\"axis-label\""));
            assert!(!svg.contains("class=\"bar\"") && !svg.contains("<polyline"));
        }
    }

    #[test]
    fn stacked_areas_close_each_band() {
        let band = |n: &str, v: f64| Series {
            name: n.into(),
            points: (0..4).map(|i| (i as f64, v)).collect(),
        };
        let svg = stacked_area(&frame("mix"), &[band("0", 0.75), band("1", 0.25)]);
        assert_eq!(count(&svg, "class=\"area\""), 2);
        let second = svg.split("class=\"area\"").nth(2).unwrap();
        let pts = second
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(pts.split(' ').count(), 8, "4 points up, 4 back down");
    }

    #[test]
    fn days_are_civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(20_089), (2025, 1, 1));
        assert_eq!(label(20_089.0, Scale::Day), "01-01");
        assert_eq!(label(0.25, Scale::Percent), "25%");
    }
}
