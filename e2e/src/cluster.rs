//! Finding the control plane and connecting to it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::namespace::TestNamespace;
use crate::{Error, Result};

/// What a test says when no control plane answers.
pub const NO_CONTROL_PLANE: &str =
    "the e2e tier needs a running control plane: run `cargo xtask cluster up`";

/// The restricted identity's user name unless `FAAS_RESTRICTED_USER` says otherwise.
const DEFAULT_RESTRICTED_USER: &str = "faas-restricted";
/// How long the guard waits for the API server to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// The files `cargo xtask cluster up` writes, for tests and the virtual node.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClusterPaths {
    /// The cluster directory (`target/cluster`, or `FAAS_CLUSTER_DIR`).
    pub dir: PathBuf,
    /// The admin kubeconfig used when `KUBECONFIG` is not set.
    pub kubeconfig: PathBuf,
    /// The restricted identity's kubeconfig.
    pub restricted_kubeconfig: PathBuf,
    /// The PKI.
    pub pki: ClusterPki,
}

/// The cluster's certificates and keys (PEM files under `<dir>/pki`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClusterPki {
    /// The cluster CA certificate: it signs everything below and the API
    /// server trusts client certificates it signed.
    pub ca_cert: PathBuf,
    /// The cluster CA key, to sign more certificates in tests.
    pub ca_key: PathBuf,
    /// The serving certificate for a virtual node's kubelet API (SAN
    /// 127.0.0.1 and localhost); the API server verifies it with the CA.
    pub kubelet_cert: PathBuf,
    /// Its key.
    pub kubelet_key: PathBuf,
    /// The client certificate the API server presents to kubelets
    /// (CN `kube-apiserver-kubelet-client`, O `system:masters`).
    pub apiserver_kubelet_client_cert: PathBuf,
}

impl ClusterPaths {
    /// The paths for cluster directory `dir`.
    pub fn in_dir(dir: PathBuf) -> Self {
        let pki = dir.join("pki");
        Self {
            kubeconfig: dir.join("kubeconfig"),
            restricted_kubeconfig: dir.join("restricted.kubeconfig"),
            pki: ClusterPki {
                ca_cert: pki.join("ca.crt"),
                ca_key: pki.join("ca.key"),
                kubelet_cert: pki.join("kubelet.crt"),
                kubelet_key: pki.join("kubelet.key"),
                apiserver_kubelet_client_cert: pki.join("apiserver-kubelet-client.crt"),
            },
            dir,
        }
    }

    /// The paths from the environment: `FAAS_CLUSTER_DIR`, else
    /// `$CARGO_TARGET_DIR/cluster`, else `target/cluster` of this workspace;
    /// `FAAS_RESTRICTED_KUBECONFIG` overrides the restricted kubeconfig.
    pub fn from_env() -> Self {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .to_path_buf();
        let dir = if let Some(dir) = std::env::var_os("FAAS_CLUSTER_DIR") {
            PathBuf::from(dir)
        } else if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
            workspace.join(target).join("cluster")
        } else {
            workspace.join("target").join("cluster")
        };
        let mut paths = Self::in_dir(dir);
        if let Some(restricted) = std::env::var_os("FAAS_RESTRICTED_KUBECONFIG") {
            paths.restricted_kubeconfig = PathBuf::from(restricted);
        }
        paths
    }
}

/// A connection to the running control plane.
#[derive(Clone)]
pub struct TestCluster {
    client: Client,
    config: kube::Config,
    paths: ClusterPaths,
}

impl std::fmt::Debug for TestCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCluster")
            .field("server", &self.config.cluster_url.to_string())
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

impl TestCluster {
    /// Connects to the control plane or fails the test with
    /// [`NO_CONTROL_PLANE`] and the reason: the guard every end-to-end test
    /// starts with.
    ///
    /// # Panics
    ///
    /// When no control plane answers.
    pub async fn require() -> Self {
        match Self::connect().await {
            Ok(cluster) => cluster,
            Err(err) => panic!("{err}"),
        }
    }

