//! The pod network namespace, set up for real. Creating a network namespace needs root
//! (CAP_NET_ADMIN and CAP_SYS_ADMIN): run by anyone else the test says why it skips and passes,
//! unless `FAAS_ROOT_TESTS=1` asks for it, as `cargo xtask test` does (running it as root, with
//! `sudo -n` when it is not root itself), and then it fails if it cannot run.

use std::net::{IpAddr, SocketAddr};

use faas_k8s::node::network::PodNetwork;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "support/root.rs"]
mod root;

/// The local addresses a program started in the pod network sees (its `/proc/net/fib_trie`).
async fn local_addresses(net: &PodNetwork) -> Vec<IpAddr> {
    let mut cat = tokio::process::Command::new("/bin/cat");
    cat.arg("/proc/net/fib_trie");
    let output = net.output(cat).await.expect("run cat inside the namespace");
    let trie = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = trie.lines().collect();
    // An address line (`|-- 10.245.3.7`) is followed by `/32 host LOCAL` for a local address.
    lines
        .windows(2)
        .filter(|pair| pair[1].contains("host LOCAL"))
        .filter_map(|pair| pair[0].trim().trim_start_matches("|-- ").parse().ok())
        .collect()
}

#[tokio::test]
async fn network_namespace_addresses_are_reachable_from_the_host() {
    if !root::may_run("network_namespace_addresses_are_reachable_from_the_host") {
        return;
    }
    let net = PodNetwork::namespace("faastest", "10.245.0.0/16");
    if let Err(e) = net.prepare().await {
        panic!("setting up a network namespace needs root: {e}");
    }
    // Twice: set-up is idempotent.
    net.prepare().await.expect("prepare again");
    let addr: IpAddr = "10.245.3.7".parse().unwrap();
    net.add_address(addr).await.expect("add a pod address");
    net.add_address(addr)
        .await
        .expect("adding it again is fine");

    // A listener bound inside the namespace answers a client on the host.
    let listener = net
        .bind_tcp(SocketAddr::new(addr, 0))
        .await
        .expect("bind inside the namespace");
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut stream, peer) = listener.accept().await.expect("accept");
        stream.write_all(b"hello").await.expect("write");
        peer
    });
    let mut client = tokio::net::TcpStream::connect((addr, port))
        .await
        .expect("the host reaches the pod address");
    let mut text = String::new();
    client.read_to_string(&mut text).await.expect("read");
    assert_eq!(text, "hello");
    let peer = server.await.unwrap();
    assert_eq!(
        Some(peer.ip()),
        net.reserved_address(),
        "the host end talks to pods"
    );

    // Programs started through the network run inside the namespace and see the address.
    let listing = local_addresses(&net).await;
    assert!(listing.contains(&addr), "{listing:?}");

    net.remove_address(addr).await.expect("remove the address");
    net.remove_address(addr)
        .await
        .expect("removing it again is fine");
    let listing = local_addresses(&net).await;
    assert!(!listing.contains(&addr), "{listing:?}");
}
