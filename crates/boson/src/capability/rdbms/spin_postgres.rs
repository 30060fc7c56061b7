//! Outbound PostgreSQL for spin-sdk 5.x: `spin:postgres/postgres@3.0.0` (synchronous) and
//! `spin:postgres/postgres@4.2.0` (synchronous and asynchronous forms, and the connection
//! builder). Both run on 4.2.0's types: 3.0.0's parameters are a subset of them, and a 4.2.0
//! result value 3.0.0 cannot carry comes back to it as `unsupported`.
//!
//! A statement is prepared first; each parameter is then bound to the type the server gave its
//! placeholder (see `pg_values`), and the rows are read by their columns' types.

use std::sync::Arc;

use tokio_postgres::Client;
use wasmtime::component::{Accessor, FutureReader, Resource, StreamReader};

use super::pg_tls::CaRoots;
use super::pg_values::{self, Param};
use super::{PgBuilderHandle, PgHandle, types};
use crate::capability::bindings::spin::postgres::postgres as pg3;
use crate::capability::bindings_p3::spin::postgres::postgres as pg4;
use crate::capability::{SpinP3, with_state};
use crate::host::{HostState, OutboundGrant};

// ---------------------------------------------------------------- shared by both versions

/// What a connection needs from the instance, taken out so it can be used across awaits.
struct Opener {
    rdbms: super::RdbmsConnections,
    grant: OutboundGrant,
}

impl Opener {
    fn of(state: &HostState) -> Self {
        Self {
            rdbms: state.rdbms.clone(),
            grant: state.outbound_grant(),
        }
    }

    async fn open(self, address: &str, ca: Option<&CaRoots>) -> Result<PgHandle, pg4::Error> {
        match self.rdbms.postgres_client(&self.grant, address, ca).await {
            Ok(client) => Ok(PgHandle { client }),
            Err(e) => Err(error_from2(e)),
        }
    }
}

fn error_from2(e: types::Error) -> pg4::Error {
    match e {
        types::Error::ConnectionFailed(m) => pg4::Error::ConnectionFailed(m),
        types::Error::BadParameter(m) => pg4::Error::BadParameter(m),
        types::Error::QueryFailed(m) => pg4::Error::QueryFailed(pg4::QueryError::Text(m)),
        types::Error::ValueConversionFailed(m) => pg4::Error::ValueConversionFailed(m),
        types::Error::Other(m) => pg4::Error::Other(m),
    }
}

/// A failed statement: the server's error with all its fields, or the driver's text.
fn query_failed(e: &tokio_postgres::Error) -> pg4::Error {
    let Some(db) = e.as_db_error() else {
        return pg4::Error::QueryFailed(pg4::QueryError::Text(e.to_string()));
    };
    let mut extras = Vec::new();
    let mut extra = |name: &str, value: Option<String>| {
        if let Some(v) = value {
            extras.push((name.to_string(), v));
        }
    };
    extra("hint", db.hint().map(str::to_string));
    match db.position() {
        Some(tokio_postgres::error::ErrorPosition::Original(p)) => {
            extra("position", Some(p.to_string()));
        }
        Some(tokio_postgres::error::ErrorPosition::Internal { position, query }) => {
            extra("internal_position", Some(position.to_string()));
            extra("internal_query", Some(query.clone()));
        }
        None => {}
    }
    extra("where", db.where_().map(str::to_string));
    extra("schema", db.schema().map(str::to_string));
    extra("table", db.table().map(str::to_string));
    extra("column", db.column().map(str::to_string));
    extra("datatype", db.datatype().map(str::to_string));
    extra("constraint", db.constraint().map(str::to_string));
    extra("file", db.file().map(str::to_string));
    extra("line", db.line().map(|l| l.to_string()));
    extra("routine", db.routine().map(str::to_string));
    pg4::Error::QueryFailed(pg4::QueryError::DbError(pg4::DbError {
        as_text: db.to_string(),
        severity: db.severity().to_string(),
        code: db.code().code().to_string(),
        message: db.message().to_string(),
        detail: db.detail().map(str::to_string),
        extras,
    }))
}

