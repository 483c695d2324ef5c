//! HTTP sources: pages of JSON records from an API (`sources[].http`).
//!
//! Each page is fetched with retries (connection errors, 429 and 5xx, with
//! exponential backoff and jitter, honouring `Retry-After` and GitHub's
//! `X-RateLimit-*`), its records found by a path of keys, and the next page
//! found by the pagination the source declares. Pages are handed to landing
//! one at a time as they arrive, so memory holds one page. Secrets come from
//! the environment and are masked in every message.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::cursor::Cursor;
use crate::error::{Error, Result};

/// Where an HTTP source's records come from.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HttpSpec {
    /// The first page's URL. `{name}` stands for the variable `name`
    /// (declared in `vars`, set with `--var name=value`).
    pub url: String,
    /// Query parameters of the first page (of every page with `page`,
    /// `offset` or `cursor` paging); values may use `{name}` variables.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Request headers (`Accept: application/vnd.github+json`); values may
    /// use variables. Credentials go in `auth`, never here.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Where a page holds its records: a path of keys (`items`,
    /// `data.rows`). Default: the body is the array of records.
    pub records: Option<String>,
    /// How the next page is found. Default: `link`.
    #[serde(default)]
    pub paginate: Paginate,
    /// Credentials, from environment variables.
    pub auth: Option<AuthSpec>,
    /// The longest a request may take (connect, send, receive). Default: `30s`.
    pub timeout: Option<String>,
    /// Retries of a page on connection errors, 429 and 5xx.
    #[serde(default)]
    pub retry: RetrySpec,
    /// Pages a run may fetch; more stops the run (exit 3) rather than land
    /// part of the data. Default: 1000.
    #[schemars(range(min = 1))]
    pub max_pages: Option<u64>,
    /// The longest the whole fetch may take. Default: `30m`.
    pub max_time: Option<String>,
}

/// How the next page is found:
/// - `link`: the RFC 8288 `Link: <url>; rel="next"` header (GitHub and many
///   others); no such header ends the fetch.
/// - `none`: one page.
/// - `next_url`: a field of the body (a path of keys) holding the next page's URL.
/// - `cursor`: a field of the body holding a cursor, sent as the query parameter `param`.
/// - `page`: page numbers in the query parameter `param`, from `start` (1),
///   until a page with no records.
/// - `offset`: record offsets in the query parameter `param`, from `start`
///   (0), until a page with no records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Paginate {
    #[default]
    Link,
    None,
    NextUrl(String),
    Cursor {
        field: String,
        param: String,
    },
    Page {
        param: String,
        #[serde(default = "one")]
        start: u64,
    },
    Offset {
        param: String,
        #[serde(default)]
        start: u64,
    },
}

fn one() -> u64 {
    1
}

/// Credentials: the names of the environment variables that hold them.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthSpec {
    /// The variable holding a bearer token (`Authorization: Bearer ...`).
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"))]
    pub bearer: Option<String>,
    /// The variables holding a user name and a password (`Authorization: Basic ...`).
    pub basic: Option<BasicSpec>,
    /// When the variables are unset, send no credentials rather than stop
    /// (exit 2): for public APIs that only limit anonymous callers more.
    #[serde(default)]
    pub optional: bool,
}

/// Basic auth: the variables holding the user name and the password.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BasicSpec {
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"))]
    pub username: String,
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"))]
    pub password: String,
}

/// How a page is retried.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetrySpec {
    /// Retries after the first attempt. Default: 5.
    #[schemars(range(max = 100))]
    pub attempts: Option<u32>,
    /// The first wait; each next one doubles, with jitter. Default: `1s`.
    pub backoff: Option<String>,
    /// The longest wait sluice accepts, whether its own or asked for by the
    /// API (`Retry-After`, a rate limit's reset); a longer one stops the run
    /// (exit 3). Default: `5m`.
    pub max_wait: Option<String>,
}

impl HttpSpec {
    /// The durations it gives, each with its key, parsed: what `sluice.yaml`
    /// validation reports.
    pub(crate) fn durations(&self) -> Vec<(&'static str, Result<Duration, String>)> {
        [
            ("timeout", self.timeout.as_deref()),
            ("max_time", self.max_time.as_deref()),
            ("retry/backoff", self.retry.backoff.as_deref()),
            ("retry/max_wait", self.retry.max_wait.as_deref()),
        ]
        .into_iter()
        .filter_map(|(key, text)| Some((key, duration(text?))))
        .collect()
    }

