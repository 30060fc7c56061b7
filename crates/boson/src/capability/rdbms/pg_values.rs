//! Values of `spin:postgres@4.2.0` to and from PostgreSQL's binary format.
//!
//! A guest parameter is bound only after the statement is prepared, against the type the server
//! says the placeholder has: a value that cannot be that type is a `bad-parameter` error naming
//! the placeholder, found before anything is executed (never a panic). Dates and times (chrono),
//! UUIDs and JSON use tokio-postgres's own conversions; `numeric`, ranges and intervals use
//! `pg_codecs`.

use chrono::{DateTime, Datelike as _, NaiveDate, NaiveDateTime, NaiveTime, Timelike as _, Utc};
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, Kind, ToSql, Type};

use super::pg_codecs::{EnumLabel, Interval, Null, Numeric, PgRange, RawBytes, ReadRange};
use crate::capability::bindings_p3::spin::postgres::postgres as pg4;

/// A parameter ready to send.
pub(super) type Param = Box<dyn ToSql + Sync + Send>;

/// The parameters as tokio-postgres takes them.
pub(super) fn as_refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p.as_ref() as _).collect()
}

// ---------------------------------------------------------------- guest parameters

/// The guest's name for a parameter's case (for error messages).
fn case_name(p: &pg4::ParameterValue) -> &'static str {
    use pg4::ParameterValue as P;
    match p {
        P::Boolean(_) => "boolean",
        P::Int8(_) => "int8",
        P::Int16(_) => "int16",
        P::Int32(_) => "int32",
        P::Int64(_) => "int64",
        P::Floating32(_) => "floating32",
        P::Floating64(_) => "floating64",
        P::Str(_) => "str",
        P::Binary(_) => "binary",
        P::Date(_) => "date",
        P::Time(_) => "time",
        P::Datetime(_) => "datetime",
        P::Timestamp(_) => "timestamp",
        P::Uuid(_) => "uuid",
        P::Jsonb(_) => "jsonb",
        P::Decimal(_) => "decimal",
        P::RangeInt32(_) => "range-int32",
        P::RangeInt64(_) => "range-int64",
        P::RangeDecimal(_) => "range-decimal",
        P::ArrayInt32(_) => "array-int32",
        P::ArrayInt64(_) => "array-int64",
        P::ArrayDecimal(_) => "array-decimal",
        P::ArrayStr(_) => "array-str",
        P::Interval(_) => "interval",
        P::DbNull => "db-null",
    }
}

/// Turns one guest parameter into a value of `ty`, the type the server gave its placeholder.
/// Integers go into any integer (or numeric) column they fit; every other case needs its own
/// column type (`datetime` and `timestamp` fit both `timestamp` and `timestamptz`, as UTC).
pub(super) fn bind(value: pg4::ParameterValue, ty: &Type) -> Result<Param, String> {
    use pg4::ParameterValue as P;
    let mismatch = format!(
        "a {} value cannot be sent as {}",
        case_name(&value),
        ty.name()
    );
    let bound: Param = match value {
        P::DbNull => Box::new(Null),
        P::Boolean(v) if *ty == Type::BOOL => Box::new(v),
        P::Int8(v) => return integer(v.into(), "int8", ty),
        P::Int16(v) => return integer(v.into(), "int16", ty),
        P::Int32(v) => return integer(v.into(), "int32", ty),
        P::Int64(v) => return integer(v, "int64", ty),
        P::Floating32(v) if *ty == Type::FLOAT4 => Box::new(v),
        P::Floating32(v) if *ty == Type::FLOAT8 => Box::new(f64::from(v)),
        P::Floating64(v) if *ty == Type::FLOAT8 => Box::new(v),
        P::Str(v) if <String as ToSql>::accepts(ty) => Box::new(v),
        P::Str(v) if matches!(ty.kind(), Kind::Enum(_)) => Box::new(EnumLabel(v)),
        P::Binary(v) if *ty == Type::BYTEA => Box::new(v),
        P::Date(v) if *ty == Type::DATE => Box::new(date(v)?),
        P::Time(v) if *ty == Type::TIME => Box::new(time(v)?),
        P::Datetime(v) if *ty == Type::TIMESTAMP => Box::new(datetime(v)?),
        P::Datetime(v) if *ty == Type::TIMESTAMPTZ => Box::new(datetime(v)?.and_utc()),
        P::Timestamp(v) if *ty == Type::TIMESTAMP => Box::new(unix_seconds(v)?.naive_utc()),
        P::Timestamp(v) if *ty == Type::TIMESTAMPTZ => Box::new(unix_seconds(v)?),
        P::Uuid(v) if *ty == Type::UUID => {
            Box::new(uuid::Uuid::parse_str(&v).map_err(|e| format!("{v:?} is not a UUID: {e}"))?)
        }
        P::Jsonb(v) if matches!(*ty, Type::JSONB | Type::JSON) => Box::new(
            serde_json::from_slice::<serde_json::Value>(&v)
                .map_err(|e| format!("the jsonb value is not JSON: {e}"))?,
        ),
        P::Decimal(v) if *ty == Type::NUMERIC => Box::new(Numeric::parse(&v)?),
        P::RangeInt32((lo, hi)) if *ty == Type::INT4_RANGE => Box::new(PgRange { lo, hi }),
        P::RangeInt64((lo, hi)) if *ty == Type::INT8_RANGE => Box::new(PgRange { lo, hi }),
        P::RangeDecimal((lo, hi)) if *ty == Type::NUM_RANGE => {
            let bound = |b: Option<(String, pg4::RangeBoundKind)>| {
                b.map(|(v, kind)| Numeric::parse(&v).map(|n| (n, kind)))
                    .transpose()
            };
            Box::new(PgRange {
                lo: bound(lo)?,
                hi: bound(hi)?,
            })
        }
        P::ArrayInt32(v) if *ty == Type::INT4_ARRAY => Box::new(v),
        P::ArrayInt32(v) if *ty == Type::INT8_ARRAY => {
            Box::new(v.into_iter().map(|i| i.map(i64::from)).collect::<Vec<_>>())
        }
        P::ArrayInt64(v) if *ty == Type::INT8_ARRAY => Box::new(v),
        P::ArrayDecimal(v) if *ty == Type::NUMERIC_ARRAY => Box::new(
            v.iter()
                .map(|d| d.as_deref().map(Numeric::parse).transpose())
                .collect::<Result<Vec<_>, _>>()?,
        ),
        P::ArrayStr(v) if <Vec<Option<String>> as ToSql>::accepts(ty) => Box::new(v),
        P::Interval(v) if *ty == Type::INTERVAL => Box::new(Interval {
            micros: v.micros,
            days: v.days,
            months: v.months,
        }),
        _ => return Err(mismatch),
    };
    Ok(bound)
}