/// Prepares `statement` and binds `params` to its placeholders' types.
async fn prepare(
    client: &Client,
    statement: &str,
    params: Vec<pg4::ParameterValue>,
) -> Result<(tokio_postgres::Statement, Vec<Param>), pg4::Error> {
    let stmt = client
        .prepare(statement)
        .await
        .map_err(|e| query_failed(&e))?;
    let types = stmt.params();
    if types.len() != params.len() {
        return Err(pg4::Error::BadParameter(format!(
            "the statement has {} placeholder(s) but {} parameter(s) were given",
            types.len(),
            params.len()
        )));
    }
    let mut bound = Vec::with_capacity(params.len());
    for (i, (p, ty)) in params.into_iter().zip(types).enumerate() {
        match pg_values::bind(p, ty) {
            Ok(p) => bound.push(p),
            Err(m) => {
                let m = format!("parameter ${}: {m}", i + 1);
                return Err(pg4::Error::BadParameter(m));
            }
        }
    }
    Ok((stmt, bound))
}

async fn query(
    client: &Client,
    statement: &str,
    params: Vec<pg4::ParameterValue>,
) -> Result<pg4::RowSet, pg4::Error> {
    let (stmt, params) = prepare(client, statement, params).await?;
    let rows = client
        .query(&stmt, &pg_values::as_refs(&params))
        .await
        .map_err(|e| query_failed(&e))?;
    let columns = stmt
        .columns()
        .iter()
        .map(|c| pg4::Column {
            name: c.name().to_string(),
            data_type: pg_values::data_type(c.type_()),
        })
        .collect::<Vec<_>>();
    let mut values = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut row_values = Vec::with_capacity(columns.len());
        for (i, column) in columns.iter().enumerate() {
            match pg_values::read(row, i) {
                Ok(v) => row_values.push(v),
                Err(e) => {
                    let m = format!("column {:?}: {e}", column.name);
                    return Err(pg4::Error::ValueConversionFailed(m));
                }
            }
        }
        values.push(row_values);
    }
    Ok(pg4::RowSet {
        columns,
        rows: values,
    })
}

async fn execute(
    client: &Client,
    statement: &str,
    params: Vec<pg4::ParameterValue>,
) -> Result<u64, pg4::Error> {
    let (stmt, params) = prepare(client, statement, params).await?;
    client
        .execute(&stmt, &pg_values::as_refs(&params))
        .await
        .map_err(|e| query_failed(&e))
}

// ---------------------------------------------------------------- spin:postgres@4.2.0

fn client_of(state: &HostState, h: &Resource<PgHandle>) -> wasmtime::Result<Arc<Client>> {
    Ok(state.table.get(h)?.client.clone())
}

fn builder_of(
    state: &HostState,
    h: &Resource<PgBuilderHandle>,
) -> wasmtime::Result<(String, Option<Arc<CaRoots>>)> {
    let builder = state.table.get(h)?;
    Ok((builder.address.clone(), builder.ca.clone()))
}

impl pg4::Host for HostState {}

impl pg4::HostConnection for HostState {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<PgHandle>, pg4::Error>> {
        Ok(match Opener::of(self).open(&address, None).await {
            Ok(handle) => Ok(self.table.push(handle)?),
            Err(e) => Err(e),
        })
    }

    async fn query(
        &mut self,
        h: Resource<PgHandle>,
        statement: String,
        params: Vec<pg4::ParameterValue>,
    ) -> wasmtime::Result<Result<pg4::RowSet, pg4::Error>> {
        let client = client_of(self, &h)?;
        Ok(query(&client, &statement, params).await)
    }

    async fn execute(
        &mut self,
        h: Resource<PgHandle>,
        statement: String,
        params: Vec<pg4::ParameterValue>,
    ) -> wasmtime::Result<Result<u64, pg4::Error>> {
        let client = client_of(self, &h)?;
        Ok(execute(&client, &statement, params).await)
    }

    fn drop(&mut self, h: Resource<PgHandle>) -> wasmtime::Result<()> {
        self.table.delete(h)?;
        Ok(())
    }
}

impl pg4::HostConnectionBuilder for HostState {
    fn new(&mut self, address: String) -> wasmtime::Result<Resource<PgBuilderHandle>> {
        Ok(self.table.push(PgBuilderHandle { address, ca: None })?)
    }

