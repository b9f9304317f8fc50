//! HTTP-dates (RFC 9110 section 5.6.7): the preferred IMF-fixdate and the two obsolete forms a
//! recipient must still accept, as Unix seconds. Used for `Retry-After`.

#[allow(unused_imports)]
use crate::prelude::*;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// `Sun, 06 Nov 1994 08:49:37 GMT`, `Sunday, 06-Nov-94 08:49:37 GMT` or
/// `Sun Nov  6 08:49:37 1994`, as seconds since the Unix epoch; `None` for anything else.
pub fn parse_http_date(text: &str) -> Option<u64> {
    let t = crate::codec::trim_ows(text);
    let (day, month, year, time) = if let Some((_, rest)) = t.split_once(',') {
        let rest = rest.strip_prefix(' ')?;
        let rest = rest.strip_suffix(" GMT")?;
        if let Some((date, time)) = rest.split_once(' ')
            && date.len() == 9
            && date.as_bytes()[2] == b'-'
        {
            // RFC 850: 06-Nov-94; two-digit years are taken as 1970-2069.
            let (d, m, y) = (&date[..2], &date[3..6], &date[7..]);
            let y: u64 = digits(y)?;
            (
                digits(d)?,
                m,
                if y < 70 { 2000 + y } else { 1900 + y },
                time,
            )
        } else {
            let mut it = rest.split(' ');
            let (d, m, y, time) = (it.next()?, it.next()?, it.next()?, it.next()?);
            if it.next().is_some() || d.len() != 2 || y.len() != 4 {
                return None;
            }
            (digits(d)?, m, digits(y)?, time)
        }
    } else {
        // asctime: "Sun Nov  6 08:49:37 1994" (the day is space-padded).
        let mut it = t.split_ascii_whitespace();
        let (wd, m, d, time, y) = (it.next()?, it.next()?, it.next()?, it.next()?, it.next()?);
        if it.next().is_some() || !DAYS.contains(&wd) || y.len() != 4 {
            return None;
        }
        (digits(d)?, m, digits(y)?, time)
    };
    let month = MONTHS.iter().position(|&m| m == month)? as u64 + 1;
    let mut hms = time.split(':');
    let (h, mi, s) = (hms.next()?, hms.next()?, hms.next()?);
    if hms.next().is_some() || [h, mi, s].iter().any(|x| x.len() != 2) {
        return None;
    }
    let (h, mi, s): (u64, u64, u64) = (digits(h)?, digits(mi)?, digits(s)?);
    if !(1..=31).contains(&day) || h > 23 || mi > 59 || s > 60 || year < 1970 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + h * 3600 + mi * 60 + s)
}

/// `unix_secs` as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn format_http_date(unix_secs: u64) -> String {
    let days = unix_secs / 86_400;
    let secs = unix_secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    // 1970-01-01 was a Thursday.
    let wd = DAYS[((days + 3) % 7) as usize];
    format!(
        "{wd}, {d:02} {} {y} {:02}:{:02}:{:02} GMT",
        MONTHS[(m - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (year >= 1970).
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: u64) -> (u64, u64, u64) {
    let z = z + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_of_rfc_9110() {
        let want = 784_111_777; // 1994-11-06 08:49:37 UTC
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(want));
        assert_eq!(
            parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(want)
        );
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), Some(want));
        assert_eq!(format_http_date(want), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2028 23:59:59 GMT"),
            Some(1_835_481_599)
        );
    }

    #[test]
    fn garbage_is_none() {
        for bad in [
            "",
            "120",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 1969 08:49:37 GMT",
            "Sun, 99 Nov 1994 08:49:37 GMT",
            "Xyz Nov  6 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 GMT extra",
            "Sun, +6 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn format_and_parse_round_trip() {
        let mut t = 0u64;
        while t < 5_000_000_000 {
            assert_eq!(parse_http_date(&format_http_date(t)), Some(t), "{t}");
            t += 7_777_777;
        }
    }
}
