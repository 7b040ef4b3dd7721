//! The node processes B6 measures: faas-vnode's function backend and
//! virtual-kubelet's mock provider, each its own process so that its
//! resident memory can be read before and after the pods arrive.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use faas_e2e::TestCluster;
use k8s_openapi::api::core::v1::Node;
use kube::api::DeleteParams;
use kube::{Api, Client};
use tokio::process::{Child, Command};

/// virtual-kubelet's client limits and workers.
#[derive(Clone, Copy, Debug)]
pub struct PeerLimits {
    /// client-go QPS and burst; `None` keeps client-go's defaults (5, 10).
    pub client: Option<(f32, u32)>,
    /// `--pod-sync-workers` (virtual-kubelet's default is 10).
    pub sync_workers: u32,
}

impl PeerLimits {
    /// virtual-kubelet as it starts with no option.
    pub const DEFAULTS: Self = Self {
        client: None,
        sync_workers: 10,
    };

    /// Limits raised as an operator of a busy node would: 500 QPS, burst
    /// 1000, 32 sync workers.
    pub const RAISED: Self = Self {
        client: Some((500.0, 1000)),
        sync_workers: 32,
    };
}

/// A process's resident memory and its parts, in bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rss {
    /// VmRSS: everything resident.
    pub total: u64,
    /// RssAnon: the heap, stacks and other private memory.
    pub anonymous: u64,
    /// RssFile: pages of mapped files, mostly the program's own code as it is first run.
    pub file: u64,
}

/// A node agent running as a child process, with the Node it registered.
#[derive(Debug)]
pub struct NodeProcess {
    name: String,
    child: Child,
    pid: u32,
    state: PathBuf,
}

impl NodeProcess {
    /// Starts `b6-node` (faas-vnode with the `echo` function) as node `name`
    /// with the function backend and room for `pods` pods.
    ///
    /// # Panics
    ///
    /// When the binary cannot start.
    pub fn faas(binary: &Path, name: &str, pods: usize) -> Self {
        let state = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let mut cmd = Command::new(binary);
        cmd.args([
            "--node-name",
            name,
            "--backend",
            "function",
            "--pod-cidr",
            "127.2.0.0/16",
        ])
        .args(["--max-pods", &(pods + 10).to_string()])
        .arg("--state-dir")
        .arg(&state)
        .env(super::heap::HEAP_FILE_ENV, state.join("heap"));
        #[cfg(feature = "dhat-heap")]
        cmd.env("B6_DHAT_FILE", heap_profile_path());
        Self::spawn(cmd, name, state)
    }

