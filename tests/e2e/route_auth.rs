//! Walks the router's route table ([`flywheel::api::ROUTES`]) and proves every non-public route
//! refuses a caller without a token, with an unknown token and with each role below the one it
//! needs, and admits the role it needs.

use flywheel::api::{Access, ROUTES};
use flywheel::config::Role;
use flywheel_e2e::{
    ADMIN_TOKEN, AGENT_TOKEN, ANNOTATOR_TOKEN, Backend, READ_TOKEN, Req, TestApp, TestDb,
};
use reqwest::StatusCode;

fn token_of(role: Role) -> &'static str {
    match role {
        Role::Read => READ_TOKEN,
        Role::Agent => AGENT_TOKEN,
        Role::Annotator => ANNOTATOR_TOKEN,
        Role::Admin => ADMIN_TOKEN,
    }
}

/// A concrete path for a pattern: `{id}` and `{promptId}` → planner, `{version}` → 1, `{name}`
/// → a seeded grader, plus required queries.
fn concrete(path: &str) -> String {
    let path = path
        .replace("{id}", "planner")
        .replace("{promptId}", "planner")
        .replace("{version}", "1")
        .replace("{name}", "files_match");
    assert!(!path.contains('{'), "unhandled path parameter in {path}");
    if path.ends_with("/resolve") {
        format!("{path}?task_id=route-walk")
    } else {
        path
    }
}

#[tokio::test]
async fn every_non_public_route_refuses_missing_tokens_and_low_roles() {
    let db = TestDb::new(Backend::Sqlite).await;
    let app = TestApp::start(&db).await;
    let mut checked = 0;
    for spec in ROUTES {
        let path = concrete(spec.path);
        let request = |token: Option<&str>| {
            let req = flywheel_e2e::Req::new(spec.method.clone(), path.clone(), token);
            // A valid body where one is expected, so that only auth can refuse it.
            if spec.method == reqwest::Method::POST && spec.path.ends_with("/versions") {
                req.json(r#"{"content":"Route walk for {{task_title}}"}"#)
            } else {
                req
            }
        };
        match spec.access {
            Access::Public => {
                let answer = app.send(&request(None)).await;
                assert_eq!(
                    answer.status,
                    StatusCode::OK,
                    "{} {} is public",
                    spec.method,
                    spec.path
                );
            }
            Access::Needs(needed) => {
                for unauthenticated in [
                    request(None),
                    request(Some("wrong-secret-value")),
                    request(None).authorization("Basic YWRtaW46YWRtaW4="),
                ] {
                    let answer = app.send(&unauthenticated).await;
                    assert_eq!(
                        answer.status,
                        StatusCode::UNAUTHORIZED,
                        "{} {}",
                        spec.method,
                        path
                    );
                    assert_eq!(answer.error_code(), Some("unauthorized"));
                    assert_eq!(answer.www_authenticate.as_deref(), Some("Bearer"));
                }
                for low in Role::ALL.into_iter().filter(|r| *r < needed) {
                    let answer = app.send(&request(Some(token_of(low)))).await;
                    assert_eq!(
                        answer.status,
                        StatusCode::FORBIDDEN,
                        "{} {} with role {low}",
                        spec.method,
                        path
                    );
                    assert_eq!(answer.error_code(), Some("forbidden"));
                }
                for enough in Role::ALL.into_iter().filter(|r| *r >= needed) {
                    // Admitted: whatever the route then answers (a rollback with nothing to roll
                    // back to is a 409), it is not an auth refusal and not a server error.
                    let answer = app.send(&request(Some(token_of(enough)))).await;
                    let refused = matches!(
                        answer.status,
                        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
                    );
                    assert!(
                        !refused && !answer.status.is_server_error(),
                        "{} {} with role {enough}: {} {}",
                        spec.method,
                        path,
                        answer.status,
                        answer.text
                    );
                }
            }
        }
        checked += 1;
    }
    assert_eq!(checked, ROUTES.len());
    assert!(ROUTES.iter().filter(|r| r.access != Access::Public).count() >= 9);
}

#[tokio::test]
async fn without_configured_tokens_anonymous_callers_may_read_but_not_write() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut settings = db.settings();
    settings.tokens.clear();
    let app = TestApp::start_with(settings).await;
    let list = app.send(&Req::get("/api/prompts", None)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let deploy = app
        .send(&Req::post("/api/prompts/planner/deploy/1", None))
        .await;
    assert_eq!(deploy.status, StatusCode::FORBIDDEN, "{}", deploy.text);
    let resolve = app
        .send(&Req::get("/api/prompts/planner/resolve?task_id=t", None))
        .await;
    assert_eq!(resolve.status, StatusCode::FORBIDDEN, "{}", resolve.text);
}
