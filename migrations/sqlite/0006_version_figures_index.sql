-- The per-version figures (tasks_executed, success_rate, avg_tokens) are recomputed from the
-- version's production runs in every write that changes them (host/src/store/sql/figures.rs).
-- This index holds every column that aggregate reads, so it is one scan of the version's index
-- entries, never a visit of the runs' rows (~1.5 KB each): with 100,000 runs in a version, the
-- aggregate otherwise cost more than inserting a batch of 1000 runs (BENCHMARKS.md, "Runs").
-- Kept in step with migrations/postgres/0006.
CREATE INDEX prompt_optimization_data_figures ON prompt_optimization_data (
    prompt_id, version, origin, task_id, total_tokens, tests_passed, rating, graders_passed
);
