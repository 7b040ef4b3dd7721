//! The `faas-operator` command line (feature `cli`): run the operator, or print what installing
//! it needs (the CustomResourceDefinition, the roles).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use kube::CustomResourceExt as _;
use kube::config::{KubeConfigOptions, Kubeconfig};

use super::{
    FunctionController, LeaderElection, OPERATOR_ROLE, OperatorConfig, cluster_role, install_crd,
    leader_election_role,
};
use crate::function::Function;

/// The faas function operator.
#[derive(Debug, Parser)]
#[command(name = "faas-operator", version, about)]
#[non_exhaustive]
pub struct OperatorArgs {
    /// The kubeconfig (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, global = true, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// What to do (default: run).
    #[command(subcommand)]
    pub command: Option<OperatorCommand>,
}

/// A `faas-operator` command.
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum OperatorCommand {
    /// Reconcile Functions until SIGTERM or SIGINT.
    Run {
        /// Only the Functions of this namespace (default: every namespace).
        #[arg(long)]
        namespace: Option<String>,
        /// Take part in leader election through a Lease (run several replicas).
        #[arg(long)]
        leader_elect: bool,
        /// The namespace of the leader Lease.
        #[arg(long, default_value = "faas-system", env = "POD_NAMESPACE")]
        lease_namespace: String,
        /// The name of the leader Lease.
        #[arg(long, default_value = "faas-operator")]
        lease_name: String,
        /// This replica's identity (default: host name and process id).
        #[arg(long, env = "POD_NAME")]
        identity: Option<String>,
        /// Install or upgrade the Function CustomResourceDefinition first.
        #[arg(long)]
        install_crd: bool,
    },
    /// Print the Function CustomResourceDefinition (YAML).
    Crd,
    /// Print the operator's ClusterRole, its leader-election Role and their bindings (YAML).
    Rbac {
        /// The namespace the operator runs in.
        #[arg(long, default_value = "faas-system")]
        namespace: String,
        /// The operator's ServiceAccount.
        #[arg(long, default_value = "faas-operator")]
        service_account: String,
    },
}

async fn client(kubeconfig: Option<&PathBuf>) -> Result<kube::Client, Box<dyn std::error::Error>> {
    let config = match kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| format!("reading kubeconfig {}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?
        }
        None => kube::Config::infer().await?,
    };
    Ok(kube::Client::try_from(config)?)
}

fn yaml_documents(values: &[serde_json::Value]) -> Result<String, Box<dyn std::error::Error>> {
    let mut text = String::new();
    for value in values {
        text.push_str("---\n");
        text.push_str(&serde_saphyr::to_string(value)?);
    }
    Ok(text)
}

/// The ClusterRole, the Role and their bindings for ServiceAccount `account` of `namespace`.
///
/// # Errors
///
/// When an object cannot be serialized.
pub fn rbac_manifests(
    namespace: &str,
    account: &str,
) -> Result<Vec<serde_json::Value>, serde_json::Error> {
    let subject = serde_json::json!([{
        "kind": "ServiceAccount", "name": account, "namespace": namespace,
    }]);
    Ok(vec![
        serde_json::json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": account, "namespace": namespace},
        }),
        serde_json::to_value(cluster_role())?,
        serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": OPERATOR_ROLE},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": OPERATOR_ROLE},
            "subjects": subject,
        }),
        serde_json::to_value(leader_election_role(namespace))?,
        serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": OPERATOR_ROLE, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": OPERATOR_ROLE},
            "subjects": subject,
        }),
    ])
}

/// Runs the command `args` names.
///
/// # Errors
///
/// When the kubeconfig is unusable, the CRD cannot be installed, or the operator fails.
pub async fn run(args: OperatorArgs) -> Result<(), Box<dyn std::error::Error>> {
    match args.command.unwrap_or(OperatorCommand::Run {
        namespace: None,
        leader_elect: false,
        lease_namespace: "faas-system".into(),
        lease_name: "faas-operator".into(),
        identity: None,
        install_crd: false,
    }) {
        OperatorCommand::Crd => {
            print!(
                "{}",
                yaml_documents(&[serde_json::to_value(Function::crd())?])?
            );
            Ok(())
        }
        OperatorCommand::Rbac {
            namespace,
            service_account,
        } => {
            print!(
                "{}",
                yaml_documents(&rbac_manifests(&namespace, &service_account)?)?
            );
            Ok(())
        }
        OperatorCommand::Run {
            namespace,
            leader_elect,
            lease_namespace,
            lease_name,
            identity,
            install_crd: install,
        } => {
            let client = client(args.kubeconfig.as_ref()).await?;
            if install {
                install_crd(&client).await?;
            }
            let mut config = OperatorConfig::default();
            if let Some(namespace) = namespace {
                config = config.with_namespace(namespace);
            }
            if let Some(identity) = &identity {
                config = config.with_instance(identity);
            }
            let instance = config.instance.clone();
            let mut controller = FunctionController::new(client, config).shutdown_on_signal();
            if leader_elect {
                controller = controller.with_leader_election(LeaderElection::new(
                    lease_namespace,
                    lease_name,
                    identity.unwrap_or(instance),
                ));
            }
            controller.run().await?;
            Ok(())
        }
    }
}
