//! The Delta Lake sink: a mart as a Delta table (delta-rs), in a local
//! directory or in S3-compatible storage, one new version per published run.
//!
//! It follows the publish protocol of [`super`]: before the run's SQLite
//! commit, [`prepare`] writes the mart's rows as Parquet data files into the
//! table's directory (invisible: no log entry names them yet), and the
//! commit that adds them is recorded with the run; after it, [`commit`]
//! makes one Delta `WRITE` that replaces the table's files with them, with
//! the run id in its commit info and a `txn` action (app id `sluice`) that
//! tells a later run whether the commit landed. A run cut off in between is
//! finished by the next one from its record. A commit is a put-if-absent of
//! the version's log entry (on S3 `If-None-Match: *`), so two writers never
//! both make one version.
//!
//! Only delta-rs's low-level writer and commit are used: its `write` and
//! `merge` operations need DataFusion, a much larger build, for an
//! overwrite that takes a few lines here. Marts are recomputed whole by
//! every run, so overwrite is the one mode they need.

use std::path::Path;
use std::sync::{Arc, Once};

use deltalake::arrow::array::{Array, RecordBatch, StructArray};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Add, MetadataExt, StructType, Transaction};
use deltalake::logstore::object_store::path::Path as StorePath;
use deltalake::logstore::{
    LogStore, LogStoreFactory, ObjectStoreFactory, ObjectStoreRef, StorageConfig, default_logstore,
    logstore_factories, object_store_factories,
};
use deltalake::operations::create::CreateBuilder;
use deltalake::operations::vacuum::VacuumMode;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaResult, DeltaTable, DeltaTableBuilder, DeltaTableError, ensure_table_uri};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::SchemaChanges;
use crate::engine::{DuckDb, arrow as duck_arrow};
use crate::error::{Error, Result};
use crate::fault;
use crate::lake::Retain;
use crate::marts::Mart;
use crate::object;
use crate::sql;

/// The app id of sluice's `txn` actions.
const APP_ID: &str = "sluice";
/// The commit info key that names the run.
const RUN_ID_KEY: &str = "sluice_run_id";

/// A Delta table a mart is published to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Table {
    /// A local directory or `s3://bucket/path`.
    pub location: String,
    pub schema: SchemaChanges,
    /// How long replaced files are kept (and log entries, for a duration);
    /// vacuumed after each publish.
    pub retain: Option<Retain>,
}

/// The commit a run owes a table, as the run's record holds it.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    /// The run's number in the table's `txn` for [`APP_ID`].
    txn: i64,
    schema: StructType,
    adds: Vec<Add>,
}

/// What [`commit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Committed {
    /// The version made now.
    Now(u64),
    /// The commit had landed before (the run was cut off after it); its
    /// version when the log still tells it.
    Before(Option<u64>),
}

impl Committed {
    pub(crate) fn version(self) -> Option<u64> {
        match self {
            Committed::Now(v) => Some(v),
            Committed::Before(v) => v,
        }
    }
}

/// Writes the data files of `mart` into `table` and returns the commit that
/// will add them, for the run's record. Fails, with nothing visible, when
/// the table's columns differ from the mart's and may not evolve.
pub(super) fn prepare(engine: &DuckDb, mart: &Mart, table: &Table, txn: i64) -> Result<String> {
    let failed = |context: &str| {
        let context = context.to_string();
        move |e: DeltaTableError| table.error(&context, e.to_string())
    };
    let (schema, batches) = engine
        .arrow_batches(&format!("SELECT * FROM marts.{}", sql::ident(&mart.name)))
        .map_err(Error::engine(format!(
            "reading `{}` for `{}`",
            mart.name, table.location
        )))?;
    let (schema, batches) = for_delta(&schema, batches).map_err(|e| table.error("converting the mart", e))?;
    let kernel: StructType = schema
        .as_ref()
        .try_into_kernel()
        .map_err(|e| table.error("converting the mart's columns", e.to_string()))?;
    let runtime = object::runtime(&table.location)?;
    runtime.block_on(async {
        let url = table.url()?;
        if let Some(current) = open(&url).await.map_err(failed("reading the table"))? {
            let current = current.snapshot().map_err(failed("reading the table"))?.schema();
            let changes = differences(&current, &kernel);
            if !changes.is_empty() && table.schema == SchemaChanges::Fixed {
                return Err(Error::DeltaSchema {
                    mart: mart.name.clone(),
                    table: table.location.clone(),
                    changes: changes.join("; "),
                });
            }
        }
        fault::point(&format!("write {}", table.name()))
            .map_err(|e| table.error("writing", e.to_string()))?;
        let mut writer = RecordBatchWriter::try_new(url.as_str(), schema, None, None)
            .map_err(failed("writing the data files"))?;
        for batch in batches {
            writer
                .write(batch)
                .await
                .map_err(failed("writing the data files"))?;
        }
        let adds = writer.flush().await.map_err(failed("writing the data files"))?;
        let pending = Pending {
            txn,
            schema: kernel,
            adds,
        };
        serde_json::to_string(&pending).map_err(|e| table.error("recording the commit", e.to_string()))
    })
}

