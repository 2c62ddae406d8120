//! Sets of field paths, as structured-merge-diff keeps them for each field manager, and their
//! `FieldsV1` encoding in `metadata.managedFields`:
//! `{"f:metadata": {"f:annotations": {"f:key": {}}}}`, list-map items as
//! `"k:{\"type\":\"Ready\"}"`, set items as `"v:\"value\""`, and `".": {}` when a node is itself
//! a member of the set and also has children (sigs.k8s.io/structured-merge-diff fieldpath/serialize.go).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// One step of a field path. The derived order (field names, then keys, values, indexes) is the
/// order structured-merge-diff sorts path elements in, so `FieldsV1` comes out in its order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pe {
    /// A struct field or map key.
    Field(String),
    /// A list-map item, by the canonical JSON object of its key fields: `{"type":"Ready"}`.
    Key(String),
    /// A set item, by the canonical JSON of its value: `"plimsoll.dev/cleanup"`.
    Value(String),
    /// A list item by position (only for list-map items that lack their key).
    Index(usize),
}

pub type Path = Vec<Pe>;

/// A set of paths as a tree: `member` says the node's own path is in the set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet {
    pub member: bool,
    pub children: BTreeMap<Pe, FieldSet>,
}

impl FieldSet {
    pub fn is_empty(&self) -> bool {
        !self.member && self.children.is_empty()
    }

    pub fn insert(&mut self, path: &[Pe]) {
        match path.split_first() {
            None => self.member = true,
            Some((first, rest)) => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    pub fn has(&self, path: &[Pe]) -> bool {
        match path.split_first() {
            None => self.member,
            Some((first, rest)) => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    /// The subtree at `pe`, if any.
    pub fn child(&self, pe: &Pe) -> Option<&FieldSet> {
        self.children.get(pe)
    }

    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.member |= other.member;
        for (pe, child) in &other.children {
            let merged = match out.children.get(pe) {
                Some(mine) => mine.union(child),
                None => child.clone(),
            };
            out.children.insert(pe.clone(), merged);
        }
        out
    }

    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && !other.member,
            children: BTreeMap::new(),
        };
        for (pe, child) in &self.children {
            let rest = match other.children.get(pe) {
                Some(theirs) => child.difference(theirs),
                None => child.clone(),
            };
            if !rest.is_empty() {
                out.children.insert(pe.clone(), rest);
            }
        }
        out
    }

    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (pe, child) in &self.children {
            if let Some(theirs) = other.children.get(pe) {
                let both = child.intersection(theirs);
                if !both.is_empty() {
                    out.children.insert(pe.clone(), both);
                }
            }
        }
        out
    }

    /// Every member path, parents before children.
    pub fn members(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Path, out: &mut Vec<Path>) {
        if self.member {
            out.push(prefix.clone());
        }
        for (pe, child) in &self.children {
            prefix.push(pe.clone());
            child.collect(prefix, out);
            prefix.pop();
        }
    }

    /// The `FieldsV1` JSON of the set.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        if self.member && !self.children.is_empty() {
            map.insert(".".to_string(), json!({}));
        }
        for (pe, child) in &self.children {
            map.insert(encode(pe), child.to_json());
        }
        Value::Object(map)
    }

    /// Reads `FieldsV1` JSON; unknown prefixes are skipped. An empty object is a member leaf.
    pub fn from_json(value: &Value) -> FieldSet {
        let mut out = FieldSet::default();
        let Some(map) = value.as_object() else {
            return out;
        };
        if map.is_empty() {
            out.member = true;
        }
        for (key, child) in map {
            if key == "." {
                out.member = true;
            } else if let Some(pe) = decode(key) {
                out.children.insert(pe, FieldSet::from_json(child));
            }
        }
        out
    }
}

fn encode(pe: &Pe) -> String {
    match pe {
        Pe::Field(name) => format!("f:{name}"),
        Pe::Key(key) => format!("k:{key}"),
        Pe::Value(value) => format!("v:{value}"),
        Pe::Index(i) => format!("i:{i}"),
    }
}

fn decode(key: &str) -> Option<Pe> {
    let (prefix, rest) = key.split_once(':')?;
    Some(match prefix {
        "f" => Pe::Field(rest.to_string()),
        "k" => Pe::Key(canonical(rest)?),
        "v" => Pe::Value(canonical(rest)?),
        "i" => Pe::Index(rest.parse().ok()?),
        _ => return None,
    })
}

/// JSON text re-serialized, so that equal values compare equal whatever their spacing.
fn canonical(text: &str) -> Option<String> {
    serde_json::from_str::<Value>(text)
        .ok()
        .map(|v| v.to_string())
}

/// A path as structured-merge-diff prints it in conflict messages:
/// `.metadata.annotations.x`, `.status.conditions[type="Ready"].status`, `.metadata.finalizers[="a"]`.
pub fn path_string(path: &[Pe]) -> String {
    let mut out = String::new();
    for pe in path {
        match pe {
            Pe::Field(name) => {
                out.push('.');
                out.push_str(name);
            }
            Pe::Key(key) => {
                let fields: Vec<String> = serde_json::from_str::<Map<String, Value>>(key)
                    .unwrap_or_default()
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                out.push_str(&format!("[{}]", fields.join(",")));
            }
            Pe::Value(value) => out.push_str(&format!("[={value}]")),
            Pe::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}
