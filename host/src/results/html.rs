//! `--report FILE.html`: one self-contained page (no script, no fetch: inline CSS and SVG)
//! with the run's charts over time, its tables, checks and thresholds.

use std::fmt::Write as _;

use crate::results::record::{Groups, Interval};
use crate::results::report::{Group, Report};

/// Text for HTML: `&`, `<`, `>`, `"` and `'` escaped.
fn esc(s: &str) -> String {
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

const W: f64 = 760.0;
const H: f64 = 200.0;
const PAD: f64 = 40.0;

/// A line chart of `lines` (name, colour, value per interval) over the run's time.
fn chart(title: &str, unit: &str, series: &[Interval], lines: &[(&str, &str, Vec<f64>)]) -> String {
    let mut s = String::new();
    let _ = write!(s, "<h3>{}</h3>", esc(title));
    if series.is_empty() {
        s.push_str("<p>No intervals recorded.</p>");
        return s;
    }
    let t_max = series.last().map_or(1.0, |i| i.t).max(1e-9);
    let v_max = lines
        .iter()
        .flat_map(|l| l.2.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let x = |t: f64| PAD + (W - 2.0 * PAD) * t / t_max;
    let y = |v: f64| H - PAD + -(H - 2.0 * PAD) * v / v_max;
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\">",
        esc(title)
    );
    let _ = write!(
        s,
        "<line x1=\"{PAD}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#888\"/><line x1=\"{PAD}\" y1=\"{PAD}\" x2=\"{PAD}\" y2=\"{b}\" stroke=\"#888\"/>",
        b = H - PAD,
        r = W - PAD
    );
    let _ = write!(
        s,
        "<text x=\"4\" y=\"{}\" font-size=\"11\">{:.1} {}</text><text x=\"4\" y=\"{}\" font-size=\"11\">0</text><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{:.0} s</text>",
        PAD - 6.0,
        v_max,
        esc(unit),
        H - PAD,
        W - PAD,
        H - 8.0,
        t_max
    );
    for (i, (name, colour, values)) in lines.iter().enumerate() {
        let points: Vec<String> = series
            .iter()
            .zip(values)
            .map(|(iv, v)| format!("{:.1},{:.1}", x(iv.t), y(*v)))
            .collect();
        // A dot a point: a run of one interval still shows.
        for p in &points {
            let (cx, cy) = p.split_once(',').unwrap_or_default();
            let _ = write!(
                s,
                "<circle cx=\"{cx}\" cy=\"{cy}\" r=\"2\" fill=\"{colour}\"/>"
            );
        }
        let _ = write!(
            s,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\"/><text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"{colour}\">{}</text>",
            points.join(" "),
            PAD + 10.0 + 90.0 * i as f64,
            PAD - 6.0,
            esc(name)
        );
    }
    s.push_str("</svg>");
    s
}

/// Which groups of an interval a chart draws (its actions or its tenants).
type Pick = fn(&Interval) -> &Groups;

const PALETTE: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// Per-interval lines of one group kind (`pick` chooses actions or tenants): requests per
/// second, or p90, one line per name (the first eight names).
fn group_lines(
    series: &[Interval],
    secs: &[f64],
    pick: Pick,
    rate: bool,
) -> Vec<(String, &'static str, Vec<f64>)> {
    let mut names: Vec<String> = series
        .iter()
        .flat_map(|i| pick(i).iter().map(|g| g.0.clone()))
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .take(PALETTE.len())
        .enumerate()
        .map(|(n, name)| {
            let values = series
                .iter()
                .zip(secs)
                .map(|(i, d)| {
                    pick(i)
                        .iter()
                        .find(|g| g.0 == name)
                        .map_or(0.0, |g| if rate { g.1 as f64 / d } else { g.2 })
                })
                .collect();
            (name, PALETTE[n], values)
        })
        .collect()
}

/// Requests per source address, in address order, as bars (the first 400).
fn sources_chart(r: &Report) -> String {
    let mut rows: Vec<(&String, u64)> = r.by_source.iter().map(|(k, g)| (k, g.count)).collect();
    rows.sort_by_key(|(k, _)| {
        (
            k.parse::<std::net::IpAddr>().ok().is_none(),
            k.parse::<std::net::IpAddr>().ok(),
        )
    });
    rows.truncate(400);
    let mut s = String::from("<h3>Requests per source address</h3>");
    if rows.is_empty() {
        return s;
    }
    let most = rows.iter().map(|r| r.1).max().unwrap_or(1).max(1) as f64;
    let bar = (W - 2.0 * PAD) / rows.len() as f64;
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"requests per source address\">"
    );
    for (i, (ip, n)) in rows.iter().enumerate() {
        let h = (H - 2.0 * PAD) * *n as f64 / most;
        let _ = write!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.2}\" height=\"{h:.1}\" fill=\"#1f77b4\"><title>{} {n}</title></rect>",
            PAD + bar * i as f64,
            H - PAD - h,
            (bar * 0.9).max(0.5),
            esc(ip)
        );
    }
    let _ = write!(
        s,
        "<text x=\"4\" y=\"{}\" font-size=\"11\">{most:.0}</text><text x=\"{PAD}\" y=\"{}\" font-size=\"11\">{}</text><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{}</text></svg>",
        PAD - 6.0,
        H - PAD + 14.0,
        esc(rows[0].0),
        W - PAD,
        H - PAD + 14.0,
        esc(rows[rows.len() - 1].0)
    );
    s
}

