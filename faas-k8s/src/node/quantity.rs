//! Kubernetes resource quantities (`500m`, `1.5`, `64Mi`, `1e3`), as far as the downward API needs them.

/// A quantity in thousandths of its unit (cores or bytes), rounded up.
pub(crate) fn parse_milli(input: &str) -> Option<i128> {
    let s = input.trim();
    if s.is_empty() {
        return None;
    }
    let (sign, s) = match s.as_bytes()[0] {
        b'-' => (-1, &s[1..]),
        b'+' => (1, &s[1..]),
        _ => (1, s),
    };
    let number_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(number_end);
    if number.is_empty() || number == "." {
        return None;
    }
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if frac_part.contains('.') {
        return None;
    }
    // Value as digits / 10^scale.
    let digits: String = format!("{int_part}{frac_part}");
    let mut mantissa: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    let mut exp10: i32 = -(frac_part.len() as i32);
    let mut mul2: u32 = 0;
    match suffix {
        "" => {}
        "n" => exp10 -= 9,
        "u" => exp10 -= 6,
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        "Ki" => mul2 = 10,
        "Mi" => mul2 = 20,
        "Gi" => mul2 = 30,
        "Ti" => mul2 = 40,
        "Pi" => mul2 = 50,
        "Ei" => mul2 = 60,
        other => {
            let exp = other.strip_prefix(['e', 'E'])?;
            exp10 += exp.parse::<i32>().ok()?;
        }
    }
    mantissa = mantissa.checked_mul(1i128.checked_shl(mul2)?)?;
    // Scale to thousandths.
    exp10 += 3;
    let value = if exp10 >= 0 {
        mantissa.checked_mul(10i128.checked_pow(exp10 as u32)?)?
    } else {
        let div = 10i128.checked_pow((-exp10) as u32)?;
        (mantissa + div - 1) / div
    };
    Some(sign * value)
}

/// `value / divisor`, rounded up, as the downward API's `resourceFieldRef` reports it.
pub(crate) fn divide_ceil(value_milli: i128, divisor_milli: i128) -> Option<i128> {
    if divisor_milli <= 0 {
        return None;
    }
    Some((value_milli + divisor_milli - 1).div_euclid(divisor_milli))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_and_binary_suffixes() {
        assert_eq!(parse_milli("1"), Some(1000));
        assert_eq!(parse_milli("500m"), Some(500));
        assert_eq!(parse_milli("1.5"), Some(1500));
        assert_eq!(parse_milli("2k"), Some(2_000_000));
        assert_eq!(parse_milli("64Mi"), Some(64 * 1024 * 1024 * 1000));
        assert_eq!(parse_milli("1e3"), Some(1_000_000));
        assert_eq!(parse_milli("100n"), Some(1));
        assert_eq!(parse_milli("abc"), None);
        assert_eq!(parse_milli("1Zi"), None);
    }

    #[test]
    fn division_rounds_up() {
        assert_eq!(divide_ceil(500, 1000), Some(1));
        assert_eq!(divide_ceil(2000, 1000), Some(2));
        assert_eq!(divide_ceil(1_048_577_000, 1_048_576_000), Some(2));
        assert_eq!(divide_ceil(1, 0), None);
    }
}
