//! A parsed cron expression bound to a time zone.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};

use crate::{Error, Result};

/// A cron expression with an optional seconds field, evaluated in an IANA time zone.
///
/// Accepted forms (the fields of POSIX cron, plus croner's extensions such as
/// `L`, `W`, `#` and the `@hourly`/`@daily`/... nicknames):
///
/// | fields | meaning |
/// |---|---|
/// | 5 | `min hour day-of-month month day-of-week`, firing at second 0 |
/// | 6 | `sec min hour day-of-month month day-of-week` |
/// | 7 | `sec min hour day-of-month month day-of-week year` |
///
/// The expression is matched against the wall clock of the schedule's time
/// zone (UTC unless given), so `0 0 9 * * MON-FRI` in `Europe/Paris` fires at
/// nine in Paris on both sides of a daylight-saving change. A local time that
/// does not exist (the hour skipped in spring) is handled as croner resolves
/// it; a local time that occurs twice (autumn) fires once.
///
/// ```
/// use faas_triggers::cron::Schedule;
/// use chrono::{TimeZone, Utc};
///
/// let schedule = Schedule::parse("0 30 9 * * *", Some("America/New_York"))?;
/// let after = Utc.with_ymd_and_hms(2025, 1, 15, 0, 0, 0).unwrap();
/// // 09:30 in New York in January is 14:30 UTC.
/// assert_eq!(
///     schedule.next_after(after),
///     Some(Utc.with_ymd_and_hms(2025, 1, 15, 14, 30, 0).unwrap())
/// );
/// # Ok::<(), faas_triggers::Error>(())
/// ```
#[derive(Clone)]
pub struct Schedule {
    expression: String,
    cron: Cron,
    timezone: Tz,
}

impl Schedule {
    /// Parses `expression` in the time zone named `timezone` (an IANA name such
    /// as `Europe/Paris`; `None` means UTC).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSchedule`] when the expression does not parse,
    /// [`Error::InvalidTimeZone`] when the zone is not an IANA name.
    pub fn parse(expression: &str, timezone: Option<&str>) -> Result<Self> {
        let timezone = match timezone {
            None => Tz::UTC,
            Some(name) => parse_timezone(name)?,
        };
        Self::with_timezone(expression, timezone)
    }

    /// Parses `expression` evaluated in `timezone`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSchedule`] when the expression does not parse.
    pub fn with_timezone(expression: &str, timezone: Tz) -> Result<Self> {
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(expression)
            .map_err(|source| Error::InvalidSchedule {
                expression: expression.to_owned(),
                source,
            })?;
        Ok(Self {
            expression: expression.trim().to_owned(),
            cron,
            timezone,
        })
    }

    /// The expression as written.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The time zone the expression is evaluated in.
    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// The first time strictly after `after` that matches, or `None` when the
    /// expression never matches again (e.g. a past year).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.timezone);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|next| next.with_timezone(&Utc))
    }

    /// The latest matching time in `(after, until]` and how many matching
    /// times that interval holds, the count saturating at `limit` (at least 1).
    ///
    /// The cron trigger uses it to collapse ticks missed during a pause into
    /// one run. `None` when nothing in the interval matches.
    pub fn latest_due(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u64,
    ) -> Option<(DateTime<Utc>, u64)> {
        let limit = limit.max(1);
        let mut latest = None;
        let mut count = 0_u64;
        while let Some(next) = self.next_after(latest.unwrap_or(after)) {
            if next > until {
                break;
            }
            count += 1;
            latest = Some(next);
            if count == limit {
                // Enough counted: jump straight to the last match at or before `until`.
                let last = self
                    .cron
                    .find_previous_occurrence(&until.with_timezone(&self.timezone), true)
                    .ok()
                    .map(|t| t.with_timezone(&Utc));
                if let Some(last) = last.filter(|last| Some(*last) > latest) {
                    latest = Some(last);
                }
                break;
            }
        }
        latest.map(|latest| (latest, count))
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schedule")
            .field("expression", &self.expression)
            .field("timezone", &self.timezone.name())
            .finish()
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.expression, self.timezone.name())
    }
}

impl FromStr for Schedule {
    type Err = Error;

    /// Parses an expression evaluated in UTC.
    fn from_str(expression: &str) -> Result<Self> {
        Self::with_timezone(expression, Tz::UTC)
    }
}

/// Parses an IANA time zone name (`Europe/Paris`, `UTC`).
///
/// # Errors
///
/// [`Error::InvalidTimeZone`] when the name is unknown.
pub fn parse_timezone(name: &str) -> Result<Tz> {
    name.trim()
        .parse::<Tz>()
        .map_err(|reason| Error::InvalidTimeZone {
            name: name.to_owned(),
            reason: reason.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn six_fields_have_seconds() {
        let s: Schedule = "*/15 * * * * *".parse().unwrap();
        assert_eq!(
            s.next_after(utc(2025, 3, 1, 0, 0, 1)),
            Some(utc(2025, 3, 1, 0, 0, 15))
        );
    }

    #[test]
    fn five_fields_fire_at_second_zero() {
        let s: Schedule = "*/5 * * * *".parse().unwrap();
        assert_eq!(
            s.next_after(utc(2025, 3, 1, 0, 0, 1)),
            Some(utc(2025, 3, 1, 0, 5, 0))
        );
    }

    #[test]
    fn time_zone_follows_daylight_saving() {
        let s = Schedule::parse("0 0 9 * * *", Some("Europe/Paris")).unwrap();
        // Winter: UTC+1.
        assert_eq!(
            s.next_after(utc(2025, 1, 10, 0, 0, 0)),
            Some(utc(2025, 1, 10, 8, 0, 0))
        );
        // Summer: UTC+2.
        assert_eq!(
            s.next_after(utc(2025, 7, 10, 0, 0, 0)),
            Some(utc(2025, 7, 10, 7, 0, 0))
        );
    }

    #[test]
    fn bad_expression_and_zone_are_errors() {
        let err = Schedule::parse("61 * * * * *", None).unwrap_err();
        assert!(matches!(err, Error::InvalidSchedule { .. }), "{err}");
        assert!(err.to_string().contains("61 * * * * *"));
        let err = Schedule::parse("* * * * *", Some("Mars/Olympus")).unwrap_err();
        assert!(matches!(err, Error::InvalidTimeZone { .. }), "{err}");
        assert!(matches!(
            Schedule::parse("", None),
            Err(Error::InvalidSchedule { .. })
        ));
    }

    #[test]
    fn latest_due_collapses_missed_ticks() {
        let s: Schedule = "* * * * * *".parse().unwrap();
        let (latest, count) = s
            .latest_due(utc(2025, 1, 1, 0, 0, 0), utc(2025, 1, 1, 0, 0, 10), 1000)
            .unwrap();
        assert_eq!(latest, utc(2025, 1, 1, 0, 0, 10));
        assert_eq!(count, 10);
        assert_eq!(
            s.latest_due(utc(2025, 1, 1, 0, 0, 0), utc(2025, 1, 1, 0, 0, 0), 1000),
            None
        );
    }

    #[test]
    fn latest_due_stops_counting_at_the_limit() {
        let s: Schedule = "* * * * * *".parse().unwrap();
        let (latest, count) = s
            .latest_due(utc(2025, 1, 1, 0, 0, 0), utc(2025, 1, 2, 0, 0, 0), 5)
            .unwrap();
        assert_eq!(latest, utc(2025, 1, 2, 0, 0, 0));
        assert_eq!(count, 5);
    }
}
