//! YAML → JSON with positions. Config files are validated as JSON (JSON Schema,
//! then serde); errors point at JSON Pointers, and this map turns each pointer
//! back into the line of the YAML file, so a message can say `checks/x.yaml:12`.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A parsed document and the 1-based line of every node, by JSON Pointer.
#[derive(Debug, Clone)]
pub(crate) struct Document {
    pub value: Value,
    lines: BTreeMap<String, usize>,
}

impl Document {
    /// The line of the node at `pointer`, or of its nearest ancestor.
    pub(crate) fn line(&self, pointer: &str) -> usize {
        let mut p = pointer;
        loop {
            if let Some(line) = self.lines.get(p) {
                return *line;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return 1,
            }
        }
    }
}

/// A YAML syntax error with its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub line: usize,
    pub message: String,
}

pub(crate) fn parse(text: &str) -> Result<Document, SyntaxError> {
    let mut builder = Builder::default();
    Parser::new_from_str(text)
        .load(&mut builder, false)
        .map_err(|e| SyntaxError {
            line: e.marker().line(),
            message: e.info().to_string(),
        })?;
    if let Some(message) = builder.error {
        return Err(message);
    }
    Ok(Document {
        value: builder.root.unwrap_or(Value::Null),
        lines: builder.lines,
    })
}

/// One problem in a YAML file the tool reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    /// Where in the file, as `checks[2].fail`; empty for the whole file.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        } else {
            write!(f, "{}:{}: `{}`: {}", self.file, self.line, self.key, self.message)
        }
    }
}

/// `/checks/2/fail` → `checks[2].fail`.
pub(crate) fn key_of(pointer: &str) -> String {
    let mut key = String::new();
    for part in pointer.split('/').skip(1) {
        let part = part.replace("~1", "/").replace("~0", "~");
        if part.parse::<usize>().is_ok() {
            key.push_str(&format!("[{part}]"));
        } else {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(&part);
        }
    }
    key
}

/// Parses `text`, validates it against the schema of `T`, then deserialises
/// it: every problem comes back at once, with its line and key.
/// `describe_pattern` turns a schema regex into words ("a lower-case name").
/// When the only schema errors are unknown keys, the file is also read
/// without them: what can still be read is checked further, so an unknown
/// key does not hide a wrong reference (every problem at once).
pub(crate) fn load_all<T: serde::de::DeserializeOwned>(
    file: &str,
    text: &str,
    validator: &jsonschema::Validator,
    describe_pattern: &dyn Fn(&str) -> Option<&'static str>,
) -> (Vec<ConfigError>, Option<(T, Document)>) {
    let err = |line: usize, key: String, message: String| ConfigError {
        file: file.to_string(),
        line,
        key,
        message,
    };
    let doc = match parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            return (
                vec![err(e.line, String::new(), format!("invalid YAML: {}", e.message))],
                None,
            );
        }
    };
    let mut errors: Vec<ConfigError> = validator
        .iter_errors(&doc.value)
        .map(|e| {
            let (pointer, message) = explain(&e, describe_pattern);
            err(doc.line(&pointer), key_of(&pointer), message)
        })
        .collect();
    // Schema order is not file order; people read files top to bottom.
    errors.sort_by_key(|e| e.line);
    let value = if errors.is_empty() {
        doc.value.clone()
    } else {
        let known = without_unknown_keys(&doc.value, validator);
        if !validator.is_valid(&known) {
            return (errors, None);
        }
        known
    };
    match serde_json::from_value(value) {
        Ok(parsed) => (errors, Some((parsed, doc))),
        Err(e) => {
            errors.push(err(1, String::new(), e.to_string()));
            (errors, None)
        }
    }
}

/// The items of the array at `pointer` of `text`, each deserialised on its
/// own when `item` (the schema of one item) accepts it with its unknown keys
/// dropped, else left as the value it is: when a file as a whole cannot be
/// read, its sound items can still be checked further (every problem at once).
pub(crate) fn items<T: serde::de::DeserializeOwned>(
    text: &str,
    pointer: &str,
    item: &jsonschema::Validator,
) -> Option<(Document, Vec<Result<T, Value>>)> {
    let doc = parse(text).ok()?;
    let values = doc.value.pointer(pointer)?.as_array()?.clone();
    let items = values
        .into_iter()
        .map(|value| {
            let known = without_unknown_keys(&value, item);
            if item.is_valid(&known) {
                serde_json::from_value(known).map_err(|_| value)
            } else {
                Err(value)
            }
        })
        .collect();
    Some((doc, items))
}

/// `value` without the object keys its schema does not allow.
fn without_unknown_keys(value: &serde_json::Value, validator: &jsonschema::Validator) -> serde_json::Value {
    let mut known = value.clone();
    for e in validator.iter_errors(value) {
        if let jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } = e.kind()
            && let Some(object) = known
                .pointer_mut(e.instance_path().as_str())
                .and_then(serde_json::Value::as_object_mut)
        {
            for key in unexpected {
                object.remove(key);
            }
        }
    }
    known
}

