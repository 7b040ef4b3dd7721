//! Reading an upstream `go.mod` and writing the throwaway module that builds
//! its commands from the Go module proxy.
//!
//! Kubernetes (and etcd) develop several modules in one repository and tie
//! them together with `replace k8s.io/api => ./staging/src/k8s.io/api` lines.
//! Those local paths do not exist in the module proxy's copy, so the
//! throwaway module requires the upstream module and replaces each of those
//! sibling modules with its published release instead (`k8s.io/api v0.37.2`
//! for Kubernetes v1.37.2). Every other requirement is copied verbatim, so
//! the build list is the one upstream builds with: nothing is upgraded.

use std::fmt::Write as _;

/// One `path version` requirement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Require {
    /// Module path.
    pub(crate) path: String,
    /// Version.
    pub(crate) version: String,
}

/// What the throwaway module needs from an upstream `go.mod`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct GoMod {
    /// The `module` line.
    pub(crate) module: String,
    /// The `go` directive.
    pub(crate) go: Option<String>,
    /// The `toolchain` directive.
    pub(crate) toolchain: Option<String>,
    /// `godebug` settings (`default=go1.26`), which only the main module may set.
    pub(crate) godebug: Vec<String>,
    /// Every requirement, direct and indirect.
    pub(crate) requires: Vec<Require>,
    /// Modules replaced by a directory of the same repository (`=> ./staging/...`, `=> ../api`).
    pub(crate) local_replaces: Vec<String>,
    /// `exclude` lines, verbatim (`path version`).
    pub(crate) excludes: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Block {
    None,
    Require,
    Replace,
    Exclude,
    Godebug,
    Other,
}

impl GoMod {
    /// Parses the parts of a `go.mod` the build needs.
    pub(crate) fn parse(text: &str) -> Self {
        let mut parsed = Self::default();
        let mut block = Block::None;
        for raw in text.lines() {
            let line = raw.split("//").next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            if block != Block::None {
                if line == ")" {
                    block = Block::None;
                } else {
                    parsed.entry(block, line);
                }
                continue;
            }
            let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let rest = rest.trim();
            let kind = match keyword {
                "require" => Block::Require,
                "replace" => Block::Replace,
                "exclude" => Block::Exclude,
                "godebug" => Block::Godebug,
                "module" => {
                    parsed.module = rest.trim_matches('"').to_owned();
                    continue;
                }
                "go" => {
                    parsed.go = Some(rest.to_owned());
                    continue;
                }
                "toolchain" => {
                    parsed.toolchain = Some(rest.to_owned());
                    continue;
                }
                _ => Block::Other,
            };
            if rest == "(" {
                block = kind;
            } else {
                parsed.entry(kind, rest);
            }
        }
        parsed
    }

    fn entry(&mut self, block: Block, line: &str) {
        match block {
            Block::Require => {
                let mut words = line.split_whitespace();
                if let (Some(path), Some(version)) = (words.next(), words.next()) {
                    self.requires.push(Require {
                        path: path.to_owned(),
                        version: version.to_owned(),
                    });
                }
            }
            Block::Replace => {
                if let Some((left, right)) = line.split_once("=>") {
                    let target = right.trim();
                    if (target.starts_with("./") || target.starts_with("../"))
                        && let Some(path) = left.split_whitespace().next()
                    {
                        self.local_replaces.push(path.to_owned());
                    }
                }
            }
            Block::Exclude => self.excludes.push(line.to_owned()),
            Block::Godebug => self.godebug.push(line.to_owned()),
            Block::None | Block::Other => {}
        }
    }

    /// The version upstream requires of `path`.
    pub(crate) fn required(&self, path: &str) -> Option<&str> {
        self.requires
            .iter()
            .find(|r| r.path == path)
            .map(|r| r.version.as_str())
    }
}

/// Renders the throwaway `go.mod`: it requires `upstream.module@version`
/// plus everything upstream requires, and replaces each local sibling module
/// with its release `sibling_version`.
pub(crate) fn throwaway(upstream: &GoMod, version: &str, sibling_version: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "// Generated by `cargo xtask cluster build` to build {}@{version}\n\
         // from the Go module proxy. Do not edit: it is rewritten on every build.\n",
        upstream.module
    );
    out.push_str("module faas.local/control-plane-build\n\n");
    if let Some(go) = &upstream.go {
        let _ = writeln!(out, "go {go}\n");
    }
    if let Some(toolchain) = &upstream.toolchain {
        let _ = writeln!(out, "toolchain {toolchain}\n");
    }
    for setting in &upstream.godebug {
        let _ = writeln!(out, "godebug {setting}");
    }
    if !upstream.godebug.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(out, "require {} {version}\n", upstream.module);
    out.push_str("require (\n");
    for require in &upstream.requires {
        let _ = writeln!(out, "\t{} {}", require.path, require.version);
    }
    out.push_str(")\n");
    if !upstream.local_replaces.is_empty() {
        out.push_str("\nreplace (\n");
        for path in &upstream.local_replaces {
            let _ = writeln!(out, "\t{path} => {path} {sibling_version}");
        }
        out.push_str(")\n");
    }
    if !upstream.excludes.is_empty() {
        out.push_str("\nexclude (\n");
        for exclude in &upstream.excludes {
            let _ = writeln!(out, "\t{exclude}");
        }
        out.push_str(")\n");
    }
    out
}

