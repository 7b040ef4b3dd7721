//! Building etcd, kube-apiserver, kube-controller-manager and kube-scheduler
//! from the Go module proxy, cached outside the checkout and keyed by
//! version, so only the first run pays for the build.
//!
//! The recipe (see [`super::gomod`]): a throwaway module requires
//! `k8s.io/kubernetes@<version>` with upstream's whole requirement list and
//! replaces every staging module with its `v0.x.y` release, then
//! `go build -trimpath` with the release's version stamped in. etcd is built
//! the same way from `go.etcd.io/etcd/server/v3` at the version the
//! Kubernetes release pins in its `build/dependencies.yaml`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use super::build_lock::BuildLock;
use super::go::{Go, Module};
use super::gomod;
use crate::output;
use crate::workspace::Workspace;

/// Bump when the way the binaries are built changes, so caches rebuild.
const RECIPE: u32 = 1;
const MANIFEST: &str = "manifest.json";
const KUBERNETES_MODULE: &str = "k8s.io/kubernetes";
const ETCD_MODULE: &str = "go.etcd.io/etcd/server/v3";
const KUBERNETES_COMMANDS: [&str; 3] = [
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

/// The versions to build.
#[derive(Clone, Debug)]
pub(crate) struct BuildSpec {
    /// Kubernetes release, `v1.37.2`.
    pub(crate) kubernetes: String,
    /// etcd release; `None` means the one the Kubernetes release pins.
    pub(crate) etcd: Option<String>,
}

/// Where the built control plane binaries are.
#[derive(Clone, Debug)]
pub(crate) struct Binaries {
    dir: PathBuf,
    /// The etcd version they include.
    pub(crate) etcd_version: String,
}

impl Binaries {
    /// The directory holding all four.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of one binary (`etcd`, `kube-apiserver`, ...).
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// What a finished build recorded next to the binaries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Manifest {
    recipe: u32,
    kubernetes: String,
    etcd: String,
    go: String,
}

/// `~/.cache/faas/k8s/<version>`.
pub(crate) fn version_dir(ws: &Workspace, kubernetes: &str) -> PathBuf {
    ws.cache().join("k8s").join(kubernetes)
}

/// The cached binaries for `spec`, if a complete build is there.
pub(crate) fn find(ws: &Workspace, spec: &BuildSpec) -> Option<Binaries> {
    let dir = version_dir(ws, &spec.kubernetes).join("bin");
    let manifest: Manifest = serde_json::from_slice(&fs::read(dir.join(MANIFEST)).ok()?).ok()?;
    let wanted_etcd = spec.etcd.as_deref().unwrap_or(&manifest.etcd);
    let complete = manifest.recipe == RECIPE
        && manifest.kubernetes == spec.kubernetes
        && manifest.etcd == wanted_etcd
        && std::iter::once("etcd")
            .chain(KUBERNETES_COMMANDS)
            .all(|name| dir.join(name).is_file());
    complete.then_some(Binaries {
        dir,
        etcd_version: manifest.etcd,
    })
}

/// Finds the cached binaries or builds them (`force` rebuilds).
pub(crate) fn ensure(ws: &Workspace, spec: &BuildSpec, force: bool) -> Result<Binaries> {
    let cached = |how: &str| {
        if force {
            return None;
        }
        let found = find(ws, spec)?;
        output::step(format!(
            "control plane binaries: Kubernetes {} and etcd {} {how} {}",
            spec.kubernetes,
            found.etcd_version,
            found.dir().display()
        ));
        Some(found)
    };
    if let Some(found) = cached("cached in") {
        return Ok(found);
    }
    let _lock = BuildLock::acquire(&version_dir(ws, &spec.kubernetes), "the control plane")?;
    // Built by another run while this one waited for the lock.
    if let Some(found) = cached("built by another run in") {
        return Ok(found);
    }
    build(ws, spec)
}

fn build(ws: &Workspace, spec: &BuildSpec) -> Result<Binaries> {
    let started = Instant::now();
    let root = version_dir(ws, &spec.kubernetes);
    let bin = root.join("bin");
    let staging = root.join("bin.partial");
    let go = Go::find()?;
    output::step(format!(
        "building the control plane (Kubernetes {}) from the Go module proxy with {}; \
         the first build takes a long while (see CONTRIBUTING.md), later runs use the cache",
        spec.kubernetes, go.version
    ));
    let staging_version = gomod::staging_version(&spec.kubernetes).with_context(|| {
        format!(
            "`{}` is not a Kubernetes release version like v1.37.2",
            spec.kubernetes
        )
    })?;
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging)?;

    // Kubernetes first: its dependencies.yaml says which etcd it pins.
    let kubernetes = go.download(&root, KUBERNETES_MODULE, &spec.kubernetes)?;
    let etcd_version = match &spec.etcd {
        Some(version) => version.clone(),
        None => pinned_etcd(&kubernetes)?,
    };
    output::info(format!(
        "etcd {etcd_version} (pinned by Kubernetes {})",
        spec.kubernetes
    ));
    let etcd = go.download(&root, ETCD_MODULE, &etcd_version)?;

    let etcd_ldflags = format!("-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA={etcd_version}");
    go.build_commands(
        &root.join("src-etcd"),
        &etcd,
        &etcd_version,
        &[(ETCD_MODULE.to_owned(), "etcd")],
        &etcd_ldflags,
        &staging,
    )?;

    let packages: Vec<(String, &str)> = KUBERNETES_COMMANDS
        .iter()
        .map(|name| (format!("{KUBERNETES_MODULE}/cmd/{name}"), *name))
        .collect();
    go.build_commands(
        &root.join("src-kubernetes"),
        &kubernetes,
        &staging_version,
        &packages,
        &kubernetes_ldflags(&spec.kubernetes, kubernetes.time.as_deref())?,
        &staging,
    )?;

    let manifest = Manifest {
        recipe: RECIPE,
        kubernetes: spec.kubernetes.clone(),
        etcd: etcd_version.clone(),
        go: go.version.clone(),
    };
    fs::write(
        staging.join(MANIFEST),
        serde_json::to_vec_pretty(&manifest)?,
    )
    .with_context(|| format!("cannot write the manifest into {}", staging.display()))?;
    let _ = fs::remove_dir_all(&bin);
    fs::rename(&staging, &bin)
        .with_context(|| format!("cannot move the build into {}", bin.display()))?;
    output::step(format!(
        "control plane built in {}: {}",
        output::elapsed(started.elapsed()),
        bin.display()
    ));
    Ok(Binaries {
        dir: bin,
        etcd_version,
    })
}

