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
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use super::gomod::{self, GoMod};
use crate::workspace::Workspace;
use crate::{interrupt, output};

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
    if !force && let Some(found) = find(ws, spec) {
        output::step(format!(
            "control plane binaries: Kubernetes {} and etcd {} cached in {}",
            spec.kubernetes,
            found.etcd_version,
            found.dir().display()
        ));
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
    )?;
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

/// A module the proxy served.
#[derive(Debug, Deserialize)]
struct Module {
    #[serde(rename = "GoMod")]
    go_mod: PathBuf,
    #[serde(rename = "Dir")]
    dir: PathBuf,
    #[serde(rename = "Info")]
    info: PathBuf,
    #[serde(skip)]
    time: Option<String>,
}

/// What `go mod download -json` reports, error included.
#[derive(Debug, Deserialize)]
struct Download {
    #[serde(rename = "Error", default)]
    error: Option<String>,
    #[serde(flatten)]
    module: Option<Module>,
}

/// The Go toolchain on this machine.
struct Go {
    program: PathBuf,
    version: String,
}

impl Go {
    fn find() -> Result<Self> {
        let candidates = [PathBuf::from("go"), PathBuf::from("/usr/local/go/bin/go")];
        for program in candidates {
            if let Ok(out) = Command::new(&program).arg("version").output()
                && out.status.success()
            {
                let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                return Ok(Self { program, version });
            }
        }
        bail!(
            "building the control plane needs Go (1.26 or newer for Kubernetes 1.37): \
             put `go` on PATH"
        )
    }

    fn command(&self, dir: &Path) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.current_dir(dir)
            .env("CGO_ENABLED", "0")
            .env("GOFLAGS", "-mod=mod")
            .env("GOWORK", "off")
            .env("GO111MODULE", "on");
        if std::env::var_os("GOPROXY").is_none() {
            // The module proxy only: no fallback to fetching repositories.
            cmd.env("GOPROXY", "https://proxy.golang.org");
        }
        cmd
    }

    /// `go mod download -json path@version`; a refusal says which module.
    fn download(&self, root: &Path, path: &str, version: &str) -> Result<Module> {
        output::info(format!("fetching {path}@{version} from the module proxy"));
        let scratch = root.join("download");
        fs::create_dir_all(&scratch)?;
        let out = self
            .command(&scratch)
            .args(["mod", "download", "-json", &format!("{path}@{version}")])
            .stderr(Stdio::inherit())
            .output()
            .context("cannot run `go mod download`")?;
        interrupt::check()?;
        let parsed: Download = serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "`go mod download {path}@{version}` failed: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })?;
        if let Some(error) = parsed.error {
            bail!("the Go module proxy refused {path}@{version}: {error}");
        }
        let mut module = parsed
            .module
            .with_context(|| format!("`go mod download` said nothing about {path}@{version}"))?;
        module.time = fs::read(&module.info)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .and_then(|info| info.get("Time")?.as_str().map(str::to_owned));
        Ok(module)
    }

    /// Writes the throwaway module for `upstream` in `src` and builds
    /// `packages` (import path, binary name) into `out`.
    fn build_commands(
        &self,
        src: &Path,
        upstream: &Module,
        sibling_version: &str,
        packages: &[(String, &str)],
        ldflags: &str,
        out: &Path,
    ) -> Result<()> {
        let started = Instant::now();
        let text = fs::read_to_string(&upstream.go_mod)
            .with_context(|| format!("cannot read {}", upstream.go_mod.display()))?;
        let parsed = GoMod::parse(&text);
        let version = upstream
            .dir
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.rsplit_once('@'))
            .map(|(_, version)| version.to_owned())
            .context("module directory without @version")?;
        fs::create_dir_all(src)?;
        fs::write(
            src.join("go.mod"),
            gomod::throwaway(&parsed, &version, sibling_version),
        )?;
        let names: Vec<&str> = packages.iter().map(|(_, name)| *name).collect();
        let label = names.join(", ");
        output::info(format!(
            "{label}: {} replaced by their {sibling_version} releases, {} requirements as upstream pins them",
            parsed.local_replaces.len(),
            parsed.requires.len()
        ));

        let imports: Vec<&str> = packages.iter().map(|(path, _)| path.as_str()).collect();
        let total = self.count_packages(src, &imports)?;
        output::info(format!("{label}: compiling up to {total} packages"));
        // One package: `-o` names the file (etcd's package is `server/v3`);
        // several: `-o dir/` and each binary is named after its package.
        let target = match names.as_slice() {
            [single] => out.join(single).display().to_string(),
            _ => format!("{}/", out.display()),
        };
        let mut build = self.command(src);
        build
            .args([
                "build",
                "-v",
                "-trimpath",
                "-ldflags",
                ldflags,
                "-o",
                &target,
            ])
            .args(&imports)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        run_with_progress(&mut build, &label, total)?;
        for name in &names {
            if !out.join(name).is_file() {
                bail!("go build finished without producing {name}");
            }
        }
        self.check_build_list(src, &parsed, &label)?;
        output::info(format!(
            "{label}: built in {}",
            output::elapsed(started.elapsed())
        ));
        Ok(())
    }

    fn count_packages(&self, src: &Path, imports: &[&str]) -> Result<usize> {
        let out = self
            .command(src)
            .args(["list", "-deps"])
            .args(imports)
            .stderr(Stdio::inherit())
            .output()
            .context("cannot run `go list`")?;
        interrupt::check()?;
        if !out.status.success() {
            bail!(
                "`go list -deps {}` failed (see above): a module the build needs is missing \
                 or refused by the proxy",
                imports.join(" ")
            );
        }
        Ok(out
            .stdout
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count())
    }

    /// Warns about any module whose selected version differs from what
    /// upstream requires: the build must use upstream's build list.
    fn check_build_list(&self, src: &Path, upstream: &GoMod, label: &str) -> Result<()> {
        let out = self
            .command(src)
            .args(["list", "-m", "-f", "{{.Path}} {{.Version}}", "all"])
            .stderr(Stdio::inherit())
            .output()
            .context("cannot run `go list -m all`")?;
        let listed = String::from_utf8_lossy(&out.stdout);
        let mut differ = Vec::new();
        for line in listed.lines() {
            let mut words = line.split_whitespace();
            let (Some(path), Some(version)) = (words.next(), words.next()) else {
                continue;
            };
            if upstream.local_replaces.iter().any(|p| p == path) {
                continue;
            }
            if let Some(wanted) = upstream.required(path)
                && wanted != version
            {
                differ.push(format!("{path} {version} (upstream {wanted})"));
            }
        }
        if differ.is_empty() {
            output::info(format!("{label}: build list matches upstream's go.mod"));
        } else {
            output::warn(format!(
                "{label}: build list differs from upstream's go.mod: {}",
                differ.join(", ")
            ));
        }
        Ok(())
    }
}

