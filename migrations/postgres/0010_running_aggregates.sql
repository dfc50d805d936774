-- Running aggregates: the per-version figures and the A/B results are kept as counters that
-- every writer of runs, outcomes, annotations, verdicts and exposures adjusts in its own
-- transaction (host/src/store/sql/figures.rs, host/src/store/sql/ab_totals.rs), instead of
-- being recomputed from every run on each write (figures) or each read (A/B results). The
-- statements at the end backfill them from the rows already stored, with the same definitions
-- the repair (`Store::recompute_aggregates`) uses. Evaluation runs never count.
-- Kept in step with migrations/sqlite/0010.

-- Per version, over its production runs: runs whose success is known, of them those that
-- succeeded, runs that report tokens and their sum. success_rate and avg_tokens derive from them.
ALTER TABLE prompt_versions ADD COLUMN known_runs BIGINT NOT NULL DEFAULT 0;
ALTER TABLE prompt_versions ADD COLUMN succeeded_runs BIGINT NOT NULL DEFAULT 0;
ALTER TABLE prompt_versions ADD COLUMN token_runs BIGINT NOT NULL DEFAULT 0;
ALTER TABLE prompt_versions ADD COLUMN token_sum BIGINT NOT NULL DEFAULT 0;

-- Per exposure, what its unit (the exposure's task id = the runs' root task id, else task id)
-- contributes to its arm: success (outcome's tests_passed when known, else any run succeeded),
-- tokens and latency summed over its production runs (NULL without any). A write that changes a
-- unit recomputes these from the unit's few rows and applies the difference to the arm.
ALTER TABLE ab_exposures ADD COLUMN unit_succeeded BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ab_exposures ADD COLUMN unit_tokens BIGINT;
ALTER TABLE ab_exposures ADD COLUMN unit_latency BIGINT;
-- A unit's runs.
CREATE INDEX prompt_optimization_data_unit
    ON prompt_optimization_data (prompt_id, (COALESCE(root_task_id, task_id)));

-- Per test and arm: the sums of its exposures' contributions (ArmTotals).
CREATE TABLE ab_arm_totals (
    ab_test_id  UUID NOT NULL,
    arm         TEXT NOT NULL,
    exposures   BIGINT NOT NULL DEFAULT 0,
    successes   BIGINT NOT NULL DEFAULT 0,
    tokens_n    BIGINT NOT NULL DEFAULT 0,
    tokens_sum  DOUBLE PRECISION NOT NULL DEFAULT 0,
    tokens_sq   DOUBLE PRECISION NOT NULL DEFAULT 0,
    latency_n   BIGINT NOT NULL DEFAULT 0,
    latency_sum DOUBLE PRECISION NOT NULL DEFAULT 0,
    latency_sq  DOUBLE PRECISION NOT NULL DEFAULT 0,
    CONSTRAINT ab_arm_totals_pkey PRIMARY KEY (ab_test_id, arm),
    CONSTRAINT ab_arm_totals_ab_test_id_fkey FOREIGN KEY (ab_test_id) REFERENCES ab_tests (id),
    CONSTRAINT ab_arm_totals_arm_known CHECK (arm IN ('a', 'b'))
);

-- Backfill (the same statements as figures::RECOMPUTE_SQL and ab_totals::RECOMPUTE_SQL).
UPDATE prompt_versions SET (tasks_executed, known_runs, succeeded_runs, token_runs, token_sum) = (
    SELECT COUNT(DISTINCT d.task_id),
           COALESCE(SUM(CASE WHEN (d.tests_passed IS NOT NULL OR d.rating IS NOT NULL
                                   OR d.graders_passed IS NOT NULL) THEN 1 ELSE 0 END), 0),
           COALESCE(SUM(CASE WHEN (d.tests_passed = TRUE
                                   OR (d.tests_passed IS NULL AND d.rating = 'good')
                                   OR (d.tests_passed IS NULL AND d.rating IS NULL
                                       AND d.graders_passed = TRUE)) THEN 1 ELSE 0 END), 0),
           COUNT(d.total_tokens),
           COALESCE(SUM(d.total_tokens), 0)
    FROM prompt_optimization_data d
    WHERE d.prompt_id = prompt_versions.prompt_id AND d.version = prompt_versions.version
      AND d.origin = 'production'
);
UPDATE prompt_versions SET
    success_rate = CASE WHEN known_runs > 0
                        THEN 100.0 * (CAST(succeeded_runs AS DOUBLE PRECISION) / known_runs) END,
    avg_tokens = CASE WHEN token_runs > 0
                      THEN CAST(ROUND(1.0 * token_sum / token_runs) AS BIGINT) END;

UPDATE ab_exposures SET
    unit_succeeded = COALESCE(
        (SELECT CASE WHEN o.tests_passed = TRUE THEN 1 ELSE 0 END FROM task_outcomes o
         WHERE o.task_id = ab_exposures.task_id AND o.tests_passed IS NOT NULL),
        (SELECT MAX(CASE WHEN (d.tests_passed = TRUE
                               OR (d.tests_passed IS NULL AND d.rating = 'good')
                               OR (d.tests_passed IS NULL AND d.rating IS NULL
                                   AND d.graders_passed = TRUE)) THEN 1 ELSE 0 END)
         FROM ab_tests t JOIN prompt_optimization_data d ON d.prompt_id = t.prompt_id
         WHERE t.id = ab_exposures.ab_test_id AND d.origin = 'production'
           AND COALESCE(d.root_task_id, d.task_id) = ab_exposures.task_id),
        0),
    unit_tokens = (SELECT SUM(d.total_tokens)
         FROM ab_tests t JOIN prompt_optimization_data d ON d.prompt_id = t.prompt_id
         WHERE t.id = ab_exposures.ab_test_id AND d.origin = 'production'
           AND COALESCE(d.root_task_id, d.task_id) = ab_exposures.task_id),
    unit_latency = (SELECT SUM(d.latency_ms)
         FROM ab_tests t JOIN prompt_optimization_data d ON d.prompt_id = t.prompt_id
         WHERE t.id = ab_exposures.ab_test_id AND d.origin = 'production'
           AND COALESCE(d.root_task_id, d.task_id) = ab_exposures.task_id);

INSERT INTO ab_arm_totals (ab_test_id, arm, exposures, successes, tokens_n, tokens_sum,
                           tokens_sq, latency_n, latency_sum, latency_sq)
SELECT t.id, arms.arm, COUNT(e.id), COALESCE(SUM(e.unit_succeeded), 0),
       COUNT(e.unit_tokens),
       CAST(COALESCE(SUM(e.unit_tokens), 0) AS DOUBLE PRECISION),
       COALESCE(SUM(CAST(e.unit_tokens AS DOUBLE PRECISION) * e.unit_tokens), 0),
       COUNT(e.unit_latency),
       CAST(COALESCE(SUM(e.unit_latency), 0) AS DOUBLE PRECISION),
       COALESCE(SUM(CAST(e.unit_latency AS DOUBLE PRECISION) * e.unit_latency), 0)
FROM ab_tests t
CROSS JOIN (SELECT 'a' AS arm UNION ALL SELECT 'b' AS arm) arms
LEFT JOIN ab_exposures e ON e.ab_test_id = t.id AND e.arm = arms.arm
GROUP BY t.id, arms.arm;
