use faas_macros::function;

#[function(trigger = kube(kind = "Deployment"))]
async fn missing_api_version() {}

#[function(trigger = kube(api_version = "apps/v1", kind = "deployments"))]
async fn plural_kind() {}

#[function(trigger = kube(api_version = "apps", kind = "Deployment"))]
async fn group_without_version() {}

#[function(trigger = kube(api_version = "v1", kind = "Pod", label_selector = "app=web"))]
async fn misnamed_selector() {}

#[function(trigger = kube(api_version = "v1", kind = "Pod", namespace = "Shop"))]
async fn bad_namespace() {}

#[function(trigger = k8s(api_version = "v1", kind = "Pod"))]
async fn misnamed_source() {}

fn main() {}
