//! How objects are walked for field management, after structured-merge-diff's typed package:
//! compare (typed/compare.go), the field set of an applied configuration (typed/tofieldset.go),
//! the merge of a configuration into the live object (typed/merge.go) and item removal
//! (typed/remove.go). There is no OpenAPI schema here; the shape of a node comes from its path:
//! `metadata.labels`/`annotations` are maps, `metadata.finalizers` a set, `metadata.ownerReferences`
//! a list-map keyed by uid, `status.conditions` by type, pod template containers by name; every
//! other list is atomic and every other object a struct with per-field ownership.

use serde_json::{Map, Value};

use super::fieldset::{FieldSet, Path, Pe};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Shape {
    /// Fields are not members themselves, only their leaves are.
    Struct,
    /// Every key is a member (a granular map such as labels).
    Map,
    /// Owned as a whole.
    Atomic,
    /// A list of scalars owned item by item (`v:` elements).
    Set,
    /// A list of objects owned item by item (`k:` elements), by these key fields.
    ListMap(&'static [&'static str]),
    Scalar,
}

/// The shape the path gives, checked against the value (a wrong type is just a value).
pub fn shape(names: &[String], value: &Value) -> Shape {
    let is =
        |i: usize, options: &[&str]| names.get(i).is_some_and(|n| options.contains(&n.as_str()));
    let named = match names.len() {
        2 if is(0, &["metadata"]) && is(1, &["labels", "annotations"]) => Some(Shape::Map),
        2 if is(0, &["metadata"]) && is(1, &["finalizers"]) => Some(Shape::Set),
        2 if is(0, &["metadata"]) && is(1, &["ownerReferences"]) => Some(Shape::ListMap(&["uid"])),
        2 if is(0, &["status"]) && is(1, &["conditions"]) => Some(Shape::ListMap(&["type"])),
        4 if is(0, &["spec"]) && is(1, &["template"]) => {
            if is(2, &["metadata"]) && is(3, &["labels", "annotations"]) {
                Some(Shape::Map)
            } else if is(2, &["spec"]) && is(3, &["containers", "initContainers"]) {
                Some(Shape::ListMap(&["name"]))
            } else {
                None
            }
        }
        _ => None,
    };
    match (named, value) {
        (Some(Shape::Map), Value::Object(_)) => Shape::Map,
        (Some(s @ (Shape::Set | Shape::ListMap(_))), Value::Array(_)) => s,
        (_, Value::Object(_)) => Shape::Struct,
        (_, Value::Array(_)) => Shape::Atomic,
        _ => Shape::Scalar,
    }
}

/// The path element of a list item, or why it has none (a list-map item without its key).
pub fn item_pe(shape: Shape, item: &Value) -> Result<Pe, String> {
    match shape {
        Shape::Set => Ok(Pe::Value(item.to_string())),
        Shape::ListMap(keys) => {
            let mut key = Map::new();
            for k in keys {
                match item.get(*k) {
                    Some(v) if !v.is_null() => key.insert((*k).to_string(), v.clone()),
                    _ => {
                        return Err(format!(
                            "associative list with keys has an element that omits key field {k:?}"
                        ));
                    }
                };
            }
            Ok(Pe::Key(Value::Object(key).to_string()))
        }
        _ => Err("not an associative list".to_string()),
    }
}

/// What changed between two objects, as paths (containers that appear or vanish included).
#[derive(Clone, Debug, Default)]
pub struct Comparison {
    pub added: FieldSet,
    pub modified: FieldSet,
    pub removed: FieldSet,
}

impl Comparison {
    pub fn is_same(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }

    pub fn changed(&self) -> FieldSet {
        self.added.union(&self.modified)
    }
}

#[derive(Default)]
struct Walk {
    path: Path,
    names: Vec<String>,
}

impl Walk {
    fn enter_field(&mut self, key: &str) {
        self.path.push(Pe::Field(key.to_string()));
        self.names.push(key.to_string());
    }

    fn leave_field(&mut self) {
        self.path.pop();
        self.names.pop();
    }
}

pub fn compare(old: &Value, new: &Value) -> Comparison {
    let mut out = Comparison::default();
    Walk::default().compare(Some(old), Some(new), &mut out);
    out
}