/// Makes the commit `pending` (from [`prepare`]) in `table` for run
/// `run_id`, unless it was made before; then vacuums what is past `retain`.
pub(crate) fn commit(table: &Table, pending: &str, run_id: &str) -> Result<Committed> {
    let failed = |e: DeltaTableError| table.error("committing", e.to_string());
    let pending: Pending =
        serde_json::from_str(pending).map_err(|e| table.error("reading the run's commit", e.to_string()))?;
    let runtime = object::runtime(&table.location)?;
    let committed = runtime.block_on(async {
        let url = table.url()?;
        let current = open(&url).await.map_err(failed)?;
        if let Some(current) = &current {
            let state = current.snapshot().map_err(failed)?;
            let txn = state
                .transaction_version(current.log_store().as_ref(), APP_ID)
                .await
                .map_err(failed)?;
            if txn == Some(pending.txn) {
                return Ok(Committed::Before(version_of(current, run_id).await));
            }
        }
        let properties = CommitProperties::default()
            .with_metadata([(RUN_ID_KEY.to_string(), serde_json::json!(run_id))])
            .with_application_transaction(Transaction::new(APP_ID, pending.txn));
        fault::point(&format!("commit {}", table.name()))
            .map_err(|e| table.error("committing", e.to_string()))?;
        let version = match current {
            None => {
                let log_store = DeltaTableBuilder::from_url(url.clone())
                    .and_then(|b| b.build_storage())
                    .map_err(failed)?;
                CreateBuilder::new()
                    .with_log_store(log_store)
                    .with_columns(pending.schema.fields().cloned())
                    .with_actions(pending.adds.into_iter().map(Action::Add))
                    .with_configuration(table.properties().into_iter().map(|(k, v)| (k, Some(v))))
                    .with_commit_properties(properties)
                    .with_save_mode(SaveMode::ErrorIfExists)
                    .await
                    .map_err(failed)?
                    .version()
                    .unwrap_or(0)
            }
            Some(current) => {
                let state = current.snapshot().map_err(failed)?;
                let log_store = current.log_store();
                let mut actions = Vec::new();
                let mut metadata = state.metadata().clone();
                if state.schema().as_ref() != &pending.schema {
                    metadata = metadata
                        .with_schema(&pending.schema)
                        .map_err(|e| table.error("committing", e))?;
                }
                for (key, value) in table.properties() {
                    if metadata.configuration().get(key.as_str()) != Some(&value) {
                        metadata = metadata
                            .add_config_key(key.as_str().into(), value)
                            .map_err(|e| table.error("committing", e))?;
                    }
                }
                if &metadata != state.metadata() {
                    actions.push(Action::Metadata(metadata));
                }
                let mut files = state.snapshot().file_views(log_store.as_ref(), None);
                while let Some(file) = files.try_next().await.map_err(failed)? {
                    actions.push(Action::Remove(file.remove_action(true)));
                }
                actions.extend(pending.adds.into_iter().map(Action::Add));
                let operation = DeltaOperation::Write {
                    mode: SaveMode::Overwrite,
                    partition_by: None,
                    predicate: None,
                };
                CommitBuilder::from(properties)
                    .with_actions(actions)
                    .build(Some(state), log_store.clone(), operation)
                    .await
                    .map_err(failed)?
                    .version()
            }
        };
        Ok::<_, Error>(Committed::Now(version))
    })?;
    if let Some(retain) = table.retain {
        // The publish is done: a vacuum that fails is the next one's to do.
        if let Err(e) = runtime.block_on(vacuum(table, retain)) {
            tracing::warn!("Delta table `{}`: vacuum failed: {e}", table.location);
        }
    }
    Ok(committed)
}

