//! Outbound PostgreSQL: `fermyon:spin/postgres@2.0.0` over tokio-postgres.

use wasmtime::component::Resource;

use super::pg_codecs::Null;
use super::{PgHandle, types};
use crate::capability::bindings::fermyon::spin2_0_0::postgres;
use crate::host::HostState;

type PgParam = Box<dyn tokio_postgres::types::ToSql + Sync + Send>;

fn pg_param(p: types::ParameterValue) -> Result<PgParam, types::Error> {
    use types::ParameterValue as P;
    Ok(match p {
        P::Boolean(v) => Box::new(v),
        P::Int8(v) => Box::new(v),
        P::Int16(v) => Box::new(v),
        P::Int32(v) => Box::new(v),
        P::Int64(v) => Box::new(v),
        P::Uint8(v) => Box::new(i16::from(v)),
        P::Uint16(v) => Box::new(i32::from(v)),
        P::Uint32(v) => Box::new(i64::from(v)),
        P::Uint64(v) => Box::new(i64::try_from(v).map_err(|_| {
            types::Error::BadParameter(format!("{v} does not fit PostgreSQL's bigint"))
        })?),
        P::Floating32(v) => Box::new(v),
        P::Floating64(v) => Box::new(v),
        P::Str(v) => Box::new(v),
        P::Binary(v) => Box::new(v),
        P::DbNull => Box::new(Null),
    })
}

fn pg_column(c: &tokio_postgres::Column) -> types::Column {
    use tokio_postgres::types::Type;
    let t = c.type_();
    let data_type = match *t {
        Type::BOOL => types::DbDataType::Boolean,
        Type::CHAR => types::DbDataType::Int8,
        Type::INT2 => types::DbDataType::Int16,
        Type::INT4 => types::DbDataType::Int32,
        Type::INT8 => types::DbDataType::Int64,
        Type::FLOAT4 => types::DbDataType::Floating32,
        Type::FLOAT8 => types::DbDataType::Floating64,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => types::DbDataType::Str,
        Type::BYTEA => types::DbDataType::Binary,
        _ => types::DbDataType::Other,
    };
    types::Column {
        name: c.name().to_string(),
        data_type,
    }
}

fn pg_value(
    row: &tokio_postgres::Row,
    i: usize,
    ty: types::DbDataType,
) -> Result<types::DbValue, types::Error> {
    use types::DbValue as V;
    let conv = |e: tokio_postgres::Error| types::Error::ValueConversionFailed(e.to_string());
    macro_rules! get {
        ($t:ty, $variant:ident) => {
            row.try_get::<_, Option<$t>>(i)
                .map_err(conv)?
                .map_or(V::DbNull, V::$variant)
        };
    }
    Ok(match ty {
        types::DbDataType::Boolean => get!(bool, Boolean),
        types::DbDataType::Int8 => get!(i8, Int8),
        types::DbDataType::Int16 => get!(i16, Int16),
        types::DbDataType::Int32 => get!(i32, Int32),
        types::DbDataType::Int64 => get!(i64, Int64),
        types::DbDataType::Floating32 => get!(f32, Floating32),
        types::DbDataType::Floating64 => get!(f64, Floating64),
        types::DbDataType::Str => get!(String, Str),
        types::DbDataType::Binary => get!(Vec<u8>, Binary),
        _ => V::Unsupported,
    })
}

async fn pg_query(
    client: &tokio_postgres::Client,
    statement: &str,
    params: Vec<types::ParameterValue>,
) -> Result<types::RowSet, types::Error> {
    let params = params
        .into_iter()
        .map(pg_param)
        .collect::<Result<Vec<_>, _>>()?;
    let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
        params.iter().map(|p| p.as_ref() as _).collect();
    let stmt = client
        .prepare(statement)
        .await
        .map_err(|e| types::Error::QueryFailed(pg_message(&e)))?;
    let columns: Vec<types::Column> = stmt.columns().iter().map(pg_column).collect();
    let rows = client
        .query(&stmt, &refs)
        .await
        .map_err(|e| types::Error::QueryFailed(pg_message(&e)))?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut values = Vec::with_capacity(columns.len());
        for (i, c) in columns.iter().enumerate() {
            values.push(pg_value(row, i, c.data_type)?);
        }
        out.push(values);
    }
    Ok(types::RowSet { columns, rows: out })
}

/// The server's own message when there is one (`relation "x" does not exist`).
fn pg_message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map_or_else(|| e.to_string(), |d| d.message().to_string())
}

impl postgres::Host for HostState {}

impl postgres::HostConnection for HostState {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<PgHandle>, types::Error>> {
        let (pool, grant) = (self.rdbms.clone(), self.outbound_grant());
        Ok(match pool.postgres_client(&grant, &address, None).await {
            Ok(client) => Ok(self.table.push(PgHandle { client })?),
            Err(e) => Err(e),
        })
    }

    async fn query(
        &mut self,
        h: Resource<PgHandle>,
        statement: String,
        params: Vec<types::ParameterValue>,
    ) -> wasmtime::Result<Result<types::RowSet, types::Error>> {
        let client = self.table.get(&h)?.client.clone();
        Ok(pg_query(&client, &statement, params).await)
    }

    async fn execute(
        &mut self,
        h: Resource<PgHandle>,
        statement: String,
        params: Vec<types::ParameterValue>,
    ) -> wasmtime::Result<Result<u64, types::Error>> {
        let client = self.table.get(&h)?.client.clone();
        let params = match params
            .into_iter()
            .map(pg_param)
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            params.iter().map(|p| p.as_ref() as _).collect();
        Ok(client
            .execute(statement.as_str(), &refs)
            .await
            .map_err(|e| types::Error::QueryFailed(pg_message(&e))))
    }

    async fn drop(&mut self, h: Resource<PgHandle>) -> wasmtime::Result<()> {
        self.table.delete(h)?;
        Ok(())
    }
}
