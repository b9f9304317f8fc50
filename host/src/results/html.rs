//! `--report FILE.html`: one self-contained page (nothing fetched: uPlot, the drawing script,
//! the styles and the run's data inline) with the run's charts over time, its latency
//! histogram, status codes, tables, checks and thresholds. The live dashboard
//! (`engine::dashboard`) draws the same page from the same data.

use crate::results::charts;
use crate::results::report::Report;

/// uPlot (MIT, vendored: `host/assets/uplot`), its banner without the address.
const UPLOT_JS: &str = include_str!("../../assets/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../../assets/uplot/uPlot.min.css");
const REPORT_JS: &str = include_str!("../../assets/report.js");
const REPORT_CSS: &str = include_str!("../../assets/report.css");

/// uPlot as inlined: its licence line in place of the banner that names its address.
pub fn uplot_js() -> String {
    let body = UPLOT_JS.split_once("*/").map_or(UPLOT_JS, |(_, rest)| rest);
    format!("/*! uPlot v1.6.32 (MIT licence) (c) 2022 Leon Sorokin */{body}")
}

/// Text for HTML: `&`, `<`, `>`, `"` and `'` escaped.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON safe inside a `<script>` element: no `</script>` or `<!--` can end or bend it.
pub fn script_json(v: &serde_json::Value) -> String {
    v.to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// The page's head: title, styles.
pub fn head(title: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{} - scheduler</title><style>{UPLOT_CSS}\n{REPORT_CSS}</style></head>",
        esc(title)
    )
}

/// The drawing scripts (uPlot, then the page's own).
pub fn scripts() -> String {
    format!(
        "<script>{}</script><script>{REPORT_JS}</script>",
        uplot_js()
    )
}

pub fn page(r: &Report) -> String {
    let data = charts::data(r);
    format!(
        "{}<body><div id=\"app\"><h1>{}</h1><noscript>The charts and tables need JavaScript; the JSON report (--json) has the same figures.</noscript></div><script type=\"application/json\" id=\"data\">{}</script>{}<script>showReport();</script></body></html>\n",
        head(&r.scenario),
        esc(&r.scenario),
        script_json(&data),
        scripts()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_json_cannot_close_the_script() {
        let v = serde_json::json!({"name": "</script><script>alert(1)</script>&<!--"});
        let s = script_json(&v);
        assert!(!s.contains('<') && !s.contains('>') && !s.contains('&'));
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn uplot_is_inlined_without_an_address() {
        let js = uplot_js();
        assert!(js.starts_with("/*! uPlot v1.6.32 (MIT"));
        assert!(!js.contains("http://") && !js.contains("https://"));
    }
}
