//! Number and text formatting shared by everything `chatter bench` prints:
//! the run summary, the sweep's progress lines, the report's tables and its
//! targets. One place, so that a rate reads the same ("2,876,980/s")
//! wherever it appears.

use super::results::Load;

/// Shown for a figure that was not measured.
pub const DASH: &str = "—";
pub const MIB: f64 = 1024.0 * 1024.0;
pub const GIB: f64 = 1024.0 * MIB;

/// `n` with thousands separators: 1234567 → "1,234,567".
pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A whole-valued float with thousands separators, keeping its sign.
pub fn signed_group(v: f64) -> String {
    if !v.is_finite() {
        return DASH.to_string();
    }
    let sign = if v < 0.0 { "-" } else { "" };
    format!("{sign}{}", group(v.abs() as u64))
}

/// `v` with `places` decimals and thousands separators in the whole part:
/// a stalled server's 9000 ms p99 reads as "9,000.00".
pub fn decimals(v: f64, places: usize) -> String {
    if !v.is_finite() {
        return DASH.to_string();
    }
    let text = format!("{:.*}", places, v.abs());
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let sign = if v < 0.0 && text.bytes().any(|b| matches!(b, b'1'..=b'9')) { "-" } else { "" };
    let whole = group(whole.parse().unwrap_or(0));
    if fraction.is_empty() { format!("{sign}{whole}") } else { format!("{sign}{whole}.{fraction}") }
}

/// A send rate: grouped if whole, else with one decimal.
pub fn rate_text(rate: f64) -> String {
    if rate.fract() == 0.0 { signed_group(rate) } else { format!("{rate:.1}") }
}

/// How a run's messages were sent: "unpaced, open loop", "paced, 2,000
/// msg/s", "unpaced, closed loop, at most 1,000 in flight", or "idle".
pub fn load_text(load: &Load) -> String {
    if load.is_idle() {
        return "idle".to_string();
    }
    pace_text(load.rate, load.window)
}

/// The pace part of [`load_text`]: a total `rate` (0 = unpaced) and the
/// closed loop's `window`, if any.
pub fn pace_text(rate: f64, window: Option<u64>) -> String {
    let pace = if rate > 0.0 { format!("paced, {} msg/s", rate_text(rate)) } else { "unpaced".into() };
    match window {
        Some(window) => format!("{pace}, closed loop, at most {} in flight", group(window)),
        None if rate > 0.0 => pace,
        None => format!("{pace}, open loop"),
    }
}

/// Bytes as MiB with one decimal: "1,600.0".
pub fn mib(bytes: u64) -> String {
    decimals(bytes as f64 / MIB, 1)
}

/// Text made safe for one Markdown table cell.
pub fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formats() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1_234_567), "1,234,567");
        assert_eq!(signed_group(-1234.0), "-1,234");
        assert_eq!(rate_text(1000.0), "1,000");
        assert_eq!(rate_text(2.5), "2.5");
        assert_eq!(decimals(9000.0, 2), "9,000.00");
        assert_eq!(decimals(1234567.891, 2), "1,234,567.89");
        assert_eq!(decimals(0.004, 2), "0.00");
        assert_eq!(decimals(-0.001, 2), "0.00");
        assert_eq!(decimals(-1500.5, 1), "-1,500.5");
        assert_eq!(decimals(12.0, 0), "12");
        assert_eq!(mib(1600 * 1024 * 1024), "1,600.0");
        let mut spec = crate::bench::fixtures::spec("prethread", Some(1), 100, 0.0);
        assert_eq!(load_text(&spec.load), "unpaced, open loop");
        spec.load.window = Some(1000);
        assert_eq!(load_text(&spec.load), "unpaced, closed loop, at most 1,000 in flight");
        spec.load.rate = 2000.0;
        assert_eq!(load_text(&spec.load), "paced, 2,000 msg/s, closed loop, at most 1,000 in flight");
        spec.load.window = None;
        assert_eq!(load_text(&spec.load), "paced, 2,000 msg/s");
        spec.load.senders = 0;
        assert_eq!(load_text(&spec.load), "idle");
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }
}
