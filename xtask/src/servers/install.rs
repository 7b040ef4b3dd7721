//! Installing a server from Debian's packages when its program is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::output;

/// Returns the first of `candidates` that exists; when none does, installs
/// `packages` with apt (root only: `apt-get update` first) and looks again.
pub(crate) fn program(name: &str, candidates: &[&str], packages: &[&str]) -> Result<PathBuf> {
    if let Some(found) = first_existing(candidates) {
        return Ok(found);
    }
    if !nix::unistd::Uid::effective().is_root() {
        bail!(
            "{name} is not installed (looked for {}); install it with `sudo apt-get install {}`",
            candidates.join(", "),
            packages.join(" ")
        );
    }
    output::step(format!(
        "{name}: installing {} with apt",
        packages.join(" ")
    ));
    apt(&["update"])?;
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend_from_slice(packages);
    apt(&install)?;
    first_existing(candidates).with_context(|| {
        format!(
            "{name}: {} installed, but none of {} exists",
            packages.join(" "),
            candidates.join(", ")
        )
    })
}

fn first_existing(candidates: &[&str]) -> Option<PathBuf> {
    candidates
        .iter()
        .map(Path::new)
        .find(|path| path.is_file())
        .map(Path::to_path_buf)
}

fn apt(args: &[&str]) -> Result<()> {
    let status = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("cannot run apt-get")?;
    if !status.success() {
        bail!("`apt-get {}` failed ({status})", args.join(" "));
    }
    Ok(())
}
