//! `idp.v1.Sessions` over real gRPC: every method, caller authentication, disabled and
//! deleted users, session expiry.

use std::time::Duration;

use proto::idp::v1::end_session_request::Target;
use proto::idp::v1::{CheckSessionRequest, EndSessionRequest, GetUserClaimsRequest};
use storage::testing::TestDatabase;
use tonic::Code;

use crate::fake_authz::Call;
use crate::harness::{Browser, Idp, PASSWORD, authz, start, with_credentials};

fn claims_request(subject: &str, scopes: &[&str]) -> GetUserClaimsRequest {
    GetUserClaimsRequest {
        subject: subject.into(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// Signs `username` in with a fresh browser; returns the browser and the session id authz
/// was given.
async fn signed_in(idp: &Idp, username: &str, challenge: &str) -> (Browser, String) {
    let mut browser = Browser::new(idp);
    idp.authz.login(challenge);
    assert_eq!(
        browser.login(challenge, username, PASSWORD).await.status,
        303
    );
    let session_id = idp
        .authz
        .calls()
        .iter()
        .rev()
        .find_map(|c| match c {
            Call::AcceptLogin(a) if a.login_challenge == challenge => Some(a.session_id.clone()),
            _ => None,
        })
        .unwrap();
    (browser, session_id)
}

async fn user_claims(db: TestDatabase) {
    let idp = start(db, |_| {}).await;
    let heidi = idp.user("heidi").await;
    let mut api = idp.sessions_api().await;

    let openid = api
        .get_user_claims(authz(claims_request(&heidi.id, &["openid"])))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(openid.sub, heidi.id);
    assert_eq!(openid.name, None);
    assert_eq!(openid.email, None);

    let profile = api
        .get_user_claims(authz(claims_request(&heidi.id, &["openid", "profile"])))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(profile.name.as_deref(), Some("heidi Example"));
    assert_eq!(profile.given_name.as_deref(), Some("heidi"));
    assert_eq!(profile.family_name.as_deref(), Some("Example"));
    assert_eq!(profile.preferred_username.as_deref(), Some("heidi"));
    assert_eq!(
        profile.picture.as_deref(),
        Some("https://img.example.com/heidi.png")
    );
    assert_eq!(profile.locale.as_deref(), Some("en-GB"));
    assert_eq!(profile.updated_at, Some(heidi.updated_at));
    assert_eq!(profile.email, None, "email needs the email scope");

    let email = api
        .get_user_claims(authz(claims_request(&heidi.id, &["openid email"])))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(email.email.as_deref(), Some("heidi@example.com"));
    assert_eq!(email.email_verified, Some(true));
    assert_eq!(email.name, None);

    // Disabled → PERMISSION_DENIED; deleted or unknown → NOT_FOUND; no subject → INVALID_ARGUMENT.
    idp.users.set_disabled(&heidi.id, true).await.unwrap();
    let denied = api
        .get_user_claims(authz(claims_request(&heidi.id, &["profile"])))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    idp.users.delete(&heidi.id).await.unwrap();
    for subject in [heidi.id.as_str(), "no-such-user", "heidi"] {
        let missing = api
            .get_user_claims(authz(claims_request(subject, &["profile"])))
            .await
            .unwrap_err();
        assert_eq!(missing.code(), Code::NotFound, "{subject}");
    }
    let invalid = api
        .get_user_claims(authz(claims_request("", &["profile"])))
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument);

    for (code, at_least) in [("OK", 3.0), ("NOT_FOUND", 3.0), ("PERMISSION_DENIED", 1.0)] {
        let series = format!(
            r#"grpc_server_requests_total{{service="idp.v1.Sessions",method="GetUserClaims",code="{code}"}}"#
        );
        assert!(idp.metric(&series).await >= at_least, "{series}");
    }
}

async fn check_and_end_sessions(db: TestDatabase) {
    let idp = start(db, |c| {
        c.sessions.idle_timeout = Duration::from_secs(3600);
        c.sessions.lifetime = Duration::from_secs(4 * 3600);
    })
    .await;
    let ivan = idp.user("ivan").await;
    let judy = idp.user("judy").await;
    let mut api = idp.sessions_api().await;
    let check = async |api: &mut proto::idp::v1::sessions_client::SessionsClient<_>, id: &str| {
        api.check_session(authz(CheckSessionRequest {
            session_id: id.into(),
        }))
        .await
        .unwrap()
        .into_inner()
    };

    let (mut browser, s1) = signed_in(&idp, "ivan", "a1").await;
    let live = check(&mut api, &s1).await;
    assert!(live.active);
    assert_eq!(live.subject, ivan.id);
    assert_eq!(live.amr, vec!["pwd".to_owned()]);
    assert!(live.auth_time > 0);
    for unknown in ["", "no-such-session", &browser.cookies["idp_session"]] {
        let r = check(&mut api, unknown).await;
        assert!(!r.active, "{unknown}");
        assert!(r.subject.is_empty());
    }

    // Idle timeout: CheckSession does not keep a session alive; a browser visit does.
    idp.clock.advance(Duration::from_secs(3000));
    idp.authz.login("a2");
    assert_eq!(browser.get("/login?login_challenge=a2").await.status, 303);
    idp.clock.advance(Duration::from_secs(3000));
    assert!(check(&mut api, &s1).await.active, "used 50 minutes ago");
    idp.clock.advance(Duration::from_secs(700));
    assert!(!check(&mut api, &s1).await.active, "idle for over an hour");
    idp.authz.login("a3");
    assert_eq!(
        browser.get("/login?login_challenge=a3").await.status,
        200,
        "an idled-out session is not reused"
    );

    // Absolute lifetime, however busy the session.
    let (mut busy, s2) = signed_in(&idp, "ivan", "a4").await;
    for n in 0..5 {
        idp.clock.advance(Duration::from_secs(50 * 60));
        let challenge = format!("busy{n}");
        idp.authz.login(&challenge);
        let status = busy
            .get(&format!("/login?login_challenge={challenge}"))
            .await
            .status;
        assert_eq!(status, if n < 4 { 303 } else { 200 }, "visit {n}");
    }
    assert!(!check(&mut api, &s2).await.active, "past 4 hours");

    // A disabled user's sessions are inactive.
    let (_, s3) = signed_in(&idp, "judy", "j1").await;
    assert!(check(&mut api, &s3).await.active);
    idp.users.set_disabled(&judy.id, true).await.unwrap();
    assert!(!check(&mut api, &s3).await.active);
    idp.users.set_disabled(&judy.id, false).await.unwrap();
    // Disabling ended it: enabling the user again does not bring it back.
    assert!(!check(&mut api, &s3).await.active, "ended by disabling");
    let (_, s3) = signed_in(&idp, "judy", "j1b").await;

    // EndSession by id, then by subject.
    let end = async |api: &mut proto::idp::v1::sessions_client::SessionsClient<_>, target| {
        api.end_session(authz(EndSessionRequest {
            target: Some(target),
        }))
        .await
        .unwrap()
        .into_inner()
        .ended
    };
    assert_eq!(end(&mut api, Target::SessionId(s3.clone())).await, 1);
    assert!(!check(&mut api, &s3).await.active);
    assert_eq!(end(&mut api, Target::SessionId(s3.clone())).await, 0);
    let (mut b1, _) = signed_in(&idp, "judy", "j2").await;
    let (_, j3) = signed_in(&idp, "judy", "j3").await;
    let (_, i5) = signed_in(&idp, "ivan", "i5").await;
    assert_eq!(end(&mut api, Target::Subject(judy.id.clone())).await, 2);
    assert!(!check(&mut api, &j3).await.active);
    assert!(check(&mut api, &i5).await.active, "other users keep theirs");
    idp.authz.login("j4");
    assert_eq!(
        b1.get("/login?login_challenge=j4").await.status,
        200,
        "the browser must sign in again"
    );
    let bad = api
        .end_session(authz(EndSessionRequest { target: None }))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);

    // A deleted user's sessions go with them.
    idp.users.delete(&ivan.id).await.unwrap();
    assert!(!check(&mut api, &i5).await.active);
}

/// `idp_sessions_active` follows what sign-ins and ends do, one step each (a sign-in no
/// longer counts the whole sessions table): a new session adds one, a re-authentication in
/// the same browser keeps the count, signing a browser in as someone else swaps one
/// session for another, and EndSession takes away what it ended. The gauge is per
/// process, so this is exact under nextest (one process per test), as `make test` runs it.
async fn the_sessions_gauge_follows_sign_ins_and_ends(db: TestDatabase) {
    let idp = start(db, |_| {}).await;
    idp.user("kim").await;
    let leo = idp.user("leo").await;
    idp.user("max").await;
    let mut api = idp.sessions_api().await;
    let gauge = async || idp.metric("idp_sessions_active").await;
    // The upkeep sets it from the database when the service starts.
    let mut waited = 0;
    while !idp.metrics().await.contains("idp_sessions_active ") {
        assert!(waited < 100, "the session upkeep never published the gauge");
        waited += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(gauge().await, 0.0);

    let (mut kim, _) = signed_in(&idp, "kim", "g1").await;
    let (_, leo_session) = signed_in(&idp, "leo", "g2").await;
    assert_eq!(gauge().await, 2.0);

    // prompt=login: the form again in a browser with a live session renews that session.
    let prompt_login = |challenge: &str| {
        let mut request = idp.authz.login(challenge);
        request.prompt = vec!["login".into()];
        idp.authz.add_login(
            request,
            &format!("https://authz.test/resume?login={challenge}"),
        );
    };
    prompt_login("g3");
    assert_eq!(kim.login("g3", "kim", PASSWORD).await.status, 303);
    assert_eq!(
        gauge().await,
        2.0,
        "a re-authentication is not a new session"
    );

    // The same browser signed in as someone else: kim's session ends, max's starts.
    prompt_login("g4");
    assert_eq!(kim.login("g4", "max", PASSWORD).await.status, 303);
    assert_eq!(gauge().await, 2.0, "one session swapped for another");

    let ended = api
        .end_session(authz(EndSessionRequest {
            target: Some(Target::Subject(leo.id.clone())),
        }))
        .await
        .unwrap()
        .into_inner()
        .ended;
    assert_eq!(ended, 1);
    assert_eq!(gauge().await, 1.0);
    let ended = api
        .end_session(authz(EndSessionRequest {
            target: Some(Target::SessionId(leo_session)),
        }))
        .await
        .unwrap()
        .into_inner()
        .ended;
    assert_eq!(ended, 0);
    assert_eq!(gauge().await, 1.0, "ending nothing moves nothing");
}

async fn callers_must_authenticate(db: TestDatabase) {
    let idp = start(db, |_| {}).await;
    let kim = idp.user("kim").await;
    let (_, session) = signed_in(&idp, "kim", "k1").await;
    let mut api = idp.sessions_api().await;
    // The right secret followed by `&junk=1`: a different secret (RFC 6749 §2.3.1 decodes
    // the whole value; `&` separates nothing).
    let junk = format!("{}&junk=1", crate::harness::SESSIONS_API_SECRET);
    let credentials: [Option<(&str, &str)>; 5] = [
        None,
        Some(("authz", "wrong-secret-wrong-secret")),
        Some(("someone", crate::harness::SESSIONS_API_SECRET)),
        Some(("authz", "")),
        Some(("authz", &junk)),
    ];
    for creds in credentials {
        let wrap = |m| match creds {
            Some((id, secret)) => with_credentials(m, id, secret),
            None => tonic::Request::new(m),
        };
        let e = api
            .get_user_claims(wrap(claims_request(&kim.id, &["profile"])))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{creds:?}");
        let e = api
            .check_session(wrap_check(creds, &session))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{creds:?}");
        let e = api
            .end_session(wrap_end(creds, &session))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{creds:?}");
    }
    assert!(
        api.check_session(authz(CheckSessionRequest {
            session_id: session.clone()
        }))
        .await
        .unwrap()
        .into_inner()
        .active,
        "refused calls ended nothing"
    );
    assert!(idp.metric(r#"grpc_server_requests_total{service="idp.v1.Sessions",method="EndSession",code="UNAUTHENTICATED"}"#).await >= 5.0);
}

fn wrap_check(creds: Option<(&str, &str)>, session: &str) -> tonic::Request<CheckSessionRequest> {
    let m = CheckSessionRequest {
        session_id: session.into(),
    };
    match creds {
        Some((id, secret)) => with_credentials(m, id, secret),
        None => tonic::Request::new(m),
    }
}

fn wrap_end(creds: Option<(&str, &str)>, session: &str) -> tonic::Request<EndSessionRequest> {
    let m = EndSessionRequest {
        target: Some(Target::SessionId(session.into())),
    };
    match creds {
        Some((id, secret)) => with_credentials(m, id, secret),
        None => tonic::Request::new(m),
    }
}

/// Without a configured secret every call is refused.
async fn unconfigured_secret_refuses_everyone(db: TestDatabase) {
    let idp = start(db, |c| c.sessions_api.client_secret = None).await;
    let mut api = idp.sessions_api().await;
    let e = api
        .check_session(authz(CheckSessionRequest {
            session_id: "x".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
}

storage::backend_tests!(idp::MIGRATIONS;
    user_claims,
    check_and_end_sessions,
);

crate::login::sqlite_tests!(
    the_sessions_gauge_follows_sign_ins_and_ends,
    callers_must_authenticate,
    unconfigured_secret_refuses_everyone
);