    /// The `{name}` placeholders of its URL, parameters and headers.
    pub(crate) fn placeholders(&self) -> Vec<(String, String)> {
        let mut found = Vec::new();
        let mut scan = |at: String, text: &str| {
            for name in placeholders(text) {
                found.push((at.clone(), name));
            }
        };
        scan("url".into(), &self.url);
        for (k, v) in &self.params {
            scan(format!("params/{k}"), v);
        }
        for (k, v) in &self.headers {
            scan(format!("headers/{k}"), v);
        }
        found
    }
}

/// A duration as `sluice.yaml` writes it: `30s`, `5m`, `1h 30m`.
fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("`{text}` is not a duration such as `30s` or `5m` ({e})"))
}

/// The names between braces in `text`: `{org}` gives `org`.
fn placeholders(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        names.push(after[..close].to_string());
        rest = &after[close + 1..];
    }
    names
}

/// `text` with each `{name}` replaced by its value.
fn fill(text: &str, vars: &BTreeMap<String, String>) -> String {
    vars.iter().fold(text.to_string(), |t, (name, value)| {
        t.replace(&format!("{{{name}}}"), value)
    })
}

/// An HTTP source ready to fetch: variables filled in, secrets read.
#[derive(Clone)]
pub(crate) struct Http {
    url: String,
    params: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    /// The `Authorization` header's value, if any.
    authorization: Option<String>,
    /// The secret values, masked wherever a message could show them.
    secrets: Vec<String>,
    records: Vec<String>,
    paginate: Paginate,
    timeout: Duration,
    attempts: u32,
    backoff: Duration,
    max_wait: Duration,
    max_pages: u64,
    max_time: Duration,
    /// The source's cursor, when it is incremental.
    cursor: Option<Cursor>,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("url", &self.url)
            .field("authorization", &self.authorization.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

impl Http {
    /// Resolves `spec` for source `source` with the run's variables and the
    /// environment `env` (a lookup, so tests need not touch the process's).
    pub(crate) fn new(
        source: &str,
        spec: &HttpSpec,
        vars: &BTreeMap<String, String>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let parsed = |text: &Option<String>, default: Duration| {
            text.as_deref().and_then(|t| duration(t).ok()).unwrap_or(default)
        };
        let secret = |name: &str| env(name).filter(|v| !v.is_empty());
        let missing = |names: Vec<&str>| Error::MissingSecret {
            source_name: source.to_string(),
            variables: names.into_iter().map(String::from).collect(),
        };
        let (authorization, secrets) = match &spec.auth {
            None => (None, Vec::new()),
            Some(auth) => {
                let found = match (&auth.bearer, &auth.basic) {
                    (Some(var), _) => secret(var)
                        .map(|token| (format!("Bearer {token}"), vec![token]))
                        .ok_or_else(|| missing(vec![var.as_str()])),
                    (None, Some(basic)) => match (secret(&basic.username), secret(&basic.password)) {
                        (Some(user), Some(password)) => {
                            use base64::Engine as _;
                            let encoded = base64::engine::general_purpose::STANDARD
                                .encode(format!("{user}:{password}"));
                            Ok((format!("Basic {encoded}"), vec![password, encoded]))
                        }
                        _ => Err(missing(vec![basic.username.as_str(), basic.password.as_str()])),
                    },
                    (None, None) => Ok((String::new(), Vec::new())),
                };
                match found {
                    Ok((header, secrets)) if !header.is_empty() => (Some(header), secrets),
                    Ok(_) => (None, Vec::new()),
                    Err(_) if auth.optional => {
                        tracing::warn!(
                            "source `{source}`: no credentials in the environment; fetching without them"
                        );
                        (None, Vec::new())
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        Ok(Http {
            url: fill(&spec.url, vars),
            params: spec
                .params
                .iter()
                .map(|(k, v)| (k.clone(), fill(v, vars)))
                .collect(),
            headers: spec
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), fill(v, vars)))
                .collect(),
            authorization,
            secrets,
            records: spec
                .records
                .iter()
                .flat_map(|p| p.split('.'))
                .filter(|k| !k.is_empty())
                .map(String::from)
                .collect(),
            paginate: spec.paginate.clone(),
            timeout: parsed(&spec.timeout, Duration::from_secs(30)),
            attempts: spec.retry.attempts.unwrap_or(5),
            backoff: parsed(&spec.retry.backoff, Duration::from_secs(1)),
            max_wait: parsed(&spec.retry.max_wait, Duration::from_secs(300)),
            max_pages: spec.max_pages.unwrap_or(1000),
            max_time: parsed(&spec.max_time, Duration::from_secs(1800)),
            cursor: None,
        })
    }

    /// Reads incrementally from `cursor`: its query parameter goes with the
    /// request, older records are dropped.
    pub(crate) fn set_cursor(&mut self, cursor: Cursor) {
        if let Some((param, value)) = cursor.query() {
            self.params.retain(|(k, _)| *k != param);
            self.params.push((param, value));
        }
        self.cursor = Some(cursor);
    }

    /// `text` with every secret, and the values of query parameters whose
    /// names say they are secret, replaced by `***`.
    pub(crate) fn mask(&self, text: &str) -> String {
        let mut text = self
            .secrets
            .iter()
            .fold(text.to_string(), |t, s| t.replace(s.as_str(), "***"));
        for key in [
            "token",
            "access_token",
            "api_key",
            "apikey",
            "key",
            "secret",
            "password",
            "sig",
            "signature",
        ] {
            for sep in ['?', '&'] {
                let needle = format!("{sep}{key}=");
                let mut from = 0;
                while let Some(at) = text[from..].to_ascii_lowercase().find(&needle) {
                    let start = from + at + needle.len();
                    let end = text[start..]
                        .find(['&', ' ', '`', '#'])
                        .map_or(text.len(), |e| start + e);
                    text.replace_range(start..end, "***");
                    from = start + 3;
                }
            }
        }
        text
    }

    /// The URL of a page that `paginate` numbers (page, offset, cursor), or
    /// the first page: the source's URL with its parameters and `extra`.
    fn url_with(&self, extra: Option<(&str, String)>) -> String {
        let mut url = self.url.clone();
        let params = self
            .params
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .filter(|(k, _)| extra.as_ref().is_none_or(|(e, _)| e != k))
            .chain(extra.clone());
        for (k, v) in params {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&encode(k));
            url.push('=');
            url.push_str(&encode(&v));
        }
        url
    }

    /// Fetches every page, in order, handing each to `on_page` as it
    /// arrives; returns the cursor it reached, for an incremental source.
    pub(crate) fn fetch(
        &self,
        source: &str,
        on_page: &mut dyn FnMut(Page) -> Result<()>,
    ) -> Result<Option<Cursor>> {
        let mut cursor = self.cursor.clone();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(self.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        let started = Instant::now();
        let first = match &self.paginate {
            Paginate::Page { param, start } | Paginate::Offset { param, start } => {
                self.url_with(Some((param.as_str(), start.to_string())))
            }
            _ => self.url_with(None),
        };
        let mut next = Some(first);
        let mut number = 0u64;
        let mut offset = match &self.paginate {
            Paginate::Offset { start, .. } => *start,
            _ => 0,
        };
        while let Some(url) = next.take() {
            number += 1;
            let limit = |what: String| Error::HttpLimit {
                source_name: source.to_string(),
                url: self.mask(&url),
                what,
            };
            if number > self.max_pages {
                return Err(limit(format!("more than `max_pages` ({}) pages", self.max_pages)));
            }
            if started.elapsed() > self.max_time {
                return Err(limit(format!(
                    "more than `max_time` ({})",
                    humantime::format_duration(self.max_time)
                )));
            }
            let response = self.get(&agent, source, &url, started)?;
            let bad_page = |problem: String| Error::HttpPage {
                url: self.mask(&url),
                problem: self.mask(&problem),
            };
            let body = std::str::from_utf8(&response.body)
                .map_err(|e| bad_page(format!("the body is not UTF-8 text ({e})")))?;
            let root: &RawValue = serde_json::from_str(body)
                .map_err(|e| bad_page(format!("the body is not JSON ({e}): {}", excerpt(body))))?;
            let records = records_at(root, &self.records).map_err(bad_page)?;
            let count = records.len() as u64;
            next = match &self.paginate {
                Paginate::None => None,
                Paginate::Link => response.link_next.map(|n| join(&url, &n)),
                Paginate::NextUrl(path) => text_at(root, path).map_err(bad_page)?.map(|n| join(&url, &n)),
                Paginate::Cursor { field, param } => match text_at(root, field).map_err(bad_page)? {
                    Some(cursor) if count > 0 => Some(self.url_with(Some((param.as_str(), cursor)))),
                    _ => None,
                },
                Paginate::Page { param, start } => {
                    (count > 0).then(|| self.url_with(Some((param.as_str(), (start + number).to_string()))))
                }
                Paginate::Offset { param, .. } => {
                    offset += count;
                    (count > 0).then(|| self.url_with(Some((param.as_str(), offset.to_string()))))
                }
            };
            let mut lines = String::with_capacity(body.len());
            let mut older = false;
            for record in records {
                if let Some(cursor) = &mut cursor {
                    let value = serde_json::from_str::<Object>(record.get()).ok().and_then(|o| {
                        o.get(cursor.column.as_str())
                            .map(|v| v.get().trim_matches('"').to_string())
                    });
                    if !cursor.keep(value.as_deref()) {
                        older = true;
                        continue;
                    }
                }
                lines.push_str(&one_line(record.get()));
                lines.push('\n');
            }
            // Sorted newest first: what follows is older still.
            if older && cursor.as_ref().is_some_and(|c| c.newest_first) {
                next = None;
            }
            tracing::debug!(source, page = number, records = count, "fetched a page");
            on_page(Page {
                url: self.mask(&url),
                number,
                body: response.body.clone(),
                records: lines,
            })?;
            if let (Some(wait), Some(_)) = (response.rate_limited_for, &next) {
                self.pause(&url, wait, "the rate limit's reset")?;
            }
        }
        Ok(cursor)
    }

    /// One page, retried on connection errors, 429 and 5xx.
    fn get(&self, agent: &ureq::Agent, source: &str, url: &str, started: Instant) -> Result<Fetched> {
        let mut attempt = 0;
        loop {
            let mut request = agent.get(url);
            for (k, v) in &self.headers {
                request = request.header(k.as_str(), v.as_str());
            }
            if let Some(value) = &self.authorization {
                request = request.header("Authorization", value.as_str());
            }
            let failure = match request.call() {
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    let header = |name: &str| {
                        response
                            .headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string)
                    };
                    let remaining =
                        header("x-ratelimit-remaining").and_then(|v| v.trim().parse::<u64>().ok());
                    let reset = header("x-ratelimit-reset")
                        .and_then(|v| v.trim().parse::<i64>().ok())
                        .map(until_epoch);
                    let retry_after = header("retry-after").and_then(|v| retry_after(&v));
                    let link_next = header("link").and_then(|v| link_next(&v));
                    let body = response
                        .body_mut()
                        .with_config()
                        .limit(256 << 20)
                        .read_to_vec()
                        .map_err(|e| self.transport(url, &e));
                    let exhausted = remaining == Some(0);
                    match status {
                        200..=299 => {
                            return Ok(Fetched {
                                body: body?,
                                link_next,
                                rate_limited_for: if exhausted { reset } else { None },
                            });
                        }
                        429 | 500..=599 => {
                            Failure::Status(status, retry_after.or(reset.filter(|_| exhausted)))
                        }
                        403 if exhausted => Failure::Status(status, retry_after.or(reset)),
                        _ => {
                            let text = body
                                .map(|b| String::from_utf8_lossy(&b).into_owned())
                                .unwrap_or_default();
                            return Err(Error::HttpStatus {
                                url: self.mask(url),
                                status,
                                excerpt: self.mask(&excerpt(&text)),
                            });
                        }
                    }
                }
                Err(e) if retryable(&e) => Failure::Transport(self.mask(&e.to_string())),
                Err(e) => return Err(self.transport(url, &e)),
            };
            if attempt >= self.attempts {
                return Err(Error::HttpRetries {
                    url: self.mask(url),
                    attempts: attempt + 1,
                    last: match failure {
                        Failure::Status(status, _) => format!("HTTP {status}"),
                        Failure::Transport(message) => message,
                    },
                });
            }
            let (wait, why) = match &failure {
                Failure::Status(_, Some(asked)) => (*asked, "the API's Retry-After or rate-limit reset"),
                _ => (self.backoff_for(attempt), "the backoff"),
            };
            if started.elapsed() + wait > self.max_time {
                return Err(Error::HttpLimit {
                    source_name: source.to_string(),
                    url: self.mask(url),
                    what: format!(
                        "more than `max_time` ({}) with the next retry",
                        humantime::format_duration(self.max_time)
                    ),
                });
            }
            tracing::warn!(
                "{}: {}; retrying in {} ({} of {})",
                self.mask(url),
                match &failure {
                    Failure::Status(status, _) => format!("HTTP {status}"),
                    Failure::Transport(message) => message.clone(),
                },
                humantime::format_duration(round(wait)),
                attempt + 1,
                self.attempts
            );
            self.pause(url, wait, why)?;
            attempt += 1;
        }
    }

    /// The wait before retry `attempt` (0-based): the backoff doubled per
    /// attempt, with "full jitter" (a random share of it, at least half), so
    /// that many clients do not retry in step.
    fn backoff_for(&self, attempt: u32) -> Duration {
        let full = self.backoff.saturating_mul(1u32 << attempt.min(16));
        full.mul_f64(0.5 + fastrand::f64() / 2.0)
    }

    /// Sleeps for `wait`, unless it is beyond `max_wait`: then the run stops.
    fn pause(&self, url: &str, wait: Duration, why: &str) -> Result<()> {
        if wait > self.max_wait {
            return Err(Error::HttpWait {
                url: self.mask(url),
                wait: humantime::format_duration(round(wait)).to_string(),
                max_wait: humantime::format_duration(self.max_wait).to_string(),
                why: why.to_string(),
            });
        }
        std::thread::sleep(wait);
        Ok(())
    }

    fn transport(&self, url: &str, e: &ureq::Error) -> Error {
        Error::HttpTransport {
            url: self.mask(url),
            message: self.mask(&e.to_string()),
        }
    }
}

/// A failed attempt that may be retried.
enum Failure {
    /// An HTTP status, and the wait the API asked for.
    Status(u16, Option<Duration>),
    Transport(String),
}

/// A page as it arrived.
struct Fetched {
    body: Vec<u8>,
    link_next: Option<String>,
    /// The wait until the rate limit resets, when it is used up.
    rate_limited_for: Option<Duration>,
}

/// One page, for landing.
pub(crate) struct Page {
    /// Its URL, secrets masked.
    pub url: String,
    /// 1 for the first page.
    pub number: u64,
    /// The body as it arrived (its size and SHA-256 are the page's provenance).
    pub body: Vec<u8>,
    /// Its records, one JSON text per line.
    pub records: String,
}

/// Connection trouble and timeouts pass; a bad URL or TLS setup does not.
fn retryable(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound
            | ureq::Error::Protocol(_)
    )
}

