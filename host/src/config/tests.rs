//! The settings' validation: defaults, every refusal naming its variable, secrets never shown.

use super::*;

fn settings(edit: impl FnOnce(&mut ConfigArgs)) -> Result<Settings, ConfigError> {
    let mut args = ConfigArgs::default();
    edit(&mut args);
    Settings::from_args(&args)
}

#[test]
fn defaults_are_the_documented_ones() {
    let s = settings(|_| {}).expect("defaults are valid");
    assert_eq!(s.bind.to_string(), DEFAULT_BIND);
    assert_eq!(s.data_dir, PathBuf::from("./data"));
    assert_eq!(s.database_url.expose(), "sqlite://./data/flywheel.db");
    assert_eq!(s.graders_dir, PathBuf::from("./data/graders"));
    assert!(s.enable_prompt_optimization);
    assert_eq!(s.ab_test_traffic_split, 0.5);
    assert_eq!(s.ab_evaluate_interval, DEFAULT_AB_EVALUATE);
    assert_eq!(s.min_samples_for_optimization, 50);
    assert!(s.tokens.is_empty());
    assert_eq!(s.grader_limits, GraderLimits::default());
    assert_eq!(s.request_timeout, Duration::from_secs(30));
    let given = settings(|a| a.request_timeout_secs = Some("7".into())).expect("7 s is valid");
    assert_eq!(given.request_timeout, Duration::from_secs(7));
    s.check_bind_is_safe()
        .expect("loopback without tokens is allowed");
}

type Edit = Box<dyn FnOnce(&mut ConfigArgs)>;

#[test]
fn each_bad_value_names_its_variable_and_the_accepted_values() {
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "DATABASE_URL",
            Box::new(|a| a.database_url = Some("mysql://x".into())),
            "sqlite://",
        ),
        (
            "FLYWHEEL_BIND",
            Box::new(|a| a.bind = Some("localhost".into())),
            "IP:PORT",
        ),
        (
            "FLYWHEEL_TOKENS",
            Box::new(|a| a.tokens = Some("a:god:12345678".into())),
            "read, agent or admin",
        ),
        (
            "ENABLE_PROMPT_OPTIMIZATION",
            Box::new(|a| a.enable_prompt_optimization = Some("maybe".into())),
            "true, false",
        ),
        (
            "PROMPT_AB_TEST_TRAFFIC_SPLIT",
            Box::new(|a| a.ab_test_traffic_split = Some("1.5".into())),
            "from 0 to 1",
        ),
        (
            "PROMPT_AB_TEST_TRAFFIC_SPLIT",
            Box::new(|a| a.ab_test_traffic_split = Some("half".into())),
            "from 0 to 1",
        ),
        (
            "FLYWHEEL_AB_EVALUATE_SECS",
            Box::new(|a| a.ab_evaluate_secs = Some("0".into())),
            "from 1 to 86400",
        ),
        (
            "PROMPT_MIN_SAMPLES_FOR_OPTIMIZATION",
            Box::new(|a| a.min_samples_for_optimization = Some("-3".into())),
            "whole number",
        ),
        (
            "OPENAI_BASE_URL",
            Box::new(|a| a.openai_base_url = Some("ftp://x".into())),
            "http",
        ),
        (
            "FLYWHEEL_LOG_FORMAT",
            Box::new(|a| a.log_format = Some("xml".into())),
            "text, json",
        ),
        (
            "FLYWHEEL_LLM_TIMEOUT_SECS",
            Box::new(|a| a.llm_timeout_secs = Some("0".into())),
            "1 to 3600",
        ),
        (
            "FLYWHEEL_REQUEST_TIMEOUT_SECS",
            Box::new(|a| a.request_timeout_secs = Some("0".into())),
            "1 to 3600",
        ),
        (
            "FLYWHEEL_REQUEST_TIMEOUT_SECS",
            Box::new(|a| a.request_timeout_secs = Some("30s".into())),
            "1 to 3600",
        ),
        (
            "FLYWHEEL_LLM_MAX_RETRIES",
            Box::new(|a| a.llm_max_retries = Some("many".into())),
            "0 to 10",
        ),
        (
            "FLYWHEEL_LLM_MAX_CONCURRENCY",
            Box::new(|a| a.llm_max_concurrency = Some("0".into())),
            "1 to 1024",
        ),
        (
            "FLYWHEEL_LLM_ENDPOINTS",
            Box::new(|a| a.llm_endpoints = Some("Bad Name=http://x/v1".into())),
            "name=URL",
        ),
        (
            "FLYWHEEL_LLM_RUN_TOKEN_BUDGET",
            Box::new(|a| a.llm_run_token_budget = Some("0".into())),
            "whole number of tokens",
        ),
        (
            "FLYWHEEL_TOKENS_FILE",
            Box::new(|a| a.tokens_file = Some("/nonexistent/tokens".into())),
            "readable file",
        ),
        (
            "FLYWHEEL_GRADER_TIMEOUT_MS",
            Box::new(|a| a.grader_timeout_ms = Some("0".into())),
            "10 to 600000",
        ),
        (
            "FLYWHEEL_GRADER_MEMORY_MB",
            Box::new(|a| a.grader_memory_mb = Some("lots".into())),
            "2 to 4096",
        ),
        (
            "FLYWHEEL_GRADER_MAX_CONCURRENCY",
            Box::new(|a| a.grader_max_concurrency = Some("1000".into())),
            "1 to 256",
        ),
    ];
    for (variable, edit, accepted) in cases {
        let err = settings(edit).expect_err(variable).to_string();
        assert!(err.contains(variable), "{variable}: {err}");
        assert!(err.contains(accepted), "{variable}: {err}");
    }
}

