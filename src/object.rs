//! Objects in S3-compatible storage (AWS S3, MinIO, anything that speaks its
//! API): the client that sources and the Delta sink share. Sources name
//! `s3://bucket/prefix/`, a key, or a glob; their objects are
//! listed up front like files; each is read as a stream of its bytes as
//! stored (a thread runs the async client and hands chunks over a bounded
//! channel, so memory holds a few chunks), or downloaded to a temp file
//! where DuckDB reads a path (Parquet). Credentials, region and endpoint
//! come from the standard `AWS_*` variables (`AWS_ENDPOINT_URL` for MinIO,
//! path-style requests) and are never printed.

use std::future::Future;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::time::Duration;

use futures::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig};

use crate::error::{Error, Result};

/// A bucket and the client that reaches it.
#[derive(Clone)]
pub(crate) struct Bucket {
    name: String,
    store: Arc<AmazonS3>,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Bucket {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Bucket {}

/// An object a source reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Object {
    /// `s3://bucket/key`: its name in messages and the run record.
    pub url: PathBuf,
    pub bucket: Bucket,
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
}

/// Whether an input names object storage.
pub(crate) fn is_remote(input: &str) -> bool {
    input.starts_with("s3://")
}

/// A runtime for the async client, on the calling thread.
pub(crate) fn runtime(url: &str) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| Error::io("start the object-storage client for", url, e))
}

/// The bucket of `s3://bucket/...`, its client configured from `AWS_*`.
fn bucket(url: &str, name: &str) -> Result<Bucket> {
    Ok(Bucket {
        name: name.to_string(),
        store: Arc::new(client(url, name)?),
    })
}

/// The client of bucket `name`, configured from `AWS_*`; `url` names it in
/// errors. A conditional put (`PutMode::Create`) is S3's `If-None-Match: *`,
/// which the Delta sink commits with.
pub(crate) fn client(url: &str, name: &str) -> Result<AmazonS3> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .or_else(|_| std::env::var("AWS_ENDPOINT"))
        .unwrap_or_default();
    AmazonS3Builder::from_env()
        .with_bucket_name(name)
        .with_retry(RetryConfig {
            max_retries: 3,
            retry_timeout: Duration::from_secs(30),
            ..RetryConfig::default()
        })
        .with_client_options(
            // The client's options carry `allow_http` too: set it here, or
            // they reset it.
            ClientOptions::new()
                .with_allow_http(endpoint.starts_with("http://"))
                .with_timeout(Duration::from_secs(60))
                .with_connect_timeout(Duration::from_secs(5)),
        )
        .build()
        .map_err(|e| failure(url, &e))
}

/// The error for a failed request, its kind told apart for the hint; the
/// secret key is masked should a message ever carry it.
pub(crate) fn failure(url: &str, e: &object_store::Error) -> Error {
    let kind = match e {
        object_store::Error::NotFound { .. } => "not_found",
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
            "denied"
        }
        _ if e.to_string().contains("NoSuchBucket") => "not_found",
        _ => "other",
    };
    Error::ObjectStore {
        url: url.to_string(),
        kind,
        message: masked(e.to_string()),
    }
}

/// `message` with the secret key masked, should it ever carry it.
pub(crate) fn masked(message: String) -> String {
    match std::env::var("AWS_SECRET_ACCESS_KEY") {
        Ok(secret) if !secret.is_empty() => message.replace(&secret, "***"),
        _ => message,
    }
}

/// `s3://bucket/some/prefix`: the bucket, its client configured from
/// `AWS_*`, and the key prefix (no slash at either end).
pub(crate) fn locate(url: &str) -> Result<(Bucket, String)> {
    let rest = url.trim_start_matches("s3://");
    let (name, path) = rest.split_once('/').unwrap_or((rest, ""));
    Ok((bucket(url, name)?, path.trim_matches('/').to_string()))
}

/// A key as the store keeps it: one it listed (already encoded) as it is;
/// any other with the characters S3 advises against percent-encoded, as
/// the client encodes them on the way in.
pub(crate) fn stored(key: &str) -> object_store::path::Path {
    object_store::path::Path::parse(key).unwrap_or_else(|_| object_store::path::Path::from(key))
}

