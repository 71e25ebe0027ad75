//! Durations in the config file: a number and a unit (`500ms`, `3s`, `5m`, `2h`, `14d`).

use std::time::Duration;

/// Parses `text` or says what a duration should look like.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration; write a number and a unit, e.g. \"3s\" or \"5m\""))?;
    let seconds = |s: u64| value.checked_mul(s).map(Duration::from_secs);
    let parsed = match unit {
        "ms" => Some(Duration::from_millis(value)),
        "s" => seconds(1),
        "m" => seconds(60),
        "h" => seconds(3600),
        "d" => seconds(86_400),
        _ => return Err(format!("{text:?} has no known unit; use ms, s, m, h or d")),
    };
    parsed.ok_or_else(|| format!("{text:?} is too long a duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_parses() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("14d"), Ok(Duration::from_secs(14 * 86_400)));
    }

    #[test]
    fn a_duration_without_a_unit_or_number_is_refused() {
        for bad in ["3", "s", "", "3 s", "-3s", "3sec", "1.5s", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
