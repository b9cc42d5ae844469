//! Isolated jobs: each evaluation runs in a child `arena worker` process.
//!
//! Protocol (JSON lines): the host writes the [`Job`] as the first line of the worker's stdin,
//! and later may write `{"cancel":true}`; closing stdin also cancels. The worker answers on its
//! stdout with [`WorkerEvent`]s: progress reports, then exactly one `result` or `error`. The
//! worker moves the plugin's own stdout writes to stderr before loading it, so a plugin's
//! `println!` cannot forge a protocol line; it counts them, and says how many bytes there were
//! (a `stdout` event before the last one), since a plugin that writes to stdout is a plugin that
//! breaks a miner's `--json` when it runs in-process.
//!
//! The child runs in its own process group (so a terminal Ctrl-C reaches only the host, which
//! cancels cleanly), dies with the host (`PR_SET_PDEATHSIG`), has its address space limited
//! (`RLIMIT_AS`) and no core dumps. On timeout or cancellation the whole process group is
//! killed and reaped: no orphans, no zombies.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arena_plugin_api::{EvalOutput, PluginInfo, Progress};
use serde::{Deserialize, Serialize};

use crate::cancel;
use crate::job::{FailureKind, Job, JobFailure, JobLimits};
use crate::plugins::PluginLoadError;

/// How many lines of the worker's stderr a failure keeps.
pub const STDERR_TAIL_LINES: usize = 20;
/// How long a cancelled worker gets to stop by itself before it is killed.
pub const CANCEL_GRACE: Duration = Duration::from_secs(2);

/// A line the worker writes to the host.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum WorkerEvent {
    Progress {
        done: u64,
        total: u64,
        message: String,
    },
    Result {
        output: EvalOutput,
        /// Seconds in the plugin's own code (creating the task and evaluating).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        plugin_seconds: Option<f64>,
    },
    Error {
        kind: FailureKind,
        message: String,
    },
    /// The plugin wrote `bytes` bytes to its stdout (moved to stderr); `head` is how they began.
    Stdout {
        bytes: u64,
        head: String,
    },
}

/// A line the host writes to the worker after the job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HostCommand {
    #[serde(default)]
    pub cancel: bool,
}

/// Runs jobs in worker processes.
#[derive(Clone, Debug, Default)]
pub struct Supervisor {
    /// The executable that provides `worker` (the `arena` binary).
    pub worker_exe: PathBuf,
    /// Environment variables set in each worker, over the host's.
    pub env: Vec<(String, String)>,
}

/// One job as the supervisor saw it: its outcome, and what else the worker said.
#[derive(Clone, Debug)]
pub struct Observed {
    pub result: Result<EvalOutput, JobFailure>,
    /// The time the worker spent in the plugin's own code, when it said.
    pub plugin_time: Option<Duration>,
    /// Bytes the plugin wrote to stdout, and how they began.
    pub stdout: Option<(u64, String)>,
}

impl Supervisor {
    /// A supervisor whose workers are this executable (`arena worker`).
    pub fn current_exe() -> std::io::Result<Self> {
        Ok(Supervisor { worker_exe: std::env::current_exe()?, env: Vec::new() })
    }

    /// The supervisor plugin probes use: `$ARENA_WORKER_EXE`, else this executable when it is
    /// the `arena` binary; none in another program (a test harness has no `worker` command).
    pub fn for_probes() -> Option<Self> {
        if let Some(exe) = std::env::var_os("ARENA_WORKER_EXE") {
            return Some(Supervisor { worker_exe: PathBuf::from(exe), env: Vec::new() });
        }
        let exe = std::env::current_exe().ok()?;
        (exe.file_stem()? == "arena").then_some(Supervisor { worker_exe: exe, env: Vec::new() })
    }

