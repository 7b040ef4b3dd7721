//! Whether a live object already says what the operator would apply: the test that keeps a steady
//! `Function` from causing any write.
//!
//! Server-side apply of an unchanged object changes nothing, but it is still a write request;
//! comparing first makes a reconcile of a steady function read-only. The live object holds more
//! than the operator sets (defaults, status, other managers' fields), so the comparison asks
//! whether every field of the desired object is present in the live one with the same value.

use serde_json::Value;

/// Whether every field `desired` sets has the same value in `live`.
///
/// Objects compare key by key (extra keys in `live` are fine); lists of objects match when every
/// desired element is contained in some live element and no desired element is missing; lists
/// of scalars (command lines, arguments) must be equal; scalars must be equal, except that a
/// desired number matches a live number of the same value.
pub(crate) fn contains(live: &Value, desired: &Value) -> bool {
    match (live, desired) {
        (Value::Object(live), Value::Object(desired)) => {
            desired.iter().all(|(key, want)| match live.get(key) {
                Some(have) => contains(have, want),
                None => want.is_null(),
            })
        }
        (Value::Array(live), Value::Array(desired)) => {
            if desired.iter().all(|item| !item.is_object()) {
                live == desired
            } else {
                live.len() >= desired.len()
                    && desired
                        .iter()
                        .all(|want| live.iter().any(|have| contains(have, want)))
            }
        }
        (Value::Number(live), Value::Number(desired)) => live.as_f64() == desired.as_f64(),
        (live, desired) => live == desired,
    }
}

/// Whether `live` (when it exists) already says everything `desired` says.
pub(crate) fn is_applied<K: serde::Serialize>(live: Option<&K>, desired: &K) -> bool {
    let Some(live) = live else {
        return false;
    };
    match (serde_json::to_value(live), serde_json::to_value(desired)) {
        (Ok(live), Ok(desired)) => contains(&live, &desired),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn extra_live_fields_are_no_drift() {
        let live = json!({"spec": {"replicas": 2, "paused": false, "template": {"containers": [
            {"name": "f", "image": "a", "imagePullPolicy": "Always", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]}
        ]}}});
        let desired = json!({"spec": {"replicas": 2, "template": {"containers": [
            {"name": "f", "image": "a", "env": [{"name": "X", "value": "1"}]}
        ]}}});
        assert!(contains(&live, &desired));
    }

    #[test]
    fn a_changed_or_missing_field_is_drift() {
        let live = json!({"spec": {"replicas": 2, "args": ["a", "b"], "containers": [{"name": "f", "image": "a"}]}});
        for desired in [
            json!({"spec": {"replicas": 3}}),
            json!({"spec": {"args": ["b", "a"]}}),
            json!({"spec": {"containers": [{"name": "f", "image": "b"}]}}),
            json!({"spec": {"containers": [{"name": "f"}, {"name": "g"}]}}),
            json!({"spec": {"selector": {"app": "f"}}}),
        ] {
            assert!(!contains(&live, &desired), "{desired}");
        }
        assert!(!is_applied(None, &json!({})));
        assert!(is_applied(Some(&live), &json!({"spec": {"replicas": 2.0}})));
    }
}
