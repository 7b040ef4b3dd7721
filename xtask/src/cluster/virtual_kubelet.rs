//! Building virtual-kubelet (`cmd/virtual-kubelet`, whose only provider is
//! `mock`) from the Go module proxy, the peer benchmark B6 measures
//! faas-vnode against. Cached beside the control plane under
//! `~/.cache/faas/virtual-kubelet/<version>` and checked by content, so only
//! the first run pays for the build.
//!
//! The build uses the same throwaway module as the control plane's (see
//! [`super::gomod`]): it requires the upstream module with upstream's whole
//! requirement list, but builds it from a copy of the module's source (the
//! module cache is read-only) in which two files are changed, each by a
//! one-line substitution that fails the build loudly when upstream changes
//! the line:
//!
//! - the kubelet port listens on `127.0.0.1` instead of every interface
//!   (`KUBELET_PORT` still picks the port), as every server of the test
//!   setup does;
//! - the API client reads `VK_CLIENT_QPS` and `VK_CLIENT_BURST` when they are
//!   set. virtual-kubelet has no flag for client-go's rate limits (5 QPS,
//!   burst 10), and raising them is what an operator of a busy node does
//!   first; unset, the binary behaves as upstream's.

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::build_lock::BuildLock;
use super::go::{Go, Module};
use crate::output;
use crate::workspace::Workspace;

/// The release the Go module proxy serves and B6 measures.
pub(crate) const DEFAULT_VIRTUAL_KUBELET_VERSION: &str = "v1.14.1";
/// Bump when the way the binary is built changes, so caches rebuild.
const RECIPE: u32 = 1;
const MODULE: &str = "github.com/virtual-kubelet/virtual-kubelet";
const COMMAND: &str = "virtual-kubelet";
const MANIFEST: &str = "manifest.json";

/// One substitution of the overlay: in `file` (relative to the module),
/// `from` becomes `to`, exactly once.
struct Substitution {
    file: &'static str,
    from: &'static str,
    to: &'static str,
}

const OVERLAY: [Substitution; 3] = [
    Substitution {
        file: "cmd/virtual-kubelet/internal/commands/root/http.go",
        from: "config.Addr = fmt.Sprintf(\":%d\", c.ListenPort)",
        to: "config.Addr = fmt.Sprintf(\"127.0.0.1:%d\", c.ListenPort)",
    },
    Substitution {
        file: "node/nodeutil/client.go",
        from: "\treturn kubernetes.NewForConfig(config)\n}",
        to: "\tclientLimitsFromEnv(config)\n\treturn kubernetes.NewForConfig(config)\n}\n\n\
             // clientLimitsFromEnv applies VK_CLIENT_QPS and VK_CLIENT_BURST (faas xtask build).\n\
             func clientLimitsFromEnv(config *rest.Config) {\n\
             \tif qps, err := strconv.ParseFloat(os.Getenv(\"VK_CLIENT_QPS\"), 32); err == nil {\n\
             \t\tconfig.QPS = float32(qps)\n\
             \t}\n\
             \tif burst, err := strconv.Atoi(os.Getenv(\"VK_CLIENT_BURST\")); err == nil {\n\
             \t\tconfig.Burst = burst\n\
             \t}\n\
             }",
    },
    Substitution {
        file: "node/nodeutil/client.go",
        from: "import (\n\t\"os\"\n",
        to: "import (\n\t\"os\"\n\t\"strconv\"\n",
    },
];

/// What a finished build recorded next to the binary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Manifest {
    recipe: u32,
    version: String,
    go: String,
    /// SHA-256 of the binary, hex: a truncated or replaced file is rebuilt.
    sha256: String,
}

/// `~/.cache/faas/virtual-kubelet/<version>`.
fn version_dir(ws: &Workspace, version: &str) -> PathBuf {
    ws.cache().join(COMMAND).join(version)
}

/// The cached binary for `version`, if a complete and unchanged build is there.
pub(crate) fn find(ws: &Workspace, version: &str) -> Option<PathBuf> {
    let dir = version_dir(ws, version).join("bin");
    let manifest: Manifest = serde_json::from_slice(&fs::read(dir.join(MANIFEST)).ok()?).ok()?;
    let binary = dir.join(COMMAND);
    let intact = manifest.recipe == RECIPE
        && manifest.version == version
        && sha256_hex(&binary).ok()? == manifest.sha256;
    intact.then_some(binary)
}

