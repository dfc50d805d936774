-- Flywheel schema, SQLite flavour. Every table of DESIGN.md exists from the start so later work
-- extends columns rather than reshaping tables. Kept in step with migrations/postgres: same
-- tables, columns and constraint names, so both backends map violations by the same names.
--
-- SQLite notes: timestamps are RFC 3339 TEXT in UTC, UUIDs hyphenated TEXT, JSON TEXT (checked
-- valid), booleans INTEGER 0/1 (checked by `*_bool` constraints, the only ones PostgreSQL's types
-- make unnecessary). Foreign keys are enforced because the connection turns them on.

CREATE TABLE prompts (
    id          TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    -- JSON array of the template variables the prompt declares.
    variables   TEXT NOT NULL DEFAULT '[]',
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    CONSTRAINT prompts_pkey PRIMARY KEY (id),
    -- Ids appear in URLs and file names: lower-case identifiers only.
    CONSTRAINT prompts_id_format CHECK (
        length(id) BETWEEN 1 AND 50
        AND substr(id, 1, 1) GLOB '[a-z]'
        AND id NOT GLOB '*[^a-z0-9_-]*'
    ),
    CONSTRAINT prompts_variables_json CHECK (json_valid(variables) AND json_type(variables) = 'array')
);

CREATE TABLE prompt_versions (
    id             TEXT NOT NULL,
    prompt_id      TEXT NOT NULL,
    version        INTEGER NOT NULL,
    content        TEXT NOT NULL,
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    is_active      INTEGER NOT NULL DEFAULT 0,
    source         TEXT NOT NULL DEFAULT 'manual',
    parent_version INTEGER,
    notes          TEXT,
    created_by     TEXT,
    -- Performance figures, maintained as runs are recorded.
    tasks_executed INTEGER NOT NULL DEFAULT 0,
    success_rate   REAL,
    avg_tokens     INTEGER,
    CONSTRAINT prompt_versions_pkey PRIMARY KEY (id),
    CONSTRAINT prompt_versions_prompt_id_fkey FOREIGN KEY (prompt_id) REFERENCES prompts (id),
    CONSTRAINT prompt_versions_prompt_id_version_key UNIQUE (prompt_id, version),
    CONSTRAINT prompt_versions_parent_fkey FOREIGN KEY (prompt_id, parent_version)
        REFERENCES prompt_versions (prompt_id, version),
    CONSTRAINT prompt_versions_version_positive CHECK (version >= 1),
    CONSTRAINT prompt_versions_is_active_bool CHECK (is_active IN (0, 1)),
    CONSTRAINT prompt_versions_source_known CHECK (source IN ('manual', 'import', 'optimizer', 'seed')),
    CONSTRAINT prompt_versions_parent_older CHECK (parent_version IS NULL OR parent_version < version),
    CONSTRAINT prompt_versions_tasks_executed_nonnegative CHECK (tasks_executed >= 0),
    CONSTRAINT prompt_versions_success_rate_range CHECK (success_rate IS NULL OR (success_rate >= 0 AND success_rate <= 100))
);

-- The invariant the whole registry rests on: at most one active version per prompt, enforced by
-- the schema so no code path (or a second instance) can break it.
CREATE UNIQUE INDEX one_active_version_per_prompt ON prompt_versions (prompt_id) WHERE is_active = 1;

-- Versions are immutable: what was served under a number must stay what that number means.
-- Only the activation flag and the performance figures may change.
CREATE TRIGGER prompt_versions_immutable
BEFORE UPDATE ON prompt_versions
WHEN OLD.id IS NOT NEW.id
  OR OLD.prompt_id IS NOT NEW.prompt_id
  OR OLD.version IS NOT NEW.version
  OR OLD.content IS NOT NEW.content
  OR OLD.created_at IS NOT NEW.created_at
  OR OLD.source IS NOT NEW.source
  OR OLD.parent_version IS NOT NEW.parent_version
  OR OLD.notes IS NOT NEW.notes
  OR OLD.created_by IS NOT NEW.created_by
BEGIN
    SELECT RAISE(ABORT, 'prompt_versions_immutable: prompt versions cannot be changed');
END;

-- Every change of the active version, for audit and for rollback.
CREATE TABLE deploy_history (
    -- Commit order per prompt (writes to one prompt are serialised), used by rollback.
    seq          INTEGER NOT NULL,
    id           TEXT NOT NULL,
    prompt_id    TEXT NOT NULL,
    from_version INTEGER,
    to_version   INTEGER NOT NULL,
    action       TEXT NOT NULL,
    actor        TEXT NOT NULL,
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
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
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    CONSTRAINT failure_modes_pkey PRIMARY KEY (prompt_id, code),
    CONSTRAINT failure_modes_prompt_id_fkey FOREIGN KEY (prompt_id) REFERENCES prompts (id),
    CONSTRAINT failure_modes_code_format CHECK (
        length(code) BETWEEN 1 AND 50
        AND substr(code, 1, 1) GLOB '[a-z]'
        AND code NOT GLOB '*[^a-z0-9_]*'
    )
);

