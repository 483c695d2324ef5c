//! The DuckDB → Polars handoff through the Arrow C Data Interface, in process.
//!
//! DuckDB's result batches arrive as arrow-rs arrays; each column is exported as
//! an `FFI_ArrowArray` and imported by polars-arrow, which keeps the exporter's
//! buffers alive through the release callback instead of copying them. Both
//! crates lay out the C structs identically (they are the ABI of the spec).

use duckdb::Connection;
use duckdb::arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use polars::prelude::*;
use polars_arrow::ffi::{ArrowArray, ArrowSchema, import_array_from_c, import_field_from_c};

use crate::error::{Error, Result};

/// Runs `sql` in DuckDB and returns its result as a Polars DataFrame.
pub fn query_polars(conn: &Connection, sql: &str) -> Result<DataFrame> {
    let context = || format!("handing `{sql}` to Polars");
    let mut stmt = conn.prepare(sql).map_err(Error::duckdb(context()))?;
    let batches = stmt.stream_arrow([]).map_err(Error::duckdb(context()))?;
    let schema = batches.get_schema();
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut chunks: Vec<Vec<Box<dyn polars_arrow::array::Array>>> =
        schema.fields().iter().map(|_| Vec::new()).collect();
    for batch in batches {
        let batch = batch.map_err(Error::duckdb(context()))?;
        for (i, column) in batch.columns().iter().enumerate() {
            let (field, array) = export_import(column.as_ref()).map_err(Error::polars(context()))?;
            if fields.len() <= i {
                fields.push(field);
            }
            chunks[i].push(array);
        }
    }
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (i, arrow_field) in schema.fields().iter().enumerate() {
        let name = PlSmallStr::from_str(arrow_field.name());
        let series = if chunks[i].is_empty() {
            // No batch at all: build an empty column of the type DuckDB reported.
            let (field, array) =
                export_import(duckdb::arrow::array::new_empty_array(arrow_field.data_type()).as_ref())
                    .map_err(Error::polars(context()))?;
            Series::try_from((&field, vec![array]))
        } else {
            Series::try_from((&fields[i], std::mem::take(&mut chunks[i])))
        }
        .map_err(Error::polars(context()))?
        .with_name(name);
        columns.push(Column::from(series));
    }
    DataFrame::new_infer_height(columns).map_err(Error::polars(context()))
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
