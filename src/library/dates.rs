//! When a photo was taken, as the photo's own wall clock showed it.
//!
//! The one rule: a [`Taken`] is *local* wall-clock time, never converted to the server's zone or to
//! UTC. A photo taken at 23:30 on 31 December belongs to December for everyone looking at it, so
//! grouping and sorting use `local_ms` as if it were UTC; the offset, when known, is kept beside it
//! only for display. Everything here is pure (no I/O, no clock) and total: bad input gives `None`,
//! never a panic.

use serde::{Deserialize, Serialize};

const MS_PER_DAY: i64 = 86_400_000;

/// Where a date came from, best first: when a file holds several, the first in this order wins
/// (`Ord` follows it). What the shutter recorded beats what an editor wrote, which beats when a
/// file was made, which beats the file's name; a header's modification date comes after even
/// the name, and the file system's mtime is the last resort.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DateSource {
    /// EXIF DateTimeOriginal.
    Exif,
    /// XMP `exif:DateTimeOriginal` or `photoshop:DateCreated`, in the file or a sidecar.
    Xmp,
    /// IPTC DateCreated with TimeCreated.
    Iptc,
    /// EXIF DateTimeDigitized.
    ExifDigitized,
    /// A camera maker's own record: a trail camera's maker note, Olympus APP12, Canon CIFF.
    MakerNote,
    /// XMP `xmp:CreateDate`: when the file was made, by a camera or by software.
    XmpCreated,
    /// A video container's creation time.
    Container,
    FileName,
    /// EXIF DateTime (IFD0): when the file was last changed.
    ExifModified,
    Mtime,
}

/// A moment as the photo's own wall clock showed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Taken {
    /// Milliseconds since 1970-01-01T00:00:00 of the *local wall clock*, computed as if it were UTC
    /// (a photo taken 23:30 on 31 December is in December whatever the server's time zone).
    pub local_ms: i64,
    /// UTC offset in minutes when known (EXIF OffsetTimeOriginal, or a converted UTC instant).
    pub offset_min: Option<i16>,
    pub source: DateSource,
}

/// Parses an EXIF date ("YYYY:MM:DD HH:MM:SS") with its optional SubSecTime* and OffsetTime* tags.
///
/// Cameras are sloppy, so this tolerates trailing NULs and spaces, dashes instead of colons in the
/// date, a `T` separator, missing seconds and a missing time. An unset camera clock writes zeros
/// or blanks: those, and impossible dates, give `None`. A malformed sub-second or offset is
/// dropped rather than spoiling a good date.
pub(crate) fn parse_exif_datetime(s: &str, subsec: Option<&str>, offset: Option<&str>) -> Option<Taken> {
    let s = trim_exif(s);
    let mut scan = Scanner::new(s.as_bytes());
    let year = scan.number(4)?;
    scan.any_of(b":-")?;
    let month = scan.number(2)?;
    scan.any_of(b":-")?;
    let day = scan.number(2)?;
    let (mut hour, mut minute, mut second) = (0, 0, 0);
    if scan.any_of(b" T").is_some() {
        hour = scan.number(2)?;
        scan.any_of(b":")?;
        minute = scan.number(2)?;
        if scan.any_of(b":").is_some() {
            second = scan.number(2)?;
        }
    }
    let ms = subsec.and_then(parse_subsec).unwrap_or(0);
    Some(Taken {
        local_ms: civil_to_ms((year, month, day), (hour, minute, second, ms))?,
        offset_min: offset.and_then(parse_offset),
        source: DateSource::Exif,
    })
}

