//! Who talks to the API server: bearer tokens (`--token-auth-file`) and the
//! kubeconfigs that carry them.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use super::pki::random_token;

/// The user of the admin kubeconfig (group `system:masters`).
pub(crate) const ADMIN_USER: &str = "faas-admin";
/// The user of the restricted kubeconfig: authenticated, granted nothing.
pub(crate) const RESTRICTED_USER: &str = "faas-restricted";
/// The group the restricted user is in (besides `system:authenticated`).
pub(crate) const RESTRICTED_GROUP: &str = "faas:restricted";

/// One user with its token and kubeconfig.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Identity {
    /// The user name the API server sees.
    pub(crate) user: String,
    /// Its groups.
    pub(crate) groups: Vec<String>,
    /// Its bearer token.
    pub(crate) token: String,
    /// The kubeconfig written for it.
    pub(crate) kubeconfig: PathBuf,
}

/// Everyone with access to the cluster.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Identities {
    /// Cluster admin: the tests' and developers' identity.
    pub(crate) admin: Identity,
    /// No rights beyond discovery: for RBAC tests.
    pub(crate) restricted: Identity,
    /// kube-controller-manager.
    pub(crate) controller_manager: Identity,
    /// kube-scheduler.
    pub(crate) scheduler: Identity,
}

impl Identities {
    /// New tokens for every identity; `kubeconfigs` are their files.
    pub(crate) fn generate(
        admin_kubeconfig: PathBuf,
        restricted_kubeconfig: PathBuf,
        auth_dir: &Path,
    ) -> Result<Self> {
        let identity = |user: &str, groups: &[&str], kubeconfig: PathBuf| -> Result<Identity> {
            Ok(Identity {
                user: user.to_owned(),
                groups: groups.iter().map(|g| (*g).to_owned()).collect(),
                token: random_token()?,
                kubeconfig,
            })
        };
        Ok(Self {
            admin: identity(ADMIN_USER, &["system:masters"], admin_kubeconfig)?,
            restricted: identity(RESTRICTED_USER, &[RESTRICTED_GROUP], restricted_kubeconfig)?,
            controller_manager: identity(
                "system:kube-controller-manager",
                &[],
                auth_dir.join("controller-manager.kubeconfig"),
            )?,
            scheduler: identity(
                "system:kube-scheduler",
                &[],
                auth_dir.join("scheduler.kubeconfig"),
            )?,
        })
    }

    fn all(&self) -> [&Identity; 4] {
        [
            &self.admin,
            &self.restricted,
            &self.controller_manager,
            &self.scheduler,
        ]
    }

    /// Writes the API server's token file and every kubeconfig.
    pub(crate) fn write(&self, token_file: &Path, server: &str, ca: &Path) -> Result<()> {
        if let Some(dir) = token_file.parent() {
            fs::create_dir_all(dir)?;
        }
        fs::write(token_file, token_csv(&self.all()))
            .with_context(|| format!("cannot write {}", token_file.display()))?;
        for identity in self.all() {
            fs::write(&identity.kubeconfig, kubeconfig(identity, server, ca))
                .with_context(|| format!("cannot write {}", identity.kubeconfig.display()))?;
        }
        Ok(())
    }
}

/// `token,user,uid,"group1,group2"` lines.
fn token_csv(identities: &[&Identity]) -> String {
    let mut out = String::new();
    for identity in identities {
        let _ = write!(
            out,
            "{},{},{}",
            identity.token, identity.user, identity.user
        );
        if !identity.groups.is_empty() {
            let _ = write!(out, ",\"{}\"", identity.groups.join(","));
        }
        out.push('\n');
    }
    out
}

/// A kubeconfig for `identity` (YAML is a superset of JSON).
fn kubeconfig(identity: &Identity, server: &str, ca: &Path) -> String {
    let context = format!("{}@faas", identity.user);
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": "faas",
            "cluster": {
                "server": server,
                "certificate-authority": ca,
            },
        }],
        "users": [{
            "name": identity.user,
            "user": { "token": identity.token },
        }],
        "contexts": [{
            "name": context,
            "context": { "cluster": "faas", "user": identity.user, "namespace": "default" },
        }],
        "current-context": context,
    });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_quotes_groups_and_kubeconfig_names_the_user() {
        let admin = Identity {
            user: ADMIN_USER.into(),
            groups: vec!["system:masters".into(), "extra".into()],
            token: "t0k3n".into(),
            kubeconfig: PathBuf::from("/tmp/kubeconfig"),
        };
        let plain = Identity {
            user: "system:kube-scheduler".into(),
            groups: vec![],
            token: "other".into(),
            kubeconfig: PathBuf::from("/tmp/scheduler"),
        };
        assert_eq!(
            token_csv(&[&admin, &plain]),
            "t0k3n,faas-admin,faas-admin,\"system:masters,extra\"\n\
             other,system:kube-scheduler,system:kube-scheduler\n"
        );
        let config: serde_json::Value = serde_json::from_str(&kubeconfig(
            &admin,
            "https://127.0.0.1:6443",
            Path::new("/pki/ca.crt"),
        ))
        .unwrap();
        assert_eq!(config["users"][0]["user"]["token"], "t0k3n");
        assert_eq!(
            config["clusters"][0]["cluster"]["certificate-authority"],
            "/pki/ca.crt"
        );
        assert_eq!(config["current-context"], "faas-admin@faas");
    }
}
