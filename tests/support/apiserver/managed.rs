//! `metadata.managedFields`: who owns which fields, updated as structured-merge-diff's
//! merge/update.go does. A manager's identity is (name, operation, subresource, and for Update
//! the apiVersion) like BuildManagerIdentifier in the API server: the same name applying and
//! merge-patching is two managers, which can conflict with each other.

use serde_json::{Value, json};

use super::fieldset::{FieldSet, Path, Pe, path_string};
use super::tree::Comparison;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ManagerId {
    pub manager: String,
    pub operation: Operation,
    /// `"status"` for writes to /status, else empty.
    pub subresource: String,
    /// The apiVersion, part of the identity of Update managers only.
    pub version_key: String,
}

impl ManagerId {
    pub fn new(manager: &str, operation: Operation, subresource: &str, api_version: &str) -> Self {
        ManagerId {
            manager: manager.to_string(),
            operation,
            subresource: subresource.to_string(),
            version_key: match operation {
                Operation::Apply => String::new(),
                Operation::Update => api_version.to_string(),
            },
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub id: ManagerId,
    pub api_version: String,
    pub time: String,
    pub set: FieldSet,
}

impl Entry {
    /// How conflict messages name the manager (printManager in the API server's
    /// managedfields/internal/conflict.go).
    pub fn printed(&self) -> String {
        let mut out = format!("{:?}", self.id.manager);
        if !self.id.subresource.is_empty() {
            out = format!("{out} with subresource {:?}", self.id.subresource);
        }
        if self.id.operation == Operation::Update {
            out = format!("{out} using {} at {}", self.api_version, self.time);
        }
        out
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Managed {
    pub entries: Vec<Entry>,
}

impl Managed {
    pub fn get(&self, id: &ManagerId) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id == *id)
    }

    /// Every field some manager other than `id` owns.
    pub fn others(&self, id: &ManagerId) -> FieldSet {
        self.entries
            .iter()
            .filter(|e| e.id != *id)
            .fold(FieldSet::default(), |acc, e| acc.union(&e.set))
    }

    /// The conflicts a change makes with other managers: their fields it modifies or adds.
    pub fn conflicts(&self, id: &ManagerId, cmp: &Comparison) -> Vec<(Entry, Path)> {
        let changed = cmp.changed();
        let mut out = Vec::new();
        for entry in self.entries.iter().filter(|e| e.id != *id) {
            for path in entry.set.intersection(&changed).members() {
                out.push((entry.clone(), path));
            }
        }
        out
    }

    /// An Update (create, PUT, non-apply PATCH): other managers lose what it changed or removed
    /// (updates are always forced), the writer owns what it changed and keeps the rest it had.
    pub fn record_update(&mut self, id: &ManagerId, api_version: &str, cmp: &Comparison) {
        let taken = cmp.changed().union(&cmp.removed);
        for entry in self.entries.iter_mut().filter(|e| e.id != *id) {
            entry.set = entry.set.difference(&taken);
        }
        let mine = self.get(id).map(|e| e.set.clone()).unwrap_or_default();
        let set = mine.difference(&cmp.removed).union(&cmp.changed());
        self.put(id, api_version, set);
    }

    /// An apply that passed the conflict check (or was forced): other managers lose what it
    /// changed or removed, and the applier owns exactly the fields of its configuration.
    pub fn record_apply(
        &mut self,
        id: &ManagerId,
        api_version: &str,
        set: FieldSet,
        cmp: &Comparison,
    ) {
        let taken = cmp.changed().union(&cmp.removed);
        for entry in self.entries.iter_mut().filter(|e| e.id != *id) {
            entry.set = entry.set.difference(&taken);
        }
        self.put(id, api_version, set);
    }

    fn put(&mut self, id: &ManagerId, api_version: &str, mut set: FieldSet) {
        // The container `metadata` itself is stripped (stripmeta.go), its fields are not.
        if let Some(meta) = set.children.get_mut(&Pe::Field("metadata".into())) {
            meta.member = false;
            if meta.is_empty() {
                set.children.remove(&Pe::Field("metadata".into()));
            }
        }
        match self.entries.iter_mut().find(|e| e.id == *id) {
            Some(entry) => {
                entry.set = set;
                entry.api_version = api_version.to_string();
            }
            None => self.entries.push(Entry {
                id: id.clone(),
                api_version: api_version.to_string(),
                time: String::new(),
                set,
            }),
        }
        self.entries.retain(|e| !e.set.is_empty());
    }

    /// Sets the writer's time when the write changed the object or what it owns; keeps it
    /// otherwise, so that a write that changes nothing changes nothing.
    pub fn stamp(&mut self, id: &ManagerId, before: &Managed, object_changed: bool, now: &str) {
        let old = before.get(id);
        if let Some(entry) = self.entries.iter_mut().find(|e| e.id == *id) {
            let same_set = old.is_some_and(|o| o.set == entry.set);
            entry.time = match old {
                Some(o) if same_set && !object_changed => o.time.clone(),
                _ => now.to_string(),
            };
        }
    }

    /// The JSON of metadata.managedFields, sorted as the API server sorts them: by operation,
    /// time, manager, apiVersion, subresource.
    pub fn to_json(&self) -> Value {
        let mut entries: Vec<&Entry> = self.entries.iter().collect();
        entries.sort_by(|a, b| {
            (
                a.id.operation,
                &a.time,
                &a.id.manager,
                &a.api_version,
                &a.id.subresource,
            )
                .cmp(&(
                    b.id.operation,
                    &b.time,
                    &b.id.manager,
                    &b.api_version,
                    &b.id.subresource,
                ))
        });
        Value::Array(
            entries
                .into_iter()
                .map(|e| {
                    let mut out = json!({"manager": e.id.manager, "operation": e.id.operation.as_str(),
                        "apiVersion": e.api_version, "time": e.time, "fieldsType": "FieldsV1",
                        "fieldsV1": e.set.to_json()});
                    if !e.id.subresource.is_empty() {
                        out["subresource"] = json!(e.id.subresource);
                    }
                    out
                })
                .collect(),
        )
    }

    /// Reads metadata.managedFields as a client sent it; entries without fields are dropped, so
    /// `[{}]` clears ownership as it does on a real API server.
    pub fn from_json(value: &Value) -> Managed {
        let mut entries = Vec::new();
        for e in value.as_array().into_iter().flatten() {
            let manager = e["manager"].as_str().unwrap_or_default();
            let set = FieldSet::from_json(&e["fieldsV1"]);
            if e["fieldsV1"].as_object().is_none_or(|m| m.is_empty()) {
                continue;
            }
            let operation = match e["operation"].as_str() {
                Some("Apply") => Operation::Apply,
                _ => Operation::Update,
            };
            let api_version = e["apiVersion"].as_str().unwrap_or_default();
            let subresource = e["subresource"].as_str().unwrap_or_default();
            entries.push(Entry {
                id: ManagerId::new(manager, operation, subresource, api_version),
                api_version: api_version.to_string(),
                time: e["time"].as_str().unwrap_or_default().to_string(),
                set,
            });
        }
        Managed { entries }
    }
}

/// The message and causes of a 409 for apply conflicts, as conflict.go words them:
/// `Apply failed with 1 conflict: conflict with "other": .metadata.annotations.x`, or for more,
/// `Apply failed with N conflicts: conflicts with "a":\n- .x\n- .y` per manager.
pub fn conflict_message(conflicts: &[(Entry, Path)]) -> (String, Vec<Value>) {
    let causes = conflicts
        .iter()
        .map(|(e, p)| {
            json!({"reason": "FieldManagerConflict", "message": format!("conflict with {}", e.printed()),
                   "field": path_string(p)})
        })
        .collect();
    if let [(entry, path)] = conflicts {
        let message = format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            entry.printed(),
            path_string(path)
        );
        return (message, causes);
    }
    let mut by_manager: Vec<(String, Vec<String>)> = Vec::new();
    for (entry, path) in conflicts {
        let printed = entry.printed();
        match by_manager.iter_mut().find(|(m, _)| *m == printed) {
            Some((_, paths)) => paths.push(path_string(path)),
            None => by_manager.push((printed, vec![path_string(path)])),
        }
    }
    by_manager.sort();
    let lines: Vec<String> = by_manager
        .iter()
        .flat_map(|(m, paths)| {
            std::iter::once(format!("conflicts with {m}:"))
                .chain(paths.iter().map(|p| format!("- {p}")))
        })
        .collect();
    let message = format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    );
    (message, causes)
}