/// Parses an XMP date: ISO 8601 as XMP writes it, `2023-01-14T09:30:12.123+01:00`, with the
/// seconds, the fraction and the offset (`Z`, `+01:00`, `+0100`) each optional. Some software
/// writes EXIF's colons and space instead, which is tolerated too. A date without a day of the
/// month (`2023`, `2023-01`) gives `None`: it is too vague to sort a photo by.
pub(crate) fn parse_iso8601(s: &str, source: DateSource) -> Option<Taken> {
    let s = trim_exif(s);
    let mut scan = Scanner::new(s.as_bytes());
    let year = scan.number(4)?;
    let sep = scan.any_of(b":-")?;
    let month = scan.number(2)?;
    scan.any_of(&[sep])?;
    let day = scan.number(2)?;
    let (mut hour, mut minute, mut second, mut ms) = (0, 0, 0, 0);
    if scan.any_of(b"T ").is_some() {
        hour = scan.number(2)?;
        scan.any_of(b":")?;
        minute = scan.number(2)?;
        if scan.any_of(b":").is_some() {
            second = scan.number(2)?;
            if scan.any_of(b".,").is_some() {
                ms = std::str::from_utf8(scan.digits()).ok().and_then(parse_subsec).unwrap_or(0);
            }
        }
    }
    // What is left is the offset, or nothing; anything else spoils only the offset.
    let rest = std::str::from_utf8(scan.rest()).ok()?;
    Some(Taken {
        local_ms: civil_to_ms((year, month, day), (hour, minute, second, ms))?,
        offset_min: parse_offset(rest),
        source,
    })
}

/// Parses IPTC's DateCreated (`CCYYMMDD`) with its TimeCreated (`HHMMSS`, then `+HHMM` or
/// `-HHMM`), as the IIM standard has them; separators (`2023-01-14`, `09:30:12+01:00`), as some
/// software writes them, are tolerated. Without a time it is midnight, offset unknown.
pub(crate) fn parse_iptc(date: &str, time: Option<&str>) -> Option<Taken> {
    let compact = |s: &str| s.bytes().filter(|b| !matches!(b, b'-' | b':')).collect::<Vec<u8>>();
    let date = compact(trim_exif(date));
    let mut scan = Scanner::new(&date);
    let ymd = (scan.number(4)?, scan.number(2)?, scan.number(2)?);
    if !scan.at_end() {
        return None;
    }
    let (mut hms, mut offset_min) = ((0, 0, 0, 0), None);
    if let Some(time) = time.map(trim_exif).filter(|t| !t.is_empty()) {
        // The offset's sign ends the clock time; drop the colons of both.
        let split = time.find(['+', '-', 'Z']).unwrap_or(time.len());
        let clock = compact(&time[..split]);
        let mut scan = Scanner::new(&clock);
        if let (Some(h), Some(m), Some(s), true) =
            (scan.number(2), scan.number(2), scan.number(2), scan.at_end())
        {
            hms = (h, m, s, 0);
            offset_min = parse_offset(&time[split..]);
        }
    }
    Some(Taken { local_ms: civil_to_ms(ymd, hms)?, offset_min, source: DateSource::Iptc })
}

/// A date from its parts as a camera's clock showed them (no offset known); `None` for one that
/// does not exist.
pub(crate) fn from_civil(date: (u32, u32, u32), time: (u32, u32, u32), source: DateSource) -> Option<Taken> {
    let (hour, minute, second) = time;
    Some(Taken { local_ms: civil_to_ms(date, (hour, minute, second, 0))?, offset_min: None, source })
}

/// A camera clock's reading kept as seconds since 1970 *of its own wall clock* (no zone, as
/// Canon CIFF and Olympus APP12 store it); 0 is a clock never set.
pub(crate) fn from_wall_clock_secs(secs: i64, source: DateSource) -> Option<Taken> {
    (secs > 0).then(|| Taken { local_ms: secs.saturating_mul(1000), offset_min: None, source })
}

/// Recognises the date (and time, when present) that cameras, phones and apps put in file names:
/// `IMG_20230114_093012.jpg`, `PXL_20230114_093012123.jpg`, `Screenshot_2023-01-14-09-30-12.png`,
/// `IMG-20230114-WA0001.jpg` (date only), `2023-01-14 09.30.12.jpg`, `signal-2023-01-14-093012.jpg`,
/// `Screenshot 2023-01-14 at 9.30.12 PM.png` and their relatives.
///
/// The name is split into runs of digits; a date is either one run of 8 (`YYYYMMDD`), 14 or 17
/// digits (with the time and milliseconds), or runs of 4-2-2 joined by one separator. Any other
/// run length (a counter like `DSC01234`, a 13-digit id) never matches, and years outside
/// 1990..=2100 are rejected because a number that old or new is far likelier an id than a date.
pub(crate) fn from_file_name(name: &str) -> Option<Taken> {
    let name = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let runs = Runs::new(name.as_bytes());
    (0..runs.spans.len()).find_map(|i| runs.date_at(i))
}

