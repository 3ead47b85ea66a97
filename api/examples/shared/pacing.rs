//! Open-loop pacing shared by the benchmarks: work item `i` is due at `start + i / rate` and is
//! started then whatever the earlier ones are doing, so latency measured from `due` includes any
//! falling behind (no coordinated omission).

use std::time::{Duration, Instant};

/// Runs `start(i, due)` for `total` items at `rate` a second from a thread of its own, sleeping
/// with the OS's sleep (tokio's timer rounds up to the next millisecond, which would add up to a
/// millisecond to every latency measured from `due`). Returns what each call returned, in order.
pub async fn paced<T: Send + 'static>(
    rate: f64,
    total: u64,
    mut start: impl FnMut(u64, Instant) -> T + Send + 'static,
) -> Vec<T> {
    let interval = Duration::from_secs_f64(1.0 / rate);
    tokio::task::spawn_blocking(move || {
        let first = Instant::now() + Duration::from_millis(10);
        (0..total)
            .map(|i| {
                let due = first + interval.mul_f64(i as f64);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                start(i, due)
            })
            .collect()
    })
    .await
    .expect("the pacing thread")
}
