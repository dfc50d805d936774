-- What the web pages (host/src/web) need of the schema.
--
-- Sessions of the web pages (host/src/web): a person signs in with an API token and the browser
-- keeps a random session id in an HttpOnly cookie. The row is the server's side of it, in the
-- database so that every instance behind a load balancer knows the session.
--
-- Only the SHA-256 of the session id is kept (hex): a copy of this table signs nobody in. The
-- token itself is never stored; the session names the token, whose role is looked up in the
-- running configuration on every request, so removing a token ends its sessions.

CREATE TABLE web_sessions (
    id_hash    TEXT NOT NULL,
    token_name TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Seconds since the Unix epoch (UTC). An integer, not a timestamp, so that both backends
    -- compare it in SQL the same way (SQLite keeps timestamps as text in varying forms).
    expires_at BIGINT NOT NULL,
    CONSTRAINT web_sessions_pkey PRIMARY KEY (id_hash),
    CONSTRAINT web_sessions_id_hash_format CHECK (id_hash ~ '^[0-9a-f]{64}$')
);
-- Purging expired sessions reads them by expiry.
CREATE INDEX web_sessions_expires_at ON web_sessions (expires_at);

-- The annotation queue (the web pages' annotation page, `GET /api/prompts/{id}/annotation-queue`)
-- reads a prompt's runs without a person's annotation, failed first, then newest. Without this
-- index every page sorted all such runs of the prompt (~60 ms at 100,000 runs, BENCHMARKS.md);
-- with it a page is an index range scan of `limit` entries. The expression and the WHERE are
-- the queue query's own (`store/sql/annotations.rs`, QUEUE_FAILED), so the planner matches them.
CREATE INDEX prompt_optimization_data_annotation_queue ON prompt_optimization_data (
    prompt_id,
    (COALESCE(tests_passed = FALSE OR graders_passed = FALSE, FALSE)) DESC,
    id DESC
) WHERE origin = 'production' AND (annotation_source IS NULL OR annotation_source <> 'person');
