//! The cluster's certificates and keys, generated fresh at every `up`.
//!
//! One CA signs everything: the API server's serving certificate, the
//! serving certificates of the controller-manager and the scheduler, the
//! client certificate the API server presents to kubelets, and the serving
//! certificate of the virtual node's kubelet API. The CA key is kept (under
//! `target/cluster/pki/`) so that the virtual node and tests can sign more.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// The first address of the service range (`--service-cluster-ip-range`),
/// which the `kubernetes` Service gets.
pub(crate) const KUBERNETES_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

/// A certificate and its private key, as PEM files.
#[derive(Clone, Debug)]
pub(crate) struct CertFiles {
    /// The certificate.
    pub(crate) cert: PathBuf,
    /// Its private key (PKCS#8).
    pub(crate) key: PathBuf,
}

/// Every file of the cluster's PKI.
#[derive(Clone, Debug)]
pub(crate) struct Pki {
    /// The cluster CA (`--client-ca-file`, `--root-ca-file`, kubeconfigs).
    pub(crate) ca: CertFiles,
    /// kube-apiserver's serving certificate.
    pub(crate) apiserver: CertFiles,
    /// The client certificate kube-apiserver presents to kubelets.
    pub(crate) apiserver_kubelet_client: CertFiles,
    /// The serving certificate for the virtual node's kubelet API (SAN 127.0.0.1).
    pub(crate) kubelet: CertFiles,
    /// kube-controller-manager's serving certificate.
    pub(crate) controller_manager: CertFiles,
    /// kube-scheduler's serving certificate.
    pub(crate) scheduler: CertFiles,
    /// The CA of the front proxy (`--requestheader-client-ca-file`): only
    /// the API server's aggregation proxy may assert users by header.
    pub(crate) front_proxy_ca: CertFiles,
    /// The client certificate the API server proxies to aggregated APIs with.
    pub(crate) front_proxy_client: CertFiles,
    /// The service-account token signing key (private).
    pub(crate) service_account_key: PathBuf,
    /// The service-account token verification key (public).
    pub(crate) service_account_pub: PathBuf,
}

impl Pki {
    /// The file names under `dir`, generated or not.
    pub(crate) fn at(dir: &Path) -> Self {
        let pair = |name: &str| CertFiles {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        Self {
            ca: pair("ca"),
            apiserver: pair("apiserver"),
            apiserver_kubelet_client: pair("apiserver-kubelet-client"),
            kubelet: pair("kubelet"),
            controller_manager: pair("controller-manager"),
            scheduler: pair("scheduler"),
            front_proxy_ca: pair("front-proxy-ca"),
            front_proxy_client: pair("front-proxy-client"),
            service_account_key: dir.join("sa.key"),
            service_account_pub: dir.join("sa.pub"),
        }
    }

    /// Generates a new CA and every certificate and key, replacing old ones.
    pub(crate) fn generate(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let pki = Self::at(dir);

        let issuer = new_ca(&pki.ca, "faas-cluster-ca")?;
        let front_proxy = new_ca(&pki.front_proxy_ca, "faas-front-proxy-ca")?;

        let loopback = [
            SanType::DnsName("localhost".try_into()?),
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ];
        let mut apiserver_names = loopback.to_vec();
        for name in [
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ] {
            apiserver_names.push(SanType::DnsName(name.try_into()?));
        }
        apiserver_names.push(SanType::IpAddress(IpAddr::V4(KUBERNETES_SERVICE_IP)));

        let server = [ExtendedKeyUsagePurpose::ServerAuth];
        let client = [ExtendedKeyUsagePurpose::ClientAuth];
        leaf(
            &issuer,
            &pki.apiserver,
            "kube-apiserver",
            None,
            &apiserver_names,
            &server,
        )?;
        leaf(
            &issuer,
            &pki.apiserver_kubelet_client,
            "kube-apiserver-kubelet-client",
            Some("system:masters"),
            &[],
            &client,
        )?;
        leaf(
            &issuer,
            &pki.kubelet,
            "faas-vnode-kubelet",
            None,
            &loopback,
            &server,
        )?;
        leaf(
            &issuer,
            &pki.controller_manager,
            "kube-controller-manager",
            None,
            &loopback,
            &server,
        )?;
        leaf(
            &issuer,
            &pki.scheduler,
            "kube-scheduler",
            None,
            &loopback,
            &server,
        )?;
        leaf(
            &front_proxy,
            &pki.front_proxy_client,
            FRONT_PROXY_CLIENT,
            None,
            &[],
            &client,
        )?;

        let sa = KeyPair::generate()?;
        fs::write(&pki.service_account_key, sa.serialize_pem())?;
        fs::write(&pki.service_account_pub, sa.public_key_pem())?;
        Ok(pki)
    }
}

/// The common name of the front proxy's client certificate
/// (`--requestheader-allowed-names`).
pub(crate) const FRONT_PROXY_CLIENT: &str = "front-proxy-client";

/// Creates a self-signed CA, writes it to `files` and returns its issuer.
fn new_ca(files: &CertFiles, common_name: &str) -> Result<Issuer<'static, KeyPair>> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key)?;
    write(files, &cert.pem(), &key)?;
    Ok(Issuer::new(params, key))
}

fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    files: &CertFiles,
    common_name: &str,
    organization: Option<&str>,
    names: &[SanType],
    usages: &[ExtendedKeyUsagePurpose],
) -> Result<()> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    if let Some(organization) = organization {
        params
            .distinguished_name
            .push(DnType::OrganizationName, organization);
    }
    params.subject_alt_names = names.to_vec();
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = usages.to_vec();
    let cert = params
        .signed_by(&key, issuer)
        .with_context(|| format!("cannot sign the {common_name} certificate"))?;
    write(files, &cert.pem(), &key)
}

fn write(files: &CertFiles, cert_pem: &str, key: &KeyPair) -> Result<()> {
    fs::write(&files.cert, cert_pem)
        .with_context(|| format!("cannot write {}", files.cert.display()))?;
    fs::write(&files.key, key.serialize_pem())
        .with_context(|| format!("cannot write {}", files.key.display()))?;
    Ok(())
}

/// Random bytes as hex, for bearer tokens.
pub(crate) fn random_token() -> Result<String> {
    use std::io::Read as _;
    let mut bytes = [0_u8; 24];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_every_file_and_new_tokens_differ() {
        let dir = std::env::temp_dir().join(format!("xtask-pki-{}", std::process::id()));
        let pki = Pki::generate(&dir).unwrap();
        for files in [
            &pki.ca,
            &pki.apiserver,
            &pki.kubelet,
            &pki.apiserver_kubelet_client,
        ] {
            let cert = fs::read_to_string(&files.cert).unwrap();
            assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
            let key = fs::read_to_string(&files.key).unwrap();
            assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
        }
        let public = fs::read_to_string(&pki.service_account_pub).unwrap();
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"));
        assert_ne!(random_token().unwrap(), random_token().unwrap());
        fs::remove_dir_all(&dir).unwrap();
    }
}