/// Items of a granular list by path element; items without one fall back to their index.
fn items(shape: Shape, list: Option<&Value>) -> Vec<(Pe, &Value)> {
    let mut out: Vec<(Pe, &Value)> = Vec::new();
    for (i, item) in list
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let pe = item_pe(shape, item).unwrap_or(Pe::Index(i));
        if !out.iter().any(|(p, _)| *p == pe) {
            out.push((pe, item));
        }
    }
    out
}

fn find<'v>(side: &[(Pe, &'v Value)], pe: &Pe) -> Option<&'v Value> {
    side.iter().find(|(p, _)| p == pe).map(|(_, v)| *v)
}

impl Walk {
    fn compare(&mut self, old: Option<&Value>, new: Option<&Value>, out: &mut Comparison) {
        let Some(sample) = old.or(new) else { return };
        let shape = shape(&self.names, sample);
        let both = |f: fn(&Value) -> bool| old.is_none_or(f) && new.is_none_or(f);
        match shape {
            Shape::Struct | Shape::Map if both(Value::is_object) => {
                self.compare_fields(old, new, out)
            }
            Shape::Set | Shape::ListMap(_) if both(Value::is_array) => {
                self.compare_items(shape, old, new, out)
            }
            _ => self.leaf(old, new, out),
        }
    }

    fn compare_fields(&mut self, old: Option<&Value>, new: Option<&Value>, out: &mut Comparison) {
        let (lo, ro) = (
            old.and_then(Value::as_object),
            new.and_then(Value::as_object),
        );
        if lo.is_none_or(Map::is_empty) && ro.is_none_or(Map::is_empty) {
            return self.leaf(old, new, out);
        }
        let mut keys: Vec<&String> = lo.into_iter().flat_map(Map::keys).collect();
        let only_new = ro.into_iter().flat_map(Map::keys);
        keys.extend(only_new.filter(|k| !lo.is_some_and(|l| l.contains_key(*k))));
        for key in keys {
            self.enter_field(key);
            self.compare(
                lo.and_then(|m| m.get(key)),
                ro.and_then(|m| m.get(key)),
                out,
            );
            self.leave_field();
        }
        self.container(old, new, out);
    }

    fn compare_items(
        &mut self,
        shape: Shape,
        old: Option<&Value>,
        new: Option<&Value>,
        out: &mut Comparison,
    ) {
        let (lhs, rhs) = (items(shape, old), items(shape, new));
        if lhs.is_empty() && rhs.is_empty() {
            return self.leaf(old, new, out);
        }
        let mut pes: Vec<&Pe> = lhs.iter().map(|(p, _)| p).collect();
        let only_new = rhs.iter().map(|(p, _)| p);
        pes.extend(only_new.filter(|p| !lhs.iter().any(|(l, _)| l == *p)));
        for pe in pes {
            let (l, r) = (find(&lhs, pe), find(&rhs, pe));
            self.path.push(pe.clone());
            if shape == Shape::Set {
                self.leaf(l, r, out);
            } else {
                self.compare(l, r, out);
            }
            self.path.pop();
        }
        self.container(old, new, out);
    }

    /// A node present on one side only is added or removed as a whole (compare.go inserts the
    /// container path as well as its leaves).
    fn container(&self, old: Option<&Value>, new: Option<&Value>, out: &mut Comparison) {
        if self.path.is_empty() {
            return;
        }
        match (old, new) {
            (None, Some(_)) => out.added.insert(&self.path),
            (Some(_), None) => out.removed.insert(&self.path),
            _ => {}
        }
    }

    fn leaf(&self, old: Option<&Value>, new: Option<&Value>, out: &mut Comparison) {
        if self.path.is_empty() {
            return;
        }
        match (old, new) {
            (None, Some(_)) => out.added.insert(&self.path),
            (Some(_), None) => out.removed.insert(&self.path),
            (Some(a), Some(b)) if a != b => out.modified.insert(&self.path),
            _ => {}
        }
    }
}

/// The fields an applied configuration sets: leaves, map keys, list items (with their fields),
/// set items and atomic lists. Duplicate or keyless list-map items make the request invalid.
pub fn field_set(config: &Value) -> Result<FieldSet, String> {
    let mut out = FieldSet::default();
    Walk::default().collect_set(config, &mut out)?;
    Ok(out)
}

