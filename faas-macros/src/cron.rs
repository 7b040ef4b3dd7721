//! Compile-time validation of cron expressions.
//!
//! The grammar is the one the cron trigger's scheduler accepts:
//!
//! - 5 fields: `minute hour day-of-month month day-of-week`;
//! - 6 fields: `second` first, then the 5 above;
//! - 7 fields: the 6 above, then `year`;
//! - or a nickname: `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily`,
//!   `@hourly`.
//!
//! Each field is a comma-separated list of `*`, `N`, `N-M`, `*/S` or `N-M/S`.
//! Months and weekdays also take their three-letter English names (`JAN`,
//! `MON`), weekdays run 0-7 with both 0 and 7 meaning Sunday. The day of the
//! month and the day of the week also take `?` (no constraint); the day of
//! the month takes `L` (last day), `LW` (last weekday) and `NW` (the weekday
//! nearest day N); the day of the week takes `NL` (last such weekday of the
//! month) and `N#K` (the K-th such weekday, K in 1-5).

/// One field of a cron expression.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// The value of `names[0]`.
    names_start: u32,
    kind: FieldKind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    Plain,
    DayOfMonth,
    DayOfWeek,
}

const MONTHS: &[&str] = &[
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

const fn field(name: &'static str, min: u32, max: u32) -> Field {
    Field {
        name,
        min,
        max,
        names: &[],
        names_start: 0,
        kind: FieldKind::Plain,
    }
}

const SECOND: Field = field("second", 0, 59);
const MINUTE: Field = field("minute", 0, 59);
const HOUR: Field = field("hour", 0, 23);
const DAY_OF_MONTH: Field = Field {
    kind: FieldKind::DayOfMonth,
    ..field("day-of-month", 1, 31)
};
const MONTH: Field = Field {
    names: MONTHS,
    names_start: 1,
    ..field("month", 1, 12)
};
const DAY_OF_WEEK: Field = Field {
    names: WEEKDAYS,
    names_start: 0,
    kind: FieldKind::DayOfWeek,
    ..field("day-of-week", 0, 7)
};
const YEAR: Field = field("year", 1, 5000);

/// The nicknames that stand for a whole expression.
const NICKNAMES: &[&str] = &[
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@hourly",
];

/// What the field-count error explains.
const LAYOUT: &str = "use 5 fields `minute hour day-of-month month day-of-week` \
     (e.g. \"*/5 * * * *\"), 6 fields with `second` first (e.g. \"0 */5 * * * *\"), \
     7 fields with a `year` last, or a nickname such as \"@daily\"";

/// Checks a cron expression; the error explains what is wrong and how to fix it.
pub(crate) fn validate(expression: &str) -> Result<(), String> {
    let trimmed = expression.trim();
    if trimmed.is_empty() {
        return Err(format!("the cron expression is empty: {LAYOUT}"));
    }
    if trimmed.starts_with('@') {
        let lowered = trimmed.to_ascii_lowercase();
        if NICKNAMES.contains(&lowered.as_str()) {
            return Ok(());
        }
        let suggestion = crate::suggest::did_you_mean(&lowered, NICKNAMES, &[]);
        return Err(format!(
            "unknown cron nickname `{trimmed}`.{suggestion} Valid nicknames are {}",
            crate::suggest::list(NICKNAMES)
        ));
    }
    let parts: Vec<&str> = trimmed.split_whitespace().collect();
    let fields: &[Field] = match parts.len() {
        5 => &[MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK],
        6 => &[SECOND, MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK],
        7 => &[SECOND, MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK, YEAR],
        count => {
            return Err(format!(
                "the cron expression \"{trimmed}\" has {count} field{}: {LAYOUT}",
                if count == 1 { "" } else { "s" }
            ));
        }
    };
    for (part, field) in parts.iter().zip(fields) {
        validate_field(part, field)
            .map_err(|reason| format!("invalid cron expression \"{trimmed}\": {reason}"))?;
    }
    Ok(())
}

fn validate_field(text: &str, field: &Field) -> Result<(), String> {
    for item in text.split(',') {
        if item.is_empty() {
            return Err(format!(
                "the {} field `{text}` has an empty list item",
                field.name
            ));
        }
        validate_item(item, field)?;
    }
    Ok(())
}

fn validate_item(item: &str, field: &Field) -> Result<(), String> {
    let upper = item.to_ascii_uppercase();
    let name = field.name;
    if upper == "*" {
        return Ok(());
    }
    if upper == "?" {
        return if field.kind == FieldKind::Plain {
            Err(format!(
                "`?` is only allowed in the day-of-month and day-of-week fields, \
                 not in the {name} field; use `*`"
            ))
        } else {
            Ok(())
        };
    }
    if let Some((range, step)) = upper.split_once('/') {
        let step_value: u32 = step.parse().map_err(|_| {
            format!("the step `{step}` in the {name} field `{item}` is not a whole number")
        })?;
        let span = field.max - field.min + 1;
        if step_value == 0 || step_value > span {
            return Err(format!(
                "the step `{step}` in the {name} field `{item}` must be between 1 and {span}"
            ));
        }
        if range == "*" {
            return Ok(());
        }
        if range.contains('-') {
            return validate_range(range, item, field);
        }
        return Err(format!(
            "the {name} field `{item}` steps from a single value; write `*/{step}` \
             for every {step}, or `{range}-{}/{step}` to start at {range}",
            field.max
        ));
    }
    if upper.contains('-') {
        return validate_range(&upper, item, field);
    }
    match field.kind {
        FieldKind::DayOfMonth => {
            if upper == "L" || upper == "LW" {
                return Ok(());
            }
            if let Some(day) = upper.strip_suffix('W') {
                value(day, item, field)?;
                return Ok(());
            }
        }
        FieldKind::DayOfWeek => {
            if upper == "L" {
                return Err(format!(
                    "`L` alone is ambiguous in the day-of-week field; write `5L` \
                     (or `FRIL`) for the last Friday of the month, or use `L` in \
                     the day-of-month field for the last day of the month (in `{item}`)"
                ));
            }
            if let Some(day) = upper.strip_suffix('L') {
                value(day, item, field)?;
                return Ok(());
            }
            if let Some((day, nth)) = upper.split_once('#') {
                value(day, item, field)?;
                return match nth.parse::<u32>() {
                    Ok(1..=5) => Ok(()),
                    _ => Err(format!(
                        "`#{nth}` in the day-of-week field `{item}` must be `#1` to `#5` \
                         (the first to fifth such weekday of the month)"
                    )),
                };
            }
        }
        FieldKind::Plain => {}
    }
    value(&upper, item, field).map(drop)
}

fn validate_range(range: &str, item: &str, field: &Field) -> Result<(), String> {
    let (start, end) = range
        .split_once('-')
        .ok_or_else(|| format!("`{item}` is not a range"))?;
    let start_value = value(start, item, field)?;
    let end_value = value(end, item, field)?;
    if start_value > end_value {
        return Err(format!(
            "the {} range `{item}` runs backwards; write the smaller value first",
            field.name
        ));
    }
    Ok(())
}

/// Parses one value of a field: a number in range, or a name.
fn value(text: &str, item: &str, field: &Field) -> Result<u32, String> {
    let name = field.name;
    let (min, max) = (field.min, field.max);
    if text.is_empty() {
        return Err(format!("the {name} field `{item}` is missing a value"));
    }
    if let Some(index) = field.names.iter().position(|candidate| *candidate == text) {
        return Ok(field.names_start + index as u32);
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u32>() {
            Ok(number) if (min..=max).contains(&number) => Ok(number),
            _ => Err(format!(
                "the {name} `{text}` is out of range: {name} runs from {min} to {max}"
            )),
        };
    }
    if field.names.is_empty() {
        return Err(format!(
            "`{text}` is not a valid {name} in `{item}`: expected a number from {min} to {max}"
        ));
    }
    let suggestion = crate::suggest::did_you_mean(text, field.names, &[]);
    Err(format!(
        "`{text}` is not a valid {name} in `{item}`.{suggestion} Expected a number from \
         {min} to {max} or a name ({})",
        crate::suggest::list(field.names)
    ))
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn accepts_common_expressions() {
        for ok in [
            "* * * * *",
            "*/5 * * * *",
            "0 9 * * MON-FRI",
            "0 9 * * mon-fri",
            "30 2 1 JAN,JUL *",
            "0 0 L * *",
            "0 0 LW * *",
            "0 0 15W * *",
            "0 0 ? * 5L",
            "0 0 ? * FRI#2",
            "0 0 * * 7",
            "0 0 1-10/2 * *",
            "0 */10 * * * *",
            "59 59 23 31 12 6",
            "0 0 12 * * ? 2030",
            "0 0 0 1 1 * 2025-2030",
            "@daily",
            "@Hourly",
            "  @yearly  ",
            "0,15,30,45 * * * *",
        ] {
            assert_eq!(validate(ok), Ok(()), "{ok:?} should be accepted");
        }
    }

    #[test]
    fn rejects_wrong_field_counts() {
        for bad in ["", "*", "* * * *", "* * * * * * * *"] {
            let error = validate(bad).unwrap_err();
            assert!(
                error.contains("5 fields") || error.contains("empty"),
                "{bad:?}: {error}"
            );
        }
        assert!(validate("* * * *").unwrap_err().contains("has 4 fields"));
    }

    #[test]
    fn rejects_out_of_range_values() {
        let cases = [
            ("60 * * * *", "minute `60` is out of range"),
            ("* 24 * * *", "hour `24` is out of range"),
            ("* * 0 * *", "day-of-month `0` is out of range"),
            ("* * 32 * *", "day-of-month `32` is out of range"),
            ("* * * 13 *", "month `13` is out of range"),
            ("* * * * 8", "day-of-week `8` is out of range"),
            ("60 * * * * *", "second `60` is out of range"),
            ("0 0 0 1 1 * 0", "year `0` is out of range"),
        ];
        for (bad, expected) in cases {
            let error = validate(bad).unwrap_err();
            assert!(error.contains(expected), "{bad:?}: {error}");
        }
    }

    #[test]
    fn rejects_malformed_items() {
        let cases = [
            ("*/0 * * * *", "must be between 1 and 60"),
            ("*/61 * * * *", "must be between 1 and 60"),
            ("*/x * * * *", "is not a whole number"),
            ("5/10 * * * *", "write `*/10`"),
            ("10-5 * * * *", "runs backwards"),
            ("1,,2 * * * *", "empty list item"),
            ("abc * * * *", "`ABC` is not a valid minute"),
            ("* * * FOO *", "or a name (`JAN`"),
            ("0 9 * * MON-FRY", "Did you mean `FRI`?"),
            ("* * * * MON#6", "`#1` to `#5`"),
            ("* * * * L", "`L` alone is ambiguous"),
            ("? * * * *", "`?` is only allowed"),
            ("* * * * JAN", "is not a valid day-of-week"),
            ("* * 5L * *", "is not a valid day-of-month"),
            ("* * * -5 *", "missing a value"),
            ("@dayly", "Did you mean `@daily`?"),
            ("@every 5m", "unknown cron nickname"),
        ];
        for (bad, expected) in cases {
            let error = validate(bad).unwrap_err();
            assert!(error.contains(expected), "{bad:?}: {error}");
        }
    }
}