/// Durations to the second in messages.
fn round(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs_f64().ceil() as u64)
}

/// The wait until a Unix time (`X-RateLimit-Reset`), at least a second.
fn until_epoch(epoch: i64) -> Duration {
    let now = chrono::Utc::now().timestamp();
    Duration::from_secs(epoch.saturating_sub(now).max(1) as u64)
}

/// `Retry-After`: seconds, or an HTTP date.
fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some(until_epoch(at.timestamp()))
}

/// The `rel="next"` target of an RFC 8288 `Link` header.
fn link_next(value: &str) -> Option<String> {
    value.split(',').find_map(|link| {
        let (target, params) = link.split_once(';')?;
        let next = params.split(';').any(|p| {
            let p = p.trim();
            p.strip_prefix("rel=").is_some_and(|r| {
                r.trim_matches('"')
                    .split_whitespace()
                    .any(|r| r.eq_ignore_ascii_case("next"))
            })
        });
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        next.then(|| target.to_string())
    })
}

/// `next` against the page it came from: absolute, from the root, or relative.
fn join(base: &str, next: &str) -> String {
    if next.contains("://") {
        return next.to_string();
    }
    let origin_end = base
        .find("://")
        .and_then(|s| base[s + 3..].find('/').map(|p| s + 3 + p))
        .unwrap_or(base.len());
    if next.starts_with('/') {
        return format!("{}{next}", &base[..origin_end]);
    }
    let path = base.split(['?', '#']).next().unwrap_or(base);
    let dir = path
        .rfind('/')
        .filter(|&i| i >= origin_end)
        .map_or(path, |i| &path[..=i]);
    if next.starts_with('?') {
        format!("{path}{next}")
    } else if dir.ends_with('/') {
        format!("{dir}{next}")
    } else {
        format!("{dir}/{next}")
    }
}

