//! Who may use the kubelet API, decided as a kubelet decides it.
//!
//! A caller is known by its client certificate (signed by the configured CA: the user is its
//! common name, the groups its organizations) or by a bearer token the API server vouches for
//! (TokenReview). Each request is then put to the API server as a SubjectAccessReview on the
//! Node: `get` (or `create`) of `nodes/log`, `nodes/stats`, `nodes/metrics` or, for everything
//! else (`containerLogs`, `exec`, ...), `nodes/proxy`. No credentials: 401; not allowed: 403.

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;

/// A caller the TLS layer identified by its certificate.
#[derive(Clone, Debug, Default)]
pub(crate) struct Caller(pub(crate) Option<User>);

/// A user and its groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct User {
    pub(crate) name: String,
    pub(crate) groups: Vec<String>,
}

/// The user a client certificate names: its CN, and its O entries as groups.
pub(crate) fn certificate_user(der: &[u8]) -> Option<User> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let name = subject.iter_common_name().next()?.as_str().ok()?.to_owned();
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_owned))
        .collect();
    Some(User { name, groups })
}

/// What the API server is asked to allow for a request: the verb and the Node subresource.
pub(crate) fn attributes(method: &Method, path: &str) -> (&'static str, &'static str) {
    let verb = match *method {
        Method::GET | Method::HEAD => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "get",
    };
    let first = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    let subresource = match first {
        "stats" => "stats",
        "metrics" => "metrics",
        "logs" => "log",
        "spec" => "spec",
        _ => "proxy",
    };
    (verb, subresource)
}

/// The state the check needs: a client of the API server and the node's name.
#[derive(Clone)]
pub(crate) struct Authorizer {
    pub(crate) client: kube::Client,
    pub(crate) node: String,
}

impl Authorizer {
    async fn token_user(&self, token: &str) -> Result<Option<User>, kube::Error> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_owned(),
                audiences: None,
            },
            ..Default::default()
        };
        let answer = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await?;
        Ok(answer
            .status
            .filter(|s| s.authenticated == Some(true))
            .and_then(|s| s.user)
            .and_then(|u| {
                Some(User {
                    name: u.username?,
                    groups: u.groups.unwrap_or_default(),
                })
            }))
    }

    async fn allowed(
        &self,
        user: &User,
        verb: &str,
        subresource: &str,
    ) -> Result<bool, kube::Error> {
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(user.name.clone()),
                groups: Some(user.groups.clone()),
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(verb.to_owned()),
                    resource: Some("nodes".to_owned()),
                    subresource: Some(subresource.to_owned()),
                    name: Some(self.node.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let answer = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await?;
        Ok(answer.status.is_some_and(|s| s.allowed))
    }
}

fn refuse(status: StatusCode, message: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

/// The middleware: authenticates the caller, asks the API server whether it may, and lets the
/// request through only then.
pub(crate) async fn authorize(
    State(auth): State<Authorizer>,
    request: Request,
    next: Next,
) -> Response {
    let caller = request
        .extensions()
        .get::<Caller>()
        .cloned()
        .unwrap_or_default();
    let user = match caller.0 {
        Some(user) => user,
        None => {
            let token = request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .filter(|t| !t.is_empty());
            let Some(token) = token else {
                return refuse(StatusCode::UNAUTHORIZED, "Unauthorized".to_owned());
            };
            match auth.token_user(token).await {
                Ok(Some(user)) => user,
                Ok(None) => return refuse(StatusCode::UNAUTHORIZED, "Unauthorized".to_owned()),
                Err(e) => {
                    tracing::warn!(error = %e, "reviewing a kubelet API token failed");
                    return refuse(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "the token could not be reviewed".to_owned(),
                    );
                }
            }
        }
    };
    let (verb, subresource) = attributes(request.method(), request.uri().path());
    match auth.allowed(&user, verb, subresource).await {
        Ok(true) => next.run(request).await,
        Ok(false) => refuse(
            StatusCode::FORBIDDEN,
            format!(
                "Forbidden (user={}, verb={verb}, resource=nodes, subresource={subresource})",
                user.name
            ),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "authorizing a kubelet API request failed");
            refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the request could not be authorized".to_owned(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_node_subresources_as_on_a_kubelet() {
        assert_eq!(
            attributes(&Method::GET, "/containerLogs/ns/p/c"),
            ("get", "proxy")
        );
        assert_eq!(attributes(&Method::GET, "/stats/summary"), ("get", "stats"));
        assert_eq!(attributes(&Method::GET, "/metrics"), ("get", "metrics"));
        assert_eq!(attributes(&Method::GET, "/logs/"), ("get", "log"));
        assert_eq!(
            attributes(&Method::POST, "/exec/ns/p/c"),
            ("create", "proxy")
        );
    }

    #[test]
    fn a_certificate_names_its_user_and_groups() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "kube-apiserver-kubelet-client");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "system:masters");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let user = certificate_user(cert.der()).unwrap();
        assert_eq!(user.name, "kube-apiserver-kubelet-client");
        assert_eq!(user.groups, ["system:masters"]);
    }
}