fn integer(v: i64, case: &str, ty: &Type) -> Result<Param, String> {
    let too_big = || format!("the {case} value {v} does not fit {}", ty.name());
    Ok(match *ty {
        Type::CHAR => Box::new(i8::try_from(v).map_err(|_| too_big())?),
        Type::INT2 => Box::new(i16::try_from(v).map_err(|_| too_big())?),
        Type::INT4 => Box::new(i32::try_from(v).map_err(|_| too_big())?),
        Type::INT8 => Box::new(v),
        Type::NUMERIC => Box::new(Numeric::parse(&v.to_string())?),
        _ => {
            return Err(format!("a {case} value cannot be sent as {}", ty.name()));
        }
    })
}

fn date((y, m, d): (i32, u8, u8)) -> Result<NaiveDate, String> {
    NaiveDate::from_ymd_opt(y, m.into(), d.into())
        .ok_or_else(|| format!("({y}, {m}, {d}) is not a valid date"))
}

fn time((h, m, s, ns): (u8, u8, u8, u32)) -> Result<NaiveTime, String> {
    NaiveTime::from_hms_nano_opt(h.into(), m.into(), s.into(), ns)
        .ok_or_else(|| format!("({h}, {m}, {s}, {ns}) is not a valid time"))
}

fn datetime(
    (y, mo, d, h, mi, s, ns): (i32, u8, u8, u8, u8, u8, u32),
) -> Result<NaiveDateTime, String> {
    Ok(date((y, mo, d))?.and_time(time((h, mi, s, ns))?))
}

fn unix_seconds(v: i64) -> Result<DateTime<Utc>, String> {
    DateTime::from_timestamp(v, 0).ok_or_else(|| format!("{v} seconds is out of range"))
}

// ---------------------------------------------------------------- result values

/// The WIT type of a result column of type `ty`.
pub(super) fn data_type(ty: &Type) -> pg4::DbDataType {
    use pg4::DbDataType as D;
    match *ty {
        Type::BOOL => D::Boolean,
        Type::CHAR => D::Int8,
        Type::INT2 => D::Int16,
        Type::INT4 => D::Int32,
        Type::INT8 => D::Int64,
        Type::FLOAT4 => D::Floating32,
        Type::FLOAT8 => D::Floating64,
        Type::BYTEA => D::Binary,
        Type::DATE => D::Date,
        Type::TIME => D::Time,
        Type::TIMESTAMP | Type::TIMESTAMPTZ => D::Datetime,
        Type::UUID => D::Uuid,
        Type::JSONB | Type::JSON => D::Jsonb,
        Type::NUMERIC => D::Decimal,
        Type::INT4_RANGE => D::RangeInt32,
        Type::INT8_RANGE => D::RangeInt64,
        Type::NUM_RANGE => D::RangeDecimal,
        Type::INT4_ARRAY => D::ArrayInt32,
        Type::INT8_ARRAY => D::ArrayInt64,
        Type::NUMERIC_ARRAY => D::ArrayDecimal,
        Type::INTERVAL => D::Interval,
        _ if <String as FromSql>::accepts(ty) || matches!(ty.kind(), Kind::Enum(_)) => D::Str,
        _ if <Vec<Option<String>> as FromSql>::accepts(ty) => D::ArrayStr,
        _ => D::Other(ty.name().to_string()),
    }
}

