//! Durations in the native TOML as text with a unit: `"100ms"`, `"1s"`, `"1.5s"`, `"2m"`.
//!
//! Used through `#[serde(with = "crate::duration_text")]` (and [`option`] for `Option<Duration>`).

use serde::{Deserialize, Deserializer, Serializer};
use std::time::Duration;

/// What the parser accepts, for error messages.
pub const EXPECTED: &str = "a duration such as \"100ms\", \"1s\", \"1.5s\", \"2m\" or \"1h\"";

/// Parses `"<number><unit>"` with unit `us`, `ms`, `s`, `m` or `h`; the number may have a fraction.
pub fn parse(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let micros_per_unit: u64 = match unit.trim() {
        "us" => 1,
        "ms" => 1_000,
        "s" => 1_000_000,
        "m" => 60_000_000,
        "h" => 3_600_000_000,
        _ => return None,
    };
    decimal_times(number, micros_per_unit).map(Duration::from_micros)
}

/// Parses a plain decimal number of seconds such as keepalived's `<TIMER>` (`2.71828`, `3`).
pub fn parse_seconds(text: &str) -> Option<Duration> {
    decimal_times(text, 1_000_000).map(Duration::from_micros)
}

/// `number * scale` for a non-negative decimal `number`, exactly, truncating beyond 1 µs.
fn decimal_times(number: &str, scale: u64) -> Option<u64> {
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut total = whole.checked_mul(scale)?;
    let mut place = scale;
    for digit in fraction.bytes() {
        place /= 10;
        if place == 0 {
            break;
        }
        total = total.checked_add(u64::from(digit - b'0') * place)?;
    }
    Some(total)
}

/// Formats a duration the way [`parse`] reads it, choosing the largest exact unit.
pub fn format(duration: Duration) -> String {
    let micros = duration.as_micros();
    if micros == 0 {
        "0s".to_string()
    } else if micros % 1_000_000 == 0 {
        format!("{}s", micros / 1_000_000)
    } else if micros % 1_000 == 0 {
        format!("{}ms", micros / 1_000)
    } else {
        format!("{micros}us")
    }
}

/// Serde `serialize_with` for `Duration`.
pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format(*duration))
}

/// Serde `deserialize_with` for `Duration`.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse(&text).ok_or_else(|| {
        serde::de::Error::custom(format!("invalid duration \"{text}\", expected {EXPECTED}"))
    })
}

/// The same for `Option<Duration>` (absent key = `None`).
pub mod option {
    use super::*;

    /// Serde `serialize_with` for `Option<Duration>`.
    pub fn serialize<S: Serializer>(
        duration: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match duration {
            Some(d) => serializer.serialize_some(&format(*d)),
            None => serializer.serialize_none(),
        }
    }

    /// Serde `deserialize_with` for `Option<Duration>`.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        super::deserialize(deserializer).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_fractions() {
        assert_eq!(parse("100ms"), Some(Duration::from_millis(100)));
        assert_eq!(parse("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse("250us"), Some(Duration::from_micros(250)));
        assert_eq!(parse("1"), None);
        assert_eq!(parse("-1s"), None);
        assert_eq!(parse("1.2.3s"), None);
        assert_eq!(parse("99999999999999999999s"), None);
    }

    #[test]
    fn keepalived_timer_seconds() {
        assert_eq!(parse_seconds("0.000001"), Some(Duration::from_micros(1)));
        assert_eq!(
            parse_seconds("2.71828"),
            Some(Duration::from_micros(2_718_280))
        );
        assert_eq!(parse_seconds("."), None);
        assert_eq!(parse_seconds("1e3"), None);
    }

    #[test]
    fn format_round_trips() {
        for d in [0, 1, 999, 1000, 100_000, 1_000_000, 1_500_000, 60_000_000] {
            let d = Duration::from_micros(d);
            assert_eq!(parse(&format(d)), Some(d));
        }
    }
}