impl Bucket {
    /// `s3://bucket/key`, for messages and manifests.
    pub(crate) fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.name)
    }

    fn run<T>(&self, key: &str, work: impl Future<Output = object_store::Result<T>>) -> Result<T> {
        let url = self.url(key);
        runtime(&url)?.block_on(work).map_err(|e| failure(&url, &e))
    }

    /// Every object under `prefix/` (at any depth): key and size.
    pub(crate) fn list_under(&self, prefix: &str) -> Result<Vec<(String, u64)>> {
        let location = stored(prefix);
        self.run(prefix, async {
            let mut listed = self.store.list(Some(&location));
            let mut found = Vec::new();
            while let Some(meta) = listed.next().await {
                let meta = meta?;
                found.push((meta.location.to_string(), meta.size));
            }
            Ok(found)
        })
    }

    /// The names one level under `prefix/` that hold objects (directories).
    pub(crate) fn dirs_under(&self, prefix: &str) -> Result<Vec<String>> {
        let location = stored(prefix);
        let listed = self.run(prefix, self.store.list_with_delimiter(Some(&location)))?;
        Ok(listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(String::from))
            .collect())
    }

    /// The object's bytes, whole (a small one: a manifest).
    pub(crate) fn get(&self, key: &str) -> Result<bytes::Bytes> {
        let location = stored(key);
        self.run(key, async { self.store.get(&location).await?.bytes().await })
    }

    /// Writes `bytes` as a new object; an object already there is an error
    /// (`If-None-Match: *`), so a name is never written twice.
    pub(crate) fn create(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        let location = stored(key);
        let options = object_store::PutOptions {
            mode: object_store::PutMode::Create,
            ..Default::default()
        };
        self.run(key, self.store.put_opts(&location, bytes.into(), options))
            .map(|_| ())
    }

    /// Uploads a local file in parts (8 MiB, four in flight), so memory
    /// holds a few parts whatever the file's size.
    pub(crate) fn upload(&self, key: &str, file: &Path) -> Result<()> {
        let mut reader = std::fs::File::open(file).map_err(|e| Error::io("read", file, e))?;
        let location = stored(key);
        let url = self.url(key);
        runtime(&url)?.block_on(async {
            let upload = self
                .store
                .put_multipart(&location)
                .await
                .map_err(|e| failure(&url, &e))?;
            let mut parts = object_store::WriteMultipart::new_with_chunk_size(upload, 8 << 20);
            let mut buf = vec![0; 1 << 20];
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) => {
                        let _ = parts.abort().await;
                        return Err(Error::io("read", file, e));
                    }
                };
                if let Err(e) = parts.wait_for_capacity(4).await {
                    return Err(failure(&url, &e));
                }
                parts.write(&buf[..n]);
            }
            parts.finish().await.map_err(|e| failure(&url, &e))
        })?;
        Ok(())
    }

    /// Copies an object within the bucket (on the server: no bytes move here).
    pub(crate) fn copy(&self, from: &str, to: &str) -> Result<()> {
        let (from_location, to_location) = (stored(from), stored(to));
        self.run(to, self.store.copy(&from_location, &to_location))
    }

    /// Downloads an object to `target` (through a temp file beside it, so
    /// `target` is whole or absent).
    pub(crate) fn download(&self, key: &str, size: u64, target: &Path) -> Result<()> {
        let dir = target.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
        let object = Object {
            url: PathBuf::from(self.url(key)),
            bucket: self.clone(),
            key: key.to_string(),
            size,
            etag: None,
        };
        object
            .download(dir)?
            .persist(target)
            .map_err(|e| Error::io("write", target, e.error))
    }

    /// Removes objects, up to a thousand per request (S3's DeleteObjects);
    /// one already gone is not an error.
    pub(crate) fn delete(&self, keys: &[String]) -> Result<()> {
        let Some(first) = keys.first() else {
            return Ok(());
        };
        let locations: Vec<object_store::Result<object_store::path::Path>> =
            keys.iter().map(|key| Ok(stored(key))).collect();
        self.run(first, async {
            let mut deleted = self.store.delete_stream(futures::stream::iter(locations).boxed());
            while let Some(result) = deleted.next().await {
                match result {
                    Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })
    }
}

/// The objects `url` names: every object under a prefix, one key, or the
/// keys matching a glob (`s3://bucket/landing/*.csv.gz`), sorted by key.
pub(crate) fn list(url: &str) -> Result<Vec<Object>> {
    let rest = url.trim_start_matches("s3://");
    let (name, path) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket = bucket(url, name)?;
    let glob = path.contains(['*', '?', '[']);
    let literal = if glob {
        &path[..path.find(['*', '?', '[']).unwrap_or(path.len())]
    } else {
        path
    };
    // Listing is by whole path segments: list the directory of the prefix.
    let dir = literal.rfind('/').map_or("", |i| &literal[..i]);
    let pattern = glob::Pattern::new(path).map_err(|e| Error::BadGlob {
        pattern: url.to_string(),
        message: e.to_string(),
    })?;
    let prefix = (!dir.is_empty()).then(|| object_store::path::Path::from(dir));
    let metas = runtime(url)?.block_on(async {
        let mut listed = bucket.store.list(prefix.as_ref());
        let mut metas = Vec::new();
        while let Some(meta) = listed.next().await {
            metas.push(meta.map_err(|e| failure(url, &e))?);
        }
        Ok::<_, Error>(metas)
    })?;
    let mut objects: Vec<Object> = metas
        .into_iter()
        .filter(|m| {
            let key = m.location.as_ref();
            let name = key.rsplit('/').next().unwrap_or(key);
            if name.starts_with('.') {
                return false;
            }
            match (glob, path.is_empty() || path.ends_with('/')) {
                (true, _) => pattern.matches(key),
                (false, true) => key.starts_with(path),
                // A key, or a prefix without its slash.
                (false, false) => key == path || key.starts_with(&format!("{path}/")),
            }
        })
        .map(|m| Object {
            url: PathBuf::from(format!("s3://{name}/{}", m.location)),
            bucket: bucket.clone(),
            key: m.location.to_string(),
            size: m.size,
            etag: m.e_tag.map(|e| e.trim_matches('"').to_string()),
        })
        .collect();
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(objects)
}

impl Object {
    /// Its bytes as stored, streamed: a thread fetches them while landing reads.
    pub(crate) fn open(&self) -> Result<Box<dyn Read + Send>> {
        let (tx, rx) = sync_channel::<io::Result<bytes::Bytes>>(4);
        let (store, key, url) = (
            self.bucket.store.clone(),
            self.key.clone(),
            self.url.display().to_string(),
        );
        let rt = runtime(&url)?;
        std::thread::spawn(move || {
            rt.block_on(async {
                let location = stored(&key);
                let mut stream = match store.get(&location).await {
                    Ok(got) => got.into_stream(),
                    Err(e) => {
                        let _ = tx.send(Err(io::Error::other(failure(&url, &e).to_string())));
                        return;
                    }
                };
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|e| io::Error::other(failure(&url, &e).to_string()));
                    let stop = chunk.is_err();
                    // The reader is gone: landing stopped, so does the fetch.
                    if tx.send(chunk).is_err() || stop {
                        return;
                    }
                }
            });
        });
        Ok(Box::new(Chunks {
            rx,
            chunk: bytes::Bytes::new(),
        }))
    }

    /// A local copy of its bytes, for readers that need a path (DuckDB's
    /// Parquet reader); removed when dropped.
    pub(crate) fn download(&self, dir: &Path) -> Result<tempfile::TempPath> {
        let mut file = tempfile::Builder::new()
            .prefix(".sluice-download-")
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(|e| Error::io("create a temp file in", dir, e))?;
        io::copy(&mut self.open()?, file.as_file_mut()).map_err(|e| Error::io("download", &self.url, e))?;
        Ok(file.into_temp_path())
    }
}

/// A stream of chunks as `Read`.
struct Chunks {
    rx: Receiver<io::Result<bytes::Bytes>>,
    chunk: bytes::Bytes,
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.recv() {
                Ok(chunk) => self.chunk = chunk?,
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}
