//! Durations written the humantime way: `"30s"`, `"500ms"`, `"1m30s"`,
//! `"2h"`.

/// The units a duration may use, with their length in milliseconds.
const UNITS: &[(&str, u64)] = &[("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000)];

/// What every duration error ends with.
const HINT: &str = "write a whole number followed by a unit: `ms`, `s`, `m` or `h`, \
     optionally chained, e.g. \"500ms\", \"30s\", \"1m30s\" or \"2h\"";

/// Parses a duration and returns it in milliseconds.
///
/// A duration is one or more `<whole number><unit>` parts; spaces may
/// separate the parts and a number from its unit. The parts add up, and the
/// total must be above zero.
pub(crate) fn parse_millis(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(format!("the duration is empty: {HINT}"));
    }
    let mut total: u64 = 0;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(format!(
                "invalid duration \"{text}\": expected a number at `{rest}`; {HINT}"
            ));
        }
        let (number, after_number) = rest.split_at(digits);
        let after_number = after_number.trim_start();
        let unit_len = after_number.len()
            - after_number
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        let (unit, after_unit) = after_number.split_at(unit_len);
        if unit.is_empty() {
            let next = after_unit.chars().next();
            return Err(match next {
                Some('.') | Some(',') => format!(
                    "invalid duration \"{text}\": fractions are not supported, \
                     use a smaller unit instead (e.g. \"1500ms\" for 1.5 seconds)"
                ),
                _ => format!("invalid duration \"{text}\": `{number}` has no unit; {HINT}"),
            });
        }
        let Some(&(_, unit_millis)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            let names: Vec<&str> = UNITS.iter().map(|(name, _)| *name).collect();
            let suggestion = crate::suggest::did_you_mean(unit, &names, UNIT_ALIASES);
            return Err(format!(
                "invalid duration \"{text}\": unknown unit `{unit}`.{suggestion} \
                 Valid units are {}",
                crate::suggest::list(&names)
            ));
        };
        let overflow = || format!("the duration \"{text}\" is too long");
        let value: u64 = number.parse().map_err(|_| overflow())?;
        let millis = value.checked_mul(unit_millis).ok_or_else(overflow)?;
        total = total.checked_add(millis).ok_or_else(overflow)?;
        rest = after_unit.trim_start();
    }
    if total == 0 {
        return Err(format!(
            "the duration \"{text}\" is zero: give a positive duration such as \"30s\""
        ));
    }
    Ok(total)
}

/// Unit spellings that other tools accept, mapped to ours.
const UNIT_ALIASES: &[(&str, &str)] = &[
    ("sec", "s"),
    ("secs", "s"),
    ("second", "s"),
    ("seconds", "s"),
    ("min", "m"),
    ("mins", "m"),
    ("minute", "m"),
    ("minutes", "m"),
    ("hr", "h"),
    ("hrs", "h"),
    ("hour", "h"),
    ("hours", "h"),
    ("msec", "ms"),
    ("millis", "ms"),
    ("milliseconds", "ms"),
];

#[cfg(test)]
mod tests {
    use super::parse_millis;

    #[test]
    fn parses_single_units() {
        assert_eq!(parse_millis("500ms"), Ok(500));
        assert_eq!(parse_millis("30s"), Ok(30_000));
        assert_eq!(parse_millis("2m"), Ok(120_000));
        assert_eq!(parse_millis("1h"), Ok(3_600_000));
    }

    #[test]
    fn adds_chained_parts() {
        assert_eq!(parse_millis("1m30s"), Ok(90_000));
        assert_eq!(parse_millis("1h 2m 3s 4ms"), Ok(3_723_004));
        assert_eq!(parse_millis("  10s "), Ok(10_000));
        assert_eq!(parse_millis("0s 5ms"), Ok(5));
        assert_eq!(parse_millis("30 s"), Ok(30_000));
        assert_eq!(parse_millis("1 m 30 s"), Ok(90_000));
    }

    #[test]
    fn rejects_malformed_input() {
        for bad in [
            "", "  ", "30", "s", "1.5s", "30 s x", "10sec", "-5s", "5d", "1m30",
        ] {
            assert!(parse_millis(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn explains_the_mistake() {
        let no_unit = parse_millis("30").unwrap_err();
        assert!(no_unit.contains("`30` has no unit"), "{no_unit}");
        let unknown = parse_millis("10sec").unwrap_err();
        assert!(unknown.contains("Did you mean `s`?"), "{unknown}");
        let spelt = parse_millis("30 seconds").unwrap_err();
        assert!(
            spelt.contains("unknown unit `seconds`. Did you mean `s`?"),
            "{spelt}"
        );
        let fraction = parse_millis("1.5s").unwrap_err();
        assert!(fraction.contains("1500ms"), "{fraction}");
        let days = parse_millis("5d").unwrap_err();
        assert!(days.contains("`ms`, `s`, `m` and `h`"), "{days}");
    }

    #[test]
    fn rejects_zero_and_overflow() {
        assert!(parse_millis("0s").unwrap_err().contains("zero"));
        assert!(parse_millis("0ms 0h").unwrap_err().contains("zero"));
        assert!(
            parse_millis("99999999999999999999s")
                .unwrap_err()
                .contains("too long")
        );
        assert!(
            parse_millis("18446744073709551615h")
                .unwrap_err()
                .contains("too long")
        );
    }
}
