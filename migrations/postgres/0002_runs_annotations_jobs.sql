-- Runs, outcomes, annotations and grading jobs (the data side of the flywheel). Kept in step with
-- migrations/sqlite/0002: same columns and constraint names.

-- attempt: the run's attempt within its task (1 when not given). run_key holds it in decimal, so
-- the idempotency key (prompt_id, task_id, run_key) is (prompt, task, attempt).
ALTER TABLE prompt_optimization_data ADD COLUMN attempt BIGINT NOT NULL DEFAULT 1
    CONSTRAINT prompt_optimization_data_attempt_positive CHECK (attempt >= 1);
-- The fixer's failure signature reported with the outcome (for `same_error_repeated`).
ALTER TABLE prompt_optimization_data ADD COLUMN failure_signature TEXT;
-- Who made the current annotation: a person (a token's name in annotated_by) or a rule.
ALTER TABLE prompt_optimization_data ADD COLUMN annotation_source TEXT
    CONSTRAINT prompt_optimization_data_annotation_source_known CHECK (
        annotation_source IS NULL OR annotation_source IN ('person', 'rule')
    );
-- Whether every enabled grader of the prompt passed (NULL until graded): the last resort of
-- the success definition (tests passed, else the rating, else the graders).
ALTER TABLE prompt_optimization_data ADD COLUMN graders_passed BOOLEAN;
-- Where the run came from: AutoDev in production, or an offline evaluation (which never counts
-- in production figures or A/B results).
ALTER TABLE prompt_optimization_data ADD COLUMN origin TEXT NOT NULL DEFAULT 'production'
    CONSTRAINT prompt_optimization_data_origin_known CHECK (origin IN ('production', 'evaluation'));
-- When the automatic graders last ran on the run (NULL: waiting for them).
ALTER TABLE prompt_optimization_data ADD COLUMN auto_graded_at TIMESTAMPTZ;
-- When the outcome was last applied.
ALTER TABLE prompt_optimization_data ADD COLUMN outcome_at TIMESTAMPTZ;

CREATE INDEX prompt_optimization_data_auto_grade_queue ON prompt_optimization_data (created_at)
    WHERE auto_graded_at IS NULL;
CREATE INDEX prompt_optimization_data_prompt_id_id ON prompt_optimization_data (prompt_id, id);

-- The latest outcome reported per task, kept for good: a run recorded after its outcome takes it
-- from here, so an outcome that arrives first is never lost.
CREATE TABLE task_outcomes (
    task_id           TEXT NOT NULL,
    tests_passed      BOOLEAN,
    pr_merged         BOOLEAN,
    expected_files    JSONB,
    failure_signature TEXT,
    reported_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT task_outcomes_pkey PRIMARY KEY (task_id),
    CONSTRAINT task_outcomes_task_id_nonempty CHECK (length(task_id) >= 1),
    CONSTRAINT task_outcomes_expected_files_json CHECK (
        expected_files IS NULL OR jsonb_typeof(expected_files) = 'array'
    )
);

-- Every annotation ever made, append-only: the run's columns hold the current one.
CREATE TABLE annotations (
    id              UUID NOT NULL,
    data_id         UUID NOT NULL,
    -- 'set' records an annotation, 'clear' its removal (the other columns then NULL).
    action          TEXT NOT NULL,
    rating          TEXT,
    output_feedback TEXT,
    failure_mode    TEXT,
    source          TEXT NOT NULL,
    -- The token's name for a person, the rule's name for a rule.
    actor           TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT annotations_pkey PRIMARY KEY (id),
    CONSTRAINT annotations_data_id_fkey FOREIGN KEY (data_id) REFERENCES prompt_optimization_data (id),
    CONSTRAINT annotations_action_known CHECK (action IN ('set', 'clear')),
    CONSTRAINT annotations_rating_known CHECK (rating IS NULL OR rating IN ('good', 'bad')),
    CONSTRAINT annotations_source_known CHECK (source IN ('person', 'rule'))
);
CREATE INDEX annotations_data ON annotations (data_id, created_at);

-- Append-only: history is never rewritten nor removed.
CREATE FUNCTION annotations_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'annotations are append-only'
        USING ERRCODE = 'integrity_constraint_violation', CONSTRAINT = 'annotations_append_only';
END;
$$;
-- Two triggers, one per event, as SQLite needs.
CREATE TRIGGER annotations_append_only
BEFORE UPDATE ON annotations
FOR EACH ROW EXECUTE FUNCTION annotations_refuse_change();
CREATE TRIGGER annotations_append_only_delete
BEFORE DELETE ON annotations
FOR EACH ROW EXECUTE FUNCTION annotations_refuse_change();

-- Grading jobs: what they select, where they are, and who holds them.
-- filter: the selection of runs, JSON object (the rows themselves are fixed in 0005's
-- grading_run_rows). claimed_by/lease_until: the instance running the job and until when its
-- claim holds without renewal.
ALTER TABLE grading_runs ADD COLUMN filter JSONB NOT NULL DEFAULT '{}'::jsonb
    CONSTRAINT grading_runs_filter_json CHECK (jsonb_typeof(filter) = 'object');
ALTER TABLE grading_runs ADD COLUMN errors JSONB NOT NULL DEFAULT '{}'::jsonb
    CONSTRAINT grading_runs_errors_json CHECK (jsonb_typeof(errors) = 'object');
ALTER TABLE grading_runs ADD COLUMN claimed_by TEXT;
ALTER TABLE grading_runs ADD COLUMN lease_until TIMESTAMPTZ;
ALTER TABLE grading_runs ADD COLUMN cancel_requested BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX grading_runs_queue ON grading_runs (status, created_at);
