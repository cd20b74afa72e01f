//! Hosts on one machine: network namespaces joined by veth pairs, links cut and restored
//! with nftables, and nodes run inside a namespace. Needs root (CI runs as root); the
//! tests that use it are `#[cfg_attr(not(passerelle_root), ignore = "needs root …")]`
//! (`tests/build.rs` sets `passerelle_root` when the build runs as root).
//!
//! A node runs inside a namespace in this process: a thread enters the namespace
//! (`setns`) and runs the node's own tokio runtime, whose threads inherit it; the test
//! drives it through its [`passerelle_node::node::NodeHandle`] as any other node.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<(), String> {
    let mut command = Command::new(program);
    command
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if stdin.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("{program}: {e} (needs iproute2 and nftables)"))?;
    if let Some(text) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .ok_or("no stdin")?
            .write_all(text.as_bytes())
            .map_err(|e| e.to_string())?;
    }
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn ip(args: &[&str]) {
    if let Err(e) = run("ip", args, None) {
        panic!("{e} (network namespaces need root)");
    }
}

/// A network namespace: one host.
#[derive(Debug)]
pub struct Host {
    /// The namespace's name (`ip netns`).
    pub namespace: String,
    /// Its address on the link.
    pub address: Ipv4Addr,
}

impl Host {
    /// A multiaddr to listen on at this host (a free port).
    pub fn listen_addr(&self) -> libp2p::Multiaddr {
        format!("/ip4/{}/tcp/0", self.address)
            .parse()
            .expect("multiaddr")
    }

    /// Bytes received and sent since the interfaces were made, over every interface of
    /// this host but loopback (`ip -s link`): what crossed its links, framing, pings and
    /// keep-alives included.
    pub fn bytes(&self) -> (u64, u64) {
        let output = Command::new("ip")
            .args(["-n", &self.namespace, "-s", "-j", "link", "show"])
            .output()
            .unwrap_or_else(|e| panic!("ip -s link: {e}"));
        let links: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("ip -j gives JSON");
        let mut total = (0, 0);
        for link in links.as_array().into_iter().flatten() {
            if link["ifname"] == "lo" {
                continue;
            }
            let stats = &link["stats64"];
            total.0 += stats["rx"]["bytes"].as_u64().unwrap_or(0);
            total.1 += stats["tx"]["bytes"].as_u64().unwrap_or(0);
        }
        total
    }

    /// Runs an nftables script in this host.
    pub fn nft(&self, script: &str) {
        if let Err(e) = run(
            "ip",
            &["netns", "exec", &self.namespace, "nft", "-f", "-"],
            Some(script),
        ) {
            panic!("{e}");
        }
    }
}

/// Two hosts joined by one link (a veth pair, 10.232.<n>.1 and .2 on a /30), which can be
/// cut and restored. Removed when dropped.
#[derive(Debug)]
pub struct Link {
    /// The two ends.
    pub hosts: [Host; 2],
    cut: bool,
}

