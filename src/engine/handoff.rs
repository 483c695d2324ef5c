//! The DuckDB → Polars handoff through the Arrow C Data Interface, in process.
//!
//! DuckDB's result batches arrive as arrow-rs arrays; each column is exported as
//! an `FFI_ArrowArray` and imported by polars-arrow, which keeps the exporter's
//! buffers alive through the release callback instead of copying them. Both
//! crates lay out the C structs identically (they are the ABI of the spec).

use duckdb::arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use polars::prelude::*;
use polars_arrow::ffi::{ArrowArray, ArrowSchema, import_array_from_c, import_field_from_c};

use super::{DuckDb, EngineError};
use crate::error::{Error, Result};

/// Runs `sql` in DuckDB and returns its result as a Polars DataFrame.
pub(crate) fn query_polars(engine: &DuckDb, sql: &str) -> Result<DataFrame> {
    let mut whole = None;
    query_polars_chunks(engine, sql, usize::MAX, &mut |frame| {
        whole = Some(frame);
        Ok(())
    })?;
    Ok(whole.unwrap_or_default())
}

/// Runs `sql` in DuckDB and hands its result to `sink` as DataFrames of at
/// least `chunk_rows` rows (the last one smaller; one empty frame with the
/// result's columns when there are no rows), so a consumer that aggregates
/// as it goes holds one chunk at a time, not the whole result.
pub(crate) fn query_polars_chunks(
    engine: &DuckDb,
    sql: &str,
    chunk_rows: usize,
    sink: &mut dyn FnMut(DataFrame) -> Result<()>,
) -> Result<()> {
    let context = || format!("handing `{sql}` to Polars");
    let failed = |e: duckdb::Error| Error::Engine {
        context: context(),
        source: EngineError::new(e.to_string()),
    };
    let mut stmt = engine.connection().prepare(sql).map_err(failed)?;
    let batches = stmt.stream_arrow([]).map_err(failed)?;
    let schema = batches.get_schema();
    let mut fields = Vec::with_capacity(schema.fields().len());
    for arrow_field in schema.fields() {
        let empty = duckdb::arrow::array::new_empty_array(arrow_field.data_type());
        let (mut field, _) = export_import(empty.as_ref()).map_err(Error::polars(context()))?;
        field.name = PlSmallStr::from_str(arrow_field.name());
        fields.push(field);
    }
    let mut chunks: Vec<Vec<Box<dyn polars_arrow::array::Array>>> =
        fields.iter().map(|_| Vec::new()).collect();
    let (mut pending, mut sent) = (0usize, false);
    for batch in batches {
        let batch = batch.map_err(failed)?;
        pending += batch.num_rows();
        for (i, column) in batch.columns().iter().enumerate() {
            let (_, array) = export_import(column.as_ref()).map_err(Error::polars(context()))?;
            chunks[i].push(array);
        }
        if pending >= chunk_rows {
            sink(frame(&fields, &mut chunks).map_err(Error::polars(context()))?)?;
            (pending, sent) = (0, true);
        }
    }
    if pending > 0 || !sent {
        sink(frame(&fields, &mut chunks).map_err(Error::polars(context()))?)?;
    }
    Ok(())
}

/// A DataFrame of the arrays gathered so far (taken, so the next chunk starts empty).
fn frame(
    fields: &[ArrowField],
    chunks: &mut [Vec<Box<dyn polars_arrow::array::Array>>],
) -> PolarsResult<DataFrame> {
    let mut columns = Vec::with_capacity(fields.len());
    for (field, arrays) in fields.iter().zip(chunks.iter_mut()) {
        let arrays = match std::mem::take(arrays) {
            // No rows: an empty column of the type DuckDB reported.
            none if none.is_empty() => vec![polars_arrow::array::new_empty_array(field.dtype().clone())],
            arrays => arrays,
        };
        columns.push(Column::from(Series::try_from((field, arrays))?));
    }
    DataFrame::new_infer_height(columns)
}

