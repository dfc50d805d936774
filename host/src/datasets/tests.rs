use serde_json::json;
use uuid::Uuid;

use super::*;

fn ids(n: usize) -> Vec<Uuid> {
    // Deterministic ids, so the test sees the same rows every time.
    (0..n)
        .map(|i| {
            content_row_id(
                "ids",
                &json!({ "i": i }).as_object().cloned().unwrap_or_default(),
                None,
                0,
            )
        })
        .collect()
}

#[test]
fn the_split_is_a_pure_function_of_the_row_id_and_the_fraction() {
    let id = Uuid::parse_str("0192f0c4-8b4e-7c3a-9d2e-5f6a7b8c9d0e").expect("uuid");
    // Pinned: the documented hash (SHA-256 of "flywheel-split-v1:" + the hyphenated id, the
    // first 8 bytes big-endian >> 11, / 2^53) puts this id at u ≈ its value below; a change of
    // the hash would move rows between splits of stored datasets.
    let mut hasher = Sha256::new();
    hasher.update(format!("flywheel-split-v1:{id}").as_bytes());
    let digest = hasher.finalize();
    let u = (u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) >> 11) as f64
        / (1u64 << 53) as f64;
    assert_eq!(split_of(id, u), Split::Train, "u is not below u");
    assert_eq!(split_of(id, u + 1e-12), Split::Validation);
    for _ in 0..3 {
        assert_eq!(split_of(id, 0.5), split_of(id, 0.5));
    }
    for id in ids(200) {
        assert_eq!(split_of(id, 0.0), Split::Train);
        assert_eq!(split_of(id, 1.0), Split::Validation);
    }
}

#[test]
fn the_split_follows_the_fraction_and_grows_monotonically() {
    let rows = ids(10_000);
    for fraction in [0.1, 0.2, 0.5, 0.9] {
        let validation = rows
            .iter()
            .filter(|id| split_of(**id, fraction) == Split::Validation)
            .count() as f64
            / rows.len() as f64;
        assert!(
            (validation - fraction).abs() < 0.02,
            "fraction {fraction}: {validation} in validation"
        );
    }
    // A row in validation at 0.2 stays there at 0.5: raising the fraction only moves rows in.
    for id in &rows {
        if split_of(*id, 0.2) == Split::Validation {
            assert_eq!(split_of(*id, 0.5), Split::Validation);
        }
    }
}

#[test]
fn content_ids_ignore_key_order_and_tell_repeats_apart() {
    let a = json!({"b": 1, "a": {"y": 2, "x": 1}});
    let b = json!({"a": {"x": 1, "y": 2}, "b": 1});
    let (a, b) = (
        a.as_object().expect("object"),
        b.as_object().expect("object"),
    );
    assert_eq!(
        content_row_id("d", a, None, 0),
        content_row_id("d", b, None, 0)
    );
    assert_ne!(
        content_row_id("d", a, None, 0),
        content_row_id("d", a, None, 1)
    );
    assert_ne!(
        content_row_id("d", a, None, 0),
        content_row_id("e", a, None, 0)
    );
    let sample = json!({"output_text": "x"});
    let sample = sample.as_object();
    assert_ne!(
        content_row_id("d", a, None, 0),
        content_row_id("d", a, sample, 0)
    );
    assert_eq!(content_row_id("d", a, None, 0).get_version_num(), 8);
}

#[test]
fn jsonl_lines_are_rows_and_a_bad_line_is_named() {
    let text = "{\"item\": {\"q\": \"a\"}, \"sample\": {\"output_text\": \"b\"}}\n\n{\"item\": {\"q\": \"c\"}}\n";
    let rows = parse_jsonl(text).expect("valid");
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0].1.as_ref().map(|s| s["output_text"].clone()),
        Some(json!("b"))
    );
    assert_eq!(rows[1].1, None);
    let cases = [
        ("{\"item\": 1}", "jsonl:1.item"),
        ("{}", "jsonl:1.item"),
        ("[1]", "jsonl:1"),
        ("{\"item\": {}, \"extra\": 1}", "jsonl:1.extra"),
        ("{\"item\": {}, \"sample\": \"x\"}", "jsonl:1.sample"),
        ("{\"item\": {}}\nnot json", "jsonl:2"),
        ("{\"item\": {\"q\": \"a\\u0000\"}}", "jsonl:1"),
    ];
    for (text, field) in cases {
        let error = parse_jsonl(text).expect_err(text);
        assert_eq!(error.field, field, "{text}: {error}");
    }
    let error = parse_rows(vec![json!({"item": {}}), json!({"item": []})]).expect_err("bad");
    assert_eq!(error.field, "rows[1].item");
}

#[test]
fn names_are_checked() {
    for good in ["a", "planner-golden.v2", "0_rows"] {
        assert!(check_name(good).is_ok(), "{good}");
    }
    let long = "a".repeat(101);
    for bad in ["", "Upper", "-lead", "sp ace", "slash/x", long.as_str()] {
        assert!(check_name(bad).is_err(), "{bad}");
    }
}