-- A/B tests between two versions of one prompt.
CREATE TABLE ab_tests (
    id            TEXT NOT NULL,
    prompt_id     TEXT NOT NULL,
    version_a     INTEGER NOT NULL,
    version_b     INTEGER NOT NULL,
    -- Share of traffic sent to version B.
    traffic_split REAL NOT NULL,
    -- Hash seed of the sticky assignment.
    seed          TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'running',
    decision      TEXT,
    min_samples   INTEGER NOT NULL DEFAULT 0,
    -- Guardrails and analysis settings, JSON object.
    config        TEXT NOT NULL DEFAULT '{}',
    -- The last analysis, JSON object.
    result        TEXT,
    created_by    TEXT,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    started_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    ended_at      TEXT,
    decided_at    TEXT,
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
    CONSTRAINT ab_tests_config_json CHECK (json_valid(config) AND json_type(config) = 'object'),
    CONSTRAINT ab_tests_result_json CHECK (result IS NULL OR (json_valid(result) AND json_type(result) = 'object'))
);
-- A task must get one answer to "which version": only one running test per prompt.
CREATE UNIQUE INDEX one_running_ab_test_per_prompt ON ab_tests (prompt_id) WHERE status = 'running';

-- Which arm each task was assigned to, recorded at assignment (intent to treat).
CREATE TABLE ab_exposures (
    id         TEXT NOT NULL,
    ab_test_id TEXT NOT NULL,
    task_id    TEXT NOT NULL,
    arm        TEXT NOT NULL,
    version    INTEGER NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    CONSTRAINT ab_exposures_pkey PRIMARY KEY (id),
    CONSTRAINT ab_exposures_ab_test_id_fkey FOREIGN KEY (ab_test_id) REFERENCES ab_tests (id),
    CONSTRAINT ab_exposures_ab_test_id_task_id_key UNIQUE (ab_test_id, task_id),
    CONSTRAINT ab_exposures_arm_known CHECK (arm IN ('a', 'b'))
);

-- One row per agent run. Outcomes (tests_passed, pr_merged) and annotations arrive later and
-- update the row found by (prompt_id, task_id, run_key).
CREATE TABLE prompt_optimization_data (
    id                TEXT NOT NULL,
    prompt_id         TEXT NOT NULL,
    version           INTEGER NOT NULL,
    task_id           TEXT NOT NULL,
    -- Distinguishes several runs of one prompt within a task (attempt number, step id); the
    -- idempotency key of run ingestion together with prompt_id and task_id.
    run_key           TEXT NOT NULL DEFAULT '',
    -- The root task, which A/B assignment hashes, when it differs from task_id.
    root_task_id      TEXT,
    ab_test_id        TEXT,
    arm               TEXT,
    input_variables   TEXT NOT NULL DEFAULT '{}',
    output            TEXT,
    model             TEXT,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    total_tokens      INTEGER,
    latency_ms        INTEGER,
    expected_files    TEXT,
    tests_passed      INTEGER,
    pr_merged         INTEGER,
    rating            TEXT,
    output_feedback   TEXT,
    failure_mode      TEXT,
    annotated_by      TEXT,
    annotated_at      TEXT,
    grader_results    TEXT,
    created_at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
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
    CONSTRAINT prompt_optimization_data_tests_passed_bool CHECK (tests_passed IS NULL OR tests_passed IN (0, 1)),
    CONSTRAINT prompt_optimization_data_pr_merged_bool CHECK (pr_merged IS NULL OR pr_merged IN (0, 1)),
    CONSTRAINT prompt_optimization_data_tokens_nonnegative CHECK (
        (prompt_tokens IS NULL OR prompt_tokens >= 0)
        AND (completion_tokens IS NULL OR completion_tokens >= 0)
        AND (total_tokens IS NULL OR total_tokens >= 0)
    ),
    CONSTRAINT prompt_optimization_data_latency_nonnegative CHECK (latency_ms IS NULL OR latency_ms >= 0),
    CONSTRAINT prompt_optimization_data_input_variables_json CHECK (
        json_valid(input_variables) AND json_type(input_variables) = 'object'
    ),
    CONSTRAINT prompt_optimization_data_expected_files_json CHECK (
        expected_files IS NULL OR (json_valid(expected_files) AND json_type(expected_files) = 'array')
    ),
    CONSTRAINT prompt_optimization_data_grader_results_json CHECK (
        grader_results IS NULL OR (json_valid(grader_results) AND json_type(grader_results) = 'object')
    )
);
CREATE INDEX prompt_optimization_data_prompt_version ON prompt_optimization_data (prompt_id, version, created_at);
CREATE INDEX prompt_optimization_data_task ON prompt_optimization_data (task_id);
CREATE INDEX prompt_optimization_data_ab_test ON prompt_optimization_data (ab_test_id, arm);