/// A query component, percent-encoded (RFC 3986 unreserved characters kept).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The start of a body, for a message.
fn excerpt(body: &str) -> String {
    let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &flat[..i]),
        None => flat,
    }
}

type Object<'a> = HashMap<Cow<'a, str>, &'a RawValue>;

/// The value at a path of keys, `None` where a key is absent or null.
fn value_at<'a>(root: &'a RawValue, path: &[String]) -> Result<Option<&'a RawValue>, String> {
    let mut value = root;
    for (depth, key) in path.iter().enumerate() {
        let object: Object = serde_json::from_str(value.get()).map_err(|_| {
            format!(
                "`{}` is not an object, so it has no `{key}`",
                if depth == 0 {
                    "the body".to_string()
                } else {
                    path[..depth].join(".")
                }
            )
        })?;
        match object.get(key.as_str()) {
            Some(v) if v.get() != "null" => value = v,
            _ => return Ok(None),
        }
    }
    Ok(Some(value))
}

/// The keys of a JSON object, sorted and joined, for a message (none when
/// it is not an object).
fn keys_of(value: &RawValue) -> String {
    let mut keys: Vec<String> = serde_json::from_str::<Object>(value.get())
        .map(|o| o.keys().map(|k| k.to_string()).collect())
        .unwrap_or_default();
    keys.sort();
    keys.join(", ")
}

