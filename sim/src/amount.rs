//! Coin amounts as verusd writes them: JSON numbers with exactly 8 decimals
//! (`ValueFromAmount`), produced from integer satoshis without floating point.
//!
//! `serde_json::Value` cannot carry a number's text, so an amount is first a marked string
//! and [`render`] turns the marks into bare number text after serialisation.

use serde_json::Value;

const MARK: &str = "\u{0}AMT";

/// An amount in coins (as a JSON number with 8 decimals once rendered).
pub fn coins(sats: i64) -> Value {
    let sign = if sats < 0 { "-" } else { "" };
    let abs = sats.unsigned_abs();
    Value::String(format!(
        "{MARK}{sign}{}.{:08}",
        abs / 100_000_000,
        abs % 100_000_000
    ))
}

/// Serialises `value`, writing every amount as a bare JSON number.
pub fn render(value: &Value) -> String {
    let text = value.to_string();
    // The mark serialises as the escape `\u0000AMT`, which no other string can produce
    // (a literal backslash would be escaped as `\\`).
    let needle = "\"\\u0000AMT";
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(start) = rest.find(needle) {
        out.push_str(&rest[..start]);
        let after = &rest[start + needle.len()..];
        let end = after.find('"').unwrap_or(after.len());
        out.push_str(&after[..end]);
        rest = after.get(end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

/// Parses coins written as a JSON number (`12.5`, `1e-8`) exactly into satoshis.
pub fn parse_coins(value: &Value) -> Option<i64> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return None,
    };
    parse_coin_text(&text)
}

/// Parses the text of a decimal number exactly into satoshis; `None` if it is not a whole
/// number of satoshis.
pub fn parse_coin_text(text: &str) -> Option<i64> {
    let (neg, body) = match text.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, text),
    };
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], body[i + 1..].parse::<i32>().ok()?),
        None => (body, 0),
    };
    let (whole, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let digits = format!("{whole}{frac}");
    // value = digits × 10^(exp − len(frac)); satoshis = value × 10^8.
    let shift = exp - frac.len() as i32 + 8;
    let digits = digits.trim_start_matches('0');
    let mut sats: i64 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    if shift >= 0 {
        sats = sats.checked_mul(10_i64.checked_pow(shift as u32)?)?;
    } else {
        let div = 10_i64.checked_pow((-shift) as u32)?;
        if sats % div != 0 {
            return None;
        }
        sats /= div;
    }
    Some(if neg { -sats } else { sats })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_exact_numbers() {
        let v = serde_json::json!({"a": coins(1), "b": [coins(2_100_000_000_000_000), "x"], "c": coins(-150)});
        assert_eq!(
            render(&v),
            r#"{"a":0.00000001,"b":[21000000.00000000,"x"],"c":-0.00000150}"#
        );
    }

    #[test]
    fn parses_exactly() {
        assert_eq!(parse_coin_text("12.84211007"), Some(1_284_211_007));
        assert_eq!(parse_coin_text("1e-8"), Some(1));
        assert_eq!(parse_coin_text("1e-9"), None);
        assert_eq!(parse_coin_text("21000000"), Some(2_100_000_000_000_000));
    }
}