impl Walk {
    fn collect_set(&mut self, value: &Value, out: &mut FieldSet) -> Result<(), String> {
        let shape = shape(&self.names, value);
        match (shape, value) {
            (Shape::Struct | Shape::Map, Value::Object(map)) => {
                for (key, child) in map {
                    self.enter_field(key);
                    self.collect_set(child, out)?;
                    if shape == Shape::Map {
                        out.insert(&self.path);
                    }
                    self.leave_field();
                }
            }
            (Shape::Set | Shape::ListMap(_), Value::Array(list)) => {
                let mut seen = Vec::new();
                for item in list {
                    let pe = item_pe(shape, item).map_err(|e| {
                        format!("{}: {e}", super::fieldset::path_string(&self.path))
                    })?;
                    if seen.contains(&pe) {
                        let at = super::fieldset::path_string(&self.path);
                        return Err(format!(
                            "{at}: duplicate entries for key {}",
                            super::fieldset::path_string(&[pe])
                        ));
                    }
                    seen.push(pe.clone());
                    self.path.push(pe);
                    if shape != Shape::Set {
                        self.collect_set(item, out)?;
                    }
                    out.insert(&self.path);
                    self.path.pop();
                }
            }
            _ if !self.path.is_empty() => out.insert(&self.path),
            _ => {}
        }
        Ok(())
    }
}

/// The live object with the configuration merged in: structs and maps field by field (a null
/// removes), sets by union, list-maps item by item by key, anything else replaced. New list
/// items are appended (structured-merge-diff places them in the applied order among the shared
/// ones; the order of a list-map carries no meaning).
pub fn merge(live: &Value, config: &Value) -> Value {
    Walk::default().merge(Some(live), config)
}

impl Walk {
    fn merge(&mut self, live: Option<&Value>, config: &Value) -> Value {
        let shape = shape(&self.names, config);
        match (shape, config) {
            (Shape::Struct | Shape::Map, Value::Object(cfg)) => {
                let mut base = live.and_then(Value::as_object).cloned().unwrap_or_default();
                for (key, c) in cfg {
                    if c.is_null() {
                        base.remove(key);
                        continue;
                    }
                    self.enter_field(key);
                    let merged = self.merge(base.get(key), c);
                    self.leave_field();
                    base.insert(key.clone(), merged);
                }
                Value::Object(base)
            }
            (Shape::Set, Value::Array(cfg)) => {
                let mut base = live.and_then(Value::as_array).cloned().unwrap_or_default();
                for item in cfg {
                    if !base.contains(item) {
                        base.push(item.clone());
                    }
                }
                Value::Array(base)
            }
            (Shape::ListMap(_), Value::Array(cfg)) => {
                let mut base = live.and_then(Value::as_array).cloned().unwrap_or_default();
                for item in cfg {
                    let pe = item_pe(shape, item).ok();
                    let at = base
                        .iter()
                        .position(|b| pe.is_some() && item_pe(shape, b).ok() == pe);
                    match at {
                        Some(i) => base[i] = self.merge(Some(&base[i].clone()), item),
                        None => base.push(self.merge(None, item)),
                    }
                }
                Value::Array(base)
            }
            _ => config.clone(),
        }
    }
}

/// Removes one member path from an object; containers emptied by the removal go too, as
/// typed/remove.go leaves no empty map or list behind.
pub fn remove(object: &mut Value, path: &[Pe]) -> bool {
    remove_at(object, path, &mut Vec::new())
}

fn remove_at(value: &mut Value, path: &[Pe], names: &mut Vec<String>) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    match first {
        Pe::Field(key) => {
            let Some(map) = value.as_object_mut() else {
                return false;
            };
            if rest.is_empty() {
                return map.remove(key).is_some();
            }
            let Some(child) = map.get_mut(key) else {
                return false;
            };
            names.push(key.clone());
            let removed = remove_at(child, rest, names);
            names.pop();
            if removed && is_empty_container(child) {
                map.remove(key);
            }
            removed
        }
        item => {
            let shape = shape(names, value);
            let Some(list) = value.as_array_mut() else {
                return false;
            };
            let found = list.iter().enumerate().position(|(i, v)| match item {
                Pe::Index(n) => i == *n,
                _ => item_pe(shape, v).ok().as_ref() == Some(item),
            });
            let Some(i) = found else { return false };
            if rest.is_empty() {
                list.remove(i);
                true
            } else {
                remove_at(&mut list[i], rest, names)
            }
        }
    }
}

fn is_empty_container(value: &Value) -> bool {
    match value {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}
