//! The Go toolchain, driven to fetch modules from the proxy and build
//! commands of a throwaway module, with progress while it compiles.

use std::fs;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde::Deserialize;

use super::gomod::{self, GoMod};
use crate::{interrupt, output};

/// A module the proxy served.
#[derive(Debug, Deserialize)]
pub(super) struct Module {
    #[serde(rename = "GoMod")]
    pub(super) go_mod: PathBuf,
    #[serde(rename = "Dir")]
    pub(super) dir: PathBuf,
    #[serde(rename = "Info")]
    info: PathBuf,
    #[serde(skip)]
    pub(super) time: Option<String>,
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
pub(super) struct Go {
    program: PathBuf,
    pub(super) version: String,
    /// A module built from a local copy of its source instead of the proxy's
    /// (`replace path => dir` in the throwaway module).
    local_source: Option<(String, PathBuf)>,
}

impl Go {
    pub(super) fn find() -> Result<Self> {
        let candidates = [PathBuf::from("go"), PathBuf::from("/usr/local/go/bin/go")];
        for program in candidates {
            if let Ok(out) = Command::new(&program).arg("version").output()
                && out.status.success()
            {
                let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                return Ok(Self {
                    program,
                    version,
                    local_source: None,
                });
            }
        }
        bail!(
            "building the control plane needs Go (1.26 or newer for Kubernetes 1.37): \
             put `go` on PATH"
        )
    }

    /// Builds `module` from the source in `dir` (an absolute path) instead of
    /// the proxy's copy: the module cache may not be changed, a copy may.
    pub(super) fn with_local_source(mut self, module: &str, dir: PathBuf) -> Self {
        self.local_source = Some((module.to_owned(), dir));
        self
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
    pub(super) fn download(&self, root: &Path, path: &str, version: &str) -> Result<Module> {
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
    pub(super) fn build_commands(
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
        let mut go_mod = gomod::throwaway(&parsed, &version, sibling_version);
        if let Some((module, dir)) = &self.local_source {
            go_mod.push_str(&format!("\nreplace {module} => {}\n", dir.display()));
        }
        fs::write(src.join("go.mod"), go_mod)?;
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
    fn package_lines_are_told_from_messages() {
        assert!(is_package_line("k8s.io/kubernetes/pkg/api/pod"));
        assert!(!is_package_line("go: downloading golang.org/x/net v0.57.0"));
        assert!(!is_package_line("pkg/foo.go:12:3: undefined: x"));
    }
}
