//! Which executable an image name stands for.
//!
//! A process backend has no image store: an [`ImageMap`] tells it what to run for an image.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use crate::node::backend::BackendError;

/// Maps image names to executables.
///
/// # Rules
///
/// - **Exact**: `python = /usr/bin/python3`. An entry without a tag matches every tag and digest
///   of that repository (`python`, `python:3.12`, `python@sha256:...`); an entry with a tag
///   (`python:3.12 = /usr/bin/python3.12`) matches only that tag and wins over the untagged one.
/// - **Prefix**: `local/* = /opt/faas/bin`. Every image under `local/` runs the executable of the
///   same name in that directory: `local/echo:1.0` runs `/opt/faas/bin/echo`. Deeper names map to
///   subdirectories; `..` is refused. The longest matching prefix wins; exact rules win over prefixes.
///
/// `docker.io/library/` and `docker.io/` are ignored on both sides, as a container runtime does
/// (`docker.io/library/python` is `python`).
///
/// The executable must exist and be executable when the pod is created; otherwise the image is
/// reported as invalid, which the node shows as the container's waiting reason.
///
/// # File format
///
/// One rule a line, `image = path`; blank lines and lines starting with `#` are ignored:
///
/// ```text
/// # exact images
/// python = /usr/bin/python3
/// busybox:1.36 = /usr/bin/busybox
/// # everything under local/
/// local/* = /opt/faas/bin
/// ```
///
/// # Example
///
/// ```
/// use faas_k8s::node::process::ImageMap;
///
/// let map = ImageMap::new()
///     .with_image("shell", "/bin/sh")
///     .with_prefix("local/", "/opt/faas/bin");
/// assert_eq!(map.resolve("shell:latest").unwrap(), std::path::Path::new("/bin/sh"));
/// assert!(map.resolve("nginx").is_err());
///
/// let parsed = ImageMap::parse("shell = /bin/sh\nlocal/* = /opt/faas/bin\n").unwrap();
/// assert_eq!(parsed.resolve("shell").unwrap(), std::path::Path::new("/bin/sh"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageMap {
    exact: BTreeMap<String, PathBuf>,
    prefixes: BTreeMap<String, PathBuf>,
}

impl ImageMap {
    /// An empty map: every image is unknown.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an exact rule: `image` (with or without a tag) runs `executable`.
    #[must_use]
    pub fn with_image(mut self, image: impl AsRef<str>, executable: impl Into<PathBuf>) -> Self {
        self.insert_image(image, executable);
        self
    }

    /// Adds a prefix rule: an image `<prefix><name>` runs `<dir>/<name>`. A prefix is usually a
    /// registry path ending in `/` (`local/`, `registry.local:5000/team/`).
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl AsRef<str>, dir: impl Into<PathBuf>) -> Self {
        self.insert_prefix(prefix, dir);
        self
    }

    /// Adds an exact rule in place.
    pub fn insert_image(&mut self, image: impl AsRef<str>, executable: impl Into<PathBuf>) {
        self.exact
            .insert(normalize(image.as_ref()).to_owned(), executable.into());
    }

    /// Adds a prefix rule in place.
    pub fn insert_prefix(&mut self, prefix: impl AsRef<str>, dir: impl Into<PathBuf>) {
        self.prefixes
            .insert(normalize(prefix.as_ref()).to_owned(), dir.into());
    }

    /// Parses the line format (`image = path`, `prefix/* = dir`, `#` comments).
    ///
    /// # Errors
    ///
    /// An [`io::ErrorKind::InvalidData`] error naming the line that is not a rule.
    pub fn parse(text: &str) -> io::Result<Self> {
        let mut map = Self::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let invalid = |why: &str| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "image map line {}: {why} (expected `image = /path/to/executable` or \
                         `prefix/* = /directory`): {raw:?}",
                        index + 1
                    ),
                )
            };
            let (image, path) = line.split_once('=').ok_or_else(|| invalid("no `=`"))?;
            let (image, path) = (image.trim(), path.trim());
            if image.is_empty() {
                return Err(invalid("no image before `=`"));
            }
            if path.is_empty() {
                return Err(invalid("no path after `=`"));
            }
            match image.strip_suffix('*') {
                Some(prefix) if prefix.is_empty() || prefix.ends_with('/') => {
                    map.insert_prefix(prefix, path)
                }
                Some(_) => return Err(invalid("`*` is only allowed after a `/`")),
                None if image.contains('*') => {
                    return Err(invalid("`*` is only allowed at the end"));
                }
                None => map.insert_image(image, path),
            }
        }
        Ok(map)
    }

    /// Reads and parses an image map file.
    ///
    /// # Errors
    ///
    /// The file cannot be read, or a line is not a rule (the message names the file and line).
    pub fn load(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|err| {
            io::Error::new(
                err.kind(),
                format!("cannot read image map {}: {err}", path.display()),
            )
        })?;
        Self::parse(&text)
            .map_err(|err| io::Error::new(err.kind(), format!("{}: {err}", path.display())))
    }

    /// Whether the map has no rule at all.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty()
    }

    /// The executable `image` runs.
    ///
    /// # Errors
    ///
    /// [`BackendError::InvalidImage`] when no rule matches, when a prefix rule's remainder is not a
    /// plain relative name, or when the executable is missing or not executable.
    pub fn resolve(&self, image: &str) -> Result<PathBuf, BackendError> {
        let invalid = |reason: String| BackendError::InvalidImage {
            image: image.to_owned(),
            reason,
        };
        let full = normalize(image.trim());
        let repository = repository_of(full);
        if full.is_empty() {
            return Err(invalid("the image name is empty".to_owned()));
        }
        let path = if let Some(path) = self.exact.get(full).or_else(|| self.exact.get(repository)) {
            path.clone()
        } else if let Some((prefix, dir)) = self
            .prefixes
            .iter()
            .filter(|(prefix, _)| repository.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
        {
            let rest = Path::new(&repository[prefix.len()..]);
            let plain = rest.components().all(|c| matches!(c, Component::Normal(_)));
            if rest.as_os_str().is_empty() || !plain {
                return Err(invalid(format!(
                    "the part after {prefix:?} must be a plain relative name"
                )));
            }
            dir.join(rest)
        } else {
            return Err(invalid(format!(
                "no rule of the image map matches it ({})",
                self.describe()
            )));
        };
        check_executable(&path).map_err(invalid)?;
        Ok(path)
    }

    fn describe(&self) -> String {
        if self.is_empty() {
            return "the image map is empty".to_owned();
        }
        let exact = self.exact.keys().map(String::as_str);
        let prefixes = self.prefixes.keys().map(|p| format!("{p}*"));
        let known: Vec<String> = exact.map(str::to_owned).chain(prefixes).collect();
        format!("known: {}", known.join(", "))
    }
}