/// The version Kubernetes publishes its staging modules under for a
/// release: `v1.37.2` -> `v0.37.2`.
pub(crate) fn staging_version(kubernetes: &str) -> Option<String> {
    let rest = kubernetes.strip_prefix("v1.")?;
    Some(format!("v0.{rest}"))
}

/// The etcd version a Kubernetes release pins, read from its
/// `build/dependencies.yaml` (`- name: "etcd"` followed by `version: 3.7.0`).
pub(crate) fn pinned_etcd(dependencies_yaml: &str) -> Option<String> {
    let mut lines = dependencies_yaml.lines();
    while let Some(line) = lines.next() {
        let name = line.trim().trim_start_matches('-').trim();
        if name == "name: \"etcd\"" || name == "name: etcd" {
            for next in lines.by_ref() {
                let next = next.trim();
                if let Some(version) = next.strip_prefix("version:") {
                    let version = version.trim().trim_matches('"');
                    return Some(format!("v{}", version.trim_start_matches('v')));
                }
                if next.starts_with("- name:") {
                    break;
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBERNETES: &str = r#"// This is a generated file. Do not edit directly.

module k8s.io/kubernetes

go 1.26.0

godebug default=go1.26

require (
	github.com/blang/semver/v4 v4.0.0
	go.etcd.io/etcd/client/v3 v3.7.0
	k8s.io/api v0.0.0
	k8s.io/apimachinery v0.0.0
)

require (
	github.com/beorn7/perks v1.0.1 // indirect
)

require github.com/single/line v1.2.3

replace (
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/apimachinery => ./staging/src/k8s.io/apimachinery
	github.com/pinned/fork => github.com/other/fork v1.0.0
)
"#;

    #[test]
    fn parses_requires_local_replaces_and_directives() {
        let parsed = GoMod::parse(KUBERNETES);
        assert_eq!(parsed.module, "k8s.io/kubernetes");
        assert_eq!(parsed.go.as_deref(), Some("1.26.0"));
        assert_eq!(parsed.godebug, vec!["default=go1.26"]);
        assert_eq!(parsed.requires.len(), 6);
        assert_eq!(parsed.required("github.com/beorn7/perks"), Some("v1.0.1"));
        assert_eq!(parsed.required("github.com/single/line"), Some("v1.2.3"));
        assert_eq!(
            parsed.local_replaces,
            vec!["k8s.io/api", "k8s.io/apimachinery"],
            "only replaces by a local directory are sibling modules"
        );
    }

    #[test]
    fn throwaway_module_pins_siblings_to_their_release() {
        let rendered = throwaway(&GoMod::parse(KUBERNETES), "v1.37.2", "v0.37.2");
        assert!(rendered.contains("require k8s.io/kubernetes v1.37.2\n"));
        assert!(rendered.contains("\tk8s.io/api => k8s.io/api v0.37.2\n"));
        assert!(rendered.contains("\tgo.etcd.io/etcd/client/v3 v3.7.0\n"));
        assert!(rendered.contains("go 1.26.0\n"));
        assert!(rendered.contains("godebug default=go1.26\n"));
        assert!(!rendered.contains("./staging"));
        let reparsed = GoMod::parse(&rendered);
        assert_eq!(reparsed.required("k8s.io/kubernetes"), Some("v1.37.2"));
    }

    #[test]
    fn staging_modules_are_published_as_v0() {
        assert_eq!(staging_version("v1.37.2").as_deref(), Some("v0.37.2"));
        assert_eq!(staging_version("1.37.2"), None);
    }

    #[test]
    fn reads_the_pinned_etcd_version() {
        let yaml = "dependencies:\n  - name: \"cni\"\n    version: 1.7.1\n  - name: \"etcd\"\n    version: 3.7.0\n    refPaths:\n    - path: cluster/gce/manifests/etcd.manifest\n";
        assert_eq!(pinned_etcd(yaml).as_deref(), Some("v3.7.0"));
        assert_eq!(pinned_etcd("dependencies: []\n"), None);
    }
}
