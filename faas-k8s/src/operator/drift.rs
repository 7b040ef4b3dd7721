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
    difference(live, desired).is_none()
}

/// Where `live` first fails to say what `desired` says (a JSON path such as
/// `.spec.template.spec.containers[0]`), or `None` when it says all of it; see [`contains`].
pub(crate) fn difference(live: &Value, desired: &Value) -> Option<String> {
    match (live, desired) {
        (Value::Object(live), Value::Object(desired)) => {
            desired.iter().find_map(|(key, want)| match live.get(key) {
                Some(have) => difference(have, want).map(|path| format!(".{key}{path}")),
                None if want.is_null() => None,
                None => Some(format!(".{key}")),
            })
        }
        (Value::Array(live), Value::Array(desired)) => {
            if desired.iter().all(|item| !item.is_object()) {
                (live != desired).then(String::new)
            } else if live.len() < desired.len() {
                Some(String::new())
            } else {
                desired
                    .iter()
                    .position(|want| !live.iter().any(|have| contains(have, want)))
                    .map(|index| format!("[{index}]"))
            }
        }
        (Value::Number(live), Value::Number(desired)) => {
            (live.as_f64() != desired.as_f64()).then(String::new)
        }
        (live, desired) => (live != desired).then(String::new),
    }
}

/// Why `desired` must be applied over `live`, or `None` when `live` already says all of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Drift {
    /// The object does not exist (as far as the operator knows).
    Missing,
    /// The object differs from what the Function says at this JSON path.
    Differs(String),
}

/// How `live` differs from `desired`, if it does.
pub(crate) fn drift<K: serde::Serialize>(live: Option<&K>, desired: &K) -> Option<Drift> {
    let Some(live) = live else {
        return Some(Drift::Missing);
    };
    match (serde_json::to_value(live), serde_json::to_value(desired)) {
        (Ok(live), Ok(desired)) => difference(&live, &desired).map(Drift::Differs),
        _ => Some(Drift::Differs(String::new())),
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
        assert_eq!(drift(None, &json!({})), Some(Drift::Missing));
        assert_eq!(
            difference(
                &live,
                &json!({"spec": {"containers": [{"name": "f"}, {"name": "g"}]}})
            ),
            Some(".spec.containers".to_owned()),
            "a shorter live list differs as a whole"
        );
        assert_eq!(
            difference(
                &live,
                &json!({"spec": {"containers": [{"name": "f", "image": "b"}]}})
            ),
            Some(".spec.containers[0]".to_owned())
        );
        assert_eq!(
            difference(&live, &json!({"spec": {"args": ["b", "a"]}})),
            Some(".spec.args".to_owned())
        );
        assert_eq!(
            drift(Some(&live), &json!({"spec": {"replicas": 2.0}})),
            None
        );
    }
}
