//! A container's runtime bundle `config.json`, built with the `oci-spec` crate (pure).

use std::path::PathBuf;

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxMemoryBuilder,
    LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder,
    LinuxResourcesBuilder, MountBuilder, ProcessBuilder, RootBuilder, Spec, UserBuilder,
};

/// The CFS period used with CPU limits, in microseconds (as the kubelet).
pub const CPU_PERIOD: u64 = 100_000;

/// A host path mounted into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// The host file or directory.
    pub host: PathBuf,
    /// Where the container sees it.
    pub guest: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// Resource limits, already in cgroup terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// `memory.limit_in_bytes` (`resources.limits.memory`).
    pub memory_bytes: Option<i64>,
    /// Also cap memory+swap at the same value (when the kernel accounts swap).
    pub no_swap: bool,
    /// `cpu.cfs_quota_us` for [`CPU_PERIOD`] (`resources.limits.cpu`).
    pub cpu_quota: Option<i64>,
    /// `cpu.shares` (`resources.requests.cpu`).
    pub cpu_shares: Option<u64>,
    /// `pids.max`.
    pub pids: Option<i64>,
}

/// Everything `config.json` says about one container.
#[derive(Debug, Clone, Default)]
pub struct ContainerConfig {
    /// The prepared root filesystem.
    pub rootfs: PathBuf,
    /// Mount the root filesystem read-only (`readOnlyRootFilesystem`).
    pub read_only_root: bool,
    /// argv, `argv[0]` included.
    pub args: Vec<String>,
    /// `NAME=value` pairs.
    pub env: Vec<String>,
    /// Working directory (absolute).
    pub cwd: String,
    /// User and group ids.
    pub uid: u32,
    pub gid: u32,
    /// The pod's hostname.
    pub hostname: String,
    /// Bind mounts: volumes and the pod's `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`.
    pub mounts: Vec<BindMount>,
    /// The pod's network namespace, shared by its containers.
    pub netns: Option<PathBuf>,
    /// Absolute cgroup path (`/skiff/<pod uid>/<container>`).
    pub cgroups_path: String,
    /// Resource limits.
    pub limits: Limits,
    /// `securityContext.capabilities.add` (`NET_ADMIN` or `CAP_NET_ADMIN`).
    pub cap_add: Vec<String>,
    /// `securityContext.capabilities.drop` (`ALL` drops every default).
    pub cap_drop: Vec<String>,
}

/// `cpu.shares` for a CPU request in millicores (Kubernetes' `MilliCPUToShares`).
pub fn cpu_shares(request_millis: u64) -> u64 {
    (request_millis * 1024 / 1000).max(2)
}

/// `cpu.cfs_quota_us` for a CPU limit in millicores (Kubernetes' `MilliCPUToQuota`).
pub fn cpu_quota(limit_millis: u64) -> i64 {
    ((limit_millis * CPU_PERIOD / 1000) as i64).max(1000)
}

/// The capabilities container runtimes grant by default.
const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

fn namespace(typ: LinuxNamespaceType, path: Option<PathBuf>) -> Result<LinuxNamespace, String> {
    let mut b = LinuxNamespaceBuilder::default().typ(typ);
    if let Some(p) = path {
        b = b.path(p);
    }
    b.build().map_err(|e| e.to_string())
}

fn capability(name: &str) -> Result<Capability, String> {
    let bare = name.trim().to_uppercase();
    let bare = bare.strip_prefix("CAP_").unwrap_or(&bare);
    bare.parse()
        .map_err(|_| format!("unknown capability {name:?}"))
}

/// The default capabilities less `drop`, plus `add`.
pub fn capabilities(
    add: &[String],
    drop: &[String],
) -> Result<std::collections::HashSet<Capability>, String> {
    let mut caps: std::collections::HashSet<Capability> =
        DEFAULT_CAPABILITIES.into_iter().collect();
    if drop.iter().any(|d| d.eq_ignore_ascii_case("ALL")) {
        caps.clear();
    } else {
        for d in drop {
            caps.remove(&capability(d)?);
        }
    }
    for a in add {
        caps.insert(capability(a)?);
    }
    Ok(caps)
}

