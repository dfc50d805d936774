//! The model client against the fake OpenAI-compatible server on 127.0.0.1: answers, structured
//! output, malformed answers, rate limits, server errors, stalls, the concurrency limit, the
//! token budget, embeddings, named endpoints, and the API key staying out of every log line and
//! error message.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fake_model::{Behaviour, FakeModel, UsageMode, embedding_for, last_user_message};
use flywheel::llm::session::{MAX_EMBED_INPUTS, MAX_REQUEST_TEXT_BYTES};
use flywheel::llm::{
    ChatMessage, ChatRequest, EmbedRequest, EndpointSettings, LlmClient, LlmError, LlmSession,
    LlmSettings, RunBudget, Secret, Usage, drive_completions,
};
use serde_json::{Value, json};

const KEY: &str = "sk-test-flywheel-0123456789abcdef";
const OTHER_KEY: &str = "sk-other-endpoint-fedcba9876543210";

/// Settings pointing at `fake` with the test key and short waits, so retry tests stay fast.
fn settings_for(fake: &FakeModel) -> LlmSettings {
    let endpoint = EndpointSettings::new(&fake.base_url(), Some(Secret::new(KEY)))
        .expect("the fake's URL is valid");
    LlmSettings {
        timeout_per_call: Duration::from_secs(10),
        max_retries: 3,
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(50),
        ..LlmSettings::with_endpoint(endpoint)
    }
}

fn client_for(fake: &FakeModel) -> LlmClient {
    LlmClient::new(settings_for(fake)).expect("valid settings")
}

fn ask(text: &str) -> ChatRequest {
    ChatRequest::new(vec![
        ChatMessage::system("You grade."),
        ChatMessage::user(text),
    ])
}

#[tokio::test]
async fn an_answer_returns_its_content_and_usage_and_charges_the_budget() {
    let fake = FakeModel::start().expect("fake server");
    fake.set_default(Behaviour::answer("the answer"))
        .set_usage(UsageMode::Fixed(12, 7));
    let client = client_for(&fake);
    let budget = RunBudget::with_limit(1000);

    let response = client
        .complete(&ask("question"), &budget)
        .await
        .expect("answered");

    assert_eq!(response.content, "the answer");
    assert_eq!(response.model, flywheel::llm::settings::DEFAULT_MODEL);
    assert_eq!(response.usage, Usage::new(12, 7));
    assert_eq!(response.attempts, 1);
    assert_eq!(budget.used(), 19);
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some(format!("Bearer {KEY}").as_str())
    );
    let body = requests[0].json.as_ref().expect("a JSON body");
    assert_eq!(
        body["messages"],
        json!([{"role": "system", "content": "You grade."}, {"role": "user", "content": "question"}])
    );
    assert!(
        body.get("response_format").is_none(),
        "no schema, no response_format: {body}"
    );
}