/// Moves one arrow-rs array into polars-arrow through the C Data Interface.
fn export_import(
    array: &dyn duckdb::arrow::array::Array,
) -> PolarsResult<(ArrowField, Box<dyn polars_arrow::array::Array>)> {
    let data = array.to_data();
    let ffi_array = FFI_ArrowArray::new(&data);
    let ffi_schema = FFI_ArrowSchema::try_from(data.data_type())
        .map_err(|e| polars_err!(ComputeError: "cannot export Arrow type: {e}"))?;
    // SAFETY: both structs are the C Data Interface's `ArrowArray` and
    // `ArrowSchema` (`#[repr(C)]`, same fields). The array is moved: polars
    // takes over its release callback, so arrow-rs must not drop it.
    unsafe {
        let schema = &*(&ffi_schema as *const FFI_ArrowSchema).cast::<ArrowSchema>();
        let field = import_field_from_c(schema)?;
        let moved: ArrowArray = std::mem::transmute::<FFI_ArrowArray, ArrowArray>(ffi_array);
        let imported = import_array_from_c(moved, field.dtype().clone())?;
        Ok((field, imported))
    }
}

/// Hands a Polars DataFrame back to DuckDB as table `schema.name` (through the
/// C Data Interface the other way, then DuckDB's appender), so checks query
/// mart candidates with the same SQL as every other layer. `money` columns
/// (integer minor units, with their scale) become DECIMAL amounts, as they are published.
pub(crate) fn register_frame(
    engine: &DuckDb,
    schema: &str,
    name: &str,
    frame: &DataFrame,
    money: &[(String, u32)],
) -> Result<()> {
    let context = || format!("handing `{schema}.{name}` back to DuckDB");
    let mut fields = Vec::new();
    let mut arrays: Vec<duckdb::arrow::array::ArrayRef> = Vec::new();
    for column in frame.columns() {
        let field = column
            .dtype()
            .to_arrow_field(column.name().clone(), CompatLevel::oldest());
        let array = column.clone().rechunk_to_arrow(CompatLevel::oldest());
        let ffi_schema = polars_arrow::ffi::export_field_to_c(&field);
        let ffi_array = polars_arrow::ffi::export_array_to_c(array);
        // SAFETY: as in `export_import`, the C structs are identical; arrow-rs
        // takes ownership of the array and calls its release callback.
        let data = unsafe {
            let ffi_array = std::mem::transmute::<ArrowArray, FFI_ArrowArray>(ffi_array);
            let ffi_schema = std::mem::transmute::<ArrowSchema, FFI_ArrowSchema>(ffi_schema);
            duckdb::arrow::ffi::from_ffi(ffi_array, &ffi_schema)
        }
        .map_err(|e| Error::Polars {
            context: context(),
            source: polars_err!(ComputeError: "cannot import Arrow array: {e}"),
        })?;
        let array = duckdb::arrow::array::make_array(data);
        fields.push(duckdb::arrow::datatypes::Field::new(
            column.name().as_str(),
            array.data_type().clone(),
            true,
        ));
        arrays.push(array);
    }
    let arrow_schema = std::sync::Arc::new(duckdb::arrow::datatypes::Schema::new(fields));
    let batch =
        duckdb::arrow::record_batch::RecordBatch::try_new(arrow_schema.clone(), arrays).map_err(|e| {
            Error::Polars {
                context: context(),
                source: polars_err!(ComputeError: "{e}"),
            }
        })?;

    let staging_table = format!("_handoff_{name}");
    let defs: Vec<String> = arrow_schema
        .fields()
        .iter()
        .map(|f| format!("{} {}", crate::sql::ident(f.name()), duckdb_type(f.data_type())))
        .collect();
    engine
        .execute(&format!(
            "CREATE OR REPLACE TEMP TABLE {staging_table} ({});",
            defs.join(", ")
        ))
        .map_err(Error::engine(context()))?;
    let mut appender = engine
        .batch_appender(None, &staging_table, &[])
        .map_err(Error::engine(context()))?;
    appender.append(batch).map_err(Error::engine(context()))?;
    appender.flush().map_err(Error::engine(context()))?;
    drop(appender);
    let replace: Vec<String> = money
        .iter()
        .map(|(m, scale)| {
            let m = crate::sql::ident(m);
            format!("{} AS {m}", crate::sql::minor_to_decimal(&m, *scale))
        })
        .collect();
    let select = if replace.is_empty() {
        "*".to_string()
    } else {
        format!("* REPLACE ({})", replace.join(", "))
    };
    engine
        .execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}; CREATE OR REPLACE TABLE {schema}.{name} AS SELECT {select} FROM {staging_table}; DROP TABLE {staging_table};"
        ))
        .map_err(Error::engine(context()))
}

