//! Charts of a hook's last 24 hours, drawn as inline SVG on the server: a
//! bar per hour of successes stacked on failures, and lines for the
//! latency percentiles. Each chart carries a table of its numbers for
//! screen readers and for reading exact values.

use maud::{html, Markup};

use super::layout;
use crate::store::StatsBucket;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 160.0;
/// Room for the y-axis labels on the left and the x-axis labels below.
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 20.0;

/// The y of the x-axis, and the height a full-scale value reaches above it.
const AXIS_Y: f64 = HEIGHT - BOTTOM;
const PLOT_HEIGHT: f64 = AXIS_Y - 4.0;

/// The width each bucket gets.
fn step(buckets: &[StatsBucket]) -> f64 {
    (WIDTH - LEFT) / buckets.len().max(1) as f64
}

/// The hour of day a bucket starts at, as `HH:00`.
fn hour(bucket: &StatsBucket) -> String {
    layout::time(bucket.start)[11..16].to_string()
}

/// A round axis maximum at or above `max`.
fn axis_max(max: u64) -> u64 {
    let max = max.max(1);
    let magnitude = 10u64.pow(max.ilog10());
    [1, 2, 5, 10]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&step| step >= max)
        .unwrap_or(10 * magnitude)
}

fn frame(label: &str, top: u64, unit: &str, buckets: &[StatsBucket], body: Markup) -> Markup {
    let (plot, step) = (AXIS_Y, step(buckets));
    html! {
        svg class="chart" viewBox={"0 0 " (WIDTH) " " (HEIGHT)} role="img" aria-label=(label) {
            line class="axis" x1=(LEFT) y1=(plot) x2=(WIDTH) y2=(plot) {}
            line class="grid" x1=(LEFT) y1="4" x2=(WIDTH) y2="4" {}
            text class="tick" x=(LEFT - 4.0) y="12" text-anchor="end" { (top) (unit) }
            text class="tick" x=(LEFT - 4.0) y=(plot) text-anchor="end" { "0" }
            @for (i, bucket) in buckets.iter().enumerate().step_by(4) {
                text class="tick" x=(LEFT + step * i as f64) y=(HEIGHT - 4.0) { (hour(bucket)) }
            }
            (body)
        }
    }
}

/// Requests per hour, successes stacked on failures.
pub(super) fn attempts(buckets: &[StatsBucket]) -> Markup {
    let top = axis_max(buckets.iter().map(|b| b.stats.requests).max().unwrap_or(0));
    let (plot, step) = (PLOT_HEIGHT, step(buckets));
    let scale = |n: u64| n as f64 * plot / top as f64;
    let total: u64 = buckets.iter().map(|b| b.stats.requests).sum();
    let failed: u64 = buckets.iter().map(|b| b.stats.failures).sum();
    html! {
        figure {
            figcaption { "Attempts per hour: " (total) " in all, " (failed) " failed" }
            (frame("Attempts per hour, successes and failures", top, "", buckets, html! {
                @for (i, b) in buckets.iter().enumerate() {
                    @let x = LEFT + step * i as f64 + 1.0;
                    @let ok = scale(b.stats.successes);
                    @let bad = scale(b.stats.failures);
                    g {
                        title { (hour(b)) ": " (b.stats.successes) " succeeded, " (b.stats.failures) " failed" }
                        rect class="ok" x=(x) y=(AXIS_Y - ok) width=(step - 2.0) height=(ok) {}
                        rect class="bad" x=(x) y=(AXIS_Y - ok - bad) width=(step - 2.0) height=(bad) {}
                    }
                }
            }))
            details {
                summary { "Numbers" }
                table {
                    thead { tr { th scope="col" { "Hour (UTC)" } th scope="col" { "Requests" } th scope="col" { "Succeeded" } th scope="col" { "Failed" } } }
                    tbody { @for b in buckets { tr { td { (hour(b)) } td { (b.stats.requests) } td { (b.stats.successes) } td { (b.stats.failures) } } } }
                }
            }
        }
    }
}

/// Latency percentiles per hour, as lines.
pub(super) fn latency(buckets: &[StatsBucket]) -> Markup {
    let series = |pick: fn(&StatsBucket) -> Option<u64>| -> Vec<(usize, u64)> {
        buckets
            .iter()
            .enumerate()
            .filter_map(|(i, b)| pick(b).map(|v| (i, v)))
            .collect()
    };
    let lines = [
        ("p50", series(|b| b.stats.latency_ms.p50)),
        ("p90", series(|b| b.stats.latency_ms.p90)),
        ("p99", series(|b| b.stats.latency_ms.p99)),
    ];
    let top = axis_max(
        lines
            .iter()
            .flat_map(|(_, s)| s.iter().map(|(_, v)| *v))
            .max()
            .unwrap_or(0),
    );
    let (plot, step) = (PLOT_HEIGHT, step(buckets));
    let point = |(i, v): &(usize, u64)| {
        (
            LEFT + step * (*i as f64 + 0.5),
            AXIS_Y - *v as f64 * plot / top as f64,
        )
    };
    let path = |points: &[(usize, u64)]| {
        points
            .iter()
            .map(|p| {
                let (x, y) = point(p);
                format!("{x:.1},{y:.1}")
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    html! {
        figure {
            figcaption {
                "Latency per hour: "
                @for (name, _) in &lines { span class={"key " (name)} { (name) } " " }
            }
            (frame("Request latency percentiles per hour, in milliseconds", top, " ms", buckets, html! {
                @for (name, points) in &lines {
                    polyline class={"line " (name)} points=(path(points)) {}
                    @for p in points {
                        @let (x, y) = point(p);
                        circle class={"dot " (name)} r="2.5" cx=(format!("{x:.1}")) cy=(format!("{y:.1}")) { title { (name) " " (hour(&buckets[p.0])) ": " (p.1) " ms" } }
                    }
                }
            }))
            details {
                summary { "Numbers" }
                table {
                    thead { tr { th scope="col" { "Hour (UTC)" } th scope="col" { "p50" } th scope="col" { "p90" } th scope="col" { "p99" } } }
                    tbody {
                        @for b in buckets {
                            @let ms = |v: Option<u64>| v.map_or("–".to_string(), |v| format!("{v} ms"));
                            tr { td { (hour(b)) } td { (ms(b.stats.latency_ms.p50)) } td { (ms(b.stats.latency_ms.p90)) } td { (ms(b.stats.latency_ms.p99)) } }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_on_round_numbers() {
        assert_eq!(axis_max(0), 1);
        assert_eq!(axis_max(7), 10);
        assert_eq!(axis_max(13), 20);
        assert_eq!(axis_max(480), 500);
        assert_eq!(axis_max(1000), 1000);
    }
}