#[tokio::test]
async fn a_schema_asks_for_strict_structured_output_and_options_are_sent() {
    let fake = FakeModel::start().expect("fake server");
    // Answers as score_model's {result, steps} with a result derived from the question, so the
    // test sees the request really reached the answer.
    fake.set_default(Behaviour::answer_with(|request| {
        let question = last_user_message(request).unwrap_or_default();
        json!({"result": question.len(), "steps": [{"description": "counted", "conclusion": "done"}]})
            .to_string()
    }));
    let client = client_for(&fake);
    let schema = json!({
        "type": "object",
        "properties": {"result": {"type": "number"}, "steps": {"type": "array"}},
        "required": ["result", "steps"],
        "additionalProperties": false
    });
    let request = ChatRequest {
        model: Some("gpt-4o-2024-08-06".to_owned()),
        json_schema: Some(schema.to_string()),
        temperature: Some(0.0),
        top_p: Some(1.0),
        seed: Some(42),
        max_completion_tokens: Some(256),
        reasoning_effort: Some("low".to_owned()),
        ..ask("four")
    };

    let response = client
        .complete(&request, &RunBudget::unlimited())
        .await
        .expect("answered");

    let answer: Value = serde_json::from_str(&response.content).expect("JSON answer");
    assert_eq!(answer["result"], 4);
    assert_eq!(response.model, "gpt-4o-2024-08-06");
    let body = fake.requests()[0].json.clone().expect("a JSON body");
    assert_eq!(body["model"], "gpt-4o-2024-08-06");
    assert_eq!(
        body["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "grader_response", "schema": schema, "strict": true}})
    );
    assert_eq!(body["temperature"], 0.0);
    assert_eq!(body["top_p"], 1.0);
    assert_eq!(body["seed"], 42);
    assert_eq!(body["max_completion_tokens"], 256);
    assert_eq!(body["reasoning_effort"], "low");
}

#[tokio::test]
async fn an_invalid_schema_fails_before_any_call() {
    let fake = FakeModel::start().expect("fake server");
    let client = client_for(&fake);
    let request = ChatRequest {
        json_schema: Some("{\"type\": ".to_owned()),
        ..ask("x")
    };
    let error = client
        .complete(&request, &RunBudget::unlimited())
        .await
        .expect_err("refused");
    assert!(
        matches!(&error, LlmError::Failed(m) if m.contains("json-schema is not valid JSON")),
        "{error}"
    );
    let error = client
        .complete(&ChatRequest::new(vec![]), &RunBudget::unlimited())
        .await
        .expect_err("no messages");
    assert!(
        matches!(&error, LlmError::Failed(m) if m.contains("no messages")),
        "{error}"
    );
    assert_eq!(fake.calls(), 0);
}

#[tokio::test]
async fn a_malformed_answer_fails_clearly_and_is_not_retried() {
    let fake = FakeModel::start().expect("fake server");
    fake.set_default(Behaviour::Malformed(
        "{\"choices\": [{\"message\": ".to_owned(),
    ));
    let client = client_for(&fake);

    let error = client
        .complete(&ask("x"), &RunBudget::unlimited())
        .await
        .expect_err("malformed");

    match &error {
        LlmError::Failed(message) => assert!(
            message.contains("not a valid chat completion"),
            "unclear message: {message}"
        ),
        other => panic!("expected failed, got {other:?}"),
    }
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn a_429_with_retry_after_is_retried_after_the_wait_it_asks_for() {
    let fake = FakeModel::start().expect("fake server");
    fake.push(Behaviour::rate_limited_secs(1));
    fake.set_default(Behaviour::answer("after the wait"));
    let settings = LlmSettings {
        backoff_max: Duration::from_secs(5),
        ..settings_for(&fake)
    };
    let client = LlmClient::new(settings).expect("valid settings");

    let response = client
        .complete(&ask("x"), &RunBudget::unlimited())
        .await
        .expect("answered after one retry");

    assert_eq!(response.content, "after the wait");
    assert_eq!(response.attempts, 2);
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    let gap = requests[1].received_at - requests[0].received_at;
    // The jittered backoff alone would wait at most 5 ms here; only Retry-After explains 1 s.
    assert!(
        gap >= Duration::from_millis(950),
        "second call came {gap:?} after the first"
    );
}

#[tokio::test]
async fn an_http_date_retry_after_is_honoured_too() {
    let fake = FakeModel::start().expect("fake server");
    let when = chrono::Utc::now() + chrono::Duration::seconds(2);
    fake.push(Behaviour::RateLimited {
        retry_after: Some(when.format("%a, %d %b %Y %H:%M:%S GMT").to_string()),
    });
    let settings = LlmSettings {
        backoff_max: Duration::from_secs(5),
        ..settings_for(&fake)
    };
    let client = LlmClient::new(settings).expect("valid settings");

    client
        .complete(&ask("x"), &RunBudget::unlimited())
        .await
        .expect("answered after one retry");

    let requests = fake.requests();
    let gap = requests[1].received_at - requests[0].received_at;
    // The date has one-second resolution: at least one second of the two must remain.
    assert!(
        gap >= Duration::from_millis(950),
        "second call came {gap:?} after the first"
    );
}

#[tokio::test]
async fn a_retry_after_beyond_the_time_limit_fails_at_once_as_rate_limited() {
    let fake = FakeModel::start().expect("fake server");
    fake.set_default(Behaviour::rate_limited_secs(60));
    let settings = LlmSettings {
        timeout_per_call: Duration::from_secs(2),
        backoff_max: Duration::from_secs(120),
        ..settings_for(&fake)
    };
    let client = LlmClient::new(settings).expect("valid settings");
    let started = Instant::now();

    let error = client
        .complete(&ask("x"), &RunBudget::unlimited())
        .await
        .expect_err("rate limited");

    assert!(matches!(error, LlmError::RateLimited(_)), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(1), "it waited");
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn two_server_errors_then_an_answer_succeeds_on_the_third_attempt() {
    let fake = FakeModel::start().expect("fake server");
    fake.push_times(Behaviour::server_error(), 2);
    fake.set_default(Behaviour::answer("third time"));
    let client = client_for(&fake);

    let response = client
        .complete(&ask("x"), &RunBudget::unlimited())
        .await
        .expect("answered");

    assert_eq!(response.content, "third time");
    assert_eq!(response.attempts, 3);
    assert_eq!(fake.calls(), 3);
}

#[tokio::test]
async fn endless_server_errors_fail_after_max_retries() {
    let fake = FakeModel::start().expect("fake server");
    fake.set_default(Behaviour::server_error());
    let settings = LlmSettings {
        max_retries: 2,
        ..settings_for(&fake)
    };
    let client = LlmClient::new(settings).expect("valid settings");

    let error = client
        .complete(&ask("x"), &RunBudget::unlimited())
        .await
        .expect_err("fails");

    match &error {
        LlmError::Failed(message) => {
            assert!(message.contains("500"), "{message}");
            assert!(
                message.contains("The server had an error"),
                "endpoint message missing: {message}"
            );
        }
        other => panic!("expected failed, got {other:?}"),
    }
    assert_eq!(fake.calls(), 3, "one attempt and two retries");
}

#[tokio::test]
async fn endless_rate_limits_end_as_rate_limited_after_max_retries() {
    let fake = FakeModel::start().expect("fake server");
    fake.set_default(Behaviour::RateLimited { retry_after: None });
    let client = client_for(&fake);

    let error = client
        .complete(&ask("x"), &RunBudget::unlimited())
        .await
        .expect_err("rate limited");

    assert!(
        matches!(&error, LlmError::RateLimited(m) if m.contains("Rate limit reached")),
        "{error:?}"
    );
    assert_eq!(fake.calls(), 4);
}

#[tokio::test]
async fn a_client_error_is_not_retried() {
    let fake = FakeModel::start().expect("fake server");
    fake.set_default(Behaviour::Status {
        status: 400,
        message: "Invalid value for 'temperature'".to_owned(),
    });
    let client = client_for(&fake);

    let error = client
        .complete(&ask("x"), &RunBudget::unlimited())
        .await
        .expect_err("fails");

    assert!(
        matches!(&error, LlmError::Failed(m) if m.contains("400") && m.contains("Invalid value for 'temperature'")),
        "{error:?}"
    );
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn an_embeddings_request_without_inputs_fails_before_any_call() {
    let fake = FakeModel::start().expect("fake server");
    let client = client_for(&fake);
    let error = client
        .embed(
            &EmbedRequest {
                inputs: Vec::new(),
                ..EmbedRequest::default()
            },
            &RunBudget::unlimited(),
        )
        .await
        .expect_err("no inputs");
    assert!(
        matches!(&error, LlmError::Failed(m) if m.contains("no inputs")),
        "{error:?}"
    );
    assert_eq!(fake.calls(), 0);
}

#[tokio::test]
async fn a_stalled_endpoint_times_out() {
    let fake = FakeModel::start().expect("fake server");
    fake.set_default(Behaviour::Stall);
    let settings = LlmSettings {
        timeout_per_call: Duration::from_millis(300),
        ..settings_for(&fake)
    };
    let client = LlmClient::new(settings).expect("valid settings");
    let started = Instant::now();

    let error = client
        .complete(&ask("x"), &RunBudget::unlimited())
        .await
        .expect_err("timed out");

    assert_eq!(error, LlmError::Timeout(Duration::from_millis(300)));
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(290), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn a_slow_answer_within_the_limit_is_not_a_timeout() {
    let fake = FakeModel::start().expect("fake server");
    fake.set_default(Behaviour::Delayed(
        Duration::from_millis(200),
        Box::new(Behaviour::answer("slow")),
    ));
    let client = client_for(&fake);
    let response = client
        .complete(&ask("x"), &RunBudget::unlimited())
        .await
        .expect("answered");
    assert_eq!(response.content, "slow");
}

#[tokio::test]
async fn the_concurrency_limit_caps_calls_in_flight() {
    let fake = FakeModel::start().expect("fake server");
    fake.set_latency(Duration::from_millis(100));
    let settings = LlmSettings {
        max_concurrency: 2,
        ..settings_for(&fake)
    };
    let client = LlmClient::new(settings).expect("valid settings");
    let budget = RunBudget::unlimited();
    let request = ask("x");

    let results =
        futures::future::join_all((0..8).map(|_| client.complete(&request, &budget))).await;

    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(fake.calls(), 8);
    assert_eq!(fake.max_in_flight(), 2, "the limit is 2 and 8 calls queued");
}

#[tokio::test]
async fn a_spent_budget_stops_further_calls() {
    let fake = FakeModel::start().expect("fake server");
    fake.set_usage(UsageMode::Fixed(10, 10));
    let client = client_for(&fake);
    let budget = RunBudget::with_limit(30);

    client.complete(&ask("1"), &budget).await.expect("first");
    assert_eq!(budget.used(), 20);
    assert!(!budget.is_exhausted());
    // Starts with 10 tokens left and overshoots: calls in flight are charged in full.
    client.complete(&ask("2"), &budget).await.expect("second");
    assert_eq!(budget.used(), 40);
    assert!(budget.is_exhausted());
    let error = client
        .complete(&ask("3"), &budget)
        .await
        .expect_err("spent");
    assert_eq!(error, LlmError::BudgetExhausted);
    let error = client
        .embed(
            &EmbedRequest {
                inputs: vec!["x".to_owned()],
                ..EmbedRequest::default()
            },
            &budget,
        )
        .await
        .expect_err("spent");
    assert_eq!(error, LlmError::BudgetExhausted);
    assert_eq!(fake.calls(), 2, "no call after the budget was spent");
}

#[tokio::test]
async fn an_answer_without_usage_is_still_charged_an_estimate() {
    let fake = FakeModel::start().expect("fake server");
    fake.set_usage(UsageMode::Omitted)
        .set_default(Behaviour::answer("twelve chars"));
    let client = client_for(&fake);
    let budget = RunBudget::unlimited();

    let response = client
        .complete(&ask("sixteen chars!!!"), &budget)
        .await
        .expect("answered");

    // "You grade." (10) + "sixteen chars!!!" (16) = 26 chars ≈ 7 tokens; 12 chars = 3 tokens.
    assert_eq!(response.usage, Usage::new(7, 3));
    assert_eq!(budget.used(), 10);
}

#[tokio::test]
async fn embeddings_come_back_one_per_input_in_order() {
    let fake = FakeModel::start().expect("fake server");
    fake.set_usage(UsageMode::Fixed(9, 0));
    let client = client_for(&fake);
    let budget = RunBudget::unlimited();
    let inputs = vec![
        "the planner lists files".to_owned(),
        "a completely different text".to_owned(),
    ];

    let embeddings = client
        .embed(
            &EmbedRequest {
                model: Some("text-embedding-3-large".to_owned()),
                endpoint: None,
                inputs: inputs.clone(),
            },
            &budget,
        )
        .await
        .expect("embedded");

    assert_eq!(
        embeddings.vectors,
        vec![embedding_for(&inputs[0]), embedding_for(&inputs[1])]
    );
    assert_eq!(embeddings.model, "text-embedding-3-large");
    assert_eq!(embeddings.usage, Usage::new(9, 0));
    assert_eq!(budget.used(), 9);
    let request = &fake.requests()[0];
    assert_eq!(request.path, "/v1/embeddings");
    let body = request.json.as_ref().expect("JSON body");
    assert_eq!(body["input"], json!(inputs));
    assert_eq!(body["model"], "text-embedding-3-large");
}

#[tokio::test]
async fn malformed_embeddings_fail_clearly() {
    let fake = FakeModel::start().expect("fake server");
    fake.set_default(Behaviour::Malformed(
        r#"{"data": [{"index": 0, "embedding": [0.5]}]}"#.to_owned(),
    ));
    let client = client_for(&fake);
    let error = client
        .embed(
            &EmbedRequest {
                inputs: vec!["a".to_owned(), "b".to_owned()],
                ..EmbedRequest::default()
            },
            &RunBudget::unlimited(),
        )
        .await
        .expect_err("one vector for two inputs");
    assert!(
        matches!(&error, LlmError::Failed(m) if m.contains("1 embeddings for 2 inputs")),
        "{error:?}"
    );
}

#[tokio::test]
async fn no_endpoint_or_an_unknown_name_is_not_configured() {
    let fake = FakeModel::start().expect("fake server");
    let unconfigured = LlmClient::new(LlmSettings::default()).expect("valid settings");
    let error = unconfigured
        .complete(&ask("x"), &RunBudget::unlimited())
        .await
        .expect_err("not configured");
    assert!(matches!(error, LlmError::NotConfigured(_)), "{error:?}");
    let error = unconfigured
        .embed(
            &EmbedRequest {
                inputs: vec!["x".to_owned()],
                ..EmbedRequest::default()
            },
            &RunBudget::unlimited(),
        )
        .await
        .expect_err("not configured");
    assert!(matches!(error, LlmError::NotConfigured(_)), "{error:?}");

    let client = client_for(&fake);
    assert!(client.is_configured(None));
    assert!(!client.is_configured(Some("nowhere")));
    let error = client
        .complete(
            &ChatRequest {
                endpoint: Some("nowhere".to_owned()),
                ..ask("x")
            },
            &RunBudget::unlimited(),
        )
        .await
        .expect_err("unknown endpoint");
    assert!(
        matches!(&error, LlmError::NotConfigured(m) if m.contains("nowhere")),
        "{error:?}"
    );
    assert_eq!(fake.calls(), 0);
}

#[tokio::test]
async fn a_named_endpoint_gets_its_own_key_and_the_default_key_goes_nowhere_else() {
    let default = FakeModel::start().expect("fake server");
    let named = FakeModel::start().expect("fake server");
    named.set_default(Behaviour::answer("from the named endpoint"));
    let mut settings = settings_for(&default);
    settings.endpoints.insert(
        "local".to_owned(),
        EndpointSettings::new(&named.base_url(), Some(Secret::new(OTHER_KEY)))
            .expect("valid")
            .with_default_model("llama-3.1-8b"),
    );
    let client = LlmClient::new(settings).expect("valid settings");

    let response = client
        .complete(
            &ChatRequest {
                endpoint: Some("local".to_owned()),
                ..ask("x")
            },
            &RunBudget::unlimited(),
        )
        .await
        .expect("answered");

    assert_eq!(response.content, "from the named endpoint");
    assert_eq!(response.model, "llama-3.1-8b");
    assert_eq!(default.calls(), 0);
    let requests = named.requests();
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some(format!("Bearer {OTHER_KEY}").as_str())
    );
    let everything_sent: String = requests
        .iter()
        .flat_map(|r| {
            r.headers
                .iter()
                .map(|(n, v)| format!("{n}: {v}\n"))
                .chain([r.body.clone()])
        })
        .collect();
    assert!(
        !everything_sent.contains(KEY),
        "the default key was sent to another endpoint"
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_fails_after_retries_as_a_connection_error() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let endpoint = EndpointSettings::new(
        &format!("http://127.0.0.1:{port}/v1"),
        Some(Secret::new(KEY)),
    )
    .expect("valid");
    let settings = LlmSettings {
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(20),
        max_retries: 2,
        ..LlmSettings::with_endpoint(endpoint)
    };
    let client = LlmClient::new(settings).expect("valid settings");

    let error = client
        .complete(&ask("x"), &RunBudget::unlimited())
        .await
        .expect_err("unreachable");

    assert!(
        matches!(&error, LlmError::Failed(m) if m.contains("cannot reach endpoint `default`")),
        "{error:?}"
    );
}

/// A `tracing` writer that keeps everything in memory for inspection.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut bytes) = self.0.lock() {
            bytes.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn the_api_key_never_appears_in_logs_or_errors_even_when_the_endpoint_echoes_it() {
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let fake = FakeModel::start().expect("fake server");
    let named = FakeModel::start().expect("fake server");
    // Every way an endpoint might hand the key back: OpenAI's 401 echo, a 500 and a 429 whose
    // messages quote it (retried, so logged), a malformed body containing it, and a named
    // endpoint's 401 echo of its own key.
    fake.push(Behaviour::EchoKeyInError)
        .push(Behaviour::Status {
            status: 500,
            message: format!("upstream rejected Bearer {KEY}"),
        })
        .push(Behaviour::RateLimited { retry_after: None })
        .push(Behaviour::Status {
            status: 500,
            message: format!("proxy saw key={KEY}"),
        })
        .push(Behaviour::Malformed(format!("{{\"echo\": \"{KEY}\"")))
        .push(Behaviour::Status {
            status: 403,
            message: format!("key {KEY} has no access to model"),
        });
    named.set_default(Behaviour::EchoKeyInError);
    let mut settings = LlmSettings {
        max_retries: 1,
        ..settings_for(&fake)
    };
    settings.endpoints.insert(
        "named".to_owned(),
        EndpointSettings::new(&named.base_url(), Some(Secret::new(OTHER_KEY))).expect("valid"),
    );
    let client = LlmClient::new(settings.clone()).expect("valid settings");
    let budget = RunBudget::unlimited();

    let mut errors = Vec::new();
    for _ in 0..4 {
        errors.push(
            client
                .complete(&ask("x"), &budget)
                .await
                .expect_err("scripted failure"),
        );
    }
    errors.push(
        client
            .complete(
                &ChatRequest {
                    endpoint: Some("named".to_owned()),
                    ..ask("x")
                },
                &budget,
            )
            .await
            .expect_err("scripted failure"),
    );
    errors.push(
        client
            .complete(
                &ChatRequest {
                    endpoint: Some(format!("{KEY}-as-endpoint-name")),
                    ..ask("x")
                },
                &budget,
            )
            .await
            .expect_err("unknown endpoint"),
    );
    assert_eq!(fake.calls(), 6, "every scripted answer was served");
    assert!(
        fake.requests()
            .iter()
            .all(|r| r.authorization.as_deref() == Some(&format!("Bearer {KEY}"))),
        "the key did reach its endpoint"
    );

    let error_text: String = errors.iter().map(|e| format!("{e}\n{e:?}\n")).collect();
    let log_text = logs.text();
    let debug_text = format!("{settings:?}\n{client:?}");
    // The scan must be looking at real text: the endpoint's messages and the retries are there.
    assert!(
        error_text.contains("Incorrect API key provided: ***"),
        "{error_text}"
    );
    assert!(
        log_text.contains("upstream rejected Bearer ***"),
        "{log_text}"
    );
    assert!(
        error_text.contains("has no access to model"),
        "{error_text}"
    );
    assert!(log_text.contains("llm_call"), "{log_text}");
    assert!(log_text.contains("retrying"), "{log_text}");
    assert!(
        log_text.contains("endpoint=\"named\"") || log_text.contains("endpoint=named"),
        "{log_text}"
    );
    for key in [KEY, OTHER_KEY] {
        assert!(!error_text.contains(key), "key in an error: {error_text}");
        assert!(!log_text.contains(key), "key in the logs: {log_text}");
        assert!(
            !debug_text.contains(key),
            "key in Debug output: {debug_text}"
        );
    }
}

#[tokio::test]
async fn drive_completions_reaches_the_concurrency_ceiling() {
    let fake = FakeModel::start().expect("fake server");
    fake.set_latency(Duration::from_millis(50))
        .set_usage(UsageMode::Fixed(3, 2));
    let settings = LlmSettings {
        max_concurrency: 8,
        ..settings_for(&fake)
    };
    let client = LlmClient::new(settings).expect("valid settings");

    let report = drive_completions(&client, &ask("x"), 16, &RunBudget::unlimited()).await;

    assert_eq!(report.succeeded, 16, "{:?}", report.first_error);
    assert_eq!(report.usage, Usage::new(48, 32));
    assert_eq!(fake.max_in_flight(), 8);
    // Two waves of 8 calls at 50 ms each cannot finish sooner than 100 ms.
    assert!(
        report.elapsed >= Duration::from_millis(100),
        "{:?}",
        report.elapsed
    );
    assert!(
        report.calls_per_second() <= 161.0,
        "{}",
        report.calls_per_second()
    );
}

#[tokio::test]
async fn a_session_uses_the_graders_endpoint_and_tallies_usage_per_row() {
    let default = FakeModel::start().expect("fake server");
    let graders = FakeModel::start().expect("fake server");
    graders.set_usage(UsageMode::Fixed(5, 3));
    let mut settings = settings_for(&default);
    settings.endpoints.insert(
        "grading".to_owned(),
        EndpointSettings::new(&graders.base_url(), None).expect("valid"),
    );
    let client = LlmClient::new(settings).expect("valid settings");
    let budget = RunBudget::with_limit(1000);
    let mut session =
        LlmSession::new(client, budget.clone()).with_endpoint(Some("grading".to_owned()));

    session.complete(ask("row 1")).await.expect("answered");
    assert_eq!(session.take_usage(), Usage::new(5, 3));
    session.complete(ask("row 2")).await.expect("answered");
    let vectors = session
        .embed(None, vec!["text".to_owned()])
        .await
        .expect("embedded");

    assert_eq!(vectors, vec![embedding_for("text")]);
    assert_eq!(session.usage(), Usage::new(10, 3));
    assert_eq!(session.calls(), 3);
    assert_eq!(budget.used(), 21);
    assert_eq!(default.calls(), 0);
    assert_eq!(graders.calls(), 3);
    assert!(
        graders.requests().iter().all(|r| r.authorization.is_none()),
        "an endpoint without a key gets no Authorization header"
    );
}

#[tokio::test]
async fn a_session_refuses_oversized_requests_and_answers_not_configured_without_a_client() {
    let fake = FakeModel::start().expect("fake server");
    let mut session = LlmSession::new(client_for(&fake), RunBudget::unlimited());

    let error = session
        .embed(None, vec!["x".to_owned(); MAX_EMBED_INPUTS + 1])
        .await
        .expect_err("too many inputs");
    assert!(
        matches!(&error, LlmError::Failed(m) if m.contains("limit")),
        "{error:?}"
    );
    let error = session
        .complete(ask(&"x".repeat(MAX_REQUEST_TEXT_BYTES + 1)))
        .await
        .expect_err("too much text");
    assert!(
        matches!(&error, LlmError::Failed(m) if m.contains("limit")),
        "{error:?}"
    );
    assert_eq!(fake.calls(), 0);

    let mut unconfigured = LlmSession::unconfigured();
    let error = unconfigured
        .complete(ask("x"))
        .await
        .expect_err("no client");
    assert!(matches!(error, LlmError::NotConfigured(_)), "{error:?}");
    let error = unconfigured
        .embed(None, vec!["x".to_owned()])
        .await
        .expect_err("no client");
    assert!(matches!(error, LlmError::NotConfigured(_)), "{error:?}");
}

#[tokio::test]
async fn an_empty_or_huge_model_name_is_refused_before_any_call() {
    let fake = FakeModel::start().expect("fake server");
    let client = client_for(&fake);
    for model in [String::new(), "m".repeat(10_000)] {
        let error = client
            .complete(
                &ChatRequest {
                    model: Some(model.clone()),
                    ..ask("x")
                },
                &RunBudget::unlimited(),
            )
            .await
            .expect_err("refused");
        assert!(
            matches!(&error, LlmError::Failed(m) if m.contains("model name")),
            "{error:?}"
        );
        let error = client
            .embed(
                &EmbedRequest {
                    model: Some(model),
                    endpoint: None,
                    inputs: vec!["x".to_owned()],
                },
                &RunBudget::unlimited(),
            )
            .await
            .expect_err("refused");
        assert!(
            matches!(&error, LlmError::Failed(m) if m.contains("model name")),
            "{error:?}"
        );
    }
    assert_eq!(fake.calls(), 0);
}