/// Where a schema error is and what it says, in words a person acts on:
/// every allowed value listed, patterns described, and for a value that
/// may take several shapes, the problem with the shape it was closest to.
fn explain(
    e: &jsonschema::ValidationError,
    describe_pattern: &dyn Fn(&str) -> Option<&'static str>,
) -> (String, String) {
    use jsonschema::error::ValidationErrorKind as K;
    let pointer = e.instance_path().as_str().to_string();
    let message = match e.kind() {
        K::Enum { options } => {
            let options: Vec<String> = options
                .as_array()
                .map(|a| a.iter().map(ToString::to_string).collect())
                .unwrap_or_default();
            let listed = match options.split_last() {
                Some((last, [])) => last.clone(),
                Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                None => String::new(),
            };
            format!("{} is not one of {listed}", e.instance())
        }
        K::Pattern { pattern } => match describe_pattern(pattern) {
            Some(words) => format!("{} is not {words}", e.instance()),
            None => e.to_string(),
        },
        K::AnyOf { context } | K::OneOfNotValid { context } => {
            // A value that may take several shapes: the branches of another
            // JSON type say nothing; the one of the right type says what is wrong.
            let wrong_shape = |inner: &jsonschema::ValidationError| {
                matches!(inner.kind(), K::Type { .. }) && inner.instance_path().as_str() == pointer
            };
            match context.iter().find(|branch| !branch.iter().all(wrong_shape)) {
                Some(branch) => {
                    let explained: Vec<(String, String)> = branch
                        .iter()
                        .map(|inner| explain(inner, describe_pattern))
                        .collect();
                    let messages: Vec<&str> = explained.iter().map(|(_, m)| m.as_str()).collect();
                    return (explained[0].0.clone(), messages.join("; "));
                }
                None => e.to_string(),
            }
        }
        // An optional key's schema also allows null, which nobody writes on purpose.
        K::Type { .. } => e
            .to_string()
            .replace(r#"is not of types "null", "#, "is not of type "),
        _ => e.to_string(),
    };
    (pointer, message)
}

/// An open container while events stream in.
enum Frame {
    Seq(Vec<Value>, String),
    Map(Map<String, Value>, String, Option<String>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Value>,
    lines: BTreeMap<String, usize>,
    error: Option<SyntaxError>,
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

impl Builder {
    /// The pointer the next value will have.
    fn next_pointer(&self) -> String {
        match self.stack.last() {
            None => String::new(),
            Some(Frame::Seq(items, p)) => format!("{p}/{}", items.len()),
            Some(Frame::Map(_, p, Some(key))) => format!("{p}/{}", escape(key)),
            Some(Frame::Map(_, p, None)) => p.clone(),
        }
    }

    /// Whether the next scalar is a mapping key.
    fn expecting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map(_, _, None)))
    }

    fn push_value(&mut self, value: Value) {
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Seq(items, _)) => items.push(value),
            Some(Frame::Map(map, _, key)) => {
                if let Some(k) = key.take() {
                    map.insert(k, value);
                }
            }
        }
    }
}

fn scalar(text: String, style: TScalarStyle) -> Value {
    if style != TScalarStyle::Plain {
        return Value::String(text);
    }
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>() {
        return Value::Number(i.into());
    }
    // Only plain decimal notation is a number: `inf`, `nan` and `1_000` stay text.
    let numeric = text
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'));
    if let Some(n) = text
        .parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .filter(|_| numeric)
    {
        return Value::Number(n);
    }
    Value::String(text)
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        match ev {
            Event::Scalar(text, style, ..) => {
                if self.expecting_key() {
                    if let Some(Frame::Map(map, p, key)) = self.stack.last_mut() {
                        if map.contains_key(&text) {
                            self.error = Some(SyntaxError {
                                line: mark.line(),
                                message: format!("duplicate key `{text}`"),
                            });
                            return;
                        }
                        self.lines.insert(format!("{p}/{}", escape(&text)), mark.line());
                        *key = Some(text);
                    }
                } else {
                    let pointer = self.next_pointer();
                    self.lines.entry(pointer).or_insert(mark.line());
                    self.push_value(scalar(text, style));
                }
            }
            Event::SequenceStart(..) => {
                let pointer = self.next_pointer();
                self.lines.entry(pointer.clone()).or_insert(mark.line());
                self.stack.push(Frame::Seq(Vec::new(), pointer));
            }
            Event::MappingStart(..) => {
                let pointer = self.next_pointer();
                self.lines.entry(pointer.clone()).or_insert(mark.line());
                self.stack.push(Frame::Map(Map::new(), pointer, None));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let value = match self.stack.pop() {
                    Some(Frame::Seq(items, _)) => Value::Array(items),
                    Some(Frame::Map(map, ..)) => Value::Object(map),
                    None => return,
                };
                self.push_value(value);
            }
            Event::Alias(_) => {
                self.error = Some(SyntaxError {
                    line: mark.line(),
                    message: "YAML aliases are not supported; repeat the value".into(),
                });
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_lines() {
        let doc = parse(
            "checks:\n  - name: a\n    fail: \"> 1%\"\n    min: 0\n    tags: [x, y]\n  - name: '007'\n",
        )
        .unwrap();
        assert_eq!(
            doc.value,
            serde_json::json!({"checks": [{"name": "a", "fail": "> 1%", "min": 0, "tags": ["x", "y"]}, {"name": "007"}]})
        );
        assert_eq!(doc.line("/checks"), 1);
        assert_eq!(doc.line("/checks/0/fail"), 3);
        assert_eq!(doc.line("/checks/0/tags/1"), 5);
        assert_eq!(doc.line("/checks/1/name"), 6);
        assert_eq!(doc.line("/checks/1/nope/deeper"), 6);
    }

    #[test]
    fn syntax_errors_and_duplicates_have_lines() {
        assert_eq!(parse("a: [1, 2\nb: 3\n").unwrap_err().line, 2);
        let dup = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!((dup.line, dup.message.as_str()), (3, "duplicate key `a`"));
    }
}
