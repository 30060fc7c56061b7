//! Small PostgreSQL binary codecs the driver does not have: `numeric` (kept in its wire form, so
//! no digit is lost either way), ranges, `interval`, enum labels, a NULL of any type and the raw
//! bytes of any value.

use std::error::Error as StdError;
use std::fmt::Write as _;

use bytes::{Buf as _, BufMut as _, BytesMut};
use postgres_protocol::types as wire;
use tokio_postgres::types::{FromSql, IsNull, Kind, ToSql, Type, to_sql_checked};

use crate::capability::bindings_p3::spin::postgres::postgres as pg4;

type BoxError = Box<dyn StdError + Sync + Send>;

/// A typed NULL that PostgreSQL accepts for any column type.
#[derive(Debug)]
pub(super) struct Null;

impl ToSql for Null {
    fn to_sql(&self, _: &Type, _: &mut BytesMut) -> Result<IsNull, BoxError> {
        Ok(IsNull::Yes)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A value of any type, in its binary form (for `unsupported`).
pub(super) struct RawBytes(pub(super) Vec<u8>);

impl<'a> FromSql<'a> for RawBytes {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(Self(raw.to_vec()))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A label of a user-defined enum type (sent and received as its text).
#[derive(Debug)]
pub(super) struct EnumLabel(pub(super) String);

impl ToSql for EnumLabel {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        out.put_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(ty.kind(), Kind::Enum(_))
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for EnumLabel {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(Self(std::str::from_utf8(raw)?.to_string()))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(ty.kind(), Kind::Enum(_))
    }
}

/// `interval`: microseconds, days and months, kept apart as PostgreSQL keeps them.
#[derive(Debug)]
pub(super) struct Interval {
    pub(super) micros: i64,
    pub(super) days: i32,
    pub(super) months: i32,
}

impl ToSql for Interval {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        out.put_i64(self.micros);
        out.put_i32(self.days);
        out.put_i32(self.months);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::INTERVAL
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for Interval {
    fn from_sql(_: &Type, mut raw: &'a [u8]) -> Result<Self, BoxError> {
        if raw.len() != 16 {
            return Err("an interval is 16 bytes".into());
        }
        Ok(Self {
            micros: raw.get_i64(),
            days: raw.get_i32(),
            months: raw.get_i32(),
        })
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::INTERVAL
    }
}

pub(super) type Bound<T> = Option<(T, pg4::RangeBoundKind)>;

/// A range to send: each bound is a value and its kind, or unbounded.
#[derive(Debug)]
pub(super) struct PgRange<T> {
    pub(super) lo: Bound<T>,
    pub(super) hi: Bound<T>,
}

fn range_member(ty: &Type) -> &Type {
    match ty.kind() {
        Kind::Range(member) => member,
        _ => ty,
    }
}

impl<T: ToSql> ToSql for PgRange<T> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let member = range_member(ty);
        let side = |b: &Bound<T>, buf: &mut BytesMut| {
            let Some((v, kind)) = b else {
                return Ok(wire::RangeBound::Unbounded);
            };
            let null = match v.to_sql(member, buf)? {
                IsNull::Yes => postgres_protocol::IsNull::Yes,
                IsNull::No => postgres_protocol::IsNull::No,
            };
            Ok(match kind {
                pg4::RangeBoundKind::Inclusive => wire::RangeBound::Inclusive(null),
                pg4::RangeBoundKind::Exclusive => wire::RangeBound::Exclusive(null),
            })
        };
        wire::range_to_sql(|buf| side(&self.lo, buf), |buf| side(&self.hi, buf), out)?;
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(ty.kind(), Kind::Range(member) if T::accepts(member))
    }

    to_sql_checked!();
}

/// A range read back. An empty range has no bounds to give; it comes back as `[zero, zero)`,
/// which PostgreSQL reads as empty again.
pub(super) struct ReadRange<T> {
    empty: bool,
    lo: Bound<T>,
    hi: Bound<T>,
}

impl<T> ReadRange<T> {
    pub(super) fn bounds(self, zero: T) -> (Bound<T>, Bound<T>)
    where
        T: Clone,
    {
        if self.empty {
            (
                Some((zero.clone(), pg4::RangeBoundKind::Inclusive)),
                Some((zero, pg4::RangeBoundKind::Exclusive)),
            )
        } else {
            (self.lo, self.hi)
        }
    }
}

impl<'a, T: FromSql<'a>> FromSql<'a> for ReadRange<T> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let member = range_member(ty);
        let side = |b: wire::RangeBound<Option<&'a [u8]>>| -> Result<Bound<T>, BoxError> {
            let (raw, kind) = match b {
                wire::RangeBound::Unbounded => return Ok(None),
                wire::RangeBound::Inclusive(raw) => (raw, pg4::RangeBoundKind::Inclusive),
                wire::RangeBound::Exclusive(raw) => (raw, pg4::RangeBoundKind::Exclusive),
            };
            let raw = raw.ok_or("a range bound is NULL")?;
            Ok(Some((T::from_sql(member, raw)?, kind)))
        };
        Ok(match wire::range_from_sql(raw)? {
            wire::Range::Empty => Self {
                empty: true,
                lo: None,
                hi: None,
            },
            wire::Range::Nonempty(lo, hi) => Self {
                empty: false,
                lo: side(lo)?,
                hi: side(hi)?,
            },
        })
    }

    fn accepts(ty: &Type) -> bool {
        matches!(ty.kind(), Kind::Range(member) if T::accepts(member))
    }
}