/// The records of a page: the array at `path`.
fn records_at<'a>(root: &'a RawValue, path: &[String]) -> Result<Vec<&'a RawValue>, String> {
    let where_ = || {
        if path.is_empty() {
            "the body".to_string()
        } else {
            format!("`{}`", path.join("."))
        }
    };
    let Some(value) = value_at(root, path)? else {
        return Err(format!(
            "the page has no records at {} (its keys: {})",
            where_(),
            keys_of(root)
        ));
    };
    serde_json::from_str::<Vec<&RawValue>>(value.get()).map_err(|_| {
        let hint = if path.is_empty() && value.get().trim_start().starts_with('{') {
            format!(
                ": set `records` to the key that holds them (its keys: {})",
                keys_of(value)
            )
        } else {
            String::new()
        };
        format!("{} is not an array of records{hint}", where_())
    })
}

/// A text (or number) at a dot path, for a next URL or a cursor; empty is none.
fn text_at(root: &RawValue, path: &str) -> Result<Option<String>, String> {
    let keys: Vec<String> = path.split('.').map(String::from).collect();
    Ok(value_at(root, &keys)?.and_then(|v| {
        let text = v.get();
        let value = if text.starts_with('"') {
            serde_json::from_str::<String>(text).ok()?
        } else {
            text.to_string()
        };
        (!value.is_empty()).then_some(value)
    }))
}