    /// What the library at `path` declares, learnt by a worker that loads it.
    pub fn probe(&self, path: &Path, sha256: &str) -> Result<PluginInfo, PluginLoadError> {
        let failed = |code: String, message: String| PluginLoadError::Probe {
            path: path.to_path_buf(),
            code,
            message,
        };
        let limits = JobLimits { wall: Some(Duration::from_secs(60)), memory_bytes: None };
        let out = self.run(&Job::probe(path, sha256), limits, &FnProgress(|_, _, _| {})).map_err(|f| {
            let kind = serde_json::to_value(f.kind).ok().and_then(|v| v.as_str().map(str::to_string));
            failed(
                format!("probe_{}", kind.unwrap_or_else(|| "failed".into())),
                format!("{}: loading it in a worker failed: {}", path.display(), f.message),
            )
        })?;
        let mut details = out.details;
        if let Some(e) = details.get("load_error") {
            let text = |k: &str| e.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
            return Err(failed(text("code"), text("message")));
        }
        serde_json::from_value(details["info"].take()).map_err(|e| {
            failed(
                "probe_protocol".into(),
                format!("{}: the probe's answer is not plugin info: {e}", path.display()),
            )
        })
    }

    /// Runs one job in a fresh worker, within `limits`. Progress reports are passed to
    /// `progress.report`; `progress.is_cancelled()` (and Ctrl-C) cancel the job.
    pub fn run(
        &self,
        job: &Job,
        limits: JobLimits,
        progress: &dyn Progress,
    ) -> Result<EvalOutput, JobFailure> {
        self.run_timed(job, limits, progress).0
    }

    /// [`Supervisor::run`], with the time the worker spent in the plugin's own code, when it
    /// said (what the host's overhead is measured against).
    pub fn run_timed(
        &self,
        job: &Job,
        limits: JobLimits,
        progress: &dyn Progress,
    ) -> (Result<EvalOutput, JobFailure>, Option<Duration>) {
        let o = self.run_observed(job, limits, progress);
        (o.result, o.plugin_time)
    }

