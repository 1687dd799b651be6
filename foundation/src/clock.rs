//! Wall-clock time as CWMP writes it.
//!
//! xsd:dateTime (the SOAP `dateTime` type of A.2.1; e.g. TransferComplete
//! StartTime and CompleteTime, CurrentLocalTime) to the second, `Z` for UTC.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// `t` as xsd:dateTime to the second (fractions dropped), in `t`'s offset.
pub fn format_date_time(t: OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_default()
}

/// Now, in UTC, as xsd:dateTime to the second.
pub fn now_rfc3339() -> String {
    format_date_time(OffsetDateTime::now_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_the_second() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_987_654_321).unwrap();
        assert_eq!(format_date_time(t), "2023-11-14T22:13:20Z");
        let plus2 = t.to_offset(time::UtcOffset::from_hms(2, 0, 0).unwrap());
        assert_eq!(format_date_time(plus2), "2023-11-15T00:13:20+02:00");
        let now = now_rfc3339();
        assert!(now.ends_with('Z') && !now.contains('.'), "{now}");
        let back = OffsetDateTime::parse(&now, &Rfc3339).unwrap();
        assert!((OffsetDateTime::now_utc() - back).whole_seconds().abs() <= 2, "{now}");
    }
}