/// Turns an absolute instant (a file's mtime, an MP4 creation time) into wall-clock time in `tz`,
/// which is the server's zone: the best guess there is for where the clock that made it was.
pub(crate) fn from_unix_utc(secs: i64, nanos: u32, tz: &jiff::tz::TimeZone, source: DateSource) -> Taken {
    let ms = secs.saturating_mul(1000).saturating_add(i64::from(nanos.min(999_999_999) / 1_000_000));
    // jiff only knows years -9999..=9999; outside that the offset is unknowable but the instant
    // is still worth keeping, as UTC.
    let offset_secs = jiff::Timestamp::new(secs, 0).ok().map(|ts| tz.to_offset(ts).seconds());
    Taken {
        local_ms: ms.saturating_add(i64::from(offset_secs.unwrap_or(0)) * 1000),
        offset_min: offset_secs.and_then(|s| i16::try_from(s / 60).ok()),
        source,
    }
}

/// The calendar year and month (1..=12) of a wall-clock time.
pub(crate) fn year_month(local_ms: i64) -> (i32, u8) {
    let (year, month, _) = civil_from_days(local_ms.div_euclid(MS_PER_DAY));
    (year, month)
}

/// Wall-clock milliseconds at 00:00 on the first day of `month` (1..=12) of `year`.
pub(crate) fn month_start_ms(year: i32, month: u8) -> i64 {
    days_from_civil(i64::from(year), u32::from(month), 1) * MS_PER_DAY
}

/// `2023-01-14T09:30:12`, plus `.123` when there are milliseconds, plus `+01:00` when the offset
/// is known (`+00:00` rather than `Z`, so every string with an offset has the same shape).
#[cfg(test)]
pub(crate) fn to_iso8601(t: &Taken) -> String {
    Iso8601(*t).to_string()
}

/// [`to_iso8601`] as a `Display`, to write into a response without an allocation per item.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Iso8601(pub Taken);

impl std::fmt::Display for Iso8601 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = &self.0;
        let (year, month, day) = civil_from_days(t.local_ms.div_euclid(MS_PER_DAY));
        let in_day = t.local_ms.rem_euclid(MS_PER_DAY);
        let (secs, ms) = (in_day / 1000, in_day % 1000);
        write!(f, "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)?;
        if ms != 0 {
            write!(f, ".{ms:03}")?;
        }
        if let Some(offset) = t.offset_min {
            let sign = if offset < 0 { '-' } else { '+' };
            let abs = offset.unsigned_abs();
            write!(f, "{sign}{:02}:{:02}", abs / 60, abs % 60)?;
        }
        Ok(())
    }
}

/// EXIF strings are fixed-size fields padded with NULs or spaces.
fn trim_exif(s: &str) -> &str {
    s.trim_matches(|c: char| c == '\0' || c.is_whitespace())
}

/// SubSecTime is the decimal fraction's digits ("1" is 100 ms, "123456" is 123 ms).
fn parse_subsec(s: &str) -> Option<u32> {
    let s = trim_exif(s);
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = s.as_bytes().iter().chain(b"000").take(3);
    Some(digits.fold(0, |ms, d| ms * 10 + u32::from(d - b'0')))
}

/// OffsetTime is "+HH:MM", "-HH:MM" or, from some software, "Z"; "+HHMM" and "+HH" are tolerated.
fn parse_offset(s: &str) -> Option<i16> {
    let s = trim_exif(s);
    if s == "Z" {
        return Some(0);
    }
    let mut scan = Scanner::new(s.as_bytes());
    let sign = match scan.any_of(b"+-")? {
        b'-' => -1,
        _ => 1,
    };
    let hours = scan.number(2)?;
    scan.any_of(b":");
    let minutes = if scan.at_end() { 0 } else { scan.number(2)? };
    if !scan.at_end() || hours > 14 || minutes > 59 {
        return None;
    }
    Some(sign * (hours * 60 + minutes) as i16)
}

type Date = (u32, u32, u32);
/// Hour, minute, second, millisecond.
type Time = (u32, u32, u32, u32);

/// A file name cut into its maximal runs of ASCII digits (UTF-8 continuation bytes are never
/// digits, so working on bytes is safe for any name).
struct Runs<'a> {
    name: &'a [u8],
    spans: Vec<(usize, usize)>,
}

