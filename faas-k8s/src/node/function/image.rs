//! Which function an image names.
//!
//! A container whose image is `faas.dev/function/<name>` (a tag or digest is allowed and ignored:
//! `faas.dev/function/hello:v2`) runs the function `<name>` of the backend's registry. The prefix
//! is not a real registry: nothing is pulled, the name only points into the registry.

use crate::node::backend::BackendError;

/// The image prefix that names a function: `faas.dev/function/<name>`.
pub const FUNCTION_IMAGE_PREFIX: &str = "faas.dev/function/";

/// The image that names `function`.
///
/// ```
/// use faas_k8s::node::function::{function_image, function_of_image};
///
/// assert_eq!(function_image("hello"), "faas.dev/function/hello");
/// assert_eq!(function_of_image("faas.dev/function/hello:v2"), Some("hello"));
/// assert_eq!(function_of_image("nginx"), None);
/// ```
pub fn function_image(function: &str) -> String {
    format!("{FUNCTION_IMAGE_PREFIX}{function}")
}

/// The function an image names, `None` when it does not follow the scheme.
pub fn function_of_image(image: &str) -> Option<&str> {
    let rest = image.trim().strip_prefix(FUNCTION_IMAGE_PREFIX)?;
    let rest = rest.split_once('@').map_or(rest, |(name, _)| name);
    let name = rest.split_once(':').map_or(rest, |(name, _)| name);
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

/// The function an image names, or why the image cannot run here.
pub(crate) fn resolve(image: &str, registered: &[String]) -> Result<String, BackendError> {
    let invalid = |reason: String| BackendError::InvalidImage {
        image: image.to_owned(),
        reason,
    };
    let name = function_of_image(image).ok_or_else(|| {
        invalid(format!(
            "the function backend runs only images of the form {FUNCTION_IMAGE_PREFIX}<function>"
        ))
    })?;
    if registered.iter().any(|r| r == name) {
        Ok(name.to_owned())
    } else if registered.is_empty() {
        Err(invalid(format!(
            "no function named {name:?}: the registry is empty"
        )))
    } else {
        Err(invalid(format!(
            "no function named {name:?} (registered: {})",
            registered.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_scheme() {
        assert_eq!(
            function_of_image("faas.dev/function/a.b-c_d"),
            Some("a.b-c_d")
        );
        assert_eq!(
            function_of_image("faas.dev/function/x@sha256:00"),
            Some("x")
        );
        for bad in [
            "faas.dev/function/",
            "faas.dev/function/a/b",
            "function:x",
            "x",
        ] {
            assert_eq!(function_of_image(bad), None, "{bad}");
        }
    }

    #[test]
    fn unknown_functions_and_foreign_images_say_why() {
        let registered = vec!["echo".to_owned(), "hello".to_owned()];
        assert_eq!(
            resolve("faas.dev/function/echo:1", &registered).unwrap(),
            "echo"
        );
        let err = resolve("faas.dev/function/nope", &registered)
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope") && err.contains("echo, hello"), "{err}");
        let err = resolve("nginx", &registered).unwrap_err().to_string();
        assert!(err.contains(FUNCTION_IMAGE_PREFIX), "{err}");
        let err = resolve("faas.dev/function/x", &[]).unwrap_err().to_string();
        assert!(err.contains("empty"), "{err}");
    }
}
