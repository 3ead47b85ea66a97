//! Report periods: half-open `[from, to)` in UTC, split into whole days (served from daily
//! roll-ups) and the partial edges (served from the records themselves).

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PeriodError {
    #[error(
        "{field} must be a date (2026-11-27) or an RFC 3339 time with a zone (2026-11-27T10:00:00Z)"
    )]
    Unparsable { field: &'static str },
    #[error("from must not be after to")]
    Reversed,
    #[error("a daily series covers at most {max} days; narrow from/to")]
    TooLong { max: u64 },
}

/// `[from, to)`; a missing bound is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Period {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// Whole UTC days `[first, end)`; a missing bound is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRange {
    pub first: Option<NaiveDate>,
    pub end: Option<NaiveDate>,
}

/// How to answer a period: whole days from roll-ups, edges from records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodPlan {
    pub days: Option<DayRange>,
    pub edges: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(NaiveTime::MIN).and_utc()
}

fn next_day(day: NaiveDate) -> NaiveDate {
    day.checked_add_days(Days::new(1)).unwrap_or(day)
}

/// The first midnight at or after `t`.
fn ceil_day(t: DateTime<Utc>) -> NaiveDate {
    let day = t.date_naive();
    if midnight(day) == t {
        day
    } else {
        next_day(day)
    }
}

impl Period {
    pub const MAX_SERIES_DAYS: u64 = 366;

    /// `from` and `to` as given in a query. A bare date as `to` includes that whole day.
    pub fn parse(from: Option<&str>, to: Option<&str>) -> Result<Self, PeriodError> {
        let from = from
            .map(|raw| parse_bound("from", raw, false))
            .transpose()?;
        let to = to.map(|raw| parse_bound("to", raw, true)).transpose()?;
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            return Err(PeriodError::Reversed);
        }
        Ok(Self { from, to })
    }

    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.from.is_none_or(|f| t >= f) && self.to.is_none_or(|to| t < to)
    }

    pub fn plan(&self) -> PeriodPlan {
        let first = self.from.map(ceil_day);
        let end = self.to.map(|t| t.date_naive());
        if let (Some(from), Some(to), Some(f), Some(e)) = (self.from, self.to, first, end)
            && f >= e
        {
            let edges = if from < to { vec![(from, to)] } else { vec![] };
            return PeriodPlan { days: None, edges };
        }
        let mut edges = Vec::new();
        if let (Some(from), Some(f)) = (self.from, first)
            && from < midnight(f)
        {
            edges.push((from, midnight(f)));
        }
        if let (Some(to), Some(e)) = (self.to, end)
            && midnight(e) < to
        {
            edges.push((midnight(e), to));
        }
        PeriodPlan {
            days: Some(DayRange { first, end }),
            edges,
        }
    }

    /// The UTC days a daily series lists (every day, usage or not). Open bounds default to
    /// the 30 days up to and including `today`.
    pub fn series_days(&self, today: NaiveDate) -> Result<Vec<NaiveDate>, PeriodError> {
        let last = match self.to {
            Some(to) => {
                let day = to.date_naive();
                if midnight(day) == to {
                    day.pred_opt().unwrap_or(day)
                } else {
                    day
                }
            }
            None => today,
        };
        let first = match self.from {
            Some(from) => from.date_naive(),
            None => last.checked_sub_days(Days::new(29)).unwrap_or(last),
        };
        if self.from.is_some() && self.to.is_some() && self.from == self.to {
            return Ok(Vec::new());
        }
        let span = (last - first).num_days() + 1;
        if span > Self::MAX_SERIES_DAYS as i64 {
            return Err(PeriodError::TooLong {
                max: Self::MAX_SERIES_DAYS,
            });
        }
        Ok(first.iter_days().take(span.max(0) as usize).collect())
    }
}

fn parse_bound(field: &'static str, raw: &str, is_end: bool) -> Result<DateTime<Utc>, PeriodError> {
    let raw = raw.trim();
    if let Ok(day) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Ok(midnight(if is_end { next_day(day) } else { day }));
    }
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| PeriodError::Unparsable { field })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn dates_cover_whole_days_and_to_is_inclusive() {
        let p = Period::parse(Some("2026-11-01"), Some("2026-11-30")).unwrap();
        assert_eq!(p.from, Some(t("2026-11-01T00:00:00Z")));
        assert_eq!(p.to, Some(t("2026-12-01T00:00:00Z")));
        let plan = p.plan();
        assert_eq!(
            plan.days,
            Some(DayRange {
                first: Some(d("2026-11-01")),
                end: Some(d("2026-12-01"))
            })
        );
        assert!(plan.edges.is_empty());
    }

    #[test]
    fn partial_days_become_edges() {
        let p = Period::parse(
            Some("2026-11-01T10:00:00Z"),
            Some("2026-11-03T06:30:00+00:00"),
        )
        .unwrap();
        let plan = p.plan();
        assert_eq!(
            plan.days,
            Some(DayRange {
                first: Some(d("2026-11-02")),
                end: Some(d("2026-11-03"))
            })
        );
        assert_eq!(
            plan.edges,
            vec![
                (t("2026-11-01T10:00:00Z"), t("2026-11-02T00:00:00Z")),
                (t("2026-11-03T00:00:00Z"), t("2026-11-03T06:30:00Z")),
            ]
        );
    }

    #[test]
    fn a_period_inside_one_day_is_one_edge() {
        let p = Period::parse(Some("2026-11-01T10:00:00Z"), Some("2026-11-01T11:00:00Z")).unwrap();
        let plan = p.plan();
        assert_eq!(plan.days, None);
        assert_eq!(plan.edges.len(), 1);
        let empty = Period::parse(Some("2026-11-01T10:00:00Z"), Some("2026-11-01T10:00:00Z"))
            .unwrap()
            .plan();
        assert_eq!(
            empty,
            PeriodPlan {
                days: None,
                edges: vec![]
            }
        );
    }

    #[test]
    fn open_bounds_stay_open() {
        let plan = Period::default().plan();
        assert_eq!(
            plan.days,
            Some(DayRange {
                first: None,
                end: None
            })
        );
        let plan = Period::parse(Some("2026-11-01T10:00:00Z"), None)
            .unwrap()
            .plan();
        assert_eq!(plan.days.unwrap().end, None);
        assert_eq!(plan.edges.len(), 1);
    }

    #[test]
    fn bad_periods_are_refused() {
        assert_eq!(
            Period::parse(Some("yesterday"), None),
            Err(PeriodError::Unparsable { field: "from" })
        );
        assert_eq!(
            Period::parse(None, Some("2026-11-01T10:00:00")),
            Err(PeriodError::Unparsable { field: "to" })
        );
        assert_eq!(
            Period::parse(Some("2026-11-02"), Some("2026-10-31")),
            Err(PeriodError::Reversed)
        );
        let long = Period::parse(Some("2020-01-01"), Some("2026-01-01")).unwrap();
        assert!(matches!(
            long.series_days(d("2026-01-01")),
            Err(PeriodError::TooLong { .. })
        ));
    }

    #[test]
    fn series_lists_every_day() {
        let p = Period::parse(Some("2026-11-01"), Some("2026-11-03")).unwrap();
        assert_eq!(
            p.series_days(d("2026-12-01")).unwrap(),
            vec![d("2026-11-01"), d("2026-11-02"), d("2026-11-03")]
        );
        let default = Period::default().series_days(d("2026-11-30")).unwrap();
        assert_eq!(default.len(), 30);
        assert_eq!(default.first(), Some(&d("2026-11-01")));
    }
}
