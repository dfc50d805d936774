-- Offline evaluations (issue 12): a prompt's versions × a dataset's rows × a model, graded.
-- Kept in step with migrations/sqlite/0009: same columns and constraint names.
--
-- An evaluation is a job of the grading_runs queue (same claim, lease, resume and cancel), told
-- apart by its kind and carrying what it evaluates in spec. Its rows are not stored up front:
-- position p of an evaluation of V versions, R dataset rows and N repeats is version p % V,
-- repeat (p / V) % N, row p / (V * N) of the dataset version (immutable), so the rows are as
-- fixed as a grading job's.
ALTER TABLE grading_runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'grading'
    CONSTRAINT grading_runs_kind_known CHECK (kind IN ('grading', 'evaluation'));
-- What an evaluation evaluates (versions, dataset version, split, model, repeat, call budget).
ALTER TABLE grading_runs ADD COLUMN spec JSONB
    CONSTRAINT grading_runs_spec_json CHECK (spec IS NULL OR jsonb_typeof(spec) = 'object');
-- Model calls made and answers taken from the cache, committed with each chunk.
ALTER TABLE grading_runs ADD COLUMN model_calls BIGINT NOT NULL DEFAULT 0
    CONSTRAINT grading_runs_model_calls_nonnegative CHECK (model_calls >= 0);
ALTER TABLE grading_runs ADD COLUMN cached_answers BIGINT NOT NULL DEFAULT 0
    CONSTRAINT grading_runs_cached_answers_nonnegative CHECK (cached_answers >= 0);

-- An evaluation's outputs are runs of the version evaluated with origin 'evaluation' (never
-- counted in production figures, A/B results, exports or dataset snapshots), carrying where they
-- come from: the evaluation, the dataset row, the repeat index and the row's error when the
-- model could not be asked or did not answer (then output is NULL and no grader ran).
ALTER TABLE prompt_optimization_data ADD COLUMN evaluation_id UUID
    CONSTRAINT prompt_optimization_data_evaluation_id_fkey REFERENCES grading_runs (id) ON DELETE CASCADE;
ALTER TABLE prompt_optimization_data ADD COLUMN evaluation_row UUID;
ALTER TABLE prompt_optimization_data ADD COLUMN evaluation_repeat BIGINT;
ALTER TABLE prompt_optimization_data ADD COLUMN evaluation_error TEXT;
ALTER TABLE prompt_optimization_data ADD COLUMN evaluation_error_message TEXT;
CREATE INDEX prompt_optimization_data_evaluation ON prompt_optimization_data (evaluation_id)
    WHERE evaluation_id IS NOT NULL;

-- Model answers by their request: key is the SHA-256 (hex) of the endpoint's URL, the model,
-- the rendered messages, the sampling parameters and the repeat index (never the API key), so a
-- rerun of an evaluation asks the model nothing.
CREATE TABLE model_answer_cache (
    key               TEXT NOT NULL,
    model             TEXT NOT NULL,
    answer            TEXT NOT NULL,
    prompt_tokens     BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT model_answer_cache_pkey PRIMARY KEY (key),
    CONSTRAINT model_answer_cache_tokens_nonnegative CHECK (prompt_tokens >= 0 AND completion_tokens >= 0)
);
