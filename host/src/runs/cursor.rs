//! The cursor of `GET /api/runs`: opaque to clients, it holds the id of the last run of the page
//! before (ids are uuid v7, so the list is keyset-paginated by id, newest first, and runs
//! recorded meanwhile never shift a page still to come).

use uuid::Uuid;

/// The cursor after the page that ended with `last`.
pub fn encode(last: Uuid) -> String {
    format!("r{}", last.simple())
}

/// The id a cursor holds; `None` if this server did not make it.
pub fn decode(cursor: &str) -> Option<Uuid> {
    let hex = cursor.strip_prefix('r')?;
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Uuid::try_parse(hex).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let id = Uuid::now_v7();
        assert_eq!(decode(&encode(id)), Some(id));
        for foreign in [
            "",
            "r",
            "xyz",
            &id.to_string(),
            &format!("r{}", id.hyphenated()),
            "r0000",
        ] {
            assert_eq!(decode(foreign), None, "{foreign}");
        }
    }
}
