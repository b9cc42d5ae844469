//! The worker protocol's lines, both ways: a worker's events as the host reads them, and a job
//! and a command as the worker reads them. What parses serializes and parses back the same.
#![no_main]
use arena_runtime::isolate::{HostCommand, WorkerEvent};
use arena_runtime::job::Job;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else { return };
    if let Ok(ev) = serde_json::from_str::<WorkerEvent>(line) {
        let again = serde_json::to_string(&ev).expect("an event serializes");
        let back: WorkerEvent = serde_json::from_str(&again).expect("a serialized event parses");
        assert_eq!(serde_json::to_string(&back).unwrap(), again);
    }
    if let Ok(job) = serde_json::from_str::<Job>(line) {
        let again = serde_json::to_string(&job).expect("a job serializes");
        let _: Job = serde_json::from_str(&again).expect("a serialized job parses");
    }
    let _ = serde_json::from_str::<HostCommand>(line);
});