/// Runs `go build -v`, printing how many packages it compiled every 20s and
/// the tail of its output if it fails.
fn run_with_progress(cmd: &mut Command, label: &str, total: usize) -> Result<()> {
    let started = Instant::now();
    let mut child = interrupt::spawn(cmd)?;
    let stderr = child.stderr.take().context("go build without stderr")?;
    let compiled = Arc::new(AtomicUsize::new(0));
    let reader = {
        let compiled = Arc::clone(&compiled);
        let label = label.to_owned();
        std::thread::spawn(move || {
            let mut messages: Vec<String> = Vec::new();
            let mut last_report = Instant::now();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if is_package_line(&line) {
                    let done = compiled.fetch_add(1, Ordering::Relaxed) + 1;
                    if last_report.elapsed() >= Duration::from_secs(20) {
                        last_report = Instant::now();
                        output::info(format!(
                            "{label}: {done}/{total} packages compiled ({})",
                            output::elapsed(started.elapsed())
                        ));
                    }
                } else {
                    messages.push(line);
                }
            }
            messages
        })
    };
    let status = child.wait();
    interrupt::clear();
    let messages = reader.join().unwrap_or_default();
    interrupt::check()?;
    let status = status.context("waiting for go build")?;
    if !status.success() {
        let tail = messages
            .iter()
            .rev()
            .take(60)
            .rev()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n");
        bail!("go build for {label} failed ({status}):\n{tail}");
    }
    Ok(())
}

/// `go build -v` prints one import path per compiled package; everything
/// else (errors, download notes) has spaces or colons.
fn is_package_line(line: &str) -> bool {
    !line.is_empty() && !line.contains(char::is_whitespace) && !line.contains(':')
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

    #[test]
    fn package_lines_are_told_from_messages() {
        assert!(is_package_line("k8s.io/kubernetes/pkg/api/pod"));
        assert!(!is_package_line("go: downloading golang.org/x/net v0.57.0"));
        assert!(!is_package_line("pkg/foo.go:12:3: undefined: x"));
    }
}
