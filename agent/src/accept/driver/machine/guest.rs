//! What runs inside a machine, as text: the command channel's guest side,
//! its systemd unit, and the scripts halo sends for the boot, the install
//! and the tests. PURE.

use std::collections::BTreeMap;

use crate::sysroot::blueprint::REPO_IN_SYSTEM;

/// The guest's side of `super::channel`: installed in the base disk as
/// `/usr/local/sbin/halo-guest`, started by [`UNIT`].
pub const AGENT: &str = r#"#!/bin/sh
# halo's command channel (halo accept, docs/acceptance.md): runs what halo
# sends on the virtio port and returns its output and status.
PORT=/dev/virtio-ports/halo
while [ ! -e "$PORT" ]; do sleep 0.2; done
exec 3<>"$PORT"
while IFS=' ' read -r token script <&3; do
  printf '%s' "$script" | base64 -d > /run/halo-cmd
  sh /run/halo-cmd </dev/null >&3 2>&3
  printf '\n%s %s\n' "$token" "$?" >&3
done
"#;

/// Where [`AGENT`] lives in the machine.
pub const AGENT_PATH: &str = "/usr/local/sbin/halo-guest";

/// The agent's unit, enabled in the base disk.
pub const UNIT: &str = "[Unit]
Description=halo's command channel

[Service]
ExecStart=/usr/local/sbin/halo-guest
Restart=always

[Install]
WantedBy=multi-user.target
";

/// The device the snapshot's APT tree is attached as (read-only ext4,
/// the second virtio disk).
pub const REPO_DEVICE: &str = "/dev/vdb";

/// A machine's place on its network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// `10.<network>.0.<host>`.
    pub ip: String,
    pub mac: String,
    /// `IP NAME` of every machine of the network, this one included.
    pub hosts: Vec<(String, String)>,
}

/// Shell single quotes around `s`.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// After the channel answers: the snapshot's tree mounted where the
/// system's sources.list expects it, the network configured, then
/// systemd's verdict on the boot (`running`, or `degraded` with the
/// failed units: the step fails).
pub fn boot_script(name: &str, address: Option<&Address>) -> String {
    let mut s = String::from("set -e\n");
    s.push_str(&format!(
        "mkdir -p {REPO_IN_SYSTEM}\nmount -o ro,noload {REPO_DEVICE} {REPO_IN_SYSTEM}\n"
    ));
    let mut hosts = format!("127.0.0.1 localhost\n127.0.1.1 {name}\n");
    if let Some(a) = address {
        hosts = String::from("127.0.0.1 localhost\n");
        for (ip, host) in &a.hosts {
            hosts.push_str(&format!("{ip} {host}\n"));
        }
        s.push_str(&format!(
            "mkdir -p /etc/systemd/network\ncat > /etc/systemd/network/10-halo.network <<'EOF'\n\
             [Match]\nMACAddress={}\n\n[Network]\nAddress={}/24\nLinkLocalAddressing=no\nIPv6AcceptRA=no\nEOF\n\
             networkctl reload\n",
            a.mac, a.ip
        ));
    }
    s.push_str(&format!("cat > /etc/hosts <<'EOF'\n{hosts}EOF\n"));
    s.push_str(
        "set +e\nstate=$(systemctl is-system-running --wait)\necho \"systemd: $state\"\n\
         if [ -e /etc/systemd/network/10-halo.network ]; then\n  \
         /lib/systemd/systemd-networkd-wait-online --timeout=30 >/dev/null 2>&1 || echo 'network: not online after 30 s'\n  \
         networkctl --no-pager --lines=0 status eth0 2>&1 || true\nfi\n\
         [ \"$state\" = running ] && exit 0\n\
         echo 'failed units:'\nsystemctl --no-pager --failed --no-legend --plain\nexit 1\n",
    );
    s
}

/// The install step: the machine's own apt reads the snapshot and
/// installs; services start as their packages say (no policy-rc.d).
pub fn install_script(packages: &[String]) -> String {
    let mut s = String::from("set -e\nexport DEBIAN_FRONTEND=noninteractive\napt-get update -q\n");
    if !packages.is_empty() {
        let list: Vec<String> = packages.iter().map(|p| quote(p)).collect();
        s.push_str(&format!("apt-get install -q -y {}\n", list.join(" ")));
    }
    s
}

/// A test: `sh -c COMMAND` in `/` with the fixed environment and the
/// run's `HALO_*` on top.
pub fn test_script(command: &str, env: &BTreeMap<String, String>) -> String {
    let mut s = String::new();
    for (k, v) in env {
        s.push_str(&format!("export {k}={}\n", quote(v)));
    }
    s.push_str(&format!("cd /\nexec sh -c {}\n", quote(command)));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_quote_what_they_are_given() {
        assert_eq!(quote("it's"), r"'it'\''s'");
        let env = BTreeMap::from([("HALO_SYSTEM".to_string(), "a'b".to_string())]);
        let t = test_script("echo \"$HALO_SYSTEM\" 'x'", &env);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(t)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a'b x\n");
        assert!(install_script(&["a=1".into(), "b".into()]).ends_with("install -q -y 'a=1' 'b'\n"));
    }

    #[test]
    fn the_boot_script_names_every_machine_of_the_network() {
        let a = Address {
            ip: "10.1.0.11".into(),
            mac: "52:54:00:01:00:0b".into(),
            hosts: vec![
                ("10.1.0.10".into(), "db".into()),
                ("10.1.0.11".into(), "app".into()),
            ],
        };
        let s = boot_script("app", Some(&a));
        assert!(s.contains("10.1.0.10 db\n10.1.0.11 app\n"), "{s}");
        assert!(s.contains("Address=10.1.0.11/24"));
        assert!(s.contains("mount -o ro,noload /dev/vdb /run/halo/repo"));
        assert!(!boot_script("solo", None).contains("networkctl reload"));
    }
}
