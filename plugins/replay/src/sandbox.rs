//! Running a shell command under bubblewrap: no network, a read-only view of the system
//! directories, one writable workspace, a private /tmp, and time, memory, process and file-size
//! limits. The whole sandbox (bwrap runs it as pid 1 of a new pid namespace, with
//! `--die-with-parent`) is killed when the time runs out or the host cancels.

use std::collections::BTreeMap;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Sandbox settings of a replay task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SandboxParams {
    /// The bubblewrap executable.
    #[serde(default = "default_bwrap")]
    pub bwrap: String,
    /// Address-space limit of every sandboxed process, in bytes.
    #[serde(default = "default_memory")]
    pub memory_bytes: u64,
    /// Maximum number of processes (RLIMIT_NPROC of the sandbox user).
    #[serde(default = "default_pids")]
    pub pids: u64,
    /// Largest file the sandbox may write, in bytes.
    #[serde(default = "default_file_bytes")]
    pub max_file_bytes: u64,
    /// System directories visible read-only inside the sandbox (missing ones are skipped).
    #[serde(default = "default_ro_paths")]
    pub read_only_paths: Vec<String>,
    /// Extra read-only directories (an interpreter outside /usr, a dataset).
    #[serde(default)]
    pub extra_read_only_paths: Vec<String>,
    /// The uid/gid the sandbox runs as. Default: the current user, or 65534 (nobody) when arena
    /// runs as root, because process limits do not apply to root.
    #[serde(default)]
    pub uid: Option<u32>,
    /// Extra environment variables for the commands.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

fn default_bwrap() -> String {
    "bwrap".into()
}
fn default_memory() -> u64 {
    32 << 30
}
fn default_pids() -> u64 {
    512
}
fn default_file_bytes() -> u64 {
    16 << 30
}
fn default_ro_paths() -> Vec<String> {
    ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

impl Default for SandboxParams {
    fn default() -> Self {
        SandboxParams {
            bwrap: default_bwrap(),
            memory_bytes: default_memory(),
            pids: default_pids(),
            max_file_bytes: default_file_bytes(),
            read_only_paths: default_ro_paths(),
            extra_read_only_paths: Vec::new(),
            uid: None,
            env: BTreeMap::new(),
        }
    }
}

impl SandboxParams {
    /// The uid the sandbox runs as (see [`SandboxParams::uid`]).
    pub fn effective_uid(&self) -> u32 {
        // SAFETY: getuid has no preconditions.
        let me = unsafe { libc::getuid() };
        self.uid.unwrap_or(if me == 0 { 65534 } else { me })
    }
}

/// How a sandboxed command ended.
#[derive(Debug)]
pub enum Ended {
    Exited(ExitStatus),
    TimedOut,
    Cancelled,
}

/// The result of one sandboxed command.
#[derive(Debug)]
pub struct RunOutput {
    pub ended: Ended,
    pub stdout: String,
    pub stderr: String,
    pub seconds: f64,
}

impl RunOutput {
    pub fn describe_exit(&self) -> String {
        match &self.ended {
            Ended::Exited(s) => match (s.code(), s.signal()) {
                (Some(c), _) => format!("exit code {c}"),
                (None, Some(sig)) => format!("killed by signal {sig}"),
                _ => "unknown status".into(),
            },
            Ended::TimedOut => "time budget exhausted".into(),
            Ended::Cancelled => "cancelled".into(),
        }
    }

    pub fn success(&self) -> bool {
        matches!(&self.ended, Ended::Exited(s) if s.success())
    }
}

/// How much of each output stream is kept (the tail).
pub const MAX_OUTPUT_BYTES: u64 = 4 << 20;

/// A bind mount into the sandbox.
pub struct Mount<'a> {
    pub path: &'a Path,
    pub writable: bool,
}

/// Runs `command` with `/bin/sh -c` inside the sandbox, in `workspace`, until it ends, the
/// `deadline` passes, or `cancelled()` turns true.
#[allow(clippy::too_many_arguments)] // one sandboxed command: what, where, with what limits
pub fn run(
    params: &SandboxParams,
    workspace: &Path,
    extra_mounts: &[Mount<'_>],
    env: &BTreeMap<String, String>,
    command: &str,
    log_dir: &Path,
    deadline: Instant,
    cancelled: &dyn Fn() -> bool,
) -> std::io::Result<RunOutput> {
    let mut args: Vec<String> = vec![
        "--die-with-parent".into(),
        "--new-session".into(),
        "--unshare-all".into(),
        "--clearenv".into(),
        "--dev".into(),
        "/dev".into(),
        "--proc".into(),
        "/proc".into(),
        "--tmpfs".into(),
        "/tmp".into(),
    ];
    for p in params.read_only_paths.iter().chain(&params.extra_read_only_paths) {
        args.extend(["--ro-bind-try".into(), p.clone(), p.clone()]);
    }
    let ws = workspace.to_string_lossy().to_string();
    args.extend(["--bind".into(), ws.clone(), ws.clone()]);
    for m in extra_mounts {
        let p = m.path.to_string_lossy().to_string();
        args.extend([if m.writable { "--bind" } else { "--ro-bind" }.into(), p.clone(), p]);
    }
    let mut all_env: BTreeMap<String, String> = BTreeMap::new();
    all_env.insert("PATH".into(), "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin".into());
    all_env.insert("HOME".into(), "/tmp".into());
    all_env.insert("TMPDIR".into(), "/tmp".into());
    all_env.insert("LANG".into(), "C.UTF-8".into());
    all_env.extend(params.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    all_env.extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
    for (k, v) in &all_env {
        args.extend(["--setenv".into(), k.clone(), v.clone()]);
    }
    args.extend(["--chdir".into(), ws, "--".into(), "/bin/sh".into(), "-c".into(), command.into()]);

    let out_path = log_dir.join("stdout.log");
    let err_path = log_dir.join("stderr.log");
    let stdout = std::fs::File::create(&out_path)?;
    let stderr = std::fs::File::create(&err_path)?;
    let mut cmd = Command::new(&params.bwrap);
    cmd.args(&args).stdin(Stdio::null()).stdout(stdout).stderr(stderr);
    let uid = params.effective_uid();
    // SAFETY: getuid has no preconditions.
    if uid != unsafe { libc::getuid() } {
        cmd.uid(uid).gid(uid);
    }
    let (memory, pids, fsize) = (params.memory_bytes, params.pids, params.max_file_bytes);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::setpgid(0, 0);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
            for (res, v) in [
                (libc::RLIMIT_AS, memory),
                (libc::RLIMIT_NPROC, pids),
                (libc::RLIMIT_FSIZE, fsize),
                (libc::RLIMIT_CORE, 0),
            ] {
                // Never above the limit this process already has (an isolated worker's memory
                // limit, say): raising a hard limit needs privileges, and would defeat it.
                let mut cur = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                let mut v = v as libc::rlim_t;
                if libc::getrlimit(res, &mut cur) == 0 && cur.rlim_max != libc::RLIM_INFINITY {
                    v = v.min(cur.rlim_max);
                }
                let lim = libc::rlimit { rlim_cur: v, rlim_max: v };
                if libc::setrlimit(res, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot start the sandbox `{}`: {e}", params.bwrap))
    })?;
    let pgid = child.id() as i32;
    let kill = || {
        // SAFETY: plain syscall on the sandbox's own process group.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    };
    let ended = loop {
        if let Some(status) = child.try_wait()? {
            break Ended::Exited(status);
        }
        if Instant::now() >= deadline {
            kill();
            let _ = child.wait();
            break Ended::TimedOut;
        }
        if cancelled() {
            kill();
            let _ = child.wait();
            break Ended::Cancelled;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    kill(); // anything left in the group
    Ok(RunOutput {
        ended,
        stdout: read_tail(&out_path)?,
        stderr: read_tail(&err_path)?,
        seconds: start.elapsed().as_secs_f64(),
    })
}

fn read_tail(p: &PathBuf) -> std::io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(p)?;
    let len = f.metadata()?.len();
    if len > MAX_OUTPUT_BYTES {
        f.seek(SeekFrom::Start(len - MAX_OUTPUT_BYTES))?;
    }
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}
