//! RFC 3339 timestamps in UTC with nanoseconds, without any time-zone database.

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`: always 30 bytes.
pub const LEN: usize = 30;

pub fn format(secs: i64, nanos: u32, out: &mut [u8; LEN]) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, rem / 60 % 60, rem % 60);
    put(&mut out[0..4], y as u64);
    out[4] = b'-';
    put(&mut out[5..7], m as u64);
    out[7] = b'-';
    put(&mut out[8..10], d as u64);
    out[10] = b'T';
    put(&mut out[11..13], hh as u64);
    out[13] = b':';
    put(&mut out[14..16], mm as u64);
    out[16] = b':';
    put(&mut out[17..19], ss as u64);
    out[19] = b'.';
    put(&mut out[20..29], nanos as u64);
    out[29] = b'Z';
}

pub fn now_string() -> String {
    let (s, n) = crate::sys::now();
    let mut b = [0u8; LEN];
    format(s, n, &mut b);
    String::from_utf8_lossy(&b).into_owned()
}

fn put(dst: &mut [u8], mut v: u64) {
    for c in dst.iter_mut().rev() {
        *c = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: i64, n: u32) -> String {
        let mut b = [0u8; LEN];
        format(s, n, &mut b);
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[test]
    fn known_dates() {
        assert_eq!(f(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(f(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(
            f(1_795_000_000, 123_456_789),
            "2026-11-18T11:06:40.123456789Z"
        );
    }
}
