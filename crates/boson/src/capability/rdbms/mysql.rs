//! Outbound MySQL: `fermyon:spin/mysql@2.0.0` and the asynchronous `spin:mysql@3.0.0` over
//! mysql_async.

use wasmtime::component::Resource;

use super::{MysqlHandle, failed, types};
use crate::capability::bindings::fermyon::spin2_0_0::mysql;
use crate::host::HostState;

fn mysql_param(p: types::ParameterValue) -> mysql_async::Value {
    use mysql_async::Value as M;
    use types::ParameterValue as P;
    match p {
        P::Boolean(v) => M::Int(i64::from(v)),
        P::Int8(v) => M::Int(v.into()),
        P::Int16(v) => M::Int(v.into()),
        P::Int32(v) => M::Int(v.into()),
        P::Int64(v) => M::Int(v),
        P::Uint8(v) => M::UInt(v.into()),
        P::Uint16(v) => M::UInt(v.into()),
        P::Uint32(v) => M::UInt(v.into()),
        P::Uint64(v) => M::UInt(v),
        P::Floating32(v) => M::Float(v),
        P::Floating64(v) => M::Double(v),
        P::Str(v) => M::Bytes(v.into_bytes()),
        P::Binary(v) => M::Bytes(v),
        P::DbNull => M::NULL,
    }
}

fn mysql_column(c: &mysql_async::Column) -> types::Column {
    use mysql_async::consts::{ColumnFlags, ColumnType as T};
    let unsigned = c.flags().contains(ColumnFlags::UNSIGNED_FLAG);
    let binary = c.character_set() == 63;
    let data_type = match (c.column_type(), unsigned) {
        (T::MYSQL_TYPE_TINY, false) => types::DbDataType::Int8,
        (T::MYSQL_TYPE_TINY, true) => types::DbDataType::Uint8,
        (T::MYSQL_TYPE_SHORT, false) => types::DbDataType::Int16,
        (T::MYSQL_TYPE_SHORT, true) => types::DbDataType::Uint16,
        (T::MYSQL_TYPE_LONG | T::MYSQL_TYPE_INT24, false) => types::DbDataType::Int32,
        (T::MYSQL_TYPE_LONG | T::MYSQL_TYPE_INT24, true) => types::DbDataType::Uint32,
        (T::MYSQL_TYPE_LONGLONG, false) => types::DbDataType::Int64,
        (T::MYSQL_TYPE_LONGLONG, true) => types::DbDataType::Uint64,
        (T::MYSQL_TYPE_FLOAT, _) => types::DbDataType::Floating32,
        (T::MYSQL_TYPE_DOUBLE, _) => types::DbDataType::Floating64,
        (
            T::MYSQL_TYPE_VARCHAR
            | T::MYSQL_TYPE_VAR_STRING
            | T::MYSQL_TYPE_STRING
            | T::MYSQL_TYPE_BLOB
            | T::MYSQL_TYPE_TINY_BLOB
            | T::MYSQL_TYPE_MEDIUM_BLOB
            | T::MYSQL_TYPE_LONG_BLOB,
            _,
        ) => {
            if binary {
                types::DbDataType::Binary
            } else {
                types::DbDataType::Str
            }
        }
        _ => types::DbDataType::Other,
    };
    types::Column {
        name: c.name_str().to_string(),
        data_type,
    }
}

fn mysql_value(
    v: mysql_async::Value,
    ty: types::DbDataType,
) -> Result<types::DbValue, types::Error> {
    use mysql_async::Value as M;
    use types::{DbDataType as T, DbValue as V};
    let bad =
        |what: &str| types::Error::ValueConversionFailed(format!("cannot read {what} as {ty:?}"));
    fn narrow<N: TryFrom<i128>>(v: &M) -> Option<N> {
        let wide = match v {
            M::Int(i) => i128::from(*i),
            M::UInt(u) => i128::from(*u),
            M::Bytes(b) => std::str::from_utf8(b).ok()?.parse().ok()?,
            _ => return None,
        };
        N::try_from(wide).ok()
    }
    if v == M::NULL {
        return Ok(V::DbNull);
    }
    Ok(match ty {
        T::Int8 => V::Int8(narrow(&v).ok_or_else(|| bad("value"))?),
        T::Int16 => V::Int16(narrow(&v).ok_or_else(|| bad("value"))?),
        T::Int32 => V::Int32(narrow(&v).ok_or_else(|| bad("value"))?),
        T::Int64 => V::Int64(narrow(&v).ok_or_else(|| bad("value"))?),
        T::Uint8 => V::Uint8(narrow(&v).ok_or_else(|| bad("value"))?),
        T::Uint16 => V::Uint16(narrow(&v).ok_or_else(|| bad("value"))?),
        T::Uint32 => V::Uint32(narrow(&v).ok_or_else(|| bad("value"))?),
        T::Uint64 => V::Uint64(narrow(&v).ok_or_else(|| bad("value"))?),
        T::Floating32 => match v {
            M::Float(f) => V::Floating32(f),
            M::Double(d) => V::Floating32(d as f32),
            _ => return Err(bad("value")),
        },
        T::Floating64 => match v {
            M::Double(d) => V::Floating64(d),
            M::Float(f) => V::Floating64(f.into()),
            _ => return Err(bad("value")),
        },
        T::Str => match v {
            M::Bytes(b) => V::Str(String::from_utf8(b).map_err(|_| bad("bytes"))?),
            _ => return Err(bad("value")),
        },
        T::Binary => match v {
            M::Bytes(b) => V::Binary(b),
            _ => return Err(bad("value")),
        },
        _ => V::Unsupported,
    })
}

