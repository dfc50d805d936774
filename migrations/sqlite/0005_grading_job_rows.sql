-- The rows a grading job grades, fixed when the job is created: the job walks them by
-- row_index, so a job resumed after a restart (or taken over from a dead instance) starts exactly
-- where the last committed chunk ended, and later runs or annotations never change its set.
CREATE TABLE grading_run_rows (
    run_id    TEXT NOT NULL,
    row_index INTEGER NOT NULL,
    data_id   TEXT NOT NULL,
    CONSTRAINT grading_run_rows_pkey PRIMARY KEY (run_id, row_index),
    CONSTRAINT grading_run_rows_run_id_fkey FOREIGN KEY (run_id) REFERENCES grading_runs (id) ON DELETE CASCADE,
    CONSTRAINT grading_run_rows_data_id_fkey FOREIGN KEY (data_id) REFERENCES prompt_optimization_data (id),
    CONSTRAINT grading_run_rows_row_index_nonnegative CHECK (row_index >= 0)
);