-- Grader definitions attached to a prompt (OpenAI grader JSON or a wasm component + config).
CREATE TABLE graders (
    id         TEXT NOT NULL,
    prompt_id  TEXT NOT NULL,
    name       TEXT NOT NULL,
    definition TEXT NOT NULL,
    enabled    INTEGER NOT NULL DEFAULT 1,
    created_by TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    CONSTRAINT graders_pkey PRIMARY KEY (id),
    CONSTRAINT graders_prompt_id_fkey FOREIGN KEY (prompt_id) REFERENCES prompts (id),
    CONSTRAINT graders_prompt_id_name_key UNIQUE (prompt_id, name),
    CONSTRAINT graders_name_nonempty CHECK (length(name) BETWEEN 1 AND 100),
    CONSTRAINT graders_enabled_bool CHECK (enabled IN (0, 1)),
    CONSTRAINT graders_definition_json CHECK (json_valid(definition) AND json_type(definition) = 'object')
);

-- One grading run: a set of graders over a set of rows, with progress and counts.
CREATE TABLE grading_runs (
    id             TEXT NOT NULL,
    prompt_id      TEXT,
    version        INTEGER,
    -- JSON array of the grader names (or inline definitions) the run applies.
    graders        TEXT NOT NULL DEFAULT '[]',
    status         TEXT NOT NULL DEFAULT 'queued',
    total_rows     INTEGER NOT NULL DEFAULT 0,
    processed_rows INTEGER NOT NULL DEFAULT 0,
    passed_rows    INTEGER NOT NULL DEFAULT 0,
    failed_rows    INTEGER NOT NULL DEFAULT 0,
    error_rows     INTEGER NOT NULL DEFAULT 0,
    token_budget   INTEGER,
    tokens_used    INTEGER NOT NULL DEFAULT 0,
    error          TEXT,
    created_by     TEXT,
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    started_at     TEXT,
    finished_at    TEXT,
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
    CONSTRAINT grading_runs_graders_json CHECK (json_valid(graders) AND json_type(graders) = 'array')
);
CREATE INDEX grading_runs_prompt ON grading_runs (prompt_id, created_at);

-- One grader's verdict on one row of a grading run. A trap (timeout, out of memory, panic) is
-- kept apart from an error the grader returned: error_kind says which.
CREATE TABLE grading_results (
    id                TEXT NOT NULL,
    run_id            TEXT NOT NULL,
    grader_id         TEXT,
    grader_name       TEXT NOT NULL,
    row_index         INTEGER NOT NULL,
    -- The recorded run graded, when the rows came from prompt_optimization_data.
    data_id           TEXT,
    score             REAL,
    passed            INTEGER,
    label             TEXT,
    reasoning         TEXT,
    error_kind        TEXT,
    error_message     TEXT,
    logs              TEXT,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    duration_us       INTEGER,
    created_at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    CONSTRAINT grading_results_pkey PRIMARY KEY (id),
    CONSTRAINT grading_results_run_id_fkey FOREIGN KEY (run_id) REFERENCES grading_runs (id) ON DELETE CASCADE,
    CONSTRAINT grading_results_grader_id_fkey FOREIGN KEY (grader_id) REFERENCES graders (id) ON DELETE SET NULL,
    CONSTRAINT grading_results_data_id_fkey FOREIGN KEY (data_id) REFERENCES prompt_optimization_data (id),
    CONSTRAINT grading_results_run_grader_row_key UNIQUE (run_id, grader_name, row_index),
    CONSTRAINT grading_results_row_index_nonnegative CHECK (row_index >= 0),
    CONSTRAINT grading_results_passed_bool CHECK (passed IS NULL OR passed IN (0, 1)),
    CONSTRAINT grading_results_error_kind_known CHECK (
        error_kind IS NULL OR error_kind IN (
            'invalid_config', 'invalid_input', 'failed',
            'timeout', 'out_of_memory', 'stack_overflow', 'panic', 'trap',
            'output_too_large', 'input_too_large', 'budget_exhausted', 'model_error'
        )
    )
);
CREATE INDEX grading_results_data ON grading_results (data_id);