impl Link {
    /// Creates the two namespaces and the link between them.
    pub fn create() -> Self {
        let tag = format!(
            "{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let n = (std::process::id() as usize * 7 + NEXT.load(Ordering::Relaxed) as usize) % 250;
        let names = [format!("pln{tag}a"), format!("pln{tag}b")];
        let veths = [format!("plv{tag}a"), format!("plv{tag}b")];
        let addresses = [
            Ipv4Addr::new(10, 232, n as u8, 1),
            Ipv4Addr::new(10, 232, n as u8, 2),
        ];
        let link = Self {
            hosts: [
                Host {
                    namespace: names[0].clone(),
                    address: addresses[0],
                },
                Host {
                    namespace: names[1].clone(),
                    address: addresses[1],
                },
            ],
            cut: false,
        };
        ip(&["netns", "add", &names[0]]);
        ip(&["netns", "add", &names[1]]);
        ip(&[
            "link", "add", &veths[0], "type", "veth", "peer", "name", &veths[1],
        ]);
        for i in 0..2 {
            ip(&["link", "set", &veths[i], "netns", &names[i]]);
            ip(&[
                "-n",
                &names[i],
                "addr",
                "add",
                &format!("{}/30", addresses[i]),
                "dev",
                &veths[i],
            ]);
            ip(&["-n", &names[i], "link", "set", &veths[i], "up"]);
            ip(&["-n", &names[i], "link", "set", "lo", "up"]);
        }
        link
    }

    /// Cuts the link: every packet between the two hosts is dropped silently, in both
    /// directions, as when a 4G link or an office's line goes down (connections are not
    /// told; they find out by themselves).
    pub fn cut(&mut self) {
        let peer = self.hosts[1].address;
        self.hosts[0].nft(&format!(
            "table inet passerelle_cut {{\n\
             chain input {{ type filter hook input priority 0; policy accept; ip saddr {peer} drop; }}\n\
             chain output {{ type filter hook output priority 0; policy accept; ip daddr {peer} drop; }}\n\
             }}\n"
        ));
        self.cut = true;
    }

    /// Restores the link.
    pub fn restore(&mut self) {
        if self.cut {
            self.hosts[0].nft("delete table inet passerelle_cut\n");
            self.cut = false;
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        for host in &self.hosts {
            let _ = run("ip", &["netns", "del", &host.namespace], None);
        }
    }
}

/// Makes the calling thread enter the network namespace `name`: sockets it and the threads
/// it starts afterwards open belong to that namespace.
pub fn enter(name: &str) -> std::io::Result<()> {
    let file = std::fs::File::open(format!("/var/run/netns/{name}"))?;
    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
}

/// A small internet on one machine: a bridge (in its own namespace) joining hosts with
/// public addresses (11.0.0.0/24; global addresses, so AutoNAT takes them as public, in
/// namespaces that reach nothing outside this machine), and routers in front of offices
/// that translate addresses as an ADSL or 4G router does (nftables masquerade; unsolicited
/// packets from the internet dropped). Every namespace is removed when dropped.
#[derive(Debug)]
pub struct Internet {
    tag: String,
    bridge: String,
    namespaces: Vec<String>,
    next_public: u8,
    next_office: u8,
}

/// An office behind NAT: the host the node runs on, and its router(s).
#[derive(Debug)]
pub struct Office {
    /// The office's computer (a private address).
    pub host: Host,
    /// The router on the internet (its public address); for a carrier NAT, the operator's.
    pub public_address: Ipv4Addr,
}

fn in_namespace(namespace: &str, script: &str) {
    if let Err(e) = run(
        "ip",
        &["netns", "exec", namespace, "sh", "-c", script],
        None,
    ) {
        panic!("{e}");
    }
}

/// The nftables rules of a router doing NAT: what leaves by `wan` takes the router's
/// address; from the internet only replies pass (to the office or the router itself).
fn nat_rules(wan: &str) -> String {
    format!(
        "table ip passerelle_nat {{\n\
         chain postrouting {{ type nat hook postrouting priority 100; oifname \"{wan}\" masquerade; }}\n\
         chain forward {{ type filter hook forward priority 0; policy drop; iifname != \"{wan}\" accept; ct state established,related accept; }}\n\
         chain input {{ type filter hook input priority 0; policy accept; iifname \"{wan}\" ct state new drop; }}\n\
         }}\n"
    )
}

impl Internet {
    /// Creates the bridge.
    pub fn create() -> Self {
        let tag = format!(
            "{}i{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let bridge = format!("pli{tag}");
        ip(&["netns", "add", &bridge]);
        ip(&["-n", &bridge, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &bridge, "link", "set", "br0", "up"]);
        ip(&["-n", &bridge, "link", "set", "lo", "up"]);
        Self {
            tag,
            namespaces: vec![bridge.clone()],
            bridge,
            next_public: 1,
            next_office: 1,
        }
    }

    fn namespace(&mut self, role: &str) -> String {
        let name = format!("pl{role}{}x{}", self.tag, self.namespaces.len());
        ip(&["netns", "add", &name]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        self.namespaces.push(name.clone());
        name
    }

    /// Joins `namespace` to the bridge by an interface named `wan`; gives it the next
    /// public address.
    fn plug(&mut self, namespace: &str) -> Ipv4Addr {
        let n = self.next_public;
        self.next_public += 1;
        let address = Ipv4Addr::new(11, 0, 0, n);
        let (outer, inner) = (
            format!("plb{}x{n}", self.tag),
            format!("plw{}x{n}", self.tag),
        );
        ip(&[
            "link", "add", &outer, "type", "veth", "peer", "name", &inner,
        ]);
        ip(&["link", "set", &outer, "netns", &self.bridge]);
        ip(&["-n", &self.bridge, "link", "set", &outer, "master", "br0"]);
        ip(&["-n", &self.bridge, "link", "set", &outer, "up"]);
        ip(&["link", "set", &inner, "netns", namespace]);
        ip(&["-n", namespace, "link", "set", &inner, "name", "wan"]);
        ip(&[
            "-n",
            namespace,
            "addr",
            "add",
            &format!("{address}/24"),
            "dev",
            "wan",
        ]);
        ip(&["-n", namespace, "link", "set", "wan", "up"]);
        address
    }

    /// Joins `inside` (by `wan`, with `inside_address`) to `router` (by `lan`, with
    /// `router_address`) on a /24; `inside` routes everything through the router.
    fn wire(
        &mut self,
        router: &str,
        router_address: Ipv4Addr,
        inside: &str,
        inside_address: Ipv4Addr,
    ) {
        let n = self.namespaces.len();
        let (a, b) = (
            format!("pll{}x{n}", self.tag),
            format!("plm{}x{n}", self.tag),
        );
        ip(&["link", "add", &a, "type", "veth", "peer", "name", &b]);
        ip(&["link", "set", &a, "netns", router]);
        ip(&["-n", router, "link", "set", &a, "name", "lan"]);
        ip(&[
            "-n",
            router,
            "addr",
            "add",
            &format!("{router_address}/24"),
            "dev",
            "lan",
        ]);
        ip(&["-n", router, "link", "set", "lan", "up"]);
        ip(&["link", "set", &b, "netns", inside]);
        ip(&["-n", inside, "link", "set", &b, "name", "wan"]);
        ip(&[
            "-n",
            inside,
            "addr",
            "add",
            &format!("{inside_address}/24"),
            "dev",
            "wan",
        ]);
        ip(&["-n", inside, "link", "set", "wan", "up"]);
        ip(&[
            "-n",
            inside,
            "route",
            "add",
            "default",
            "via",
            &router_address.to_string(),
        ]);
    }

    /// A router namespace: forwarding on (NAT is turned on once it is wired).
    fn router(&mut self) -> String {
        let router = self.namespace("r");
        in_namespace(&router, "echo 1 > /proc/sys/net/ipv4/ip_forward");
        router
    }

    /// The office's computer behind `router` (192.168.`n`.2, the router .1).
    fn office_host(&mut self, router: &str, n: u8) -> Host {
        let host = self.namespace("o");
        let address = Ipv4Addr::new(192, 168, n, 2);
        self.wire(router, Ipv4Addr::new(192, 168, n, 1), &host, address);
        Host {
            namespace: host,
            address,
        }
    }

    /// Turns on NAT in `router` (on its `wan`).
    fn translate(router: &str) {
        Host {
            namespace: router.to_owned(),
            address: Ipv4Addr::UNSPECIFIED,
        }
        .nft(&nat_rules("wan"));
    }

    /// A host with a public address on the internet (a server at a ministry or a data
    /// centre).
    pub fn public_host(&mut self) -> Host {
        let namespace = self.namespace("p");
        let address = self.plug(&namespace);
        Host { namespace, address }
    }

    /// An office behind a router doing NAT (ADSL or 4G box).
    pub fn office(&mut self) -> Office {
        let n = self.next_office;
        self.next_office += 1;
        let router = self.router();
        let public_address = self.plug(&router);
        let host = self.office_host(&router, n);
        Self::translate(&router);
        Office {
            host,
            public_address,
        }
    }

    /// An office behind two NATs in a row: its own router, whose "internet" side is the
    /// mobile operator's network (100.64.0.0/10, shared address space), and the operator's
    /// carrier-grade NAT in front of the internet.
    pub fn office_behind_carrier_nat(&mut self) -> Office {
        let n = self.next_office;
        self.next_office += 1;
        let carrier = self.router();
        let public_address = self.plug(&carrier);
        let home = self.router();
        self.wire(
            &carrier,
            Ipv4Addr::new(100, 64, n, 1),
            &home,
            Ipv4Addr::new(100, 64, n, 2),
        );
        let host = self.office_host(&home, n);
        Self::translate(&carrier);
        Self::translate(&home);
        Office {
            host,
            public_address,
        }
    }
}

impl Drop for Internet {
    fn drop(&mut self) {
        for namespace in &self.namespaces {
            let _ = run("ip", &["netns", "del", namespace], None);
        }
    }
}