    /// Connects to the control plane named by `KUBECONFIG` (or
    /// `target/cluster/kubeconfig`) and checks that it answers.
    pub async fn connect() -> Result<Self> {
        let paths = ClusterPaths::from_env();
        let config = match std::env::var_os("KUBECONFIG") {
            Some(_) => kube::Config::from_kubeconfig(&KubeConfigOptions::default())
                .await
                .map_err(|err| Error::NoControlPlane {
                    reason: format!("cannot use $KUBECONFIG: {err}"),
                })?,
            None => {
                if !paths.kubeconfig.is_file() {
                    return Err(Error::NoControlPlane {
                        reason: format!(
                            "KUBECONFIG is not set and {} does not exist",
                            paths.kubeconfig.display()
                        ),
                    });
                }
                load_config(&paths.kubeconfig).await?
            }
        };
        let server = config.cluster_url.to_string();
        let client = Client::try_from(config.clone()).map_err(|err| Error::NoControlPlane {
            reason: format!("cannot build a client for {server}: {err}"),
        })?;
        match tokio::time::timeout(CONNECT_TIMEOUT, client.apiserver_version()).await {
            Ok(Ok(_)) => Ok(Self {
                client,
                config,
                paths,
            }),
            Ok(Err(err)) => Err(Error::NoControlPlane {
                reason: format!("{server} did not answer: {err}"),
            }),
            Err(_) => Err(Error::NoControlPlane {
                reason: format!(
                    "{server} did not answer within {}s",
                    CONNECT_TIMEOUT.as_secs()
                ),
            }),
        }
    }

    /// The admin client.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The admin client's configuration (to build more clients, e.g. on
    /// another runtime).
    pub fn config(&self) -> &kube::Config {
        &self.config
    }

    /// Where the cluster's files are.
    pub fn paths(&self) -> &ClusterPaths {
        &self.paths
    }

    /// A client for the restricted identity: authenticated, but granted
    /// nothing beyond what every authenticated user may do.
    pub async fn restricted_client(&self) -> Result<Client> {
        let config = load_config(&self.paths.restricted_kubeconfig).await?;
        Client::try_from(config).map_err(|err| Error::Kubeconfig {
            path: self.paths.restricted_kubeconfig.clone(),
            source: Box::new(err),
        })
    }

    /// The restricted identity's user name, for RoleBindings.
    pub fn restricted_user(&self) -> String {
        std::env::var("FAAS_RESTRICTED_USER").unwrap_or_else(|_| DEFAULT_RESTRICTED_USER.into())
    }

    /// Creates a namespace for one test (`e2e-<prefix>-<random>`), ready
    /// for pods (its default ServiceAccount exists); it is deleted when the
    /// returned value is dropped.
    pub async fn namespace(&self, prefix: &str) -> Result<TestNamespace> {
        TestNamespace::create(self, prefix).await
    }
}

async fn load_config(path: &Path) -> Result<kube::Config> {
    let error = |source: Box<dyn std::error::Error + Send + Sync>| Error::Kubeconfig {
        path: path.to_path_buf(),
        source,
    };
    let kubeconfig = Kubeconfig::read_from(path).map_err(|err| error(Box::new(err)))?;
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|err| error(Box::new(err)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pki_files_live_under_the_cluster_dir() {
        let paths = ClusterPaths::in_dir(PathBuf::from("/x/cluster"));
        assert_eq!(paths.kubeconfig, Path::new("/x/cluster/kubeconfig"));
        assert_eq!(paths.pki.ca_cert, Path::new("/x/cluster/pki/ca.crt"));
        assert_eq!(
            paths.pki.kubelet_key,
            Path::new("/x/cluster/pki/kubelet.key")
        );
    }

    #[test]
    fn the_refusal_says_how_to_start_the_cluster() {
        let err = Error::NoControlPlane {
            reason: "nothing listens on 127.0.0.1:6443".into(),
        };
        let text = err.to_string();
        assert!(text.starts_with(NO_CONTROL_PLANE), "{text}");
        assert!(text.contains("cargo xtask cluster up"));
    }
}