/// A `numeric` in PostgreSQL's wire form: base-10000 digits, the weight of the first one, the
/// sign (or NaN / infinity) and the number of decimal digits shown after the point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Numeric {
    sign: u16,
    weight: i16,
    dscale: u16,
    digits: Vec<i16>,
}

const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;
/// PostgreSQL's limits: 131072 digits before the point, 16383 after.
const NUMERIC_MAX_POINT: i64 = 131_072;
const NUMERIC_MAX_DSCALE: i64 = 0x3FFF;

impl Numeric {
    pub(super) fn zero() -> Self {
        Self::special(NUMERIC_POS)
    }

    fn special(sign: u16) -> Self {
        Self {
            sign,
            weight: 0,
            dscale: 0,
            digits: Vec::new(),
        }
    }

    /// Parses PostgreSQL's decimal syntax: `[+-]digits[.digits][e[+-]digits]`, `NaN`,
    /// `Infinity`, `-Infinity` (`inf` too, any case).
    pub(super) fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a decimal number");
        let out_of_range = || format!("{text:?} is out of the range of numeric");
        match text.to_ascii_lowercase().as_str() {
            "nan" => return Ok(Self::special(NUMERIC_NAN)),
            "infinity" | "+infinity" | "inf" | "+inf" => return Ok(Self::special(NUMERIC_PINF)),
            "-infinity" | "-inf" => return Ok(Self::special(NUMERIC_NINF)),
            _ => {}
        }
        let (negative, unsigned) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
            Some((m, e)) => {
                let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                // Anything longer is far outside numeric's range anyway.
                if digits.len() > 7 {
                    return Err(out_of_range());
                }
                (m, e.parse::<i64>().map_err(|_| bad())?)
            }
            None => (unsigned, 0),
        };
        let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if int_part.is_empty() && frac_part.is_empty()
            || !int_part
                .bytes()
                .chain(frac_part.bytes())
                .all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let all: Vec<u8> = int_part
            .bytes()
            .chain(frac_part.bytes())
            .map(|b| b - b'0')
            .collect();
        // value = all × 10^-scale: `scale` digits sit after the decimal point
        let scale = frac_part.len() as i64 - exponent;
        if scale > NUMERIC_MAX_DSCALE {
            return Err(out_of_range());
        }
        let dscale = scale.max(0) as u16;
        let (Some(first), Some(last)) = (
            all.iter().position(|&d| d != 0),
            all.iter().rposition(|&d| d != 0),
        ) else {
            return Ok(Self {
                dscale,
                ..Self::zero()
            });
        };
        // `point`: how many of the significant digits come before the decimal point
        let point = all.len() as i64 - scale - first as i64;
        if point > NUMERIC_MAX_POINT {
            return Err(out_of_range());
        }
        let significant = &all[first..=last];
        // Zeros in front so that the point falls between two base-10000 digits.
        let lead = (4 - point.rem_euclid(4)) % 4;
        let mut digits = Vec::with_capacity(significant.len() / 4 + 2);
        let mut group = 0i16;
        let mut filled = 0;
        for d in std::iter::repeat_n(0u8, lead as usize).chain(significant.iter().copied()) {
            group = group * 10 + i16::from(d);
            filled += 1;
            if filled == 4 {
                digits.push(group);
                (group, filled) = (0, 0);
            }
        }
        if filled > 0 {
            digits.push(group * 10i16.pow(4 - filled));
        }
        Ok(Self {
            sign: if negative { NUMERIC_NEG } else { NUMERIC_POS },
            weight: ((point + lead) / 4 - 1) as i16,
            dscale,
            digits,
        })
    }

    fn digit(&self, i: i64) -> i16 {
        usize::try_from(i)
            .ok()
            .and_then(|i| self.digits.get(i))
            .copied()
            .unwrap_or(0)
    }
}

