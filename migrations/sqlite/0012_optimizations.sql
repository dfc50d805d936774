-- Prompt optimizations (issue 17): a run of the reflective optimizer on one version of a prompt
-- and a dataset's train/validation split. Kept in step with migrations/postgres/0012: same
-- columns and constraint names.
--
-- spec: what was asked (dataset version, models, budgets, minibatch, patience, target).
-- state: the loop's checkpoint (candidates, their per-row scores, what was spent), written after
-- every round with the answers it got, so a run taken over after a restart resumes from there.
-- report: written once, with the final status, in the transaction that creates the winner's
-- version when there is one (created_version), so a version never exists without its report.
-- claimed_by/lease_until: the instance running it and until when its claim holds.
CREATE TABLE optimizations (
    id               TEXT NOT NULL,
    prompt_id        TEXT NOT NULL,
    start_version    INTEGER NOT NULL,
    spec             TEXT NOT NULL,
    graders          TEXT NOT NULL DEFAULT '[]',
    status           TEXT NOT NULL DEFAULT 'queued',
    state            TEXT,
    report           TEXT,
    created_version  INTEGER,
    error            TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    claimed_by       TEXT,
    lease_until      TEXT,
    created_by       TEXT,
    created_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    started_at       TEXT,
    finished_at      TEXT,
    CONSTRAINT optimizations_pkey PRIMARY KEY (id),
    CONSTRAINT optimizations_prompt_id_fkey FOREIGN KEY (prompt_id) REFERENCES prompts (id),
    CONSTRAINT optimizations_start_version_fkey FOREIGN KEY (prompt_id, start_version)
        REFERENCES prompt_versions (prompt_id, version),
    CONSTRAINT optimizations_created_version_fkey FOREIGN KEY (prompt_id, created_version)
        REFERENCES prompt_versions (prompt_id, version),
    CONSTRAINT optimizations_status_known CHECK (
        status IN ('queued', 'running', 'completed', 'cancelled', 'failed')
    ),
    CONSTRAINT optimizations_spec_json CHECK (json_valid(spec) AND json_type(spec) = 'object'),
    CONSTRAINT optimizations_graders_json CHECK (json_valid(graders) AND json_type(graders) = 'array'),
    CONSTRAINT optimizations_state_json CHECK (state IS NULL OR (json_valid(state) AND json_type(state) = 'object')),
    CONSTRAINT optimizations_report_json CHECK (report IS NULL OR (json_valid(report) AND json_type(report) = 'object')),
    CONSTRAINT optimizations_cancel_requested_bool CHECK (cancel_requested IN (0, 1))
);
-- The worker claims the oldest queued (or abandoned) run; lists read a prompt's newest first.
CREATE INDEX optimizations_queue ON optimizations (status, created_at);
CREATE INDEX optimizations_prompt ON optimizations (prompt_id, created_at);
