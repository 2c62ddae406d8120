//! Reading a source mapping so that no field can be forgotten: every key is either taken by the
//! converter or, when the reader is dropped, reported as a field Plimsoll does not know.

use std::cell::RefCell;

use serde_json::{Map, Value};

use super::finding::Findings;

/// A source mapping being read, with the keys taken so far.
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    path: String,
    taken: RefCell<Vec<&'a str>>,
    findings: &'a Findings,
}

impl<'a> Fields<'a> {
    /// A reader of `value` at `path` (empty for the document), or None when it is not a mapping.
    pub fn of(value: &'a Value, path: impl Into<String>, findings: &'a Findings) -> Option<Self> {
        value.as_object().map(|map| Fields {
            map,
            path: path.into(),
            taken: RefCell::default(),
            findings,
        })
    }

    pub fn findings(&self) -> &'a Findings {
        self.findings
    }

    /// The full path of one of this mapping's keys, such as `spec.slos[0].name`.
    pub fn path(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The path of this mapping itself.
    pub fn here(&self) -> &str {
        if self.path.is_empty() {
            "(document)"
        } else {
            &self.path
        }
    }

    /// Takes a key; null counts as absent.
    pub fn take(&self, key: &'a str) -> Option<&'a Value> {
        self.taken.borrow_mut().push(key);
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// Takes the first of several spellings that is present, with the spelling used.
    pub fn take_any(&self, keys: &[&'a str]) -> Option<(&'a str, &'a Value)> {
        keys.iter()
            .find_map(|&k| self.take(k).map(|v| (k, v)))
            .inspect(|_| keys.iter().for_each(|&k| self.taken.borrow_mut().push(k)))
    }

    /// Takes a key and reads it as text. A number or boolean is written as text and reported:
    /// YAML reads unquoted `no`, `off`, `010` or `1e3` as such, so the text may not be what the
    /// source meant. Other values are reported and give None.
    pub fn text(&self, key: &'a str) -> Option<String> {
        let value = self.take(key)?;
        if let Some(text) = scalar_text(value).filter(|_| !value.is_string()) {
            self.findings.changed(
                self.path(key),
                format!(
                    "is {} in YAML, not quoted text; read as {text:?} (quote it in the source if \
                     it meant other text: YAML reads unquoted no, off, 010 or 1e3 as such)",
                    kind_of(value)
                ),
            );
            return Some(text);
        }
        self.scalar(key)
    }

    /// Like [`Fields::text`], without the report on numbers, for values only quoted in messages
    /// (a threshold, a count).
    pub fn scalar(&self, key: &'a str) -> Option<String> {
        let value = self.take(key)?;
        scalar_text(value).or_else(|| {
            self.findings.dropped(
                self.path(key),
                format!("is {}, not text; it is not carried over", kind_of(value)),
            );
            None
        })
    }

    /// Takes a key and reads it as a number (a number or numeric text).
    pub fn number(&self, key: &'a str) -> Option<Result<f64, String>> {
        let value = self.take(key)?;
        Some(match value {
            Value::Number(n) => n.as_f64().ok_or_else(|| format!("{n} is out of range")),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .ok_or_else(|| format!("{s:?} is not a finite number")),
            other => Err(format!("is {}, not a number", kind_of(other))),
        })
    }

    /// Takes a key and reads it as a boolean; anything else is reported and gives None.
    pub fn flag(&self, key: &'a str) -> Option<bool> {
        let value = self.take(key)?;
        value.as_bool().or_else(|| {
            self.findings.dropped(
                self.path(key),
                format!("is {}, not true or false; it is ignored", kind_of(value)),
            );
            None
        })
    }

    /// Takes a key holding a mapping; a value of another kind is reported.
    pub fn object(&self, key: &'a str) -> Option<Fields<'a>> {
        let value = self.take(key)?;
        let read = Fields::of(value, self.path(key), self.findings);
        if read.is_none() {
            self.findings.dropped(
                self.path(key),
                format!("is {}, not a mapping; it is ignored", kind_of(value)),
            );
        }
        read
    }

    /// Takes a key holding a list (a single value counts as a list of one).
    pub fn list(&self, key: &'a str) -> Vec<&'a Value> {
        match self.take(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => items.iter().collect(),
            Some(one) => vec![one],
        }
    }

    /// Takes a mapping of text to text, such as labels; values that are not text are written as
    /// text and reported, as Kubernetes and Prometheus take label values only as strings.
    pub fn string_map(&self, key: &'a str) -> Vec<(String, String)> {
        let Some(map) = self.object(key) else {
            return Vec::new();
        };
        let keys: Vec<&'a String> = map.map.keys().collect();
        let mut out = Vec::new();
        for k in keys {
            match map.take(k) {
                Some(Value::String(v)) => out.push((k.clone(), v.clone())),
                Some(other) => match scalar_text(other) {
                    Some(text) => {
                        self.findings.changed(
                            map.path(k),
                            format!("{} {other} is written as the text {text:?}", kind_of(other)),
                        );
                        out.push((k.clone(), text));
                    }
                    None => self.findings.dropped(
                        map.path(k),
                        format!("is {}, not text; it is not carried over", kind_of(other)),
                    ),
                },
                None => {}
            }
        }
        out
    }

    /// Marks keys as read without using them, for fields that carry nothing (such as
    /// `creationTimestamp: null`).
    pub fn ignore(&self, keys: &[&'a str]) {
        self.taken.borrow_mut().extend(keys);
    }

    /// The keys not taken yet, with their values.
    pub fn rest(&self) -> Vec<(&'a str, &'a Value)> {
        let taken = self.taken.borrow();
        self.map
            .iter()
            .filter(|(k, v)| !v.is_null() && !taken.contains(&k.as_str()))
            .map(|(k, v)| (k.as_str(), v))
            .collect()
    }
}

impl Drop for Fields<'_> {
    fn drop(&mut self) {
        for (key, _) in self.rest() {
            self.findings.dropped(
                self.path(key),
                "is not a field the importer knows for this kind; it is not carried over",
            );
        }
    }
}

/// `a.b`, `a[0]` or `b` when `a` is empty.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else if key.starts_with('[') {
        format!("{path}{key}")
    } else {
        format!("{path}.{key}")
    }
}

/// Text for a scalar: strings as they are, numbers and booleans as YAML prints them.
pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// What a JSON value is, for messages.
pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_not_taken_are_reported_when_the_reader_goes() {
        let findings = Findings::new("f.yaml");
        let value = json!({"a": 1, "b": {"c": true, "d": null}, "e": "x"});
        {
            let top = Fields::of(&value, "spec", &findings).unwrap();
            assert_eq!(top.scalar("a").as_deref(), Some("1"));
            let b = top.object("b").unwrap();
            assert_eq!(b.flag("c"), Some(true));
        }
        let reported: Vec<String> = findings.into_vec().into_iter().map(|f| f.field).collect();
        // Null counts as absent; `e` was never asked for.
        assert_eq!(reported, ["spec.e"]);
    }

    #[test]
    fn label_values_that_are_not_text_become_text_and_are_reported() {
        let findings = Findings::new("f.yaml");
        let value = json!({"labels": {"tier": 2, "on": true, "team": "x", "bad": [1]}});
        let map = Fields::of(&value, "", &findings)
            .unwrap()
            .string_map("labels");
        let pairs: Vec<(&str, &str)> = map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(pairs, [("on", "true"), ("team", "x"), ("tier", "2")]);
        let fields: Vec<String> = findings.into_vec().into_iter().map(|f| f.field).collect();
        assert_eq!(fields, ["labels.bad", "labels.on", "labels.tier"]);
    }
}