    /// [`Supervisor::run`], with everything the worker said besides its outcome.
    pub fn run_observed(&self, job: &Job, limits: JobLimits, progress: &dyn Progress) -> Observed {
        let mut child = match self.spawn(limits) {
            Ok(c) => c,
            Err(e) => {
                let why = format!("cannot start {} worker: {e}", self.worker_exe.display());
                let result = Err(JobFailure::new(FailureKind::Spawn, why));
                return Observed { result, plugin_time: None, stdout: None };
            }
        };
        let pid = child.id() as i32;
        let _registered = cancel::ChildGuard::register(pid);

        // Send the job. A worker that dies before reading it is handled below, by its status.
        let mut stdin = child.stdin.take().expect("piped stdin");
        let line = serde_json::to_string(job).expect("a job serializes");
        let _ = writeln!(stdin, "{line}").and_then(|_| stdin.flush());

        let stderr_tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL_LINES)));
        let stderr = child.stderr.take().expect("piped stderr");
        let tail = Arc::clone(&stderr_tail);
        // Seen anywhere in stderr, not only in the tail: a backtrace (RUST_BACKTRACE) follows
        // the allocator's message and pushes it out of the last lines.
        let oom_seen: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let oom_flag = Arc::clone(&oom_seen);
        let stderr_thread = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                tracing::debug!(target: "arena::worker", pid, "{line}");
                if is_oom_text(&line) {
                    oom_flag.lock().unwrap().get_or_insert_with(|| line.clone());
                }
                let mut t = tail.lock().unwrap();
                if t.len() == STDERR_TAIL_LINES {
                    t.pop_front();
                }
                t.push_back(line);
            }
        });

        let (tx, rx) = mpsc::channel::<Result<WorkerEvent, String>>();
        let stdout = child.stdout.take().expect("piped stdout");
        let stdout_thread = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let ev = serde_json::from_str::<WorkerEvent>(&line)
                    .map_err(|e| format!("unreadable worker line ({e}): {}", truncate(&line, 200)));
                if tx.send(ev).is_err() {
                    break;
                }
            }
        });

        let start = Instant::now();
        let deadline = limits.wall.map(|w| start + w);
        let mut outcome: Option<Result<EvalOutput, JobFailure>> = None;
        let mut plugin_time = None;
        let mut stdout = None;
        let mut killed_for: Option<JobFailure> = None;
        let mut cancel_sent_at: Option<Instant> = None;
        let mut stdin = Some(stdin);

        loop {
            let now = Instant::now();
            if let Some(d) = deadline
                && now >= d
                && killed_for.is_none()
            {
                kill_group(pid);
                killed_for = Some(JobFailure::new(
                    FailureKind::Timeout,
                    format!(
                        "no result within the wall-clock limit of {}",
                        fmt_duration(limits.wall.unwrap())
                    ),
                ));
            }
            let cancelled = cancel::requested() || progress.is_cancelled();
            if cancelled && killed_for.is_none() {
                match cancel_sent_at {
                    None => {
                        if let Some(mut s) = stdin.take() {
                            let _ = writeln!(s, "{}", serde_json::json!({"cancel": true}));
                            // dropping `s` closes the pipe: a second signal to stop
                        }
                        cancel_sent_at = Some(now);
                    }
                    Some(t) if now.duration_since(t) >= CANCEL_GRACE => {
                        kill_group(pid);
                        killed_for = Some(JobFailure::new(
                            FailureKind::Cancelled,
                            "cancelled; the worker did not stop in time and was killed",
                        ));
                    }
                    Some(_) => {}
                }
            }
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(Ok(WorkerEvent::Progress { done, total, message })) => {
                    progress.report(done, total, &message)
                }
                Ok(Ok(WorkerEvent::Result { output, plugin_seconds })) => {
                    if outcome.is_none() {
                        plugin_time = plugin_seconds.and_then(|s| Duration::try_from_secs_f64(s).ok());
                    }
                    outcome.get_or_insert(Ok(output));
                }
                Ok(Ok(WorkerEvent::Error { kind, message })) => {
                    outcome.get_or_insert(Err(JobFailure::new(kind, message)));
                }
                Ok(Ok(WorkerEvent::Stdout { bytes, head })) => {
                    tracing::warn!(
                        target: "arena::worker",
                        pid,
                        "the plugin wrote {bytes} bytes to stdout (moved to stderr), beginning {head:?}"
                    );
                    stdout = Some((bytes, head));
                }
                Ok(Err(msg)) => {
                    kill_group(pid);
                    killed_for.get_or_insert(JobFailure::new(FailureKind::Protocol, msg));
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break, // the worker closed stdout
            }
        }

        // stdout is closed; the worker is exiting (or was killed). Reap it, still under the limit.
        let status = wait_with_deadline(
            &mut child,
            pid,
            deadline.map(|d| d.max(Instant::now()) + Duration::from_secs(1)),
        );
        drop(stdin);
        let _ = stdout_thread.join();
        let _ = stderr_thread.join();
        let mut tail: Vec<String> = stderr_tail.lock().unwrap().iter().cloned().collect();
        let oom_line = oom_seen.lock().unwrap().take();
        let oom = oom_line.is_some();
        if let Some(line) = oom_line.filter(|l| !tail.contains(l)) {
            tail.insert(0, line);
        }

        let mut result = match (killed_for, outcome) {
            (Some(f), _) => Err(f),
            (None, Some(Ok(out))) if status.success() => Ok(out),
            (None, Some(Ok(_))) => Err(classify_exit(status, limits, oom)),
            (None, Some(Err(f))) => Err(f),
            (None, None) => Err(classify_exit(status, limits, oom)),
        };
        if let Err(f) = &mut result {
            f.stderr_tail = tail;
        }
        Observed { result, plugin_time, stdout }
    }

    fn spawn(&self, limits: JobLimits) -> std::io::Result<Child> {
        let mut cmd = Command::new(&self.worker_exe);
        cmd.arg("worker").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        let memory = limits.memory_bytes;
        // SAFETY: only async-signal-safe libc calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setpgid(0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
                // The host may already be gone: then nobody reaps us, so stop now.
                if libc::getppid() == 1 {
                    return Err(std::io::Error::other("host exited"));
                }
                let no_core = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                libc::setrlimit(libc::RLIMIT_CORE, &no_core);
                if let Some(m) = memory {
                    let lim = libc::rlimit { rlim_cur: m as libc::rlim_t, rlim_max: m as libc::rlim_t };
                    if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        cmd.spawn()
    }
}

