//! Compile-time validation of cron expressions and time zones, with the
//! crates the cron trigger schedules with: `croner` (configured as the
//! scheduler configures it) and `chrono-tz`. The macro accepts exactly the
//! strings the trigger accepts.

use croner::parser::{CronParser, Seconds};

/// What a field-count mistake is told.
const LAYOUT: &str = "Use 5 fields `minute hour day-of-month month day-of-week` \
     (e.g. \"*/5 * * * *\"), 6 fields with `second` first (e.g. \"0 */5 * * * *\"), \
     or a nickname such as \"@daily\"";

/// Checks a cron expression as the cron trigger parses it
/// (`faas_triggers::cron::Schedule`: croner with optional seconds); the
/// error says what is wrong.
pub(crate) fn validate(expression: &str) -> Result<(), String> {
    let trimmed = expression.trim();
    if trimmed.is_empty() {
        return Err(format!("the cron expression is empty. {LAYOUT}"));
    }
    CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(trimmed)
        .map(drop)
        .map_err(|error| {
            let fields = trimmed.split_whitespace().count();
            let hint = if trimmed.starts_with('@') {
                let nickname = trimmed.to_ascii_lowercase();
                format!(
                    "{} Valid nicknames are {}",
                    crate::suggest::did_you_mean(&nickname, NICKNAMES, &[]),
                    crate::suggest::list(NICKNAMES)
                )
            } else if !(5..=6).contains(&fields) {
                format!(" {LAYOUT}")
            } else {
                misspelt_name(trimmed)
            };
            format!("invalid cron expression \"{trimmed}\": {error}{hint}")
        })
}

/// The nicknames croner takes for a whole expression.
const NICKNAMES: &[&str] = &[
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@hourly",
];

/// The month and weekday names a field may use.
const NAMES: &[&str] = &[
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", "SUN",
    "MON", "TUE", "WED", "THU", "FRI", "SAT",
];

/// ` Did you mean `FRI`?` for the first word of `expression` that is not a
/// month or weekday name but is close to one; nothing otherwise.
fn misspelt_name(expression: &str) -> String {
    expression
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|word| word.len() > 1)
        .map(str::to_ascii_uppercase)
        .find(|word| !NAMES.contains(&word.as_str()) && word != "LW")
        .map(|word| crate::suggest::did_you_mean(&word, NAMES, &[]))
        .unwrap_or_default()
}

/// Checks that `timezone` is an IANA time zone the scheduler knows.
pub(crate) fn validate_timezone(timezone: &str) -> Result<(), String> {
    timezone
        .trim()
        .parse::<chrono_tz::Tz>()
        .map(drop)
        .map_err(|_| {
            let suggestion = nearest_zone(timezone.trim())
                .map(|zone| format!(" Did you mean \"{zone}\"?"))
                .unwrap_or_default();
            format!(
                "\"{timezone}\" is not a known time zone.{suggestion} Use an IANA name such as \
                 \"Europe/Paris\", \"America/New_York\" or \"UTC\""
            )
        })
}

/// The known zone whose name is closest to `name`, when it is close.
fn nearest_zone(name: &str) -> Option<&'static str> {
    let names: Vec<&'static str> = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect();
    crate::suggest::closest(name, &names, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_the_scheduler_accepts() {
        for ok in [
            "* * * * *",
            "*/5 * * * *",
            "0 9 * * MON-FRI",
            "0 9 * * mon-fri",
            "30 2 1 JAN,JUL *",
            "0 0 L * *",
            "0 0 ? * 5L",
            "0 0 ? * FRI#2",
            "0 0 1-10/2 * *",
            "0 */10 * * * *",
            "59 59 23 31 12 6",
            "@daily",
            "  @hourly  ",
            "0,15,30,45 * * * *",
        ] {
            assert_eq!(validate(ok), Ok(()), "{ok:?} should be accepted");
        }
    }

    #[test]
    fn rejects_what_the_scheduler_rejects() {
        for bad in [
            "",
            "*",
            "* * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 32 * *",
            "* * * 13 *",
            "abc * * * *",
            "0 9 * * MON-FRY",
            "@dayly",
        ] {
            let error = validate(bad).unwrap_err();
            assert!(error.contains("cron expression"), "{bad:?}: {error}");
        }
        assert!(validate("* * * *").unwrap_err().contains("5 fields"));
        assert!(
            validate("0 9 * * MON-FRY")
                .unwrap_err()
                .contains("Did you mean `FRI`?")
        );
        assert!(
            validate("@dayly")
                .unwrap_err()
                .contains("Did you mean `@daily`?")
        );
    }

    #[test]
    fn time_zones() {
        assert!(validate_timezone("UTC").is_ok());
        assert!(validate_timezone("Europe/Paris").is_ok());
        assert!(validate_timezone("America/Argentina/Buenos_Aires").is_ok());
        let error = validate_timezone("Europe/Pariss").unwrap_err();
        assert!(error.contains("Did you mean \"Europe/Paris\"?"), "{error}");
        assert!(validate_timezone("").is_err());
        assert!(validate_timezone("Mars/Olympus").is_err());
    }
}
