//! The optimizer's three tasks of issue 17, measured for comparison with GEPA (PyPI `gepa`
//! 0.1.4): a planted flaw, a flat task and a coin flip (the fakes of
//! `flywheel_e2e::optimizer`), each with 40 train and 40 validation rows and a budget of 400
//! task-model calls, run by the real app on a SQLite file against the fake model server. For
//! each it prints the task-model calls, the reflection calls, the validation score before and
//! after (when a candidate was validated), the candidates, the stop reason and whether a
//! version was created. Run:
//!
//! ```sh
//! cargo bench -p flywheel-e2e --bench optimizer
//! ```
//!
//! `FLYWHEEL_BENCH_COIN_SEEDS=N` (default 1) runs the coin flip with seeds 7..7+N (7 is the
//! e2e test's) and prints how
//! many of them reported a gain (a false positive at 95% confidence is expected about once in
//! 20 seeds at most). All traffic is to 127.0.0.1. Figures: BENCHMARKS.md, "Optimizer".

use std::time::Duration;

use fake_model::FakeModel;
use flywheel_e2e::optimizer::{
    app_with_model, body, coin_flip, flat, is_final, planted, rows, setup, start, when,
};
use flywheel_e2e::{Backend, TestDb};
use serde_json::Value;

/// One task's figures.
async fn measure(name: &str, fake_setup: impl Fn(&FakeModel)) -> Value {
    let db = TestDb::new(Backend::Sqlite).await;
    let fake = FakeModel::start().expect("fake server");
    fake_setup(&fake);
    let app = app_with_model(&db, &fake, 4, Duration::from_secs(30)).await;
    setup(&app, &rows(40, 40)).await;
    let id = start(&app, body()).await;
    let done = when(&app, &id, is_final).await;
    let report = &done["report"];
    let spent = &report["spent"];
    let validation = &report["validation"];
    let score = |key: &str| {
        validation[key]
            .as_f64()
            .map_or_else(|| "—".to_owned(), |v| format!("{v:.3}"))
    };
    println!(
        "{name:<14} task calls {:>3} (validation {:>2}) · reflection calls {:>2} · validation \
         score {} → {} · gain interval {} · candidates {} tried, {} accepted, {} discarded · \
         stop {} · version {}",
        spent["taskCalls"],
        spent["validationCalls"],
        spent["reflectionCalls"],
        score("scoreBefore"),
        score("scoreAfter"),
        validation["gainInterval"],
        report["candidates"]["tried"],
        report["candidates"]["accepted"],
        report["candidates"]["discarded"],
        report["stopReason"],
        done["createdVersion"],
    );
    done
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        println!("optimizer, 40 train + 40 validation rows, budget 400 task-model calls");
        measure("planted flaw", planted).await;
        measure("flat", flat).await;
        let seeds: u64 = std::env::var("FLYWHEEL_BENCH_COIN_SEEDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1);
        let mut gains = 0;
        for seed in 7..7 + seeds {
            let done = measure(&format!("coin flip s{seed}"), |fake| coin_flip(fake, seed)).await;
            if done["report"]["outcome"]["improved"] == true {
                gains += 1;
            }
        }
        println!("coin flip: {gains} of {seeds} seeds reported a gain");
    });
}
