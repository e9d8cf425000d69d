//! The backtest report page: one self-contained HTML file with a summary table of where the
//! two sides differ, then each chart for side A and side B in two columns.
//!
//! Nothing is fetched: the CSS is in a `<style>` block, the charts are inline SVG, and the
//! one inline script only counts the charts that rendered (`data-rendered` on `<body>`,
//! beside the server-side `data-charts`), for the headless-browser test.

use crate::report::detection::{histogram, Detection};
use crate::report::series::{filled, SideReport};
use crate::report::svg::{self, escape, Frame, Scale, Series};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// Everything the page shows.
pub struct Page<'a> {
    /// The input directory, as given.
    pub input: String,
    /// The labels file used, if any.
    pub labels: Option<String>,
    /// Sides A and B.
    pub sides: [&'a SideReport; 2],
    /// Their detection quality, when labels were given.
    pub detection: Option<[Detection; 2]>,
}

const STYLE: &str = "
body { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif;
  margin: 0 auto; max-width: 1360px; padding: 16px 24px; color: #1d2330; background: #fff; }
h1 { font-size: 22px; margin: 4px 0 2px; } h2 { font-size: 17px; margin: 26px 0 8px;
  border-bottom: 1px solid #d8dce3; padding-bottom: 4px; }
.meta { color: #5a6272; margin: 0 0 12px; }
table.summary { border-collapse: collapse; margin: 8px 0 4px; min-width: 640px; }
table.summary th, table.summary td { padding: 3px 12px; border-bottom: 1px solid #e6e8ee;
  text-align: right; font-variant-numeric: tabular-nums; }
table.summary th:first-child, table.summary td:first-child { text-align: left; }
table.summary tr.group td { font-weight: 600; background: #f3f5f8; text-align: left; }
table.summary td.diff { font-weight: 600; color: #b3261e; }
.row { display: grid; grid-template-columns: 1fr 1fr; gap: 20px; }
figure { margin: 0; border: 1px solid #e1e4ea; border-radius: 6px; padding: 8px 10px; }
figure h3 { font-size: 13px; margin: 0 0 4px; color: #3a4354; }
figcaption { color: #5a6272; font-size: 12.5px; margin-top: 4px; }
svg { width: 100%; height: auto; display: block; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
svg text.title { font-size: 13px; font-weight: 600; }
svg text.axis-label { font-size: 11.5px; fill: #555; }
svg text.no-data { font-size: 16px; fill: #999; }
svg rect.plot { fill: #fbfcfd; stroke: #c9ced8; }
svg .tick line { stroke: #9aa1ad; } svg line.grid { stroke: #e3e6ec; }
svg polyline.line { stroke-width: 1.8; } svg polygon.area { opacity: 0.9; }
svg polyline.reference { stroke: #aaa; stroke-dasharray: 4 3; }
";

/// Counts the charts that rendered something; an error anywhere sets `data-errors`.
const SCRIPT: &str = "
(function () {
  var charts = document.querySelectorAll('svg[data-chart]');
  var n = 0;
  charts.forEach(function (s) {
    var b = s.getBBox();
    if (s.childElementCount > 0 && b.width > 0 && b.height > 0) { n += 1; }
  });
  document.body.setAttribute('data-rendered', String(n));
})();
";

fn frame(name: &str, title: &str, x: &str, y: &str, xs: Scale, ys: Scale) -> Frame {
    Frame {
        name: name.into(),
        title: title.into(),
        x_label: x.into(),
        y_label: y.into(),
        x_scale: xs,
        y_scale: ys,
    }
}

/// One chart row: the same chart for A and B, with a caption under each.
struct Row {
    heading: &'static str,
    charts: [String; 2],
    captions: [String; 2],
}

/// Renders the page.
pub fn render(p: &Page) -> String {
    let days = match (p.sides[0].days(), p.sides[1].days()) {
        (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
        (a, b) => a.or(b),
    };
    let mut rows = vec![
        per_day(p, days, "alerts", |s| &s.alerts),
        levels(p, days),
        per_day(p, days, "decisions", |s| &s.decisions),
        per_day(p, days, "cases", |s| &s.case_events),
    ];
    if let Some(det) = &p.detection {
        rows.extend(quality_rows(det));
    }
    let n_charts = rows.len() * 2;
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>riskwatch backtest: {} vs {}</title><style>{STYLE}</style></head>\
         <body data-charts=\"{n_charts}\"><h1>Backtest: A vs B</h1>\
         <p class=\"meta\">Input <code>{}</code>{}. A = <code>{}</code> (strategy <b>{}</b>); \
         B = <code>{}</code> (strategy <b>{}</b>). Each side shows its config's champion. \
         Days are UTC days of event time.</p>",
        escape(&p.sides[0].strategy),
        escape(&p.sides[1].strategy),
        escape(&p.input),
        p.labels.as_ref().map_or(String::new(), |l| format!(
            "; labels <code>{}</code>",
            escape(l)
        )),
        escape(&p.sides[0].config),
        escape(&p.sides[0].strategy),
        escape(&p.sides[1].config),
        escape(&p.sides[1].strategy),
    );
    s.push_str(&summary(p));
    for row in rows {
        let _ = write!(s, "<h2>{}</h2><div class=\"row\">", row.heading);
        for (i, (chart, caption)) in row.charts.iter().zip(&row.captions).enumerate() {
            let _ = write!(
                s,
                "<figure><h3>{} — {}</h3>{chart}<figcaption>{caption}</figcaption></figure>",
                ["A", "B"][i],
                escape(&p.sides[i].strategy)
            );
        }
        s.push_str("</div>");
    }
    let _ = writeln!(s, "<script>{SCRIPT}</script></body></html>");
    s
}

fn per_day(
    p: &Page,
    days: Option<(i64, i64)>,
    what: &'static str,
    get: fn(&SideReport) -> &crate::report::series::Daily,
) -> Row {
    let (heading, title, by, unit) = match what {
        "alerts" => (
            "Alerts per rule per day",
            "Alerts per rule",
            "rule",
            "alerts per day",
        ),
        "decisions" => (
            "Decisions per day",
            "Decisions by kind",
            "kind",
            "decisions per day",
        ),
        _ => (
            "Case events per day",
            "Case events by event",
            "event",
            "case events per day",
        ),
    };
    let mut charts = [String::new(), String::new()];
    let mut captions = [String::new(), String::new()];
    for i in 0..2 {
        let daily = get(p.sides[i]);
        let series = days.map_or(vec![], |d| filled(daily, d));
        let f = frame(
            &format!("{what}-{}", ["a", "b"][i]),
            title,
            "day (UTC, event time)",
            unit,
            Scale::Day,
            Scale::Number,
        );
        charts[i] = if what == "alerts" {
            svg::lines(&f, &series, None)
        } else {
            svg::stacked_bars(&f, &series)
        };
        let total: u64 = daily.values().flat_map(|d| d.values()).sum();
        // The busiest day (often the first, when every customer gets its first level) sets
        // the y scale; the caption says so, so that the quieter days are read right.
        let mut per: BTreeMap<i64, u64> = BTreeMap::new();
        for (d, n) in daily.values().flat_map(|d| d.iter()) {
            *per.entry(*d).or_default() += n;
        }
        let busiest =
            per.iter()
                .max_by_key(|(d, n)| (**n, -**d))
                .map_or(String::new(), |(d, n)| {
                    let (y, m, day) = svg::civil(*d);
                    format!(" The busiest day, {y}-{m:02}-{day:02}, has {n}.")
                });
        captions[i] = format!(
            "{total} {what} of strategy {} per UTC day, one {} per {by}{}.{busiest}",
            escape(&p.sides[i].strategy),
            if what == "alerts" {
                "line"
            } else {
                "stacked segment"
            },
            if what == "cases" {
                " (opened, updated, escalated, closed)"
            } else {
                ""
            }
        );
    }
    Row {
        heading,
        charts,
        captions,
    }
}

fn levels(p: &Page, days: Option<(i64, i64)>) -> Row {
    let mut charts = [String::new(), String::new()];
    let mut captions = [String::new(), String::new()];
    for i in 0..2 {
        let side = p.sides[i];
        let mix = days.map_or(vec![], |d| side.peak_mix(d));
        let series: Vec<Series> = (0..5)
            .map(|l| Series {
                name: format!("level {l}"),
                points: mix.iter().map(|(d, m)| (*d as f64, m[l])).collect(),
            })
            .collect();
        let f = frame(
            &format!("levels-{}", ["a", "b"][i]),
            "Peak risk level to date",
            "day (UTC, event time)",
            "share of customers (%)",
            Scale::Day,
            Scale::Percent,
        );
        charts[i] = svg::stacked_area(&f, &series);
        let end = side.end_levels;
        captions[i] = format!(
            "Share of the {} customers the strategy evaluated by the highest level each had \
             reached by the end of the day (exact: every rise emits an alert; falls emit none, \
             so this is not the current level). The current mix at the end of the replay, from \
             the dataflow's gauges: {} / {} / {} / {} / {} at levels 0–4.",
            side.customers, end[0], end[1], end[2], end[3], end[4]
        );
    }
    Row {
        heading: "Risk-level mix over time",
        charts,
        captions,
    }
}

fn quality_rows(det: &[Detection; 2]) -> Vec<Row> {
    let mut roc = Row {
        heading: "ROC curve",
        charts: Default::default(),
        captions: Default::default(),
    };
    let mut ksr = Row {
        heading: "KS curve",
        charts: Default::default(),
        captions: Default::default(),
    };
    let mut dec = Row {
        heading: "Bad rate by decile",
        charts: Default::default(),
        captions: Default::default(),
    };
    let mut lead = Row {
        heading: "Lead time of defaulters",
        charts: Default::default(),
        captions: Default::default(),
    };
    let fmt = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.3}"));
    for (i, d) in det.iter().enumerate() {
        let ab = ["a", "b"][i];
        let mut curve = vec![Series {
            name: "ranking".into(),
            points: d.roc.clone(),
        }];
        if !d.roc.is_empty() {
            curve.push(Series {
                name: "random (AUC 0.5)".into(),
                points: vec![(0.0, 0.0), (1.0, 1.0)],
            });
        }
        let f = frame(
            &format!("roc-{ab}"),
            "ROC",
            "false positive rate (share of goods, %)",
            "true positive rate (share of bads, %)",
            Scale::Percent,
            Scale::Percent,
        );
        roc.charts[i] = svg::lines(&f, &curve, Some((0.0, 1.0)));
        roc.captions[i] = format!(
            "Customers ranked by peak level, then lowest score; {} of {} labelled customers \
             are bad. AUC {}.",
            d.bads,
            d.customers,
            fmt(d.auc)
        );
        let ks_series = vec![
            Series {
                name: "bads".into(),
                points: d.ks_curve.iter().map(|k| (k.0, k.1)).collect(),
            },
            Series {
                name: "goods".into(),
                points: d.ks_curve.iter().map(|k| (k.0, k.2)).collect(),
            },
        ];
        let f = frame(
            &format!("ks-{ab}"),
            "KS: cumulative bads and goods",
            "share of customers, riskiest first (%)",
            "cumulative share (%)",
            Scale::Percent,
            Scale::Percent,
        );
        ksr.charts[i] = svg::lines(&f, &ks_series, Some((0.0, 1.0)));
        ksr.captions[i] = format!("KS {}: the largest gap between the two curves.", fmt(d.ks));
        let f = frame(
            &format!("deciles-{ab}"),
            "Bad rate by decile",
            "decile (1 = riskiest tenth)",
            "bad rate (%)",
            Scale::Index,
            Scale::Percent,
        );
        let s = Series {
            name: "bad rate".into(),
            points: d
                .deciles
                .iter()
                .map(|x| (x.decile as f64, x.bad_rate))
                .collect(),
        };
        dec.charts[i] = svg::bars(&f, &s);
        dec.captions[i] = format!(
            "Bads over customers in each tenth of the ranking; the riskiest tenth captures \
             {:.1}% of the bads.",
            100.0 * d.deciles.first().map_or(0.0, |x| x.capture)
        );
        let f = frame(
            &format!("lead-{ab}"),
            "Lead time: first alert to default",
            "lead time in weeks (bin k: 7k to 7k+6 days before default)",
            "defaulters",
            Scale::Index,
            Scale::Number,
        );
        let h = Series {
            name: "defaulters alerted before default".into(),
            points: histogram(&d.leads, 7.0)
                .into_iter()
                .map(|(x, c)| (x / 7.0, c as f64))
                .collect(),
        };
        lead.charts[i] = svg::bars(&f, &h);
        let mut leads = d.leads.clone();
        leads.sort_by(f64::total_cmp);
        lead.captions[i] = format!(
            "{} defaulters alerted before their default date (median {:.1} days); bar k \
             counts leads of 7k to 7k+6 days. {} were first alerted on or after it, {} never.",
            leads.len(),
            crate::quality::median(&leads),
            d.alerted_late,
            d.never_alerted
        );
    }
    vec![roc, ksr, dec, lead]
}

/// The summary table: every figure of both sides, with differing rows marked.
fn summary(p: &Page) -> String {
    let [a, b] = p.sides;
    let mut s = String::from(
        "<h2>Where they differ</h2><table class=\"summary\"><tr><th></th><th>A</th><th>B</th>\
         <th>B − A</th></tr>",
    );
    let group = |s: &mut String, name: &str| {
        let _ = write!(s, "<tr class=\"group\"><td colspan=\"4\">{name}</td></tr>");
    };
    let counts = |s: &mut String, x: &BTreeMap<String, u64>, y: &BTreeMap<String, u64>| {
        let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
        if keys.is_empty() {
            s.push_str("<tr><td>none</td><td>0</td><td>0</td><td>0</td></tr>");
        }
        for k in keys {
            let (u, v) = (
                x.get(k).copied().unwrap_or(0),
                y.get(k).copied().unwrap_or(0),
            );
            let d = v as i64 - u as i64;
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{u}</td><td>{v}</td><td{}>{d:+}</td></tr>",
                escape(k),
                if d != 0 { " class=\"diff\"" } else { "" }
            );
        }
    };
    group(&mut s, "Alerts by rule");
    counts(&mut s, &a.alert_totals(), &b.alert_totals());
    group(
        &mut s,
        "Level mix at the end (customers, the dataflow's gauges)",
    );
    let lv = |r: &SideReport| -> BTreeMap<String, u64> {
        (0..5)
            .map(|l| (format!("level {l}"), r.end_levels[l]))
            .collect()
    };
    counts(&mut s, &lv(a), &lv(b));
    group(&mut s, "Decisions by kind");
    counts(&mut s, &a.decision_totals(), &b.decision_totals());
    group(&mut s, "Case events by stage");
    counts(&mut s, &a.cases_by_stage, &b.cases_by_stage);
    if let Some([x, y]) = &p.detection {
        group(&mut s, "Detection quality against the labels");
        let mut row = |name: &str, u: String, v: String| {
            let cls = if u != v { " class=\"diff\"" } else { "" };
            let _ = write!(
                s,
                "<tr><td>{name}</td><td>{u}</td><td>{v}</td><td{cls}>{}</td></tr>",
                if u == v { "same" } else { "differs" }
            );
        };
        let f3 = |v: Option<f64>| v.map_or("n/a".into(), |v| format!("{v:.3}"));
        row("AUC", f3(x.auc), f3(y.auc));
        row("KS", f3(x.ks), f3(y.ks));
        let capture = |d: &Detection| {
            d.deciles
                .first()
                .map_or("n/a".into(), |c| format!("{:.1}%", 100.0 * c.capture))
        };
        row(
            "bads captured by the riskiest decile",
            capture(x),
            capture(y),
        );
        let before = |d: &Detection| d.leads.len().to_string();
        row("bads alerted before default", before(x), before(y));
        let med = |d: &Detection| {
            let mut l = d.leads.clone();
            l.sort_by(f64::total_cmp);
            format!("{:.1}", crate::quality::median(&l))
        };
        row("median lead (days)", med(x), med(y));
    }
    s.push_str("</table>");
    s
}
