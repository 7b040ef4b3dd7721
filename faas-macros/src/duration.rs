//! Durations written the humantime way: `"30s"`, `"500ms"`, `"1m 30s"`,
//! `"2h"`, read with `humantime` as every other duration of the project is.

/// What every duration error ends with.
const HINT: &str = "write a number followed by a unit, optionally chained, \
     e.g. \"500ms\", \"30s\", \"1m 30s\" or \"2h\"";

/// Parses a duration and returns it in whole milliseconds (at least one).
pub(crate) fn parse_millis(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(format!("the duration is empty: {HINT}"));
    }
    let duration = humantime::parse_duration(trimmed)
        .map_err(|error| format!("invalid duration \"{text}\": {error}; {HINT}"))?;
    if duration.is_zero() {
        return Err(format!(
            "the duration \"{text}\" is zero: give a positive duration such as \"30s\""
        ));
    }
    let millis = u64::try_from(duration.as_millis())
        .map_err(|_| format!("the duration \"{text}\" is too long"))?;
    if millis == 0 {
        return Err(format!(
            "the duration \"{text}\" is shorter than a millisecond, the finest a policy keeps"
        ));
    }
    Ok(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_chains() {
        assert_eq!(parse_millis("500ms"), Ok(500));
        assert_eq!(parse_millis("30s"), Ok(30_000));
        assert_eq!(parse_millis("2m"), Ok(120_000));
        assert_eq!(parse_millis("1h"), Ok(3_600_000));
        assert_eq!(parse_millis("1m30s"), Ok(90_000));
        assert_eq!(parse_millis("1h 2m 3s 4ms"), Ok(3_723_004));
        assert_eq!(parse_millis("  10s "), Ok(10_000));
        assert_eq!(parse_millis("2 days"), Ok(172_800_000));
    }

    #[test]
    fn explains_the_mistake() {
        for bad in ["", "30", "s", "5 parsecs", "-3s"] {
            let error = parse_millis(bad).unwrap_err();
            assert!(error.contains("duration"), "{bad:?}: {error}");
        }
        assert!(parse_millis("30").unwrap_err().contains("e.g."));
    }

    #[test]
    fn rejects_zero_tiny_and_overflow() {
        assert!(parse_millis("0s").unwrap_err().contains("zero"));
        assert!(parse_millis("10us").unwrap_err().contains("millisecond"));
        assert!(parse_millis("99999999999999999999h").is_err());
    }
}