/// Loads the current version of `table` into the engine as `marts.<mart>`,
/// for a re-audit: its data files are fetched into `scratch` and read by
/// DuckDB, UTC timestamps as the marts hold them. Returns the version;
/// `None` where there is no table yet.
pub(crate) fn load(engine: &DuckDb, mart: &str, table: &Table, scratch: &Path) -> Result<Option<u64>> {
    let failed = |e: DeltaTableError| table.error("reading the table", e.to_string());
    let fetched = object::runtime(&table.location)?.block_on(async {
        let Some(current) = open(&table.url()?).await.map_err(failed)? else {
            return Ok(None);
        };
        let state = current.snapshot().map_err(failed)?;
        let store = current.object_store();
        let mut files = Vec::new();
        for (i, file) in state.log_data().into_iter().enumerate() {
            let fetch_failed = |e: object_store::Error| table.error("reading the table", e.to_string());
            let got = store.get(&file.object_store_path()).await.map_err(fetch_failed)?;
            let bytes = got.bytes().await.map_err(fetch_failed)?;
            let local = scratch.join(format!("{mart}-{i}.parquet"));
            std::fs::write(&local, &bytes).map_err(|e| Error::io("write", &local, e))?;
            files.push(local);
        }
        Ok::<_, Error>(Some((state.version(), files)))
    })?;
    let Some((version, files)) = fetched else {
        return Ok(None);
    };
    // No files: no rows; the mart loaded from the database is as empty.
    if files.is_empty() {
        return Ok(Some(version));
    }
    let context = || format!("loading `{mart}` from `{}`", table.location);
    let list: Vec<String> = files.iter().map(|f| sql::path(f)).collect();
    let read = format!("read_parquet([{}])", list.join(", "));
    let columns = engine
        .describe(&format!("SELECT * FROM {read}"))
        .map_err(Error::engine(context()))?;
    let select: Vec<String> = columns
        .iter()
        .map(|(name, ty)| match ty.as_str() {
            "TIMESTAMP WITH TIME ZONE" => format!("{0}::TIMESTAMP AS {0}", sql::ident(name)),
            _ => sql::ident(name),
        })
        .collect();
    engine
        .execute(&format!(
            "CREATE OR REPLACE TABLE marts.{} AS SELECT {} FROM {read}",
            sql::ident(mart),
            select.join(", ")
        ))
        .map_err(Error::engine(context()))?;
    Ok(Some(version))
}

/// Removes the data files that no version within `retain` reads (those an
/// overwrite replaced, and those of runs cut off before their commit).
async fn vacuum(table: &Table, retain: Retain) -> DeltaResult<()> {
    let Some(current) = open(&ensure_table_uri(&table.location)?).await? else {
        return Ok(());
    };
    let retention = match retain {
        Retain::Age(age) => chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX),
        // Back to the oldest of the last N runs' versions: the files later
        // versions replaced were removed after it, so it stays whole.
        Retain::Runs(n) => {
            // Vacuums add two commits of their own per run.
            let infos: Vec<_> = current.history(Some(3 * n + 3)).try_collect().await?;
            let runs: Vec<i64> = infos
                .iter()
                .filter(|info| info.info.contains_key(RUN_ID_KEY))
                .filter_map(|info| info.timestamp)
                .take(n)
                .collect();
            match (runs.len() == n, runs.last()) {
                // Files removed by that version itself (deleted at its
                // timestamp) are no longer read: one millisecond less.
                (true, Some(&oldest)) => chrono::Duration::milliseconds(
                    (chrono::Utc::now().timestamp_millis() - oldest - 1).max(0),
                ),
                _ => return Ok(()),
            }
        }
    };
    let (_, metrics) = current
        .vacuum()
        .with_retention_period(retention)
        .with_enforce_retention_duration(false)
        .with_mode(VacuumMode::Full)
        .await?;
    if !metrics.files_deleted.is_empty() {
        tracing::info!(
            "Delta table `{}`: {} files past the retention removed",
            table.location,
            metrics.files_deleted.len()
        );
    }
    Ok(())
}