async fn mysql_query(
    pool: &mysql_async::Pool,
    statement: &str,
    params: Vec<types::ParameterValue>,
) -> Result<types::RowSet, types::Error> {
    use mysql_async::prelude::Queryable as _;
    let mut conn = pool.get_conn().await.map_err(failed)?;
    let params = mysql_async::Params::Positional(params.into_iter().map(mysql_param).collect());
    let mut result = conn
        .exec_iter(statement, params)
        .await
        .map_err(|e| types::Error::QueryFailed(e.to_string()))?;
    let columns: Vec<types::Column> = result
        .columns()
        .map(|cols| cols.iter().map(mysql_column).collect())
        .unwrap_or_default();
    let rows: Vec<mysql_async::Row> = result
        .collect()
        .await
        .map_err(|e| types::Error::QueryFailed(e.to_string()))?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let values = row.unwrap();
        let mut converted = Vec::with_capacity(values.len());
        for (v, c) in values.into_iter().zip(&columns) {
            converted.push(mysql_value(v, c.data_type)?);
        }
        out.push(converted);
    }
    Ok(types::RowSet { columns, rows: out })
}

impl mysql::Host for HostState {}

impl mysql::HostConnection for HostState {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<MysqlHandle>, types::Error>> {
        let (pools, grant) = (self.rdbms.clone(), self.outbound_grant());
        Ok(match pools.mysql_pool(&grant, &address).await {
            Ok(pool) => Ok(self.table.push(MysqlHandle { pool })?),
            Err(e) => Err(e),
        })
    }

    async fn query(
        &mut self,
        h: Resource<MysqlHandle>,
        statement: String,
        params: Vec<types::ParameterValue>,
    ) -> wasmtime::Result<Result<types::RowSet, types::Error>> {
        let pool = self.table.get(&h)?.pool.clone();
        Ok(mysql_query(&pool, &statement, params).await)
    }

    async fn execute(
        &mut self,
        h: Resource<MysqlHandle>,
        statement: String,
        params: Vec<types::ParameterValue>,
    ) -> wasmtime::Result<Result<(), types::Error>> {
        use mysql_async::prelude::Queryable as _;
        let pool = self.table.get(&h)?.pool.clone();
        let mut conn = match pool.get_conn().await {
            Ok(c) => c,
            Err(e) => return Ok(Err(failed(e))),
        };
        let params = mysql_async::Params::Positional(params.into_iter().map(mysql_param).collect());
        Ok(conn
            .exec_drop(statement, params)
            .await
            .map_err(|e| types::Error::QueryFailed(e.to_string())))
    }

    async fn drop(&mut self, h: Resource<MysqlHandle>) -> wasmtime::Result<()> {
        self.table.delete(h)?;
        Ok(())
    }
}

// ---- spin:mysql/mysql@3.0.0 (asynchronous, spin-sdk 5): the same types as
// `fermyon:spin/rdbms-types@2.0.0` in their own package, rows streamed.

use crate::capability::bindings_p3::spin::mysql::mysql as my3;
use crate::capability::{SpinP3, with_state};
use wasmtime::component::{Accessor, FutureReader, StreamReader};

fn param_from3(p: my3::ParameterValue) -> types::ParameterValue {
    use my3::ParameterValue as A;
    use types::ParameterValue as B;
    match p {
        A::Boolean(v) => B::Boolean(v),
        A::Int8(v) => B::Int8(v),
        A::Int16(v) => B::Int16(v),
        A::Int32(v) => B::Int32(v),
        A::Int64(v) => B::Int64(v),
        A::Uint8(v) => B::Uint8(v),
        A::Uint16(v) => B::Uint16(v),
        A::Uint32(v) => B::Uint32(v),
        A::Uint64(v) => B::Uint64(v),
        A::Floating32(v) => B::Floating32(v),
        A::Floating64(v) => B::Floating64(v),
        A::Str(v) => B::Str(v),
        A::Binary(v) => B::Binary(v),
        A::DbNull => B::DbNull,
    }
}