    /// Starts virtual-kubelet (`--provider mock`) as node `name` with room for
    /// `pods` pods, its kubelet port on 127.0.0.1 serving the cluster's
    /// kubelet certificate.
    ///
    /// # Panics
    ///
    /// When the binary cannot start or its configuration cannot be written.
    pub fn virtual_kubelet(
        binary: &Path,
        cluster: &TestCluster,
        name: &str,
        pods: usize,
        limits: PeerLimits,
    ) -> Self {
        let state = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&state).expect("a state directory");
        let config = state.join("mock.json");
        let capacity = serde_json::json!({
            name: { "cpu": "1000", "memory": "4Ti", "pods": (pods + 10).to_string() }
        });
        std::fs::write(&config, capacity.to_string()).expect("write the mock's config");
        let paths = cluster.paths();
        let kubeconfig =
            std::env::var_os("KUBECONFIG").map_or(paths.kubeconfig.clone(), PathBuf::from);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut cmd = Command::new(binary);
        cmd.args([
            "--provider",
            "mock",
            "--nodename",
            name,
            "--log-level",
            "warn",
        ])
        .arg("--provider-config")
        .arg(&config)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--pod-sync-workers", &limits.sync_workers.to_string()])
        .env("KUBELET_PORT", port.to_string())
        .env("VKUBELET_POD_IP", "127.0.0.1")
        .env("APISERVER_CERT_LOCATION", &paths.pki.kubelet_cert)
        .env("APISERVER_KEY_LOCATION", &paths.pki.kubelet_key)
        .env("APISERVER_CA_CERT_LOCATION", &paths.pki.ca_cert)
        .env_remove("VK_CLIENT_QPS")
        .env_remove("VK_CLIENT_BURST");
        if let Some((qps, burst)) = limits.client {
            cmd.env("VK_CLIENT_QPS", qps.to_string())
                .env("VK_CLIENT_BURST", burst.to_string());
        }
        // client-go logs every throttled request: keep that out of the report.
        let log = state.join("virtual-kubelet.log");
        let file = std::fs::File::create(&log).expect("create the virtual-kubelet log");
        cmd.stdout(file.try_clone().expect("a log handle"))
            .stderr(file);
        eprintln!("{name}: virtual-kubelet's log is {}", log.display());
        Self::spawn(cmd, name, state)
    }

    fn spawn(mut cmd: Command, name: &str, state: PathBuf) -> Self {
        let child = cmd
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start the node {name}: {e}"));
        let pid = child.id().expect("a running node");
        Self {
            name: name.to_owned(),
            child,
            pid,
            state,
        }
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits until the Node reports Ready, then lets the process settle.
    ///
    /// # Panics
    ///
    /// When the process exits or the node is not Ready within two minutes.
    pub async fn wait_ready(&mut self, client: &Client) {
        let nodes: Api<Node> = Api::all(client.clone());
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let ready = nodes
                .get_opt(&self.name)
                .await
                .ok()
                .flatten()
                .is_some_and(|n| {
                    n.status
                        .and_then(|s| s.conditions)
                        .unwrap_or_default()
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
                });
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the node {} never became Ready",
                self.name
            );
            assert!(
                self.child.try_wait().ok().flatten().is_none(),
                "the node {} exited",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    /// Whether the process reports its heap (faas-vnode does, virtual-kubelet
    /// does not).
    pub fn reports_heap(&self) -> bool {
        self.state.join("heap").exists()
    }

    /// The live heap the process reported after this call (faas-vnode only:
    /// virtual-kubelet does not report one).
    pub async fn heap_bytes(&self) -> Option<u64> {
        if !self.reports_heap() {
            return None;
        }
        let path = self.state.join("heap");
        super::heap::fresh_report(&path).await
    }

    /// Has `b6-node` (built with the `dhat-heap` feature) write its heap
    /// profile now, and waits for it: the blocks live at this moment, by
    /// allocation site. Returns where it is.
    ///
    /// # Panics
    ///
    /// When the signal cannot be sent or no profile is written within ten
    /// minutes (writing one of a large heap takes a while).
    #[cfg(feature = "dhat-heap")]
    pub async fn dump_heap_profile(&self) -> PathBuf {
        let path = heap_profile_path();
        let _ = std::fs::remove_file(&path);
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.pid).expect("a pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR1).expect("signal the node");
        let deadline = Instant::now() + Duration::from_secs(600);
        let mut last_len = None;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            // Written in one go at the end: done once its size stops changing.
            let len = std::fs::metadata(&path).map(|m| m.len()).ok();
            if len.is_some() && len == last_len {
                return path;
            }
            last_len = len;
            assert!(
                Instant::now() < deadline,
                "no heap profile at {}",
                path.display()
            );
        }
    }

    /// The process's resident memory (VmRSS), in bytes.
    pub fn rss_bytes(&self) -> u64 {
        self.rss().total
    }

    /// The process's resident memory, in bytes, and its parts.
    pub fn rss(&self) -> Rss {
        let status = i32::try_from(self.pid)
            .ok()
            .and_then(|pid| procfs::process::Process::new(pid).ok())
            .and_then(|process| process.status().ok());
        let bytes = |kb: Option<u64>| kb.map_or(0, |kb| kb * 1024);
        Rss {
            total: bytes(status.as_ref().and_then(|s| s.vmrss)),
            anonymous: bytes(status.as_ref().and_then(|s| s.rssanon)),
            file: bytes(status.as_ref().and_then(|s| s.rssfile)),
        }
    }

    /// Stops the process (SIGTERM, then kill after 30 s), deletes its Node and
    /// its state (the virtual-kubelet log with it).
    pub async fn stop(mut self, client: &Client) {
        if let Ok(pid) = i32::try_from(self.pid) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        let nodes: Api<Node> = Api::all(client.clone());
        let _ = nodes.delete(&self.name, &DeleteParams::default()).await;
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

/// Where `b6-node` built with `dhat-heap` writes its profile: `B6_DHAT_FILE`,
/// else `b6-dhat-heap.json` in the temporary directory.
#[cfg(feature = "dhat-heap")]
pub fn heap_profile_path() -> PathBuf {
    std::env::var_os("B6_DHAT_FILE").map_or_else(
        || std::env::temp_dir().join("b6-dhat-heap.json"),
        PathBuf::from,
    )
}