/// The version whose commit info names `run_id`, among the last 100.
async fn version_of(table: &DeltaTable, run_id: &str) -> Option<u64> {
    let latest = table.version()?;
    let infos: Vec<_> = table.history(Some(100)).try_collect().await.ok()?;
    infos
        .iter()
        .position(|info| info.info.get(RUN_ID_KEY).and_then(|v| v.as_str()) == Some(run_id))
        .and_then(|newer| latest.checked_sub(newer as u64))
}

/// The table at `url`, loaded; `None` where there is none yet.
async fn open(url: &Url) -> DeltaResult<Option<DeltaTable>> {
    let mut table = DeltaTableBuilder::from_url(url.clone())?.build()?;
    match table.load().await {
        Ok(()) => Ok(Some(table)),
        Err(DeltaTableError::NotATable(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// How the table's columns differ from the mart's, one phrase per column.
fn differences(table: &StructType, mart: &StructType) -> Vec<String> {
    let mut out = Vec::new();
    for field in table.fields() {
        match mart.field(field.name()) {
            None => out.push(format!("`{}` ({}) is gone", field.name(), field.data_type())),
            Some(new) if new.data_type() != field.data_type() => out.push(format!(
                "`{}` is {} where the table has {}",
                field.name(),
                new.data_type(),
                field.data_type()
            )),
            Some(_) => {}
        }
    }
    for field in mart.fields().filter(|f| table.field(f.name()).is_none()) {
        out.push(format!("`{}` ({}) is new", field.name(), field.data_type()));
    }
    out
}

impl Table {
    fn url(&self) -> Result<Url> {
        if self.location.starts_with("s3://") {
            register_s3();
        }
        ensure_table_uri(&self.location).map_err(|e| self.error("opening", e.to_string()))
    }

    /// The last component of its location, for fault points.
    fn name(&self) -> &str {
        self.location
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default()
    }

    /// The table properties its settings make: how long the log and
    /// replaced files are kept.
    fn properties(&self) -> Vec<(String, String)> {
        match self.retain {
            Some(Retain::Age(retain)) => {
                let interval = format!("interval {} seconds", retain.as_secs());
                vec![
                    ("delta.logRetentionDuration".into(), interval.clone()),
                    ("delta.deletedFileRetentionDuration".into(), interval),
                ]
            }
            // The log is small: Delta's default (30 days) stands.
            Some(Retain::Runs(_)) | None => Vec::new(),
        }
    }

    fn error(&self, context: &str, message: impl std::fmt::Display) -> Error {
        Error::Delta {
            table: self.location.clone(),
            context: context.to_string(),
            message: object::masked(message.to_string()),
        }
    }
}

/// The mart's batches, crossed from DuckDB's arrow-rs to delta-rs's through
/// the Arrow C Data Interface (two versions of one crate: the C structs are
/// the same), with the types Delta has: times as UTC timestamps in
/// microseconds, unsigned integers widened, text as UTF-8.
fn for_delta(
    schema: &duck_arrow::datatypes::SchemaRef,
    batches: Vec<duck_arrow::record_batch::RecordBatch>,
) -> std::result::Result<(SchemaRef, Vec<RecordBatch>), String> {
    let empty = duck_arrow::record_batch::RecordBatch::new_empty(schema.clone());
    let crossed = cross(empty)?;
    let fields: Vec<Field> = crossed
        .schema()
        .fields()
        .iter()
        .map(|f| {
            let to = delta_type(f.data_type()).unwrap_or_else(|| f.data_type().clone());
            Field::new(f.name(), to, true)
        })
        .collect();
    let target = Arc::new(Schema::new(fields));
    let mut out = Vec::with_capacity(batches.len());
    for batch in batches {
        let batch = cross(batch)?;
        let columns = batch
            .columns()
            .iter()
            .zip(target.fields())
            .map(|(column, field)| match column.data_type() == field.data_type() {
                true => Ok(column.clone()),
                false => cast(column, field.data_type()).map_err(|e| format!("`{}`: {e}", field.name())),
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        out.push(RecordBatch::try_new(target.clone(), columns).map_err(|e| e.to_string())?);
    }
    Ok((target, out))
}

/// The Delta type a column takes where Arrow's differs.
fn delta_type(t: &DataType) -> Option<DataType> {
    Some(match t {
        DataType::Timestamp(_, _) => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        DataType::Date64 => DataType::Date32,
        DataType::UInt8 => DataType::Int16,
        DataType::UInt16 => DataType::Int32,
        DataType::UInt32 => DataType::Int64,
        DataType::UInt64 => DataType::Decimal128(20, 0),
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        _ => return None,
    })
}

/// One batch from DuckDB's arrow-rs to delta-rs's, its buffers shared.
fn cross(batch: duck_arrow::record_batch::RecordBatch) -> std::result::Result<RecordBatch, String> {
    use deltalake::arrow::ffi as to;
    use duck_arrow::ffi as from;
    let data: duck_arrow::array::ArrayData = duck_arrow::array::StructArray::from(batch).into();
    let schema = from::FFI_ArrowSchema::try_from(data.data_type()).map_err(|e| e.to_string())?;
    let array = from::FFI_ArrowArray::new(&data);
    // SAFETY: both are the `#[repr(C)]` structs of the Arrow C Data
    // Interface; the release callbacks travel with them.
    let (array, schema): (to::FFI_ArrowArray, to::FFI_ArrowSchema) = unsafe {
        (
            std::mem::transmute::<from::FFI_ArrowArray, to::FFI_ArrowArray>(array),
            std::mem::transmute::<from::FFI_ArrowSchema, to::FFI_ArrowSchema>(schema),
        )
    };
    // SAFETY: the array was exported just above and matches the schema.
    let data = unsafe { to::from_ffi(array, &schema) }.map_err(|e| e.to_string())?;
    Ok(RecordBatch::from(StructArray::from(data)))
}

/// Delta's S3 support, on sluice's client (credentials and endpoint from
/// `AWS_*`, as for sources); registered once, before the first `s3://` table.
fn register_s3() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let Ok(scheme) = Url::parse("s3://") else { return };
        object_store_factories().insert(scheme.clone(), Arc::new(S3));
        logstore_factories().insert(scheme, Arc::new(S3));
    });
}

struct S3;

impl ObjectStoreFactory for S3 {
    fn parse_url_opts(&self, url: &Url, _: &StorageConfig) -> DeltaResult<(ObjectStoreRef, StorePath)> {
        let bucket = url.host_str().unwrap_or_default();
        let client =
            object::client(url.as_str(), bucket).map_err(|e| DeltaTableError::Generic(e.to_string()))?;
        let path =
            StorePath::from_url_path(url.path()).map_err(|e| DeltaTableError::Generic(e.to_string()))?;
        Ok((Arc::new(client), path))
    }
}

impl LogStoreFactory for S3 {
    fn with_options(
        &self,
        prefixed: ObjectStoreRef,
        root: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        // Commits are put-if-absent, which S3 does (`If-None-Match: *`).
        Ok(default_logstore(prefixed, root, location, options))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deltalake::kernel::{DataType as KernelType, StructField};

    #[test]
    fn every_changed_column_is_named() {
        let table = StructType::try_new([
            StructField::nullable("day", KernelType::DATE),
            StructField::nullable("revenue", KernelType::decimal(18, 2).unwrap()),
            StructField::nullable("orders", KernelType::LONG),
        ])
        .unwrap();
        let mart = StructType::try_new([
            StructField::nullable("day", KernelType::DATE),
            StructField::nullable("revenue", KernelType::DOUBLE),
            StructField::nullable("region", KernelType::STRING),
        ])
        .unwrap();
        assert_eq!(
            differences(&table, &mart),
            [
                "`revenue` is double where the table has decimal(18,2)",
                "`orders` (long) is gone",
                "`region` (string) is new",
            ]
        );
        assert!(differences(&table, &table).is_empty());
    }

    #[test]
    fn types_delta_lacks_are_widened_and_times_are_utc() {
        let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        assert_eq!(
            delta_type(&DataType::Timestamp(TimeUnit::Nanosecond, None)),
            Some(utc.clone())
        );
        assert_eq!(delta_type(&DataType::UInt32), Some(DataType::Int64));
        assert_eq!(delta_type(&DataType::UInt64), Some(DataType::Decimal128(20, 0)));
        assert_eq!(delta_type(&DataType::Decimal128(18, 2)), None);
        assert_eq!(delta_type(&DataType::Int64), None);
    }
}