fn pinned_etcd(kubernetes: &Module) -> Result<String> {
    let path = kubernetes.dir.join("build").join("dependencies.yaml");
    let text = fs::read_to_string(&path)
        .with_context(|| format!("cannot read {} to find the pinned etcd", path.display()))?;
    gomod::pinned_etcd(&text).with_context(|| {
        format!(
            "{} names no etcd version; pass --etcd-version",
            path.display()
        )
    })
}

/// The `-ldflags` that stamp the release into the Kubernetes binaries, as
/// Kubernetes' own build does (`kubectl version`, `/version`).
fn kubernetes_ldflags(version: &str, time: Option<&str>) -> Result<String> {
    let mut numbers = version.trim_start_matches('v').split('.');
    let (major, minor) = (numbers.next(), numbers.next());
    let (Some(major), Some(minor)) = (major, minor) else {
        bail!("`{version}` is not a version like v1.37.2");
    };
    let mut flags = vec!["-s".to_owned(), "-w".to_owned()];
    for package in [
        "k8s.io/component-base/version",
        "k8s.io/client-go/pkg/version",
    ] {
        for (var, value) in [
            ("gitVersion", version),
            ("gitMajor", major),
            ("gitMinor", minor),
            ("gitTreeState", "clean"),
            ("buildDate", time.unwrap_or("1970-01-01T00:00:00Z")),
        ] {
            flags.push(format!("-X {package}.{var}={value}"));
        }
    }
    Ok(flags.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_stamped_into_both_version_packages() {
        let flags = kubernetes_ldflags("v1.37.2", Some("2026-10-27T12:01:04Z")).unwrap();
        assert!(flags.starts_with("-s -w "));
        assert!(flags.contains("-X k8s.io/component-base/version.gitVersion=v1.37.2"));
        assert!(flags.contains("-X k8s.io/client-go/pkg/version.gitMinor=37"));
        assert!(flags.contains("-X k8s.io/component-base/version.buildDate=2026-10-27T12:01:04Z"));
        assert!(kubernetes_ldflags("latest", None).is_err());
    }
}
