//! The store conformance suite: the same cases against SQLite and PostgreSQL.