fn kill_group(pgid: i32) {
    // SAFETY: plain syscall; the group is the worker's own (setpgid in pre_exec).
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// Waits for the child; past `deadline`, kills its group and reaps it.
fn wait_with_deadline(child: &mut Child, pid: i32, deadline: Option<Instant>) -> ExitStatus {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                // Reap anything the worker left behind in its group.
                kill_group(pid);
                return status;
            }
            Ok(None) => {}
            Err(_) => {
                kill_group(pid);
                return child.wait().unwrap_or_else(|_| ExitStatus::from_raw(libc::SIGKILL));
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            kill_group(pid);
            return child.wait().unwrap_or_else(|_| ExitStatus::from_raw(libc::SIGKILL));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn is_oom_text(line: &str) -> bool {
    line.contains("memory allocation of") || line.contains("out of memory") || line.contains("bad_alloc")
}

fn classify_exit(status: ExitStatus, limits: JobLimits, oom_text: bool) -> JobFailure {
    let limit = limits.memory_bytes.map(|m| format!(" (limit {})", fmt_bytes(m))).unwrap_or_default();
    if let Some(sig) = status.signal() {
        if oom_text {
            return JobFailure::new(
                FailureKind::OutOfMemory,
                format!("the worker ran out of memory{limit} and was killed by {}", signal_name(sig)),
            );
        }
        if sig == libc::SIGKILL && limits.memory_bytes.is_some() {
            return JobFailure::new(
                FailureKind::Crashed,
                format!("the worker was killed by SIGKILL (possibly the kernel's OOM killer{limit})"),
            );
        }
        return JobFailure::new(
            FailureKind::Crashed,
            format!("the worker was killed by {}", signal_name(sig)),
        );
    }
    let code = status.code().unwrap_or(-1);
    if oom_text {
        return JobFailure::new(
            FailureKind::OutOfMemory,
            format!("the worker ran out of memory{limit} (exit code {code})"),
        );
    }
    JobFailure::new(FailureKind::Exited, format!("the worker exited with code {code} without a result"))
}

pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGSEGV => "SIGSEGV (segmentation fault)",
        libc::SIGABRT => "SIGABRT (abort)",
        libc::SIGBUS => "SIGBUS (bus error)",
        libc::SIGILL => "SIGILL (illegal instruction)",
        libc::SIGFPE => "SIGFPE (arithmetic error)",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        _ => return format!("signal {sig}"),
    };
    format!("signal {sig}, {name}")
}

fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