fn check_executable(path: &Path) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o111 != 0 => Ok(()),
        Ok(meta) if meta.is_file() => Err(format!("{} is not executable", path.display())),
        Ok(_) => Err(format!("{} is not a file", path.display())),
        Err(err) => Err(format!("{}: {err}", path.display())),
    }
}

/// Drops the default registry, as container runtimes do.
fn normalize(image: &str) -> &str {
    image
        .strip_prefix("docker.io/library/")
        .or_else(|| image.strip_prefix("docker.io/"))
        .unwrap_or(image)
}

/// The image without its tag and digest.
fn repository_of(image: &str) -> &str {
    let image = image.split_once('@').map_or(image, |(name, _)| name);
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].rfind(':') {
        Some(colon) => &image[..last_slash + colon],
        None => image,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_tags_and_digests_but_not_registry_ports() {
        assert_eq!(repository_of("python:3.12"), "python");
        assert_eq!(repository_of("python@sha256:abc"), "python");
        assert_eq!(repository_of("reg:5000/team/app:1"), "reg:5000/team/app");
        assert_eq!(repository_of("reg:5000/team/app"), "reg:5000/team/app");
        assert_eq!(normalize("docker.io/library/python"), "python");
    }

    #[test]
    fn exact_tagged_rule_wins_over_untagged() {
        let map = ImageMap::new()
            .with_image("sh", "/bin/sh")
            .with_image("sh:dash", "/bin/dash");
        assert_eq!(map.resolve("sh:dash").unwrap(), Path::new("/bin/dash"));
        assert_eq!(
            map.resolve("docker.io/library/sh:5").unwrap(),
            Path::new("/bin/sh")
        );
    }

    #[test]
    fn prefix_rules_map_names_into_a_directory() {
        let map = ImageMap::new()
            .with_prefix("local/", "/bin")
            .with_prefix("local/deep/", "/usr/bin");
        assert_eq!(map.resolve("local/sh:1.0").unwrap(), Path::new("/bin/sh"));
        assert_eq!(
            map.resolve("local/deep/env").unwrap(),
            Path::new("/usr/bin/env")
        );
        for bad in ["local/../bin/sh", "local/"] {
            let err = map.resolve(bad).unwrap_err();
            assert!(
                matches!(err, BackendError::InvalidImage { .. }),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn unknown_and_missing_images_say_why() {
        let map = ImageMap::new()
            .with_image("ghost", "/nonexistent/ghost")
            .with_prefix("local/", "/bin");
        let BackendError::InvalidImage { image, reason } = map.resolve("nginx:1.27").unwrap_err()
        else {
            panic!("expected InvalidImage");
        };
        assert_eq!(image, "nginx:1.27");
        assert!(
            reason.contains("no rule") && reason.contains("ghost") && reason.contains("local/*")
        );
        let missing = map.resolve("ghost").unwrap_err().to_string();
        assert!(missing.contains("/nonexistent/ghost"), "{missing}");
        let empty = ImageMap::new().resolve("x").unwrap_err().to_string();
        assert!(empty.contains("empty"), "{empty}");
    }

    #[test]
    fn parses_the_line_format_and_reports_bad_lines() {
        let map = ImageMap::parse("# c\n\n sh = /bin/sh \nlocal/* = /bin\n").unwrap();
        assert_eq!(
            map,
            ImageMap::new()
                .with_image("sh", "/bin/sh")
                .with_prefix("local/", "/bin")
        );
        for (text, needle) in [
            ("sh /bin/sh", "line 1"),
            ("ok = /bin/sh\n = /bin/sh", "line 2"),
            ("sh =", "no path"),
            ("lo*cal = /bin", "`*`"),
            ("local* = /bin", "`*`"),
        ] {
            let err = ImageMap::parse(text).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            assert!(err.to_string().contains(needle), "{text:?}: {err}");
        }
    }
}
