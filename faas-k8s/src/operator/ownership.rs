//! Field ownership of the objects the operator creates.
//!
//! A Deployment or Service the operator has never seen is created with a plain create under the
//! operator's field manager: the API server does less for a create than for a server-side apply
//! of a missing object. A create records the fields as the manager's *update*
//! (`operation: Update`), not as its applied configuration. Were the operator to apply over such
//! an object as it is, the fields would be owned twice (by its update entry and by its apply
//! entry), and a field the Function no longer sets would stay: the update entry still owns it.
//!
//! So before the operator applies over an object, it makes the update entry its apply entry,
//! with one patch of `metadata.managedFields` guarded by the object's `resourceVersion`. From
//! then on the object is owned exactly as if it had been applied from the start. This happens
//! once per object, and only when it must be corrected: a Function that is only created never
//! pays for it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};
use kube::Resource;
use serde_json::Value;

/// The operation a create or an update records in `managedFields`.
const UPDATE: &str = "Update";
/// The operation a server-side apply records in `managedFields`.
const APPLY: &str = "Apply";

fn is_main_resource(entry: &ManagedFieldsEntry) -> bool {
    entry.subresource.as_deref().is_none_or(str::is_empty)
}

fn is_entry_of(entry: &ManagedFieldsEntry, manager: &str, operation: &str) -> bool {
    entry.manager.as_deref() == Some(manager)
        && entry.operation.as_deref() == Some(operation)
        && is_main_resource(entry)
}

/// Whether `object` holds fields that `manager` wrote by a create or an update rather than by
/// an apply.
pub(crate) fn has_created_fields<K: Resource>(object: &K, manager: &str) -> bool {
    object
        .meta()
        .managed_fields
        .iter()
        .flatten()
        .any(|entry| is_entry_of(entry, manager, UPDATE))
}

/// Adds every field of the field set `from` to the field set `into` (both in the `FieldsV1`
/// form: nested objects whose keys name fields, list items or values).
fn merge_field_sets(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(into), Value::Object(from)) => {
            for (key, value) in from {
                match into.get_mut(key) {
                    Some(existing) => merge_field_sets(existing, value),
                    None => {
                        into.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (into, from) if into.is_null() => *into = from.clone(),
        _ => {}
    }
}

/// `entries` with `manager`'s update entry turned into its apply entry (merged into the apply
/// entry it already has, if any), or `None` when `manager` has no update entry.
pub(crate) fn as_applied(
    entries: &[ManagedFieldsEntry],
    manager: &str,
) -> Option<Vec<ManagedFieldsEntry>> {
    let position = entries
        .iter()
        .position(|entry| is_entry_of(entry, manager, UPDATE))?;
    let mut entries = entries.to_vec();
    let created = entries.remove(position);
    match entries
        .iter_mut()
        .find(|entry| is_entry_of(entry, manager, APPLY))
    {
        Some(applied) => {
            let fields = applied
                .fields_v1
                .get_or_insert_with(|| FieldsV1(Value::Object(serde_json::Map::new())));
            if let Some(FieldsV1(created)) = &created.fields_v1 {
                merge_field_sets(&mut fields.0, created);
            }
        }
        None => entries.push(ManagedFieldsEntry {
            operation: Some(APPLY.to_owned()),
            ..created
        }),
    }
    Some(entries)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn entry(
        manager: &str,
        operation: &str,
        subresource: Option<&str>,
        fields: Value,
    ) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            api_version: Some("apps/v1".into()),
            fields_type: Some("FieldsV1".into()),
            fields_v1: Some(FieldsV1(fields)),
            manager: Some(manager.into()),
            operation: Some(operation.into()),
            subresource: subresource.map(Into::into),
            time: None,
        }
    }

    #[test]
    fn a_created_entry_becomes_the_apply_entry_and_other_managers_keep_theirs() {
        let entries = [
            entry(
                "faas-operator",
                "Update",
                None,
                json!({"f:spec": {"f:replicas": {}}}),
            ),
            entry(
                "kube-controller-manager",
                "Update",
                Some("status"),
                json!({"f:status": {"f:replicas": {}}}),
            ),
            entry(
                "kubectl-edit",
                "Update",
                None,
                json!({"f:spec": {"f:paused": {}}}),
            ),
        ];
        let mut object = k8s_openapi::api::apps::v1::Deployment::default();
        object.metadata.managed_fields = Some(entries.to_vec());
        assert!(has_created_fields(&object, "faas-operator"));
        assert!(!has_created_fields(&object, "someone-else"));

        let upgraded = as_applied(&entries, "faas-operator").expect("an update entry");
        assert_eq!(upgraded.len(), 3);
        let ours: Vec<_> = upgraded
            .iter()
            .filter(|e| e.manager.as_deref() == Some("faas-operator"))
            .collect();
        assert_eq!(ours.len(), 1, "nothing is owned twice");
        assert_eq!(ours[0].operation.as_deref(), Some("Apply"));
        assert_eq!(
            ours[0].fields_v1.as_ref().map(|f| &f.0),
            Some(&json!({"f:spec": {"f:replicas": {}}}))
        );
        assert!(
            upgraded
                .iter()
                .any(|e| e.manager.as_deref() == Some("kubectl-edit")
                    && e.operation.as_deref() == Some("Update"))
        );
        object.metadata.managed_fields = Some(upgraded.clone());
        assert!(!has_created_fields(&object, "faas-operator"));
        assert_eq!(
            as_applied(&upgraded, "faas-operator"),
            None,
            "once is enough"
        );
    }

    #[test]
    fn a_created_entry_merges_into_an_existing_apply_entry() {
        let entries = [
            entry(
                "faas-operator",
                "Apply",
                None,
                json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"function\"}": {"f:image": {}}}}}}}),
            ),
            entry(
                "faas-operator",
                "Update",
                None,
                json!({"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"function\"}": {"f:env": {}}}}}}}),
            ),
        ];
        let upgraded = as_applied(&entries, "faas-operator").expect("an update entry");
        assert_eq!(upgraded.len(), 1);
        assert_eq!(
            upgraded[0].fields_v1.as_ref().map(|f| &f.0),
            Some(
                &json!({"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"function\"}": {"f:image": {}, "f:env": {}}}}}}})
            )
        );
    }
}
