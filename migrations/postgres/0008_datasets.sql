-- Datasets: named, versioned sets of rows `{item, sample?}` belonging to a prompt, for
-- evaluation and optimization. A version is immutable once written (triggers below): what an
-- evaluation scored under "version 3 of dataset X" must stay what that name means. Rows carry a
-- stable id and the split (train/validation) fixed at creation from a hash of that id.

CREATE TABLE datasets (
    id         UUID NOT NULL,
    -- The name is the dataset's handle in URLs and on the command line, unique across prompts.
    name       TEXT NOT NULL,
    prompt_id  TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_by TEXT,
    CONSTRAINT datasets_pkey PRIMARY KEY (id),
    CONSTRAINT datasets_name_key UNIQUE (name),
    CONSTRAINT datasets_prompt_id_fkey FOREIGN KEY (prompt_id) REFERENCES prompts (id),
    CONSTRAINT datasets_name_format CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,99}$')
);
CREATE INDEX datasets_prompt_id ON datasets (prompt_id);

CREATE TABLE dataset_versions (
    id                  UUID NOT NULL,
    dataset_id          UUID NOT NULL,
    version             BIGINT NOT NULL,
    -- Where the rows came from: a snapshot of recorded runs, rows given in the request, or an
    -- uploaded OpenAI eval JSONL file.
    source              TEXT NOT NULL,
    -- The run filter of a snapshot (JSON object), for the record; NULL for other sources.
    filter              JSONB,
    validation_fraction DOUBLE PRECISION NOT NULL,
    row_count           BIGINT NOT NULL,
    validation_count    BIGINT NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_by          TEXT,
    CONSTRAINT dataset_versions_pkey PRIMARY KEY (id),
    CONSTRAINT dataset_versions_dataset_id_fkey FOREIGN KEY (dataset_id) REFERENCES datasets (id) ON DELETE CASCADE,
    CONSTRAINT dataset_versions_dataset_id_version_key UNIQUE (dataset_id, version),
    CONSTRAINT dataset_versions_version_positive CHECK (version >= 1),
    CONSTRAINT dataset_versions_source_known CHECK (source IN ('runs', 'rows', 'jsonl')),
    CONSTRAINT dataset_versions_filter_json CHECK (filter IS NULL OR jsonb_typeof(filter) = 'object'),
    CONSTRAINT dataset_versions_fraction_range CHECK (validation_fraction >= 0 AND validation_fraction <= 1),
    CONSTRAINT dataset_versions_counts_valid CHECK (row_count >= 0 AND validation_count >= 0 AND validation_count <= row_count)
);

CREATE TABLE dataset_rows (
    version_id UUID NOT NULL,
    -- Position in the version: the order rows were given or runs listed (the keyset of pages).
    row_index  BIGINT NOT NULL,
    -- The row's stable id (a snapshot row keeps its run's id; see `crate::datasets`).
    id         UUID NOT NULL,
    item       JSONB NOT NULL,
    sample     JSONB,
    split      TEXT NOT NULL,
    -- The recorded run a snapshot row was copied from (no foreign key: the row is a copy and
    -- outlives whatever happens to the run).
    run_id     UUID,
    CONSTRAINT dataset_rows_pkey PRIMARY KEY (version_id, row_index),
    CONSTRAINT dataset_rows_version_id_fkey FOREIGN KEY (version_id) REFERENCES dataset_versions (id) ON DELETE CASCADE,
    CONSTRAINT dataset_rows_version_id_id_key UNIQUE (version_id, id),
    CONSTRAINT dataset_rows_row_index_nonnegative CHECK (row_index >= 0),
    CONSTRAINT dataset_rows_item_json CHECK (jsonb_typeof(item) = 'object'),
    CONSTRAINT dataset_rows_sample_json CHECK (sample IS NULL OR jsonb_typeof(sample) = 'object'),
    CONSTRAINT dataset_rows_split_known CHECK (split IN ('train', 'validation'))
);
CREATE INDEX dataset_rows_version_split ON dataset_rows (version_id, split, row_index);

-- A version and its rows never change after they are written (deleting the whole dataset is
-- the only way they go).
CREATE FUNCTION datasets_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'dataset versions and rows cannot be changed'
        USING ERRCODE = 'integrity_constraint_violation', CONSTRAINT = TG_NAME;
END;
$$;

CREATE TRIGGER dataset_versions_immutable
BEFORE UPDATE ON dataset_versions
FOR EACH ROW EXECUTE FUNCTION datasets_refuse_change();

CREATE TRIGGER dataset_rows_immutable
BEFORE UPDATE ON dataset_rows
FOR EACH ROW EXECUTE FUNCTION datasets_refuse_change();
