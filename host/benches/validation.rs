//! Before/after of issue 9 item 5: a `multi` of ten sub-graders whose `validate-config` each
//! takes 190 ms (the 1.9 s scaled by 1/10, grader timeout 200 ms, so the definition's
//! limit is 600 ms). "before" checks them one after another as the old loop did; "after" is
//! [`validate_within`]. Two kinds of slow check: one that waits (e.g. on I/O) and one that
//! spins on the CPU yielding every 10 ms, as a component under wasmtime's epoch interruption
//! does; checks of one definition share one task, so spinning ones do not run in parallel and
//! it is the deadline that bounds them.
//!
//! Run: `cargo bench -p flywheel --bench validation`.

use std::time::{Duration, Instant};

use flywheel::graders::definition::DefinitionError;
use flywheel::graders::definition::resolved::validate_within;

const PARTS: usize = 10;
const EACH: Duration = Duration::from_millis(190);
const DEADLINE: Duration = Duration::from_millis(600);

async fn wait() -> Result<(), DefinitionError> {
    tokio::time::sleep(EACH).await;
    Ok(())
}

async fn spin() -> Result<(), DefinitionError> {
    // A fixed amount of CPU work (19 slices of 10 ms), not a wall-clock wait.
    for _ in 0..EACH.as_millis() / 10 {
        let slice = Instant::now();
        while slice.elapsed() < Duration::from_millis(10) {
            std::hint::spin_loop();
        }
        tokio::task::yield_now().await;
    }
    Ok(())
}

async fn before<F: std::future::Future<Output = Result<(), DefinitionError>>>(
    check: fn() -> F,
) -> (Duration, bool) {
    let start = Instant::now();
    let mut ok = true;
    for _ in 0..PARTS {
        ok &= check().await.is_ok();
    }
    (start.elapsed(), ok)
}

async fn after<F: std::future::Future<Output = Result<(), DefinitionError>>>(
    check: fn() -> F,
) -> (Duration, bool) {
    let start = Instant::now();
    let ok = validate_within(DEADLINE, (0..PARTS).map(|_| check()))
        .await
        .is_ok();
    (start.elapsed(), ok)
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    rt.block_on(async {
        for (kind, b, a) in [
            ("waiting", before(wait).await, after(wait).await),
            ("spinning", before(spin).await, after(spin).await),
        ] {
            let verdict = |ok: bool| if ok { "valid" } else { "refused" };
            println!(
                "{kind:8} before {:>5} ms ({})  after {:>5} ms ({})  ratio {:.2}",
                b.0.as_millis(),
                verdict(b.1),
                a.0.as_millis(),
                verdict(a.1),
                a.0.as_secs_f64() / b.0.as_secs_f64()
            );
        }
    });
}
