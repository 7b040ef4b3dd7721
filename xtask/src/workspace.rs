//! Where things are: the checkout, its target directory and the cache that
//! outlives the checkout.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result};

/// The paths every command works with.
#[derive(Clone, Debug)]
pub(crate) struct Workspace {
    root: PathBuf,
    target: PathBuf,
    cache: PathBuf,
}

impl Workspace {
    /// Finds the workspace this xtask belongs to.
    ///
    /// The cache is `$FAAS_CACHE_DIR`, else `$XDG_CACHE_HOME/faas`, else
    /// `~/.cache/faas`: outside the checkout, so that a fresh clone (CI) or a
    /// `cargo clean` keeps the expensive control plane build.
    pub(crate) fn locate() -> Result<Self> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("xtask lives one level below the workspace root")?
            .to_path_buf();
        let target = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) => root.join(dir),
            None => root.join("target"),
        };
        let cache = if let Some(dir) = std::env::var_os("FAAS_CACHE_DIR") {
            PathBuf::from(dir)
        } else if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
            PathBuf::from(dir).join("faas")
        } else if let Some(home) = std::env::var_os("HOME") {
            PathBuf::from(home).join(".cache").join("faas")
        } else {
            let fallback = std::env::temp_dir().join("faas-cache");
            crate::output::warn(format!(
                "HOME is not set: caching builds in {} (set FAAS_CACHE_DIR to choose)",
                fallback.display()
            ));
            fallback
        };
        Ok(Self {
            root,
            target,
            cache,
        })
    }

    /// The workspace root (where the top `Cargo.toml` is).
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Cargo's target directory.
    pub(crate) fn target(&self) -> &Path {
        &self.target
    }

    /// The per-user cache, outside the checkout.
    pub(crate) fn cache(&self) -> &Path {
        &self.cache
    }

    /// A `cargo` command that runs in the workspace root, with the same
    /// cargo that runs xtask.
    pub(crate) fn cargo(&self) -> Command {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(&self.root);
        cmd
    }
}