/// Builds the runtime spec: the defaults of `runc spec` (proc, dev, sysfs, masked paths)
/// with the container's process, mounts, namespaces and limits.
pub fn build(c: &ContainerConfig) -> Result<Spec, String> {
    let err = |e: oci_spec::OciSpecError| e.to_string();
    let caps = capabilities(&c.cap_add, &c.cap_drop)?;
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .build()
        .map_err(err)?;
    let process = ProcessBuilder::default()
        .terminal(false)
        .args(c.args.clone())
        .env(c.env.clone())
        .cwd(if c.cwd.is_empty() { "/" } else { &c.cwd })
        .user(
            UserBuilder::default()
                .uid(c.uid)
                .gid(c.gid)
                .build()
                .map_err(err)?,
        )
        .capabilities(capabilities)
        .no_new_privileges(true)
        .build()
        .map_err(err)?;
    let mut mounts = oci_spec::runtime::get_default_mounts();
    for m in &c.mounts {
        let mut options = vec!["rbind".to_string(), "rprivate".to_string()];
        if m.read_only {
            options.push("ro".into());
        }
        mounts.push(
            MountBuilder::default()
                .destination(&m.guest)
                .typ("bind")
                .source(&m.host)
                .options(options)
                .build()
                .map_err(err)?,
        );
    }
    let mut resources = LinuxResourcesBuilder::default();
    if let Some(limit) = c.limits.memory_bytes {
        let mut memory = LinuxMemoryBuilder::default().limit(limit);
        if c.limits.no_swap {
            memory = memory.swap(limit);
        }
        resources = resources.memory(memory.build().map_err(err)?);
    }
    if c.limits.cpu_quota.is_some() || c.limits.cpu_shares.is_some() {
        let mut cpu = LinuxCpuBuilder::default();
        if let Some(q) = c.limits.cpu_quota {
            cpu = cpu.quota(q).period(CPU_PERIOD);
        }
        if let Some(s) = c.limits.cpu_shares {
            cpu = cpu.shares(s);
        }
        resources = resources.cpu(cpu.build().map_err(err)?);
    }
    if let Some(p) = c.limits.pids {
        resources = resources.pids(LinuxPidsBuilder::default().limit(p).build().map_err(err)?);
    }
    let namespaces = vec![
        namespace(LinuxNamespaceType::Pid, None)?,
        namespace(LinuxNamespaceType::Ipc, None)?,
        namespace(LinuxNamespaceType::Uts, None)?,
        namespace(LinuxNamespaceType::Mount, None)?,
        namespace(LinuxNamespaceType::Network, c.netns.clone())?,
    ];
    let defaults = oci_spec::runtime::Linux::default();
    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .cgroups_path(PathBuf::from(&c.cgroups_path))
        .resources(resources.build().map_err(err)?)
        .masked_paths(defaults.masked_paths().clone().unwrap_or_default())
        .readonly_paths(defaults.readonly_paths().clone().unwrap_or_default())
        .build()
        .map_err(err)?;
    let mut spec = Spec::default();
    spec.set_process(Some(process));
    spec.set_root(Some(
        RootBuilder::default()
            .path(&c.rootfs)
            .readonly(c.read_only_root)
            .build()
            .map_err(err)?,
    ));
    spec.set_hostname(Some(c.hostname.clone()));
    spec.set_mounts(Some(mounts));
    spec.set_linux(Some(linux));
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_drop_and_add_by_kubernetes_names() {
        let none = capabilities(&[], &["ALL".into()]).unwrap();
        assert!(none.is_empty());
        let some =
            capabilities(&["NET_ADMIN".into()], &["CHOWN".into(), "CAP_KILL".into()]).unwrap();
        assert!(some.contains(&Capability::NetAdmin) && !some.contains(&Capability::Chown));
        assert!(!some.contains(&Capability::Kill) && some.contains(&Capability::Setuid));
        assert!(capabilities(&["NOPE".into()], &[]).is_err());
    }

    #[test]
    fn cpu_arithmetic_matches_kubernetes() {
        assert_eq!(cpu_shares(1000), 1024);
        assert_eq!(cpu_shares(100), 102);
        assert_eq!(cpu_shares(1), 2);
        assert_eq!(cpu_quota(500), 50_000);
        assert_eq!(cpu_quota(1), 1000);
    }

    #[test]
    fn spec_carries_process_mounts_namespace_and_limits() {
        let c = ContainerConfig {
            rootfs: "/b/rootfs".into(),
            args: vec!["/bin/sh".into(), "-c".into(), "echo hi".into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/work".into(),
            uid: 1000,
            gid: 1000,
            hostname: "web-0".into(),
            mounts: vec![BindMount {
                host: "/data/v".into(),
                guest: "/data".into(),
                read_only: true,
            }],
            netns: Some("/run/netns/p".into()),
            cgroups_path: "/skiff/p/c".into(),
            limits: Limits {
                memory_bytes: Some(64 << 20),
                no_swap: true,
                cpu_quota: Some(50_000),
                cpu_shares: Some(512),
                pids: Some(100),
            },
            ..Default::default()
        };
        let json = serde_json::to_value(build(&c).unwrap()).unwrap();
        assert_eq!(json["process"]["args"][2], "echo hi");
        assert_eq!(json["process"]["terminal"], false);
        assert_eq!(json["process"]["cwd"], "/work");
        assert_eq!(json["process"]["user"]["uid"], 1000);
        assert_eq!(json["root"]["path"], "/b/rootfs");
        assert_eq!(json["hostname"], "web-0");
        let mounts = json["mounts"].as_array().unwrap();
        let data = mounts.iter().find(|m| m["destination"] == "/data").unwrap();
        assert_eq!(
            data["options"],
            serde_json::json!(["rbind", "rprivate", "ro"])
        );
        assert!(mounts.iter().any(|m| m["destination"] == "/proc"));
        let net = json["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["type"] == "network")
            .unwrap()
            .clone();
        assert_eq!(net["path"], "/run/netns/p");
        let r = &json["linux"]["resources"];
        assert_eq!(r["memory"]["limit"], 64 << 20);
        assert_eq!(r["memory"]["swap"], 64 << 20);
        assert_eq!(r["cpu"]["quota"], 50_000);
        assert_eq!(r["cpu"]["period"], 100_000);
        assert_eq!(r["cpu"]["shares"], 512);
        assert_eq!(r["pids"]["limit"], 100);
        assert_eq!(json["linux"]["cgroupsPath"], "/skiff/p/c");
    }
}
