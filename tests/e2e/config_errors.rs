//! A bad configuration stops startup with a message naming the variable and what it accepts.

use flywheel::config::{ConfigArgs, Settings};
use flywheel_e2e::{Backend, TestDb};

#[test]
fn bad_values_name_their_variable_and_accepted_values() {
    let cases: Vec<(&str, ConfigArgs, &str)> = vec![
        (
            "PROMPT_AB_TEST_TRAFFIC_SPLIT",
            ConfigArgs {
                ab_test_traffic_split: Some("-0.1".into()),
                ..Default::default()
            },
            "0 to 1",
        ),
        (
            "PROMPT_MIN_SAMPLES_FOR_OPTIMIZATION",
            ConfigArgs {
                min_samples_for_optimization: Some("many".into()),
                ..Default::default()
            },
            "whole number",
        ),
        (
            "ENABLE_PROMPT_OPTIMIZATION",
            ConfigArgs {
                enable_prompt_optimization: Some("perhaps".into()),
                ..Default::default()
            },
            "true, false",
        ),
        (
            "FLYWHEEL_BIND",
            ConfigArgs {
                bind: Some("127.0.0.1".into()),
                ..Default::default()
            },
            "IP:PORT",
        ),
        (
            "DATABASE_URL",
            ConfigArgs {
                database_url: Some("mysql://root@localhost/db".into()),
                ..Default::default()
            },
            "postgres://",
        ),
        (
            "FLYWHEEL_TOKENS",
            ConfigArgs {
                tokens: Some("ops:superuser:abcdefghij".into()),
                ..Default::default()
            },
            "read, agent or admin",
        ),
    ];
    for (variable, args, accepted) in cases {
        let err = Settings::from_args(&args).expect_err(variable).to_string();
        assert!(err.contains(variable), "{variable}: {err}");
        assert!(err.contains(accepted), "{variable}: {err}");
    }
}

#[tokio::test]
async fn serving_a_public_address_without_tokens_is_refused_before_binding() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut settings = db.settings();
    settings.tokens.clear();
    settings.bind = "0.0.0.0:0".parse().expect("address");
    let err = flywheel::server::start(settings)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("FLYWHEEL_BIND") && err.contains("FLYWHEEL_TOKENS"),
        "{err}"
    );
}