pub fn fmt_duration(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

pub fn fmt_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{b} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

// ---------------------------------------------------------------------------------------------
// The worker side (`arena worker`).

/// Entry point of `arena worker`: reads one job from stdin, runs it, reports on stdout.
/// Returns the process exit code.
pub fn worker_main() -> i32 {
    // Keep the real stdout for the protocol; point fd 1 at a pipe whose bytes are counted and
    // copied to stderr. The protocol descriptor is close-on-exec, so processes the plugin starts
    // (a sandboxed benchmark, say) cannot inherit it and forge a result.
    let mut pipe = [0 as libc::c_int; 2];
    // SAFETY: plain fd syscalls on this process's own descriptors, before any other thread.
    let proto_fd = unsafe {
        let fd = libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3);
        if fd < 0
            || libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) != 0
            || libc::dup2(pipe[1], 1) < 0
            || libc::close(pipe[1]) != 0
        {
            eprintln!("arena worker: cannot set up the protocol channel");
            return 70;
        }
        fd
    };
    // SAFETY: the pipe's read end is a fresh descriptor owned by nothing else.
    let stdout_seen = StdoutCopier::start(unsafe { std::os::fd::FromRawFd::from_raw_fd(pipe[0]) });
    // SAFETY: `proto_fd` is a fresh descriptor owned by nothing else.
    let proto = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(proto_fd) };
    let out = Mutex::new(std::io::LineWriter::new(proto));
    let send = |ev: &WorkerEvent| {
        let mut w = out.lock().unwrap();
        let _ = writeln!(w, "{}", serde_json::to_string(ev).expect("events serialize"));
        let _ = w.flush();
    };

    let mut lines = std::io::stdin().lock().lines();
    let job: Job = match lines.next() {
        Some(Ok(l)) => match serde_json::from_str(&l) {
            Ok(j) => j,
            Err(e) => {
                send(&WorkerEvent::Error {
                    kind: FailureKind::Protocol,
                    message: format!("unreadable job: {e}"),
                });
                return 2;
            }
        },
        _ => {
            send(&WorkerEvent::Error { kind: FailureKind::Protocol, message: "no job on stdin".into() });
            return 2;
        }
    };
    drop(lines);

    // Cancellation: a `{"cancel":true}` line, or stdin closing (the host went away).
    let cancelled = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&cancelled);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(l) => {
                    if serde_json::from_str::<HostCommand>(&l).map(|c| c.cancel).unwrap_or(false) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        flag.store(true, Ordering::SeqCst);
    });

    struct WorkerProgress<'a, F: Fn(&WorkerEvent)> {
        send: &'a F,
        cancelled: &'a AtomicBool,
    }
    impl<F: Fn(&WorkerEvent)> Progress for WorkerProgress<'_, F> {
        fn report(&self, done: u64, total: u64, message: &str) {
            (self.send)(&WorkerEvent::Progress { done, total, message: message.to_string() });
        }
        fn is_cancelled(&self) -> bool {
            self.cancelled.load(Ordering::SeqCst)
        }
    }

    report_exhausted_address_space();
    let progress = WorkerProgress { send: &send, cancelled: &cancelled };
    let (outcome, took) = crate::job::run_timed(&job, &progress);
    if let Some((bytes, head)) = stdout_seen.finish() {
        send(&WorkerEvent::Stdout { bytes, head });
    }
    match outcome {
        Ok(output) => {
            send(&WorkerEvent::Result { output, plugin_seconds: took.map(|d| d.as_secs_f64()) });
            0
        }
        Err(f) => {
            send(&WorkerEvent::Error { kind: f.kind, message: f.message });
            0
        }
    }
}

/// How many bytes of a plugin's stdout the worker reports as their beginning.
const STDOUT_HEAD_BYTES: usize = 120;

/// Copies what the plugin writes to its stdout (the read end of the pipe on fd 1) to stderr,
/// counting the bytes and keeping how they began.
struct StdoutCopier {
    seen: Arc<Mutex<(u64, Vec<u8>)>>,
    done: mpsc::Receiver<()>,
}

impl StdoutCopier {
    fn start(mut from: std::fs::File) -> Self {
        let seen = Arc::new(Mutex::new((0u64, Vec::new())));
        let (tx, done) = mpsc::channel();
        let counted = Arc::clone(&seen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match std::io::Read::read(&mut from, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let _ = std::io::stderr().write_all(&buf[..n]);
                        let mut s = counted.lock().unwrap();
                        s.0 += n as u64;
                        let room = STDOUT_HEAD_BYTES.saturating_sub(s.1.len());
                        s.1.extend_from_slice(&buf[..n.min(room)]);
                    }
                }
            }
            let _ = tx.send(());
        });
        StdoutCopier { seen, done }
    }

    /// Closes this process's write end of the pipe (fd 1 points at stderr again) and waits a
    /// little for the copier to drain it (a process the plugin started may still hold it open).
    /// The bytes written, and how they began; none if nothing was.
    fn finish(self) -> Option<(u64, String)> {
        let _ = std::io::stdout().flush();
        // SAFETY: plain fd syscall; fd 2 stays open.
        unsafe { libc::dup2(2, 1) };
        let _ = self.done.recv_timeout(Duration::from_secs(1));
        let s = self.seen.lock().unwrap();
        (s.0 > 0).then(|| (s.0, String::from_utf8_lossy(&s.1).into_owned()))
    }
}

