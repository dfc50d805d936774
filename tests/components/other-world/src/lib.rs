//! A test component that exports another world entirely (no `flywheel:grader/grading`): the
//! host must refuse it at load time.

wit_bindgen::generate!({
    inline: r#"
        package other:thing@1.0.0;

        interface run {
            go: func(input: string) -> u32;
        }

        world other {
            export run;
        }
    "#,
    world: "other",
});

struct Other;

impl exports::other::thing::run::Guest for Other {
    fn go(input: String) -> u32 {
        input.len() as u32
    }
}

export!(Other);
