-- Prompt optimizations (issue 17): a run of the reflective optimizer on one version of a prompt
-- and a dataset's train/validation split. Kept in step with migrations/sqlite/0012: same
-- columns and constraint names.
--
-- spec: what was asked (dataset version, models, budgets, minibatch, patience, target).
-- state: the loop's checkpoint (candidates, their per-row scores, what was spent), written after
-- every round with the answers it got, so a run taken over after a restart resumes from there.
-- report: written once, with the final status, in the transaction that creates the winner's
-- version when there is one (created_version), so a version never exists without its report.
-- claimed_by/lease_until: the instance running it and until when its claim holds.
CREATE TABLE optimizations (
    id               UUID NOT NULL,
    prompt_id        TEXT NOT NULL,
    start_version    BIGINT NOT NULL,
    spec             JSONB NOT NULL,
    graders          JSONB NOT NULL DEFAULT '[]',
    status           TEXT NOT NULL DEFAULT 'queued',
    state            JSONB,
    report           JSONB,
    created_version  BIGINT,
    error            TEXT,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    claimed_by       TEXT,
    lease_until      TIMESTAMPTZ,
    created_by       TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ,
    CONSTRAINT optimizations_pkey PRIMARY KEY (id),
    CONSTRAINT optimizations_prompt_id_fkey FOREIGN KEY (prompt_id) REFERENCES prompts (id),
    CONSTRAINT optimizations_start_version_fkey FOREIGN KEY (prompt_id, start_version)
        REFERENCES prompt_versions (prompt_id, version),
    CONSTRAINT optimizations_created_version_fkey FOREIGN KEY (prompt_id, created_version)
        REFERENCES prompt_versions (prompt_id, version),
    CONSTRAINT optimizations_status_known CHECK (
        status IN ('queued', 'running', 'completed', 'cancelled', 'failed')
    ),
    CONSTRAINT optimizations_spec_json CHECK (jsonb_typeof(spec) = 'object'),
    CONSTRAINT optimizations_graders_json CHECK (jsonb_typeof(graders) = 'array'),
    CONSTRAINT optimizations_state_json CHECK (state IS NULL OR jsonb_typeof(state) = 'object'),
    CONSTRAINT optimizations_report_json CHECK (report IS NULL OR jsonb_typeof(report) = 'object')
);
-- The worker claims the oldest queued (or abandoned) run; lists read a prompt's newest first.
CREATE INDEX optimizations_queue ON optimizations (status, created_at);
CREATE INDEX optimizations_prompt ON optimizations (prompt_id, created_at);