/// The DuckDB column type for an Arrow type of a mart column.
fn duckdb_type(dt: &duckdb::arrow::datatypes::DataType) -> &'static str {
    use duckdb::arrow::datatypes::DataType as D;
    match dt {
        D::Boolean => "BOOLEAN",
        D::Int8 | D::Int16 | D::Int32 => "INTEGER",
        D::UInt8 | D::UInt16 | D::UInt32 => "UINTEGER",
        D::Int64 => "BIGINT",
        D::UInt64 => "UBIGINT",
        D::Float32 | D::Float64 => "DOUBLE",
        D::Date32 | D::Date64 => "DATE",
        D::Timestamp(..) => "TIMESTAMP",
        _ => "VARCHAR",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Polars values buffer of a fixed-width column is the very memory
    /// DuckDB exported: the handoff moves ownership, it does not copy.
    #[test]
    fn fixed_width_columns_cross_without_a_copy() {
        let engine = DuckDb::open(None, None).unwrap();
        engine
            .execute("CREATE TABLE t AS SELECT range::BIGINT AS v FROM range(5000)")
            .unwrap();
        let mut stmt = engine.connection().prepare("SELECT v FROM t").unwrap();
        let batch = stmt.stream_arrow([]).unwrap().next().unwrap().unwrap();
        let column = batch.column(0);
        let exported = column.to_data().buffers()[0].as_ptr();

        let (field, imported) = export_import(column.as_ref()).unwrap();
        let series = Series::try_from((&field, vec![imported])).unwrap();
        let values = series.i64().unwrap().downcast_iter().next().unwrap().values();
        assert_eq!(values.as_ptr().cast::<u8>(), exported);
        // DuckDB streams vectors of 2048 rows; this is the first one.
        assert_eq!((values.len(), values[2047]), (2048, 2047));
    }

    /// Strings are not zero-copy, and this measures what is copied: DuckDB
    /// exports `Utf8` (a 4-byte offset per row plus the bytes), Polars keeps
    /// string views, so the import copies the bytes once into a buffer of its
    /// own and writes a 16-byte view per row (strings of up to 12 bytes sit
    /// inside their view).
    #[test]
    fn strings_are_converted_on_import() {
        let engine = DuckDb::open(None, None).unwrap();
        let mut stmt = engine
            .connection()
            .prepare("SELECT CASE WHEN range % 2 = 0 THEN 'eu' ELSE 'a-longer-string-' || range END AS s FROM range(1000)")
            .unwrap();
        let batch = stmt.stream_arrow([]).unwrap().next().unwrap().unwrap();
        let column = batch.column(0);
        let data = column.to_data();
        let rows = data.len();
        let exported = data.buffers()[1].as_ptr();
        let (offsets, values) = (data.buffers()[0].len(), data.buffers()[1].len());
        let (field, imported) = export_import(column.as_ref()).unwrap();
        let series = Series::try_from((&field, vec![imported])).unwrap();
        let strings = series.str().unwrap();
        assert_eq!(strings.get(0), Some("eu"));
        let view = strings.downcast_iter().next().unwrap();
        assert!(
            view.data_buffers().iter().all(|b| b.as_ptr() != exported),
            "Polars holds its own string bytes"
        );
        let long: usize = (0..rows)
            .filter_map(|i| strings.get(i))
            .map(str::len)
            .filter(|n| *n > 12)
            .sum();
        let copied: usize = view.data_buffers().iter().map(|b| b.len()).sum();
        // Measured: the values buffer is copied in one piece (from the first
        // string that does not fit a view), and a view is added per row.
        assert_eq!(offsets, 4 * (rows + 1));
        assert!(
            long <= copied && copied <= values,
            "{long} <= {copied} <= {values}"
        );
        assert_eq!(view.views().len(), rows);
    }
}