fn value_to3(v: types::DbValue) -> my3::DbValue {
    use my3::DbValue as B;
    use types::DbValue as A;
    match v {
        A::Boolean(v) => B::Boolean(v),
        A::Int8(v) => B::Int8(v),
        A::Int16(v) => B::Int16(v),
        A::Int32(v) => B::Int32(v),
        A::Int64(v) => B::Int64(v),
        A::Uint8(v) => B::Uint8(v),
        A::Uint16(v) => B::Uint16(v),
        A::Uint32(v) => B::Uint32(v),
        A::Uint64(v) => B::Uint64(v),
        A::Floating32(v) => B::Floating32(v),
        A::Floating64(v) => B::Floating64(v),
        A::Str(v) => B::Str(v),
        A::Binary(v) => B::Binary(v),
        A::DbNull => B::DbNull,
        A::Unsupported => B::Unsupported,
    }
}

fn column_to3(c: types::Column) -> my3::Column {
    use my3::DbDataType as B;
    use types::DbDataType as A;
    my3::Column {
        name: c.name,
        data_type: match c.data_type {
            A::Boolean => B::Boolean,
            A::Int8 => B::Int8,
            A::Int16 => B::Int16,
            A::Int32 => B::Int32,
            A::Int64 => B::Int64,
            A::Uint8 => B::Uint8,
            A::Uint16 => B::Uint16,
            A::Uint32 => B::Uint32,
            A::Uint64 => B::Uint64,
            A::Floating32 => B::Floating32,
            A::Floating64 => B::Floating64,
            A::Str => B::Str,
            A::Binary => B::Binary,
            A::Other => B::Other,
        },
    }
}

fn error_to3(e: types::Error) -> my3::Error {
    match e {
        types::Error::ConnectionFailed(m) => my3::Error::ConnectionFailed(m),
        types::Error::BadParameter(m) => my3::Error::BadParameter(m),
        types::Error::QueryFailed(m) => my3::Error::QueryFailed(m),
        types::Error::ValueConversionFailed(m) => my3::Error::ValueConversionFailed(m),
        types::Error::Other(m) => my3::Error::Other(m),
    }
}

fn pool3<U>(
    accessor: &Accessor<U, SpinP3>,
    h: &Resource<MysqlHandle>,
) -> wasmtime::Result<mysql_async::Pool> {
    with_state(accessor, |state| Ok(state.table.get(h)?.pool.clone()))
}

type RowStream = (
    Vec<my3::Column>,
    StreamReader<Vec<my3::DbValue>>,
    FutureReader<Result<(), my3::Error>>,
);

impl my3::Host for HostState {}

impl my3::HostConnection for HostState {
    fn drop(&mut self, h: Resource<MysqlHandle>) -> wasmtime::Result<()> {
        self.table.delete(h)?;
        Ok(())
    }
}

impl<U> my3::HostConnectionWithStore<U> for SpinP3 {
    async fn open(
        accessor: &Accessor<U, Self>,
        address: String,
    ) -> wasmtime::Result<Result<Resource<MysqlHandle>, my3::Error>> {
        let (pools, grant) = with_state(accessor, |state| {
            (state.rdbms.clone(), state.outbound_grant())
        });
        match pools.mysql_pool(&grant, &address).await {
            Ok(pool) => with_state(accessor, |state| {
                Ok(Ok(state.table.push(MysqlHandle { pool })?))
            }),
            Err(e) => Ok(Err(error_to3(e))),
        }
    }

    async fn query(
        accessor: &Accessor<U, Self>,
        h: Resource<MysqlHandle>,
        statement: String,
        params: Vec<my3::ParameterValue>,
    ) -> wasmtime::Result<Result<RowStream, my3::Error>> {
        let pool = pool3(accessor, &h)?;
        let params = params.into_iter().map(param_from3).collect();
        let set = match mysql_query(&pool, &statement, params).await {
            Ok(set) => set,
            Err(e) => return Ok(Err(error_to3(e))),
        };
        let columns = set.columns.into_iter().map(column_to3).collect();
        let rows: Vec<Vec<my3::DbValue>> = set
            .rows
            .into_iter()
            .map(|row| row.into_iter().map(value_to3).collect())
            .collect();
        accessor.with(|mut access| {
            let stream = StreamReader::new(&mut access, rows)?;
            let done = FutureReader::new(&mut access, async { wasmtime::Result::<_>::Ok(Ok(())) })?;
            Ok(Ok((columns, stream, done)))
        })
    }

    async fn execute(
        accessor: &Accessor<U, Self>,
        h: Resource<MysqlHandle>,
        statement: String,
        params: Vec<my3::ParameterValue>,
    ) -> wasmtime::Result<Result<(), my3::Error>> {
        use mysql_async::prelude::Queryable as _;
        let pool = pool3(accessor, &h)?;
        let mut conn = match pool.get_conn().await {
            Ok(c) => c,
            Err(e) => return Ok(Err(error_to3(failed(e)))),
        };
        let params = mysql_async::Params::Positional(
            params
                .into_iter()
                .map(param_from3)
                .map(mysql_param)
                .collect(),
        );
        Ok(conn
            .exec_drop(statement, params)
            .await
            .map_err(|e| my3::Error::QueryFailed(e.to_string())))
    }
}