/// The value in column `i` of `row`, as `data_type` says the column maps.
pub(super) fn read(row: &Row, i: usize) -> Result<pg4::DbValue, tokio_postgres::Error> {
    use pg4::{DbDataType as D, DbValue as V};
    fn get<'a, T: FromSql<'a>>(
        row: &'a Row,
        i: usize,
        wrap: impl FnOnce(T) -> V,
    ) -> Result<V, tokio_postgres::Error> {
        Ok(row.try_get::<_, Option<T>>(i)?.map_or(V::DbNull, wrap))
    }
    let ty = row.columns()[i].type_();
    match data_type(ty) {
        D::Boolean => get(row, i, V::Boolean),
        D::Int8 => get(row, i, V::Int8),
        D::Int16 => get(row, i, V::Int16),
        D::Int32 => get(row, i, V::Int32),
        D::Int64 => get(row, i, V::Int64),
        D::Floating32 => get(row, i, V::Floating32),
        D::Floating64 => get(row, i, V::Floating64),
        D::Str if matches!(ty.kind(), Kind::Enum(_)) => get(row, i, |l: EnumLabel| V::Str(l.0)),
        D::Str => get(row, i, V::Str),
        D::Binary => get(row, i, V::Binary),
        D::Date => get(row, i, |d: NaiveDate| V::Date(date_tuple(d))),
        D::Time => get(row, i, |t: NaiveTime| V::Time(time_tuple(t))),
        D::Datetime if *ty == Type::TIMESTAMPTZ => get(row, i, |t: DateTime<Utc>| {
            V::Datetime(datetime_tuple(t.naive_utc()))
        }),
        D::Datetime => get(row, i, |t: NaiveDateTime| V::Datetime(datetime_tuple(t))),
        D::Uuid => get(row, i, |u: uuid::Uuid| V::Uuid(u.to_string())),
        D::Jsonb => get(row, i, |j: serde_json::Value| {
            V::Jsonb(j.to_string().into_bytes())
        }),
        D::Decimal => get(row, i, |n: Numeric| V::Decimal(n.to_string())),
        D::RangeInt32 => get(row, i, |r: ReadRange<i32>| V::RangeInt32(r.bounds(0))),
        D::RangeInt64 => get(row, i, |r: ReadRange<i64>| V::RangeInt64(r.bounds(0))),
        D::RangeDecimal => get(row, i, |r: ReadRange<Numeric>| {
            let (lo, hi) = r.bounds(Numeric::zero());
            let text = |b: Option<(Numeric, _)>| b.map(|(n, kind)| (n.to_string(), kind));
            V::RangeDecimal((text(lo), text(hi)))
        }),
        D::ArrayInt32 => get(row, i, V::ArrayInt32),
        D::ArrayInt64 => get(row, i, V::ArrayInt64),
        D::ArrayDecimal => get(row, i, |a: Vec<Option<Numeric>>| {
            V::ArrayDecimal(a.into_iter().map(|n| n.map(|n| n.to_string())).collect())
        }),
        D::ArrayStr => get(row, i, V::ArrayStr),
        D::Interval => get(row, i, |v: Interval| {
            V::Interval(pg4::Interval {
                micros: v.micros,
                days: v.days,
                months: v.months,
            })
        }),
        D::Timestamp | D::Other(_) => get(row, i, |raw: RawBytes| V::Unsupported(raw.0)),
    }
}

fn date_tuple(d: NaiveDate) -> (i32, u8, u8) {
    (d.year(), d.month() as u8, d.day() as u8)
}

fn time_tuple(t: NaiveTime) -> (u8, u8, u8, u32) {
    (
        t.hour() as u8,
        t.minute() as u8,
        t.second() as u8,
        t.nanosecond(),
    )
}

fn datetime_tuple(t: NaiveDateTime) -> (i32, u8, u8, u8, u8, u8, u32) {
    let ((y, mo, d), (h, mi, s, ns)) = (date_tuple(t.date()), time_tuple(t.time()));
    (y, mo, d, h, mi, s, ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_must_fit_the_placeholder_type() {
        use pg4::ParameterValue as P;
        assert!(bind(P::Int64(40_000), &Type::INT2).is_err());
        assert!(bind(P::Int16(-5), &Type::INT8).is_ok());
        assert!(bind(P::Int8(5), &Type::NUMERIC).is_ok());
        let err = bind(P::Str("x".into()), &Type::INT4).err().unwrap();
        assert_eq!(err, "a str value cannot be sent as int4");
        assert!(bind(P::Uuid("not-a-uuid".into()), &Type::UUID).is_err());
        assert!(bind(P::Jsonb(b"{".to_vec()), &Type::JSONB).is_err());
        assert!(bind(P::Date((2024, 2, 30)), &Type::DATE).is_err());
        assert!(bind(P::Time((24, 0, 0, 0)), &Type::TIME).is_err());
        assert!(bind(P::Timestamp(i64::MAX), &Type::TIMESTAMPTZ).is_err());
        assert!(bind(P::DbNull, &Type::INTERVAL).is_ok());
    }
}