    fn set_ca_root(
        &mut self,
        h: Resource<PgBuilderHandle>,
        certificate: String,
    ) -> wasmtime::Result<Result<(), pg4::Error>> {
        let ca = match CaRoots::from_pem(&certificate) {
            Ok(ca) => ca,
            Err(m) => return Ok(Err(pg4::Error::Other(m))),
        };
        self.table.get_mut(&h)?.ca = Some(Arc::new(ca));
        Ok(Ok(()))
    }

    async fn build(
        &mut self,
        h: Resource<PgBuilderHandle>,
    ) -> wasmtime::Result<Result<Resource<PgHandle>, pg4::Error>> {
        let (address, ca) = builder_of(self, &h)?;
        Ok(match Opener::of(self).open(&address, ca.as_deref()).await {
            Ok(handle) => Ok(self.table.push(handle)?),
            Err(e) => Err(e),
        })
    }

    fn drop(&mut self, h: Resource<PgBuilderHandle>) -> wasmtime::Result<()> {
        self.table.delete(h)?;
        Ok(())
    }
}

type RowStream = (
    Vec<pg4::Column>,
    StreamReader<Vec<pg4::DbValue>>,
    FutureReader<Result<(), pg4::Error>>,
);

/// Opens a connection from an asynchronous call and hands it to the guest.
async fn open_async<U>(
    accessor: &Accessor<U, SpinP3>,
    address: &str,
    ca: Option<&CaRoots>,
) -> wasmtime::Result<Result<Resource<PgHandle>, pg4::Error>> {
    let opener = with_state(accessor, |state| Opener::of(state));
    match opener.open(address, ca).await {
        Ok(handle) => with_state(accessor, |state| Ok(Ok(state.table.push(handle)?))),
        Err(e) => Ok(Err(e)),
    }
}

impl<U> pg4::HostConnectionWithStore<U> for SpinP3 {
    async fn open_async(
        accessor: &Accessor<U, Self>,
        address: String,
    ) -> wasmtime::Result<Result<Resource<PgHandle>, pg4::Error>> {
        open_async(accessor, &address, None).await
    }

    async fn query_async(
        accessor: &Accessor<U, Self>,
        h: Resource<PgHandle>,
        statement: String,
        params: Vec<pg4::ParameterValue>,
    ) -> wasmtime::Result<Result<RowStream, pg4::Error>> {
        let client = with_state(accessor, |state| client_of(state, &h))?;
        let set = match query(&client, &statement, params).await {
            Ok(set) => set,
            Err(e) => return Ok(Err(e)),
        };
        // The rows are all read before the stream starts; the future has nothing left to fail.
        accessor.with(|mut access| {
            let rows = StreamReader::new(&mut access, set.rows)?;
            let done = FutureReader::new(&mut access, async { wasmtime::Result::<_>::Ok(Ok(())) })?;
            Ok(Ok((set.columns, rows, done)))
        })
    }

    async fn execute_async(
        accessor: &Accessor<U, Self>,
        h: Resource<PgHandle>,
        statement: String,
        params: Vec<pg4::ParameterValue>,
    ) -> wasmtime::Result<Result<u64, pg4::Error>> {
        let client = with_state(accessor, |state| client_of(state, &h))?;
        Ok(execute(&client, &statement, params).await)
    }
}

impl<U> pg4::HostConnectionBuilderWithStore<U> for SpinP3 {
    async fn build_async(
        accessor: &Accessor<U, Self>,
        h: Resource<PgBuilderHandle>,
    ) -> wasmtime::Result<Result<Resource<PgHandle>, pg4::Error>> {
        let (address, ca) = with_state(accessor, |state| builder_of(state, &h))?;
        open_async(accessor, &address, ca.as_deref()).await
    }
}

// ---------------------------------------------------------------- spin:postgres@3.0.0

fn param_from3(p: pg3::ParameterValue) -> pg4::ParameterValue {
    use pg3::ParameterValue as A;
    use pg4::ParameterValue as B;
    match p {
        A::Boolean(v) => B::Boolean(v),
        A::Int8(v) => B::Int8(v),
        A::Int16(v) => B::Int16(v),
        A::Int32(v) => B::Int32(v),
        A::Int64(v) => B::Int64(v),
        A::Floating32(v) => B::Floating32(v),
        A::Floating64(v) => B::Floating64(v),
        A::Str(v) => B::Str(v),
        A::Binary(v) => B::Binary(v),
        A::Date(v) => B::Date(v),
        A::Time(v) => B::Time(v),
        A::Datetime(v) => B::Datetime(v),
        A::Timestamp(v) => B::Timestamp(v),
        A::DbNull => B::DbNull,
    }
}