#[test]
fn secrets_do_not_appear_in_errors_or_debug() {
    let err = settings(|a| a.tokens = Some("ok:read:abcdefgh,bad:nope:hunter2hunter2".into()))
        .expect_err("bad role")
        .to_string();
    assert!(!err.contains("hunter2"), "{err}");
    let s = settings(|a| {
        a.tokens = Some("ok:admin:abcdefgh".into());
        a.openai_api_key = Some("sk-very-secret".into());
        a.database_url = Some("postgres://u:pgpass@h/db".into());
    })
    .expect("valid");
    let debug = format!("{s:?}");
    for secret in ["abcdefgh", "sk-very-secret", "pgpass"] {
        assert!(!debug.contains(secret), "{secret} leaked: {debug}");
    }
    let raw = ConfigArgs {
        tokens: Some("ok:admin:abcdefgh".into()),
        openai_api_key: Some("sk-very-secret".into()),
        database_url: Some("postgres://u:pgpass@h/db".into()),
        ..ConfigArgs::default()
    };
    let debug = format!("{raw:?}");
    for secret in ["abcdefgh", "sk-very-secret", "pgpass"] {
        assert!(
            !debug.contains(secret),
            "{secret} leaked from raw args: {debug}"
        );
    }
}

#[test]
fn duplicate_token_names_or_secrets_are_refused() {
    assert!(settings(|a| a.tokens = Some("a:read:abcdefgh,a:admin:zyxwvuts".into())).is_err());
    assert!(settings(|a| a.tokens = Some("a:read:abcdefgh,b:admin:abcdefgh".into())).is_err());
}

#[test]
fn non_loopback_without_tokens_is_refused() {
    let s = settings(|a| a.bind = Some("0.0.0.0:8080".into())).expect("parses");
    let err = s.check_bind_is_safe().expect_err("open to the network");
    assert!(err.to_string().contains("FLYWHEEL_TOKENS"), "{err}");
    let s = settings(|a| {
        a.bind = Some("0.0.0.0:8080".into());
        a.tokens = Some("ops:admin:abcdefgh".into());
    })
    .expect("parses");
    s.check_bind_is_safe().expect("tokens make it safe");
}

#[test]
fn tokens_from_the_variable_and_the_file_are_combined() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("tokens");
    std::fs::write(
        &file,
        "# operators
ops:admin:file-secret-1

bot:agent:file-secret-2
",
    )
    .expect("write tokens file");
    let s = settings(|a| {
        a.tokens = Some("reader:read:env-secret-1".into());
        a.tokens_file = Some(file.clone());
    })
    .expect("valid");
    let names: Vec<(&str, Role)> = s.tokens.iter().map(|t| (t.name.as_str(), t.role)).collect();
    assert_eq!(
        names,
        vec![
            ("reader", Role::Read),
            ("ops", Role::Admin),
            ("bot", Role::Agent)
        ]
    );
    std::fs::write(
        &file,
        "ops:admin:file-secret-1
broken line
",
    )
    .expect("write");
    let err = settings(|a| a.tokens_file = Some(file.clone()))
        .expect_err("bad line")
        .to_string();
    assert!(
        err.contains("FLYWHEEL_TOKENS_FILE") && err.contains("line 2"),
        "{err}"
    );
}

#[test]
fn data_dir_moves_the_default_database_and_graders_dir() {
    let s = settings(|a| a.data_dir = Some("/srv/fw".into())).expect("valid");
    assert_eq!(s.database_url.expose(), "sqlite:///srv/fw/flywheel.db");
    assert_eq!(s.graders_dir, PathBuf::from("/srv/fw/graders"));
}