/// A JSON text on one line: whitespace outside strings removed only when it
/// holds a line break, so numbers keep their text (`12.30` stays `12.30`).
fn one_line(json: &str) -> Cow<'_, str> {
    if !json.contains(['\n', '\r']) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> &RawValue {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn link_headers_name_the_next_page() {
        let github = "<https://api.github.com/orgs/x/repos?page=2>; rel=\"next\", <https://api.github.com/orgs/x/repos?page=5>; rel=\"last\"";
        assert_eq!(
            link_next(github).as_deref(),
            Some("https://api.github.com/orgs/x/repos?page=2")
        );
        assert_eq!(link_next("<https://a/?page=1>; rel=\"prev first\""), None);
        assert_eq!(
            link_next("<https://a/?p=3>; rel=\"last next\"").as_deref(),
            Some("https://a/?p=3")
        );
        assert_eq!(link_next("garbage"), None);
    }

    #[test]
    fn next_urls_resolve_against_the_page() {
        let base = "http://127.0.0.1:8080/api/v1/items?page=1";
        assert_eq!(join(base, "https://other/x"), "https://other/x");
        assert_eq!(
            join(base, "/api/v1/items?page=2"),
            "http://127.0.0.1:8080/api/v1/items?page=2"
        );
        assert_eq!(join(base, "?page=2"), "http://127.0.0.1:8080/api/v1/items?page=2");
        assert_eq!(
            join(base, "more?page=2"),
            "http://127.0.0.1:8080/api/v1/more?page=2"
        );
        assert_eq!(join("http://h", "/x"), "http://h/x");
    }

    #[test]
    fn records_are_found_by_their_path_and_a_wrong_path_says_what_is_there() {
        let body = raw(r#"{"data": {"items": [{"id": 1}, {"id": 2}]}, "next": null}"#);
        let path = |p: &str| p.split('.').map(String::from).collect::<Vec<_>>();
        assert_eq!(records_at(body, &path("data.items")).unwrap().len(), 2);
        assert_eq!(
            records_at(body, &path("items")).unwrap_err(),
            "the page has no records at `items` (its keys: data, next)"
        );
        assert_eq!(
            records_at(body, &[]).unwrap_err(),
            "the body is not an array of records: set `records` to the key that holds them (its keys: data, next)"
        );
        assert_eq!(records_at(raw("[]"), &[]).unwrap().len(), 0);
        assert_eq!(text_at(body, "next").unwrap(), None);
        assert_eq!(
            text_at(raw(r#"{"c": "abc"}"#), "c").unwrap().as_deref(),
            Some("abc")
        );
        assert_eq!(text_at(raw(r#"{"c": 42}"#), "c").unwrap().as_deref(), Some("42"));
    }

    #[test]
    fn records_keep_their_text_on_one_line() {
        assert_eq!(one_line("{\"a\": 12.30}"), "{\"a\": 12.30}");
        assert_eq!(
            one_line("{\n  \"a\": 12.30,\n  \"b\": \"x \\\" y\\n\"\n}"),
            "{\"a\":12.30,\"b\":\"x \\\" y\\n\"}"
        );
    }

    #[test]
    fn secrets_never_show() {
        let spec: HttpSpec = serde_json::from_value(serde_json::json!({
            "url": "http://h/{org}/repos", "auth": {"bearer": "TOKEN"}, "params": {"per_page": "100"}
        }))
        .unwrap();
        let vars = BTreeMap::from([("org".to_string(), "duckdb".to_string())]);
        let env = |name: &str| (name == "TOKEN").then(|| "s3cr3t".to_string());
        let http = Http::new("repos", &spec, &vars, &env).unwrap();
        assert_eq!(http.url_with(None), "http://h/duckdb/repos?per_page=100");
        assert_eq!(
            http.mask("http://h/?a=1&api_key=abc&token=s3cr3t2 said s3cr3t"),
            "http://h/?a=1&api_key=***&token=*** said ***"
        );
        assert!(!format!("{http:?}").contains("s3cr3t"));
        let none = |_: &str| -> Option<String> { None };
        assert!(matches!(
            Http::new("repos", &spec, &vars, &none),
            Err(Error::MissingSecret { .. })
        ));
        assert_eq!(
            Http::new("repos", &spec, &vars, &none).unwrap_err().to_string(),
            "source `repos` needs the environment variable TOKEN, which is not set"
        );
    }

    #[test]
    fn placeholders_and_parameters() {
        assert_eq!(placeholders("http://h/{org}/x?{a}"), ["org", "a"]);
        assert_eq!(encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert!(retry_after("120").is_some_and(|d| d == Duration::from_secs(120)));
        assert!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT").is_some_and(|d| d == Duration::from_secs(1)));
        assert_eq!(retry_after("soon"), None);
    }
}
