//! Units in the files users write.

/// Parses a size like `512MiB`, `4G`, `1.5GiB`, `1000000` (bytes).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("invalid size `{s}`"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "kb" => 1e3,
        "m" | "mib" => 1024.0 * 1024.0,
        "mb" => 1e6,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "gb" => 1e9,
        "t" | "tib" => 1024f64.powi(4),
        "tb" => 1e12,
        other => return Err(format!("unknown size unit `{other}` in `{s}` (use B, KiB, MiB, GiB, TiB)")),
    };
    let bytes = (n * mult).round();
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("size `{s}` is too large"));
    }
    Ok(bytes as u64)
}

/// The longest duration arena accepts anywhere (a job's wall-clock limit, a wait): 30 days.
pub const MAX_SECONDS: f64 = 30.0 * 86_400.0;

/// A number of seconds as a duration: finite, positive and at most [`MAX_SECONDS`].
pub fn seconds(t: f64) -> Result<std::time::Duration, String> {
    if !(t.is_finite() && t > 0.0) {
        return Err(format!("{t} is not a positive number of seconds"));
    }
    if t > MAX_SECONDS {
        return Err(format!(
            "{t} seconds is more than 30 days ({MAX_SECONDS} s), the longest duration arena takes"
        ));
    }
    Ok(std::time::Duration::from_secs_f64(t))
}

/// Parses a number of seconds (command-line `--timeout`), checked as [`seconds`].
pub fn parse_seconds(s: &str) -> Result<f64, String> {
    let t: f64 = s.trim().parse().map_err(|_| format!("`{s}` is not a number of seconds"))?;
    seconds(t).map(|_| t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_finite_positive_and_bounded() {
        assert_eq!(seconds(1.5).unwrap(), std::time::Duration::from_millis(1500));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e300, MAX_SECONDS * 1.0001] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
        assert!(parse_seconds("1e300").unwrap_err().contains("30 days"));
        assert!(parse_seconds("ten").unwrap_err().contains("not a number"));
        assert_eq!(parse_seconds(" 90 ").unwrap(), 90.0);
    }

    #[test]
    fn sizes_refuse_overflow() {
        assert_eq!(parse_size("1.5GiB").unwrap(), 1_610_612_736);
        assert!(parse_size("1e30TiB").is_err());
        assert!(parse_size("99999999999999999999").is_err());
    }
}
