-- Datasets: named, versioned sets of rows `{item, sample?}` belonging to a prompt, for
-- evaluation and optimization. A version is immutable once written (triggers below): what an
-- evaluation scored under "version 3 of dataset X" must stay what that name means. Rows carry a
-- stable id and the split (train/validation) fixed at creation from a hash of that id.

CREATE TABLE datasets (
    id         TEXT NOT NULL,
    -- The name is the dataset's handle in URLs and on the command line, unique across prompts.
    name       TEXT NOT NULL,
    prompt_id  TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    created_by TEXT,
    CONSTRAINT datasets_pkey PRIMARY KEY (id),
    CONSTRAINT datasets_name_key UNIQUE (name),
    CONSTRAINT datasets_prompt_id_fkey FOREIGN KEY (prompt_id) REFERENCES prompts (id),
    CONSTRAINT datasets_name_format CHECK (
        length(name) BETWEEN 1 AND 100
        AND substr(name, 1, 1) GLOB '[a-z0-9]'
        AND name NOT GLOB '*[^a-z0-9_.-]*'
    )
);
CREATE INDEX datasets_prompt_id ON datasets (prompt_id);

CREATE TABLE dataset_versions (
    id                  TEXT NOT NULL,
    dataset_id          TEXT NOT NULL,
    version             INTEGER NOT NULL,
    -- Where the rows came from: a snapshot of recorded runs, rows given in the request, or an
    -- uploaded OpenAI eval JSONL file.
    source              TEXT NOT NULL,
    -- The run filter of a snapshot (JSON object), for the record; NULL for other sources.
    filter              TEXT,
    validation_fraction REAL NOT NULL,
    row_count           INTEGER NOT NULL,
    validation_count    INTEGER NOT NULL,
    created_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    created_by          TEXT,
    CONSTRAINT dataset_versions_pkey PRIMARY KEY (id),
    CONSTRAINT dataset_versions_dataset_id_fkey FOREIGN KEY (dataset_id) REFERENCES datasets (id) ON DELETE CASCADE,
    CONSTRAINT dataset_versions_dataset_id_version_key UNIQUE (dataset_id, version),
    CONSTRAINT dataset_versions_version_positive CHECK (version >= 1),
    CONSTRAINT dataset_versions_source_known CHECK (source IN ('runs', 'rows', 'jsonl')),
    CONSTRAINT dataset_versions_filter_json CHECK (filter IS NULL OR (json_valid(filter) AND json_type(filter) = 'object')),
    CONSTRAINT dataset_versions_fraction_range CHECK (validation_fraction >= 0 AND validation_fraction <= 1),
    CONSTRAINT dataset_versions_counts_valid CHECK (row_count >= 0 AND validation_count >= 0 AND validation_count <= row_count)
);

CREATE TABLE dataset_rows (
    version_id TEXT NOT NULL,
    -- Position in the version: the order rows were given or runs listed (the keyset of pages).
    row_index  INTEGER NOT NULL,
    -- The row's stable id (a snapshot row keeps its run's id; see `crate::datasets`).
    id         TEXT NOT NULL,
    item       TEXT NOT NULL,
    sample     TEXT,
    split      TEXT NOT NULL,
    -- The recorded run a snapshot row was copied from (no foreign key: the row is a copy and
    -- outlives whatever happens to the run).
    run_id     TEXT,
    CONSTRAINT dataset_rows_pkey PRIMARY KEY (version_id, row_index),
    CONSTRAINT dataset_rows_version_id_fkey FOREIGN KEY (version_id) REFERENCES dataset_versions (id) ON DELETE CASCADE,
    CONSTRAINT dataset_rows_version_id_id_key UNIQUE (version_id, id),
    CONSTRAINT dataset_rows_row_index_nonnegative CHECK (row_index >= 0),
    CONSTRAINT dataset_rows_item_json CHECK (json_valid(item) AND json_type(item) = 'object'),
    CONSTRAINT dataset_rows_sample_json CHECK (sample IS NULL OR (json_valid(sample) AND json_type(sample) = 'object')),
    CONSTRAINT dataset_rows_split_known CHECK (split IN ('train', 'validation'))
);
CREATE INDEX dataset_rows_version_split ON dataset_rows (version_id, split, row_index);

-- A version and its rows never change after they are written (deleting the whole dataset is
-- the only way they go).
CREATE TRIGGER dataset_versions_immutable
BEFORE UPDATE ON dataset_versions
BEGIN
    SELECT RAISE(ABORT, 'dataset_versions_immutable: dataset versions cannot be changed');
END;

CREATE TRIGGER dataset_rows_immutable
BEFORE UPDATE ON dataset_rows
BEGIN
    SELECT RAISE(ABORT, 'dataset_rows_immutable: dataset rows cannot be changed');
END;
