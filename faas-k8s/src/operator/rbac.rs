//! The operator's permissions, generated from what its code does: a ClusterRole for the
//! objects it reconciles and a Role for its leader Lease.
//!
//! Each rule names the calls the operator makes and nothing more: it watches Functions and
//! writes their status; it applies (server-side, so `patch`) Deployments and Services, which
//! `create` covers when they do not exist yet; it reads pods to report image failures and
//! Secrets (`get` only) to report missing ones; it records Events.

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::function::GROUP;

/// The name of the generated ClusterRole and Role.
pub const OPERATOR_ROLE: &str = "faas-operator";

fn rule(group: &str, resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_owned()]),
        resources: Some(resources.iter().map(|r| (*r).to_owned()).collect()),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        ..PolicyRule::default()
    }
}

/// The rules the operator needs on the objects it reconciles, in every namespace it watches.
pub fn operator_rules() -> Vec<PolicyRule> {
    vec![
        rule(GROUP, &["functions"], &["get", "list", "watch"]),
        rule(GROUP, &["functions/status"], &["get", "patch"]),
        // Owner references with blockOwnerDeletion need this where the admission plugin runs.
        rule(GROUP, &["functions/finalizers"], &["update"]),
        rule(
            "apps",
            &["deployments"],
            &["get", "list", "watch", "create", "patch"],
        ),
        rule(
            "",
            &["services"],
            &["get", "list", "watch", "create", "patch"],
        ),
        rule("", &["pods"], &["get", "list", "watch"]),
        rule("", &["secrets"], &["get"]),
        rule("events.k8s.io", &["events"], &["create", "patch"]),
    ]
}

/// The rules of the leader Lease, in the operator's own namespace.
pub fn leader_election_rules() -> Vec<PolicyRule> {
    vec![rule(
        "coordination.k8s.io",
        &["leases"],
        &["get", "create", "update"],
    )]
}

/// The ClusterRole `faas-operator` with [`operator_rules`].
///
/// ```
/// let role = faas_k8s::operator::cluster_role();
/// assert_eq!(role.metadata.name.as_deref(), Some("faas-operator"));
/// ```
pub fn cluster_role() -> ClusterRole {
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(OPERATOR_ROLE.to_owned()),
            ..ObjectMeta::default()
        },
        rules: Some(operator_rules()),
        aggregation_rule: None,
    }
}

/// The Role `faas-operator` in `namespace` with [`leader_election_rules`].
pub fn leader_election_role(namespace: &str) -> Role {
    Role {
        metadata: ObjectMeta {
            name: Some(OPERATOR_ROLE.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..ObjectMeta::default()
        },
        rules: Some(leader_election_rules()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_rule_grants_wildcards_or_deletes() {
        for rule in operator_rules().iter().chain(&leader_election_rules()) {
            for verb in &rule.verbs {
                assert!(
                    !["*", "delete", "deletecollection", "escalate", "bind"]
                        .contains(&verb.as_str())
                );
            }
            for resource in rule.resources.iter().flatten() {
                assert_ne!(resource, "*");
            }
        }
        let secrets = operator_rules()
            .into_iter()
            .find(|rule| rule.resources.as_deref() == Some(&["secrets".to_owned()][..]))
            .unwrap();
        assert_eq!(
            secrets.verbs,
            ["get"],
            "Secrets are only looked up, never listed"
        );
    }
}