/// The action SIGSEGV and SIGBUS had before [`report_exhausted_address_space`] (Rust's stack
/// overflow handler), restored by the handler before the fault repeats.
static mut PREVIOUS_SEGV: Option<libc::sigaction> = None;
static mut PREVIOUS_BUS: Option<libc::sigaction> = None;
/// The worker's address-space limit, in bytes (`RLIMIT_AS`).
static AS_LIMIT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

const EXHAUSTED: &[u8] =
    b"arena worker: out of memory: the address space limit is reached (a fault after an allocation failed)\n";

/// Under an address-space limit, code that does not check its allocations (C libraries, GPU
/// drivers) dereferences the null pointer a failed `malloc` gave, and the worker dies of a
/// segfault. The handler installed here tells that death from a plain crash: on SIGSEGV or
/// SIGBUS, if a modest mapping can no longer be made, it writes an out-of-memory line to stderr
/// (which the host classifies as `out_of_memory`); then it puts back the previous handler and
/// returns, so the fault repeats and ends the worker as before.
fn report_exhausted_address_space() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct given.
    if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut lim) } != 0 || lim.rlim_cur == libc::RLIM_INFINITY {
        return;
    }
    AS_LIMIT.store(lim.rlim_cur, Ordering::SeqCst);
    extern "C" fn on_fault(sig: libc::c_int, _info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
        // A 1/32 of the limit, between 16 and 256 MiB: what a process with room left can map.
        let probe = (AS_LIMIT.load(Ordering::SeqCst) / 32).clamp(16 << 20, 256 << 20) as usize;
        // SAFETY: mmap, munmap, write and sigaction are plain system calls; the statics were
        // written once, before any fault could run this handler.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                probe,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            );
            if p == libc::MAP_FAILED {
                libc::write(2, EXHAUSTED.as_ptr().cast(), EXHAUSTED.len());
            } else {
                libc::munmap(p, probe);
            }
            let previous = if sig == libc::SIGBUS {
                (*std::ptr::addr_of!(PREVIOUS_BUS)).as_ref()
            } else {
                (*std::ptr::addr_of!(PREVIOUS_SEGV)).as_ref()
            };
            match previous {
                Some(old) => libc::sigaction(sig, old, std::ptr::null_mut()),
                None => libc::signal(sig, libc::SIG_DFL) as libc::c_int,
            };
        }
    }
    // SAFETY: the handler only makes system calls; the statics are written here, on the main
    // thread, before the job (and any other thread that could fault) starts.
    unsafe {
        for (sig, slot) in [
            (libc::SIGSEGV, &mut *std::ptr::addr_of_mut!(PREVIOUS_SEGV)),
            (libc::SIGBUS, &mut *std::ptr::addr_of_mut!(PREVIOUS_BUS)),
        ] {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_fault as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, &action, &mut old) == 0 {
                *slot = Some(old);
            }
        }
    }
}

/// A [`Progress`] built from a closure, for callers that only want reports.
pub struct FnProgress<F: Fn(u64, u64, &str)>(pub F);

impl<F: Fn(u64, u64, &str)> Progress for FnProgress<F> {
    fn report(&self, done: u64, total: u64, message: &str) {
        (self.0)(done, total, message)
    }
    fn is_cancelled(&self) -> bool {
        cancel::requested()
    }
}