fn value_to3(v: pg4::DbValue) -> pg3::DbValue {
    use pg3::DbValue as B;
    use pg4::DbValue as A;
    match v {
        A::Boolean(v) => B::Boolean(v),
        A::Int8(v) => B::Int8(v),
        A::Int16(v) => B::Int16(v),
        A::Int32(v) => B::Int32(v),
        A::Int64(v) => B::Int64(v),
        A::Floating32(v) => B::Floating32(v),
        A::Floating64(v) => B::Floating64(v),
        A::Str(v) => B::Str(v),
        A::Binary(v) => B::Binary(v),
        A::Date(v) => B::Date(v),
        A::Time(v) => B::Time(v),
        A::Datetime(v) => B::Datetime(v),
        A::Timestamp(v) => B::Timestamp(v),
        A::DbNull => B::DbNull,
        _ => B::Unsupported,
    }
}

fn column_to3(c: pg4::Column) -> pg3::Column {
    use pg3::DbDataType as B;
    use pg4::DbDataType as A;
    let data_type = match c.data_type {
        A::Boolean => B::Boolean,
        A::Int8 => B::Int8,
        A::Int16 => B::Int16,
        A::Int32 => B::Int32,
        A::Int64 => B::Int64,
        A::Floating32 => B::Floating32,
        A::Floating64 => B::Floating64,
        A::Str => B::Str,
        A::Binary => B::Binary,
        A::Date => B::Date,
        A::Time => B::Time,
        A::Datetime => B::Datetime,
        A::Timestamp => B::Timestamp,
        _ => B::Other,
    };
    pg3::Column {
        name: c.name,
        data_type,
    }
}

/// 3.0.0 reports a failed statement as text: the server's message, as 2.0 does.
fn error_to3(e: pg4::Error) -> pg3::Error {
    match e {
        pg4::Error::ConnectionFailed(m) => pg3::Error::ConnectionFailed(m),
        pg4::Error::BadParameter(m) => pg3::Error::BadParameter(m),
        pg4::Error::QueryFailed(pg4::QueryError::Text(m)) => pg3::Error::QueryFailed(m),
        pg4::Error::QueryFailed(pg4::QueryError::DbError(d)) => pg3::Error::QueryFailed(d.message),
        pg4::Error::ValueConversionFailed(m) => pg3::Error::ValueConversionFailed(m),
        pg4::Error::Other(m) => pg3::Error::Other(m),
    }
}

impl pg3::Host for HostState {}

impl pg3::HostConnection for HostState {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<PgHandle>, pg3::Error>> {
        Ok(match Opener::of(self).open(&address, None).await {
            Ok(handle) => Ok(self.table.push(handle)?),
            Err(e) => Err(error_to3(e)),
        })
    }

    async fn query(
        &mut self,
        h: Resource<PgHandle>,
        statement: String,
        params: Vec<pg3::ParameterValue>,
    ) -> wasmtime::Result<Result<pg3::RowSet, pg3::Error>> {
        let client = client_of(self, &h)?;
        let params = params.into_iter().map(param_from3).collect();
        Ok(match query(&client, &statement, params).await {
            Ok(set) => Ok(pg3::RowSet {
                columns: set.columns.into_iter().map(column_to3).collect(),
                rows: set
                    .rows
                    .into_iter()
                    .map(|row| row.into_iter().map(value_to3).collect())
                    .collect(),
            }),
            Err(e) => Err(error_to3(e)),
        })
    }

    async fn execute(
        &mut self,
        h: Resource<PgHandle>,
        statement: String,
        params: Vec<pg3::ParameterValue>,
    ) -> wasmtime::Result<Result<u64, pg3::Error>> {
        let client = client_of(self, &h)?;
        let params = params.into_iter().map(param_from3).collect();
        Ok(execute(&client, &statement, params)
            .await
            .map_err(error_to3))
    }

    async fn drop(&mut self, h: Resource<PgHandle>) -> wasmtime::Result<()> {
        self.table.delete(h)?;
        Ok(())
    }
}