/// PostgreSQL's own text form: every digit before the point, `dscale` after it.
impl std::fmt::Display for Numeric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.sign {
            NUMERIC_NAN => return f.write_str("NaN"),
            NUMERIC_PINF => return f.write_str("Infinity"),
            NUMERIC_NINF => return f.write_str("-Infinity"),
            _ => {}
        }
        let mut s = String::new();
        if self.sign == NUMERIC_NEG {
            s.push('-');
        }
        let weight = i64::from(self.weight);
        if weight < 0 {
            s.push('0');
        } else {
            for i in 0..=weight {
                let _ = if i == 0 {
                    write!(s, "{}", self.digit(i))
                } else {
                    write!(s, "{:04}", self.digit(i))
                };
            }
        }
        let dscale = usize::from(self.dscale);
        if dscale > 0 {
            let mut frac = String::with_capacity(dscale + 4);
            let mut i = weight + 1;
            while frac.len() < dscale {
                let _ = write!(frac, "{:04}", self.digit(i));
                i += 1;
            }
            frac.truncate(dscale);
            s.push('.');
            s.push_str(&frac);
        }
        f.write_str(&s)
    }
}

impl ToSql for Numeric {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        out.put_i16(i16::try_from(self.digits.len())?);
        out.put_i16(self.weight);
        out.put_u16(self.sign);
        out.put_u16(self.dscale);
        for d in &self.digits {
            out.put_i16(*d);
        }
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for Numeric {
    fn from_sql(_: &Type, mut raw: &'a [u8]) -> Result<Self, BoxError> {
        if raw.len() < 8 {
            return Err("a numeric is at least 8 bytes".into());
        }
        let count = raw.get_i16();
        let weight = raw.get_i16();
        let sign = raw.get_u16();
        let dscale = raw.get_u16();
        let count = usize::try_from(count).map_err(|_| "negative numeric digit count")?;
        if raw.len() != count * 2 {
            return Err("numeric digit count does not match its length".into());
        }
        if ![
            NUMERIC_POS,
            NUMERIC_NEG,
            NUMERIC_NAN,
            NUMERIC_PINF,
            NUMERIC_NINF,
        ]
        .contains(&sign)
        {
            return Err(format!("unknown numeric sign {sign:#x}").into());
        }
        let digits: Vec<i16> = (0..count).map(|_| raw.get_i16()).collect();
        if digits.iter().any(|d| !(0..10_000).contains(d)) {
            return Err("numeric digit out of range".into());
        }
        Ok(Self {
            sign,
            weight,
            dscale: dscale.min(NUMERIC_MAX_DSCALE as u16),
            digits,
        })
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(n: &Numeric) -> Numeric {
        let mut buf = BytesMut::new();
        n.to_sql(&Type::NUMERIC, &mut buf).unwrap();
        Numeric::from_sql(&Type::NUMERIC, &buf).unwrap()
    }

    #[test]
    fn numeric_text_round_trips_through_the_wire_form() {
        for (text, shown) in [
            ("0", "0"),
            ("-0.00", "0.00"),
            ("1", "1"),
            ("12345.678", "12345.678"),
            ("-12345.6780", "-12345.6780"),
            ("0.00012", "0.00012"),
            ("0.00001", "0.00001"),
            (".5", "0.5"),
            ("7.", "7"),
            ("+10000", "10000"),
            (
                "99999999999999999999999999999999.000000000000000000001",
                "99999999999999999999999999999999.000000000000000000001",
            ),
            ("1.5e3", "1500"),
            ("15E-3", "0.015"),
            ("1e-20", "0.00000000000000000001"),
            ("NaN", "NaN"),
            ("-inf", "-Infinity"),
            ("Infinity", "Infinity"),
        ] {
            let n = Numeric::parse(text).unwrap();
            assert_eq!(n.to_string(), shown, "{text}");
            assert_eq!(wire(&n), n, "{text}");
        }
    }

    #[test]
    fn numeric_wire_form_matches_postgres() {
        // 12345.678 = [1, 2345, 6780] with weight 1, as PostgreSQL sends it.
        let n = Numeric::parse("12345.678").unwrap();
        assert_eq!(
            (n.weight, n.dscale, &n.digits[..]),
            (1, 3, &[1, 2345, 6780][..])
        );
        let n = Numeric::parse("0.00012").unwrap();
        assert_eq!((n.weight, &n.digits[..]), (-1, &[1, 2000][..]));
    }

    #[test]
    fn bad_numerics_are_errors() {
        for text in [
            "",
            "-",
            ".",
            "1.2.3",
            "1e",
            "e5",
            "abc",
            "1 ",
            "１",
            "1e99999999",
            "1e-20000",
        ] {
            assert!(Numeric::parse(text).is_err(), "{text:?}");
        }
        assert!(Numeric::from_sql(&Type::NUMERIC, &[0, 1, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(Numeric::from_sql(&Type::NUMERIC, &[0, 1, 0, 0, 0, 0, 0, 0, 0x27, 0x10]).is_err());
    }
}
