-- Flywheel schema, PostgreSQL flavour. Every table of DESIGN.md exists from the start so later
-- work extends columns rather than reshaping tables. Kept in step with migrations/sqlite: same
-- tables, columns and constraint names, so both backends map violations by the same names
-- (on PostgreSQL sqlx reports the violated constraint's name).

CREATE TABLE prompts (
    id          TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    -- JSON array of the template variables the prompt declares.
    variables   JSONB NOT NULL DEFAULT '[]'::jsonb,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT prompts_pkey PRIMARY KEY (id),
    -- Ids appear in URLs and file names: lower-case identifiers only.
    CONSTRAINT prompts_id_format CHECK (id ~ '^[a-z][a-z0-9_-]{0,49}$'),
    CONSTRAINT prompts_variables_json CHECK (jsonb_typeof(variables) = 'array')
);

CREATE TABLE prompt_versions (
    id             UUID NOT NULL,
    prompt_id      TEXT NOT NULL,
    version        BIGINT NOT NULL,
    content        TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    is_active      BOOLEAN NOT NULL DEFAULT false,
    source         TEXT NOT NULL DEFAULT 'manual',
    parent_version BIGINT,
    notes          TEXT,
    created_by     TEXT,
    -- Performance figures, maintained as runs are recorded.
    tasks_executed BIGINT NOT NULL DEFAULT 0,
    success_rate   DOUBLE PRECISION,
    avg_tokens     BIGINT,
    CONSTRAINT prompt_versions_pkey PRIMARY KEY (id),
    CONSTRAINT prompt_versions_prompt_id_fkey FOREIGN KEY (prompt_id) REFERENCES prompts (id),
    CONSTRAINT prompt_versions_prompt_id_version_key UNIQUE (prompt_id, version),
    CONSTRAINT prompt_versions_parent_fkey FOREIGN KEY (prompt_id, parent_version)
        REFERENCES prompt_versions (prompt_id, version),
    CONSTRAINT prompt_versions_version_positive CHECK (version >= 1),
    CONSTRAINT prompt_versions_source_known CHECK (source IN ('manual', 'import', 'optimizer', 'seed')),
    CONSTRAINT prompt_versions_parent_older CHECK (parent_version IS NULL OR parent_version < version),
    CONSTRAINT prompt_versions_tasks_executed_nonnegative CHECK (tasks_executed >= 0),
    CONSTRAINT prompt_versions_success_rate_range CHECK (success_rate IS NULL OR (success_rate >= 0 AND success_rate <= 100))
);

-- The invariant the whole registry rests on: at most one active version per prompt, enforced by
-- the schema so no code path (or a second instance) can break it.
CREATE UNIQUE INDEX one_active_version_per_prompt ON prompt_versions (prompt_id) WHERE is_active;

-- Versions are immutable: what was served under a number must stay what that number means.
-- Only the activation flag and the performance figures may change.
CREATE FUNCTION prompt_versions_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'prompt versions cannot be changed'
        USING ERRCODE = 'integrity_constraint_violation', CONSTRAINT = 'prompt_versions_immutable';
END;
$$;

CREATE TRIGGER prompt_versions_immutable
BEFORE UPDATE ON prompt_versions
FOR EACH ROW
WHEN (OLD.id IS DISTINCT FROM NEW.id
   OR OLD.prompt_id IS DISTINCT FROM NEW.prompt_id
   OR OLD.version IS DISTINCT FROM NEW.version
   OR OLD.content IS DISTINCT FROM NEW.content
   OR OLD.created_at IS DISTINCT FROM NEW.created_at
   OR OLD.source IS DISTINCT FROM NEW.source
   OR OLD.parent_version IS DISTINCT FROM NEW.parent_version
   OR OLD.notes IS DISTINCT FROM NEW.notes
   OR OLD.created_by IS DISTINCT FROM NEW.created_by)
EXECUTE FUNCTION prompt_versions_refuse_change();

-- Every change of the active version, for audit and for rollback.
CREATE TABLE deploy_history (
    -- Commit order per prompt (writes to one prompt are serialised by a row lock), used by
    -- rollback.
    seq          BIGINT GENERATED ALWAYS AS IDENTITY,
    id           UUID NOT NULL,
    prompt_id    TEXT NOT NULL,
    from_version BIGINT,
    to_version   BIGINT NOT NULL,
    action       TEXT NOT NULL,
    actor        TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT deploy_history_pkey PRIMARY KEY (seq),
    CONSTRAINT deploy_history_id_key UNIQUE (id),
    CONSTRAINT deploy_history_prompt_id_fkey FOREIGN KEY (prompt_id) REFERENCES prompts (id),
    CONSTRAINT deploy_history_from_fkey FOREIGN KEY (prompt_id, from_version)
        REFERENCES prompt_versions (prompt_id, version),
    CONSTRAINT deploy_history_to_fkey FOREIGN KEY (prompt_id, to_version)
        REFERENCES prompt_versions (prompt_id, version),
    CONSTRAINT deploy_history_action_known CHECK (action IN ('deploy', 'rollback')),
    CONSTRAINT deploy_history_changes_version CHECK (from_version IS NULL OR from_version <> to_version)
);
CREATE INDEX deploy_history_prompt_seq ON deploy_history (prompt_id, seq);

-- The failure-mode taxonomy (axial codes) per prompt.
CREATE TABLE failure_modes (
    prompt_id   TEXT NOT NULL,
    code        TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT failure_modes_pkey PRIMARY KEY (prompt_id, code),
    CONSTRAINT failure_modes_prompt_id_fkey FOREIGN KEY (prompt_id) REFERENCES prompts (id),
    CONSTRAINT failure_modes_code_format CHECK (code ~ '^[a-z][a-z0-9_]{0,49}$')
);

-- A/B tests between two versions of one prompt.
CREATE TABLE ab_tests (
    id            UUID NOT NULL,
    prompt_id     TEXT NOT NULL,
    version_a     BIGINT NOT NULL,
    version_b     BIGINT NOT NULL,
    -- Share of traffic sent to version B.
    traffic_split DOUBLE PRECISION NOT NULL,
    -- Hash seed of the sticky assignment.
    seed          TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'running',
    decision      TEXT,
    min_samples   BIGINT NOT NULL DEFAULT 0,
    -- Guardrails and analysis settings.
    config        JSONB NOT NULL DEFAULT '{}'::jsonb,
    -- The last analysis.
    result        JSONB,
    created_by    TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    ended_at      TIMESTAMPTZ,
    decided_at    TIMESTAMPTZ,
    CONSTRAINT ab_tests_pkey PRIMARY KEY (id),
    CONSTRAINT ab_tests_prompt_id_fkey FOREIGN KEY (prompt_id) REFERENCES prompts (id),
    CONSTRAINT ab_tests_version_a_fkey FOREIGN KEY (prompt_id, version_a)
        REFERENCES prompt_versions (prompt_id, version),
    CONSTRAINT ab_tests_version_b_fkey FOREIGN KEY (prompt_id, version_b)
        REFERENCES prompt_versions (prompt_id, version),
    CONSTRAINT ab_tests_distinct_versions CHECK (version_a <> version_b),
    CONSTRAINT ab_tests_traffic_split_range CHECK (traffic_split >= 0 AND traffic_split <= 1),
    CONSTRAINT ab_tests_status_known CHECK (status IN ('running', 'stopped', 'completed')),
    CONSTRAINT ab_tests_decision_known CHECK (
        decision IS NULL OR decision IN ('ship_b', 'rollback', 'keep_running', 'inconclusive_keep_a')
    ),
    CONSTRAINT ab_tests_min_samples_nonnegative CHECK (min_samples >= 0),
    CONSTRAINT ab_tests_config_json CHECK (jsonb_typeof(config) = 'object'),
    CONSTRAINT ab_tests_result_json CHECK (result IS NULL OR jsonb_typeof(result) = 'object')
);
-- A task must get one answer to "which version": only one running test per prompt.
CREATE UNIQUE INDEX one_running_ab_test_per_prompt ON ab_tests (prompt_id) WHERE status = 'running';

-- Which arm each task was assigned to, recorded at assignment (intent to treat).
CREATE TABLE ab_exposures (
    id         UUID NOT NULL,
    ab_test_id UUID NOT NULL,
    task_id    TEXT NOT NULL,
    arm        TEXT NOT NULL,
    version    BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT ab_exposures_pkey PRIMARY KEY (id),
    CONSTRAINT ab_exposures_ab_test_id_fkey FOREIGN KEY (ab_test_id) REFERENCES ab_tests (id),
    CONSTRAINT ab_exposures_ab_test_id_task_id_key UNIQUE (ab_test_id, task_id),
    CONSTRAINT ab_exposures_arm_known CHECK (arm IN ('a', 'b'))
);

-- One row per agent run. Outcomes (tests_passed, pr_merged) and annotations arrive later and
-- update the row found by (prompt_id, task_id, run_key).
CREATE TABLE prompt_optimization_data (
    id                UUID NOT NULL,
    prompt_id         TEXT NOT NULL,
    version           BIGINT NOT NULL,
    task_id           TEXT NOT NULL,
    -- Distinguishes several runs of one prompt within a task (attempt number, step id); the
    -- idempotency key of run ingestion together with prompt_id and task_id.
    run_key           TEXT NOT NULL DEFAULT '',
    -- The root task, which A/B assignment hashes, when it differs from task_id.
    root_task_id      TEXT,
    ab_test_id        UUID,
    arm               TEXT,
    input_variables   JSONB NOT NULL DEFAULT '{}'::jsonb,
    output            TEXT,
    model             TEXT,
    prompt_tokens     BIGINT,
    completion_tokens BIGINT,
    total_tokens      BIGINT,
    latency_ms        BIGINT,
    expected_files    JSONB,
    tests_passed      BOOLEAN,
    pr_merged         BOOLEAN,
    rating            TEXT,
    output_feedback   TEXT,
    failure_mode      TEXT,
    annotated_by      TEXT,
    annotated_at      TIMESTAMPTZ,
    grader_results    JSONB,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT prompt_optimization_data_pkey PRIMARY KEY (id),
    CONSTRAINT prompt_optimization_data_prompt_id_fkey FOREIGN KEY (prompt_id) REFERENCES prompts (id),
    CONSTRAINT prompt_optimization_data_version_fkey FOREIGN KEY (prompt_id, version)
        REFERENCES prompt_versions (prompt_id, version),
    CONSTRAINT prompt_optimization_data_ab_test_id_fkey FOREIGN KEY (ab_test_id) REFERENCES ab_tests (id),
    CONSTRAINT prompt_optimization_data_failure_mode_fkey FOREIGN KEY (prompt_id, failure_mode)
        REFERENCES failure_modes (prompt_id, code),
    CONSTRAINT prompt_optimization_data_run_key UNIQUE (prompt_id, task_id, run_key),
    CONSTRAINT prompt_optimization_data_task_id_nonempty CHECK (length(task_id) >= 1),
    CONSTRAINT prompt_optimization_data_arm_known CHECK (arm IS NULL OR arm IN ('a', 'b')),
    CONSTRAINT prompt_optimization_data_arm_with_test CHECK ((arm IS NULL) = (ab_test_id IS NULL)),
    CONSTRAINT prompt_optimization_data_rating_known CHECK (rating IS NULL OR rating IN ('good', 'bad')),
    CONSTRAINT prompt_optimization_data_tokens_nonnegative CHECK (
        (prompt_tokens IS NULL OR prompt_tokens >= 0)
        AND (completion_tokens IS NULL OR completion_tokens >= 0)
        AND (total_tokens IS NULL OR total_tokens >= 0)
    ),
    CONSTRAINT prompt_optimization_data_latency_nonnegative CHECK (latency_ms IS NULL OR latency_ms >= 0),
    CONSTRAINT prompt_optimization_data_input_variables_json CHECK (jsonb_typeof(input_variables) = 'object'),
    CONSTRAINT prompt_optimization_data_expected_files_json CHECK (
        expected_files IS NULL OR jsonb_typeof(expected_files) = 'array'
    ),
    CONSTRAINT prompt_optimization_data_grader_results_json CHECK (
        grader_results IS NULL OR jsonb_typeof(grader_results) = 'object'
    )
);
CREATE INDEX prompt_optimization_data_prompt_version ON prompt_optimization_data (prompt_id, version, created_at);
CREATE INDEX prompt_optimization_data_task ON prompt_optimization_data (task_id);
CREATE INDEX prompt_optimization_data_ab_test ON prompt_optimization_data (ab_test_id, arm);

-- Grader definitions attached to a prompt (OpenAI grader JSON or a wasm component + config).
CREATE TABLE graders (
    id         UUID NOT NULL,
    prompt_id  TEXT NOT NULL,
    name       TEXT NOT NULL,
    definition JSONB NOT NULL,
    enabled    BOOLEAN NOT NULL DEFAULT true,
    created_by TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT graders_pkey PRIMARY KEY (id),
    CONSTRAINT graders_prompt_id_fkey FOREIGN KEY (prompt_id) REFERENCES prompts (id),
    CONSTRAINT graders_prompt_id_name_key UNIQUE (prompt_id, name),
    CONSTRAINT graders_name_nonempty CHECK (length(name) BETWEEN 1 AND 100),
    CONSTRAINT graders_definition_json CHECK (jsonb_typeof(definition) = 'object')
);

-- One grading run: a set of graders over a set of rows, with progress and counts.
CREATE TABLE grading_runs (
    id             UUID NOT NULL,
    prompt_id      TEXT,
    version        BIGINT,
    -- JSON array of the grader names (or inline definitions) the run applies.
    graders        JSONB NOT NULL DEFAULT '[]'::jsonb,
    status         TEXT NOT NULL DEFAULT 'queued',
    total_rows     BIGINT NOT NULL DEFAULT 0,
    processed_rows BIGINT NOT NULL DEFAULT 0,
    passed_rows    BIGINT NOT NULL DEFAULT 0,
    failed_rows    BIGINT NOT NULL DEFAULT 0,
    error_rows     BIGINT NOT NULL DEFAULT 0,
    token_budget   BIGINT,
    tokens_used    BIGINT NOT NULL DEFAULT 0,
    error          TEXT,
    created_by     TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at     TIMESTAMPTZ,
    finished_at    TIMESTAMPTZ,
    CONSTRAINT grading_runs_pkey PRIMARY KEY (id),
    CONSTRAINT grading_runs_prompt_id_fkey FOREIGN KEY (prompt_id) REFERENCES prompts (id),
    CONSTRAINT grading_runs_version_fkey FOREIGN KEY (prompt_id, version)
        REFERENCES prompt_versions (prompt_id, version),
    CONSTRAINT grading_runs_status_known CHECK (
        status IN ('queued', 'running', 'completed', 'failed', 'cancelled', 'budget_exhausted')
    ),
    CONSTRAINT grading_runs_counts_nonnegative CHECK (
        total_rows >= 0 AND processed_rows >= 0 AND passed_rows >= 0 AND failed_rows >= 0
        AND error_rows >= 0 AND tokens_used >= 0
    ),
    CONSTRAINT grading_runs_graders_json CHECK (jsonb_typeof(graders) = 'array')
);
CREATE INDEX grading_runs_prompt ON grading_runs (prompt_id, created_at);

-- One grader's verdict on one row of a grading run. A trap (timeout, out of memory, panic) is
-- kept apart from an error the grader returned: error_kind says which.
CREATE TABLE grading_results (
    id                UUID NOT NULL,
    run_id            UUID NOT NULL,
    grader_id         UUID,
    grader_name       TEXT NOT NULL,
    row_index         BIGINT NOT NULL,
    -- The recorded run graded, when the rows came from prompt_optimization_data.
    data_id           UUID,
    score             DOUBLE PRECISION,
    passed            BOOLEAN,
    label             TEXT,
    reasoning         TEXT,
    error_kind        TEXT,
    error_message     TEXT,
    logs              TEXT,
    prompt_tokens     BIGINT,
    completion_tokens BIGINT,
    duration_us       BIGINT,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT grading_results_pkey PRIMARY KEY (id),
    CONSTRAINT grading_results_run_id_fkey FOREIGN KEY (run_id) REFERENCES grading_runs (id) ON DELETE CASCADE,
    CONSTRAINT grading_results_grader_id_fkey FOREIGN KEY (grader_id) REFERENCES graders (id) ON DELETE SET NULL,
    CONSTRAINT grading_results_data_id_fkey FOREIGN KEY (data_id) REFERENCES prompt_optimization_data (id),
    CONSTRAINT grading_results_run_grader_row_key UNIQUE (run_id, grader_name, row_index),
    CONSTRAINT grading_results_row_index_nonnegative CHECK (row_index >= 0),
    CONSTRAINT grading_results_error_kind_known CHECK (
        error_kind IS NULL OR error_kind IN (
            'invalid_config', 'invalid_input', 'failed',
            'timeout', 'out_of_memory', 'stack_overflow', 'panic', 'trap',
            'output_too_large', 'input_too_large', 'budget_exhausted', 'model_error'
        )
    )
);
CREATE INDEX grading_results_data ON grading_results (data_id);
