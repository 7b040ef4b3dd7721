//! The permissions of the gateway and the autoscaler, generated from the calls
//! their code makes, for a least-privilege identity.
//!
//! The gateway lists and watches EndpointSlices and Functions (their
//! `spec.policy` rules their asynchronous calls). The autoscaler lists and
//! watches its targets (Functions or Deployments), patches their `scale`
//! subresource, and patches pods (their deletion cost) before scaling in.
//! `/system/*`, served by the [`KubernetesProvider`](crate::provider::KubernetesProvider),
//! reads, creates, replaces, scales and deletes `Function` resources.

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::autoscaler::ScaleTarget;

/// The name of the generated ClusterRole.
pub const GATEWAY_ROLE: &str = "faas-gateway";

fn rule(group: &str, resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_owned()]),
        resources: Some(resources.iter().map(|r| (*r).to_owned()).collect()),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        ..PolicyRule::default()
    }
}

/// The rules of the gateway, and of the autoscaler writing to `target` when it runs beside it.
///
/// ```
/// use faas_k8s::autoscaler::ScaleTarget;
/// use faas_k8s::gateway::rbac::gateway_rules;
///
/// let rules = gateway_rules(Some(&ScaleTarget::Deployment));
/// assert!(rules.iter().any(|r| r.resources.as_deref() == Some(&["deployments/scale".to_owned()][..])));
/// ```
pub fn gateway_rules(autoscaler: Option<&ScaleTarget>) -> Vec<PolicyRule> {
    let mut rules = vec![
        rule("discovery.k8s.io", &["endpointslices"], &["list", "watch"]),
        // Each Function's `spec.policy` decides how its asynchronous calls are retried.
        rule(crate::function::GROUP, &["functions"], &["list", "watch"]),
    ];
    if let Some(target) = autoscaler {
        let resource = target.api_resource();
        if resource.group != crate::function::GROUP {
            rules.push(rule(
                &resource.group,
                &[&resource.plural],
                &["list", "watch"],
            ));
        }
        rules.push(rule(
            &resource.group,
            &[&format!("{}/scale", resource.plural)],
            &["patch"],
        ));
        rules.push(rule("", &["pods"], &["patch"]));
    }
    rules
}

/// The rules of `/system/*` over the [`KubernetesProvider`](crate::provider::KubernetesProvider):
/// list, describe, deploy, update, scale and remove `Function` resources; the operator does the
/// rest.
///
/// ```
/// use faas_k8s::gateway::rbac::system_api_rules;
///
/// let rules = system_api_rules();
/// assert!(rules.iter().any(|r| r.verbs.contains(&"delete".to_owned())));
/// ```
pub fn system_api_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            crate::function::GROUP,
            &["functions"],
            &["get", "list", "create", "update", "delete"],
        ),
        rule(crate::function::GROUP, &["functions/scale"], &["patch"]),
    ]
}

/// The ClusterRole `faas-gateway`: [`gateway_rules`] for the gateway and an autoscaler writing
/// to Functions, and [`system_api_rules`] for `/system/*`.
pub fn cluster_role() -> ClusterRole {
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(GATEWAY_ROLE.to_owned()),
            ..ObjectMeta::default()
        },
        rules: Some(
            gateway_rules(Some(&ScaleTarget::Function))
                .into_iter()
                .chain(system_api_rules())
                .collect(),
        ),
        aggregation_rule: None,
    }
}