/// Finds the cached binary or builds it (`force` rebuilds); returns its path.
pub(crate) fn ensure(ws: &Workspace, version: &str, force: bool) -> Result<PathBuf> {
    let cached = |how: &str| {
        if force {
            return None;
        }
        let found = find(ws, version)?;
        output::step(format!(
            "virtual-kubelet {version}: {how} {}",
            found.display()
        ));
        Some(found)
    };
    if let Some(found) = cached("cached in") {
        return Ok(found);
    }
    let _lock = BuildLock::acquire(&version_dir(ws, version), "virtual-kubelet")?;
    // Built by another run while this one waited for the lock.
    if let Some(found) = cached("built by another run in") {
        return Ok(found);
    }
    build(ws, version)
}

fn build(ws: &Workspace, version: &str) -> Result<PathBuf> {
    let started = Instant::now();
    let root = version_dir(ws, version);
    let bin = root.join("bin");
    let staging = root.join("bin.partial");
    let go = Go::find()?;
    output::step(format!(
        "building virtual-kubelet {version} (provider mock) from the Go module proxy with {}",
        go.version
    ));
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging)?;
    let module = go.download(&root, MODULE, version)?;
    let source = copy_source(&root.join("source"), &module)?;
    let go = go.with_local_source(MODULE, source);
    let ldflags = format!("-s -w -X main.buildVersion={version}");
    go.build_commands(
        &root.join("src"),
        &module,
        version,
        &[(format!("{MODULE}/cmd/{COMMAND}"), COMMAND)],
        &ldflags,
        &staging,
    )?;
    let manifest = Manifest {
        recipe: RECIPE,
        version: version.to_owned(),
        go: go.version.clone(),
        sha256: sha256_hex(&staging.join(COMMAND))?,
    };
    fs::write(
        staging.join(MANIFEST),
        serde_json::to_vec_pretty(&manifest)?,
    )?;
    let _ = fs::remove_dir_all(&bin);
    fs::rename(&staging, &bin)
        .with_context(|| format!("cannot move the build into {}", bin.display()))?;
    output::step(format!(
        "virtual-kubelet built in {}: {}",
        output::elapsed(started.elapsed()),
        bin.display()
    ));
    Ok(bin.join(COMMAND))
}

/// Copies the module's source into `dir` (anew) and applies [`OVERLAY`];
/// returns the copy's absolute path.
fn copy_source(dir: &Path, module: &Module) -> Result<PathBuf> {
    let _ = fs::remove_dir_all(dir);
    copy_tree(&module.dir, dir)?;
    // `go build` runs in the throwaway module: the path must be absolute.
    let dir = fs::canonicalize(dir)?;
    for substitution in &OVERLAY {
        let path = dir.join(substitution.file);
        let text =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let changed = substitute(&text, substitution)
            .with_context(|| format!("cannot change {}", substitution.file))?;
        fs::write(&path, changed)?;
    }
    Ok(dir)
}

/// Copies a directory tree; the copies are writable (the module cache's
/// files are not).
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            fs::write(&target, fs::read(entry.path())?)?;
        }
    }
    Ok(())
}

fn substitute(text: &str, substitution: &Substitution) -> Result<String> {
    match text.matches(substitution.from).count() {
        1 => Ok(text.replacen(substitution.from, substitution.to, 1)),
        0 => bail!(
            "upstream no longer has {:?}: update xtask/src/cluster/virtual_kubelet.rs",
            substitution.from
        ),
        n => bail!("{:?} occurs {n} times, expected once", substitution.from),
    }
}

fn sha256_hex(path: &Path) -> Result<String> {
    let mut file =
        fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buf)?;
        if read == 0 {
            break;
        }
        hasher.update(&buf[..read]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutions_apply_once_or_say_why() {
        let client = "import (\n\t\"os\"\n\n\t\"x\"\n)\n\nfunc f() {\n\treturn kubernetes.NewForConfig(config)\n}\n";
        let mut text = client.to_owned();
        for substitution in OVERLAY
            .iter()
            .filter(|s| s.file == "node/nodeutil/client.go")
        {
            text = substitute(&text, substitution).unwrap();
        }
        assert!(text.contains("\t\"strconv\"\n"));
        assert!(text.contains("\tclientLimitsFromEnv(config)\n\treturn kubernetes.NewForConfig"));
        assert!(text.contains("os.Getenv(\"VK_CLIENT_BURST\")"));
        let err = substitute("package main\n", &OVERLAY[0])
            .unwrap_err()
            .to_string();
        assert!(err.contains("no longer has"), "{err}");
    }

    #[test]
    fn digest_is_hex_sha256() {
        let dir = std::env::temp_dir().join(format!("vk-digest-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f");
        fs::write(&file, b"abc").unwrap();
        assert_eq!(
            sha256_hex(&file).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