impl<'a> Runs<'a> {
    fn new(name: &'a [u8]) -> Self {
        let mut spans = Vec::new();
        let mut i = 0;
        while i < name.len() {
            let start = i;
            while i < name.len() && name[i].is_ascii_digit() {
                i += 1;
            }
            if i > start {
                spans.push((start, i));
            } else {
                i += 1;
            }
        }
        Runs { name, spans }
    }

    fn digits(&self, k: usize) -> &'a [u8] {
        self.spans.get(k).map_or(&[], |&(a, b)| &self.name[a..b])
    }

    /// The text between run `k - 1` and run `k` (empty when either is missing).
    fn gap(&self, k: usize) -> &'a [u8] {
        let before = k.checked_sub(1).and_then(|p| self.spans.get(p));
        match (before, self.spans.get(k)) {
            (Some(&(_, end)), Some(&(start, _))) => &self.name[end..start],
            _ => &[],
        }
    }

    /// Whether run `k` is preceded by exactly one of the separator bytes in `seps`.
    fn sep_before(&self, k: usize, seps: &[u8]) -> bool {
        matches!(self.gap(k), [c] if seps.contains(c))
    }

    /// A date starting at run `i`, and a time after it when there is one.
    fn date_at(&self, i: usize) -> Option<Taken> {
        let run = self.digits(i);
        let (date, time) = match run.len() {
            8 => (compact_date(run), self.time_at(i + 1)),
            14 | 17 => (compact_date(run), Some(compact_time(&run[8..]))),
            4 if self.digits(i + 1).len() == 2
                && self.digits(i + 2).len() == 2
                && self.sep_before(i + 1, b"-_. ")
                && self.gap(i + 2) == self.gap(i + 1) =>
            {
                let [y, m, d] = [i, i + 1, i + 2].map(|k| number(self.digits(k)));
                ((y, m, d), self.time_at(i + 3))
            }
            _ => return None,
        };
        if !(1990..=2100).contains(&date.0) {
            return None;
        }
        let local_ms = time
            .and_then(|time| civil_to_ms(date, time))
            // A date followed by digits that are not a time (a counter, an id) is still a date.
            .or_else(|| civil_to_ms(date, (0, 0, 0, 0)))?;
        Some(Taken { local_ms, offset_min: None, source: DateSource::FileName })
    }

    /// A time starting at run `k`: `093012`, `093012123` or `09.30.12` (also `9.30.12 PM`).
    fn time_at(&self, k: usize) -> Option<Time> {
        let gap = self.gap(k);
        let joined = matches!(gap, [b'_' | b'-' | b' ' | b'T' | b'.']) || gap == b" at ";
        let run = self.digits(k);
        if !joined {
            return None;
        }
        if run.len() == 6 || run.len() == 9 {
            return Some(compact_time(run));
        }
        let (minute, second) = (self.digits(k + 1), self.digits(k + 2));
        if !(1..=2).contains(&run.len())
            || minute.len() != 2
            || second.len() != 2
            || !self.sep_before(k + 1, b"-_.: ")
            || self.gap(k + 2) != self.gap(k + 1)
        {
            return None;
        }
        let mut ms = 0;
        if self.digits(k + 3).len() == 3 && self.sep_before(k + 3, b".-_") {
            ms = number(self.digits(k + 3));
        }
        let after = &self.name[self.spans[k + 2].1..];
        let hour = twelve_hour_clock(number(run), after)?;
        Some((hour, number(minute), number(second), ms))
    }
}

/// macOS writes "at 9.30.12 PM", with a narrow no-break space (U+202F) before the PM since Ventura.
/// An hour outside 1..=12 next to AM/PM is not a time.
fn twelve_hour_clock(hour: u32, after: &[u8]) -> Option<u32> {
    let nnbsp = "\u{202f}".as_bytes();
    let after = after.strip_prefix(b" ").or_else(|| after.strip_prefix(nnbsp));
    let marker = after.and_then(|a| a.get(..2)).map(<[u8]>::to_ascii_uppercase);
    let pm = match marker.as_deref() {
        Some(b"AM") => false,
        Some(b"PM") => true,
        _ => return Some(hour),
    };
    let hour = (1..=12).contains(&hour).then_some(hour % 12)?;
    Some(if pm { hour + 12 } else { hour })
}

