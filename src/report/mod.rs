//! The visual backtest report of `riskwatch compare --report FILE`: one self-contained HTML
//! page (inline CSS and SVG, no network reference) with side A and side B in two columns.
//!
//! - [`series`]: a side's outputs as counts per UTC day, peak levels and first alerts.
//! - [`detection`]: the ranking against labels; ROC and KS curves, deciles, lead times.
//! - [`svg`]: the chart primitives (lines, stacked areas and bars, bars, axes, legends).
//! - [`page`]: the page: the summary table and the chart rows.

pub mod detection;
pub mod page;
pub mod series;
pub mod svg;

pub use page::{render, Page};
pub use series::SideReport;

#[cfg(test)]
mod tests {
    use super::detection::detection;
    use super::series::tests::alert;
    use super::*;
    use crate::evaluation::labels::Label;
    use std::collections::HashMap;

    fn sides() -> [SideReport; 2] {
        let a = vec![
            alert("c1", "multi_lending", 20_000, 2, 580.0),
            alert("c2", "dpd<30 & https://example.com/x", 20_003, 3, 520.0),
        ];
        let b = vec![alert("c1", "multi_lending", 20_001, 2, 590.0)];
        [
            SideReport::new("a.toml", "baseline", &a, &[], &[], [8, 0, 1, 1, 0]),
            SideReport::new("b <new>.toml", "baseline", &b, &[], &[], [9, 0, 1, 0, 0]),
        ]
    }

    /// The page with the text between tags removed: what is left are tags and attributes.
    fn markup_only(html: &str) -> String {
        let mut out = String::new();
        let mut in_tag = false;
        for c in html.chars() {
            match c {
                '<' => {
                    in_tag = true;
                    out.push(c)
                }
                '>' => {
                    in_tag = false;
                    out.push(c)
                }
                c if in_tag => out.push(c),
                _ => {}
            }
        }
        out
    }

    #[test]
    fn the_page_references_nothing_outside_itself() {
        let [a, b] = sides();
        let labels: HashMap<String, Label> = [
            (
                "c1".to_string(),
                Label {
                    bad: true,
                    at: Some(20_010 * riskwatch_model::time::MS_PER_DAY),
                },
            ),
            (
                "c3".to_string(),
                Label {
                    bad: false,
                    at: None,
                },
            ),
        ]
        .into();
        let det = [detection(&a.peaks, &labels), detection(&b.peaks, &labels)];
        let html = render(&Page {
            input: "book".into(),
            labels: Some("book/truth.ndjson".into()),
            sides: [&a, &b],
            detection: Some(det),
        });
        // The rule id's URL appears, escaped, as text only.
        assert!(html.contains("https://example.com/x"));
        let tags = markup_only(&html);
        for scheme in ["http://", "https://"] {
            let at = tags
                .find(scheme)
                .map(|i| &tags[i.saturating_sub(120)..i + 40]);
            assert_eq!(at, None, "a network reference inside a tag");
        }
        for attr in [" src=", " href=", "@import", "url("] {
            assert!(!html.contains(attr), "{attr}");
        }
        assert!(
            html.contains("dpd&lt;30 &amp; https"),
            "escaped in the legend and table"
        );
        assert!(html.contains("b &lt;new&gt;.toml"));
        // 4 rows without labels + 4 with: 16 charts, each named.
        assert_eq!(html.matches("<svg data-chart=").count(), 16);
        assert!(html.contains("<body data-charts=\"16\""));
        for name in [
            "alerts-a",
            "levels-b",
            "decisions-a",
            "cases-b",
            "roc-a",
            "ks-b",
        ] {
            assert!(html.contains(&format!("data-chart=\"{name}\"")), "{name}");
        }
        for name in ["deciles-a", "lead-b"] {
            assert!(html.contains(&format!("data-chart=\"{name}\"")), "{name}");
        }
        // No decisions or cases in these sides: those charts say so.
        assert!(html.contains("class=\"no-data\""));
        assert!(html.ends_with("</html>\n"));
    }

    #[test]
    fn the_summary_marks_what_differs() {
        let [a, b] = sides();
        let html = render(&Page {
            input: "book".into(),
            labels: None,
            sides: [&a, &b],
            detection: None,
        });
        assert_eq!(
            html.matches("<svg data-chart=").count(),
            8,
            "no quality rows"
        );
        // multi_lending: 1 and 1, same; the other rule: 1 vs 0.
        assert!(html.contains("<td>multi_lending</td><td>1</td><td>1</td><td>+0</td>"));
        assert!(html.contains("<td>1</td><td>0</td><td class=\"diff\">-1</td>"));
        assert!(html.contains("<td>level 3</td><td>1</td><td>0</td><td class=\"diff\">-1</td>"));
    }
}