fn table<'a>(title: &str, rows: impl Iterator<Item = (&'a String, &'a Group)>) -> String {
    let mut s = format!(
        "<h3>{}</h3><table><tr><th>{}</th><th>requests</th><th>ok</th><th>failed</th><th>mean ms</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>max</th></tr>",
        esc(title),
        esc(title)
    );
    for (k, g) in rows {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            esc(k),
            g.count,
            g.ok,
            g.failed
        );
        for v in g.latencies() {
            let _ = write!(s, "<td>{v:.2}</td>");
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");
    s
}

pub fn page(r: &Report) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} - scheduler report</title><style>body{{font-family:sans-serif;margin:2em;max-width:60em}}table{{border-collapse:collapse;margin-bottom:1em}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}td:first-child,th:first-child{{text-align:left}}.ok{{color:#080}}.fail{{color:#c00;font-weight:bold}}</style></head><body>",
        esc(&r.scenario)
    );
    let _ = write!(
        s,
        "<h1>{}</h1><p>{}{:.1} s; users {} spawned, {} finished; {} requests, {} ok, {} failed ({:.1}% success); {} iterations{}{}</p>",
        esc(&r.scenario),
        match (r.started_at, r.ended_at) {
            (Some(a), Some(b)) => format!(
                "<time datetime=\"{0}\">{0}</time> to <time datetime=\"{1}\">{1}</time>; ",
                crate::results::report::rfc3339(a),
                crate::results::report::rfc3339(b)
            ),
            _ => String::new(),
        },
        r.elapsed_s,
        r.users_spawned,
        r.users_finished,
        r.totals.count,
        r.totals.ok,
        r.totals.failed,
        r.success_rate() * 100.0,
        r.iterations,
        if r.dropped_iterations > 0 {
            format!(", {} dropped", r.dropped_iterations)
        } else {
            String::new()
        },
        if r.interrupted { " (interrupted)" } else { "" }
    );
    if !r.thresholds.is_empty() {
        s.push_str("<h2>Thresholds</h2><table><tr><th>metric</th><th>threshold</th><th>observed</th><th>verdict</th></tr>");
        for v in &r.thresholds {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
                esc(&v.name),
                esc(&v.expr),
                v.observed.map_or("no data".into(), |o| format!("{o:.4}")),
                if v.ok { "ok" } else { "fail" },
                if v.ok { "ok" } else { "FAILED" }
            );
        }
        s.push_str("</table>");
    }
    // The last interval ends when the run does: a sliver of one would chart as a spike.
    let mut series: &[Interval] = &r.series;
    if let [.., before, last] = series
        && last.t - before.t < 0.5
    {
        series = &series[..series.len() - 1];
    }
    let secs: Vec<f64> = series
        .iter()
        .scan(0.0, |last, i| {
            let d = (i.t - *last).max(1e-9);
            *last = i.t;
            Some(d)
        })
        .collect();
    let per_s = |f: fn(&Interval) -> u64| -> Vec<f64> {
        series
            .iter()
            .zip(&secs)
            .map(|(i, d)| f(i) as f64 / d)
            .collect()
    };
    s.push_str("<h2>Over time</h2>");
    s.push_str(&chart(
        "Requests and errors per second",
        "/s",
        series,
        &[
            ("requests", "#1f77b4", per_s(|i| i.requests)),
            ("errors", "#d62728", per_s(|i| i.failed)),
        ],
    ));
    s.push_str(&chart(
        "Latency",
        "ms",
        series,
        &[
            ("p50", "#2ca02c", series.iter().map(|i| i.p50_ms).collect()),
            ("p90", "#ff7f0e", series.iter().map(|i| i.p90_ms).collect()),
            ("p99", "#d62728", series.iter().map(|i| i.p99_ms).collect()),
        ],
    ));
    let charts: [(&str, &str, Pick, bool); 4] = [
        (
            "Requests per second by action",
            "/s",
            |i| &i.by_action,
            true,
        ),
        ("p90 latency by action", "ms", |i| &i.by_action, false),
        (
            "Requests per second by tenant",
            "/s",
            |i| &i.by_tenant,
            true,
        ),
        ("p90 latency by tenant", "ms", |i| &i.by_tenant, false),
    ];
    for (title, unit, pick, rate) in charts {
        let lines = group_lines(series, &secs, pick, rate);
        let lines: Vec<(&str, &str, Vec<f64>)> = lines
            .iter()
            .map(|(n, c, v)| (n.as_str(), *c, v.clone()))
            .collect();
        s.push_str(&chart(title, unit, series, &lines));
    }
    s.push_str(&chart(
        "Users active",
        "users",
        series,
        &[(
            "active",
            "#9467bd",
            series.iter().map(|i| i.users_active as f64).collect(),
        )],
    ));
    s.push_str("<h2>Requests</h2>");
    s.push_str(&table("action", r.by_action.iter()));
    s.push_str(&table("tenant", r.by_tenant.iter()));
    s.push_str(&sources_chart(r));
    s.push_str(&table("source address", r.by_source.iter()));
    if !r.checks.is_empty() {
        s.push_str("<h2>Checks</h2><table><tr><th>action</th><th>check</th><th>passed</th><th>of</th><th>rate</th></tr>");
        for c in &r.checks {
            let n = c.pass + c.fail;
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}%</td></tr>",
                esc(&c.action),
                esc(&c.name),
                c.pass,
                n,
                if n == 0 {
                    0.0
                } else {
                    100.0 * c.pass as f64 / n as f64
                }
            );
        }
        s.push_str("</table>");
    }
    if !r.errors.is_empty() {
        s.push_str("<h2>Errors</h2><table><tr><th>error</th><th>count</th></tr>");
        for (k, n) in &r.errors {
            let _ = write!(s, "<tr><td>{}</td><td>{n}</td></tr>", esc(k));
        }
        s.push_str("</table>");
    }
    s.push_str("</body></html>\n");
    s
}