fn number(digits: &[u8]) -> u32 {
    // Callers pass ASCII digits only; saturating keeps a long run from overflowing.
    let digit = |d: &u8| u32::from(d - b'0');
    digits.iter().fold(0, |n, d| n.saturating_mul(10).saturating_add(digit(d)))
}

/// `YYYYMMDD` from the front of a run of at least 8 digits.
fn compact_date(d: &[u8]) -> Date {
    (number(&d[0..4]), number(&d[4..6]), number(&d[6..8]))
}

/// `HHMMSS` or `HHMMSSmmm` (a run of exactly 6 or 9 digits).
fn compact_time(d: &[u8]) -> Time {
    let ms = d.get(6..9).map_or(0, number);
    (number(&d[0..2]), number(&d[2..4]), number(&d[4..6]), ms)
}

/// A tiny cursor for the fixed-shape strings of EXIF.
struct Scanner<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn new(s: &'a [u8]) -> Self {
        Scanner { s, pos: 0 }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    /// Exactly `width` ASCII digits.
    fn number(&mut self, width: usize) -> Option<u32> {
        let digits = self.s.get(self.pos..self.pos + width)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.pos += width;
        Some(number(digits))
    }

    /// The run of ASCII digits here, maybe empty.
    fn digits(&mut self) -> &'a [u8] {
        let start = self.pos;
        while self.s.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    /// Everything not yet scanned.
    fn rest(&self) -> &'a [u8] {
        self.s.get(self.pos..).unwrap_or_default()
    }

    /// One byte out of `set`.
    fn any_of(&mut self, set: &[u8]) -> Option<u8> {
        let b = *self.s.get(self.pos).filter(|b| set.contains(b))?;
        self.pos += 1;
        Some(b)
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Wall-clock milliseconds of a validated civil date and time; `None` for a date that does not
/// exist (month 13, 30 February, year 0) or a time past 23:59:59.999.
fn civil_to_ms((year, month, day): Date, (hour, minute, second, ms): Time) -> Option<i64> {
    let year = i64::from(year);
    let valid = year >= 1
        && (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60
        && ms < 1000;
    if !valid {
        return None;
    }
    let secs = i64::from(hour * 3600 + minute * 60 + second);
    Some(days_from_civil(year, month, day) * MS_PER_DAY + secs * 1000 + i64::from(ms))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`]; total for every `i64` day count that a millisecond `i64`
/// can produce (the year saturates at the ends of `i32`).
fn civil_from_days(days: i64) -> (i32, u8, u8) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let year = i32::try_from(year).unwrap_or(if year < 0 { i32::MIN } else { i32::MAX });
    (year, month as u8, day as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::tz::{Offset, TimeZone};

    /// The web app's viewer says where a date came from: it must know every source's name.
    #[test]
    fn the_viewer_names_every_date_source() {
        use DateSource::*;
        // A new variant fails to compile here until it is listed.
        let listed = |s: DateSource| match s {
            Exif | Xmp | Iptc | ExifDigitized | MakerNote | XmpCreated | Container | FileName
            | ExifModified | Mtime => true,
        };
        let all =
            [Exif, Xmp, Iptc, ExifDigitized, MakerNote, XmpCreated, Container, FileName, ExifModified, Mtime];
        let viewer = include_str!("../../web/viewer.js");
        let table = &viewer[viewer.find("const SOURCES = {").unwrap()..];
        let table = &table[..table.find("};").unwrap()];
        for s in all.into_iter().filter(|s| listed(*s)) {
            let name = serde_json::to_string(&s).unwrap();
            assert!(
                table.contains(&format!("  {}: '", name.trim_matches('"'))),
                "{name} has no label in web/viewer.js"
            );
        }
    }

    /// An EXIF date, its sub-seconds and offset, and the ISO 8601 string expected.
    type ExifCase<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Option<&'a str>);

    fn iso(t: Option<Taken>) -> Option<String> {
        t.map(|t| to_iso8601(&t))
    }

    #[test]
    fn exif_datetimes_parse_with_subseconds_and_offsets() {
        let cases: &[ExifCase] = &[
            ("2023:01:14 09:30:12", None, None, Some("2023-01-14T09:30:12")),
            ("2023:01:14 09:30:12\0", None, None, Some("2023-01-14T09:30:12")),
            ("2023:01:14 09:30:12  \0\0", None, None, Some("2023-01-14T09:30:12")),
            ("2023-01-14 09:30:12", None, None, Some("2023-01-14T09:30:12")),
            ("2023:01:14 09:30", None, None, Some("2023-01-14T09:30:00")),
            ("2023:01:14", None, None, Some("2023-01-14T00:00:00")),
            ("2023:12:31 23:30:00", None, Some("+01:00"), Some("2023-12-31T23:30:00+01:00")),
            ("2023:01:14 09:30:12", Some("123"), None, Some("2023-01-14T09:30:12.123")),
            ("2023:01:14 09:30:12", Some("5"), None, Some("2023-01-14T09:30:12.500")),
            ("2023:01:14 09:30:12", Some("040123 "), None, Some("2023-01-14T09:30:12.040")),
            ("2023:01:14 09:30:12", Some("x1"), Some("junk"), Some("2023-01-14T09:30:12")),
            ("2023:01:14 09:30:12", None, Some("-05:30"), Some("2023-01-14T09:30:12-05:30")),
            ("2023:01:14 09:30:12", None, Some("-0800"), Some("2023-01-14T09:30:12-08:00")),
            ("2023:01:14 09:30:12", None, Some("Z"), Some("2023-01-14T09:30:12+00:00")),
            ("2023:01:14 09:30:12", None, Some("   :  "), Some("2023-01-14T09:30:12")),
            ("2024:02:29 12:00:00", None, None, Some("2024-02-29T12:00:00")),
            ("2023:02:29 12:00:00", None, None, None),
            ("2023:02:30 12:00:00", None, None, None),
            ("2023:13:01 12:00:00", None, None, None),
            ("2023:01:14 24:00:00", None, None, None),
            ("0000:00:00 00:00:00", None, None, None),
            ("    :  :     :  :  ", None, None, None),
            ("", None, None, None),
            ("garbage", None, None, None),
            ("2023:1:14 09:30:12", None, None, None),
        ];
        for &(s, subsec, offset, want) in cases {
            let got = parse_exif_datetime(s, subsec, offset);
            assert_eq!(iso(got).as_deref(), want, "{s:?} {subsec:?} {offset:?}");
            if let Some(t) = got {
                assert_eq!(t.source, DateSource::Exif);
            }
        }
    }

    #[test]
    fn xmp_dates_parse_with_optional_seconds_fraction_and_offset() {
        let cases = [
            ("2023-01-14T09:30:12+01:00", Some("2023-01-14T09:30:12+01:00")),
            ("2023-01-14T09:30:12.123456-05:30", Some("2023-01-14T09:30:12.123-05:30")),
            ("2023-01-14T09:30:12,5Z", Some("2023-01-14T09:30:12.500+00:00")),
            ("2023-01-14T09:30:12.Z", Some("2023-01-14T09:30:12+00:00")),
            ("2023-01-14T09:30-04:00", Some("2023-01-14T09:30:00-04:00")),
            ("2023-01-14T09:30:12+0100", Some("2023-01-14T09:30:12+01:00")),
            ("2023-01-14T09:30:12", Some("2023-01-14T09:30:12")),
            ("2023-01-14", Some("2023-01-14T00:00:00")),
            (" 2023-01-14T09:30:12Z\n", Some("2023-01-14T09:30:12+00:00")),
            // EXIF's notation, as some software writes it into XMP.
            ("2009:03:06 22:15:29", Some("2009-03-06T22:15:29")),
            // A bad offset spoils only the offset.
            ("2023-01-14T09:30:12+25:00", Some("2023-01-14T09:30:12")),
            ("2023-01", None),
            ("2023", None),
            ("2023-01:14", None),
            ("2023-02-30T10:00:00", None),
            ("2023-01-14T24:00:00", None),
            ("2023-01-14T9:30", None),
            ("", None),
        ];
        for (s, want) in cases {
            let got = parse_iso8601(s, DateSource::Xmp);
            assert_eq!(iso(got).as_deref(), want, "{s:?}");
            assert!(got.is_none_or(|t| t.source == DateSource::Xmp));
        }
    }

    #[test]
    fn iptc_dates_take_their_time_and_its_offset() {
        let cases = [
            ("20230114", Some("093012+0100"), Some("2023-01-14T09:30:12+01:00")),
            ("20230114", Some("093012-0800"), Some("2023-01-14T09:30:12-08:00")),
            ("20230114", Some("093012"), Some("2023-01-14T09:30:12")),
            ("2023-01-14", Some("09:30:12+01:00"), Some("2023-01-14T09:30:12+01:00")),
            ("20230114", None, Some("2023-01-14T00:00:00")),
            ("20230114", Some("9h30"), Some("2023-01-14T00:00:00")),
            ("20230132", Some("093012"), None),
            ("00000000", Some("000000"), None),
            ("2023011", None, None),
            ("202301140", None, None),
        ];
        for (date, time, want) in cases {
            let got = parse_iptc(date, time);
            assert_eq!(iso(got).as_deref(), want, "{date:?} {time:?}");
            assert!(got.is_none_or(|t| t.source == DateSource::Iptc));
        }
    }

    #[test]
    fn sources_are_ordered_best_first() {
        use DateSource::*;
        let order =
            [Exif, Xmp, Iptc, ExifDigitized, MakerNote, XmpCreated, Container, FileName, ExifModified, Mtime];
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    }

    #[test]
    fn late_new_years_eve_stays_in_december_whatever_the_offset() {
        for offset in [None, Some("+14:00"), Some("-12:00")] {
            let t = parse_exif_datetime("2022:12:31 23:30:00", None, offset).unwrap();
            assert_eq!(year_month(t.local_ms), (2022, 12));
        }
    }

    #[test]
    fn file_names_from_cameras_phones_and_apps_give_dates() {
        let cases = [
            ("IMG_20230114_093012.jpg", "2023-01-14T09:30:12"),
            ("PXL_20230114_093012123.jpg", "2023-01-14T09:30:12.123"),
            ("PXL_20230114_093012123.NIGHT.jpg", "2023-01-14T09:30:12.123"),
            ("Screenshot_2023-01-14-09-30-12.png", "2023-01-14T09:30:12"),
            ("Screenshot_20230114-093012.png", "2023-01-14T09:30:12"),
            ("Screenshot_20230114-093012_Chrome.jpg", "2023-01-14T09:30:12"),
            ("IMG-20230114-WA0001.jpg", "2023-01-14T00:00:00"),
            ("2023-01-14 09.30.12.jpg", "2023-01-14T09:30:12"),
            ("VID_20230114_093012.mp4", "2023-01-14T09:30:12"),
            ("20230114_093012.jpg", "2023-01-14T09:30:12"),
            ("20230114_093012(0).jpg", "2023-01-14T09:30:12"),
            ("signal-2023-01-14-093012.jpg", "2023-01-14T09:30:12"),
            ("signal-2023-01-14-09-30-12-123.jpg", "2023-01-14T09:30:12.123"),
            ("Photo 2023-01-14 09 30 12.jpg", "2023-01-14T09:30:12"),
            ("Screenshot from 2023-01-14 09-30-12.png", "2023-01-14T09:30:12"),
            ("Screenshot 2023-01-14 at 09.30.12.png", "2023-01-14T09:30:12"),
            ("Screen Shot 2023-01-14 at 9.30.12 PM.png", "2023-01-14T21:30:12"),
            ("Screenshot 2023-01-14 at 12.05.00\u{202f}AM.png", "2023-01-14T00:05:00"),
            ("IMG20230114093012.jpg", "2023-01-14T09:30:12"),
            ("holiday/2023_01_14.jpg", "2023-01-14T00:00:00"),
            ("trip 2024-02-29 (2).heic", "2024-02-29T00:00:00"),
            // A date followed by something that is not a time is still a date.
            ("IMG_20230114_999999.jpg", "2023-01-14T00:00:00"),
            ("Café 20230114_093012.jpg", "2023-01-14T09:30:12"),
        ];
        for (name, want) in cases {
            let got = from_file_name(name);
            assert_eq!(iso(got).as_deref(), Some(want), "{name}");
            assert_eq!(got.unwrap().source, DateSource::FileName);
        }
    }

    #[test]
    fn ids_counters_and_impossible_dates_in_names_are_not_dates() {
        let names = [
            "DSC01234.jpg",
            "IMG_1234.JPG",
            "1673688612123.jpg",
            "123456789012.jpg",
            "12345678.jpg",
            "IMG_20231301_093012.jpg",
            "IMG_20230230_093012.jpg",
            "IMG_20230229.jpg",
            "18991231_120000.jpg",
            "21010101.jpg",
            "2023-01.jpg",
            "2023-1-14.jpg",
            "2023-01_14.jpg",
            "photo.jpg",
            "",
            "😀😀😀",
        ];
        for name in names {
            assert_eq!(from_file_name(name), None, "{name}");
        }
    }

    #[test]
    fn unix_instants_become_wall_clock_in_the_given_zone() {
        let paris = TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        let new_york = TimeZone::posix("EST5EDT,M3.2.0,M11.1.0").unwrap();
        let kolkata = TimeZone::fixed(Offset::from_seconds(5 * 3600 + 1800).unwrap());
        // 2023-12-31T22:30:00Z
        let new_year = 1_704_061_800;
        let cases = [
            (new_year, 0, &TimeZone::UTC, "2023-12-31T22:30:00+00:00"),
            (new_year, 0, &paris, "2023-12-31T23:30:00+01:00"),
            (new_year, 0, &kolkata, "2024-01-01T04:00:00+05:30"),
            (new_year, 0, &new_york, "2023-12-31T17:30:00-05:00"),
            // 2023-07-01T12:00:00.250Z, summer time.
            (1_688_212_800, 250_000_000, &paris, "2023-07-01T14:00:00.250+02:00"),
            (1_688_212_800, 250_000_000, &new_york, "2023-07-01T08:00:00.250-04:00"),
            (-1, 0, &TimeZone::UTC, "1969-12-31T23:59:59+00:00"),
        ];
        for (secs, nanos, tz, want) in cases {
            let t = from_unix_utc(secs, nanos, tz, DateSource::Mtime);
            assert_eq!(to_iso8601(&t), want, "{secs}");
            assert_eq!(t.source, DateSource::Mtime);
        }
    }

    #[test]
    fn extreme_instants_do_not_panic() {
        for secs in [i64::MIN, i64::MAX, 1 << 40, -(1 << 40)] {
            let t = from_unix_utc(secs, u32::MAX, &TimeZone::UTC, DateSource::Container);
            let _ = (to_iso8601(&t), year_month(t.local_ms));
        }
    }

    #[test]
    fn year_month_follows_the_calendar() {
        let cases = [
            ("1970-01-01", (1970, 1)),
            ("1969-12-31", (1969, 12)),
            ("2000-02-29", (2000, 2)),
            ("2023-12-31", (2023, 12)),
            ("2024-01-01", (2024, 1)),
            ("2100-03-01", (2100, 3)),
            ("1600-02-29", (1600, 2)),
        ];
        for (date, want) in cases {
            let t = parse_exif_datetime(date, None, None).unwrap();
            assert_eq!(year_month(t.local_ms), want, "{date}");
            assert_eq!(year_month(t.local_ms + MS_PER_DAY - 1), want, "{date} 23:59");
            let first = parse_exif_datetime(&format!("{}:01", &date[..7]), None, None).unwrap();
            assert_eq!(month_start_ms(want.0, want.1), first.local_ms, "{date}");
        }
    }

    #[test]
    fn civil_days_round_trip_across_four_centuries() {
        let start = days_from_civil(1900, 1, 1);
        for days in start..start + 146_097 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(i64::from(y), m.into(), d.into()), days);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
    }

    #[test]
    fn iso8601_shows_milliseconds_and_offset_only_when_known() {
        let t = Taken { local_ms: 0, offset_min: None, source: DateSource::Mtime };
        assert_eq!(to_iso8601(&t), "1970-01-01T00:00:00");
        let t = Taken { local_ms: 1, offset_min: Some(-90), source: DateSource::Mtime };
        assert_eq!(to_iso8601(&t), "1970-01-01T00:00:00.001-01:30");
        let t = Taken { local_ms: -1, offset_min: Some(0), source: DateSource::Mtime };
        assert_eq!(to_iso8601(&t), "1969-12-31T23:59:59.999+00:00");
    }
}
